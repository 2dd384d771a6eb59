"""The executor's order book: one `TrackedOrder` per client order id we ever placed.

A tracked order keeps the intent (`SubmitOrder`, with its strategy, signal and purpose), the
status the state machine allows, the exchange's cumulative filled quantity (never lowered),
and the fills booked by trade id with fees per asset, each in its own asset. `apply_update`
is the one place an exchange report (stream event, REST answer, query) changes an order;
it is pure bookkeeping — no I/O, no logging — so it is tested exhaustively on its own.

Client order ids are never forgotten while the process runs: that memory is what makes a
repeated intent a duplicate rather than a second exchange order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from app.domain.enums import OrderStatus, OrderType
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from executor.state_machine import OPEN_STATUSES, Verdict, decide, is_acknowledged

__all__ = ["Applied", "OrderBook", "TrackedOrder", "apply_update"]

_ZERO = Decimal(0)
_TTL_TYPES = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER})


@dataclass(eq=False)
class TrackedOrder:
    """One order intent and everything we know about its exchange order."""

    request: SubmitOrder
    created_ms: int
    status: OrderStatus = OrderStatus.PENDING_NEW
    quantity: Decimal = _ZERO
    price: Decimal | None = None
    exchange_order_id: int | None = None
    # The largest cumulative filled quantity the exchange reported (REST answers included).
    exchange_filled: Decimal = _ZERO
    fills: dict[int, Fill] = field(default_factory=dict)
    fees: dict[str, Decimal] = field(default_factory=dict)
    reason: str = ""
    sent_ms: int | None = None  # the last send attempt (TTL and not-found grace count from it)
    acked_ms: int | None = None
    send_attempts: int = 0
    cancel_reason: str | None = None  # a cancel was asked for (sent, or waiting for the ack)
    cancel_sent: bool = False
    # Since when the exchange's filled quantity exceeds the booked fills (a REST answer
    # without trades); the gap is closed from the trade list if the stream does not.
    gap_since_ms: int | None = None
    gap_checks: int = 0
    gap_fetching: bool = False
    resolving: bool = False  # an UNKNOWN resolution task owns this order
    cancel_attempts: int = 0
    last: OrderUpdated | None = None  # what was last published on order.update
    # Running sums over `fills` (a market order can fill in dozens of trades; summing them on
    # every report made each order quadratic).
    booked_quantity: Decimal = _ZERO
    booked_notional: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.quantity == _ZERO:
            self.quantity = self.request.quantity
        if self.price is None:
            self.price = self.request.price

    @property
    def cid(self) -> str:
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def is_open(self) -> bool:
        """Acknowledged and still able to trade (NEW, PARTIALLY_FILLED, PENDING_CANCEL)."""
        return self.status in OPEN_STATUSES

    @property
    def acknowledged(self) -> bool:
        return is_acknowledged(self.status)

    @property
    def filled_quantity(self) -> Decimal:
        return max(self.exchange_filled, self.booked_quantity)

    @property
    def fill_gap(self) -> Decimal:
        """How much the exchange says filled that no booked fill accounts for."""
        return max(self.exchange_filled - self.booked_quantity, _ZERO)

    @property
    def average_price(self) -> Decimal | None:
        quantity = self.booked_quantity
        if quantity == 0:
            return None
        return self.booked_notional / quantity

    def ttl_expired(self, now_ms: int) -> bool:
        ttl = self.request.ttl_ms
        if ttl is None or self.request.order_type not in _TTL_TYPES or self.sent_ms is None:
            return False
        return now_ms - self.sent_ms >= ttl

    def book(self, fill: Fill) -> Fill | None:
        """Book a fill once per trade id; returns it (with our client order id) when new."""
        if fill.trade_id in self.fills:
            return None
        if fill.client_order_id != self.cid:
            fill = replace(fill, client_order_id=self.cid)
        self.fills[fill.trade_id] = fill
        self.booked_quantity += fill.quantity
        self.booked_notional += fill.price * fill.quantity
        self.fees[fill.fee_asset] = self.fees.get(fill.fee_asset, _ZERO) + fill.fee
        return fill


@dataclass(frozen=True, slots=True)
class Applied:
    """What one report did to an order."""

    verdict: Verdict
    previous: OrderStatus
    new_fills: tuple[Fill, ...]
    changed: bool  # status, quantity, price, filled quantity or exchange id moved

    @property
    def refused(self) -> bool:
        return self.verdict is Verdict.REFUSE


def apply_update(order: TrackedOrder, update: OrderUpdated, fills: Sequence[Fill] = ()) -> Applied:
    """Apply one exchange report (and fills that came with it, e.g. a FULL answer).

    Fills are booked whatever the verdict; the filled quantity only ever grows; the status
    (and the amended price/quantity) change only on APPLY.
    """
    previous = order.status
    verdict = decide(previous, update.status)
    candidates: list[Fill] = list(fills)
    if update.fill is not None:
        candidates.append(update.fill)
    new_fills = tuple(f for f in (order.book(c) for c in candidates) if f is not None)
    changed = bool(new_fills)
    if update.exchange_order_id is not None and order.exchange_order_id is None:
        order.exchange_order_id = update.exchange_order_id
        changed = True
    if update.filled_quantity > order.exchange_filled:
        order.exchange_filled = update.filled_quantity
        changed = True
    if verdict is Verdict.APPLY:
        if update.status is not previous:
            order.status = update.status
            changed = True
        if update.quantity > 0 and update.quantity != order.quantity:
            order.quantity = update.quantity  # futures AMENDMENT / REPLACED
            changed = True
        if update.price is not None and update.price > 0 and update.price != order.price:
            order.price = update.price
            changed = True
        if update.reason:
            order.reason = update.reason
    return Applied(verdict, previous, new_fills, changed)


class OrderBook:
    """Tracked orders by client order id (and by exchange order id once known)."""

    def __init__(self) -> None:
        self._orders: dict[str, TrackedOrder] = {}
        self._by_exchange_id: dict[tuple[str, int], TrackedOrder] = {}

    def __contains__(self, cid: object) -> bool:
        return cid in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[TrackedOrder]:
        return iter(list(self._orders.values()))

    def get(self, cid: str) -> TrackedOrder | None:
        return self._orders.get(cid)

    def add(self, order: TrackedOrder) -> None:
        if order.cid in self._orders:
            raise ValueError(f"client order id {order.cid} is already tracked")
        self._orders[order.cid] = order

    def find(self, update: OrderUpdated) -> TrackedOrder | None:
        """The tracked order an exchange report is about (by client id, else exchange id)."""
        order = self._orders.get(update.client_order_id)
        if order is None and update.exchange_order_id is not None:
            order = self._by_exchange_id.get((update.symbol, update.exchange_order_id))
        if order is not None and order.exchange_order_id is not None:
            self._by_exchange_id[(order.symbol, order.exchange_order_id)] = order
        return order

    def remember_exchange_id(self, order: TrackedOrder) -> None:
        if order.exchange_order_id is not None:
            self._by_exchange_id[(order.symbol, order.exchange_order_id)] = order

    def open_orders(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if not o.is_final]

    def by_status(self) -> dict[str, int]:
        return dict(sorted(Counter(o.status.value for o in self._orders.values()).items()))

    def with_status(self, statuses: Iterable[OrderStatus]) -> list[TrackedOrder]:
        wanted = frozenset(statuses)
        return [o for o in self._orders.values() if o.status in wanted]
