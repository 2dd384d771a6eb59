"""User-data events from the Binance docs → domain messages, every field checked."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.domain import (
    AccountUpdated,
    AlgoOrderUpdated,
    Balance,
    BalanceChanged,
    ExecutionType,
    Fill,
    OrderOrigin,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionSnapshot,
    QuickFill,
    Side,
    TimeInForce,
)
from exchange.binance.parse_user import (
    FUTURES_ORDER_TYPES,
    SPOT_ORDER_TYPES,
    ListenKeyExpired,
    MalformedEvent,
    StreamTerminated,
    UnknownUserEvent,
    decode_futures_user_event,
    decode_spot_user_event,
)

# Spot docs example (user-data-stream.md), in the WS-API envelope.
EXECUTION_REPORT: dict[str, Any] = {
    "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW",
    "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410",
    "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "", "x": "NEW", "X": "NEW",
    "r": "NONE", "i": 4293153, "l": "0.00000000", "z": "0.00000000", "L": "0.00000000",
    "n": "0", "N": None, "T": 1499405658657, "t": -1, "I": 8641984, "w": True, "m": False,
    "M": False, "O": 1499405658657, "Z": "0.00000000", "Y": "0.00000000", "Q": "0.00000000",
    "W": 1499405658657, "V": "NONE",
}  # fmt: skip
TRADE = EXECUTION_REPORT | {
    "x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.40000000", "z": "0.40000000",
    "L": "0.10264000", "n": "0.00004000", "N": "BNB", "t": 2187, "m": True,
    "Z": "0.04105600", "E": 1499405658700, "T": 1499405658690,
}  # fmt: skip
# USDⓈ-M docs example (Event-Order-Update).
ORDER_TRADE_UPDATE: dict[str, Any] = {
    "e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650,
    "o": {
        "s": "BTCUSDT", "c": "TEST", "S": "SELL", "o": "TRAILING_STOP_MARKET", "f": "GTC",
        "q": "0.001", "p": "0", "ap": "0", "sp": "7103.04", "x": "NEW", "X": "NEW",
        "i": 8886774, "l": "0", "z": "0", "L": "0", "N": "USDT", "n": "0",
        "T": 1568879465650, "t": 0, "b": "0", "a": "9.91", "m": False, "R": False,
        "wt": "CONTRACT_PRICE", "ot": "TRAILING_STOP_MARKET", "ps": "LONG", "cp": False,
        "AP": "7476.89", "cr": "5.0", "pP": False, "si": 0, "ss": 0, "rp": "0",
        "V": "EXPIRE_TAKER", "pm": "OPPONENT", "gtd": 0,
    },
}  # fmt: skip
FUTURES_LIMIT_FILL: dict[str, Any] = {
    **ORDER_TRADE_UPDATE,
    "o": ORDER_TRADE_UPDATE["o"] | {
        "o": "LIMIT", "ot": "LIMIT", "S": "BUY", "p": "7100.50", "ap": "7100.50", "sp": "0",
        "x": "TRADE", "X": "FILLED", "q": "0.002", "l": "0.002", "z": "0.002",
        "L": "7100.50", "n": "0.00284020", "t": 12345678, "m": True, "R": True,
        "rp": "-1.25", "f": "GTX", "T": 1568879465649,
    },
}  # fmt: skip
LISTEN_KEY = "WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv"


def wire(event: dict[str, Any], envelope: str = "ws-api") -> bytes:
    if envelope == "ws-api":
        event = {"subscriptionId": 0, "event": event}
    elif envelope == "stream":
        event = {"stream": "user", "data": event}
    return json.dumps(event).encode()


def spot(event: dict[str, Any]) -> OrderUpdated:
    (update,) = decode_spot_user_event(wire(event))
    assert isinstance(update, OrderUpdated)
    return update


def futures(event: dict[str, Any]) -> OrderUpdated:
    (update,) = decode_futures_user_event(wire(event, "bare"))
    assert isinstance(update, OrderUpdated)
    return update


def with_order(**changes: Any) -> dict[str, Any]:
    return {**ORDER_TRADE_UPDATE, "o": ORDER_TRADE_UPDATE["o"] | changes}


def test_spot_new_order_every_field() -> None:
    assert spot(EXECUTION_REPORT) == OrderUpdated(
        client_order_id="mUvoqJxFIILMdfAW5iGSOW", symbol="ETHBTC", side=Side.BUY,
        order_type=OrderType.LIMIT, status=OrderStatus.NEW, quantity=Decimal("1"),
        filled_quantity=Decimal(0), ts_ms=1499405658658, price=Decimal("0.10264410"),
        average_fill_price=None, exchange_order_id=4293153, fill=None, reason="",
        execution_type=ExecutionType.NEW, origin=OrderOrigin.CLIENT, reduce_only=False,
        stop_price=None, time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    assert str(spot(EXECUTION_REPORT).price) == "0.10264410"  # exact, not float-rounded


def test_spot_trade_carries_its_fill() -> None:
    update = spot(TRADE)
    assert update.fill == Fill(
        trade_id=2187, client_order_id="mUvoqJxFIILMdfAW5iGSOW", symbol="ETHBTC",
        side=Side.BUY, price=Decimal("0.10264000"), quantity=Decimal("0.4"),
        fee=Decimal("0.00004"), fee_asset="BNB", is_maker=True, ts_ms=1499405658690,
        realized_pnl=None, exchange_order_id=4293153,
    )  # fmt: skip
    assert update.status is OrderStatus.PARTIALLY_FILLED
    assert update.execution_type is ExecutionType.TRADE
    assert update.filled_quantity == Decimal("0.4")
    assert update.average_fill_price == Decimal("0.10264")  # Z / z
    assert update.ts_ms == 1499405658700  # state messages carry E, fills carry T


def test_spot_cancel_keeps_the_original_client_id() -> None:
    canceled = EXECUTION_REPORT | {
        "x": "CANCELED", "X": "CANCELED", "c": "cancelRequest7", "C": "tb-original-1",
    }  # fmt: skip
    update = spot(canceled)
    assert update.client_order_id == "tb-original-1"
    assert update.status is OrderStatus.CANCELED
    assert update.execution_type is ExecutionType.CANCELED


def test_spot_empty_client_ids_stay_empty() -> None:
    update = spot(TRADE | {"c": "", "C": ""})
    assert update.client_order_id == ""
    assert update.fill is not None
    assert update.fill.client_order_id == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"l": "0.00000000"},  # a TRADE that moved nothing
        {"x": "TRADE_PREVENTION", "X": "EXPIRED_IN_MATCH", "t": -1},  # l > 0 but not a trade
        {"x": "CANCELED", "X": "CANCELED"},
        {"L": "0.00000000"},  # no price: not booked, reconciliation finds the real one
    ],
)
def test_spot_fill_only_for_trades_with_quantity(changes: dict[str, Any]) -> None:
    update = spot(TRADE | changes)
    assert update.fill is None
    assert update.filled_quantity == Decimal("0.4")


def test_spot_trade_without_trade_id_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="trade id"):
        decode_spot_user_event(wire(TRADE | {"t": -1}))


def test_spot_reject_and_expiry_reasons() -> None:
    rejected = spot(EXECUTION_REPORT | {"x": "REJECTED", "X": "REJECTED", "r": "GTX_REJECT"})
    assert (rejected.status, rejected.reason) == (OrderStatus.REJECTED, "GTX_REJECT")
    expired = spot(EXECUTION_REPORT | {"x": "EXPIRED", "X": "EXPIRED", "eR": "NO_LIQUIDITY"})
    assert (expired.execution_type, expired.reason) == (ExecutionType.EXPIRED, "NO_LIQUIDITY")


@pytest.mark.parametrize(("raw", "expected"), sorted(SPOT_ORDER_TYPES.items()))
def test_spot_order_types(raw: str, expected: OrderType) -> None:
    update = spot(EXECUTION_REPORT | {"o": raw, "P": "0.10000000"})
    assert update.order_type is expected
    assert update.stop_price == Decimal("0.1")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("X", "NEW_SHINY", "order status"),
        ("o", "STOP", "spot order type"),
        ("S", "HOLD", "side"),
        ("x", "EXPLODED", "execution type"),
        ("q", "NaN", "quantity"),
        ("q", "-1", "negative"),
        ("z", "1e99999", "cumulative quantity"),
        ("i", "4293153", r"\$\.i"),  # ids are numbers on the wire
    ],
)
def test_spot_bad_values_are_malformed(field: str, value: str, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode_spot_user_event(wire(EXECUTION_REPORT | {field: value}))


def test_spot_account_position() -> None:
    event = {
        "e": "outboundAccountPosition", "E": 1564034571105, "u": 1564034571073,
        "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"},
              {"a": "BTC", "f": "1.5", "l": "0.25"}],
    }  # fmt: skip
    assert decode_spot_user_event(wire(event)) == (
        AccountUpdated(
            ts_ms=1564034571105,
            reason="outboundAccountPosition",
            balances=(
                Balance("ETH", Decimal("10000"), Decimal(0)),
                Balance("BTC", Decimal("1.5"), Decimal("0.25")),
            ),
        ),
    )


def test_spot_balance_update_is_a_delta() -> None:
    event = {"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "-100.00000000",
             "T": 1573200697068}  # fmt: skip
    assert decode_spot_user_event(wire(event)) == (
        BalanceChanged("BTC", Decimal("-100"), 1573200697110, 1573200697068),
    )


def test_spot_stream_terminated_and_unknown_kinds() -> None:
    terminated = {"e": "eventStreamTerminated", "E": 1728973001334}
    assert decode_spot_user_event(wire(terminated)) == (StreamTerminated(1728973001334),)
    lock = {"e": "externalLockUpdate", "E": 1581557507324, "a": "NEO", "d": "10.0"}
    assert decode_spot_user_event(wire(lock)) == (UnknownUserEvent("externalLockUpdate"),)


@pytest.mark.parametrize("envelope", ["ws-api", "stream", "bare"])
def test_every_envelope_reads_the_same(envelope: str) -> None:
    assert decode_spot_user_event(wire(TRADE, envelope)) == (spot(TRADE),)


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b'{"id": 7, "status": 200, "result": {}}', b'{"event": {"E": 1}}',
     b'{"e": 5}', b"\xff\xfe", b'{"subscriptionId": 0, "event": null}'],
)  # fmt: skip
def test_not_an_event_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode_spot_user_event(raw)
    with pytest.raises(MalformedEvent):
        decode_futures_user_event(raw)


def test_futures_trailing_stop_every_field() -> None:
    assert futures(ORDER_TRADE_UPDATE) == OrderUpdated(
        client_order_id="TEST", symbol="BTCUSDT", side=Side.SELL,
        order_type=OrderType.TRAILING_STOP_MARKET, status=OrderStatus.NEW,
        quantity=Decimal("0.001"), filled_quantity=Decimal(0), ts_ms=1568879465651,
        price=None, average_fill_price=None, exchange_order_id=8886774, fill=None,
        reason="", execution_type=ExecutionType.NEW, origin=OrderOrigin.CLIENT,
        reduce_only=False, stop_price=Decimal("7476.89"),  # trailing: the activation price
        time_in_force=TimeInForce.GTC,
    )  # fmt: skip


def test_futures_trade_fill_with_realized_pnl() -> None:
    update = futures(FUTURES_LIMIT_FILL)
    assert update.fill == Fill(
        trade_id=12345678, client_order_id="TEST", symbol="BTCUSDT", side=Side.BUY,
        price=Decimal("7100.50"), quantity=Decimal("0.002"), fee=Decimal("0.00284020"),
        fee_asset="USDT", is_maker=True, ts_ms=1568879465649, realized_pnl=Decimal("-1.25"),
        exchange_order_id=8886774,
    )  # fmt: skip
    assert (update.status, update.order_type) == (OrderStatus.FILLED, OrderType.LIMIT)
    assert (update.price, update.average_fill_price) == (Decimal("7100.5"), Decimal("7100.5"))
    assert update.reduce_only is True
    assert update.stop_price is None  # "0" means no stop
    assert update.time_in_force is TimeInForce.GTX


@pytest.mark.parametrize(
    ("client_id", "status", "execution", "origin", "domain_status"),
    [
        ("autoclose-1234567890", "FILLED", "CALCULATED", OrderOrigin.LIQUIDATION,
         OrderStatus.FILLED),
        ("adl_autoclose", "NEW", "CALCULATED", OrderOrigin.ADL, OrderStatus.NEW),
        ("adl_autoclose_12345", "NEW_ADL", "CALCULATED", OrderOrigin.ADL, OrderStatus.NEW),
        ("autoclose-insurance-1", "NEW_INSURANCE", "CALCULATED", OrderOrigin.INSURANCE,
         OrderStatus.NEW),
        ("settlement_autoclose-99", "FILLED", "TRADE", OrderOrigin.SETTLEMENT,
         OrderStatus.FILLED),
        ("delivery_autoclose-7", "FILLED", "TRADE", OrderOrigin.DELIVERY, OrderStatus.FILLED),
        ("tb-ours-1", "FILLED", "TRADE", OrderOrigin.CLIENT, OrderStatus.FILLED),
        ("tb-ours-2", "FILLED", "CALCULATED", OrderOrigin.LIQUIDATION, OrderStatus.FILLED),
    ],
)  # fmt: skip
def test_futures_exchange_made_orders(
    client_id: str, status: str, execution: str, origin: OrderOrigin, domain_status: OrderStatus
) -> None:
    update = futures(
        {**FUTURES_LIMIT_FILL, "o": FUTURES_LIMIT_FILL["o"] | {"c": client_id, "X": status,
                                                              "x": execution}}
    )  # fmt: skip
    assert (update.origin, update.status) == (origin, domain_status)
    assert update.fill is not None  # a liquidation execution moves the position too
    assert update.fill.client_order_id == client_id


def test_futures_liquidation_order_type_is_market() -> None:
    update = futures(with_order(o="LIQUIDATION", ot="LIQUIDATION", c="x"))
    assert (update.order_type, update.origin) == (OrderType.MARKET, OrderOrigin.LIQUIDATION)


@pytest.mark.parametrize(("raw", "expected"), sorted(FUTURES_ORDER_TYPES.items()))
def test_futures_order_types(raw: str, expected: OrderType) -> None:
    update = futures(with_order(o=raw, ot=raw, sp="100.5", AP="120"))
    assert update.order_type is expected
    trailing = expected is OrderType.TRAILING_STOP_MARKET
    assert update.stop_price == Decimal("120" if trailing else "100.5")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("AMENDMENT", ExecutionType.AMENDMENT), ("EXPIRED", ExecutionType.EXPIRED),
     ("CANCELED", ExecutionType.CANCELED), ("CALCULATED", ExecutionType.CALCULATED)],
)  # fmt: skip
def test_futures_execution_types(raw: str, expected: ExecutionType) -> None:
    assert futures(with_order(x=raw)).execution_type is expected


def test_futures_fill_without_trade_id_is_malformed() -> None:
    event = {**FUTURES_LIMIT_FILL, "o": FUTURES_LIMIT_FILL["o"] | {"t": 0}}
    with pytest.raises(MalformedEvent, match="trade id"):
        decode_futures_user_event(wire(event, "bare"))


def test_futures_account_update() -> None:
    event = {
        "e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.1"},
                  {"a": "BUSD", "wb": "1.00000000", "cw": "0.00000000", "bc": "-49.1"}],
            "P": [{"s": "BTCUSDT", "pa": "0", "ep": "0.00000", "bep": "0", "cr": "200",
                   "up": "0", "mt": "isolated", "iw": "0.00000000", "ps": "BOTH"},
                  {"s": "BTCUSDT", "pa": "-10", "ep": "6563.8", "bep": "6563.861",
                   "cr": "-45.04", "up": "-1423.15600", "mt": "cross", "iw": "0",
                   "ps": "SHORT"}],
        },
    }  # fmt: skip
    assert decode_futures_user_event(wire(event, "stream")) == (
        AccountUpdated(
            ts_ms=1564745798939,
            reason="ORDER",
            balances=(
                Balance("USDT", Decimal("122624.12345678"), Decimal(0),
                        cross_wallet=Decimal("100.12345678")),
                Balance("BUSD", Decimal(1), Decimal(0), cross_wallet=Decimal(0)),
            ),
            positions=(
                PositionSnapshot("BTCUSDT", Decimal(0), Decimal(0), Decimal(0),
                                 position_side="BOTH", margin_type="isolated"),
                PositionSnapshot("BTCUSDT", Decimal(-10), Decimal("6563.8"),
                                 Decimal("-1423.156"), position_side="SHORT",
                                 margin_type="cross"),
            ),
        ),
    )  # fmt: skip


def test_futures_trade_lite_is_a_quick_fill() -> None:
    event = {
        "e": "TRADE_LITE", "E": 1721895408092, "T": 1721895408214, "s": "BTCUSDT",
        "q": "0.001", "p": "0", "m": False, "c": "z8hcUoOsqEdKMeKPSABslD", "S": "BUY",
        "L": "64089.20", "l": "0.040", "t": 109100866, "i": 8886774,
    }  # fmt: skip
    assert decode_futures_user_event(wire(event, "bare")) == (
        QuickFill(
            client_order_id="z8hcUoOsqEdKMeKPSABslD", symbol="BTCUSDT", side=Side.BUY,
            price=Decimal("64089.20"), quantity=Decimal("0.040"), trade_id=109100866,
            exchange_order_id=8886774, is_maker=False, ts_ms=1721895408214,
        ),
    )  # fmt: skip


def test_futures_algo_update() -> None:
    event: dict[str, Any] = {
        "e": "ALGO_UPDATE", "T": 1750515742297, "E": 1750515742303,
        "o": {
            "caid": "Q5xaq5EGKgXXa0fD7fs0Ip", "aid": 2148719, "at": "CONDITIONAL",
            "o": "TAKE_PROFIT", "s": "BNBUSDT", "S": "SELL", "ps": "BOTH", "f": "GTC",
            "q": "0.01", "X": "TRIGGERED", "ai": "88937381063", "ap": "750.10",
            "aq": "0.01", "act": "LIMIT", "tp": "750", "p": "750.5", "V": "EXPIRE_MAKER",
            "wt": "CONTRACT_PRICE", "pm": "NONE", "cp": False, "pP": False, "R": True,
            "tt": 1750515742290, "gtd": 0, "rm": "",
        },
    }  # fmt: skip
    assert decode_futures_user_event(wire(event, "bare")) == (
        AlgoOrderUpdated(
            client_algo_id="Q5xaq5EGKgXXa0fD7fs0Ip", algo_id=2148719, symbol="BNBUSDT",
            side=Side.SELL, order_type=OrderType.TAKE_PROFIT_LIMIT, status="triggered",
            quantity=Decimal("0.01"), ts_ms=1750515742303, trigger_price=Decimal(750),
            price=Decimal("750.5"), reduce_only=True, exchange_order_id=88937381063,
            reason="", filled_quantity=Decimal("0.01"), average_fill_price=Decimal("750.1"),
            close_position=False, position_side="BOTH", time_in_force=TimeInForce.GTC,
        ),
    )  # fmt: skip
    pending = event | {"o": event["o"] | {"X": "NEW", "ai": "", "rm": "Reduce Only reject"}}
    (algo,) = decode_futures_user_event(wire(pending, "bare"))
    assert isinstance(algo, AlgoOrderUpdated)
    assert (algo.status, algo.exchange_order_id, algo.reason) == ("new", None, "Reduce Only reject")
    with pytest.raises(MalformedEvent, match="algo status"):
        decode_futures_user_event(wire(event | {"o": event["o"] | {"X": "DONE"}}, "bare"))


@pytest.mark.parametrize("event_time", ["1736996475556", 1736996475556])
def test_listen_key_expired_keeps_only_the_suffix(event_time: str | int) -> None:
    event = {"e": "listenKeyExpired", "E": event_time, "listenKey": LISTEN_KEY}
    (expired,) = decode_futures_user_event(wire(event, "stream"))
    assert expired == ListenKeyExpired(ts_ms=1736996475556, listen_key_suffix="VVxv")
    assert LISTEN_KEY not in repr(expired)
    assert decode_spot_user_event(wire(event, "bare")) == (expired,)


def test_listen_key_expired_with_a_non_numeric_time_is_malformed() -> None:
    event = {"e": "listenKeyExpired", "E": "soon", "listenKey": LISTEN_KEY}
    with pytest.raises(MalformedEvent, match="event time"):
        decode_futures_user_event(wire(event, "bare"))


@pytest.mark.parametrize(
    "kind", ["MARGIN_CALL", "ACCOUNT_CONFIG_UPDATE", "STRATEGY_UPDATE", "GRID_UPDATE",
             "CONDITIONAL_ORDER_TRIGGER_REJECT", "executionReport"],
)  # fmt: skip
def test_futures_kinds_we_do_not_consume(kind: str) -> None:
    event = {"e": kind, "E": 1587727187525, "cw": "3.16812045", "p": []}
    assert decode_futures_user_event(wire(event, "bare")) == (UnknownUserEvent(kind),)
