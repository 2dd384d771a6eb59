"""Where warm-up history comes from, and which bars a strategy still needs before it is live.

The worker asks a `HistorySource` for closed bars; the daemon's source is the exchange's
klines endpoint (`app.venue.BinanceVenue.closed_klines`), a backtest's is its own data, a
test's is a list. Planning which range to ask for is pure arithmetic on bar times, kept here so
it can be tested alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.domain import Kline

__all__ = ["CatchUp", "HistorySource", "last_closed_open_ms", "plan_catch_up"]


class HistorySource(Protocol):
    async def closed_klines(
        self, symbol: str, interval: str, *, start_ms: int, end_ms: int
    ) -> Sequence[Kline]:
        """Closed bars whose open time lies in [start_ms, end_ms], oldest first."""
        ...


def last_closed_open_ms(now_ms: int, step_ms: int) -> int:
    """Open time of the newest bar that has closed by `now_ms` (bars are aligned to epoch 0)."""
    return (now_ms // step_ms) * step_ms - step_ms


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Bars to fetch (inclusive open-time range); `start_ms > end_ms` means none are needed."""

    start_ms: int
    end_ms: int
    resume: bool  # True: continue the restored state; False: warm up from scratch

    @property
    def empty(self) -> bool:
        return self.start_ms > self.end_ms


def plan_catch_up(
    *,
    now_ms: int,
    step_ms: int,
    warmup_bars: int,
    restored_last_open_ms: int | None,
    max_catch_up_bars: int,
) -> CatchUp:
    """Resume a restored state when few enough bars are missing; otherwise warm up afresh."""
    last_open = last_closed_open_ms(now_ms, step_ms)
    if restored_last_open_ms is not None and restored_last_open_ms <= last_open:
        missing = (last_open - restored_last_open_ms) // step_ms
        if missing <= max_catch_up_bars:
            return CatchUp(restored_last_open_ms + step_ms, last_open, resume=True)
    return CatchUp(last_open - (warmup_bars - 1) * step_ms, last_open, resume=False)
