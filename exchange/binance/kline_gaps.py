"""Exactly-once, in-order closed klines across stream disconnects: the pure sequencing logic.

Binance's kline streams push intrabar updates and, at the end of each bar, one update with
``closed=True``. A disconnect loses whatever was pushed meanwhile, and a reconnect may repeat
bars. :class:`KlineSequencer` sits between the decoded stream and downstream and guarantees,
per (symbol, interval):

* every CLOSED kline is emitted once, in open-time order, with no bar skipped;
* intrabar (not closed) updates pass through, except those for bars at or before the last
  emitted closed bar (stale: dropped and counted);
* missing bars come from REST (:meth:`KlineSequencer.accept_backfill`), never guessed.

Each series keeps a *cursor*: the open time of the next bar it expects. Everything before it
was emitted, or proven absent by REST (an exchange outage leaves real holes in the history).

Gap hold-back
-------------
A kline whose open time is beyond the cursor shows that bars are missing. It is not emitted:
it is held back and the series reports a pending :class:`KlineGap` (see
:meth:`KlineSequencer.pending_gap`). The caller then fetches REST klines starting at
:meth:`KlineSequencer.missing_from` and hands them to :meth:`KlineSequencer.accept_backfill`,
which emits the missing bars and then releases the held ones, in order. A closed kline held back
is kept; of intrabar updates past a gap only the newest is kept (older ones are superseded).
:meth:`KlineSequencer.skip_gap` gives up on a gap (no REST source) and releases what is held.

REST answers are authoritative: ``accept_backfill`` expects klines answering a query that starts
at ``missing_from()``. Bars absent from that answer before its last kline do not exist on the
exchange; an unclosed last kline is the bar in progress, so every bar before it is accounted
for. Only closed REST klines are emitted.

The ``1M`` interval has variable length: gap detection is off for it (any newer bar is next).
No I/O here; :mod:`exchange.binance.streams` drives it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from app.domain.market import Kline

__all__ = ["KlineGap", "KlineSequencer", "interval_ms"]

_SECOND_MS: Final = 1_000
_MINUTE_MS: Final = 60 * _SECOND_MS
_HOUR_MS: Final = 60 * _MINUTE_MS
_DAY_MS: Final = 24 * _HOUR_MS
_FIXED_INTERVAL_MS: Final[dict[str, int]] = {
    "1s": _SECOND_MS,
    "1m": _MINUTE_MS,
    "3m": 3 * _MINUTE_MS,
    "5m": 5 * _MINUTE_MS,
    "15m": 15 * _MINUTE_MS,
    "30m": 30 * _MINUTE_MS,
    "1h": _HOUR_MS,
    "2h": 2 * _HOUR_MS,
    "4h": 4 * _HOUR_MS,
    "6h": 6 * _HOUR_MS,
    "8h": 8 * _HOUR_MS,
    "12h": 12 * _HOUR_MS,
    "1d": _DAY_MS,
    "3d": 3 * _DAY_MS,
    "1w": 7 * _DAY_MS,
}
_VARIABLE_INTERVALS: Final = frozenset({"1M"})

SeriesKey = tuple[str, str]


def interval_ms(interval: str) -> int | None:
    """Length of one bar in ms; ``None`` for ``1M`` (months differ). Unknown names raise."""
    if interval in _VARIABLE_INTERVALS:
        return None
    try:
        return _FIXED_INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"unknown kline interval {interval!r}") from None


@dataclass(frozen=True, slots=True)
class KlineGap:
    """Bars from ``missing_from_ms`` up to (not including) ``held_from_ms`` are missing."""

    symbol: str
    interval: str
    missing_from_ms: int
    held_from_ms: int


@dataclass(slots=True)
class _Series:
    step_ms: int | None
    cursor_ms: int | None = None  # open time of the next bar expected; None before the first
    last_closed_open_ms: int | None = None
    held_closed: dict[int, Kline] = field(default_factory=dict)
    held_live: Kline | None = None

    def after(self, open_ms: int) -> int:
        # A 1M series has no fixed step: any later open time counts as the next bar.
        return open_ms + (self.step_ms if self.step_ms is not None else 1)

    def is_next(self, open_ms: int) -> bool:
        if self.cursor_ms is None or self.step_ms is None:
            return True
        return open_ms == self.cursor_ms

    def gap_pending(self) -> bool:
        return bool(self.held_closed) or self.held_live is not None


class KlineSequencer:
    """Turns stream and REST klines into one gap-free, duplicate-free series per symbol and
    interval. Shared by every connection of a feed; not thread-safe (one event loop)."""

    def __init__(self) -> None:
        self._series: dict[SeriesKey, _Series] = {}
        self._duplicates_dropped = 0
        self._stale_updates_dropped = 0
        self._backfilled = 0
        self._gaps_detected = 0
        self._gaps_skipped = 0

    @property
    def duplicates_dropped(self) -> int:
        """Closed klines already emitted (or already held back) that arrived again."""
        return self._duplicates_dropped

    @property
    def stale_updates_dropped(self) -> int:
        """Intrabar updates for bars at or before the last emitted closed bar."""
        return self._stale_updates_dropped

    @property
    def backfilled(self) -> int:
        """Closed klines emitted from REST answers."""
        return self._backfilled

    @property
    def gaps_detected(self) -> int:
        return self._gaps_detected

    @property
    def gaps_skipped(self) -> int:
        return self._gaps_skipped

    def accept(self, kline: Kline) -> list[Kline]:
        """Take one stream kline; return what to emit now, in order (possibly nothing).

        After a call, :meth:`pending_gap` tells whether the series now waits for a backfill.
        """
        return self.accept_from_stream(kline)[0]

    def accept_from_stream(self, kline: Kline) -> tuple[list[Kline], bool]:
        """:meth:`accept`, plus whether the series now waits for a backfill (what
        ``pending_gap(...) is not None`` would say), so that the stream reader, calling this
        for every frame, needs no second lookup of the series."""
        series = self._series.get((kline.symbol, kline.interval))
        if series is None:
            series = self._series_for(kline.symbol, kline.interval)
        if kline.closed:
            emitted = self._accept_closed(series, kline)
        else:
            emitted = self._accept_live(series, kline)
        # Nothing is ever held before the first closed bar (cursor None): every bar is "next".
        return emitted, bool(series.held_closed) or series.held_live is not None

    def accept_backfill(self, klines: Iterable[Kline]) -> list[Kline]:
        """Merge a REST answer to a query starting at :meth:`missing_from`; return what to emit.

        Only closed klines newer than the cursor are emitted, sorted; held-back stream klines
        the answer covers are merged in, and those past it are released once contiguous.
        """
        by_series: dict[SeriesKey, dict[int, Kline]] = {}
        for kline in klines:
            # One row per bar: should an answer repeat a bar, its last copy is kept.
            by_series.setdefault((kline.symbol, kline.interval), {})[kline.open_time_ms] = kline
        emitted: list[Kline] = []
        for (symbol, interval), by_open in by_series.items():
            series = self._series_for(symbol, interval)
            emitted.extend(self._merge_rest(series, by_open))
        return emitted

    def skip_gap(self, symbol: str, interval: str) -> list[Kline]:
        """Give up filling the pending gap (no REST source): release what is held, in order."""
        series = self._series.get((symbol, interval))
        if series is None or not series.gap_pending():
            return []
        self._gaps_skipped += 1
        emitted: list[Kline] = []
        for open_ms in sorted(series.held_closed):
            emitted.append(self._emit_closed(series, series.held_closed.pop(open_ms)))
        live, series.held_live = series.held_live, None
        if live is not None:
            if series.cursor_ms is not None and live.open_time_ms < series.cursor_ms:
                self._stale_updates_dropped += 1
            else:
                series.cursor_ms = live.open_time_ms
                emitted.append(live)
        return emitted

    def last_closed_open_ms(self, symbol: str, interval: str) -> int | None:
        series = self._series.get((symbol, interval))
        return None if series is None else series.last_closed_open_ms

    def missing_from(self, symbol: str, interval: str) -> int | None:
        """Open time of the first bar not yet emitted (where a REST query starts), or ``None``
        before the series has a closed bar."""
        series = self._series.get((symbol, interval))
        return None if series is None else series.cursor_ms

    def needs_backfill(self, symbol: str, interval: str, next_open_ms: int) -> bool:
        """True when bars before ``next_open_ms`` (the bar about to be seen, e.g. the one in
        progress by the clock) are missing, or a gap is already pending."""
        series = self._series.get((symbol, interval))
        if series is None or series.cursor_ms is None:
            return False
        if series.gap_pending():
            return True
        return series.step_ms is not None and next_open_ms > series.cursor_ms

    def pending_gap(self, symbol: str, interval: str) -> KlineGap | None:
        series = self._series.get((symbol, interval))
        if series is None or series.cursor_ms is None or not series.gap_pending():
            return None
        held = list(series.held_closed)
        if series.held_live is not None:
            held.append(series.held_live.open_time_ms)
        return KlineGap(symbol, interval, series.cursor_ms, min(held))

    def pending_gaps(self) -> list[KlineGap]:
        gaps = (self.pending_gap(symbol, interval) for symbol, interval in self._series)
        return [gap for gap in gaps if gap is not None]

    def snapshot(self) -> dict[str, Any]:
        """Counters, each series' position and the pending gaps; JSON-serialisable."""
        return {
            "duplicates_dropped": self._duplicates_dropped,
            "stale_updates_dropped": self._stale_updates_dropped,
            "backfilled": self._backfilled,
            "gaps_detected": self._gaps_detected,
            "gaps_skipped": self._gaps_skipped,
            "series": {
                f"{symbol}@{interval}": {
                    "last_closed_open_ms": series.last_closed_open_ms,
                    "missing_from_ms": series.cursor_ms,
                    "held": len(series.held_closed) + (series.held_live is not None),
                }
                for (symbol, interval), series in self._series.items()
            },
            "pending_gaps": [
                {
                    "symbol": gap.symbol,
                    "interval": gap.interval,
                    "missing_from_ms": gap.missing_from_ms,
                    "held_from_ms": gap.held_from_ms,
                }
                for gap in self.pending_gaps()
            ],
        }

    def _series_for(self, symbol: str, interval: str) -> _Series:
        key = (symbol, interval)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(step_ms=interval_ms(interval))
        return series

    def _accept_closed(self, series: _Series, kline: Kline) -> list[Kline]:
        open_ms = kline.open_time_ms
        behind = series.cursor_ms is not None and open_ms < series.cursor_ms
        if behind or open_ms in series.held_closed:
            self._duplicates_dropped += 1
            return []
        if series.is_next(open_ms):
            return [self._emit_closed(series, kline), *self._drain(series)]
        self._hold(series, closed=kline)
        return []

    def _accept_live(self, series: _Series, kline: Kline) -> list[Kline]:
        # The hot path (every intrabar update of every stream): the checks of
        # _Series.gap_pending() and is_next() are spelt out here, without their calls.
        open_ms = kline.open_time_ms
        cursor = series.cursor_ms
        if cursor is None:
            return [kline]  # before the first closed bar nothing is held, every bar is next
        if open_ms < cursor:
            self._stale_updates_dropped += 1
            return []
        gap_pending = bool(series.held_closed) or series.held_live is not None
        if gap_pending or (series.step_ms is not None and open_ms != cursor):
            self._hold(series, live=kline)
            return []
        return [kline]

    def _hold(
        self, series: _Series, *, closed: Kline | None = None, live: Kline | None = None
    ) -> None:
        if not series.gap_pending():
            self._gaps_detected += 1
        if closed is not None:
            series.held_closed[closed.open_time_ms] = closed
        held_live = series.held_live
        if live is not None and (held_live is None or live.open_time_ms >= held_live.open_time_ms):
            series.held_live = live

    def _emit_closed(self, series: _Series, kline: Kline) -> Kline:
        series.last_closed_open_ms = kline.open_time_ms
        series.cursor_ms = series.after(kline.open_time_ms)
        return kline

    def _merge_rest(self, series: _Series, by_open: dict[int, Kline]) -> list[Kline]:
        cursor = series.cursor_ms
        answer = sorted(
            (kline for open_ms, kline in by_open.items() if cursor is None or open_ms >= cursor),
            key=lambda kline: kline.open_time_ms,
        )
        if not answer:
            return []
        horizon = answer[-1]
        merged = {
            open_ms: series.held_closed.pop(open_ms)
            for open_ms in [o for o in series.held_closed if o <= horizon.open_time_ms]
        }
        rest_closed = {kline.open_time_ms: kline for kline in answer if kline.closed}
        merged.update(rest_closed)
        emitted = [self._emit_closed(series, merged[open_ms]) for open_ms in sorted(merged)]
        self._backfilled += len(rest_closed)
        if not horizon.closed:
            # The bar in progress: every bar before it is emitted or does not exist.
            current = series.cursor_ms
            if current is None or horizon.open_time_ms > current:
                series.cursor_ms = horizon.open_time_ms
        return emitted + self._drain(series)

    def _drain(self, series: _Series) -> list[Kline]:
        """Release held klines that became contiguous with the cursor."""
        emitted: list[Kline] = []
        while series.cursor_ms in series.held_closed:
            emitted.append(self._emit_closed(series, series.held_closed.pop(series.cursor_ms)))
        cursor = series.cursor_ms
        if cursor is None:
            return emitted
        for open_ms in [o for o in series.held_closed if o < cursor]:
            del series.held_closed[open_ms]
            self._duplicates_dropped += 1
        live = series.held_live
        if series.held_closed or live is None:
            return emitted
        if live.open_time_ms < cursor:
            series.held_live = None
            self._stale_updates_dropped += 1
        elif series.is_next(live.open_time_ms):
            series.held_live = None
            emitted.append(live)
        return emitted
