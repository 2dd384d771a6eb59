"""The project's user-data streams on the running simulator: spot over the WebSocket API
subscription, futures over a listenKey on ``/fstream/private``, with orders placed over REST
and over the WebSocket API (``WsOrderEntry``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from decimal import Decimal
from typing import Any

from app.domain import OrderStatus, OrderType, Side
from app.domain.account import AccountUpdated
from app.domain.clock import ManualClock
from app.domain.enums import ExecutionType, MarketType
from app.domain.orders import OrderUpdated
from exchange.binance.parse_user import UserEvent
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, DEFAULT_USDM_RULES, RateLimiter
from exchange.binance.signing import HmacSigner
from exchange.binance.timesync import ServerTime
from exchange.binance.user_data_futures import FuturesUserDataStream
from exchange.binance.user_data_spot import SpotUserDataStream
from exchange.binance.ws_api import WsApiClient
from exchange.binance.ws_orders import WsOrderEntry
from exchange.sim.options import TEST_API_KEY, TEST_API_SECRET
from exchange.sim.server import SimExchange
from tests.sim.harness import START_MS, futures_client, running_sim, spot_client
from tests.sim.harness import btc_order as _order

GUARD_S = 10.0


class Events:
    def __init__(self) -> None:
        self.items: list[UserEvent] = []
        self._changed = asyncio.Condition()

    async def on_events(self, events: tuple[UserEvent, ...]) -> None:
        async with self._changed:
            self.items.extend(events)
            self._changed.notify_all()

    async def wait(self, done: Callable[[list[UserEvent]], bool]) -> None:
        async with asyncio.timeout(GUARD_S), self._changed:
            await self._changed.wait_for(lambda: done(self.items))

    def orders(self, cid: str) -> list[OrderUpdated]:
        return [e for e in self.items if isinstance(e, OrderUpdated) and e.client_order_id == cid]


def _status(events: Events, cid: str, status: OrderStatus) -> Callable[[list[UserEvent]], bool]:
    return lambda _: any(o.status is status for o in events.orders(cid))


def _ws_api(url: str, clock: ManualClock, *, spot: bool) -> WsApiClient:
    return WsApiClient(
        url=url,
        clock=clock,
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_API_SECRET),
        limiter=RateLimiter(
            clock=clock, rules=DEFAULT_SPOT_RULES if spot else DEFAULT_USDM_RULES, name="ws"
        ),
        recv_window_ms=5000,
        request_timeout_s=5.0,
        name="sim-ws",
        heartbeat_s=None,
    )


@contextlib.asynccontextmanager
async def ws_connected(client: WsApiClient) -> AsyncIterator[None]:
    await client.connect()
    async with asyncio.TaskGroup() as tasks:
        reader = tasks.create_task(client.run())
        try:
            yield
        finally:
            await client.close()
            reader.cancel()


@contextlib.asynccontextmanager
async def running(task_body: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(task_body())
        try:
            yield
        finally:
            task.cancel()


async def _listening(sim: SimExchange, futures: bool) -> None:
    hub = sim.futures.hub if futures else sim.spot.hub
    async with asyncio.timeout(GUARD_S):
        await hub.wait_for_subscribers(1)


async def test_spot_user_data_over_the_ws_api_subscription() -> None:
    clock = ManualClock(START_MS)
    events = Events()
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as rest:
        stream = SpotUserDataStream(
            ws_api_url=sim.endpoints.spot_ws_api,
            clock=clock,
            server_time=ServerTime(clock=clock),
            api_key=TEST_API_KEY,
            signer=HmacSigner(TEST_API_SECRET),
            limiter=None,
            on_events=events.on_events,
        )
        async with running(stream.run):
            await _listening(sim, futures=False)
            update, fills = await rest.place_order(
                _order("rest-mkt", Side.BUY, OrderType.MARKET, "0.01")
            )
            await events.wait(_status(events, "rest-mkt", OrderStatus.FILLED))
            ws = _ws_api(sim.endpoints.spot_ws_api, clock, spot=True)
            async with ws_connected(ws):
                entry = WsOrderEntry(ws, MarketType.SPOT)
                (book,) = await rest.book_tickers("BTCUSDT")
                price = book.bid_price - 100
                placed, _ = await entry.place_order(
                    _order("ws-lim", Side.BUY, OrderType.LIMIT, "0.01", price)
                )
                assert placed.status is OrderStatus.NEW
                canceled = await entry.cancel_order("BTCUSDT", "ws-lim")
                assert canceled.status is OrderStatus.CANCELED
            await events.wait(_status(events, "ws-lim", OrderStatus.CANCELED))
            await events.wait(lambda items: isinstance(items[-1], AccountUpdated))

    market = events.orders("rest-mkt")
    assert market[0].execution_type is ExecutionType.NEW
    trades = [o for o in market if o.execution_type is ExecutionType.TRADE]
    assert [o.fill.trade_id for o in trades if o.fill] == [f.trade_id for f in fills]
    assert trades[-1].status is OrderStatus.FILLED
    assert trades[-1].exchange_order_id == update.exchange_order_id
    assert [o.fill.fee for o in trades if o.fill] == [f.fee for f in fills]
    limit = events.orders("ws-lim")
    assert [o.status for o in limit] == [OrderStatus.NEW, OrderStatus.CANCELED]
    assert limit[0].price == price
    accounts = [e for e in events.items if isinstance(e, AccountUpdated)]
    assert len(accounts) >= 3  # after the fill, the limit's lock and its release
    after_fill = {b.asset: b for b in accounts[0].balances}
    assert after_fill["BTC"].free == Decimal("0.01") - sum(f.fee for f in fills)
    locked = {b.asset: b for b in accounts[-2].balances}
    assert locked["USDT"].locked == price * Decimal("0.01")
    released = {b.asset: b for b in accounts[-1].balances}
    assert released["USDT"].locked == 0


async def test_futures_user_data_over_a_listen_key() -> None:
    clock = ManualClock(START_MS)
    events = Events()
    async with running_sim(clock=clock) as sim, futures_client(sim, clock) as rest:
        stream = FuturesUserDataStream(
            client=rest,
            private_url=sim.endpoints.futures_private,
            clock=clock,
            on_events=events.on_events,
            heartbeat_s=None,
        )
        async with running(stream.run):
            await _listening(sim, futures=True)
            opened = await rest.place_order(_order("rest-mkt", Side.BUY, OrderType.MARKET, "0.005"))
            assert isinstance(opened, OrderUpdated)
            await events.wait(_status(events, "rest-mkt", OrderStatus.FILLED))
            await events.wait(
                lambda items: any(isinstance(e, AccountUpdated) and e.positions for e in items)
            )
            ws = _ws_api(sim.endpoints.futures_ws_api, clock, spot=False)
            async with ws_connected(ws):
                entry = WsOrderEntry(ws, MarketType.USDM)
                (book,) = await rest.book_tickers("BTCUSDT")
                price = book.bid_price - 100
                placed = await entry.place_order(
                    _order("ws-lim", Side.BUY, OrderType.LIMIT, "0.005", price)
                )
                assert placed.status is OrderStatus.NEW
                modified = await entry.modify_order(
                    "BTCUSDT", "ws-lim", side=Side.BUY, quantity=Decimal("0.004"), price=price
                )
                assert modified.quantity == Decimal("0.004")
                queried = await entry.query_order("BTCUSDT", "ws-lim")
                assert queried.quantity == Decimal("0.004")
                await entry.cancel_order("BTCUSDT", "ws-lim")
            await events.wait(_status(events, "ws-lim", OrderStatus.CANCELED))

    market = events.orders("rest-mkt")
    assert market[0].status is OrderStatus.NEW
    trades = [o for o in market if o.execution_type is ExecutionType.TRADE]
    assert sum(o.fill.quantity for o in trades if o.fill) == Decimal("0.005")
    assert all(o.fill is not None and o.fill.realized_pnl == 0 for o in trades)
    (position_update,) = [e for e in events.items if isinstance(e, AccountUpdated) and e.positions][
        :1
    ]
    (position,) = [p for p in position_update.positions if p.symbol == "BTCUSDT"]
    assert position.quantity == Decimal("0.005")
    assert position.entry_price == opened.average_fill_price
    limit = events.orders("ws-lim")
    assert [o.status for o in limit] == [OrderStatus.NEW, OrderStatus.NEW, OrderStatus.CANCELED]
    assert [o.execution_type for o in limit] == [
        ExecutionType.NEW,
        ExecutionType.AMENDMENT,
        ExecutionType.CANCELED,
    ]
    assert limit[1].quantity == Decimal("0.004")
