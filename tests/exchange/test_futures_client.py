"""FuturesClient against a scripted USDⓈ-M Binance on 127.0.0.1, with a ManualClock.

Every endpoint is checked on the wire (method, path, exact parameters in order, API key and
signature), on the rate-limit budget it spends and on the domain values it returns; then the
behaviours that matter for trading: conditional orders go to the algo endpoint, set-up calls
treat "already so" as success, placement is never repeated while cancels are. Answers are the
Binance docs' examples written inline; recorded payloads are replayed on top when present.
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
    AlgoOrderUpdated,
    Balance,
    BookTicker,
    Fill,
    Kline,
    MarkPrice,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionSnapshot,
    Side,
    SubmitOrder,
    TimeInForce,
)
from app.domain.clock import ManualClock
from app.errors import NotFoundError, RejectedError, StatusUnknownError
from exchange.binance.futures import FuturesClient, kline_weight
from exchange.binance.parse_market import FundingInfo
from exchange.binance.ratelimit import DEFAULT_USDM_RULES, RateLimiter
from exchange.binance.rest import RestTransport, RetryPolicy, Security
from exchange.binance.signing import HmacSigner
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
LISTEN_KEY = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"

LIMIT_BUY = SubmitOrder(
    CID, "s1", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.010"), NOW_MS,
    price=Decimal("43000.0"), time_in_force=TimeInForce.GTX,
)  # fmt: skip
STOP_SELL = SubmitOrder(
    CID, "s1", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, Decimal("0.010"), NOW_MS,
    stop_price=Decimal("41000.00"), reduce_only=True,
)  # fmt: skip
TAKE_PROFIT_SELL = SubmitOrder(
    CID, "s1", "BTCUSDT", Side.SELL, OrderType.TAKE_PROFIT_LIMIT, Decimal("0.010"), NOW_MS,
    price=Decimal("46000.0"), stop_price=Decimal("45900.0"),
)  # fmt: skip


# -- the harness -------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[ScriptedBinance]:
    async with scripted_binance() as scripted:
        yield scripted


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ms=NOW_MS)


@pytest.fixture
async def client(server: ScriptedBinance, clock: ManualClock) -> AsyncIterator[FuturesClient]:
    transport = RestTransport(
        base_url=server.base_url,
        server_time_path="/fapi/v1/time",
        clock=clock,
        limiter=RateLimiter(clock=clock, rules=DEFAULT_USDM_RULES, name="usdm-test"),
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_SECRET),
        recv_window_ms=5000,
        timeout_s=5.0,
        retry=RetryPolicy(attempts=3, wait_initial_s=1.0, wait_max_s=4.0),
    )
    async with transport:
        yield FuturesClient(transport)


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
        for kind in ("REQUEST_WEIGHT", "ORDERS")
    }
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


def serve_recorded(
    server: ScriptedBinance, folder: Path, routes: dict[tuple[str, str], str]
) -> None:
    for (method, path), name in routes.items():
        server.on(method, path, Reply(text=(folder / name).read_text()))


# -- answers as the Binance USDⓈ-M docs show them ----------------------------------------------

EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC", "serverTime": 1565613908500, "futuresType": "U_MARGINED",
    # A higher tier's limits, so that installing them is visible against the defaults.
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 5000},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 2000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 666},
    ],
    "exchangeFilters": [], "assets": [],
    "symbols": [{
        "symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL",
        "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT",
        "pricePrecision": 2, "quantityPrecision": 3, "triggerProtect": "0.0500",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764",
             "tickSize": "0.10"},
            {"filterType": "LOT_SIZE", "stepSize": "0.001", "maxQty": "1000", "minQty": "0.001"},
            {"filterType": "MIN_NOTIONAL", "notional": "100"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }],
}  # fmt: skip
KLINES = [
    [NOW_MS - 60_000, "43010.10", "43020.00", "42990.00", "43000.00", "25.120", NOW_MS - 1,
     "1080350.52000", 3100, "12.500", "537500.00000", "0"],
    [NOW_MS, "43000.00", "43005.00", "42998.10", "43001.50", "0.850", NOW_MS + 59_999,
     "36550.10000", 90, "0.400", "17200.00000", "0"],
]  # fmt: skip
BOOK_TICKER = {
    "lastUpdateId": 1027024, "symbol": "BTCUSDT", "bidPrice": "4.00000000",
    "bidQty": "431.00000000", "askPrice": "4.00000200", "askQty": "9.00000000",
    "time": 1589437530011,
}  # fmt: skip
BTC_BOOK = BookTicker(
    "BTCUSDT", Decimal(4), Decimal(431), Decimal("4.000002"), Decimal(9), 1589437530011, 1027024
)
PREMIUM_INDEX = {
    "symbol": "BTCUSDT", "markPrice": "11793.63104562", "indexPrice": "11781.80495970",
    "estimatedSettlePrice": "11781.16138815", "lastFundingRate": "0.00038246",
    "interestRate": "0.00010000", "nextFundingTime": 1597392000000, "time": 1597370495002,
}  # fmt: skip
BTC_MARK = MarkPrice(
    "BTCUSDT", Decimal("11793.63104562"), Decimal("11781.80495970"), Decimal("0.00038246"),
    1597392000000, 1597370495002,
)  # fmt: skip
FUNDING_INFO = [{
    "symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02500000",
    "adjustedFundingRateFloor": "-0.02500000", "fundingIntervalHours": 8, "disclaimer": False,
}]  # fmt: skip
ACCOUNT = {
    "totalWalletBalance": "103.12345678", "availableBalance": "103.12345678",
    "assets": [{
        "asset": "USDT", "walletBalance": "103.12345678", "unrealizedProfit": "5.00000000",
        "marginBalance": "108.12345678", "crossWalletBalance": "103.12345678",
        "availableBalance": "86.62345678", "maxWithdrawAmount": "86.62345678",
        "updateTime": 1625474304765,
    }],
    # v3 reports no entry price: notional 430 with pnl 5 on 0.010 means entry 42500.
    "positions": [{
        "symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "0.010",
        "unrealizedProfit": "5.00000000", "isolatedMargin": "0.00000000",
        "notional": "430.00000000", "isolatedWallet": "0", "initialMargin": "21.50000000",
        "maintMargin": "1.72000000", "updateTime": 1720736417660,
    }],
}  # fmt: skip
USDT = Balance(
    "USDT", Decimal("103.12345678"), Decimal(0), cross_wallet=Decimal("103.12345678"),
    available=Decimal("86.62345678"),
)  # fmt: skip
BALANCES = [{
    "accountAlias": "SgsR", "asset": "USDT", "balance": "122.12345678",
    "crossWalletBalance": "23.72469206", "crossUnPnl": "0.00000000",
    "availableBalance": "23.72469206", "maxWithdrawAmount": "23.72469206",
    "marginAvailable": True, "updateTime": 1617939110373,
}]  # fmt: skip
POSITION_RISK = [{
    "symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "-0.010",
    "entryPrice": "43100.0", "breakEvenPrice": "43080.0", "markPrice": "43000.00000000",
    "unRealizedProfit": "1.00000000", "liquidationPrice": "51234.5", "isolatedMargin": "0",
    "notional": "-430.00000000", "marginAsset": "USDT", "isolatedWallet": "0",
    "initialMargin": "21.5", "maintMargin": "1.72", "adl": 1, "updateTime": 1720736417660,
}]  # fmt: skip
SHORT = PositionSnapshot(
    "BTCUSDT", Decimal("-0.01"), Decimal(43100), Decimal(1), mark_price=Decimal(43000),
    liquidation_price=Decimal("51234.5"),
)  # fmt: skip
ORDER = {
    "orderId": 4097372160, "symbol": "BTCUSDT", "status": "NEW", "clientOrderId": CID,
    "price": "43000.00", "avgPrice": "0.00", "origQty": "0.010", "executedQty": "0.000",
    "cumQty": "0.000", "cumQuote": "0.00000", "timeInForce": "GTX", "type": "LIMIT",
    "reduceOnly": False, "closePosition": False, "side": "BUY", "positionSide": "BOTH",
    "stopPrice": "0.00", "workingType": "CONTRACT_PRICE", "priceProtect": False,
    "origType": "LIMIT", "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
    "goodTillDate": 0, "updateTime": NOW_MS + 15,
}  # fmt: skip
ORDER_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, Decimal("0.01"), Decimal(0),
    NOW_MS + 15, price=Decimal(43000), exchange_order_id=4097372160,
    time_in_force=TimeInForce.GTX,
)  # fmt: skip
MODIFIED = {**ORDER, "price": "42950.00", "origQty": "0.020", "updateTime": NOW_MS + 40}
CANCELED = {**ORDER, "status": "CANCELED", "updateTime": NOW_MS + 50}
CANCELED_UPDATE = OrderUpdated(
    CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.CANCELED, Decimal("0.01"), Decimal(0),
    NOW_MS + 50, price=Decimal(43000), exchange_order_id=4097372160,
    time_in_force=TimeInForce.GTX,
)  # fmt: skip
ALGO = {
    "algoId": 2146760, "clientAlgoId": CID, "algoType": "CONDITIONAL",
    "orderType": "STOP_MARKET", "symbol": "BTCUSDT", "side": "SELL", "positionSide": "BOTH",
    "timeInForce": "GTC", "quantity": "0.010", "algoStatus": "NEW",
    "triggerPrice": "41000.00", "price": "0.00", "icebergQuantity": None,
    "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": "CONTRACT_PRICE",
    "priceMatch": "NONE", "closePosition": False, "priceProtect": False, "reduceOnly": True,
    "activatePrice": "", "callbackRate": "", "createTime": NOW_MS + 20,
    "updateTime": NOW_MS + 20, "triggerTime": 0, "goodTillDate": 0,
}  # fmt: skip
ALGO_UPDATE = AlgoOrderUpdated(
    CID, 2146760, "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, "new", Decimal("0.01"),
    NOW_MS + 20, trigger_price=Decimal(41000), reduce_only=True, time_in_force=TimeInForce.GTC,
)  # fmt: skip
USER_TRADES = [{
    "buyer": False, "commission": "-0.07819010", "commissionAsset": "USDT", "id": 698759,
    "maker": False, "orderId": 25851813, "price": "7819.01", "qty": "0.002",
    "quoteQty": "15.63802", "realizedPnl": "-0.91539999", "side": "SELL",
    "positionSide": "SHORT", "symbol": "BTCUSDT", "time": 1569514978020,
}]  # fmt: skip
SELL_FILL = Fill(
    698759, "", "BTCUSDT", Side.SELL, Decimal("7819.01"), Decimal("0.002"),
    Decimal("-0.0781901"), "USDT", False, 1569514978020, realized_pnl=Decimal("-0.91539999"),
    exchange_order_id=25851813,
)  # fmt: skip
OK = {"code": 200, "msg": "success"}


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
    run: Callable[[FuturesClient], Awaitable[object]]
    method: str
    path: str
    answer: Any
    params: list[tuple[str, str]]
    security: Security
    weight: int
    orders: int
    expected: object


SYMBOL = [("symbol", "BTCUSDT")]
BY_CID = [("symbol", "BTCUSDT"), ("origClientOrderId", CID)]

ENDPOINTS = [
    Endpoint("server_time", lambda c: c.server_time_ms(), "GET", "/fapi/v1/time",
             {"serverTime": 1499827319559}, [], Security.NONE, 1, 0, 1499827319559),
    Endpoint("klines", lambda c: c.klines("BTCUSDT", "1m", start_ms=NOW_MS - 60_000, limit=2),
             "GET", "/fapi/v1/klines", KLINES,
             [*SYMBOL, ("interval", "1m"), ("startTime", str(NOW_MS - 60_000)), ("limit", "2")],
             Security.NONE, 1, 0,
             [kline(KLINES[0], closed=True), kline(KLINES[1], closed=False)]),
    Endpoint("book_ticker", lambda c: c.book_tickers("BTCUSDT"), "GET",
             "/fapi/v1/ticker/bookTicker", BOOK_TICKER, SYMBOL, Security.NONE, 2, 0, [BTC_BOOK]),
    Endpoint("book_tickers_all", lambda c: c.book_tickers(), "GET", "/fapi/v1/ticker/bookTicker",
             [BOOK_TICKER], [], Security.NONE, 5, 0, [BTC_BOOK]),
    Endpoint("premium_index", lambda c: c.premium_index("BTCUSDT"), "GET",
             "/fapi/v1/premiumIndex", PREMIUM_INDEX, SYMBOL, Security.NONE, 1, 0, [BTC_MARK]),
    Endpoint("premium_index_all", lambda c: c.premium_index(), "GET", "/fapi/v1/premiumIndex",
             [PREMIUM_INDEX], [], Security.NONE, 10, 0, [BTC_MARK]),
    Endpoint("funding_info", lambda c: c.funding_info(), "GET", "/fapi/v1/fundingInfo",
             FUNDING_INFO, [], Security.NONE, 1, 0,
             {"BLZUSDT": FundingInfo("BLZUSDT", 8, Decimal("0.025"), Decimal("-0.025"))}),
    Endpoint("account", lambda c: c.account(), "GET", "/fapi/v3/account", ACCOUNT, [],
             Security.SIGNED, 5, 0,
             ((USDT,), (PositionSnapshot("BTCUSDT", Decimal("0.01"), Decimal(42500),
                                         Decimal(5)),))),
    Endpoint("balances", lambda c: c.balances(), "GET", "/fapi/v3/balance", BALANCES, [],
             Security.SIGNED, 5, 0,
             (Balance("USDT", Decimal("122.12345678"), Decimal(0),
                      cross_wallet=Decimal("23.72469206"), available=Decimal("23.72469206")),)),
    Endpoint("position_risk", lambda c: c.position_risk("BTCUSDT"), "GET",
             "/fapi/v3/positionRisk", POSITION_RISK, SYMBOL, Security.SIGNED, 5, 0, (SHORT,)),
    Endpoint("position_risk_all", lambda c: c.position_risk(), "GET", "/fapi/v3/positionRisk",
             POSITION_RISK, [], Security.SIGNED, 5, 0, (SHORT,)),
    Endpoint("set_leverage", lambda c: c.set_leverage("BTCUSDT", 21), "POST",
             "/fapi/v1/leverage", {"leverage": 21, "maxNotionalValue": "1000000",
                                   "symbol": "BTCUSDT"},
             [*SYMBOL, ("leverage", "21")], Security.SIGNED, 1, 0, None),
    Endpoint("set_margin_type", lambda c: c.set_margin_type("BTCUSDT", "isolated"), "POST",
             "/fapi/v1/marginType", OK, [*SYMBOL, ("marginType", "ISOLATED")],
             Security.SIGNED, 1, 0, None),
    Endpoint("hedge_mode", lambda c: c.hedge_mode(), "GET", "/fapi/v1/positionSide/dual",
             {"dualSidePosition": True}, [], Security.SIGNED, 30, 0, True),
    Endpoint("set_hedge_mode", lambda c: c.set_hedge_mode(False), "POST",
             "/fapi/v1/positionSide/dual", OK, [("dualSidePosition", "false")],
             Security.SIGNED, 1, 0, None),
    Endpoint("open_orders", lambda c: c.open_orders("BTCUSDT"), "GET", "/fapi/v1/openOrders",
             [ORDER], SYMBOL, Security.SIGNED, 1, 0, [ORDER_UPDATE]),
    Endpoint("open_orders_all", lambda c: c.open_orders(), "GET", "/fapi/v1/openOrders", [],
             [], Security.SIGNED, 40, 0, []),
    Endpoint("place_limit", lambda c: c.place_order(LIMIT_BUY), "POST", "/fapi/v1/order",
             ORDER,
             [*SYMBOL, ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTX"),
              ("quantity", "0.010"), ("price", "43000.0"), ("newClientOrderId", CID),
              ("newOrderRespType", "RESULT")],
             Security.SIGNED, 0, 1, ORDER_UPDATE),
    Endpoint("place_stop_market", lambda c: c.place_order(STOP_SELL), "POST",
             "/fapi/v1/algoOrder", ALGO,
             [("algoType", "CONDITIONAL"), *SYMBOL, ("side", "SELL"), ("type", "STOP_MARKET"),
              ("quantity", "0.010"), ("triggerPrice", "41000.00"), ("reduceOnly", "true"),
              ("clientAlgoId", CID)],
             Security.SIGNED, 1, 1, ALGO_UPDATE),
    Endpoint("modify_order",
             lambda c: c.modify_order("BTCUSDT", CID, side="BUY", quantity=Decimal("0.020"),
                                      price=Decimal("42950.00")),
             "PUT", "/fapi/v1/order", MODIFIED,
             [*BY_CID, ("side", "BUY"), ("quantity", "0.020"), ("price", "42950.00")],
             Security.SIGNED, 1, 1,
             OrderUpdated(CID, "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW,
                          Decimal("0.02"), Decimal(0), NOW_MS + 40, price=Decimal(42950),
                          exchange_order_id=4097372160, time_in_force=TimeInForce.GTX)),
    Endpoint("query_order", lambda c: c.query_order("BTCUSDT", CID), "GET", "/fapi/v1/order",
             ORDER, BY_CID, Security.SIGNED, 1, 0, ORDER_UPDATE),
    Endpoint("cancel_order", lambda c: c.cancel_order("BTCUSDT", CID), "DELETE",
             "/fapi/v1/order", CANCELED, BY_CID, Security.SIGNED, 1, 0, CANCELED_UPDATE),
    Endpoint("query_algo_order", lambda c: c.query_algo_order(CID), "GET", "/fapi/v1/algoOrder",
             ALGO, [("clientAlgoId", CID)], Security.SIGNED, 1, 0, ALGO_UPDATE),
    Endpoint("cancel_algo_order", lambda c: c.cancel_algo_order(CID), "DELETE",
             "/fapi/v1/algoOrder",
             {"algoId": 2146760, "clientAlgoId": CID, "code": "200", "msg": "success"},
             [("clientAlgoId", CID)], Security.SIGNED, 1, 0, None),
    Endpoint("open_algo_orders", lambda c: c.open_algo_orders("BTCUSDT"), "GET",
             "/fapi/v1/openAlgoOrders", [ALGO], SYMBOL, Security.SIGNED, 1, 0, [ALGO_UPDATE]),
    Endpoint("open_algo_orders_all", lambda c: c.open_algo_orders(), "GET",
             "/fapi/v1/openAlgoOrders", [], [], Security.SIGNED, 40, 0, []),
    Endpoint("user_trades",
             lambda c: c.user_trades("BTCUSDT", order_id=25851813, start_ms=1569514970000),
             "GET", "/fapi/v1/userTrades", USER_TRADES,
             [*SYMBOL, ("orderId", "25851813"), ("startTime", "1569514970000"), ("limit", "500")],
             Security.SIGNED, 5, 0, [SELL_FILL]),
    Endpoint("create_listen_key", lambda c: c.create_listen_key(), "POST", "/fapi/v1/listenKey",
             {"listenKey": LISTEN_KEY}, [], Security.API_KEY, 1, 0, LISTEN_KEY),
    Endpoint("keepalive_listen_key", lambda c: c.keepalive_listen_key(), "PUT",
             "/fapi/v1/listenKey", {"listenKey": LISTEN_KEY}, [], Security.API_KEY, 1, 0, None),
    Endpoint("close_listen_key", lambda c: c.close_listen_key(), "DELETE", "/fapi/v1/listenKey",
             {}, [], Security.API_KEY, 1, 0, None),
]  # fmt: skip


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
async def test_endpoint_on_the_wire(
    endpoint: Endpoint, server: ScriptedBinance, client: FuturesClient
) -> None:
    server.on(endpoint.method, endpoint.path, json_response(endpoint.answer))
    result, spent = await metered(client.transport, endpoint.run(client))
    (got,) = server.received
    assert (got.method, got.path) == (endpoint.method, endpoint.path)
    assert business_params(got) == endpoint.params
    assert_security(got, endpoint.security)
    assert spent == (endpoint.weight, endpoint.orders)
    assert result == endpoint.expected


# -- routing, klines weight, exchangeInfo ------------------------------------------------------


async def test_limit_conditional_orders_carry_trigger_price_and_time_in_force(
    server: ScriptedBinance, client: FuturesClient
) -> None:
    answer = {**ALGO, "orderType": "TAKE_PROFIT", "side": "SELL", "triggerPrice": "45900.0",
              "price": "46000.0", "reduceOnly": False}  # fmt: skip
    server.on("POST", "/fapi/v1/algoOrder", json_response(answer))
    placed = await client.place_order(TAKE_PROFIT_SELL)
    assert server.calls("POST", "/fapi/v1/order") == []
    (got,) = server.calls("POST", "/fapi/v1/algoOrder")
    assert business_params(got) == [
        ("algoType", "CONDITIONAL"), *SYMBOL, ("side", "SELL"), ("type", "TAKE_PROFIT"),
        ("quantity", "0.010"), ("triggerPrice", "45900.0"), ("timeInForce", "GTC"),
        ("price", "46000.0"), ("clientAlgoId", CID),
    ]  # fmt: skip
    assert isinstance(placed, AlgoOrderUpdated)
    assert (placed.order_type, placed.trigger_price, placed.price) == (
        OrderType.TAKE_PROFIT_LIMIT,
        Decimal("45900.0"),
        Decimal("46000.0"),
    )


@pytest.mark.parametrize(
    ("limit", "weight"),
    [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10), (1500, 10)],
)
def test_kline_weight_boundaries(limit: int, weight: int) -> None:
    assert kline_weight(limit) == weight


@pytest.mark.parametrize(("limit", "weight"), [(99, 1), (100, 2), (500, 5), (1500, 10)])
async def test_klines_are_charged_by_limit(
    limit: int, weight: int, server: ScriptedBinance, client: FuturesClient
) -> None:
    server.on("GET", "/fapi/v1/klines", json_response([]))
    _, spent = await metered(client.transport, client.klines("BTCUSDT", "1h", limit=limit))
    assert spent == (weight, 0)
    assert ("limit", str(limit)) in business_params(server.received[0])


async def test_exchange_info_installs_the_venue_rate_limits(
    server: ScriptedBinance, client: FuturesClient
) -> None:
    server.on("GET", "/fapi/v1/exchangeInfo", json_response(EXCHANGE_INFO))
    info, spent = await metered(client.transport, client.exchange_info())
    (got,) = server.received
    assert (got.query_string, spent) == ("", (1, 0))
    assert_security(got, Security.NONE)
    rules = {
        f"{r['kind']} {r['window']}": (r["limit"], r["used"])
        for r in client.transport.limiter.snapshot()["rules"]
    }
    assert rules == {"REQUEST_WEIGHT 1M": (5000, 1), "ORDERS 1M": (2000, 0), "ORDERS 10S": (666, 0)}
    btc = info.symbols["BTCUSDT"]
    assert (btc.contract_type, btc.price_precision, btc.quantity_precision) == ("PERPETUAL", 2, 3)
    assert btc.lot_size is not None
    assert btc.lot_size.step_size == Decimal("0.001")


# -- set-up calls: "already so" is success -----------------------------------------------------


@pytest.mark.parametrize(
    ("run", "path", "code"),
    [
        (lambda c: c.set_margin_type("BTCUSDT", "CROSSED"), "/fapi/v1/marginType", -4046),
        (lambda c: c.set_hedge_mode(True), "/fapi/v1/positionSide/dual", -4059),
    ],
    ids=["margin_type", "hedge_mode"],
)
async def test_setup_already_in_that_state_is_success(
    run: Callable[[FuturesClient], Awaitable[None]], path: str, code: int,
    server: ScriptedBinance, client: FuturesClient,
) -> None:  # fmt: skip
    refusal = {"code": code, "msg": "No need to change."}
    server.on("POST", path, json_response(refusal, status=400))
    await run(client)  # no exception: the account is as asked
    assert len(server.calls("POST", path)) == 1


@pytest.mark.parametrize(
    ("run", "path", "code"),
    [
        (lambda c: c.set_margin_type("BTCUSDT", "ISOLATED"), "/fapi/v1/marginType", -4047),
        (lambda c: c.set_hedge_mode(True), "/fapi/v1/positionSide/dual", -4068),
    ],
    ids=["margin_type_with_open_orders", "hedge_mode_with_a_position"],
)
async def test_setup_refused_for_another_reason_raises(
    run: Callable[[FuturesClient], Awaitable[None]], path: str, code: int,
    server: ScriptedBinance, client: FuturesClient,
) -> None:  # fmt: skip
    refusal = {"code": code, "msg": "Cannot be changed now."}
    server.on("POST", path, json_response(refusal, status=400))
    with pytest.raises(RejectedError) as raised:
        await run(client)
    assert raised.value.code == code
    assert len(server.calls("POST", path)) == 1


# -- failures: placement is never repeated, cancels are ----------------------------------------


@pytest.mark.parametrize(
    ("run", "method", "path"),
    [
        (lambda c: c.place_order(LIMIT_BUY), "POST", "/fapi/v1/order"),
        (lambda c: c.place_order(STOP_SELL), "POST", "/fapi/v1/algoOrder"),
        (
            lambda c: c.modify_order(
                "BTCUSDT", CID, side="BUY", quantity=Decimal(1), price=Decimal(1)
            ),
            "PUT",
            "/fapi/v1/order",
        ),
    ],
    ids=["place_order", "place_algo_order", "modify_order"],
)
async def test_placement_is_not_retried_after_a_503(
    run: Callable[[FuturesClient], Awaitable[object]], method: str, path: str,
    server: ScriptedBinance, client: FuturesClient,
) -> None:  # fmt: skip
    server.on(method, path, text_response("Service Unavailable", status=503), json_response(ORDER))
    with pytest.raises(StatusUnknownError):
        async with asyncio.timeout(DEFECT_BOUND_S):  # a retry would sleep forever
            await run(client)
    assert len(server.calls(method, path)) == 1


@pytest.mark.parametrize(
    ("run", "path", "answer", "expected"),
    [
        (lambda c: c.cancel_order("BTCUSDT", CID), "/fapi/v1/order", CANCELED, CANCELED_UPDATE),
        (
            lambda c: c.cancel_algo_order(CID),
            "/fapi/v1/algoOrder",
            {"algoId": 2146760, "clientAlgoId": CID, "code": "200", "msg": "success"},
            None,
        ),
    ],
    ids=["cancel_order", "cancel_algo_order"],
)
async def test_cancels_are_retried_after_a_503(
    run: Callable[[FuturesClient], Awaitable[object]], path: str, answer: Any, expected: object,
    server: ScriptedBinance, client: FuturesClient, clock: ManualClock,
) -> None:  # fmt: skip
    server.on("DELETE", path, text_response("busy", status=503), json_response(answer))
    pending = asyncio.ensure_future(run(client))
    async with asyncio.timeout(DEFECT_BOUND_S):  # no retry would leave no sleeper
        await clock.wait_for_sleepers()
    clock.advance(4.0)  # the policy's cap; the jittered wait stays below it
    assert await pending == expected
    assert [got.signature_ok() for got in server.calls("DELETE", path)] == [True, True]


async def test_keepalive_of_an_expired_listen_key_is_not_found(
    server: ScriptedBinance, client: FuturesClient
) -> None:
    refusal = {"code": -1125, "msg": "This listenKey does not exist."}
    server.on("PUT", "/fapi/v1/listenKey", json_response(refusal, status=400))
    with pytest.raises(NotFoundError):
        await client.keepalive_listen_key()
    assert len(server.received) == 1


# -- recorded payloads -------------------------------------------------------------------------

FUTURES_JSON = "nautilus_rust/futures/http_json"


async def test_recorded_order_answers(
    binance_fixtures: Path, server: ScriptedBinance, client: FuturesClient
) -> None:
    order = f"{FUTURES_JSON}/order_response.json"
    serve_recorded(server, binance_fixtures, {
        ("POST", "/fapi/v1/order"): order,
        ("GET", "/fapi/v1/order"): order,
        ("PUT", "/fapi/v1/order"): order,
        ("DELETE", "/fapi/v1/order"): order,
        ("GET", "/fapi/v1/openAlgoOrders"): f"{FUTURES_JSON}/open_algo_orders.json",
    })  # fmt: skip
    expected = OrderUpdated(
        "testOrder123", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, Decimal("0.001"),
        Decimal(0), 1625474304765, price=Decimal(50000), exchange_order_id=12345678,
        time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    assert await client.place_order(LIMIT_BUY) == expected
    assert await client.query_order("BTCUSDT", "testOrder123") == expected
    assert await client.cancel_order("BTCUSDT", "testOrder123") == expected
    modified = await client.modify_order(
        "BTCUSDT", "testOrder123", side="BUY", quantity=Decimal("0.001"), price=Decimal(50000)
    )
    assert modified == expected
    (algo,) = await client.open_algo_orders()
    assert (algo.client_algo_id, algo.algo_id, algo.order_type, algo.status) == (
        "test-algo-order-1",
        123456789,
        OrderType.STOP_MARKET,
        "new",
    )
    assert algo.trigger_price == Decimal(45000)


async def test_recorded_account_answers(
    binance_fixtures: Path, server: ScriptedBinance, client: FuturesClient
) -> None:
    serve_recorded(server, binance_fixtures, {
        ("GET", "/fapi/v3/account"): f"{FUTURES_JSON}/account_info_v2.json",
        ("GET", "/fapi/v3/balance"): f"{FUTURES_JSON}/balance.json",
        ("GET", "/fapi/v3/positionRisk"): f"{FUTURES_JSON}/position_risk.json",
        ("GET", "/fapi/v1/userTrades"): "rest/http_futures_account_trades.json",
        ("GET", "/fapi/v1/positionSide/dual"): "rest/http_futures_account_position_side_dual.json",
        ("POST", "/fapi/v1/listenKey"): "rest_legacy/http_spot_streams_listen_key.json",
    })  # fmt: skip
    balances, positions = await client.account()
    assert [(b.asset, b.free, b.available) for b in balances] == [
        ("USDT", Decimal("23.72469206"), Decimal("23.72469206"))
    ]
    assert [(p.symbol, p.quantity, p.leverage, p.margin_type) for p in positions] == [
        ("BTCUSDT", Decimal(0), 100, "cross")
    ]
    (usdt,) = await client.balances()
    assert (usdt.free, usdt.cross_wallet) == (Decimal("122.12345678"), Decimal("122.12345678"))
    (long,) = await client.position_risk("BTCUSDT")
    assert (long.quantity, long.entry_price, long.mark_price, long.leverage) == (
        Decimal("0.001"),
        Decimal(50000),
        Decimal(51000),
        20,
    )
    sell, buy = await client.user_trades("ETHUSDT")
    assert (sell.side, sell.price, sell.realized_pnl) == (Side.SELL, Decimal("2778.35"), Decimal(0))
    assert (buy.side, buy.fee, buy.realized_pnl) == (
        Side.BUY,
        Decimal("0.00555800"),
        Decimal("-0.00325"),
    )
    assert await client.hedge_mode() is True
    assert await client.create_listen_key() == LISTEN_KEY


async def test_recorded_market_answers(
    binance_fixtures: Path, server: ScriptedBinance, client: FuturesClient
) -> None:
    serve_recorded(server, binance_fixtures, {
        ("GET", "/fapi/v1/exchangeInfo"): "rest/http_futures_market_exchange_info.json",
        ("GET", "/fapi/v1/klines"): "rest/http_futures_market_klines.json",
        ("GET", "/fapi/v1/premiumIndex"): "rest/http_futures_market_premium_index.json",
        ("GET", "/fapi/v1/ticker/bookTicker"): "rest/http_futures_market_book_ticker.json",
    })  # fmt: skip
    info = await client.exchange_info()
    assert set(info.symbols) == {"BTCUSDT", "ETHUSDT", "BTCUSDT_220325"}
    limits = {
        f"{r['kind']} {r['window']}": r["limit"]
        for r in client.transport.limiter.snapshot()["rules"]
    }
    assert limits == {"REQUEST_WEIGHT 1M": 6000, "ORDERS 1M": 1200, "ORDERS 10S": 300}
    (bar,) = await client.klines("BTCUSDT", "1m", limit=1)
    assert (bar.open_time_ms, bar.close, bar.trades, bar.closed) == (
        1499040000000,
        Decimal("0.01577100"),
        308,
        True,
    )
    assert await client.premium_index("BTCUSDT") == [BTC_MARK]
    (book,) = await client.book_tickers("BTCUSDT")
    assert (book.bid_price, book.ask_quantity, book.ts_ms) == (
        Decimal(4),
        Decimal(9),
        1589437530011,
    )


async def test_recorded_one_way_positions(
    binance_fixtures: Path, server: ScriptedBinance, client: FuturesClient
) -> None:
    serve_recorded(server, binance_fixtures, {
        ("GET", "/fapi/v3/positionRisk"): "rest/http_futures_account_positions_one_way.json",
    })  # fmt: skip
    (flat,) = await client.position_risk()
    assert (flat.quantity, flat.position_side, flat.margin_type, flat.leverage) == (
        Decimal(0),
        "BOTH",
        "isolated",
        10,
    )
    assert flat.mark_price == Decimal("6679.50671178")
