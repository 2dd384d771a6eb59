"""Entry filters for trade management: each answers whether a signal's entry may go ahead now
(`allow_entry(signal, state, prices) -> Verdict`), refusing with a reason that starts with the
filter's name. Counting and logging refusals is the caller's job."""

from strategies.filters.correlation import CorrelationFilter, aligned_returns, pearson
from strategies.filters.drawdown import DrawdownPause
from strategies.filters.regime import RegimeFilter
from strategies.filters.time_window import TimeWindow, parse_days, parse_hours
from strategies.filters.volatility import VolatilityBand

__all__ = [
    "CorrelationFilter",
    "DrawdownPause",
    "RegimeFilter",
    "TimeWindow",
    "VolatilityBand",
    "aligned_returns",
    "parse_days",
    "parse_hours",
    "pearson",
]
