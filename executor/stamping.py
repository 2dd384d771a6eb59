"""What the executor publishes on `order.update` for a tracked order.

Every update is the tracked order's own state — status after the state machine, cumulative
filled quantity, average price of the booked fills, the amended price and quantity — stamped
with the strategy, signal and purpose of the intent (`dataclasses.replace`), so nothing
downstream ever sees a report that moved an order backwards. One report that brought several
new fills (a spot FULL answer) becomes one update per fill, in trade order, the earlier ones
partially filled, as the stream itself would have told it.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from app.domain.enums import OrderStatus
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from executor.tracked import TrackedOrder

__all__ = ["intent_update", "local_update", "stamped_updates"]


def intent_update(
    request: SubmitOrder,
    *,
    status: OrderStatus,
    ts_ms: int,
    quantity: Decimal,
    price: Decimal | None,
    filled_quantity: Decimal = Decimal(0),
) -> OrderUpdated:
    """An update describing the intent itself, stamped with its strategy, signal and purpose:
    the base of the updates the live executor makes up and of every paper-executor update."""
    return OrderUpdated(
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        order_type=request.order_type,
        status=status,
        quantity=quantity,
        filled_quantity=filled_quantity,
        ts_ms=ts_ms,
        price=price,
        reduce_only=request.reduce_only,
        stop_price=request.stop_price,
        time_in_force=request.time_in_force,
        strategy=request.strategy,
        signal_id=request.signal_id,
        purpose=request.purpose,
    )


def local_update(order: TrackedOrder, ts_ms: int, reason: str = "") -> OrderUpdated:
    """The order's state as an update of our own making (PENDING_NEW, UNKNOWN, a local
    rejection, PENDING_CANCEL): built from the intent, no fill."""
    base = order.last or intent_update(
        order.request,
        status=order.status,
        ts_ms=ts_ms,
        quantity=order.quantity,
        price=order.price,
    )
    return _stamp(order, replace(base, ts_ms=ts_ms, execution_type=None), None, reason)


def stamped_updates(
    order: TrackedOrder, report: OrderUpdated, new_fills: tuple[Fill, ...]
) -> list[OrderUpdated]:
    """The updates to publish after `report` changed `order` (one per new fill, else one)."""
    if not new_fills:
        return [_stamp(order, report, None, report.reason)]
    ordered = sorted(new_fills, key=lambda f: f.trade_id)
    # What the fills booked before this report add up to (the order keeps running sums).
    quantity = order.booked_quantity - sum((f.quantity for f in ordered), Decimal(0))
    value = order.booked_notional - sum((f.price * f.quantity for f in ordered), Decimal(0))
    updates: list[OrderUpdated] = []
    for index, fill in enumerate(ordered):
        quantity += fill.quantity
        value += fill.price * fill.quantity
        if index == len(ordered) - 1:
            updates.append(_stamp(order, report, fill, report.reason))
            continue
        status = order.status
        if status is OrderStatus.FILLED and quantity < order.quantity:
            status = OrderStatus.PARTIALLY_FILLED
        interim = _stamp(order, report, fill, report.reason)
        updates.append(
            replace(
                interim,
                status=status,
                filled_quantity=quantity,
                average_fill_price=value / quantity,
            )
        )
    return updates


def _stamp(order: TrackedOrder, base: OrderUpdated, fill: Fill | None, reason: str) -> OrderUpdated:
    request = order.request
    if not reason and order.status is OrderStatus.CANCELED:
        reason = order.cancel_reason or order.reason
    elif not reason:
        reason = order.reason
    return replace(
        base,
        client_order_id=order.cid,
        status=order.status,
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        price=order.price,
        average_fill_price=order.average_price or base.average_fill_price,
        exchange_order_id=order.exchange_order_id,
        fill=fill,
        reason=reason,
        strategy=request.strategy,
        signal_id=request.signal_id,
        purpose=request.purpose,
    )
