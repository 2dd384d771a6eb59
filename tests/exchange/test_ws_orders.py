"""WsOrderEntry against a Binance-shaped WebSocket API on 127.0.0.1, with a ManualClock.

The server (``tests.exchange.fake_ws_api``) verifies every signature the way Binance does and
answers with the docs' examples written inline; a test also recomputes the signature itself
from the params on the wire. Each method is checked for its name, exact params (Decimals as
their strings), the weight and orders it spends, and the domain values it returns. Lost
answers, refusals and orders this path cannot place are checked for what reaches the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain import Fill, OrderStatus, OrderType, OrderUpdated, Side, SubmitOrder, TimeInForce
from app.domain.enums import MarketType
from app.errors import (
    FatalVenueError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    StatusUnknownError,
    TransientError,
    VenueError,
)
from exchange.binance.order_params import FUTURES_ALGO_TYPES, UnsupportedOrder
from exchange.binance.parse_account import CancelReplaceResult
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, DEFAULT_USDM_RULES, RateLimiter
from exchange.binance.rest_payload import MalformedPayload
from exchange.binance.signing import HmacSigner
from exchange.binance.timesync import ServerTime
from exchange.binance.ws_api import WsApiClient
from exchange.binance.ws_orders import WsOrderEntry
from tests.exchange.fake_ws_api import FakeWsApi, Handler, RecordingClock, failed, fake_ws_api, ok
from tests.exchange.loopback import TEST_API_KEY, TEST_SECRET

NOW_MS = 1_700_000_000_000
CID = "tb-s1-000042"
REQUEST_TIMEOUT_S = 10.0
AUTH = {"apiKey", "recvWindow", "timestamp", "signature"}

LIMIT_BUY = SubmitOrder(
    CID, "s1", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.00100000"), NOW_MS,
    price=Decimal("30000.00"), time_in_force=TimeInForce.GTC,
)  # fmt: skip
MARKET_SELL = SubmitOrder(
    CID, "s1", "BTCUSDT", Side.SELL, OrderType.MARKET, Decimal("0.010"), NOW_MS, reduce_only=True
)

# -- answers as the Binance WebSocket API docs show them --------------------------------------

SPOT_PLACED = {
    "symbol": "BTCUSDT", "orderId": 12345, "orderListId": -1, "clientOrderId": CID,
    "transactTime": NOW_MS + 12, "price": "30000.00000000", "origQty": "0.00100000",
    "executedQty": "0.00040000", "origQuoteOrderQty": "0.00000000",
    "cummulativeQuoteQty": "11.99996000", "status": "PARTIALLY_FILLED", "timeInForce": "GTC",
    "type": "LIMIT", "side": "BUY", "workingTime": NOW_MS + 12,
    "selfTradePreventionMode": "NONE",
    "fills": [
        {"price": "29999.90000000", "qty": "0.00040000", "commission": "0.00000040",
         "commissionAsset": "BTC", "tradeId": 777},
    ],
}  # fmt: skip
SPOT_PLACED_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.PARTIALLY_FILLED, Decimal("0.001"),
    Decimal("0.0004"), NOW_MS + 12, price=Decimal(30000), average_fill_price=Decimal("29999.9"),
    exchange_order_id=12345, time_in_force=TimeInForce.GTC,
)  # fmt: skip
SPOT_FILL = Fill(
    777, CID, "BTCUSDT", Side.BUY, Decimal("29999.9"), Decimal("0.0004"), Decimal("0.0000004"),
    "BTC", False, NOW_MS + 12, exchange_order_id=12345,
)  # fmt: skip
SPOT_OPEN = {
    "symbol": "BTCUSDT", "orderId": 12345, "orderListId": -1, "clientOrderId": CID,
    "price": "30000.00000000", "origQty": "0.00100000", "executedQty": "0.00000000",
    "cummulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC",
    "type": "LIMIT", "side": "BUY", "stopPrice": "0.00000000", "icebergQty": "0.00000000",
    "time": NOW_MS - 5000, "updateTime": NOW_MS - 4000, "isWorking": True,
    "workingTime": NOW_MS - 5000, "origQuoteOrderQty": "0.00000000",
    "selfTradePreventionMode": "NONE",
}  # fmt: skip
SPOT_OPEN_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, Decimal("0.001"), Decimal(0),
    NOW_MS - 4000, price=Decimal(30000), exchange_order_id=12345, time_in_force=TimeInForce.GTC,
)  # fmt: skip
# On a cancel `clientOrderId` is the cancel's own id; ours comes back as origClientOrderId.
SPOT_CANCELED = {
    "symbol": "BTCUSDT", "origClientOrderId": CID, "orderId": 12345, "orderListId": -1,
    "clientOrderId": "91fe37ce9e69c90d6358c0", "transactTime": NOW_MS + 30,
    "price": "30000.00000000", "origQty": "0.00100000", "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "0.00000000", "status": "CANCELED",
    "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "selfTradePreventionMode": "NONE",
}  # fmt: skip
SPOT_CANCELED_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.CANCELED, Decimal("0.001"),
    Decimal(0), NOW_MS + 30, price=Decimal(30000), exchange_order_id=12345,
    time_in_force=TimeInForce.GTC,
)  # fmt: skip
REPLACEMENT = SubmitOrder(
    "tb-s1-000043", "s1", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.00100000"), NOW_MS,
    price=Decimal("29950.10"), time_in_force=TimeInForce.GTC,
)  # fmt: skip
SPOT_REPLACED = {
    "cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": SPOT_CANCELED,
    "newOrderResponse": {
        **{key: value for key, value in SPOT_OPEN.items() if key not in ("time", "updateTime")},
        "clientOrderId": "tb-s1-000043", "orderId": 12346, "transactTime": NOW_MS + 31,
        "price": "29950.10000000", "fills": [],
    },
}  # fmt: skip
FUTURES_PLACED = {
    "orderId": 325078477, "symbol": "BTCUSDT", "status": "NEW", "clientOrderId": CID,
    "price": "0.00", "avgPrice": "0.00", "origQty": "0.010", "executedQty": "0.000",
    "cumQty": "0.000", "cumQuote": "0.00000", "timeInForce": "GTC", "type": "MARKET",
    "reduceOnly": True, "closePosition": False, "side": "SELL", "positionSide": "BOTH",
    "stopPrice": "0.00", "workingType": "CONTRACT_PRICE", "priceProtect": False,
    "origType": "MARKET", "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
    "goodTillDate": 0, "updateTime": NOW_MS + 7,
}  # fmt: skip
FUTURES_PLACED_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.SELL, OrderType.MARKET, OrderStatus.NEW, Decimal("0.01"), Decimal(0),
    NOW_MS + 7, exchange_order_id=325078477, reduce_only=True, time_in_force=TimeInForce.GTC,
)  # fmt: skip
FUTURES_LIMIT = {
    **FUTURES_PLACED, "type": "LIMIT", "origType": "LIMIT", "side": "BUY", "reduceOnly": False,
    "price": "43187.00", "origQty": "0.100",
}  # fmt: skip
FUTURES_LIMIT_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, Decimal("0.1"), Decimal(0),
    NOW_MS + 7, price=Decimal(43187), exchange_order_id=325078477, time_in_force=TimeInForce.GTC,
)  # fmt: skip


# -- the harness -------------------------------------------------------------------------------


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock(start_ms=NOW_MS)


@pytest.fixture
async def server(clock: RecordingClock) -> AsyncIterator[FakeWsApi]:
    async with fake_ws_api(clock) as fake:
        yield fake


def make_client(server: FakeWsApi, clock: RecordingClock, market: MarketType) -> WsApiClient:
    rules = DEFAULT_SPOT_RULES if market is MarketType.SPOT else DEFAULT_USDM_RULES
    return WsApiClient(
        url=server.url,
        clock=clock,
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_SECRET),
        limiter=RateLimiter(clock=clock, rules=rules, name=f"ws-{market}"),
        recv_window_ms=5000,
        request_timeout_s=REQUEST_TIMEOUT_S,
        name=f"test-ws-orders-{market}",
        heartbeat_s=None,
    )


@asynccontextmanager
async def running(client: WsApiClient) -> AsyncIterator[asyncio.Task[None]]:
    """Connect and run the reader for the duration of the block, as its owner does."""
    await client.connect()
    async with asyncio.TaskGroup() as tasks:
        reader = tasks.create_task(client.run())
        try:
            yield reader
        finally:
            await client.close()


def answer(result: Any) -> Handler:
    async def handler(frame: dict[str, Any]) -> dict[str, Any]:
        return ok(frame, result)

    return handler


def refuse(status: int, code: int, message: str) -> Handler:
    async def handler(frame: dict[str, Any]) -> dict[str, Any]:
        return failed(frame, status, code, message)

    return handler


async def silent(frame: dict[str, Any]) -> None:
    return None


async def expire_the_pending_request(server: FakeWsApi, clock: RecordingClock) -> None:
    """Once the request has reached the server its timeout is armed (the only timer left:
    no heartbeat): move the clock just past it."""
    await server.arrivals.get()
    await clock.wait_for_sleepers(1)
    clock.advance(REQUEST_TIMEOUT_S - 0.001)
    await asyncio.sleep(0)
    assert clock.sleeper_count == 1  # not a moment early
    clock.advance(0.001)


def spent(limiter: RateLimiter, before: dict[str, int]) -> tuple[int, int]:
    """(weight, orders) counted since ``before``; every window of a kind must agree."""
    after = usage(limiter)
    by_kind = {
        kind: {after[key] - before[key] for key in after if key.startswith(kind)}
        for kind in ("REQUEST_WEIGHT", "ORDERS")
    }
    (weight,) = by_kind["REQUEST_WEIGHT"]
    (orders,) = by_kind["ORDERS"]
    return weight, orders


def usage(limiter: RateLimiter) -> dict[str, int]:
    return {f"{r['kind']} {r['window']}": r["used"] for r in limiter.snapshot()["rules"]}


def business(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key not in AUTH}


def binance_signature(params: dict[str, Any]) -> str:
    """Binance's rule, written out independently: every param but the signature, sorted by
    name, ``key=value`` with the JSON value's text, joined by ``&``, HMAC-SHA256 in hex."""

    def text(value: object) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    payload = "&".join(f"{key}={text(params[key])}" for key in sorted(params) if key != "signature")
    return hmac.new(TEST_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


# -- every method on the wire ------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    market: MarketType
    run: Callable[[Any], Awaitable[object]]
    method: str
    answer: Any
    params: dict[str, Any]
    weight: int
    orders: int
    expected: object


CALLS = [
    Call(
        "spot_place_limit", MarketType.SPOT, lambda e: e.place_order(LIMIT_BUY), "order.place",
        SPOT_PLACED,
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "0.00100000", "price": "30000.00", "newClientOrderId": CID,
         "newOrderRespType": "FULL"},
        1, 1, (SPOT_PLACED_UPDATE, (SPOT_FILL,)),
    ),
    Call(
        "spot_query", MarketType.SPOT, lambda e: e.query_order("BTCUSDT", CID), "order.status",
        SPOT_OPEN, {"symbol": "BTCUSDT", "origClientOrderId": CID}, 4, 0, SPOT_OPEN_UPDATE,
    ),
    Call(
        "spot_cancel", MarketType.SPOT, lambda e: e.cancel_order("BTCUSDT", CID), "order.cancel",
        SPOT_CANCELED, {"symbol": "BTCUSDT", "origClientOrderId": CID}, 1, 0,
        SPOT_CANCELED_UPDATE,
    ),
    Call(
        "spot_cancel_replace", MarketType.SPOT, lambda e: e.cancel_replace(CID, REPLACEMENT),
        "order.cancelReplace", SPOT_REPLACED,
        {"cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrigClientOrderId": CID,
         "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "0.00100000", "price": "29950.10", "newClientOrderId": "tb-s1-000043",
         "newOrderRespType": "FULL"},
        1, 1,
        CancelReplaceResult(
            "success", "success", canceled=SPOT_CANCELED_UPDATE,
            new_order=OrderUpdated(
                "tb-s1-000043", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW,
                Decimal("0.001"), Decimal(0), NOW_MS + 31, price=Decimal("29950.1"),
                exchange_order_id=12346, time_in_force=TimeInForce.GTC,
            ),
        ),
    ),
    Call(
        "futures_place_market_reduce_only", MarketType.USDM, lambda e: e.place_order(MARKET_SELL),
        "order.place", FUTURES_PLACED,
        {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.010",
         "reduceOnly": True, "newClientOrderId": CID, "newOrderRespType": "RESULT"},
        0, 1, FUTURES_PLACED_UPDATE,
    ),
    Call(
        "futures_query", MarketType.USDM, lambda e: e.query_order("BTCUSDT", CID),
        "order.status", FUTURES_LIMIT, {"symbol": "BTCUSDT", "origClientOrderId": CID}, 1, 0,
        FUTURES_LIMIT_UPDATE,
    ),
    Call(
        "futures_cancel", MarketType.USDM, lambda e: e.cancel_order("BTCUSDT", CID),
        "order.cancel", {**FUTURES_LIMIT, "status": "CANCELED"},
        {"symbol": "BTCUSDT", "origClientOrderId": CID}, 1, 0,
        OrderUpdated(
            CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.CANCELED, Decimal("0.1"),
            Decimal(0), NOW_MS + 7, price=Decimal(43187), exchange_order_id=325078477,
            time_in_force=TimeInForce.GTC,
        ),
    ),
    Call(
        "futures_modify", MarketType.USDM,
        lambda e: e.modify_order("BTCUSDT", CID, side=Side.BUY, quantity=Decimal("0.100"),
                                 price=Decimal("43187.00")),
        "order.modify", FUTURES_LIMIT,
        {"symbol": "BTCUSDT", "origClientOrderId": CID, "side": "BUY", "quantity": "0.100",
         "price": "43187.00"},
        1, 1, FUTURES_LIMIT_UPDATE,
    ),
]  # fmt: skip


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
async def test_method_on_the_wire(server: FakeWsApi, clock: RecordingClock, call: Call) -> None:
    server.handlers[call.method] = answer(call.answer)
    client = make_client(server, clock, call.market)
    entry = WsOrderEntry(client, call.market)  # type: ignore[call-overload]
    assert client.limiter is not None
    async with running(client):
        before = usage(client.limiter)
        result = await call.run(entry)
        assert spent(client.limiter, before) == (call.weight, call.orders)
    assert result == call.expected
    (frame,) = server.received
    assert frame["method"] == call.method
    params = frame["params"]
    assert business(params) == call.params
    assert (params["apiKey"], params["recvWindow"], params["timestamp"]) == (
        TEST_API_KEY,
        5000,
        NOW_MS,
    )
    # The server verified it too, or it would have answered -1022 instead.
    assert params["signature"] == binance_signature(params)


