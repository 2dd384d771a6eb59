"""The one catalogue of channels: every channel the daemon uses is declared here, once, with its
message type, delivery, bound and overflow policy.

| channel                  | message                          | delivery | when full          |
|--------------------------|----------------------------------|----------|--------------------|
| `market.kline.<SYMBOL>`  | Kline                            | fan-out  | conflate per bar   |
| `market.book.<SYMBOL>`   | BookTicker                       | fan-out  | conflate per symbol|
| `market.mark.<SYMBOL>`   | MarkPrice                        | fan-out  | conflate per symbol|
| `signal.<strategy>`      | Signal                           | fan-out  | block              |
| `order.request`          | SubmitOrder / CancelOrder /      | one-to-one | block            |
|                          | ReplaceOrder                     |          |                    |
| `venue.order`            | OrderUpdated / QuickFill /       | fan-out  | block              |
|                          | AlgoOrderUpdated (raw, exchange) |          |                    |
|                          | / UserStreamResynced             |          |                    |
| `order.update`           | OrderUpdated / OrderDenied /     | fan-out  | block              |
|                          | QuickFill / AlgoOrderUpdated     |          |                    |
| `account.update`         | AccountUpdated / BalanceChanged  | fan-out  | block              |
|                          | / PositionsReconciled            |          |                    |
| `risk.state`             | TradingStateChanged              | fan-out  | block              |
| `system.alert`           | Alert                            | fan-out  | drop oldest        |
| `system.control`         | ControlCommand                   | fan-out  | block              |
| `system.ack`             | ControlAcknowledged              | fan-out  | block              |

`venue.order` carries the exchange's own order events (user-data stream) to the executor, which
checks them against its order state machine, books each fill once and republishes them on
`order.update` stamped with the strategy, signal and purpose: everything downstream reads
`order.update` only.

Klines conflate per (symbol, interval, open time): intrabar updates of one bar replace each
other, while a closed bar is never replaced by the next bar's first update.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from app.bus.inbox import Overflow
from app.bus.names import ANY_ONE, InvalidName, split_name, split_pattern, tokens_overlap
from app.domain import (
    AccountUpdated,
    Alert,
    AlgoOrderUpdated,
    BalanceChanged,
    BookTicker,
    CancelOrder,
    ControlAcknowledged,
    ControlCommand,
    Kline,
    MarkPrice,
    OrderDenied,
    OrderUpdated,
    PositionsReconciled,
    QuickFill,
    ReplaceOrder,
    Signal,
    SubmitOrder,
    TradingStateChanged,
)
from app.domain.account import AccountEvent
from app.domain.orders import OrderEvent, OrderRequest, UserStreamResynced, VenueOrderEvent

T = TypeVar("T")


class Delivery(StrEnum):
    FANOUT = "fanout"  # every subscriber gets every message
    POINT_TO_POINT = "point_to_point"  # exactly one receiver; sending without one is a bug


class CapacityClass(StrEnum):
    """Which configured bound applies (`bus.market_capacity`, `bus.order_capacity`, ...)."""

    MARKET = "market"
    ORDER = "order"
    DEFAULT = "default"


@dataclass(frozen=True, eq=False)
class ChannelSpec(Generic[T]):
    """A family of channels sharing one shape; `{param}` in the template names the variable part."""

    template: str
    item_types: tuple[type, ...]
    delivery: Delivery
    overflow: Overflow
    capacity_class: CapacityClass
    description: str
    key: Callable[[T], Hashable] | None = None
    _tokens: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tokens = tuple(
            ANY_ONE if t.startswith("{") and t.endswith("}") else t
            for t in self.template.split(".")
        )
        split_pattern(".".join(tokens))
        object.__setattr__(self, "_tokens", tokens)
        if self.overflow is Overflow.CONFLATE and self.key is None:
            raise ValueError(f"{self.template}: a conflating channel needs a key")

    @property
    def parameterised(self) -> bool:
        return ANY_ONE in self._tokens

    @property
    def tokens(self) -> tuple[str, ...]:
        """The template as pattern tokens (`market.kline.*`)."""
        return self._tokens

    def channel(self, param: str | None = None) -> ChannelRef[T]:
        """The concrete channel: `MARKET_KLINE.channel("BTCUSDT")` → `market.kline.BTCUSDT`."""
        if self.parameterised != (param is not None):
            raise ValueError(
                f"{self.template}: parameter is {'required' if param is None else 'not taken'}"
            )
        if param is not None and len(split_name(param)) != 1:
            raise InvalidName(f"{self.template}: parameter {param!r} must be one token")
        name = (
            self.template
            if param is None
            else ".".join(param if t == ANY_ONE else t for t in self._tokens)
        )
        split_name(name)
        return ChannelRef(self, name)

    def any(self) -> ChannelPattern[T]:
        """Every channel of the family: `SIGNAL.any()` → `signal.*`."""
        return ChannelPattern(self, ".".join(self._tokens))


@dataclass(frozen=True)
class ChannelRef(Generic[T]):
    spec: ChannelSpec[T]
    name: str


@dataclass(frozen=True)
class ChannelPattern(Generic[T]):
    spec: ChannelSpec[T]
    pattern: str


def _kline_key(kline: Kline) -> Hashable:
    return (kline.symbol, kline.interval, kline.open_time_ms)


def _book_key(book: BookTicker) -> Hashable:
    return book.symbol


def _mark_key(mark: MarkPrice) -> Hashable:
    return mark.symbol


MARKET_KLINE: ChannelSpec[Kline] = ChannelSpec(
    "market.kline.{symbol}", (Kline,), Delivery.FANOUT, Overflow.CONFLATE, CapacityClass.MARKET,
    "candles, intrabar updates and closed bars", key=_kline_key,
)  # fmt: skip
MARKET_BOOK: ChannelSpec[BookTicker] = ChannelSpec(
    "market.book.{symbol}", (BookTicker,), Delivery.FANOUT, Overflow.CONFLATE,
    CapacityClass.MARKET, "best bid/ask", key=_book_key,
)  # fmt: skip
MARKET_MARK: ChannelSpec[MarkPrice] = ChannelSpec(
    "market.mark.{symbol}", (MarkPrice,), Delivery.FANOUT, Overflow.CONFLATE,
    CapacityClass.MARKET, "futures mark price and funding", key=_mark_key,
)  # fmt: skip
SIGNAL: ChannelSpec[Signal] = ChannelSpec(
    "signal.{strategy}", (Signal,), Delivery.FANOUT, Overflow.BLOCK, CapacityClass.ORDER,
    "strategy intents, to the risk gate and the recorder",
)  # fmt: skip
ORDER_REQUEST: ChannelSpec[OrderRequest] = ChannelSpec(
    "order.request", (SubmitOrder, CancelOrder, ReplaceOrder), Delivery.POINT_TO_POINT,
    Overflow.BLOCK, CapacityClass.ORDER, "orders approved by the risk gate, to the executor",
)  # fmt: skip
VENUE_ORDER: ChannelSpec[VenueOrderEvent] = ChannelSpec(
    "venue.order", (OrderUpdated, QuickFill, AlgoOrderUpdated, UserStreamResynced),
    Delivery.FANOUT, Overflow.BLOCK,
    CapacityClass.ORDER, "the exchange's order events as received, to the executor",
)  # fmt: skip
ORDER_UPDATE: ChannelSpec[OrderEvent] = ChannelSpec(
    "order.update", (OrderUpdated, OrderDenied, QuickFill, AlgoOrderUpdated), Delivery.FANOUT,
    Overflow.BLOCK, CapacityClass.ORDER,
    "order state changes, early fill notices, conditional-order states and risk denials",
)  # fmt: skip
ACCOUNT_UPDATE: ChannelSpec[AccountEvent] = ChannelSpec(
    "account.update", (AccountUpdated, BalanceChanged, PositionsReconciled), Delivery.FANOUT,
    Overflow.BLOCK, CapacityClass.ORDER,
    "balances and positions, balance deltas from transfers, positions after reconciliation",
)  # fmt: skip
RISK_STATE: ChannelSpec[TradingStateChanged] = ChannelSpec(
    "risk.state", (TradingStateChanged,), Delivery.FANOUT, Overflow.BLOCK, CapacityClass.DEFAULT,
    "trading state ACTIVE/REDUCING/HALTED",
)  # fmt: skip
SYSTEM_ALERT: ChannelSpec[Alert] = ChannelSpec(
    "system.alert", (Alert,), Delivery.FANOUT, Overflow.DROP_OLDEST, CapacityClass.DEFAULT,
    "alerts for operators; a flood drops the oldest rather than stall the daemon",
)  # fmt: skip
SYSTEM_CONTROL: ChannelSpec[ControlCommand] = ChannelSpec(
    "system.control", (ControlCommand,), Delivery.FANOUT, Overflow.BLOCK, CapacityClass.DEFAULT,
    "operator commands: halt, resume, flatten, shutdown",
)  # fmt: skip
SYSTEM_ACK: ChannelSpec[ControlAcknowledged] = ChannelSpec(
    "system.ack", (ControlAcknowledged,), Delivery.FANOUT, Overflow.BLOCK, CapacityClass.DEFAULT,
    "components confirming they carried out an operator command",
)  # fmt: skip

ALL_SPECS: tuple[ChannelSpec[Any], ...] = (
    MARKET_KLINE,
    MARKET_BOOK,
    MARKET_MARK,
    SIGNAL,
    ORDER_REQUEST,
    VENUE_ORDER,
    ORDER_UPDATE,
    ACCOUNT_UPDATE,
    RISK_STATE,
    SYSTEM_ALERT,
    SYSTEM_CONTROL,
    SYSTEM_ACK,
)


def spec_for(name: str) -> ChannelSpec[Any]:
    """The family a concrete channel name belongs to; unknown names are a wiring bug."""
    tokens = split_name(name)
    for spec in ALL_SPECS:
        if tokens_overlap(spec.tokens, tokens):
            return spec
    raise KeyError(f"channel {name!r} is not declared in app/bus/catalogue.py")
