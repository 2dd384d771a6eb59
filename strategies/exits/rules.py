"""The exit rules: fixed take-profit/stop-loss, trailing stop, volatility (ATR) exit, time exit.

Each keeps its per-position state under `position.metadata[self.name]` (see `base`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from strategies.exits.base import (
    LEVEL_TOLERANCE,
    Bar,
    ExitDecision,
    TrackedPosition,
    cross_levels,
)

__all__ = ["FixedExit", "TimeExit", "TrailingStop", "VolatilityExit"]


def _positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _offset(position: TrackedPosition, distance: float) -> float:
    """The price `distance` in the position's favour from its entry (negative: against it)."""
    return position.entry_price + distance if position.is_long else position.entry_price - distance


@dataclass(frozen=True)
class FixedExit:
    """Take-profit and/or stop-loss as a percentage of the entry price or as absolute prices
    (absolute prices apply to one position's side: above entry for a long's target)."""

    name: str = "fixed"
    take_profit_pct: float | None = None
    stop_loss_pct: float | None = None
    take_profit_price: float | None = None
    stop_loss_price: float | None = None

    def __post_init__(self) -> None:
        for field_name in (
            "take_profit_pct",
            "stop_loss_pct",
            "take_profit_price",
            "stop_loss_price",
        ):
            _positive(field_name, getattr(self, field_name))
        if self.take_profit_pct is not None and self.take_profit_price is not None:
            raise ValueError("give the take-profit as a percentage or a price, not both")
        if self.stop_loss_pct is not None and self.stop_loss_price is not None:
            raise ValueError("give the stop-loss as a percentage or a price, not both")

    def on_entry(self, position: TrackedPosition, atr: float) -> None:
        entry = position.entry_price
        target = self.take_profit_price
        if self.take_profit_pct is not None:
            target = _offset(position, entry * self.take_profit_pct / 100)
        stop = self.stop_loss_price
        if self.stop_loss_pct is not None:
            stop = _offset(position, -entry * self.stop_loss_pct / 100)
        position.metadata[self.name] = {"target": target, "stop": stop}

    def check(self, position: TrackedPosition, bar: Bar, atr: float) -> ExitDecision | None:
        state = position.metadata[self.name]
        stop, target = state["stop"], state["target"]
        return cross_levels(
            position,
            bar,
            stop=stop,
            target=target,
            rule=self.name,
            stop_reason="stop-loss {0:.8g}",
            target_reason="take-profit {1:.8g}",
            reason_args=(stop if stop is not None else 0.0, target if target is not None else 0.0),
        )


@dataclass(frozen=True)
class TrailingStop:
    """A stop that follows the best price since entry (the peak of a long, the trough of a
    short) at `trail_pct` percent or `atr_mult` ATRs behind it, once the position is
    `activation_pct` percent in profit (at once when unset).

    Within a bar the stop is judged against the extreme reached *before* the bar, then the
    extreme is updated with the bar: a bar's high may have come after its low.
    """

    name: str = "trailing"
    trail_pct: float | None = None
    atr_mult: float | None = None
    activation_pct: float | None = None

    def __post_init__(self) -> None:
        if (self.trail_pct is None) == (self.atr_mult is None):
            raise ValueError("give exactly one of trail_pct and atr_mult")
        _positive("trail_pct", self.trail_pct)
        _positive("atr_mult", self.atr_mult)
        if self.activation_pct is not None and self.activation_pct < 0:
            raise ValueError(f"activation_pct must not be negative, got {self.activation_pct}")

    def on_entry(self, position: TrackedPosition, atr: float) -> None:
        position.metadata[self.name] = {
            "extreme": position.entry_price,
            # 0 % is reached at entry: active from the first bar, like no threshold at all.
            "active": self.activation_pct is None or self.activation_pct == 0,
        }

    def check(self, position: TrackedPosition, bar: Bar, atr: float) -> ExitDecision | None:
        state = position.metadata[self.name]
        long = position.is_long
        extreme = float(state["extreme"])
        decision = None
        if state["active"]:
            stop = self._stop(extreme, atr, long)
            if stop is not None:
                decision = cross_levels(
                    position,
                    bar,
                    stop=stop,
                    target=None,
                    rule=self.name,
                    stop_reason="trailing stop {0:.8g} ({1} {2:.8g})",
                    target_reason="",
                    reason_args=(stop, "peak" if long else "trough", extreme),
                )
        extreme = max(extreme, bar.high) if long else min(extreme, bar.low)
        state["extreme"] = extreme
        if not state["active"] and self.activation_pct is not None:
            gain = (
                (extreme / position.entry_price - 1)
                if long
                else (1 - extreme / position.entry_price)
            )
            state["active"] = gain * 100 >= self.activation_pct - LEVEL_TOLERANCE * 100
        return decision

    def _stop(self, extreme: float, atr: float, long: bool) -> float | None:
        if self.trail_pct is not None:
            distance = extreme * self.trail_pct / 100
        else:
            if not math.isfinite(atr) or self.atr_mult is None:
                return None  # no ATR yet: no ATR-based stop to judge
            distance = atr * self.atr_mult
        return extreme - distance if long else extreme + distance


