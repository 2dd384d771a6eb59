"""Incremental O(1) technical indicators for strategies, fed one closed kline (or tick) at a time.

Pure Python floats, no numpy: each `update` costs a few hundred nanoseconds. Values are
``math.nan`` until ``ready``; every indicator has `update_many` (bit-identical to repeated
`update`) and a JSON-safe `snapshot()` / `restore()` to resume warm after a restart.
"""

from strategies.indicators.base import Indicator
from strategies.indicators.channel import Donchian
from strategies.indicators.moving import EMA, SMA, RollingMax, RollingMin, RollingStd
from strategies.indicators.oscillators import ADX, ATR, RSI
from strategies.indicators.volatility import RealizedVol, WindowedMove
from strategies.indicators.vwap import SessionVWAP

__all__ = [
    "ADX",
    "ATR",
    "EMA",
    "RSI",
    "SMA",
    "Donchian",
    "Indicator",
    "RealizedVol",
    "RollingMax",
    "RollingMin",
    "RollingStd",
    "SessionVWAP",
    "WindowedMove",
]
