"""Market-regime entry filter: lets entries through only in a trending or a ranging market,
judged by the symbol's ADX."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from app.domain import Signal
from strategies.filters.base import Stateless, check_name, shown
from strategies.trade.state import ALLOW, Prices, TradeState, Verdict

__all__ = ["Regime", "RegimeFilter"]

Regime = Literal["trend", "range"]


@dataclass(slots=True)
class RegimeFilter(Stateless):
    """Allows an entry only when the market of its symbol is in the `allow` regime: "trend"
    when ADX >= `adx_threshold`, "range" below it. An unknown ADX refuses either way."""

    allow: Regime
    adx_threshold: float = 25.0
    name: str = field(default="regime", kw_only=True)

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.allow not in ("trend", "range"):
            raise ValueError(f"allow must be 'trend' or 'range', got {self.allow!r}")
        if not 0 < self.adx_threshold < 100:
            raise ValueError(f"adx_threshold must be in (0, 100), got {self.adx_threshold}")

    def allow_entry(self, signal: Signal, state: TradeState, prices: Prices) -> Verdict:
        market = prices.get(signal.symbol)
        if market is None:
            return Verdict.refuse(
                f"{self.name}: regime unknown (no market for {signal.symbol}), needs {self.allow}"
            )
        adx = market.adx
        if not math.isfinite(adx):
            return Verdict.refuse(
                f"{self.name}: regime unknown (ADX of {signal.symbol} not known yet), "
                f"needs {self.allow}"
            )
        threshold = self.adx_threshold
        regime: Regime = "trend" if adx >= threshold else "range"
        if regime == self.allow:
            return ALLOW
        relation = ">=" if regime == "trend" else "<"
        return Verdict.refuse(
            f"{self.name}: {regime} (ADX {shown(adx, threshold, 1)} {relation} {threshold:g}), "
            f"needs {self.allow}"
        )
