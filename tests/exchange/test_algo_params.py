"""``SubmitOrder.working_type`` and ``close_position`` → futures algo-order parameters.

Exact lists, order included (as in ``test_order_params``): ``workingType`` is sent only when
set, ``closePosition=true`` replaces the quantity and the reduce-only flag (Binance refuses
them together), and both are refused where Binance has no such parameter.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from app.domain import OrderType, Side, SubmitOrder, TimeInForce
from exchange.binance.order_params import (
    UnsupportedOrder,
    futures_algo_order_params,
    futures_order_params,
    spot_order_params,
)

CID = "ps-BTCUSDT-1"
QTY = Decimal("0.010")
TRIGGER = Decimal("57000.0")


def stop(order_type: OrderType = OrderType.STOP_MARKET, **changes: object) -> SubmitOrder:
    order = SubmitOrder(
        CID, "s1", "BTCUSDT", Side.SELL, order_type, QTY, 1_700_000_000_000,
        stop_price=TRIGGER, reduce_only=True,
    )  # fmt: skip
    return replace(order, **changes)  # type: ignore[arg-type]


HEAD = [("algoType", "CONDITIONAL"), ("symbol", "BTCUSDT"), ("side", "SELL")]


def test_defaults_send_neither() -> None:
    assert futures_algo_order_params(stop()) == [
        *HEAD, ("type", "STOP_MARKET"), ("quantity", QTY), ("triggerPrice", TRIGGER),
        ("reduceOnly", True), ("clientAlgoId", CID),
    ]  # fmt: skip


@pytest.mark.parametrize("working_type", ["MARK_PRICE", "CONTRACT_PRICE"])
def test_working_type_is_sent_when_set(working_type: str) -> None:
    assert futures_algo_order_params(stop(working_type=working_type)) == [
        *HEAD, ("type", "STOP_MARKET"), ("quantity", QTY), ("triggerPrice", TRIGGER),
        ("workingType", working_type), ("reduceOnly", True), ("clientAlgoId", CID),
    ]  # fmt: skip


def test_working_type_on_a_limit_conditional_order() -> None:
    order = stop(
        OrderType.TAKE_PROFIT_LIMIT, price=Decimal("61000.0"), working_type="MARK_PRICE",
        time_in_force=TimeInForce.IOC, reduce_only=False,
    )  # fmt: skip
    assert futures_algo_order_params(order) == [
        *HEAD, ("type", "TAKE_PROFIT"), ("quantity", QTY), ("triggerPrice", TRIGGER),
        ("timeInForce", "IOC"), ("price", Decimal("61000.0")), ("workingType", "MARK_PRICE"),
        ("clientAlgoId", CID),
    ]  # fmt: skip


@pytest.mark.parametrize("order_type", [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET])
@pytest.mark.parametrize("reduce_only", [True, False])
def test_close_position_replaces_quantity_and_reduce_only(
    order_type: OrderType, reduce_only: bool
) -> None:
    order = stop(order_type, close_position=True, reduce_only=reduce_only)
    assert futures_algo_order_params(order) == [
        *HEAD, ("type", order_type.name), ("triggerPrice", TRIGGER), ("closePosition", True),
        ("clientAlgoId", CID),
    ]  # fmt: skip


def test_close_position_with_a_working_type() -> None:
    order = stop(close_position=True, working_type="MARK_PRICE")
    assert futures_algo_order_params(order)[-3:] == [
        ("workingType", "MARK_PRICE"),
        ("closePosition", True),
        ("clientAlgoId", CID),
    ]


@pytest.mark.parametrize("order_type", [OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT])
def test_close_position_only_on_market_conditional_orders(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match="cannot close the position"):
        futures_algo_order_params(stop(order_type, price=TRIGGER, close_position=True))


@pytest.mark.parametrize("working_type", ["mark_price", "LAST_PRICE", ""])
def test_unknown_working_type_is_refused(working_type: str) -> None:
    with pytest.raises(UnsupportedOrder, match="working type"):
        futures_algo_order_params(stop(working_type=working_type))


@pytest.mark.parametrize(
    "changes", [{"working_type": "MARK_PRICE"}, {"close_position": True}], ids=["wt", "cp"]
)
@pytest.mark.parametrize("order_type", [OrderType.MARKET, OrderType.LIMIT])
def test_regular_orders_refuse_both(order_type: OrderType, changes: dict[str, object]) -> None:
    order = stop(order_type, price=TRIGGER, stop_price=None, **changes)
    with pytest.raises(UnsupportedOrder):
        futures_order_params(order)
    with pytest.raises(UnsupportedOrder):
        spot_order_params(replace(order, reduce_only=False))
