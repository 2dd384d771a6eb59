"""Binance order wires → ``OrderUpdated`` / ``AlgoOrderUpdated``, one reading for stream and REST.

The user-data stream (``parse_user``) hands over ``executionReport``, ``ORDER_TRADE_UPDATE``
and ``ALGO_UPDATE`` orders; REST (``parse_account``) translates its answers to the same keys
first. Either way an order means the same thing. Fills carry the trade time ``T``; the
order state carries the event time. Raises only ``MalformedEvent``.
"""

from __future__ import annotations

from app.domain.enums import ExecutionType, OrderType
from app.domain.orders import AlgoOrderUpdated, Fill, OrderUpdated
from exchange.binance.order_mapping import (
    ALGO_STATUSES,
    EXECUTION_TYPES,
    FUTURES_ORDER_TYPES,
    ORDER_STATUSES,
    SIDES,
    SPOT_ORDER_TYPES,
    order_origin,
    position_side,
    time_in_force,
)
from exchange.binance.wire_user import (
    AlgoOrderWire,
    FuturesOrderWire,
    MalformedEvent,
    SpotExecutionWire,
    amount_of,
    decimal_of,
    integer_of,
    lookup,
    optional_decimal,
    price_or_none,
)

__all__ = ["algo_order", "futures_order_update", "spot_order_update"]


def spot_order_update(report: SpotExecutionWire) -> OrderUpdated:
    """An executionReport (or a REST order translated to its keys) → ``OrderUpdated``."""
    side = lookup(SIDES, report.side, "side")
    execution = None
    if report.execution_type is not None:
        execution = lookup(EXECUTION_TYPES, report.execution_type, "execution type")
    # On a cancel `c` is the cancel request's own id and `C` the order's original one.
    client_id = report.orig_client_order_id or report.client_order_id
    filled = amount_of(report.cum_qty, "cumulative quantity z")
    cum_quote = amount_of(report.cum_quote or "0", "cumulative quote Z")
    last_qty = amount_of(report.last_qty or "0", "last quantity l")
    last_price = amount_of(report.last_price or "0", "last price L")
    fill = None
    # A trade reported at price 0 (an edge case other adapters have met) is not booked: fills
    # are idempotent by trade id, so a bogus one would shadow the true fill from myTrades.
    if execution is ExecutionType.TRADE and last_qty > 0 and last_price > 0:
        if report.trade_id < 0:
            raise MalformedEvent("executionReport TRADE with a quantity but no trade id")
        fill = Fill(
            report.trade_id, client_id, report.symbol, side, last_price, last_qty,
            decimal_of(report.commission or "0", "commission n"), report.commission_asset or "",
            report.is_maker, report.transaction_time or report.event_time,
            exchange_order_id=report.order_id,
        )  # fmt: skip
    reason = report.reject_reason if report.reject_reason != "NONE" else None
    return OrderUpdated(
        client_order_id=client_id,
        symbol=report.symbol,
        side=side,
        order_type=lookup(SPOT_ORDER_TYPES, report.order_type, "spot order type"),
        status=lookup(ORDER_STATUSES, report.status, "order status"),
        quantity=amount_of(report.quantity, "quantity q"),
        filled_quantity=filled,
        ts_ms=report.event_time,
        price=price_or_none(report.price, "price p"),
        average_fill_price=cum_quote / filled if filled > 0 and cum_quote > 0 else None,
        exchange_order_id=report.order_id,
        fill=fill,
        reason=reason or report.expiry_reason or "",
        execution_type=execution,
        origin=order_origin(
            client_id, report.status, (report.order_type,), execution is ExecutionType.CALCULATED
        ),
        stop_price=price_or_none(report.stop_price, "stop price P"),
        time_in_force=time_in_force(report.time_in_force),
    )


def futures_order_update(
    order: FuturesOrderWire, event_time: int, transaction_time: int | None = None
) -> OrderUpdated:
    """An ORDER_TRADE_UPDATE order (or a REST order translated to its keys) → ``OrderUpdated``."""
    side = lookup(SIDES, order.side, "side")
    order_type = lookup(FUTURES_ORDER_TYPES, order.order_type, "futures order type")
    execution = None
    if order.execution_type is not None:
        execution = lookup(EXECUTION_TYPES, order.execution_type, "execution type")
    last_qty = amount_of(order.last_qty or "0", "last quantity l")
    last_price = amount_of(order.last_price or "0", "last price L")
    fill = None
    # CALCULATED is the liquidation/ADL execution itself: it moves the position like a trade.
    # Price 0 is skipped as on Spot (see spot_order_update).
    traded = execution in (ExecutionType.TRADE, ExecutionType.CALCULATED)
    if traded and last_qty > 0 and last_price > 0:
        if order.trade_id <= 0:
            raise MalformedEvent("ORDER_TRADE_UPDATE fill without a trade id")
        fill = Fill(
            order.trade_id, order.client_order_id, order.symbol, side, last_price, last_qty,
            decimal_of(order.commission or "0", "commission n"), order.commission_asset or "",
            order.is_maker, order.trade_time or transaction_time or event_time,
            realized_pnl=optional_decimal(order.realized_pnl, "realized pnl rp"),
            exchange_order_id=order.order_id,
        )  # fmt: skip
    # Binance says to ignore `sp` on trailing stops; their trigger is the activation price.
    trailing = order_type is OrderType.TRAILING_STOP_MARKET
    return OrderUpdated(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=side,
        order_type=order_type,
        status=lookup(ORDER_STATUSES, order.status, "order status"),
        quantity=amount_of(order.quantity, "quantity q"),
        filled_quantity=amount_of(order.cum_qty, "cumulative quantity z"),
        ts_ms=event_time,
        price=price_or_none(order.price, "price p"),
        average_fill_price=price_or_none(order.average_price, "average price ap"),
        exchange_order_id=order.order_id,
        fill=fill,
        execution_type=execution,
        origin=order_origin(
            order.client_order_id,
            order.status,
            (order.order_type, order.original_type),
            execution is ExecutionType.CALCULATED,
        ),
        reduce_only=order.reduce_only,
        stop_price=price_or_none(
            order.activation_price if trailing else order.stop_price, "stop price"
        ),
        time_in_force=time_in_force(order.time_in_force),
    )


def algo_order(algo: AlgoOrderWire, ts_ms: int) -> AlgoOrderUpdated:
    """An ALGO_UPDATE order (or a REST algo order translated to its keys) → the domain."""
    if algo.status not in ALGO_STATUSES:
        raise MalformedEvent(f"unknown algo status {algo.status!r}")
    actual = algo.actual_order_id
    if isinstance(actual, str):
        actual = integer_of(actual, "actual order id ai") if actual else None
    return AlgoOrderUpdated(
        client_algo_id=algo.client_algo_id,
        algo_id=algo.algo_id,
        symbol=algo.symbol,
        side=lookup(SIDES, algo.side, "side"),
        order_type=lookup(FUTURES_ORDER_TYPES, algo.order_type, "algo order type"),
        status=algo.status.lower(),
        quantity=amount_of(algo.quantity or "0", "quantity"),
        ts_ms=ts_ms,
        trigger_price=price_or_none(algo.trigger_price, "trigger price"),
        price=price_or_none(algo.price, "price"),
        reduce_only=algo.reduce_only,
        exchange_order_id=actual,
        reason=algo.reason or "",
        filled_quantity=amount_of(algo.executed_qty or "0", "executed quantity"),
        average_fill_price=price_or_none(algo.average_price, "average price"),
        close_position=algo.close_position,
        position_side=position_side(algo.position_side),
        time_in_force=time_in_force(algo.time_in_force),
    )
