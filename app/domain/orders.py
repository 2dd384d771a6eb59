"""Order commands (`order.request`) and order events (`order.update`).

Commands are imperative (`SubmitOrder`, `CancelOrder`), events past tense (`OrderUpdated`,
`OrderDenied`). Money and quantities are `Decimal`; nothing here changes after creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.enums import OrderStatus, OrderType, Side, TimeInForce


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    ts_ms: int
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    reduce_only: bool = False
    signal_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_order_id: str
    symbol: str
    ts_ms: int
    reason: str = ""


OrderRequest = SubmitOrder | CancelOrder


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade against an order; `trade_id` is the exchange's and makes fills idempotent."""

    trade_id: int
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    """The order's state after an exchange event (or after our own PENDING_NEW/UNKNOWN steps)."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    status: OrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    ts_ms: int
    price: Decimal | None = None
    average_fill_price: Decimal | None = None
    exchange_order_id: int | None = None
    fill: Fill | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderDenied:
    """The risk gate refused a signal; the reason names the check that refused it."""

    strategy: str
    symbol: str
    reason: str
    ts_ms: int
    signal_id: str | None = None
    client_order_id: str | None = None


OrderEvent = OrderUpdated | OrderDenied
