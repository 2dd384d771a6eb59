"""Each symbol's market as trade management needs it: ATR (exit distances, volatility band),
ADX (regime), and the recent log returns (volatility, correlation), kept up to date from every
closed bar — history included, so they are ready when the first live signal arrives.

The ATR handed to an exit rule is the one known *before* the bar it judges (`atr_before`): a
rule must not size its stop with the range of the very bar that hits it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from app.domain import Kline
from strategies.indicators import ADX, ATR
from strategies.indicators.base import dec, enc
from strategies.trade.state import SymbolMarket

__all__ = ["MarketTracker"]

_YEAR_MS = 365 * 24 * 3600 * 1000  # crypto trades every day of the year


class MarketTracker:
    __slots__ = (
        "_adx",
        "_atr",
        "_bars_per_year",
        "_return_times",
        "_returns",
        "atr_before",
        "close",
        "close_ms",
        "last_open_ms",
        "symbol",
    )

    def __init__(
        self,
        symbol: str,
        *,
        interval_ms: int,
        atr_period: int,
        adx_period: int,
        returns_lookback: int,
    ) -> None:
        self.symbol = symbol
        self._bars_per_year = _YEAR_MS / interval_ms
        self._atr = ATR(atr_period)
        self._adx = ADX(adx_period)
        self._returns: deque[float] = deque(maxlen=returns_lookback)
        self._return_times: deque[int] = deque(maxlen=returns_lookback)
        self.close = math.nan
        self.close_ms = -1
        self.last_open_ms = -1
        #: the ATR as it stood before the last bar was added
        self.atr_before = math.nan

    def update(self, bar: Kline) -> None:
        if bar.open_time_ms <= self.last_open_ms:
            return
        high, low, close = float(bar.high), float(bar.low), float(bar.close)
        self.atr_before = self._atr.value
        self._atr.update(high, low, close)
        self._adx.update(high, low, close)
        previous = self.close
        if previous > 0 and close > 0:
            self._returns.append(math.log(close / previous))
            self._return_times.append(bar.open_time_ms)
        self.close = close
        self.close_ms = bar.close_time_ms
        self.last_open_ms = bar.open_time_ms

    @property
    def atr(self) -> float:
        return self._atr.value

    def view(self) -> SymbolMarket:
        returns = tuple(self._returns)
        return SymbolMarket(
            symbol=self.symbol,
            close=self.close,
            close_ms=self.close_ms,
            atr=self._atr.value,
            adx=self._adx.value,
            volatility=_sample_std(returns),
            bars_per_year=self._bars_per_year,
            returns=returns,
            return_times=tuple(self._return_times),
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "atr": self._atr.snapshot(),
            "adx": self._adx.snapshot(),
            "returns": list(self._returns),
            "return_times": list(self._return_times),
            "close": enc(self.close),
            "close_ms": self.close_ms,
            "last_open_ms": self.last_open_ms,
            "atr_before": enc(self.atr_before),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._atr.restore(state["atr"])
        self._adx.restore(state["adx"])
        self._returns.clear()
        self._returns.extend(float(r) for r in state["returns"])
        self._return_times.clear()
        self._return_times.extend(int(t) for t in state["return_times"])
        self.close = dec(state["close"])
        self.close_ms = int(state["close_ms"])
        self.last_open_ms = int(state["last_open_ms"])
        self.atr_before = dec(state["atr_before"])


def _sample_std(values: tuple[float, ...]) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
