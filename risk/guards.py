"""Runtime guards that change the trading state: consecutive losses, drawdown, minimum equity.

Pure: the gate feeds every round trip (from `RiskBook.on_fill`) and the equity after each fill
and price update; a returned `GuardTrip` is what the gate applies to its `TradingStateMachine`.
Each guard trips once and is then latched (consecutive losses: the streak starts again), so a
trip is one state change and one alert, not one per price tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.domain import TradingState
from config.risk import RiskGuardSettings
from risk.book import RoundTrip
from risk.checks import fmt_money

__all__ = ["GuardTrip", "Guards"]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass(frozen=True, slots=True)
class GuardTrip:
    """A guard asks for `state`; `reason` starts with the guard's name; `resume_at_ms` ends a
    timed halt (None: until an operator resumes)."""

    state: TradingState
    reason: str
    resume_at_ms: int | None


class Guards:
    def __init__(self, settings: RiskGuardSettings) -> None:
        self._settings = settings
        self._streak = 0
        self._peak: Decimal | None = None
        self._drawdown_pct = _ZERO
        self._drawdown_latched = False
        self._min_equity_latched = False

    @property
    def peak_equity(self) -> Decimal | None:
        return self._peak

    @property
    def drawdown_pct(self) -> Decimal:
        return self._drawdown_pct

    @property
    def losing_streak(self) -> int:
        return self._streak

    def on_round_trip(self, trip: RoundTrip, now_ms: int) -> GuardTrip | None:
        """Count losing round trips across all instances: a win resets the streak, a break-even
        leaves it as it is. At the limit: HALTED for the cooldown, and the streak starts over
        (the losses that led to the halt do not halt again after it)."""
        if trip.pnl > 0:
            self._streak = 0
        elif trip.pnl < 0:
            self._streak += 1
        limit = self._settings.consecutive_losses
        if limit is None or self._streak < limit:
            return None
        streak, self._streak = self._streak, 0
        cooldown_min = self._settings.consecutive_loss_cooldown_min
        return GuardTrip(
            TradingState.HALTED,
            f"consecutive_losses: {streak} losing trades in a row (limit {limit}); "
            f"halted for {cooldown_min:g} min",
            now_ms + round(cooldown_min * 60_000),
        )

    def on_equity(self, equity: Decimal, now_ms: int) -> GuardTrip | None:
        """Track the high-water mark; trip the drawdown breaker once (latched until `reset`) and
        halt below the minimum equity (latched while below it). When both trip at once, the
        more severe state is asked for."""
        if self._peak is None or equity > self._peak:
            self._peak = equity
        peak = self._peak
        self._drawdown_pct = (peak - equity) / peak * _HUNDRED if peak > 0 else _ZERO
        trips: list[GuardTrip] = []
        settings = self._settings
        if (
            settings.max_drawdown_pct is not None
            and not self._drawdown_latched
            and self._drawdown_pct >= settings.max_drawdown_pct
        ):
            self._drawdown_latched = True
            state = (
                TradingState.REDUCING
                if settings.drawdown_action == "reducing"
                else TradingState.HALTED
            )
            trips.append(
                GuardTrip(
                    state,
                    f"max_drawdown: equity {fmt_money(equity)} is "
                    f"{fmt_money(self._drawdown_pct)}% below its peak {fmt_money(peak)} "
                    f"(limit {fmt_money(settings.max_drawdown_pct)}%)",
                    None,
                )
            )
        if settings.min_equity is not None:
            if equity >= settings.min_equity:
                self._min_equity_latched = False
            elif not self._min_equity_latched:
                self._min_equity_latched = True
                trips.append(
                    GuardTrip(
                        TradingState.HALTED,
                        f"min_equity: equity {fmt_money(equity)} is below the minimum "
                        f"{fmt_money(settings.min_equity)}",
                        None,
                    )
                )
        if not trips:
            return None
        return max(trips, key=lambda trip: _SEVERITY[trip.state])

    def reset(self, equity: Decimal) -> None:
        """Operator resume: re-base the peak at the current equity, clear the streak and the
        latches (equity still below the minimum halts again at the next update)."""
        self._peak = equity
        self._drawdown_pct = _ZERO
        self._streak = 0
        self._drawdown_latched = False
        self._min_equity_latched = False

    def snapshot(self) -> dict[str, object]:
        return {
            "peak_equity": None if self._peak is None else str(self._peak),
            "drawdown_pct": str(self._drawdown_pct),
            "losing_streak": self._streak,
            "drawdown_latched": self._drawdown_latched,
            "min_equity_latched": self._min_equity_latched,
        }

    def restore(self, data: Mapping[str, object]) -> None:
        """Take the state of a `snapshot()`; ValueError (and no change) when it does not fit."""
        try:
            peak, drawdown = data["peak_equity"], data["drawdown_pct"]
            streak = data["losing_streak"]
            latches = data["drawdown_latched"], data["min_equity_latched"]
            if not (peak is None or isinstance(peak, str)) or not isinstance(drawdown, str):
                raise ValueError(f"decimals {peak!r}, {drawdown!r}")
            if not isinstance(streak, int) or isinstance(streak, bool) or streak < 0:
                raise ValueError(f"losing_streak {streak!r}")
            if not all(isinstance(latch, bool) for latch in latches):
                raise ValueError(f"latches {latches!r}")
            peak_value = None if peak is None else Decimal(peak)
            drawdown_value = Decimal(drawdown)
            if not all(v.is_finite() for v in (drawdown_value, peak_value or _ZERO)):
                raise ValueError(f"decimals {peak!r}, {drawdown!r}")
        except (KeyError, InvalidOperation, ValueError) as exc:
            raise ValueError(f"bad guards snapshot: {exc}") from exc
        self._peak = peak_value
        self._drawdown_pct = drawdown_value
        self._streak = streak
        self._drawdown_latched, self._min_equity_latched = bool(latches[0]), bool(latches[1])
