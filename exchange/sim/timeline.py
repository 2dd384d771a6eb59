"""``MarketTimeline``: one market's simulated time, from price frames to matched orders.

The stream server's pump asks the timeline for the frames due up to a simulated time; the
timeline takes them from its ``SimMarketFeed`` and, before handing them out, gives every price
they carry to the matching engine (a ``Quote`` per kline update, a ``MarkTick`` per futures
mark price) and every user-data event the engine produced to the user-data hub. An order
resting at a price therefore fills in the same instant the market frame showing that price is
sent, and its execution report follows right behind it, as on Binance.

It also keeps the kline history (closed bars plus the bar in progress) that
``GET /api/v3/klines`` and ``/fapi/v1/klines`` answer from, and the last quote and mark price
of every symbol for the tickers. ``fast_forward`` moves time without matching anything: it
builds the history before the first client connects, and catches a restored simulator up to
where it stopped (its engines already hold the outcome of that stretch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from app.domain.market import Kline
from exchange.sim.market_feed import SimMarketFeed
from exchange.sim.matching import MarkTick, Quote

__all__ = ["DEFAULT_HISTORY_BARS", "MarketTimeline", "TickSink"]

DEFAULT_HISTORY_BARS: Final = 5_000


class TickSink(Protocol):
    """The matching side of a timeline (a spot or futures engine, or a stand-in in tests)."""

    def on_quote(self, quote: Quote, now_ms: int) -> None: ...

    def drain_events(self) -> list[dict[str, Any]]: ...


class _Series:
    """Closed bars of one symbol and interval, newest last, plus the bar in progress."""

    def __init__(self, limit: int) -> None:
        self.closed: deque[Kline] = deque(maxlen=limit)
        self.current: Kline | None = None

    def add(self, kline: Kline) -> None:
        if kline.closed:
            self.closed.append(kline)
            self.current = None
        else:
            self.current = kline


class MarketTimeline:
    def __init__(
        self,
        feed: SimMarketFeed,
        engine: TickSink,
        *,
        server_now_ms: Callable[[], int],
        publish: Callable[[list[dict[str, Any]]], None],
        on_mark: Callable[[MarkTick, int], None] | None = None,
        history_bars: int = DEFAULT_HISTORY_BARS,
    ) -> None:
        self._feed = feed
        self._engine = engine
        self._server_now_ms = server_now_ms
        self._publish = publish
        self._on_mark = on_mark
        self._history_bars = history_bars
        self._series: dict[tuple[str, str], _Series] = {}
        self.quotes: dict[str, Quote] = {}
        self.marks: dict[str, MarkTick] = {}
        self.frames_sent = 0

    @property
    def now_ms(self) -> int | None:
        """Simulated time reached so far (``None`` before the first step)."""
        return self._feed.now_ms

    def fast_forward(self, now_ms: int) -> None:
        """Move simulated time to ``now_ms`` keeping history and prices; the engine sees only
        the last quote and mark price of each symbol (the market as it is at ``now_ms``)."""
        if self._feed.now_ms is not None and now_ms <= self._feed.now_ms:
            return
        if self._feed.now_ms is None:
            for bar in self._feed.skip_until(now_ms):
                self._remember(bar)
        for item in self._feed.items_until(now_ms):
            if item.kline is not None:
                self._remember(item.kline)
            if isinstance(item.tick, Quote):
                self.quotes[item.tick.symbol] = item.tick
            elif isinstance(item.tick, MarkTick):
                self.marks[item.tick.symbol] = item.tick
        server_ms = self._server_now_ms()
        for quote in self.quotes.values():
            self._engine.on_quote(quote, server_ms)
        if self._on_mark is not None:
            for mark in self.marks.values():
                self._on_mark(mark, server_ms)
        events = self._engine.drain_events()
        if events:
            self._publish(events)

    def frames_until(self, now_ms: int) -> list[tuple[str, bytes]]:
        """The frames due up to ``now_ms``, after the engine has matched on their prices."""
        frames: list[tuple[str, bytes]] = []
        server_ms = self._server_now_ms()
        for item in self._feed.items_until(now_ms):
            if item.kline is not None:
                self._remember(item.kline)
            tick = item.tick
            if isinstance(tick, Quote):
                self.quotes[tick.symbol] = tick
                self._engine.on_quote(tick, server_ms)
            elif isinstance(tick, MarkTick):
                self.marks[tick.symbol] = tick
                if self._on_mark is not None:
                    self._on_mark(tick, server_ms)
            frames.append((item.stream, item.frame))
        events = self._engine.drain_events()
        if events:
            self._publish(events)
        self.frames_sent += len(frames)
        return frames

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> Sequence[Kline]:
        """Bars as ``GET klines`` returns them: oldest first, the bar in progress last.

        With only ``end_ms``, the newest ``limit`` bars opening at or before it; otherwise the
        first ``limit`` bars opening at or after ``start_ms``.
        """
        series = self._series.get((symbol, interval))
        if series is None:
            return []
        bars = [*series.closed, *([series.current] if series.current is not None else [])]
        chosen = [
            bar
            for bar in bars
            if (start_ms is None or bar.open_time_ms >= start_ms)
            and (end_ms is None or bar.open_time_ms <= end_ms)
        ]
        if start_ms is None:
            return chosen[-limit:]
        return chosen[:limit]

    def intervals(self, symbol: str) -> list[str]:
        return [interval for (name, interval) in self._series if name == symbol]

    def _remember(self, kline: Kline) -> None:
        key = (kline.symbol, kline.interval)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self._history_bars)
        series.add(kline)
