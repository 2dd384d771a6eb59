"""Binance REST answers about orders and trades → domain types, for Spot and USDⓈ-M.

Order answers are translated to the user-data stream's keys and read by the same code as the
stream (``order_updates``), so an order means the same thing whichever way it arrived. Every
parser takes the raw body (``bytes`` or ``str``) and raises only ``MalformedPayload`` (a
``MalformedEvent``); unknown fields are ignored. ``parse_account`` re-exports all of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from app.domain.enums import MarketType, OrderStatus, Side
from app.domain.orders import AlgoOrderUpdated, Fill, OrderUpdated, SubmitOrder
from exchange.binance.order_mapping import SIDES
from exchange.binance.order_updates import algo_order, futures_order_update, spot_order_update
from exchange.binance.rest_payload import (
    MalformedPayload,
    Payload,
    RefusalWire,
    convert,
    decode_json,
    expect_array,
    expect_object,
    renamed,
    rest_parser,
    time_of,
)
from exchange.binance.wire_user import (
    AlgoOrderWire,
    FuturesOrderWire,
    SpotExecutionWire,
    amount_of,
    decimal_of,
    lookup,
    optional_decimal,
)

__all__ = [
    "CancelReplaceResult",
    "Refusal",
    "parse_cancel_replace",
    "parse_futures_algo_order",
    "parse_futures_algo_orders",
    "parse_futures_order",
    "parse_futures_orders",
    "parse_my_trades",
    "parse_spot_order",
    "parse_spot_orders",
]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error object inside a 2xx/409 body (cancel-replace): Binance's code and message."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class CancelReplaceResult:
    """``POST /api/v3/order/cancelReplace``; results are lower case: success, failure or
    not_attempted. The 409 partial-failure body (``{"code", "msg", "data"}``) reads the same."""

    cancel_result: str
    new_order_result: str
    canceled: OrderUpdated | None = None
    new_order: OrderUpdated | None = None
    new_fills: tuple[Fill, ...] = ()
    cancel_error: Refusal | None = None
    new_order_error: Refusal | None = None


# REST key → executionReport key. `origClientOrderId` (our id on a cancel) becomes `C`.
_SPOT_ORDER_KEYS = {
    "symbol": "s", "orderId": "i", "clientOrderId": "c", "origClientOrderId": "C",
    "side": "S", "type": "o", "timeInForce": "f", "origQty": "q", "price": "p",
    "stopPrice": "P", "status": "X", "executedQty": "z", "cummulativeQuoteQty": "Z",
}  # fmt: skip
_SPOT_TIMES = ("transactTime", "updateTime", "time", "workingTime")
# REST key → ORDER_TRADE_UPDATE order key.
_FUTURES_ORDER_KEYS = {
    "symbol": "s", "orderId": "i", "clientOrderId": "c", "side": "S", "type": "o",
    "origType": "ot", "timeInForce": "f", "origQty": "q", "price": "p", "avgPrice": "ap",
    "stopPrice": "sp", "activatePrice": "AP", "status": "X", "executedQty": "z",
    "reduceOnly": "R",
}  # fmt: skip
_FUTURES_TIMES = ("updateTime", "time")
# REST key → ALGO_UPDATE order key; the docs say `orderType`, some answers say `type`.
_ALGO_KEYS = {
    "clientAlgoId": "caid", "algoId": "aid", "symbol": "s", "side": "S", "orderType": "o",
    "type": "o", "algoStatus": "X", "quantity": "q", "triggerPrice": "tp", "price": "p",
    "reduceOnly": "R", "closePosition": "cp", "actualOrderId": "ai", "executedQty": "aq",
    "avgPrice": "ap", "positionSide": "ps", "timeInForce": "f",
}  # fmt: skip
_ALGO_TIMES = ("updateTime", "createTime")


class _SpotOrderFill(msgspec.Struct, rename="camel", frozen=True):
    trade_id: int
    price: str
    qty: str
    commission: str
    commission_asset: str


def _spot_order(obj: Any, request: SubmitOrder | None = None) -> OrderUpdated:
    order = expect_object(obj, "spot order")
    ts_ms = time_of(order, _SPOT_TIMES, "spot order")
    if "status" not in order:
        if request is None:
            raise MalformedPayload("an ACK answer carries no order state: pass its request")
        # newOrderRespType=ACK carries only ids: the order was accepted, the rest is ours.
        order_id = convert(order.get("orderId"), int, "spot order id")
        return OrderUpdated(
            request.client_order_id, request.symbol, request.side, request.order_type,
            OrderStatus.NEW, request.quantity, Decimal(0), ts_ms, price=request.price,
            exchange_order_id=order_id, stop_price=request.stop_price,
            time_in_force=request.time_in_force,
        )  # fmt: skip
    wire = renamed(order, _SPOT_ORDER_KEYS) | {"E": ts_ms}
    return spot_order_update(convert(wire, SpotExecutionWire, "spot order"))


@rest_parser
def parse_spot_order(
    payload: Payload, *, request: SubmitOrder | None = None
) -> tuple[OrderUpdated, tuple[Fill, ...]]:
    """POST (ACK/RESULT/FULL), GET or DELETE ``/api/v3/order``; FULL also yields its fills.

    An ACK answer needs the ``request`` it answers. Fills of a new order are always taker.
    """
    return _spot_order_and_fills(decode_json(payload, "spot order"), request)


def _spot_order_and_fills(
    body: Any, request: SubmitOrder | None = None
) -> tuple[OrderUpdated, tuple[Fill, ...]]:
    update = _spot_order(body, request)
    raw_fills = convert(body.get("fills", []), list[_SpotOrderFill], "spot order fills")
    fills = tuple(
        Fill(
            f.trade_id,
            update.client_order_id,
            update.symbol,
            update.side,
            amount_of(f.price, "fill price"),
            amount_of(f.qty, "fill qty"),
            decimal_of(f.commission, "fill commission"),
            f.commission_asset,
            False,
            update.ts_ms,
            exchange_order_id=update.exchange_order_id,
        )
        for f in raw_fills
    )
    return update, fills


@rest_parser
def parse_spot_orders(payload: Payload) -> list[OrderUpdated]:
    """GET openOrders/allOrders, DELETE openOrders (order lists contribute their reports)."""
    updates: list[OrderUpdated] = []
    for item in expect_array(decode_json(payload, "spot orders"), "spot orders"):
        reports = expect_object(item, "spot order").get("orderReports")
        for report in [item] if reports is None else expect_array(reports, "orderReports"):
            updates.append(_spot_order(report))
    return updates


def _refusal_or_order(obj: Any, what: str) -> tuple[dict[str, Any] | None, Refusal | None]:
    if obj is None:
        return None, None
    body = expect_object(obj, what)
    if "code" in body and "status" not in body:
        error = convert(body, RefusalWire, what)
        return None, Refusal(error.code, error.msg)
    return body, None


# Tuples, not sets: a hostile body may put an unhashable value where the result belongs.
_CANCEL_RESULTS = ("SUCCESS", "FAILURE")
_NEW_ORDER_RESULTS = ("SUCCESS", "FAILURE", "NOT_ATTEMPTED")


@rest_parser
def parse_cancel_replace(payload: Payload) -> CancelReplaceResult:
    """The success body, or the error body whose ``data`` holds the same fields."""
    body = expect_object(decode_json(payload, "cancel-replace"), "cancel-replace")
    if "cancelResult" not in body and isinstance(body.get("data"), dict):
        body = body["data"]
    cancel_result = body.get("cancelResult")
    new_result = body.get("newOrderResult")
    if cancel_result not in _CANCEL_RESULTS or new_result not in _NEW_ORDER_RESULTS:
        raise MalformedPayload(f"cancel-replace results {cancel_result!r}/{new_result!r}")
    canceled, cancel_error = _refusal_or_order(body.get("cancelResponse"), "cancelResponse")
    placed, new_error = _refusal_or_order(body.get("newOrderResponse"), "newOrderResponse")
    new_order: OrderUpdated | None = None
    new_fills: tuple[Fill, ...] = ()
    if placed is not None:
        new_order, new_fills = _spot_order_and_fills(placed)
    return CancelReplaceResult(
        cancel_result=cancel_result.lower(),
        new_order_result=new_result.lower(),
        canceled=None if canceled is None else _spot_order(canceled),
        new_order=new_order,
        new_fills=new_fills,
        cancel_error=cancel_error,
        new_order_error=new_error,
    )


def _futures_order(obj: Any) -> OrderUpdated:
    order = expect_object(obj, "futures order")
    ts_ms = time_of(order, _FUTURES_TIMES, "futures order")
    wire = convert(renamed(order, _FUTURES_ORDER_KEYS), FuturesOrderWire, "futures order")
    return futures_order_update(wire, ts_ms)


@rest_parser
def parse_futures_order(payload: Payload) -> OrderUpdated:
    """POST, PUT (modify), GET or DELETE ``/fapi/v1/order``."""
    return _futures_order(decode_json(payload, "futures order"))


@rest_parser
def parse_futures_orders(payload: Payload) -> list[OrderUpdated]:
    """GET ``/fapi/v1/openOrders`` or ``allOrders``."""
    orders = expect_array(decode_json(payload, "futures orders"), "orders")
    return [_futures_order(o) for o in orders]


def _algo(obj: Any) -> AlgoOrderUpdated:
    order = expect_object(obj, "algo order")
    ts_ms = time_of(order, _ALGO_TIMES, "algo order")
    return algo_order(convert(renamed(order, _ALGO_KEYS), AlgoOrderWire, "algo order"), ts_ms)


@rest_parser
def parse_futures_algo_order(payload: Payload) -> AlgoOrderUpdated:
    """POST or GET ``/fapi/v1/algoOrder`` (the DELETE answer carries ids only: not this)."""
    return _algo(decode_json(payload, "algo order"))


@rest_parser
def parse_futures_algo_orders(payload: Payload) -> list[AlgoOrderUpdated]:
    """GET ``/fapi/v1/openAlgoOrders`` or ``allAlgoOrders``."""
    return [_algo(o) for o in expect_array(decode_json(payload, "algo orders"), "algo orders")]


class _SpotTrade(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    id: int
    order_id: int
    price: str
    qty: str
    commission: str
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


class _FuturesTrade(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    id: int
    order_id: int
    side: str
    price: str
    qty: str
    commission: str
    commission_asset: str
    time: int
    maker: bool
    realized_pnl: str | None = None


@rest_parser
def parse_my_trades(payload: Payload, *, market: MarketType) -> list[Fill]:
    """Spot ``myTrades`` / futures ``userTrades``. Neither carries the client order id: the
    fills have ``client_order_id == ""`` and callers correlate by ``exchange_order_id``."""
    body = decode_json(payload, "trades")
    if market is MarketType.SPOT:
        return [
            Fill(
                t.id,
                "",
                t.symbol,
                Side.BUY if t.is_buyer else Side.SELL,
                amount_of(t.price, "price"),
                amount_of(t.qty, "qty"),
                decimal_of(t.commission, "commission"),
                t.commission_asset,
                t.is_maker,
                t.time,
                exchange_order_id=t.order_id,
            )
            for t in convert(body, list[_SpotTrade], "spot trades")
        ]
    return [
        Fill(
            t.id,
            "",
            t.symbol,
            lookup(SIDES, t.side, "side"),
            amount_of(t.price, "price"),
            amount_of(t.qty, "qty"),
            decimal_of(t.commission, "commission"),
            t.commission_asset,
            t.maker,
            t.time,
            realized_pnl=optional_decimal(t.realized_pnl, "realizedPnl"),
            exchange_order_id=t.order_id,
        )
        for t in convert(body, list[_FuturesTrade], "futures trades")
    ]
