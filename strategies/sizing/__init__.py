"""Position sizers (trade management): how much of the instance's equity an entry gets.

Each sizer is a frozen dataclass meeting `strategies.trade.state.PositionSizer`; it answers a
zero quantity with the reason (never raises) when the entry cannot or must not be sized.
"""

from strategies.sizing.kelly import Kelly, KellyEstimate
from strategies.sizing.simple import FixedFraction, SignalStrength
from strategies.sizing.volatility import RiskParity, VolatilityTarget

__all__ = [
    "FixedFraction",
    "Kelly",
    "KellyEstimate",
    "RiskParity",
    "SignalStrength",
    "VolatilityTarget",
]
