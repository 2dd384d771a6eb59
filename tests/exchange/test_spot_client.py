"""SpotClient against a scripted Binance on 127.0.0.1, with a ManualClock.

Every endpoint is checked on the wire (method, path, exact parameters in order, API key and
signature), on the rate-limit budget it spends, and on the domain values it returns. The
answers are the Binance docs' examples written inline, so these run on a fresh clone; the
recorded payloads in the shared fixtures are replayed on top when present.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pytest

from app.domain import (
    Balance,
    BookTicker,
    Fill,
    Kline,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
    TimeInForce,
)
from app.domain.clock import ManualClock
from app.errors import NotFoundError, RejectedError, StatusUnknownError
from exchange.binance.parse_account import CancelReplaceResult
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, RateLimiter
from exchange.binance.rest import RestTransport, RetryPolicy, Security
from exchange.binance.signing import HmacSigner
from exchange.binance.spot import SpotClient
from exchange.binance.timesync import ServerTime
from tests.exchange.loopback import (
    TEST_API_KEY,
    TEST_SECRET,
    Received,
    Reply,
    ScriptedBinance,
    json_response,
    scripted_binance,
    text_response,
)

T = TypeVar("T")
NOW_MS = 1_700_000_000_000
CID = "tb-s1-000042"
AUTH = ("recvWindow", "timestamp", "signature")
# Real seconds after which a test gives up on a request that is stuck because of a defect
# (a loopback round trip takes milliseconds); never a wait for something to happen.
DEFECT_BOUND_S = 2.0

LIMIT_BUY = SubmitOrder(
    CID, "s1", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.00100000"), NOW_MS,
    price=Decimal("30000.00"), time_in_force=TimeInForce.GTC,
)  # fmt: skip
LIMIT_BUY_WIRE = [
    ("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
    ("quantity", "0.00100000"), ("price", "30000.00"), ("newClientOrderId", CID),
    ("newOrderRespType", "FULL"),
]  # fmt: skip


# -- the harness -------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[ScriptedBinance]:
    async with scripted_binance() as scripted:
        yield scripted


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ms=NOW_MS)


@pytest.fixture
async def client(server: ScriptedBinance, clock: ManualClock) -> AsyncIterator[SpotClient]:
    transport = RestTransport(
        base_url=server.base_url,
        server_time_path="/api/v3/time",
        clock=clock,
        limiter=RateLimiter(clock=clock, rules=DEFAULT_SPOT_RULES, name="spot-test"),
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_SECRET),
        recv_window_ms=5000,
        timeout_s=5.0,
        retry=RetryPolicy(attempts=3, wait_initial_s=1.0, wait_max_s=4.0),
    )
    async with transport:
        yield SpotClient(transport)


def usage(transport: RestTransport) -> dict[str, int]:
    rules = transport.limiter.snapshot()["rules"]
    return {f"{rule['kind']} {rule['window']}": rule["used"] for rule in rules}


async def metered(transport: RestTransport, call: Awaitable[T]) -> tuple[T, tuple[int, int]]:
    """The call's result and the (weight, orders) it spent; every window of a kind agrees."""
    before = usage(transport)
    result = await call
    after = usage(transport)
    spent = {
        kind: {after[key] - before[key] for key in after if key.startswith(kind)}
        for kind in ("REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS")
    }
    assert spent["RAW_REQUESTS"] == {1}
    (weight,) = spent["REQUEST_WEIGHT"]
    (orders,) = spent["ORDERS"]
    return result, (weight, orders)


def business_params(got: Received) -> list[tuple[str, str]]:
    pairs = parse_qsl(got.query_string, keep_blank_values=True)
    return [(name, value) for name, value in pairs if name not in AUTH]


