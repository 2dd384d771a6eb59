"""Orders and fills to table rows and back: pure functions, no I/O (see ``database.mapping``
for the conventions; it re-exports these).

What a row cannot give back: an ``OrderUpdated`` read from its row has no ``fill`` and no
``execution_type`` (they describe one event, the row the order's latest state) and its
``ts_ms`` is the row's ``updated_ms``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.domain import (
    Fill,
    OrderOrigin,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
    TimeInForce,
)
from database.models import FillRow, OrderRow

__all__ = [
    "STATUS_RANK",
    "fill_from_row",
    "fill_to_row",
    "fill_values",
    "intent_to_row",
    "intent_values",
    "order_from_row",
    "order_to_row",
    "order_values",
]

_ZERO = Decimal(0)

#: How far along its life an order is. The recorder never replaces a stored order state with an
#: incoming one of lower rank at the same filled quantity (a late NEW after FILLED), and never a
#: final state with a non-final one. UNKNOWN (sent, answer lost) comes after PENDING_NEW and
#: before anything the exchange said; every final state shares the top rank.
STATUS_RANK: dict[OrderStatus, int] = {
    OrderStatus.PENDING_NEW: 0,
    OrderStatus.UNKNOWN: 1,
    OrderStatus.NEW: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
    OrderStatus.PENDING_CANCEL: 4,
    OrderStatus.FILLED: 5,
    OrderStatus.CANCELED: 5,
    OrderStatus.REJECTED: 5,
    OrderStatus.EXPIRED: 5,
    OrderStatus.EXPIRED_IN_MATCH: 5,
}


def _value(member: Any) -> Any:
    return None if member is None else member.value


# -- orders ---------------------------------------------------------------------------------------
def order_values(update: OrderUpdated) -> dict[str, Any]:
    """The order's row as of this update (``created_ms`` is this update's time: an upsert keeps
    the stored one)."""
    return {
        "client_order_id": update.client_order_id,
        "exchange_order_id": update.exchange_order_id,
        "strategy": update.strategy,
        "symbol": update.symbol,
        "side": update.side.value,
        "order_type": update.order_type.value,
        "time_in_force": _value(update.time_in_force),
        "purpose": _value(update.purpose),
        "origin": update.origin.value,
        "signal_id": update.signal_id,
        "quantity": update.quantity,
        "price": update.price,
        "stop_price": update.stop_price,
        "reduce_only": update.reduce_only,
        "status": update.status.value,
        "is_open": not update.status.is_final,
        "filled_quantity": update.filled_quantity,
        "average_fill_price": update.average_fill_price,
        "reason": update.reason,
        "created_ms": update.ts_ms,
        "updated_ms": update.ts_ms,
    }


def order_to_row(update: OrderUpdated) -> OrderRow:
    return OrderRow(**order_values(update))


def intent_values(order: SubmitOrder) -> dict[str, Any]:
    """The write-ahead row of an order about to be sent: PENDING_NEW, nothing filled."""
    return {
        "client_order_id": order.client_order_id,
        "exchange_order_id": None,
        "strategy": order.strategy,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "time_in_force": _value(order.time_in_force),
        "purpose": order.purpose.value,
        "origin": OrderOrigin.CLIENT.value,
        "signal_id": order.signal_id,
        "quantity": order.quantity,
        "price": order.price,
        "stop_price": order.stop_price,
        "reduce_only": order.reduce_only,
        "status": OrderStatus.PENDING_NEW.value,
        "is_open": True,
        "filled_quantity": _ZERO,
        "average_fill_price": None,
        "reason": "",
        "created_ms": order.ts_ms,
        "updated_ms": order.ts_ms,
    }


def intent_to_row(order: SubmitOrder) -> OrderRow:
    return OrderRow(**intent_values(order))


def order_from_row(row: OrderRow) -> OrderUpdated:
    return OrderUpdated(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        order_type=OrderType(row.order_type),
        status=OrderStatus(row.status),
        quantity=row.quantity,
        filled_quantity=row.filled_quantity,
        ts_ms=row.updated_ms,
        price=row.price,
        average_fill_price=row.average_fill_price,
        exchange_order_id=row.exchange_order_id,
        reason=row.reason,
        origin=OrderOrigin(row.origin),
        reduce_only=row.reduce_only,
        stop_price=row.stop_price,
        time_in_force=None if row.time_in_force is None else TimeInForce(row.time_in_force),
        strategy=row.strategy,
        signal_id=row.signal_id,
        purpose=None if row.purpose is None else OrderPurpose(row.purpose),
    )


# -- fills ----------------------------------------------------------------------------------------
def fill_values(fill: Fill, *, strategy: str, client_order_id: str | None = None) -> dict[str, Any]:
    """A fill's row. `client_order_id` replaces the fill's own when that is empty (spot
    ``myTrades`` do not carry it; the order update they arrive with does)."""
    return {
        "symbol": fill.symbol,
        "trade_id": fill.trade_id,
        "client_order_id": fill.client_order_id or client_order_id or "",
        "exchange_order_id": fill.exchange_order_id,
        "strategy": strategy,
        "side": fill.side.value,
        "price": fill.price,
        "quantity": fill.quantity,
        "fee": fill.fee,
        "fee_asset": fill.fee_asset,
        "is_maker": fill.is_maker,
        "realized_pnl": fill.realized_pnl,
        "ts_ms": fill.ts_ms,
    }


def fill_to_row(fill: Fill, *, strategy: str, client_order_id: str | None = None) -> FillRow:
    return FillRow(**fill_values(fill, strategy=strategy, client_order_id=client_order_id))


def fill_from_row(row: FillRow) -> Fill:
    return Fill(
        trade_id=row.trade_id,
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        price=row.price,
        quantity=row.quantity,
        fee=row.fee,
        fee_asset=row.fee_asset,
        is_maker=row.is_maker,
        ts_ms=row.ts_ms,
        realized_pnl=row.realized_pnl,
        exchange_order_id=row.exchange_order_id,
    )
