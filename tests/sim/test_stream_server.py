"""The simulator's stream server on 127.0.0.1, read by the project's real ``MarketStreams``.

The server's time is a ManualClock the test advances (or the "as fast as possible" mode); the
client has a ManualClock of its own for its backoff and watchdog. What the client receives is
compared with what a second feed with the same seed produces, decoded by the client's parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from app.domain.clock import ManualClock
from app.domain.market import Kline
from exchange.binance.parse_market import MarketFrame, MarketMessage, decode_market_frame
from exchange.binance.streams import FUTURES_LIMITS, SPOT_LIMITS, MarketStreams, StreamLimits
from exchange.sim.market_feed import SimMarketFeed, SymbolMarket
from exchange.sim.stream_server import AS_FAST_AS_POSSIBLE, SimStreamServer
from exchange.sim.synthetic import SyntheticMarket

MINUTE = 60_000
T0 = 1_700_000_040_000
TICK = Decimal("0.1")
UPDATES = 4
BTC_1M, BTC_BOOK, BTC_MARK = "btcusdt@kline_1m", "btcusdt@bookTicker", "btcusdt@markPrice@1s"
GUARD_S = 5.0  # real seconds a broken test may hang before failing


def market() -> SyntheticMarket:
    return SyntheticMarket(
        "BTCUSDT", seed=11, start_price=Decimal(30_000), tick_size=TICK, start_ms=T0
    )


def make_feed(*, futures: bool) -> SimMarketFeed:
    return SimMarketFeed(
        {"BTCUSDT": market()},
        {"BTCUSDT": SymbolMarket(TICK, futures=futures)},
        seed=4,
        updates_per_bar=UPDATES,
    )


def expected(futures: bool, until_ms: int, streams: Iterable[str]) -> list[MarketMessage]:
    """What a client subscribed to ``streams`` should see up to ``until_ms``, in order: the
    frames due at T0 go out as the server starts, before any client is connected."""
    wanted = set(streams)
    feed = make_feed(futures=futures)
    feed.frames_until(T0)
    frames = feed.frames_until(until_ms)
    return [decode_market_frame(frame).message for name, frame in frames if name in wanted]


@dataclass
class Sim:
    server: SimStreamServer
    clock: ManualClock
    base_url: str

    async def advance(self, seconds: float) -> None:
        """Move server time once the pump is asleep (so the move is seen in one round)."""
        async with asyncio.timeout(GUARD_S):
            await self.clock.wait_for_sleepers(1)
        self.clock.advance(seconds)

    async def wait_for_connections(self, count: int) -> None:
        async with asyncio.timeout(GUARD_S):
            await self.server.wait_for_connections(count)


@contextlib.asynccontextmanager
async def serving(
    *, futures: bool = False, speed: float | None = 1.0, prefix: str = ""
) -> AsyncIterator[Sim]:
    clock = ManualClock(start_ms=T0)
    server = SimStreamServer(make_feed(futures=futures), clock=clock, speed=speed)
    app = web.Application()
    server.add_routes(app, prefix)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with asyncio.TaskGroup() as tasks:
        pump = tasks.create_task(server.run())
        try:
            yield Sim(server, clock, f"ws://127.0.0.1:{port}{prefix}")
        finally:
            pump.cancel()
            await runner.cleanup()


@dataclass
class Downstream:
    frames: list[MarketFrame] = field(default_factory=list)
    arrived: asyncio.Queue[MarketFrame] = field(default_factory=asyncio.Queue)

    async def on_message(self, frame: MarketFrame) -> None:
        self.frames.append(frame)
        self.arrived.put_nowait(frame)

    async def wait_for(self, count: int) -> list[MarketMessage]:
        async with asyncio.timeout(GUARD_S):
            return [(await self.arrived.get()).message for _ in range(count)]

    def closed_bars(self) -> list[int]:
        return [
            (f.message.open_time_ms - T0) // MINUTE
            for f in self.frames
            if isinstance(f.message, Kline) and f.message.closed
        ]


@dataclass
class FakeRest:
    """REST klines from the same synthetic market: the bars closed by server time."""

    sim: Sim
    calls: list[int] = field(default_factory=list)

    async def fetch(self, symbol: str, interval: str, start_ms: int) -> list[Kline]:
        self.calls.append(start_ms)
        source, bars = market(), []
        while (bar := source.next_bar()).close_time_ms < self.sim.clock.now_ms():
            if bar.open_time_ms >= start_ms:
                bars.append(bar)
        return bars


@contextlib.asynccontextmanager
async def client(
    sim: Sim,
    streams: list[str],
    downstream: Downstream,
    clock: ManualClock,
    *,
    limits: StreamLimits = SPOT_LIMITS,
    rest: FakeRest | None = None,
) -> AsyncIterator[MarketStreams]:
    feed = MarketStreams(
        name="sim",
        base_url=sim.base_url,
        streams=streams,
        clock=clock,
        on_message=downstream.on_message,
        fetch_klines=rest.fetch if rest is not None else None,
        limits=limits,
        rng=random.Random(1),
    )
    task = asyncio.create_task(feed.run())
    try:
        yield feed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_spot_client_gets_klines_and_book_tickers_in_order() -> None:
    downstream = Downstream()
    async with serving() as sim, client(sim, [BTC_1M, BTC_BOOK], downstream, ManualClock()):
        await sim.wait_for_connections(1)
        await sim.advance(180)
        want = expected(False, T0 + 3 * MINUTE, [BTC_1M, BTC_BOOK])
        assert len(want) == 3 * UPDATES * 2
        assert await downstream.wait_for(len(want)) == want
    assert downstream.closed_bars() == [0, 1, 2]
    assert {f.stream for f in downstream.frames} == {BTC_1M, BTC_BOOK}


async def test_futures_client_gets_mark_prices_every_second() -> None:
    downstream = Downstream()
    streams = [BTC_1M, BTC_MARK]
    async with (
        serving(futures=True, prefix="/market") as sim,
        client(sim, streams, downstream, ManualClock(), limits=FUTURES_LIMITS),
    ):
        await sim.wait_for_connections(1)
        await sim.advance(60)
        want = expected(True, T0 + MINUTE, streams)
        assert len(want) == UPDATES + 60  # marks at every second after T0 up to T0 + 60 s
        assert await downstream.wait_for(len(want)) == want
    assert downstream.closed_bars() == [0]


async def test_after_drop_all_the_client_reconnects_and_backfills_every_closed_bar() -> None:
    downstream = Downstream()
    client_clock = ManualClock()
    async with serving() as sim:
        rest = FakeRest(sim)
        async with client(sim, [BTC_1M], downstream, client_clock, rest=rest) as feed:
            await sim.wait_for_connections(1)
            await sim.advance(120)
            await downstream.wait_for(2 * UPDATES)
            sim.server.drop_all()
            await sim.wait_for_connections(0)
            await sim.advance(120)  # bars 2 and 3 close while nobody listens
            async with asyncio.timeout(GUARD_S):
                await client_clock.wait_for_sleepers(2)  # the watchdog and the backoff
            client_clock.advance(SPOT_LIMITS.backoff_initial_s)
            await sim.wait_for_connections(1)
            await downstream.wait_for(2)  # bars 2 and 3, from REST
            await sim.advance(60)
            await downstream.wait_for(UPDATES)
            stats = feed.snapshot()["connections"][0]
            assert stats["reconnects"] == 1
    assert downstream.closed_bars() == [0, 1, 2, 3, 4]
    assert rest.calls[0] == T0 + 2 * MINUTE
    assert sim.server.accepted == 2


async def test_server_shutdown_makes_the_client_reconnect_at_once() -> None:
    downstream = Downstream()
    async with serving() as sim, client(sim, [BTC_BOOK], downstream, ManualClock()) as feed:
        await sim.wait_for_connections(1)
        await sim.server.send_server_shutdown()
        async with asyncio.timeout(GUARD_S):
            await sim.server.wait_for_accepted(2)  # no client clock advance needed
        await sim.wait_for_connections(1)
        await sim.advance(60)
        assert await downstream.wait_for(UPDATES) == expected(False, T0 + MINUTE, [BTC_BOOK])
        assert feed.snapshot()["connections"][0]["server_shutdowns"] == 1


async def test_stall_holds_frames_back_then_releases_them() -> None:
    downstream = Downstream()
    async with serving() as sim, client(sim, [BTC_1M], downstream, ManualClock()):
        await sim.wait_for_connections(1)
        sim.server.stall(30)
        await sim.advance(10)
        await sim.advance(0)  # the pump is asleep again, still stalled: nothing went out
        assert sim.server.sim_now_ms == T0
        sim.clock.advance(20)
        messages = await downstream.wait_for(2)  # the updates at 15 s and 30 s
        assert messages == expected(False, T0 + 30_000, [BTC_1M])


async def test_a_burst_of_frames_lets_other_tasks_run_between_frames() -> None:
    """An exchange takes orders while it fans market data out: a bar-close burst must not hold
    the simulator's loop (and so its order gateway) until the last frame is written."""
    sent = 0
    sent_when_other_task_ran: list[int] = []

    def on_frame_sent(text: str) -> None:
        nonlocal sent
        sent += 1
        if sent == 1:
            asyncio.get_running_loop().call_soon(lambda: sent_when_other_task_ran.append(sent))

    async with serving() as sim, aiohttp.ClientSession() as session:
        sim.server.on_frame_sent = on_frame_sent
        ws = await session.ws_connect(f"{sim.base_url}/stream?streams={BTC_1M}/{BTC_BOOK}")
        await sim.wait_for_connections(1)
        await sim.advance(10 * 60)  # ten minutes at once: 80 frames queued together
        async with asyncio.timeout(GUARD_S):
            for _ in range(80):
                await ws.receive_str()
        await ws.close()
    assert sent_when_other_task_ran, "the other task never ran"
    assert sent_when_other_task_ran[0] <= 2