def assert_security(got: Received, security: Security) -> None:
    names = [name for name, _ in parse_qsl(got.query_string, keep_blank_values=True)]
    if security is Security.NONE:
        assert "X-MBX-APIKEY" not in got.headers
    else:
        assert got.headers["X-MBX-APIKEY"] == TEST_API_KEY
    if security is Security.SIGNED:
        assert tuple(names[-3:]) == AUTH
        assert got.signature_ok()
    else:
        assert not set(AUTH) & set(names)


def recorded(folder: Path, name: str) -> Reply:
    return Reply(text=(folder / name).read_text())


def serve_recorded(
    server: ScriptedBinance, folder: Path, routes: dict[tuple[str, str], str]
) -> None:
    for (method, path), name in routes.items():
        server.on(method, path, recorded(folder, name))


# -- answers as the Binance spot docs show them ------------------------------------------------

EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC", "serverTime": 1565246363776,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ],
    "exchangeFilters": [],
    "symbols": [{
        "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
        "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
             "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
        ],
        "permissions": [], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
    }],
}  # fmt: skip
# The second row's close time is after NOW_MS: the bar is still open.
KLINES = [
    [NOW_MS - 120_000, "37000.00", "37010.50", "36990.00", "37005.10", "12.50000000",
     NOW_MS - 60_001, "462563.75000000", 410, "6.1", "225700.0", "0"],
    [NOW_MS - 60_000, "37005.10", "37008.00", "37001.00", "37002.00", "1.25000000",
     NOW_MS - 1, "46254.00000000", 35, "0.6", "22201.2", "0"],
    [NOW_MS, "37002.00", "37002.00", "37002.00", "37002.00", "0.01000000",
     NOW_MS + 59_999, "370.02000000", 1, "0", "0", "0"],
]  # fmt: skip
BOOK_TICKER = {
    "symbol": "LTCBTC", "bidPrice": "4.00000000", "bidQty": "431.00000000",
    "askPrice": "4.00000200", "askQty": "9.00000000",
}  # fmt: skip
LTCBTC_BOOK = BookTicker(
    "LTCBTC", Decimal("4.00000000"), Decimal("431.00000000"), Decimal("4.00000200"),
    Decimal("9.00000000"), 0, 0,
)  # fmt: skip
ACCOUNT = {
    "makerCommission": 15, "takerCommission": 15, "canTrade": True, "canWithdraw": True,
    "canDeposit": True, "updateTime": 123456789, "accountType": "SPOT",
    "balances": [
        {"asset": "BTC", "free": "0.12500000", "locked": "0.00100000"},
        {"asset": "USDT", "free": "1520.55000000", "locked": "0.00000000"},
    ],
    "permissions": ["SPOT"], "uid": 354937868,
}  # fmt: skip
OPEN_ORDER = {
    "symbol": "BTCUSDT", "orderId": 12345, "orderListId": -1, "clientOrderId": CID,
    "price": "30000.00000000", "origQty": "0.00100000", "executedQty": "0.00000000",
    "cummulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC",
    "type": "LIMIT", "side": "BUY", "stopPrice": "0.00000000", "icebergQty": "0.00000000",
    "time": NOW_MS - 5000, "updateTime": NOW_MS - 4000, "isWorking": True,
    "workingTime": NOW_MS - 5000, "origQuoteOrderQty": "0.00000000",
    "selfTradePreventionMode": "NONE",
}  # fmt: skip
OPEN_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, Decimal("0.001"), Decimal(0),
    NOW_MS - 4000, price=Decimal(30000), exchange_order_id=12345,
    time_in_force=TimeInForce.GTC,
)  # fmt: skip
PLACED_FULL = {
    "symbol": "BTCUSDT", "orderId": 12345, "orderListId": -1, "clientOrderId": CID,
    "transactTime": NOW_MS + 12, "price": "30000.00000000", "origQty": "0.00100000",
    "executedQty": "0.00040000", "origQuoteOrderQty": "0.00000000",
    "cummulativeQuoteQty": "12.00000000", "status": "PARTIALLY_FILLED", "timeInForce": "GTC",
    "type": "LIMIT", "side": "BUY", "workingTime": NOW_MS + 12,
    "selfTradePreventionMode": "NONE",
    "fills": [{"price": "30000.00000000", "qty": "0.00040000", "commission": "0.00000040",
               "commissionAsset": "BTC", "tradeId": 777}],
}  # fmt: skip
PLACED_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.PARTIALLY_FILLED, Decimal("0.001"),
    Decimal("0.0004"), NOW_MS + 12, price=Decimal(30000), average_fill_price=Decimal(30000),
    exchange_order_id=12345, time_in_force=TimeInForce.GTC,
)  # fmt: skip
PLACED_FILL = Fill(
    777, CID, "BTCUSDT", Side.BUY, Decimal(30000), Decimal("0.0004"), Decimal("0.0000004"),
    "BTC", False, NOW_MS + 12, exchange_order_id=12345,
)  # fmt: skip
# On a cancel `clientOrderId` is the cancel request's id; ours comes back as origClientOrderId.
CANCELED = {
    "symbol": "BTCUSDT", "origClientOrderId": CID, "orderId": 12345, "orderListId": -1,
    "clientOrderId": "cancelMyOrder1", "transactTime": NOW_MS + 30, "price": "30000.00000000",
    "origQty": "0.00100000", "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000", "status": "CANCELED", "timeInForce": "GTC",
    "type": "LIMIT", "side": "BUY", "selfTradePreventionMode": "NONE",
}  # fmt: skip
CANCELED_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.CANCELED, Decimal("0.001"),
    Decimal(0), NOW_MS + 30, price=Decimal(30000), exchange_order_id=12345,
    time_in_force=TimeInForce.GTC,
)  # fmt: skip
REPLACED_NEW = {
    **{k: v for k, v in PLACED_FULL.items() if k != "fills"},
    "clientOrderId": "tb-s1-000043", "orderId": 12346, "executedQty": "0.00000000",
    "cummulativeQuoteQty": "0.00000000", "status": "NEW", "fills": [],
}  # fmt: skip
CANCEL_REPLACE = {
    "cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
    "cancelResponse": CANCELED, "newOrderResponse": REPLACED_NEW,
}  # fmt: skip
MY_TRADES = [{
    "symbol": "BNBBTC", "id": 28457, "orderId": 100234, "orderListId": -1,
    "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
    "commission": "10.10000000", "commissionAsset": "BNB", "time": 1499865549590,
    "isBuyer": True, "isMaker": False, "isBestMatch": True,
}]  # fmt: skip
BNB_FILL = Fill(
    28457, "", "BNBBTC", Side.BUY, Decimal("4.000001"), Decimal(12), Decimal("10.1"), "BNB",
    False, 1499865549590, exchange_order_id=100234,
)  # fmt: skip