async def test_a_market_order_carries_no_price_and_no_time_in_force(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    server.handlers["order.place"] = answer({**SPOT_PLACED, "type": "MARKET", "fills": []})
    client = make_client(server, clock, MarketType.SPOT)
    order = SubmitOrder(CID, "s1", "BTCUSDT", Side.SELL, OrderType.MARKET, Decimal("1E-5"), 0)
    async with running(client):
        _, fills = await WsOrderEntry(client, MarketType.SPOT).place_order(order)
    assert fills == ()
    (frame,) = server.calls("order.place")
    assert business(frame["params"]) == {
        "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.00001",
        "newClientOrderId": CID, "newOrderRespType": "FULL",
    }  # fmt: skip


# -- refusals ----------------------------------------------------------------------------------

REFUSALS = [
    ("place_insufficient_balance", "order.place", 400, -2010,
     "Account has insufficient balance for requested action.", RejectedError),
    ("place_backend_timeout", "order.place", 503, -1007,
     "Timeout waiting for response from backend server.", StatusUnknownError),
    ("place_bad_key", "order.place", 401, -2015,
     "Invalid API-key, IP, or permissions for action.", FatalVenueError),
    ("place_too_many_orders", "order.place", 429, -1015, "Too many new orders.", RateLimitedError),
    ("cancel_unknown_order", "order.cancel", 400, -2011, "Unknown order sent.", NotFoundError),
    ("query_missing_order", "order.status", 400, -2013, "Order does not exist.", NotFoundError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "status", "code", "message", "expected"),
    [refusal[1:] for refusal in REFUSALS],
    ids=[refusal[0] for refusal in REFUSALS],
)
async def test_error_answers_become_the_right_exception(
    server: FakeWsApi,
    clock: RecordingClock,
    method: str,
    status: int,
    code: int,
    message: str,
    expected: type[VenueError],
) -> None:
    server.handlers[method] = refuse(status, code, message)
    client = make_client(server, clock, MarketType.SPOT)
    entry = WsOrderEntry(client, MarketType.SPOT)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "order.place": lambda: entry.place_order(LIMIT_BUY),
        "order.cancel": lambda: entry.cancel_order("BTCUSDT", CID),
        "order.status": lambda: entry.query_order("BTCUSDT", CID),
    }
    async with running(client):
        with pytest.raises(expected) as raised:
            await calls[method]()
    assert (raised.value.code, raised.value.endpoint) == (code, method)
    assert server.methods() == [method]  # refused once, never sent again