async def test_as_fast_as_possible_needs_no_clock() -> None:
    downstream = Downstream()
    async with (
        serving(speed=AS_FAST_AS_POSSIBLE) as sim,
        client(sim, [BTC_1M], downstream, ManualClock()),
    ):
        messages = await downstream.wait_for(5 * UPDATES)
    assert messages == expected(False, T0 + 5 * MINUTE, [BTC_1M])
    assert downstream.closed_bars()[:5] == [0, 1, 2, 3, 4]


async def test_control_messages_and_raw_streams() -> None:
    async with serving() as sim, aiohttp.ClientSession() as session:
        combined = await session.ws_connect(f"{sim.base_url}/stream?streams={BTC_1M}")
        raw = await session.ws_connect(f"{sim.base_url}/ws/{BTC_BOOK}")
        await sim.wait_for_connections(2)
        requests = [
            {"method": "SUBSCRIBE", "params": [BTC_BOOK, "nosuch@trade"], "id": 1},
            {"method": "LIST_SUBSCRIPTIONS", "id": 2},
            {"method": "UNSUBSCRIBE", "params": [BTC_1M], "id": 3},
            {"method": "LIST_SUBSCRIPTIONS", "id": 4},
            {"method": "DANCE", "id": 5},
        ]
        for request in requests:
            await combined.send_json(request)
        await combined.send_str("{not json")
        async with asyncio.timeout(GUARD_S):
            replies = [await combined.receive_json() for _ in range(6)]
        assert replies[:4] == [
            {"result": None, "id": 1},
            {"result": [BTC_1M, BTC_BOOK, "nosuch@trade"], "id": 2},
            {"result": None, "id": 3},
            {"result": [BTC_BOOK, "nosuch@trade"], "id": 4},
        ]
        assert replies[4]["id"] == 5
        assert replies[4]["error"]["code"] == 2
        assert replies[5]["error"]["code"] == 3
        await sim.advance(15)  # the first update of bar 0
        async with asyncio.timeout(GUARD_S):
            envelope = await combined.receive_json()
            bare = await raw.receive_str()
        assert envelope["stream"] == BTC_BOOK
        assert "stream" not in json.loads(bare)
        assert json.loads(bare) == envelope["data"]
        frame = decode_market_frame(bare)
        assert frame.stream == BTC_BOOK
        assert [frame.message] == expected(False, T0 + 15_000, [BTC_BOOK])
        await combined.close()
        await raw.close()


@pytest.mark.parametrize(("count", "refused"), [(1024, False), (1025, True)])
async def test_at_most_1024_streams_per_connection(count: int, refused: bool) -> None:
    names = "/".join(f"{index}" for index in range(count))
    async with serving() as sim, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{sim.base_url}/stream?streams={names}")
        if refused:
            async with asyncio.timeout(GUARD_S):
                message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1008
            await sim.wait_for_connections(0)
        else:
            await sim.wait_for_connections(1)
            await ws.send_json({"method": "SUBSCRIBE", "params": ["one@more"], "id": 7})
            async with asyncio.timeout(GUARD_S):
                reply = await ws.receive_json()
            assert reply["error"]["code"] == 2
        await ws.close()