def kline(row: list[Any], *, closed: bool) -> Kline:
    d = Decimal
    return Kline(
        "BTCUSDT", "1m", row[0], row[6], d(row[1]), d(row[2]), d(row[3]), d(row[4]), d(row[5]),
        d(row[7]), row[8], closed,
    )  # fmt: skip


# -- every endpoint on the wire ----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    run: Callable[[SpotClient], Awaitable[object]]
    method: str
    path: str
    answer: Any
    params: list[tuple[str, str]]
    security: Security
    weight: int
    orders: int
    expected: object


ENDPOINTS = [
    Endpoint(
        "server_time", lambda c: c.server_time_ms(), "GET", "/api/v3/time",
        {"serverTime": 1499827319559}, [], Security.NONE, 1, 0, 1499827319559,
    ),
    Endpoint(
        "klines", lambda c: c.klines("BTCUSDT", "1m", start_ms=NOW_MS - 120_000, end_ms=NOW_MS,
                                      limit=3),
        "GET", "/api/v3/klines", KLINES,
        [("symbol", "BTCUSDT"), ("interval", "1m"), ("startTime", str(NOW_MS - 120_000)),
         ("endTime", str(NOW_MS)), ("limit", "3")],
        Security.NONE, 2, 0,
        [kline(KLINES[0], closed=True), kline(KLINES[1], closed=True),
         kline(KLINES[2], closed=False)],
    ),
    Endpoint(
        "klines_defaults", lambda c: c.klines("BTCUSDT", "1m"), "GET", "/api/v3/klines", [],
        [("symbol", "BTCUSDT"), ("interval", "1m"), ("limit", "500")], Security.NONE, 2, 0, [],
    ),
    Endpoint(
        "book_ticker", lambda c: c.book_tickers("LTCBTC"), "GET", "/api/v3/ticker/bookTicker",
        BOOK_TICKER, [("symbol", "LTCBTC")], Security.NONE, 2, 0, [LTCBTC_BOOK],
    ),
    Endpoint(
        "book_tickers_all", lambda c: c.book_tickers(), "GET", "/api/v3/ticker/bookTicker",
        [BOOK_TICKER, BOOK_TICKER], [], Security.NONE, 4, 0, [LTCBTC_BOOK, LTCBTC_BOOK],
    ),
    Endpoint(
        "account", lambda c: c.account(), "GET", "/api/v3/account", ACCOUNT,
        [("omitZeroBalances", "true")], Security.SIGNED, 20, 0,
        (Balance("BTC", Decimal("0.125"), Decimal("0.001")),
         Balance("USDT", Decimal("1520.55"), Decimal(0))),
    ),
    Endpoint(
        "open_orders", lambda c: c.open_orders("BTCUSDT"), "GET", "/api/v3/openOrders",
        [OPEN_ORDER], [("symbol", "BTCUSDT")], Security.SIGNED, 6, 0, [OPEN_UPDATE],
    ),
    Endpoint(
        "open_orders_all", lambda c: c.open_orders(), "GET", "/api/v3/openOrders", [], [],
        Security.SIGNED, 80, 0, [],
    ),
    Endpoint(
        "place_order", lambda c: c.place_order(LIMIT_BUY), "POST", "/api/v3/order",
        PLACED_FULL, LIMIT_BUY_WIRE, Security.SIGNED, 1, 1, (PLACED_UPDATE, (PLACED_FILL,)),
    ),
    Endpoint(
        "query_order", lambda c: c.query_order("BTCUSDT", CID), "GET", "/api/v3/order",
        OPEN_ORDER, [("symbol", "BTCUSDT"), ("origClientOrderId", CID)], Security.SIGNED, 4, 0,
        OPEN_UPDATE,
    ),
    Endpoint(
        "cancel_order", lambda c: c.cancel_order("BTCUSDT", CID), "DELETE", "/api/v3/order",
        CANCELED, [("symbol", "BTCUSDT"), ("origClientOrderId", CID)], Security.SIGNED, 1, 0,
        CANCELED_UPDATE,
    ),
    Endpoint(
        "cancel_replace",
        lambda c: c.cancel_replace(
            CID, SubmitOrder("tb-s1-000043", "s1", "BTCUSDT", Side.BUY, OrderType.LIMIT,
                             Decimal("0.00100000"), NOW_MS, price=Decimal("30000.00"))
        ),
        "POST", "/api/v3/order/cancelReplace", CANCEL_REPLACE,
        [("cancelReplaceMode", "STOP_ON_FAILURE"), ("cancelOrigClientOrderId", CID),
         *[(k, "tb-s1-000043" if k == "newClientOrderId" else v) for k, v in LIMIT_BUY_WIRE]],
        Security.SIGNED, 1, 1,
        CancelReplaceResult(
            "success", "success", canceled=CANCELED_UPDATE,
            new_order=OrderUpdated(
                "tb-s1-000043", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW,
                Decimal("0.001"), Decimal(0), NOW_MS + 12, price=Decimal(30000),
                exchange_order_id=12346, time_in_force=TimeInForce.GTC,
            ),
        ),
    ),
    Endpoint(
        "my_trades", lambda c: c.my_trades("BNBBTC", from_id=28000, start_ms=1499865549000,
                                           limit=10),
        "GET", "/api/v3/myTrades", MY_TRADES,
        [("symbol", "BNBBTC"), ("fromId", "28000"), ("startTime", "1499865549000"),
         ("limit", "10")],
        Security.SIGNED, 20, 0, [BNB_FILL],
    ),
    Endpoint(
        "my_trades_of_an_order", lambda c: c.my_trades("BNBBTC", order_id=100234),
        "GET", "/api/v3/myTrades", MY_TRADES,
        [("symbol", "BNBBTC"), ("orderId", "100234"), ("limit", "500")],
        Security.SIGNED, 5, 0, [BNB_FILL],
    ),
]  # fmt: skip


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
async def test_endpoint_on_the_wire(
    endpoint: Endpoint, server: ScriptedBinance, client: SpotClient
) -> None:
    server.on(endpoint.method, endpoint.path, json_response(endpoint.answer))
    result, spent = await metered(client.transport, endpoint.run(client))
    (got,) = server.received
    assert (got.method, got.path) == (endpoint.method, endpoint.path)
    assert business_params(got) == endpoint.params
    assert_security(got, endpoint.security)
    assert spent == (endpoint.weight, endpoint.orders)
    assert result == endpoint.expected


