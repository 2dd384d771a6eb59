"""REST answers from the Binance docs → domain types, every field checked."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.domain import (
    AlgoOrderUpdated,
    Balance,
    Fill,
    MarketType,
    OrderOrigin,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionSnapshot,
    Side,
    SubmitOrder,
    TimeInForce,
)
from exchange.binance.parse_account import (
    CancelReplaceResult,
    LeverageSetting,
    MalformedPayload,
    Refusal,
    SpotAccountInfo,
    SymbolConfig,
    parse_cancel_replace,
    parse_futures_account,
    parse_futures_algo_order,
    parse_futures_algo_orders,
    parse_futures_balance,
    parse_futures_order,
    parse_futures_orders,
    parse_leverage_response,
    parse_listen_key,
    parse_margin_type_response,
    parse_my_trades,
    parse_position_risk,
    parse_position_side_dual,
    parse_spot_account,
    parse_spot_account_info,
    parse_spot_order,
    parse_spot_orders,
    parse_symbol_config,
)
from exchange.binance.parse_user import MalformedEvent

SPOT_RESULT: dict[str, Any] = {
    "symbol": "BTCUSDT", "orderId": 28, "orderListId": -1,
    "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP", "transactTime": 1507725176595,
    "price": "0.00000000", "origQty": "10.00000000", "executedQty": "3.00000000",
    "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "11999.00000000",
    "status": "PARTIALLY_FILLED", "timeInForce": "GTC", "type": "MARKET", "side": "SELL",
    "workingTime": 1507725176595, "selfTradePreventionMode": "NONE",
}  # fmt: skip
SPOT_FULL = SPOT_RESULT | {
    "fills": [
        {"price": "4000.00000000", "qty": "1.00000000", "commission": "4.00000000",
         "commissionAsset": "USDT", "tradeId": 56},
        {"price": "3999.50000000", "qty": "2.00000000", "commission": "7.99900000",
         "commissionAsset": "USDT", "tradeId": 57},
    ]
}  # fmt: skip
SPOT_CANCEL: dict[str, Any] = {
    "symbol": "LTCBTC", "origClientOrderId": "myOrder1", "orderId": 4, "orderListId": -1,
    "clientOrderId": "cancelMyOrder1", "transactTime": 1684804350068, "price": "2.00000000",
    "origQty": "1.00000000", "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000", "status": "CANCELED", "timeInForce": "GTC",
    "type": "LIMIT", "side": "BUY", "selfTradePreventionMode": "NONE",
}  # fmt: skip
SPOT_QUERY: dict[str, Any] = {
    "symbol": "LTCBTC", "orderId": 1, "orderListId": -1, "clientOrderId": "myOrder1",
    "price": "0.1", "origQty": "1.0", "executedQty": "0.0", "cummulativeQuoteQty": "0.0",
    "status": "NEW", "timeInForce": "GTC", "type": "STOP_LOSS_LIMIT", "side": "BUY",
    "stopPrice": "0.09", "icebergQty": "0.0", "time": 1499827319559,
    "updateTime": 1499827319560, "isWorking": True, "workingTime": 1499827319559,
    "origQuoteOrderQty": "0.000000", "selfTradePreventionMode": "NONE",
}  # fmt: skip
FUTURES_ORDER: dict[str, Any] = {
    "clientOrderId": "testOrder", "cumQty": "0", "cumQuote": "0", "executedQty": "0",
    "orderId": 22542179, "avgPrice": "0.00000", "origQty": "10", "price": "0",
    "reduceOnly": False, "side": "BUY", "positionSide": "SHORT", "status": "NEW",
    "stopPrice": "9300", "closePosition": False, "symbol": "BTCUSDT", "timeInForce": "GTD",
    "type": "TRAILING_STOP_MARKET", "origType": "TRAILING_STOP_MARKET",
    "activatePrice": "9020", "priceRate": "0.3", "updateTime": 1566818724722,
    "workingType": "CONTRACT_PRICE", "priceProtect": False, "priceMatch": "NONE",
    "selfTradePreventionMode": "NONE", "goodTillDate": 1693207680000,
}  # fmt: skip
FUTURES_MODIFIED: dict[str, Any] = {
    "orderId": 20072994037, "symbol": "BTCUSDT", "pair": "BTCUSDT", "status": "PARTIALLY_FILLED",
    "clientOrderId": "LJ9R4QZDihCaS8UAOOLpgW", "price": "30005", "avgPrice": "30004.5",
    "origQty": "1", "executedQty": "0.4", "cumQty": "0.4", "cumBase": "0",
    "timeInForce": "GTC", "type": "LIMIT", "reduceOnly": True, "closePosition": False,
    "side": "SELL", "positionSide": "LONG", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
    "priceProtect": False, "origType": "LIMIT", "priceMatch": "NONE",
    "selfTradePreventionMode": "NONE", "goodTillDate": 0, "updateTime": 1629182711600,
}  # fmt: skip
ALGO_ORDER: dict[str, Any] = {
    "algoId": 2146760, "clientAlgoId": "6B2I9XVcJpCjqPAJ4YoFX7", "algoType": "CONDITIONAL",
    "orderType": "TAKE_PROFIT", "symbol": "BNBUSDT", "side": "SELL", "positionSide": "BOTH",
    "timeInForce": "GTC", "quantity": "0.01", "algoStatus": "NEW", "triggerPrice": "750.000",
    "price": "750.000", "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
    "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": False,
    "priceProtect": False, "reduceOnly": True, "activatePrice": "", "callbackRate": "",
    "createTime": 1750485492076, "updateTime": 1750485492080, "triggerTime": 0,
    "goodTillDate": 0,
}  # fmt: skip


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_spot_full_answer_with_fills() -> None:
    update, fills = parse_spot_order(body(SPOT_FULL))
    assert update == OrderUpdated(
        client_order_id="6gCrw2kRUAF9CvJDGP16IP", symbol="BTCUSDT", side=Side.SELL,
        order_type=OrderType.MARKET, status=OrderStatus.PARTIALLY_FILLED,
        quantity=Decimal(10), filled_quantity=Decimal(3), ts_ms=1507725176595, price=None,
        average_fill_price=Decimal("3999.666666666666666666666667"), exchange_order_id=28,
        execution_type=None, origin=OrderOrigin.CLIENT, time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    assert fills == (
        Fill(56, "6gCrw2kRUAF9CvJDGP16IP", "BTCUSDT", Side.SELL, Decimal(4000), Decimal(1),
             Decimal(4), "USDT", False, 1507725176595, exchange_order_id=28),
        Fill(57, "6gCrw2kRUAF9CvJDGP16IP", "BTCUSDT", Side.SELL, Decimal("3999.5"),
             Decimal(2), Decimal("7.999"), "USDT", False, 1507725176595,
             exchange_order_id=28),
    )  # fmt: skip
    assert parse_spot_order(body(SPOT_RESULT)) == (update, ())


def test_spot_ack_answer_needs_its_request() -> None:
    ack = {"symbol": "BTCUSDT", "orderId": 28, "orderListId": -1,
           "clientOrderId": "tb-7", "transactTime": 1507725176595}  # fmt: skip
    request = SubmitOrder(
        "tb-7", "s1", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.5"), 1507725176000,
        price=Decimal(100), time_in_force=TimeInForce.IOC,
    )  # fmt: skip
    assert parse_spot_order(body(ack), request=request) == (
        OrderUpdated("tb-7", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW,
                     Decimal("0.5"), Decimal(0), 1507725176595, price=Decimal(100),
                     exchange_order_id=28, time_in_force=TimeInForce.IOC),
        (),
    )  # fmt: skip
    with pytest.raises(MalformedPayload, match="ACK"):
        parse_spot_order(body(ack))


def test_spot_cancel_answer_reports_our_original_id() -> None:
    update, fills = parse_spot_order(body(SPOT_CANCEL))
    assert update == OrderUpdated(
        "myOrder1", "LTCBTC", Side.BUY, OrderType.LIMIT, OrderStatus.CANCELED, Decimal(1),
        Decimal(0), 1684804350068, price=Decimal(2), exchange_order_id=4,
        time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    assert fills == ()


def test_spot_query_answer_uses_update_time() -> None:
    update, _ = parse_spot_order(body(SPOT_QUERY))
    assert update == OrderUpdated(
        "myOrder1", "LTCBTC", Side.BUY, OrderType.STOP_LIMIT, OrderStatus.NEW, Decimal(1),
        Decimal(0), 1499827319560, price=Decimal("0.1"), exchange_order_id=1,
        stop_price=Decimal("0.09"), time_in_force=TimeInForce.GTC,
    )  # fmt: skip


def test_spot_order_lists_flatten_order_list_reports() -> None:
    order_list = {
        "orderListId": 1929, "contingencyType": "OCO", "listStatusType": "ALL_DONE",
        "listOrderStatus": "ALL_DONE", "listClientOrderId": "2inzWQdDvZLHbbAmAozX2N",
        "transactionTime": 1585230948299, "symbol": "LTCBTC",
        "orders": [{"symbol": "LTCBTC", "orderId": 20, "clientOrderId": "x"}],
        "orderReports": [SPOT_CANCEL | {"orderId": 20, "origClientOrderId": "leg-1"}],
    }  # fmt: skip
    updates = parse_spot_orders(body([SPOT_QUERY, order_list]))
    assert [(u.client_order_id, u.exchange_order_id) for u in updates] == [
        ("myOrder1", 1),
        ("leg-1", 20),
    ]
    assert parse_spot_orders(b"[]") == []


def test_cancel_replace_success() -> None:
    placed = SPOT_QUERY | {"clientOrderId": "tb-new", "orderId": 10, "fills": []}
    result = parse_cancel_replace(
        body({"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
              "cancelResponse": SPOT_CANCEL, "newOrderResponse": placed})
    )  # fmt: skip
    assert result == CancelReplaceResult(
        cancel_result="success",
        new_order_result="success",
        canceled=parse_spot_order(body(SPOT_CANCEL))[0],
        new_order=parse_spot_order(body(placed))[0],
        new_fills=(),
    )
    assert result.new_order is not None
    assert result.new_order.client_order_id == "tb-new"


def test_cancel_replace_partial_failure_body() -> None:
    result = parse_cancel_replace(
        body({"code": -2021, "msg": "Order cancel-replace partially failed.",
              "data": {"cancelResult": "SUCCESS", "newOrderResult": "FAILURE",
                       "cancelResponse": SPOT_CANCEL,
                       "newOrderResponse": {"code": -2010,
                                            "msg": "Order would immediately match and take."}}})
    )  # fmt: skip
    assert (result.cancel_result, result.new_order_result) == ("success", "failure")
    assert result.canceled is not None
    assert result.canceled.status is OrderStatus.CANCELED
    assert result.new_order is None
    assert result.new_order_error == Refusal(-2010, "Order would immediately match and take.")
    assert result.cancel_error is None


def test_cancel_replace_failed_cancel() -> None:
    result = parse_cancel_replace(
        body({"code": -2022, "msg": "Order cancel-replace failed.",
              "data": {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                       "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
                       "newOrderResponse": None}})
    )  # fmt: skip
    assert result == CancelReplaceResult(
        "failure", "not_attempted", cancel_error=Refusal(-2011, "Unknown order sent.")
    )
    with pytest.raises(MalformedPayload, match="results"):
        parse_cancel_replace(body({"code": -1000, "msg": "x"}))


def test_futures_order_answer() -> None:
    assert parse_futures_order(body(FUTURES_ORDER)) == OrderUpdated(
        "testOrder", "BTCUSDT", Side.BUY, OrderType.TRAILING_STOP_MARKET, OrderStatus.NEW,
        Decimal(10), Decimal(0), 1566818724722, exchange_order_id=22542179,
        stop_price=Decimal(9020), time_in_force=TimeInForce.GTD,
    )  # fmt: skip


def test_futures_modify_answer_uses_the_order_shape() -> None:
    assert parse_futures_order(body(FUTURES_MODIFIED)) == OrderUpdated(
        "LJ9R4QZDihCaS8UAOOLpgW", "BTCUSDT", Side.SELL, OrderType.LIMIT,
        OrderStatus.PARTIALLY_FILLED, Decimal(1), Decimal("0.4"), 1629182711600,
        price=Decimal(30005), average_fill_price=Decimal("30004.5"),
        exchange_order_id=20072994037, reduce_only=True, time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    listed = parse_futures_orders(body([FUTURES_ORDER, FUTURES_MODIFIED]))
    assert [u.exchange_order_id for u in listed] == [22542179, 20072994037]


def test_futures_liquidation_order_in_history() -> None:
    liquidation = FUTURES_MODIFIED | {"clientOrderId": "autoclose-1", "type": "LIQUIDATION",
                                      "origType": "LIQUIDATION"}  # fmt: skip
    update = parse_futures_order(body(liquidation))
    assert (update.order_type, update.origin) == (OrderType.MARKET, OrderOrigin.LIQUIDATION)


def test_spot_my_trades() -> None:
    trades = [{"symbol": "BNBBTC", "id": 28457, "orderId": 100234, "orderListId": -1,
               "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
               "commission": "10.10000000", "commissionAsset": "BNB", "time": 1499865549590,
               "isBuyer": False, "isMaker": True, "isBestMatch": True}]  # fmt: skip
    assert parse_my_trades(body(trades), market=MarketType.SPOT) == [
        Fill(28457, "", "BNBBTC", Side.SELL, Decimal("4.000001"), Decimal(12),
             Decimal("10.1"), "BNB", True, 1499865549590, exchange_order_id=100234)
    ]  # fmt: skip


def test_futures_user_trades() -> None:
    trades = [{"buyer": False, "commission": "-0.07819010", "commissionAsset": "USDT",
               "id": 698759, "maker": False, "orderId": 25851813, "price": "7819.01",
               "qty": "0.002", "quoteQty": "15.63802", "realizedPnl": "-0.91539999",
               "side": "SELL", "positionSide": "SHORT", "symbol": "BTCUSDT",
               "time": 1569514978020}]  # fmt: skip
    assert parse_my_trades(body(trades), market=MarketType.USDM) == [
        Fill(698759, "", "BTCUSDT", Side.SELL, Decimal("7819.01"), Decimal("0.002"),
             Decimal("-0.0781901"), "USDT", False, 1569514978020,
             realized_pnl=Decimal("-0.91539999"), exchange_order_id=25851813)
    ]  # fmt: skip
    with pytest.raises(MalformedPayload, match="side"):
        parse_my_trades(body([trades[0] | {"side": "BOTH"}]), market=MarketType.USDM)


def test_spot_account() -> None:
    account = {
        "makerCommission": 15, "takerCommission": 15, "canTrade": True, "canWithdraw": False,
        "canDeposit": True, "brokered": False, "updateTime": 123456789, "accountType": "SPOT",
        "balances": [{"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
                     {"asset": "LTC", "free": "0.5", "locked": "1.25"}],
        "permissions": ["SPOT", "MARGIN"], "uid": 354937868,
    }  # fmt: skip
    balances = (
        Balance("BTC", Decimal("4723846.89208129"), Decimal(0)),
        Balance("LTC", Decimal("0.5"), Decimal("1.25")),
    )
    assert parse_spot_account_info(body(account)) == SpotAccountInfo(
        balances, True, False, True, "SPOT", ("SPOT", "MARGIN"), 123456789
    )
    assert parse_spot_account(body(account)) == balances


FUTURES_ASSET = {
    "asset": "USDT", "walletBalance": "23.72469206", "unrealizedProfit": "0.00000000",
    "marginBalance": "23.72469206", "maintMargin": "0.00000000",
    "initialMargin": "0.00000000", "positionInitialMargin": "0.00000000",
    "openOrderInitialMargin": "0.00000000", "crossWalletBalance": "23.72469206",
    "crossUnPnl": "0.00000000", "availableBalance": "126.72469206",
    "maxWithdrawAmount": "23.72469206", "marginAvailable": True, "updateTime": 1625474304765,
}  # fmt: skip


def test_futures_account_v2() -> None:
    position = {
        "symbol": "BTCUSDT", "initialMargin": "0", "maintMargin": "0",
        "unrealizedProfit": "-1.5", "positionInitialMargin": "0",
        "openOrderInitialMargin": "0", "leverage": "100", "isolated": True,
        "entryPrice": "30000.1", "maxNotional": "250000", "bidNotional": "0",
        "askNotional": "0", "positionSide": "BOTH", "positionAmt": "-0.010", "updateTime": 0,
    }  # fmt: skip
    account = {"feeTier": 0, "canTrade": True, "multiAssetsMargin": False,
               "totalWalletBalance": "23.72469206", "assets": [FUTURES_ASSET],
               "positions": [position]}  # fmt: skip
    assert parse_futures_account(body(account)) == (
        (Balance("USDT", Decimal("23.72469206"), Decimal(0),
                 cross_wallet=Decimal("23.72469206"), available=Decimal("126.72469206")),),
        (PositionSnapshot("BTCUSDT", Decimal("-0.01"), Decimal("30000.1"), Decimal("-1.5"),
                          position_side="BOTH", margin_type="isolated", leverage=100),),
    )  # fmt: skip


def test_futures_account_v3_derives_the_entry_price() -> None:
    positions = [
        {"symbol": "ADAUSDT", "positionSide": "LONG", "positionAmt": "30",
         "unrealizedProfit": "0.76427700", "isolatedMargin": "0", "notional": "12.31427700",
         "isolatedWallet": "0", "initialMargin": "0.6", "maintMargin": "0.08",
         "updateTime": 1720736417660},
        {"symbol": "COMPUSDT", "positionSide": "SHORT", "positionAmt": "-1.000",
         "unrealizedProfit": "21.20817624", "notional": "-49.72023376", "updateTime": 0},
        {"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "0",
         "unrealizedProfit": "0", "notional": "0", "updateTime": 0},
    ]  # fmt: skip
    balances, snapshots = parse_futures_account(
        body({"totalWalletBalance": "23.7", "assets": [FUTURES_ASSET], "positions": positions})
    )
    assert len(balances) == 1
    assert [(p.symbol, p.quantity, p.entry_price, p.position_side) for p in snapshots] == [
        ("ADAUSDT", Decimal(30), Decimal("0.385"), "LONG"),
        ("COMPUSDT", Decimal(-1), Decimal("70.92841"), "SHORT"),
        ("BTCUSDT", Decimal(0), Decimal(0), "BOTH"),
    ]
    assert all(p.leverage is None and p.margin_type is None for p in snapshots)


def test_futures_balance() -> None:
    rows = [{"accountAlias": "SgsR", "asset": "USDT", "balance": "122607.35137903",
             "crossWalletBalance": "23.72469206", "crossUnPnl": "0.00000000",
             "availableBalance": "23.72469206", "maxWithdrawAmount": "23.72469206",
             "marginAvailable": True, "updateTime": 1617939110373}]  # fmt: skip
    assert parse_futures_balance(body(rows)) == (
        Balance("USDT", Decimal("122607.35137903"), Decimal(0),
                cross_wallet=Decimal("23.72469206"), available=Decimal("23.72469206")),
    )  # fmt: skip


def test_position_risk_v2_hedge_and_v3() -> None:
    v2_long = {
        "entryPrice": "6563.66500", "marginType": "isolated", "isAutoAddMargin": "false",
        "isolatedMargin": "15517.54150468", "leverage": "10", "liquidationPrice": "5930.78",
        "markPrice": "6679.50671178", "maxNotionalValue": "20000000", "positionAmt": "20.000",
        "symbol": "BTCUSDT", "unRealizedProfit": "2316.83423560", "positionSide": "LONG",
        "updateTime": 1625474304765,
    }  # fmt: skip
    v3_short = {
        "symbol": "COMPUSDT", "positionSide": "SHORT", "positionAmt": "-1.000",
        "entryPrice": "70.92841", "breakEvenPrice": "70.900038636", "markPrice": "49.72023376",
        "unRealizedProfit": "21.20817624", "liquidationPrice": "0", "isolatedMargin": "0",
        "notional": "-49.72023376", "marginAsset": "USDT", "adl": 2, "updateTime": 1708943511656,
    }  # fmt: skip
    assert parse_position_risk(body([v2_long, v3_short])) == (
        PositionSnapshot("BTCUSDT", Decimal(20), Decimal("6563.665"), Decimal("2316.8342356"),
                         position_side="LONG", margin_type="isolated", leverage=10,
                         mark_price=Decimal("6679.50671178"),
                         liquidation_price=Decimal("5930.78")),
        PositionSnapshot("COMPUSDT", Decimal(-1), Decimal("70.92841"), Decimal("21.20817624"),
                         position_side="SHORT", mark_price=Decimal("49.72023376")),
    )  # fmt: skip


def test_small_setup_answers() -> None:
    leverage = {"leverage": 21, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}
    assert parse_leverage_response(body(leverage)) == LeverageSetting(
        "BTCUSDT", 21, Decimal(1000000)
    )
    assert parse_margin_type_response(body({"code": 200, "msg": "success"})) is None
    with pytest.raises(MalformedPayload, match="4046"):
        parse_margin_type_response(body({"code": -4046, "msg": "No need to change"}))
    assert parse_position_side_dual(body({"dualSidePosition": False})) is False
    assert parse_listen_key(body({"listenKey": "pqia91ma19a5s61cv6a8"})) == "pqia91ma19a5s61cv6a8"
    with pytest.raises(MalformedPayload, match="empty"):
        parse_listen_key(body({"listenKey": ""}))
    config = [{"symbol": "BTCUSDT", "marginType": "CROSSED", "isAutoAddMargin": False,
               "leverage": 20, "maxNotionalValue": "1000000"}]  # fmt: skip
    assert parse_symbol_config(body(config)) == (
        SymbolConfig("BTCUSDT", "cross", False, 20, Decimal(1000000)),
    )


def test_algo_order_answers() -> None:
    expected = AlgoOrderUpdated(
        client_algo_id="6B2I9XVcJpCjqPAJ4YoFX7", algo_id=2146760, symbol="BNBUSDT",
        side=Side.SELL, order_type=OrderType.TAKE_PROFIT_LIMIT, status="new",
        quantity=Decimal("0.01"), ts_ms=1750485492080, trigger_price=Decimal(750),
        price=Decimal(750), reduce_only=True, time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    assert parse_futures_algo_order(body(ALGO_ORDER)) == expected
    triggered = ALGO_ORDER | {"algoStatus": "TRIGGERED", "actualOrderId": "88937381063",
                              "executedQty": "0.01", "avgPrice": "750.2"}  # fmt: skip
    del triggered["orderType"]
    triggered["type"] = "TAKE_PROFIT"  # some answers (and the nautilus fixture) say `type`
    (update,) = parse_futures_algo_orders(body([triggered]))
    assert (update.status, update.exchange_order_id) == ("triggered", 88937381063)
    assert (update.filled_quantity, update.average_fill_price) == (
        Decimal("0.01"),
        Decimal("750.2"),
    )


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (parse_futures_order, b"not json"),
        (parse_futures_order, b"[]"),
        (parse_futures_order, body(FUTURES_ORDER | {"status": "DONE"})),
        (parse_futures_order, body(FUTURES_ORDER | {"origQty": 10})),
        (parse_futures_order, body({k: v for k, v in FUTURES_ORDER.items() if k != "updateTime"})),
        (parse_spot_orders, body({"orders": []})),
        (parse_position_risk, body([{"symbol": "X"}])),
        (parse_futures_balance, body([{"asset": "USDT", "balance": "Infinity"}])),
        (parse_futures_algo_order, body({"algoId": 1, "clientAlgoId": "x", "code": "200"})),
        (parse_position_side_dual, body({"dualSidePosition": "true"})),
        (parse_spot_account, b"\xff"),
        (parse_cancel_replace, body({"cancelResult": [], "newOrderResult": "SUCCESS"})),
    ],
)
def test_bad_bodies_raise_malformed_payload(parse: Any, payload: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse(payload)
    assert issubclass(MalformedPayload, MalformedEvent)
