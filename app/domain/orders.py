"""Order commands (`order.request`) and order events (`order.update`).

Commands are imperative (`SubmitOrder`, `CancelOrder`), events past tense (`OrderUpdated`,
`OrderDenied`). Money and quantities are `Decimal`; nothing here changes after creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.enums import (
    ExecutionType,
    OrderOrigin,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """One order intent. `client_order_id` is the intent's identity: the executor places at most
    one exchange order per id, however often it is retried or re-sent. `ttl_ms` bounds how long
    a LIMIT order may rest before the executor cancels it (None: until filled or cancelled)."""

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
    purpose: OrderPurpose = OrderPurpose.ENTRY
    ttl_ms: int | None = None
    # Futures conditional orders only: the price that triggers them ("MARK_PRICE" or
    # "CONTRACT_PRICE"; None: the venue's default, CONTRACT_PRICE), and close-all (the whole
    # position when it triggers: no quantity, not reduce-only, as Binance requires).
    working_type: str | None = None
    close_position: bool = False

    @property
    def is_entry(self) -> bool:
        return self.purpose is OrderPurpose.ENTRY


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """Change a resting LIMIT order's price and/or quantity: spot cancel-replace (a new client
    order id, `new_client_order_id`), futures modify in place (the id stays)."""

    client_order_id: str
    symbol: str
    ts_ms: int
    price: Decimal
    quantity: Decimal
    new_client_order_id: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_order_id: str
    symbol: str
    ts_ms: int
    reason: str = ""


OrderRequest = SubmitOrder | CancelOrder | ReplaceOrder


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade against an order; `trade_id` is the exchange's and makes fills idempotent.

    `client_order_id` is "" when the source does not carry it (Spot `myTrades`): correlate
    those by `exchange_order_id`. `realized_pnl` is the futures profit booked by this trade.
    """

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
    realized_pnl: Decimal | None = None
    exchange_order_id: int | None = None

    @property
    def fee_in_base(self) -> bool:
        """Spot charges a buyer's commission in the base asset (BTC of BTCUSDT) unless paid in
        BNB: what the account then holds is the quantity minus the fee."""
        asset = self.fee_asset
        return bool(asset) and self.symbol.startswith(asset) and self.symbol != asset

    @property
    def position_change(self) -> Decimal:
        """The signed change of the base-asset holding: the quantity, less a base-asset fee."""
        signed = self.quantity if self.side is Side.BUY else -self.quantity
        return signed - self.fee if self.fee_in_base else signed


@dataclass(frozen=True, slots=True)
class QuickFill:
    """An early fill notice (futures TRADE_LITE): no fee, no order state.

    The complete `Fill` with the same `trade_id` follows in an `OrderUpdated`; consumers that
    book fills must take that one and may use this only to react sooner.
    """

    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    trade_id: int
    exchange_order_id: int
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
    execution_type: ExecutionType | None = None  # None when not from an execution event (REST)
    origin: OrderOrigin = OrderOrigin.CLIENT
    reduce_only: bool = False
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    # The strategy instance whose order this is, stamped by the executor from its own order
    # book; "" for foreign orders and for events straight from the exchange parsers.
    strategy: str = ""
    # The signal the order carries out, stamped the same way (None when unknown): trade
    # management ties fills to the position they open or close by it.
    signal_id: str | None = None
    purpose: OrderPurpose | None = None  # stamped like `strategy`; None for foreign orders


@dataclass(frozen=True, slots=True)
class AlgoOrderUpdated:
    """A futures conditional (algo) order's state: it waits in Binance's algo service until
    its trigger fires, then becomes a regular order whose id is `exchange_order_id`.

    `status` is Binance's algo status in lower case: new, canceled, triggering, triggered,
    finished, rejected or expired. `client_algo_id` is the id we chose when placing it.
    """

    client_algo_id: str
    algo_id: int
    symbol: str
    side: Side
    order_type: OrderType
    status: str
    quantity: Decimal
    ts_ms: int
    trigger_price: Decimal | None = None
    price: Decimal | None = None
    reduce_only: bool = False
    exchange_order_id: int | None = None
    reason: str = ""
    filled_quantity: Decimal = Decimal(0)
    average_fill_price: Decimal | None = None
    close_position: bool = False
    position_side: str = "BOTH"
    time_in_force: TimeInForce | None = None


@dataclass(frozen=True, slots=True)
class OrderDenied:
    """The risk gate refused a signal; the reason names the check that refused it."""

    strategy: str
    symbol: str
    reason: str
    ts_ms: int
    signal_id: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserStreamResynced:
    """The user-data stream was re-established: order events in the gap may be lost, so the
    executor re-queries the orders it still thinks are open."""

    reason: str
    ts_ms: int


OrderEvent = OrderUpdated | OrderDenied | QuickFill | AlgoOrderUpdated
VenueOrderEvent = OrderUpdated | QuickFill | AlgoOrderUpdated | UserStreamResynced