async def test_minus_1021_resyncs_the_clock_and_places_once_more_freshly_signed(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    server.server_ahead_ms = 7_000
    server.skew_next = 1  # the first placement is refused for its timestamp: it never executed
    server.handlers["order.place"] = answer(SPOT_PLACED)
    client = make_client(server, clock, MarketType.SPOT)
    async with running(client):
        update, _ = await WsOrderEntry(client, MarketType.SPOT).place_order(LIMIT_BUY)
    assert update == SPOT_PLACED_UPDATE
    first, second = server.calls("order.place")
    assert server.calls("time")  # the offset was measured over the same connection
    assert second["params"]["timestamp"] - first["params"]["timestamp"] == 7_000
    assert second["params"]["signature"] == binance_signature(second["params"])
    assert business(first["params"]) == business(second["params"])


# -- lost answers ------------------------------------------------------------------------------


async def test_a_placement_whose_connection_drops_is_unknown_and_never_resent(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    async def drop(frame: dict[str, Any]) -> None:
        await server.drop()

    server.handlers["order.place"] = drop
    server.handlers["order.status"] = answer(SPOT_OPEN)
    client = make_client(server, clock, MarketType.SPOT)
    entry = WsOrderEntry(client, MarketType.SPOT)
    async with running(client) as reader:
        with pytest.raises(StatusUnknownError) as raised:
            await entry.place_order(LIMIT_BUY)
        await reader  # the connection is gone
    assert raised.value.endpoint == "order.place"
    # A new connection carries what the caller asks next (the query) and nothing else.
    async with running(client):
        assert await entry.query_order("BTCUSDT", CID) == SPOT_OPEN_UPDATE
    assert server.methods() == ["order.place", "order.status"]


async def test_a_placement_without_an_answer_in_time_is_unknown(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    server.handlers["order.place"] = silent
    client = make_client(server, clock, MarketType.USDM)
    async with running(client):
        placing = asyncio.ensure_future(
            WsOrderEntry(client, MarketType.USDM).place_order(MARKET_SELL)
        )
        await expire_the_pending_request(server, clock)
        with pytest.raises(StatusUnknownError):
            await placing
    assert server.methods() == ["order.place"]


@pytest.mark.parametrize(
    ("method", "expected"),
    [("order.cancel", StatusUnknownError), ("order.status", TransientError)],
)
async def test_a_lost_cancel_is_unknown_and_a_lost_query_is_transient(
    server: FakeWsApi, clock: RecordingClock, method: str, expected: type[VenueError]
) -> None:
    async def drop(frame: dict[str, Any]) -> None:
        await server.drop()

    server.handlers[method] = drop
    client = make_client(server, clock, MarketType.SPOT)
    entry = WsOrderEntry(client, MarketType.SPOT)
    run = entry.cancel_order if method == "order.cancel" else entry.query_order
    async with running(client):
        with pytest.raises(expected) as raised:
            await run("BTCUSDT", CID)
    if expected is TransientError:
        assert not isinstance(raised.value, StatusUnknownError)
    assert server.methods() == [method]


async def test_a_cancel_may_be_repeated_after_a_lost_answer(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    answers: list[Handler] = [silent, refuse(400, -2011, "Unknown order sent.")]

    async def cancel(frame: dict[str, Any]) -> dict[str, Any] | None:
        return await answers.pop(0)(frame)

    server.handlers["order.cancel"] = cancel
    client = make_client(server, clock, MarketType.SPOT)
    entry = WsOrderEntry(client, MarketType.SPOT)
    async with running(client):
        first = asyncio.ensure_future(entry.cancel_order("BTCUSDT", CID))
        await expire_the_pending_request(server, clock)
        with pytest.raises(StatusUnknownError):
            await first
        # The first one did cancel it: the repeat says so, and nothing is left in doubt.
        with pytest.raises(NotFoundError):
            await entry.cancel_order("BTCUSDT", CID)
    assert server.methods() == ["order.cancel", "order.cancel"]


@pytest.mark.parametrize("result", [None, {"symbol": "BTCUSDT"}, {**SPOT_PLACED, "side": "UP"}])
async def test_an_unreadable_placement_answer_leaves_the_order_unknown(
    server: FakeWsApi, clock: RecordingClock, result: Any
) -> None:
    server.handlers["order.place"] = answer(result)
    server.handlers["order.status"] = answer(result)
    client = make_client(server, clock, MarketType.SPOT)
    entry = WsOrderEntry(client, MarketType.SPOT)
    async with running(client):
        with pytest.raises(StatusUnknownError, match="unreadable") as raised:
            await entry.place_order(LIMIT_BUY)
        assert isinstance(raised.value.__cause__, MalformedPayload)
        # A read has changed nothing: it fails as the REST parsers do.
        with pytest.raises(MalformedPayload):
            await entry.query_order("BTCUSDT", CID)


# -- refused before sending --------------------------------------------------------------------


async def nothing_sent_but(server: FakeWsApi, client: WsApiClient) -> None:
    """Prove the connection works and that only this ping ever reached the server."""
    await client.request("ping")
    assert server.methods() == ["ping"]


@pytest.mark.parametrize("order_type", sorted(FUTURES_ALGO_TYPES))
async def test_futures_conditional_orders_are_refused_with_nothing_sent(
    server: FakeWsApi, clock: RecordingClock, order_type: OrderType
) -> None:
    order = SubmitOrder(
        CID, "s1", "BTCUSDT", Side.SELL, order_type, Decimal("0.010"), NOW_MS,
        price=Decimal(41000), stop_price=Decimal(41500), reduce_only=True,
    )  # fmt: skip
    client = make_client(server, clock, MarketType.USDM)
    async with running(client):
        with pytest.raises(UnsupportedOrder, match="/fapi/v1/algoOrder"):
            await WsOrderEntry(client, MarketType.USDM).place_order(order)
        await nothing_sent_but(server, client)


async def test_orders_and_methods_the_venue_lacks_are_refused_with_nothing_sent(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    spot_client = make_client(server, clock, MarketType.SPOT)
    spot = WsOrderEntry(spot_client, MarketType.SPOT)
    futures = WsOrderEntry(make_client(server, clock, MarketType.USDM), MarketType.USDM)
    async with running(spot_client):
        with pytest.raises(UnsupportedOrder, match="reduce-only"):
            await spot.place_order(MARKET_SELL)
        with pytest.raises(UnsupportedOrder, match="futures method"):
            await spot.modify_order(
                "BTCUSDT", CID, side=Side.BUY, quantity=Decimal(1), price=Decimal(1)
            )
        with pytest.raises(UnsupportedOrder, match="spot method"):
            await futures.cancel_replace(CID, REPLACEMENT)
        await nothing_sent_but(server, spot_client)


async def test_nothing_is_sent_before_the_connection_is_up(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    client = make_client(server, clock, MarketType.SPOT)
    with pytest.raises(TransientError, match="not connected") as raised:
        await WsOrderEntry(client, MarketType.SPOT).place_order(LIMIT_BUY)
    assert not isinstance(raised.value, StatusUnknownError)  # safe to send over REST instead
    assert server.received == []


# -- recorded payloads -------------------------------------------------------------------------


def recorded(folder: Path, name: str) -> Any:
    return json.loads((folder / "nautilus_rust" / name).read_text())


async def test_recorded_rest_answers_read_the_same_as_ws_results(
    binance_fixtures: Path, server: FakeWsApi, clock: RecordingClock
) -> None:
    # The WS API `result` has the REST body's shape: recorded REST answers stand in for it.
    server.handlers["order.place"] = answer(
        recorded(binance_fixtures, "spot/http_json/new_order_full_response.json")
    )
    spot_client = make_client(server, clock, MarketType.SPOT)
    async with running(spot_client):
        placed, fills = await WsOrderEntry(spot_client, MarketType.SPOT).place_order(LIMIT_BUY)
    assert (placed.client_order_id, placed.exchange_order_id, placed.status) == (
        "6gCrw2kRUAF9CvJDGP16IP",
        28,
        OrderStatus.FILLED,
    )
    assert [f.trade_id for f in fills] == [56, 57, 58, 59, 60]
    assert sum(f.quantity for f in fills) == placed.filled_quantity == Decimal(10)

    futures_order = recorded(binance_fixtures, "futures/http_json/order_response.json")
    for method in ("order.place", "order.status", "order.cancel"):
        server.handlers[method] = answer(futures_order)
    futures_client = make_client(server, clock, MarketType.USDM)
    futures = WsOrderEntry(futures_client, MarketType.USDM)
    expected = OrderUpdated(
        "testOrder123", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, Decimal("0.001"),
        Decimal(0), 1625474304765, price=Decimal(50000), exchange_order_id=12345678,
        time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    async with running(futures_client):
        answers: Sequence[OrderUpdated] = [
            await futures.place_order(MARKET_SELL),
            await futures.query_order("BTCUSDT", "testOrder123"),
            await futures.cancel_order("BTCUSDT", "testOrder123"),
        ]
    assert answers == [expected, expected, expected]