# -- exchangeInfo and the rate limits ----------------------------------------------------------


async def test_exchange_info_installs_the_venue_rate_limits(
    server: ScriptedBinance, client: SpotClient
) -> None:
    server.on("GET", "/api/v3/exchangeInfo", json_response(EXCHANGE_INFO))
    info, spent = await metered(client.transport, client.exchange_info(["BTCUSDT", "ETHUSDT"]))
    (got,) = server.received
    assert business_params(got) == [("symbols", '["BTCUSDT","ETHUSDT"]')]
    assert_security(got, Security.NONE)
    assert spent == (20, 0)
    rules = {
        f"{r['kind']} {r['window']}": (r["limit"], r["used"])
        for r in client.transport.limiter.snapshot()["rules"]
    }
    # The venue's numbers replace the defaults (ORDERS 100/10s, 200000/1d); counts survive.
    assert rules == {
        "REQUEST_WEIGHT 1M": (6000, 20),
        "ORDERS 10S": (50, 0),
        "ORDERS 1D": (160000, 0),
        "RAW_REQUESTS 5M": (61000, 1),
    }
    btc = info.symbols["BTCUSDT"]
    assert (btc.base_asset, btc.quote_asset, btc.status) == ("BTC", "USDT", "TRADING")
    assert btc.price_filter is not None
    assert btc.price_filter.tick_size == Decimal("0.01")
    assert btc.lot_size is not None
    assert btc.lot_size.step_size == Decimal("0.00001")
    assert info.server_time_ms == 1565246363776


