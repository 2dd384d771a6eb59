"""Binance's order vocabulary → domain enums: sides, order types, statuses, execution types,
algo statuses, time in force, position sides, margin types and who made an order.

One table per Binance word list, read by the stream (``parse_user``) and REST
(``parse_account``) parsers alike. The opposite direction, domain commands to request
parameters, is ``order_params``. An unknown value raises ``MalformedEvent`` (through
``wire_user.lookup`` or here), except time in force, which is informational.
"""

from __future__ import annotations

from app.domain.enums import ExecutionType, OrderOrigin, OrderStatus, OrderType, Side, TimeInForce
from exchange.binance.wire_user import MalformedEvent

__all__ = [
    "ALGO_STATUSES",
    "EXECUTION_TYPES",
    "FUTURES_ORDER_TYPES",
    "ORDER_STATUSES",
    "SIDES",
    "SPOT_ORDER_TYPES",
    "margin_type",
    "order_origin",
    "position_side",
    "time_in_force",
]

SIDES: dict[str, Side] = {"BUY": Side.BUY, "SELL": Side.SELL}
SPOT_ORDER_TYPES: dict[str, OrderType] = {
    "LIMIT": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "LIMIT_MAKER": OrderType.LIMIT_MAKER,
    "STOP_LOSS": OrderType.STOP_MARKET,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT_MARKET,
    "TAKE_PROFIT_LIMIT": OrderType.TAKE_PROFIT_LIMIT,
}
FUTURES_ORDER_TYPES: dict[str, OrderType] = {
    "LIMIT": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "STOP": OrderType.STOP_LIMIT,
    "STOP_MARKET": OrderType.STOP_MARKET,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT_LIMIT,
    "TAKE_PROFIT_MARKET": OrderType.TAKE_PROFIT_MARKET,
    "TRAILING_STOP_MARKET": OrderType.TRAILING_STOP_MARKET,
    "LIQUIDATION": OrderType.MARKET,  # the exchange's own close-out; origin says liquidation
}
ORDER_STATUSES: dict[str, OrderStatus] = {
    "PENDING_NEW": OrderStatus.PENDING_NEW,
    "NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "PENDING_CANCEL": OrderStatus.PENDING_CANCEL,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED_IN_MATCH,
    # Legacy futures statuses: a new exchange-made order; the origin records which kind.
    "NEW_INSURANCE": OrderStatus.NEW,
    "NEW_ADL": OrderStatus.NEW,
}
EXECUTION_TYPES: dict[str, ExecutionType] = {e.name: e for e in ExecutionType}
ALGO_STATUSES = frozenset(
    {"NEW", "CANCELED", "TRIGGERING", "TRIGGERED", "FINISHED", "REJECTED", "EXPIRED"}
)
_TIMES_IN_FORCE: dict[str, TimeInForce] = {t.name: t for t in TimeInForce}
_POSITION_SIDES = frozenset({"BOTH", "LONG", "SHORT"})
_MARGIN_TYPES = {"cross": "cross", "crossed": "cross", "isolated": "isolated"}
_ORIGIN_BY_STATUS = {"NEW_INSURANCE": OrderOrigin.INSURANCE, "NEW_ADL": OrderOrigin.ADL}
# Documented special client ids; checked in order, so the longer prefixes come first.
_ORIGIN_PREFIXES = (
    ("adl_autoclose", OrderOrigin.ADL),
    ("settlement_autoclose", OrderOrigin.SETTLEMENT),
    ("delivery_autoclose", OrderOrigin.DELIVERY),
    ("delivery-", OrderOrigin.DELIVERY),
    ("autoclose-", OrderOrigin.LIQUIDATION),
)


def time_in_force(raw: str | None) -> TimeInForce | None:
    # Informational only: values we have no enum for (GTE_GTC, RPI) read as None, not an error.
    return _TIMES_IN_FORCE.get(raw) if raw else None


def position_side(raw: str | None) -> str:
    if raw is None or raw == "":
        return "BOTH"
    if raw not in _POSITION_SIDES:
        raise MalformedEvent(f"unknown position side {raw!r}")
    return raw


def margin_type(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    return _MARGIN_TYPES.get(raw.lower(), raw.lower())


def order_origin(
    client_order_id: str, raw_status: str, raw_types: tuple[str | None, ...], calculated: bool
) -> OrderOrigin:
    """Who made the order, from the legacy statuses, the documented client-id prefixes, the
    LIQUIDATION order type, and finally a CALCULATED (liquidation) execution."""
    by_status = _ORIGIN_BY_STATUS.get(raw_status)
    if by_status is not None:
        return by_status
    for prefix, origin in _ORIGIN_PREFIXES:
        if client_order_id.startswith(prefix):
            return origin
    if "LIQUIDATION" in raw_types or calculated:
        return OrderOrigin.LIQUIDATION
    return OrderOrigin.CLIENT
