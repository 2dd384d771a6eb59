"""MarketStreams against a real Binance-shaped combined-stream server on 127.0.0.1.

The server records every connection (its ``streams=`` query) and sends what the test scripts;
REST is a plain async function that knows the bars. Every wait on time (backoff, staleness,
rotation) is on a ManualClock that the test advances; ``asyncio.timeout`` only bounds how long
a broken test can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from app.domain.clock import ManualClock
from app.domain.market import BookTicker, Kline
from app.errors import TransientError
from exchange.binance.parse_market import MarketFrame
from exchange.binance.stream_connection import FRAMES_PER_YIELD
from exchange.binance.streams import (
    FUTURES_LIMITS,
    SPOT_LIMITS,
    MarketStreams,
    StreamLimits,
    group_by_route,
    route_for,
)

MINUTE = 60_000
T0 = 1_700_000_040_000
BTC_1M = "btcusdt@kline_1m"
BTC_BOOK = "btcusdt@bookTicker"
WATCHDOG_S = 1.0
GUARD_S = 5.0  # real seconds a broken test may hang before failing


@dataclass(frozen=True)
class Close:
    code: int = 1000


@dataclass(eq=False)
class ServerConnection:
    """One accepted WebSocket: what the client asked for, and the test's script for it."""

    query_string: str
    streams: list[str]
    outbox: asyncio.Queue[str | bytes | Close] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    sent: int = 0  # frames written to the socket so far
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, *frames: str | bytes) -> None:
        for frame in frames:
            self.outbox.put_nowait(frame)

    async def wait_sent(self, count: int) -> None:
        async with asyncio.timeout(GUARD_S):
            while self.sent < count:
                self.progress.clear()
                await self.progress.wait()

    def close(self, code: int = 1000) -> None:
        self.outbox.put_nowait(Close(code))

    async def wait_closed(self) -> None:
        async with asyncio.timeout(GUARD_S):
            await self.closed.wait()


@dataclass
class StreamServer:
    base_url: str = ""
    connections: list[ServerConnection] = field(default_factory=list)
    arrivals: asyncio.Queue[ServerConnection] = field(default_factory=asyncio.Queue)

    async def next_connection(self) -> ServerConnection:
        async with asyncio.timeout(GUARD_S):
            return await self.arrivals.get()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = ServerConnection(request.query_string, request.query["streams"].split("/"))
        self.connections.append(conn)
        self.arrivals.put_nowait(conn)
        async with asyncio.TaskGroup() as tasks:
            sender = tasks.create_task(self._send(conn, ws))
            async for _ in ws:  # the client sends nothing; this ends at its close
                pass
            sender.cancel()
        conn.close_code = ws.close_code
        conn.closed.set()
        return ws

    async def _send(self, conn: ServerConnection, ws: web.WebSocketResponse) -> None:
        while True:
            item = await conn.outbox.get()
            if isinstance(item, Close):
                await ws.close(code=item.code)
                return
            if isinstance(item, bytes):
                await ws.send_bytes(item)
            else:
                await ws.send_str(item)
            conn.sent += 1
            conn.progress.set()


