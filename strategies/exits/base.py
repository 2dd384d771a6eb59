"""Exit rules: the shared types and the one place that decides at which price a bar crosses a
level.

A position is an atomic unit with a fixed size: an exit closes all of it. Rules are stateless
objects; whatever a rule must remember about one position (the peak a trailing stop follows,
the ATR captured at entry, bars held) lives in `position.metadata[rule.name]`, JSON-safe, so it
is saved and restored with the position and survives a restart.

Bars are judged conservatively, since a bar does not say in which order its prices came:
- a bar that opens beyond a level exits at the open (a gap through a stop fills worse than the
  stop, a gap through a target fills better);
- a bar that touches both the stop and the target exits at the stop;
- a level reached inside the bar exits at the level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from app.domain import Kline

__all__ = [
    "LEVEL_TOLERANCE",
    "Bar",
    "ExitDecision",
    "ExitRule",
    "PositionSide",
    "TrackedPosition",
    "cross_levels",
]

PositionSide = Literal["long", "short"]

#: relative distance within which a price counts as on a level (float noise, not slippage)
LEVEL_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class Bar:
    open_ms: int
    close_ms: int
    open: float
    high: float
    low: float
    close: float

    @classmethod
    def of(cls, kline: Kline) -> Bar:
        return cls(
            kline.open_time_ms,
            kline.close_time_ms,
            float(kline.open),
            float(kline.high),
            float(kline.low),
            float(kline.close),
        )


@dataclass(slots=True)
class TrackedPosition:
    """One open position as the exit rules see it; `metadata` holds their per-position state."""

    position_id: str
    symbol: str
    side: PositionSide
    entry_price: float
    entry_ms: int
    quantity: Decimal
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_long(self) -> bool:
        return self.side == "long"


@dataclass(frozen=True, slots=True)
class ExitDecision:
    rule: str
    reason: str
    price: float  # where the exit is assumed to fill (the level, or the open after a gap)
    bar_open_ms: int


class ExitRule(Protocol):
    @property
    def name(self) -> str: ...

    def on_entry(self, position: TrackedPosition, atr: float) -> None:
        """Initialise this rule's state in `position.metadata` (atr: NaN when unknown)."""
        ...

    def check(self, position: TrackedPosition, bar: Bar, atr: float) -> ExitDecision | None:
        """Judge one bar after the entry bar. `atr` is the ATR known before this bar."""
        ...


def cross_levels(
    position: TrackedPosition,
    bar: Bar,
    *,
    stop: float | None,
    target: float | None,
    rule: str,
    stop_reason: str,
    target_reason: str,
    reason_args: tuple[object, ...] = (),
) -> ExitDecision | None:
    """The exit, if any, when `bar` reaches the stop or the target of `position`.

    The reasons are `str.format` templates filled with `reason_args` only when the bar exits:
    this runs for every open position on every bar, and formatting is most of its cost.
    """
    # A level computed from a percentage carries binary noise (1.1 x 1.1 = 1.2100000000000002):
    # a price on the level, to within that noise, reaches it.
    if position.side == "long":
        if stop is not None:
            reach = stop + abs(stop) * LEVEL_TOLERANCE
            if bar.open <= reach:
                return _decided(rule, stop_reason, reason_args, bar.open, bar, gapped=True)
        if target is not None:
            reach = target - abs(target) * LEVEL_TOLERANCE
            if bar.open >= reach:
                return _decided(rule, target_reason, reason_args, bar.open, bar, gapped=True)
        if stop is not None and bar.low <= stop + abs(stop) * LEVEL_TOLERANCE:
            return _decided(rule, stop_reason, reason_args, stop, bar, gapped=False)
        if target is not None and bar.high >= target - abs(target) * LEVEL_TOLERANCE:
            return _decided(rule, target_reason, reason_args, target, bar, gapped=False)
        return None
    if stop is not None:
        reach = stop - abs(stop) * LEVEL_TOLERANCE
        if bar.open >= reach:
            return _decided(rule, stop_reason, reason_args, bar.open, bar, gapped=True)
    if target is not None:
        reach = target + abs(target) * LEVEL_TOLERANCE
        if bar.open <= reach:
            return _decided(rule, target_reason, reason_args, bar.open, bar, gapped=True)
    if stop is not None and bar.high >= stop - abs(stop) * LEVEL_TOLERANCE:
        return _decided(rule, stop_reason, reason_args, stop, bar, gapped=False)
    if target is not None and bar.low <= target + abs(target) * LEVEL_TOLERANCE:
        return _decided(rule, target_reason, reason_args, target, bar, gapped=False)
    return None


def _decided(
    rule: str, template: str, args: tuple[object, ...], price: float, bar: Bar, *, gapped: bool
) -> ExitDecision:
    reason = template.format(*args) if args else template
    if gapped:
        reason += " (gapped through)"
    return ExitDecision(rule, reason, price, bar.open_ms)
