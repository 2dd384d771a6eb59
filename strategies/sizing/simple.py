"""Sizers that scale equity by a fixed number: a fixed fraction, and a base fraction scaled by
the signal's confidence."""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.domain import Signal
from strategies.sizing.base import check_in_range, entry_market, fmt, size_for, zero_size
from strategies.trade.state import PositionSize, Prices, TradeState

__all__ = ["FixedFraction", "SignalStrength"]


@dataclass(frozen=True, slots=True)
class FixedFraction:
    """Enter `fraction` of equity (0 < fraction <= 1: no leverage)."""

    fraction: float
    name: str = "fixed_fraction"

    def __post_init__(self) -> None:
        check_in_range("fraction", self.fraction, 0.0, 1.0, low_open=True)

    def compute_size(self, signal: Signal, state: TradeState, prices: Prices) -> PositionSize:
        market = entry_market(self.name, signal, state, prices)
        if isinstance(market, PositionSize):
            return market
        notional = self.fraction * state.equity
        why = f"{fmt(self.fraction)} of equity {fmt(state.equity)} = {fmt(notional)}"
        return size_for(self.name, notional, market, why)


@dataclass(frozen=True, slots=True)
class SignalStrength:
    """Enter `base_fraction` of equity times the signal's confidence; no entry below
    `min_confidence`.

    Confidence above 1 counts as 1, so a strategy cannot lever itself past `base_fraction`.
    """

    base_fraction: float
    min_confidence: float = 0.0
    name: str = "signal_strength"

    def __post_init__(self) -> None:
        check_in_range("base_fraction", self.base_fraction, 0.0, 1.0, low_open=True)
        check_in_range("min_confidence", self.min_confidence, 0.0, 1.0, low_open=False)

    def compute_size(self, signal: Signal, state: TradeState, prices: Prices) -> PositionSize:
        market = entry_market(self.name, signal, state, prices)
        if isinstance(market, PositionSize):
            return market
        confidence = signal.confidence
        # NaN fails every comparison, so it must be refused before the threshold is judged.
        if math.isnan(confidence):
            return zero_size(self.name, "confidence unknown (nan)")
        if confidence < self.min_confidence:
            return zero_size(
                self.name,
                f"confidence {fmt(confidence)} < min_confidence {fmt(self.min_confidence)}",
            )
        used = min(confidence, 1.0)
        notional = self.base_fraction * state.equity * used
        why = (
            f"{fmt(self.base_fraction)} x confidence {fmt(used)} of equity {fmt(state.equity)}"
            f" = {fmt(notional)}"
        )
        return size_for(self.name, notional, market, why)
