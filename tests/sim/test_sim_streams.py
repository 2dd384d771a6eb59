"""The project's ``MarketStreams`` reading the running simulator's market streams.

Market time (speed None) runs only while a stream client reads, so connecting the feed is
what moves the market; the decoded frames (``MarketFrame``) are what the daemon publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal

from app.domain import OrderStatus, OrderType, Side, SubmitOrder
from app.domain.clock import ManualClock
from app.domain.enums import TimeInForce
from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance.parse_market import MarketFrame, MarketMessage
from exchange.binance.streams import FUTURES_LIMITS, SPOT_LIMITS, MarketStreams, StreamLimits
from exchange.sim.server import SimExchange
from tests.sim.harness import START_MS, running_sim, spot_client

GUARD_S = 10.0  # real seconds a broken test may hang before failing


class Recorder:
    def __init__(self) -> None:
        self.messages: list[MarketMessage] = []
        self._changed = asyncio.Condition()

    async def on_message(self, frame: MarketFrame) -> None:
        async with self._changed:
            self.messages.append(frame.message)
            self._changed.notify_all()

    async def wait(self, done: Callable[[list[MarketMessage]], bool]) -> None:
        async with asyncio.timeout(GUARD_S), self._changed:
            await self._changed.wait_for(lambda: done(self.messages))

    def of(self, kind: type[MarketMessage]) -> list[MarketMessage]:
        return [m for m in self.messages if isinstance(m, kind)]


@contextlib.asynccontextmanager
async def feeding(
    base_url: str, streams: Sequence[str], recorder: Recorder, limits: StreamLimits
) -> AsyncIterator[None]:
    feed = MarketStreams(
        name="sim-test",
        base_url=base_url,
        streams=streams,
        clock=ManualClock(START_MS),
        on_message=recorder.on_message,
        fetch_klines=None,
        limits=limits,
    )
    async with asyncio.TaskGroup() as group:
        task = group.create_task(feed.run())
        try:
            yield
        finally:
            task.cancel()


def _klines(messages: list[MarketMessage]) -> list[Kline]:
    return [m for m in messages if isinstance(m, Kline)]


def _has_closed(count: int) -> Callable[[list[MarketMessage]], bool]:
    return lambda messages: sum(k.closed for k in _klines(messages)) >= count


def _check_klines(klines: list[Kline], symbol: str) -> None:
    assert {k.symbol for k in klines} == {symbol}
    assert {k.interval for k in klines} == {"1m"}
    closed = [k for k in klines if k.closed]
    intrabar = [k for k in klines if not k.closed]
    assert closed
    assert intrabar
    opens = [k.open_time_ms for k in closed]
    assert all(b - a == 60_000 for a, b in itertools.pairwise(opens))
    for bar in closed:
        updates = [k for k in intrabar if k.open_time_ms == bar.open_time_ms]
        assert updates, "every closed bar was preceded by intrabar updates"
        assert bar.open == updates[0].open
        assert bar.high >= max(u.high for u in updates)
        assert bar.close_time_ms == bar.open_time_ms + 59_999


async def test_spot_klines_and_book_tickers_reach_the_daemon_decoded() -> None:
    clock = ManualClock(START_MS)
    recorder = Recorder()
    async with running_sim(clock=clock) as sim:
        streams = ["btcusdt@kline_1m", "btcusdt@bookTicker", "ethusdt@bookTicker"]
        async with feeding(sim.endpoints.spot_streams, streams, recorder, SPOT_LIMITS):
            await recorder.wait(_has_closed(3))
    _check_klines(_klines(recorder.messages), "BTCUSDT")
    books = [m for m in recorder.messages if isinstance(m, BookTicker)]
    assert {b.symbol for b in books} == {"BTCUSDT", "ETHUSDT"}
    assert all(b.ask_price > b.bid_price for b in books)
    assert not [m for m in recorder.messages if isinstance(m, MarkPrice)]


async def test_futures_routes_carry_klines_book_tickers_and_mark_prices() -> None:
    clock = ManualClock(START_MS)
    market, public = Recorder(), Recorder()
    async with running_sim(clock=clock) as sim:
        endpoints = sim.endpoints
        market_streams = ["btcusdt@kline_1m", "btcusdt@markPrice@1s"]
        async with (
            feeding(endpoints.futures_market, market_streams, market, FUTURES_LIMITS),
            feeding(endpoints.futures_public, ["btcusdt@bookTicker"], public, FUTURES_LIMITS),
        ):
            await market.wait(_has_closed(2))
            await public.wait(lambda messages: len(messages) >= 4)
    _check_klines(_klines(market.messages), "BTCUSDT")
    marks = [m for m in market.messages if isinstance(m, MarkPrice)]
    assert marks
    assert all(m.symbol == "BTCUSDT" and m.mark_price > 0 for m in marks)
    assert all(m.next_funding_time_ms > m.ts_ms for m in marks)
    books = [m for m in public.messages if isinstance(m, BookTicker)]
    assert books
    assert all(b.ask_price - b.bid_price >= Decimal("0.10") for b in books)
    assert all(b.update_id > 0 for b in books)


async def _resting_fill(sim: SimExchange, clock: ManualClock) -> None:
    """Rest a buy just under and a sell just over the book; the moving market fills one."""
    async with spot_client(sim, clock) as client:
        await client.place_order(
            SubmitOrder(
                "seed", "s", "BTCUSDT", Side.BUY, OrderType.MARKET, Decimal("0.01"), START_MS
            )
        )
        (book,) = await client.book_tickers("BTCUSDT")
        for cid, side, price in (
            ("low", Side.BUY, book.bid_price - 5),
            ("high", Side.SELL, book.ask_price + 5),
        ):
            update, fills = await client.place_order(
                SubmitOrder(
                    cid,
                    "s",
                    "BTCUSDT",
                    side,
                    OrderType.LIMIT,
                    Decimal("0.001"),
                    START_MS,
                    price=price,
                    time_in_force=TimeInForce.GTC,
                )
            )
            assert update.status is OrderStatus.NEW
            assert fills == ()
        events: list[dict[str, object]] = []
        filled = asyncio.Event()

        def listen(event: dict[str, object]) -> None:
            events.append(event)
            if event.get("X") == "FILLED":
                filled.set()

        sim.spot.hub.subscribe(listen)
        recorder = Recorder()
        async with feeding(sim.endpoints.spot_streams, ["btcusdt@kline_1m"], recorder, SPOT_LIMITS):
            async with asyncio.timeout(GUARD_S):
                await filled.wait()
            (report,) = [e for e in events if e.get("X") == "FILLED"]
            cid = str(report["c"])
            limit = Decimal(str(report["p"]))

            def crossed(messages: list[MarketMessage]) -> bool:
                # The frame showing the price the order filled at follows the fill.
                klines = _klines(messages)
                if cid == "low":
                    return any(k.low < limit for k in klines)
                return any(k.high > limit for k in klines)

            await recorder.wait(crossed)
        assert report["m"] is True  # the resting order was the maker
        order = await client.query_order("BTCUSDT", cid)
        assert order.status is OrderStatus.FILLED
        assert order.filled_quantity == Decimal("0.001")
        assert order.price == limit
        trades = await client.my_trades("BTCUSDT", order_id=order.exchange_order_id)
        assert [(t.price, t.is_maker) for t in trades] == [(limit, True)]
        remaining = {o.client_order_id for o in await client.open_orders("BTCUSDT")}
        assert remaining == {"low", "high"} - {cid}


async def test_a_resting_limit_fills_when_the_streamed_price_crosses_it() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim:
        await _resting_fill(sim, clock)