async def test_exchange_info_for_all_symbols_sends_no_parameter(
    server: ScriptedBinance, client: SpotClient
) -> None:
    server.on("GET", "/api/v3/exchangeInfo", json_response(EXCHANGE_INFO))
    await client.exchange_info()
    assert server.received[0].query_string == ""


async def test_recorded_exchange_info_installs_its_limits(
    binance_fixtures: Path, server: ScriptedBinance, client: SpotClient
) -> None:
    server.on(
        "GET",
        "/api/v3/exchangeInfo",
        recorded(binance_fixtures, "rest/http_spot_market_exchange_info.json"),
    )
    info = await client.exchange_info()
    assert set(info.symbols) == {"BTCUSDT", "ETHUSDT"}
    limits = {
        f"{r['kind']} {r['window']}": r["limit"]
        for r in client.transport.limiter.snapshot()["rules"]
    }
    assert limits == {
        "REQUEST_WEIGHT 1M": 1200,
        "ORDERS 10S": 50,
        "ORDERS 1D": 160000,
        "RAW_REQUESTS 5M": 6100,
    }


async def test_exchange_info_without_rate_limits_keeps_the_defaults(
    binance_fixtures: Path, server: ScriptedBinance, client: SpotClient
) -> None:
    # This recorded answer carries "rateLimits": []: no limits at all is never the truth.
    server.on(
        "GET",
        "/api/v3/exchangeInfo",
        recorded(binance_fixtures, "nautilus_rust/spot/http_json/exchange_info_response.json"),
    )
    info = await client.exchange_info()
    assert set(info.symbols) == {"ETHBTC"}
    limits = {r["limit"] for r in client.transport.limiter.snapshot()["rules"]}
    assert limits == {rule.limit for rule in DEFAULT_SPOT_RULES}


