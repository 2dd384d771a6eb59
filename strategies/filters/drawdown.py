"""Drawdown-pause entry filter: after equity falls a set percentage below its high-water mark,
refuses every entry for a fixed time, then starts measuring afresh.

The filter keeps its own high-water mark rather than reading `TradeState.drawdown_pct`: once a
pause expires it re-bases to the equity of that moment, or an account that stays flat in
drawdown would be paused again at once, forever. A breach is only noticed when an entry is
judged; the time is the signal's, never a clock's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain import Signal
from strategies.filters.base import check_name, shown
from strategies.trade.state import ALLOW, Prices, TradeState, Verdict

__all__ = ["DrawdownPause", "utc_text"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SNAPSHOT_KEYS = frozenset({"high_water", "rebase_peak", "paused_until_ms", "breach_pct"})


def utc_text(ms: int) -> str:
    """`ms` (epoch milliseconds) as ISO-8601 UTC, to the minute when nothing finer is set."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M")
    if moment.second or moment.microsecond:
        text += moment.strftime(":%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


class DrawdownPause:
    """Refuses entries for `pause_ms` after equity is `max_drawdown_pct` percent (or more)
    below the filter's high-water mark.

    The high-water mark follows `state.peak_equity` and folds in `state.equity` on every
    call. When a pause expires it becomes the equity of that moment, and `state.peak_equity`
    is ignored until it rises above the value it had then. Equity <= 0 (or unknown) always
    refuses without touching this state.
    """

    __slots__ = (
        "_breach_pct",
        "_high_water",
        "_paused_until_ms",
        "_rebase_peak",
        "max_drawdown_pct",
        "name",
        "pause_ms",
    )

    def __init__(self, max_drawdown_pct: float, pause_ms: int, *, name: str = "drawdown") -> None:
        check_name(name)
        if not 0 < max_drawdown_pct < 100:
            raise ValueError(f"max_drawdown_pct must be in (0, 100), got {max_drawdown_pct}")
        if isinstance(pause_ms, bool) or not isinstance(pause_ms, int) or pause_ms <= 0:
            raise ValueError(f"pause_ms must be a positive integer, got {pause_ms!r}")
        self.name = name
        self.max_drawdown_pct = max_drawdown_pct
        self.pause_ms = pause_ms
        self._high_water: float | None = None
        # state.peak_equity when the pause last expired; None while following it.
        self._rebase_peak: float | None = None
        self._paused_until_ms: int | None = None
        self._breach_pct = 0.0

    @property
    def paused_until_ms(self) -> int | None:
        return self._paused_until_ms

    @property
    def high_water(self) -> float | None:
        return self._high_water

    def allow_entry(self, signal: Signal, state: TradeState, prices: Prices) -> Verdict:
        now = signal.ts_ms
        equity = state.equity
        if math.isnan(equity):
            return Verdict.refuse(f"{self.name}: equity unknown")
        if not equity > 0:
            return Verdict.refuse(f"{self.name}: equity {equity:g} <= 0")
        if self._paused_until_ms is not None and now >= self._paused_until_ms:
            self._paused_until_ms = None
            self._high_water = equity
            peak = state.peak_equity
            self._rebase_peak = peak if math.isfinite(peak) else equity
        self._follow(state)
        if self._paused_until_ms is not None:
            return self._paused()
        high_water = self._high_water
        assert high_water is not None  # set by _follow from a positive equity
        drawdown = (high_water - equity) / high_water * 100
        if drawdown >= self.max_drawdown_pct:
            self._paused_until_ms = now + self.pause_ms
            self._breach_pct = drawdown
            return self._paused()
        return ALLOW

    def _follow(self, state: TradeState) -> None:
        peak = state.peak_equity
        if self._rebase_peak is not None and math.isfinite(peak) and peak > self._rebase_peak:
            self._rebase_peak = None
        candidates = [state.equity]
        if self._high_water is not None:
            candidates.append(self._high_water)
        if self._rebase_peak is None and math.isfinite(peak):
            candidates.append(peak)
        self._high_water = max(candidates)

    def _paused(self) -> Verdict:
        until = self._paused_until_ms
        assert until is not None
        limit = self.max_drawdown_pct
        return Verdict.refuse(
            f"{self.name}: {shown(self._breach_pct, limit, 1)}% >= {limit:g}%, "
            f"paused until {utc_text(until)}"
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "high_water": self._high_water,
            "rebase_peak": self._rebase_peak,
            "paused_until_ms": self._paused_until_ms,
            "breach_pct": self._breach_pct,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        unknown = set(state) - _SNAPSHOT_KEYS
        if unknown:
            raise ValueError(f"{self.name}: unknown snapshot keys {sorted(unknown)!r}")
        high_water = _optional_float(state, "high_water")
        rebase_peak = _optional_float(state, "rebase_peak")
        paused_until = state.get("paused_until_ms")
        if paused_until is not None and (
            isinstance(paused_until, bool) or not isinstance(paused_until, int)
        ):
            raise ValueError(f"{self.name}: paused_until_ms must be an integer or null")
        breach = _optional_float(state, "breach_pct")
        self._high_water = high_water
        self._rebase_peak = rebase_peak
        self._paused_until_ms = paused_until
        self._breach_pct = 0.0 if breach is None else breach


def _optional_float(state: Mapping[str, Any], key: str) -> float | None:
    value = state.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number or null, got {value!r}")
    return float(value)
