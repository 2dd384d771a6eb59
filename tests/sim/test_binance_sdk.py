"""Binance's own Spot SDK (``binance-sdk-spot``) as an independent client of the simulator.

The simulator and our own client come from one reading of Binance's docs; the official SDK
does not. If it can read exchangeInfo, place, query and cancel an order over REST and the
WebSocket API, follow the user-data stream and receive market streams — with its own signing,
its own request shapes and its own pydantic models — the simulator speaks Binance, not just
our dialect. The SDK's models keep any field they do not know in ``additional_properties``, so
an empty one also shows the simulator invents no fields.

Skipped when the SDK is not installed (it is a dev extra; nothing is installed at run time).
The SDK stamps requests with the wall clock, so the simulator runs on ``SystemClock`` here;
nothing waits on time: every step awaits the SDK's own call or message, bounded by
``asyncio.timeout`` only as a guard against a hang. The SDK's REST client is blocking
(``requests``), so its calls run in a thread while the simulator's loop keeps serving.

Market time moves only while a market-stream client reads (``speed=None``), so the order tests
run before any stream is opened: the book stands still and the resting order cannot fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from app.domain.clock import SystemClock
from exchange.sim.options import TEST_API_KEY, TEST_API_SECRET
from exchange.sim.server import SimExchange
from tests.sim.harness import running_sim

pytest.importorskip("binance_sdk_spot")

from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_common.errors import BadRequestError
from binance_sdk_spot.rest_api.models import (
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_spot.spot import Spot
from binance_sdk_spot.websocket_api.models import (
    OrderPlaceSideEnum,
    OrderPlaceTimeInForceEnum,
    OrderPlaceTypeEnum,
)

# The SDK passes aiohttp a float ws_connect timeout, which newer aiohttp deprecates: theirs.
pytestmark = pytest.mark.filterwarnings(
    "ignore:parameter 'timeout' of type 'float' is deprecated:DeprecationWarning"
)

GUARD_S = 10.0  # a defect guard, never a wait: every await below completes on its own


@contextlib.asynccontextmanager
async def sdk_on_sim() -> AsyncIterator[tuple[SimExchange, Spot]]:
    """The simulator on the real clock and the SDK pointed at its three surfaces."""
    async with running_sim(clock=SystemClock()) as sim:
        endpoints = sim.endpoints
        spot = Spot(
            config_rest_api=ConfigurationRestAPI(
                api_key=TEST_API_KEY,
                api_secret=TEST_API_SECRET,
                base_path=endpoints.spot_rest,
                timeout=10_000,
                retries=0,  # a failure must surface, not be retried after a backoff
            ),
            config_ws_api=ConfigurationWebSocketAPI(
                api_key=TEST_API_KEY,
                api_secret=TEST_API_SECRET,
                stream_url=endpoints.spot_ws_api,
                reconnect_attempts=1,
            ),
            config_ws_streams=ConfigurationWebSocketStreams(
                stream_url=endpoints.spot_streams, reconnect_attempts=1
            ),
        )
        yield sim, spot


def rest_data(call: Callable[..., Any], **params: Any) -> Any:
    """One blocking REST call of the SDK, its parsed model (``.data()`` parses)."""
    return call(**params).data()


async def rest(call: Callable[..., Any], **params: Any) -> Any:
    async with asyncio.timeout(GUARD_S):
        return await asyncio.to_thread(rest_data, call, **params)


def resting_bid(bid: str, tick_size: str) -> Decimal:
    """A price 5% under the best bid, on the tick: inside PERCENT_PRICE_BY_SIDE, and it rests."""
    tick = Decimal(tick_size)
    return (Decimal(bid) * Decimal("0.95") / tick).to_integral_value() * tick


def collect(handle: Any) -> asyncio.Queue[Any]:
    """Every message the SDK delivers on a stream handle, in order."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    handle.on("message", queue.put_nowait)
    return queue


async def next_execution_report(queue: asyncio.Queue[Any], status: str) -> Any:
    """The next executionReport with order status ``status`` (account events are skipped)."""
    async with asyncio.timeout(GUARD_S):
        while True:
            event = (await queue.get()).actual_instance
            if type(event).__name__ == "ExecutionReport" and status == event.X:
                return event


def price_filter(symbol: Any) -> Any:
    (found,) = [
        f.actual_instance for f in symbol.filters if f.actual_instance.filter_type == "PRICE_FILTER"
    ]
    return found