# -- klines: the server's clock decides which bar is still open --------------------------------


async def test_kline_closed_flag_follows_server_time(
    server: ScriptedBinance, client: SpotClient, clock: ManualClock
) -> None:
    # Binance's clock runs 30 s behind ours: the bar closing 1 ms ago here is open there.
    server.on("GET", "/api/v3/time", json_response({"serverTime": NOW_MS - 30_000}))
    server.on("GET", "/api/v3/klines", json_response(KLINES[:2]))
    await client.transport.sync_time()
    bars = await client.klines("BTCUSDT", "1m", limit=2)
    assert [bar.closed for bar in bars] == [True, False]
    clock.advance(31)
    assert [bar.closed for bar in await client.klines("BTCUSDT", "1m", limit=2)] == [True, True]


# -- failures: placement is never repeated, cancels and reads are ------------------------------


@pytest.mark.parametrize(
    ("run", "path"),
    [
        (lambda c: c.place_order(LIMIT_BUY), "/api/v3/order"),
        (lambda c: c.cancel_replace(CID, LIMIT_BUY), "/api/v3/order/cancelReplace"),
    ],
    ids=["place_order", "cancel_replace"],
)
async def test_placement_is_not_retried_after_a_503(
    run: Callable[[SpotClient], Awaitable[object]], path: str, server: ScriptedBinance,
    client: SpotClient,
) -> None:  # fmt: skip
    server.on("POST", path, text_response("Service Unavailable", status=503), json_response({}))
    with pytest.raises(StatusUnknownError):
        async with asyncio.timeout(DEFECT_BOUND_S):  # a retry would sleep forever
            await run(client)
    assert len(server.calls("POST", path)) == 1


async def test_placement_rejection_keeps_the_code(
    server: ScriptedBinance, client: SpotClient
) -> None:
    refusal = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
    server.on("POST", "/api/v3/order", json_response(refusal, status=400))
    with pytest.raises(RejectedError) as raised:
        await client.place_order(LIMIT_BUY)
    assert raised.value.code == -2010
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("method", "run", "answer", "expected"),
    [
        ("DELETE", lambda c: c.cancel_order("BTCUSDT", CID), CANCELED, CANCELED_UPDATE),
        ("GET", lambda c: c.query_order("BTCUSDT", CID), OPEN_ORDER, OPEN_UPDATE),
    ],
    ids=["cancel_order", "query_order"],
)
async def test_cancels_and_queries_are_retried_after_a_503(
    method: str, run: Callable[[SpotClient], Awaitable[object]], answer: Any, expected: object,
    server: ScriptedBinance, client: SpotClient, clock: ManualClock,
) -> None:  # fmt: skip
    server.on(method, "/api/v3/order", text_response("busy", status=503), json_response(answer))
    pending = asyncio.ensure_future(run(client))
    async with asyncio.timeout(DEFECT_BOUND_S):  # no retry would leave no sleeper
        await clock.wait_for_sleepers()
    clock.advance(4.0)  # the policy's cap; the jittered wait stays below it
    assert await pending == expected
    first, second = server.calls(method, "/api/v3/order")
    assert first.signature_ok()
    assert second.signature_ok()