@dataclass(frozen=True)
class VolatilityExit:
    """Take-profit `tp_atr` and stop-loss `sl_atr` ATRs from the entry price; `mode` "fixed"
    uses the ATR at entry for the whole trade, "dynamic" the latest ATR on every bar."""

    name: str = "volatility"
    tp_atr: float = 3.0
    sl_atr: float = 2.0
    mode: Literal["fixed", "dynamic"] = "fixed"

    def __post_init__(self) -> None:
        _positive("tp_atr", self.tp_atr)
        _positive("sl_atr", self.sl_atr)

    def on_entry(self, position: TrackedPosition, atr: float) -> None:
        position.metadata[self.name] = {"atr_at_entry": atr if math.isfinite(atr) else None}

    def check(self, position: TrackedPosition, bar: Bar, atr: float) -> ExitDecision | None:
        state = position.metadata[self.name]
        if self.mode == "fixed":
            if state["atr_at_entry"] is None:
                state["atr_at_entry"] = atr if math.isfinite(atr) else None
            atr = state["atr_at_entry"] if state["atr_at_entry"] is not None else math.nan
        if not math.isfinite(atr):
            return None
        stop = _offset(position, -self.sl_atr * atr)
        target = _offset(position, self.tp_atr * atr)
        return cross_levels(
            position,
            bar,
            stop=stop,
            target=target,
            rule=self.name,
            stop_reason="stop {0:g} ATR ({1:.8g})",
            target_reason="target {2:g} ATR ({3:.8g})",
            reason_args=(self.sl_atr, stop, self.tp_atr, target),
        )


@dataclass(frozen=True)
class TimeExit:
    """Leave at the close of the `max_bars`-th bar after entry, or of the first bar closing
    `max_hold_ms` or more after the entry (whichever is set; both: the earlier)."""

    name: str = "time"
    max_bars: int | None = None
    max_hold_ms: int | None = None

    def __post_init__(self) -> None:
        if self.max_bars is None and self.max_hold_ms is None:
            raise ValueError("give max_bars or max_hold_ms")
        _positive("max_bars", self.max_bars)
        _positive("max_hold_ms", self.max_hold_ms)

    def on_entry(self, position: TrackedPosition, atr: float) -> None:
        position.metadata[self.name] = {"bars_held": 0}

    def check(self, position: TrackedPosition, bar: Bar, atr: float) -> ExitDecision | None:
        state = position.metadata[self.name]
        state["bars_held"] = held = int(state["bars_held"]) + 1
        if self.max_bars is not None and held >= self.max_bars:
            return ExitDecision(self.name, f"held {held} bars", bar.close, bar.open_ms)
        if self.max_hold_ms is not None and bar.close_ms - position.entry_ms >= self.max_hold_ms:
            hours = (bar.close_ms - position.entry_ms) / 3_600_000
            return ExitDecision(self.name, f"held {hours:.2f} h", bar.close, bar.open_ms)
        return None