async def test_rest_exchange_info_and_an_order_placed_queried_and_cancelled() -> None:
    async with sdk_on_sim() as (_, spot):
        api = spot.rest_api
        before = time.time_ns() // 1_000_000
        server_time = (await rest(api.time)).server_time
        assert before <= server_time <= time.time_ns() // 1_000_000

        info = await rest(api.exchange_info)
        symbols = {s.symbol: s for s in info.symbols}
        assert {"BTCUSDT", "ETHUSDT"} <= set(symbols)
        btc = symbols["BTCUSDT"]
        assert (btc.status, btc.base_asset, btc.quote_asset) == ("TRADING", "BTC", "USDT")
        assert "LIMIT" in btc.order_types
        assert btc.additional_properties == {}
        tick_size = price_filter(btc).tick_size
        assert Decimal(tick_size) > 0
        assert {limit.rate_limit_type for limit in info.rate_limits} >= {"REQUEST_WEIGHT", "ORDERS"}

        book = (await rest(api.ticker_book_ticker, symbol="BTCUSDT")).actual_instance
        assert Decimal(book.bid_price) < Decimal(book.ask_price)
        price = resting_bid(book.bid_price, tick_size)

        placed = await rest(
            api.new_order,
            symbol="BTCUSDT",
            side=NewOrderSideEnum.BUY,
            type=NewOrderTypeEnum.LIMIT,
            time_in_force=NewOrderTimeInForceEnum.GTC,
            quantity=0.001,
            price=float(price),
            new_client_order_id="sdk-rest-1",
        )
        assert placed.additional_properties == {}
        assert (placed.symbol, placed.client_order_id, placed.status) == (
            "BTCUSDT",
            "sdk-rest-1",
            "NEW",
        )
        assert (Decimal(placed.price), Decimal(placed.orig_qty)) == (price, Decimal("0.001"))
        assert Decimal(placed.executed_qty) == 0
        assert placed.fills == []

        queried = await rest(api.get_order, symbol="BTCUSDT", order_id=placed.order_id)
        assert queried.additional_properties == {}
        assert (queried.order_id, queried.client_order_id, queried.status) == (
            placed.order_id,
            "sdk-rest-1",
            "NEW",
        )
        assert queried.is_working is True
        assert Decimal(queried.price) == price

        cancelled = await rest(api.delete_order, symbol="BTCUSDT", order_id=placed.order_id)
        assert (cancelled.order_id, cancelled.orig_client_order_id, cancelled.status) == (
            placed.order_id,
            "sdk-rest-1",
            "CANCELED",
        )
        after = await rest(api.get_order, symbol="BTCUSDT", orig_client_order_id="sdk-rest-1")
        assert after.status == "CANCELED"

        # Binance's error body ({"code", "msg"} with HTTP 400) as the SDK maps it.
        with pytest.raises(BadRequestError) as error:
            await rest(api.get_order, symbol="BTCUSDT", order_id=placed.order_id + 1_000_000)
        assert error.value.status_code == -2013  # the SDK files Binance's code under this name
        assert error.value.error_message == "Order does not exist."


async def test_ws_api_orders_and_the_user_data_stream() -> None:
    async with sdk_on_sim() as (_, spot):
        info = await rest(spot.rest_api.exchange_info, symbol="BTCUSDT")
        book = (await rest(spot.rest_api.ticker_book_ticker, symbol="BTCUSDT")).actual_instance
        price = resting_bid(book.bid_price, price_filter(info.symbols[0]).tick_size)
        ws_api = spot.websocket_api
        try:
            async with asyncio.timeout(GUARD_S):
                await ws_api.create_connection()  # type: ignore[no-untyped-call]
                assert ws_api.connections, "the SDK could not connect to the WebSocket API"
                subscribed = await ws_api.user_data_stream_subscribe_signature()
            subscribe_answer: Any = subscribed.response.data()
            assert subscribe_answer.status == 200
            events = collect(subscribed.stream)

            async with asyncio.timeout(GUARD_S):
                answer = await ws_api.order_place(
                    symbol="BTCUSDT",
                    side=OrderPlaceSideEnum.BUY,
                    type=OrderPlaceTypeEnum.LIMIT,
                    time_in_force=OrderPlaceTimeInForceEnum.GTC,
                    quantity=0.001,
                    price=float(price),
                    new_client_order_id="sdk-ws-1",
                )
            placed: Any = answer.data()
            assert placed.status == 200
            assert (placed.result.client_order_id, placed.result.status) == ("sdk-ws-1", "NEW")
            assert Decimal(placed.result.price) == price
            # The SDK parses Binance's per-answer rate-limit block (we asked for none off).
            assert {limit.rateLimitType for limit in answer.rate_limits} >= {"REQUEST_WEIGHT"}

            new = await next_execution_report(events, "NEW")
            assert new.additional_properties == {}
            assert (new.s, new.c, new.i, new.x, new.S, new.o, new.f) == (
                "BTCUSDT",
                "sdk-ws-1",
                placed.result.order_id,
                "NEW",
                "BUY",
                "LIMIT",
                "GTC",
            )
            assert (Decimal(new.p), Decimal(new.q)) == (price, Decimal("0.001"))

            async with asyncio.timeout(GUARD_S):
                cancel = await ws_api.order_cancel(
                    symbol="BTCUSDT", order_id=placed.result.order_id
                )
            cancel_answer: Any = cancel.data()
            assert cancel_answer.result.status == "CANCELED"
            cancelled = await next_execution_report(events, "CANCELED")
            assert (cancelled.i, cancelled.x, cancelled.C) == (
                placed.result.order_id,
                "CANCELED",
                "sdk-ws-1",
            )
        finally:
            await ws_api.close_connection()


async def test_market_streams_deliver_book_ticker_and_kline() -> None:
    async with sdk_on_sim() as (sim, spot):
        streams = spot.websocket_streams
        try:
            async with asyncio.timeout(GUARD_S):
                await streams.create_connection()  # type: ignore[no-untyped-call]
                assert streams.connections, "the SDK could not connect to the market streams"
                book = collect(await streams.book_ticker(symbol="BTCUSDT"))
                # A plain "1m": the SDK writes an enum into the stream name as
                # "KlineIntervalEnum.INTERVAL_1m" (str() of the member), on Binance too.
                interval: Any = "1m"
                kline = collect(await streams.kline(symbol="BTCUSDT", interval=interval))
                quote = await book.get()
                bar = await kline.get()
            assert quote.additional_properties == {}
            assert quote.s == "BTCUSDT"
            assert Decimal(quote.b) < Decimal(quote.a)
            assert bar.additional_properties == {}
            assert (bar.e, bar.s, bar.k.s, bar.k.i) == ("kline", "BTCUSDT", "BTCUSDT", "1m")
            assert bar.k.t + 60_000 - 1 == bar.k.T
            assert Decimal(bar.k.l) <= Decimal(bar.k.o) <= Decimal(bar.k.h)
            assert sim.spot.streams.connection_count == 1
        finally:
            await streams.close_connection()