async def test_cancel_of_an_unknown_order_is_not_found_and_not_retried(
    server: ScriptedBinance, client: SpotClient
) -> None:
    refusal = {"code": -2011, "msg": "Unknown order sent."}
    server.on("DELETE", "/api/v3/order", json_response(refusal, status=400))
    with pytest.raises(NotFoundError):
        await client.cancel_order("BTCUSDT", CID)
    assert len(server.received) == 1


# -- recorded payloads -------------------------------------------------------------------------

SPOT_JSON = "nautilus_rust/spot/http_json"


async def test_recorded_order_answers(
    binance_fixtures: Path, server: ScriptedBinance, client: SpotClient
) -> None:
    serve_recorded(server, binance_fixtures, {
        ("POST", "/api/v3/order"): f"{SPOT_JSON}/new_order_full_response.json",
        ("GET", "/api/v3/order"): f"{SPOT_JSON}/order_response.json",
        ("DELETE", "/api/v3/order"): f"{SPOT_JSON}/cancel_order_response.json",
        ("GET", "/api/v3/openOrders"): f"{SPOT_JSON}/open_orders_response.json",
    })  # fmt: skip

    placed, fills = await client.place_order(LIMIT_BUY)
    assert (placed.client_order_id, placed.exchange_order_id, placed.status) == (
        "6gCrw2kRUAF9CvJDGP16IP",
        28,
        OrderStatus.FILLED,
    )
    assert [f.trade_id for f in fills] == [56, 57, 58, 59, 60]
    assert sum(f.quantity for f in fills) == placed.filled_quantity == Decimal(10)
    assert (fills[1].fee, fills[1].fee_asset) == (Decimal("19.995"), "USDT")

    queried = await client.query_order("LTCBTC", "myOrder1")
    assert (queried.client_order_id, queried.price, queried.status) == (
        "myOrder1",
        Decimal("0.1"),
        OrderStatus.NEW,
    )
    canceled = await client.cancel_order("LTCBTC", "myOrder1")
    assert (canceled.client_order_id, canceled.exchange_order_id, canceled.status) == (
        "myOrder1",
        4,
        OrderStatus.CANCELED,
    )
    assert [o.client_order_id for o in await client.open_orders("LTCBTC")] == ["myOrder1"]


async def test_recorded_account_trades_and_market_answers(
    binance_fixtures: Path, server: ScriptedBinance, client: SpotClient
) -> None:
    serve_recorded(server, binance_fixtures, {
        ("GET", "/api/v3/account"): f"{SPOT_JSON}/account_response.json",
        ("GET", "/api/v3/myTrades"): f"{SPOT_JSON}/account_trades_response.json",
        ("GET", "/api/v3/ticker/bookTicker"): f"{SPOT_JSON}/book_ticker_response.json",
        ("GET", "/api/v3/time"): f"{SPOT_JSON}/server_time_response.json",
        ("GET", "/api/v3/klines"): "rest/http_spot_market_klines.json",
    })  # fmt: skip

    balances = await client.account()
    assert [(b.asset, b.free) for b in balances] == [
        ("BTC", Decimal("4723846.89208129")),
        ("LTC", Decimal("4763368.68006011")),
    ]
    assert await client.my_trades("BNBBTC") == [BNB_FILL]
    assert await client.book_tickers("LTCBTC") == [LTCBTC_BOOK]
    assert await client.server_time_ms() == 1499827319559
    bars = await client.klines("BTCUSDT", "1m", limit=10)
    assert len(bars) == 10
    assert all(bar.closed for bar in bars)  # recorded in 2021, long closed by NOW_MS
    assert [b.open_time_ms for b in bars] == sorted(b.open_time_ms for b in bars)