@pytest.fixture
async def server() -> AsyncIterator[StreamServer]:
    stream_server = StreamServer()
    app = web.Application()
    app.router.add_get("/stream", stream_server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stream_server.base_url = f"ws://127.0.0.1:{port}"
    try:
        yield stream_server
    finally:
        await runner.cleanup()


class SleepLog(ManualClock):
    """A ManualClock that reports every sleep other than the watchdog's tick (backoffs)."""

    def __init__(self, watchdog_s: float = WATCHDOG_S) -> None:
        super().__init__()
        self.watchdog_s = watchdog_s
        self.sleeps: asyncio.Queue[float] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        if seconds != self.watchdog_s:
            self.sleeps.put_nowait(seconds)
        await super().sleep(seconds)

    async def next_sleep(self) -> float:
        async with asyncio.timeout(GUARD_S):
            return await self.sleeps.get()


def kline_json(index: int, *, closed: bool = True, stream: str = BTC_1M) -> str:
    open_ms = T0 + index * MINUTE
    body = {
        "t": open_ms, "T": open_ms + MINUTE - 1, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 2,
        "o": "100.5", "c": "101", "h": "102", "l": "99", "v": "3", "n": 5, "x": closed,
        "q": "300", "V": "1", "Q": "100", "B": "0",
    }  # fmt: skip
    data = {"e": "kline", "E": open_ms + 1, "s": "BTCUSDT", "k": body}
    return json.dumps({"stream": stream, "data": data})


def book_json(update_id: int, stream: str = BTC_BOOK) -> str:
    data = {"u": update_id, "s": stream.split("@")[0].upper(), "b": "100", "B": "1"}
    return json.dumps({"stream": stream, "data": {**data, "a": "101", "A": "2"}})


def rest_kline(index: int, *, closed: bool = True) -> Kline:
    open_ms = T0 + index * MINUTE
    price = Decimal("101")
    return Kline(
        "BTCUSDT", "1m", open_ms, open_ms + MINUTE - 1, price, price, price, price,
        Decimal(3), Decimal(300), 5, closed,
    )  # fmt: skip


@dataclass
class Rest:
    """REST klines: bar indexes it knows as closed, and the bar in progress (if any)."""

    closed_upto: int = -1
    in_progress: bool = True
    page: int = 1000  # rows per answer, as Binance's `limit`
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    async def fetch(self, symbol: str, interval: str, start_ms: int) -> list[Kline]:
        self.calls.append((symbol, interval, start_ms))
        if self.failures:
            raise self.failures.pop(0)
        first = (start_ms - T0) // MINUTE
        rows = [rest_kline(i) for i in range(first, self.closed_upto + 1)]
        if self.in_progress:
            rows.append(rest_kline(self.closed_upto + 1, closed=False))
        return rows[: self.page]


@dataclass
class Downstream:
    frames: list[MarketFrame] = field(default_factory=list)
    arrived: asyncio.Queue[MarketFrame] = field(default_factory=asyncio.Queue)

    async def on_message(self, frame: MarketFrame) -> None:
        self.frames.append(frame)
        self.arrived.put_nowait(frame)

    async def wait_for(self, count: int) -> list[MarketFrame]:
        """The next `count` frames delivered."""
        async with asyncio.timeout(GUARD_S):
            return [await self.arrived.get() for _ in range(count)]

    def closed_bars(self) -> list[int]:
        return [
            (f.message.open_time_ms - T0) // MINUTE
            for f in self.frames
            if isinstance(f.message, Kline) and f.message.closed
        ]


def limits(**overrides: Any) -> StreamLimits:
    base = StreamLimits(
        max_streams_per_connection=10,
        max_control_messages_per_s=5,
        stale_after_s=1_000.0,
        max_age_s=10_000.0,
        backoff_initial_s=0.5,
        backoff_max_s=3.0,
        stable_after_s=50.0,
        watchdog_interval_s=WATCHDOG_S,
    )
    return replace(base, **overrides)


def feed(
    server: StreamServer,
    downstream: Downstream,
    clock: ManualClock,
    *,
    streams: list[str],
    rest: Rest | None = None,
    seed: int = 7,
    **limit_overrides: Any,
) -> MarketStreams:
    return MarketStreams(
        name="spot",
        base_url=server.base_url,
        streams=streams,
        clock=clock,
        on_message=downstream.on_message,
        fetch_klines=rest.fetch if rest is not None else None,
        limits=limits(**limit_overrides),
        rng=random.Random(seed),
    )


@contextlib.asynccontextmanager
async def running(streams: MarketStreams) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(streams.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def conn_stats(streams: MarketStreams, index: int = 0) -> dict[str, Any]:
    stats: dict[str, Any] = streams.snapshot()["connections"][index]
    return stats


# --- routing and limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "route"),
    [
        ("btcusdt@bookTicker", "public"),
        ("!bookTicker", "public"),
        ("btcusdt@depth", "public"),
        ("btcusdt@depth20@100ms", "public"),
        ("btcusdt@depth@500ms", "public"),
        ("btcusdt@kline_1m", "market"),
        ("btcusdt@markPrice@1s", "market"),
        ("btcusdt@aggTrade", "market"),
        ("!ticker@arr", "market"),
        ("!markPrice@arr@1s", "market"),
    ],
)
def test_futures_route_of_each_stream(stream: str, route: str) -> None:
    assert route_for(stream) == route


def test_group_by_route_keeps_order() -> None:
    streams = ["a@kline_1m", "a@bookTicker", "b@markPrice@1s", "b@bookTicker"]
    assert group_by_route(streams) == {
        "market": ["a@kline_1m", "b@markPrice@1s"],
        "public": ["a@bookTicker", "b@bookTicker"],
    }


def test_venue_limits() -> None:
    assert SPOT_LIMITS.max_streams_per_connection == 1024
    assert SPOT_LIMITS.max_control_messages_per_s == 5
    assert FUTURES_LIMITS.max_streams_per_connection == 200
    assert FUTURES_LIMITS.max_control_messages_per_s == 10
    assert SPOT_LIMITS.max_age_s == 23 * 3600 < 24 * 3600
    with pytest.raises(ValueError, match="backoff_max_s"):
        replace(SPOT_LIMITS, backoff_max_s=0.1)
    with pytest.raises(ValueError, match="positive"):
        replace(SPOT_LIMITS, stale_after_s=0)


# --- connections --------------------------------------------------------------------------


async def test_streams_are_split_into_connections_by_the_limit(server: StreamServer) -> None:
    names = [f"s{i}usdt@kline_1m" for i in range(5)]
    streams = feed(server, Downstream(), ManualClock(), streams=names, max_streams_per_connection=2)
    async with running(streams):
        arrived = [await server.next_connection() for _ in range(3)]
        queries = sorted(conn.query_string for conn in arrived)
        assert queries == [
            "streams=s0usdt@kline_1m/s1usdt@kline_1m",
            "streams=s2usdt@kline_1m/s3usdt@kline_1m",
            "streams=s4usdt@kline_1m",
        ]
        assert [c["streams"] for c in streams.snapshot()["connections"]] == [2, 2, 1]
        assert [c.name for c in streams.connections] == ["spot-0", "spot-1", "spot-2"]


async def test_frames_in_order_malformed_counted_and_feed_goes_on(server: StreamServer) -> None:
    downstream = Downstream()
    streams = feed(server, downstream, ManualClock(), streams=[BTC_1M, BTC_BOOK])
    async with running(streams):
        conn = await server.next_connection()
        conn.send(
            kline_json(0, closed=False),
            b"\x00\xffnot json at all",
            '{"stream":"btcusdt@kline_1m","data":{"e":"kli',
            book_json(1),
            '{"result":null,"id":1}',
            '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT"}}',
            kline_json(0),
            book_json(2),
        )
        frames = await downstream.wait_for(4)
        assert [type(f.message) for f in frames] == [Kline, BookTicker, Kline, BookTicker]
        assert [f.stream for f in frames] == [BTC_1M, BTC_BOOK, BTC_1M, BTC_BOOK]
        assert [getattr(f.message, "closed", None) for f in frames] == [False, None, True, None]
        stats = conn_stats(streams)
        assert stats["frames"] == 8
        assert stats["malformed"] == 2
        assert stats["control_replies"] == 1
        assert stats["unknown_events"] == 1
        assert stats["reconnects"] == 0
        assert stats["connected"] is True
        json.dumps(streams.snapshot())


async def test_malformed_frames_are_logged_at_a_limited_rate(server: StreamServer) -> None:
    downstream = Downstream()
    streams = feed(server, downstream, ManualClock(), streams=[BTC_BOOK])
    with capture_logs() as logs:
        async with running(streams):
            conn = await server.next_connection()
            conn.send(*[b"garbage"] * 25, book_json(1))
            await downstream.wait_for(1)
    malformed = [entry for entry in logs if entry["event"] == "market_frame_malformed"]
    assert len(malformed) == 10
    assert malformed[0]["connection"] == "spot-0"
    assert conn_stats(streams)["malformed"] == 25


async def test_a_burst_of_buffered_frames_lets_other_tasks_run(server: StreamServer) -> None:
    burst = 1_000
    gate = asyncio.Event()
    delivered = 0

    async def on_message(frame: MarketFrame) -> None:
        nonlocal delivered
        delivered += 1
        if delivered == 1:
            # Hold the reader until the whole burst is on the socket: aiohttp then has all
            # of it buffered, and could hand it out without ever suspending the reader.
            await gate.wait()

    streams = MarketStreams(
        name="spot", base_url=server.base_url, streams=[BTC_BOOK], clock=ManualClock(),
        on_message=on_message, fetch_klines=None, limits=limits(),
    )  # fmt: skip
    async with running(streams):
        conn = await server.next_connection()
        conn.send(*(book_json(update_id) for update_id in range(burst)))
        await conn.wait_sent(burst)
        gate.set()
        # This test task is the "other task": record how far the reader was each time it ran.
        seen = [delivered]
        async with asyncio.timeout(GUARD_S):
            while delivered < burst:
                await asyncio.sleep(0)
                seen.append(delivered)
    assert any(1 < count < burst for count in seen), seen
    assert max(later - earlier for earlier, later in itertools.pairwise(seen)) <= FRAMES_PER_YIELD


async def test_a_closed_kline_lets_what_it_woke_run_before_the_next_frame(
    server: StreamServer,
) -> None:
    """A bar close starts the signal → order chain: it must not wait behind the rest of the
    bar-close burst (tick-to-trade), even when aiohttp has the whole burst buffered."""
    bars, books_between = 20, 3
    frames = [book_json(1)]
    for index in range(bars):
        frames += [
            kline_json(index),
            *(book_json(index * 10 + n + 2) for n in range(books_between)),
        ]
    gate, bar_closed = asyncio.Event(), asyncio.Event()
    delivered, at_close, seen_by_waiter = 0, 0, []

    async def on_message(frame: MarketFrame) -> None:
        nonlocal delivered, at_close
        delivered += 1
        if delivered == 1:
            await gate.wait()  # hold the reader until the whole burst is buffered
        if isinstance(frame.message, Kline) and frame.message.closed:
            at_close = delivered
            bar_closed.set()

    async def strategy() -> None:
        while len(seen_by_waiter) < bars:
            await bar_closed.wait()
            bar_closed.clear()
            seen_by_waiter.append((at_close, delivered))

    streams = MarketStreams(
        name="spot", base_url=server.base_url, streams=[BTC_1M, BTC_BOOK], clock=ManualClock(),
        on_message=on_message, fetch_klines=None, limits=limits(),
    )  # fmt: skip
    async with running(streams), asyncio.TaskGroup() as group:
        waiter = group.create_task(strategy())
        conn = await server.next_connection()
        conn.send(*frames)
        await conn.wait_sent(len(frames))
        gate.set()
        async with asyncio.timeout(GUARD_S):
            await waiter
    assert len(seen_by_waiter) == bars
    # Each time, the woken task ran while the reader still stood on the closed kline.
    assert all(closed_at == now for closed_at, now in seen_by_waiter), seen_by_waiter


async def test_server_close_reconnects_with_growing_jittered_backoff_then_backfills(
    server: StreamServer,
) -> None:
    downstream = Downstream()
    clock = SleepLog(watchdog_s=10_000.0)  # the watchdog stays asleep: only backoffs wake
    rest = Rest()
    streams = feed(
        server, downstream, clock, streams=[BTC_1M], rest=rest, seed=3,
        watchdog_interval_s=10_000.0,
    )  # fmt: skip
    twin = random.Random(3)  # the same draws as the feed's own generator
    async with running(streams):
        conn = await server.next_connection()
        conn.send(kline_json(0), kline_json(1), kline_json(2, closed=False))
        await downstream.wait_for(3)
        rest.closed_upto = 4  # bars 2..4 close while the client is away
        conn.close()
        # Four failed sessions in a row: ceilings 0.5, 1, 2, then the 3 s cap.
        for ceiling in (0.5, 1.0, 2.0, 3.0):
            delay = await clock.next_sleep()
            assert delay == twin.uniform(0.0, ceiling)
            assert delay <= ceiling <= 3.0
            assert conn_stats(streams)["last_backoff_s"] == delay
            clock.advance(delay / 2)
            assert clock.sleeper_count == 2  # still waiting: the watchdog and the backoff
            clock.advance(delay)
            conn = await server.next_connection()
            if ceiling < 3.0:
                conn.close()
        # The fifth session stays. Bars 2..4, missed while away, came from REST on the first
        # reconnect; later reconnects asked again from bar 5, the one in progress.
        conn.send(kline_json(4), kline_json(5, closed=False), kline_json(5))
        await downstream.wait_for(5)
        # A session that lived stable_after_s resets the backoff to its first step.
        clock.advance(60.0)
        conn.close()
        assert await clock.next_sleep() == twin.uniform(0.0, 0.5)
    assert downstream.closed_bars() == [0, 1, 2, 3, 4, 5]
    assert [call[2] for call in rest.calls] == [T0 + 2 * MINUTE] + [T0 + 5 * MINUTE] * 3
    assert conn_stats(streams)["reconnects"] == 5
    assert streams.sequencer.duplicates_dropped == 1


async def test_a_gap_in_the_stream_is_filled_before_anything_newer(server: StreamServer) -> None:
    downstream = Downstream()
    rest = Rest(closed_upto=5, page=2)  # REST answers two rows at a time
    streams = feed(server, downstream, ManualClock(), streams=[BTC_1M, BTC_BOOK], rest=rest)
    async with running(streams):
        conn = await server.next_connection()
        conn.send(kline_json(0), kline_json(5), book_json(1), kline_json(6, closed=False))
        await downstream.wait_for(8)
    kinds = [
        f"bar{(f.message.open_time_ms - T0) // MINUTE}" if isinstance(f.message, Kline) else "book"
        for f in downstream.frames
    ]
    assert kinds == ["bar0", "bar1", "bar2", "bar3", "bar4", "bar5", "book", "bar6"]
    # Pages from bar 1 and bar 3 fill the gap; the one from bar 6 finds only the open bar.
    assert [call[2] for call in rest.calls] == [T0 + MINUTE, T0 + 3 * MINUTE, T0 + 6 * MINUTE]
    assert conn_stats(streams)["reconnects"] == 0
    assert streams.sequencer.backfilled == 4


async def test_failed_backfill_reconnects_with_backoff_and_never_skips(
    server: StreamServer,
) -> None:
    downstream = Downstream()
    clock = SleepLog()
    rest = Rest(closed_upto=2, failures=[TransientError("busy", http_status=503)])
    streams = feed(server, downstream, clock, streams=[BTC_1M, BTC_BOOK], rest=rest)
    async with running(streams):
        first = await server.next_connection()
        first.send(kline_json(0), kline_json(2), book_json(1))
        await downstream.wait_for(1)
        delay = await clock.next_sleep()  # the backfill failed: the session ended
        await first.wait_closed()
        assert conn_stats(streams)["backfill_failures"] == 1
        assert "busy" in conn_stats(streams)["last_error"]
        assert downstream.closed_bars() == [0]  # nothing delivered past the gap
        clock.advance(delay)
        second = await server.next_connection()
        await downstream.wait_for(2)
        second.send(book_json(2))
        await downstream.wait_for(1)
    assert downstream.closed_bars() == [0, 1, 2]
    assert [type(f.message) for f in downstream.frames][-1] is BookTicker


async def test_without_rest_a_gap_is_skipped_and_counted(server: StreamServer) -> None:
    downstream = Downstream()
    streams = feed(server, downstream, ManualClock(), streams=[BTC_1M])
    async with running(streams):
        conn = await server.next_connection()
        conn.send(kline_json(0), kline_json(3))
        await downstream.wait_for(2)
    assert downstream.closed_bars() == [0, 3]
    assert streams.snapshot()["sequencer"]["gaps_skipped"] == 1


async def test_server_shutdown_reconnects_at_once(server: StreamServer) -> None:
    downstream = Downstream()
    clock = SleepLog()
    streams = feed(server, downstream, clock, streams=[BTC_BOOK])
    async with running(streams):
        first = await server.next_connection()
        first.send(book_json(1), '{"e":"serverShutdown","E":1700000000000}')
        second = await server.next_connection()  # no clock advance needed
        await first.wait_closed()
        second.send(book_json(2))
        await downstream.wait_for(2)
        stats = conn_stats(streams)
        assert stats["server_shutdowns"] == 1
        assert stats["last_backoff_s"] == 0
        assert clock.sleeps.empty()
        assert first.close_code == 1000


async def test_a_silent_stream_makes_its_connection_reconnect(server: StreamServer) -> None:
    downstream = Downstream()
    clock = SleepLog()
    eth_book = "ethusdt@bookTicker"
    streams = feed(
        server, downstream, clock, streams=[BTC_BOOK, eth_book], stale_after_s=10.0,
        stable_after_s=5.0,
    )  # fmt: skip
    with capture_logs() as logs:
        async with running(streams):
            first = await server.next_connection()
            first.send(book_json(1), book_json(2, eth_book))
            await downstream.wait_for(2)
            clock.advance(6.0)  # the watchdog looks: nothing is 10 s old yet
            first.send(book_json(3, eth_book))
            await downstream.wait_for(1)
            await clock.wait_for_sleepers(1)  # the watchdog sleeps again
            clock.advance(6.0)  # btc silent for 12 s, eth for 6 s
            assert streams.stale_streams() == [BTC_BOOK]
            await first.wait_closed()
            delay = await clock.next_sleep()
            assert delay <= 0.5  # the connection lived past stable_after_s: backoff reset
            clock.advance(delay)
            second = await server.next_connection()
            second.send(book_json(4))
            await downstream.wait_for(1)
            assert conn_stats(streams)["stale_reconnects"] == 1
            assert streams.stale_streams() == []
    stale = [entry for entry in logs if entry["event"] == "market_stream_stale"]
    assert [entry["streams"] for entry in stale] == [[BTC_BOOK]]


async def test_rotation_at_max_age_loses_no_closed_kline(server: StreamServer) -> None:
    downstream = Downstream()
    clock = SleepLog()
    rest = Rest()
    streams = feed(server, downstream, clock, streams=[BTC_1M], rest=rest, max_age_s=100.0)
    async with running(streams):
        first = await server.next_connection()
        first.send(kline_json(0), kline_json(1))
        await downstream.wait_for(2)
        rest.closed_upto = 2  # bar 2 closes while the connection is being replaced
        await clock.wait_for_sleepers(1)
        clock.advance(100.0)
        second = await server.next_connection()  # at once: no backoff for a rotation
        await first.wait_closed()
        second.send(kline_json(2), kline_json(3))
        await downstream.wait_for(2)
        stats = conn_stats(streams)
        assert stats["rotations"] == 1
        assert stats["last_backoff_s"] == 0
        assert stats["connected_since_ms"] == clock.now_ms()
    assert downstream.closed_bars() == [0, 1, 2, 3]
    assert rest.calls == [("BTCUSDT", "1m", T0 + 2 * MINUTE)]


async def test_an_on_message_failure_propagates_out_of_run(server: StreamServer) -> None:
    async def broken(frame: MarketFrame) -> None:
        raise RuntimeError("downstream bug")

    streams = MarketStreams(
        name="spot",
        base_url=server.base_url,
        streams=[BTC_BOOK, "ethusdt@bookTicker"],
        clock=ManualClock(),
        on_message=broken,
        fetch_klines=None,
        limits=limits(max_streams_per_connection=1),
    )
    task = asyncio.create_task(streams.run())
    first, second = await server.next_connection(), await server.next_connection()
    first.send(book_json(1))
    with pytest.raises(RuntimeError, match="downstream bug"):
        async with asyncio.timeout(GUARD_S):
            await task
    await first.wait_closed()
    await second.wait_closed()


async def test_cancelling_run_closes_every_connection_cleanly(server: StreamServer) -> None:
    names = [f"s{i}usdt@bookTicker" for i in range(3)]
    downstream = Downstream()
    streams = feed(server, downstream, ManualClock(), streams=names, max_streams_per_connection=1)
    task = asyncio.create_task(streams.run())
    arrived = [await server.next_connection() for _ in range(3)]
    for index, conn in enumerate(arrived):
        conn.send(book_json(index, conn.streams[0]))
    await downstream.wait_for(3)  # every client side is connected and reading
    assert all(c["connected"] for c in streams.snapshot()["connections"])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for conn in arrived:
        await conn.wait_closed()
        assert conn.close_code == 1000
    ours = {"spot-0", "spot-1", "spot-2", "spot-watchdog"}
    assert not [t for t in asyncio.all_tasks() if t.get_name() in ours]
    assert all(not c["connected"] for c in streams.snapshot()["connections"])


async def test_an_unreachable_server_is_retried_forever() -> None:
    clock = SleepLog()
    streams = MarketStreams(
        name="spot",
        base_url="ws://127.0.0.1:9",  # discard port: nothing listens, the connect is refused
        streams=[BTC_BOOK],
        clock=clock,
        on_message=Downstream().on_message,
        fetch_klines=None,
        limits=limits(),
        rng=random.Random(1),
    )
    async with running(streams):
        for _ in range(3):
            clock.advance(await clock.next_sleep())
        stats = conn_stats(streams)
        assert stats["reconnects"] >= 3
        assert "connect failed" in stats["last_error"]
        assert stats["connected"] is False
