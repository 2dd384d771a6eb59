"""Volatility-band entry filter: refuses entries when the symbol's market is too quiet or too
wild, measured by ATR percent or annualised volatility."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from app.domain import Signal
from strategies.filters.base import Stateless, check_name, shown
from strategies.trade.state import ALLOW, Prices, SymbolMarket, TradeState, Verdict

__all__ = ["VolatilityBand", "VolatilityMetric"]

VolatilityMetric = Literal["atr_pct", "annualised_vol"]


def _measure(market: SymbolMarket, metric: VolatilityMetric) -> float:
    return market.atr_pct if metric == "atr_pct" else market.annualised_volatility


@dataclass(slots=True)
class VolatilityBand(Stateless):
    """Allows an entry while `metric` lies in [minimum, maximum] (both bounds inclusive; an
    unset bound does not limit). An unknown (NaN, infinite or missing) metric refuses.

    Units follow `SymbolMarket`: "atr_pct" is the ATR in percent of the close (1.5 = 1.5 %),
    "annualised_vol" the annualised standard deviation of log returns as a fraction
    (0.8 = 80 % a year).
    """

    metric: VolatilityMetric
    minimum: float | None = None
    maximum: float | None = None
    name: str = field(default="volatility", kw_only=True)

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.metric not in ("atr_pct", "annualised_vol"):
            raise ValueError(f"metric must be 'atr_pct' or 'annualised_vol', got {self.metric!r}")
        if self.minimum is None and self.maximum is None:
            raise ValueError("give a minimum or a maximum (or both)")
        for bound_name, bound in (("minimum", self.minimum), ("maximum", self.maximum)):
            if bound is not None and not (math.isfinite(bound) and bound >= 0):
                raise ValueError(f"{bound_name} must be a finite number >= 0, got {bound}")
        if self.minimum is not None and self.maximum is not None and self.minimum >= self.maximum:
            raise ValueError(
                f"minimum must be below maximum, got minimum={self.minimum} maximum={self.maximum}"
            )

    def allow_entry(self, signal: Signal, state: TradeState, prices: Prices) -> Verdict:
        market = prices.get(signal.symbol)
        if market is None:
            return Verdict.refuse(
                f"{self.name}: {self.metric} unknown (no market for {signal.symbol})"
            )
        value = _measure(market, self.metric)
        if not math.isfinite(value):
            return Verdict.refuse(f"{self.name}: {self.metric} of {signal.symbol} not known yet")
        if self.minimum is not None and value < self.minimum:
            return Verdict.refuse(
                f"{self.name}: {self.metric} {shown(value, self.minimum, 2)} "
                f"< minimum {self.minimum:g}"
            )
        if self.maximum is not None and value > self.maximum:
            return Verdict.refuse(
                f"{self.name}: {self.metric} {shown(value, self.maximum, 2)} "
                f"> maximum {self.maximum:g}"
            )
        return ALLOW
