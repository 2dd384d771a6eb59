"""Binance user-data events → domain messages, for Spot and USDⓈ-M Futures.

Spot events arrive in the WebSocket-API envelope ``{"subscriptionId": N, "event": {...}}``;
both decoders also take a bare event and the combined-stream wrapper
``{"stream": ..., "data": {...}}``. Each returns a tuple because one event may yield several
messages. Anything that cannot be read raises ``MalformedEvent`` (never another error);
kinds we do not consume (listStatus, MARGIN_CALL, ACCOUNT_CONFIG_UPDATE ...) come back as
``UnknownUserEvent`` so the caller can count them.

Times: state messages carry the event time ``E``; fills carry the trade time ``T``.
The mapping tables and value helpers here are shared with ``parse_account`` (REST).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec

from app.domain.account import AccountUpdated, Balance, BalanceChanged, PositionSnapshot
from app.domain.enums import ExecutionType, OrderOrigin, OrderStatus, OrderType, Side, TimeInForce
from app.domain.orders import AlgoOrderUpdated, Fill, OrderUpdated, QuickFill

__all__ = [
    "ALGO_STATUSES",
    "EXECUTION_TYPES",
    "FUTURES_ORDER_TYPES",
    "ORDER_STATUSES",
    "SIDES",
    "SPOT_ORDER_TYPES",
    "AlgoOrderWire",
    "FuturesOrderWire",
    "ListenKeyExpired",
    "MalformedEvent",
    "SpotExecutionWire",
    "StreamTerminated",
    "UnknownUserEvent",
    "UserEvent",
    "algo_order",
    "amount_of",
    "decimal_of",
    "decode_futures_user_event",
    "decode_spot_user_event",
    "futures_order_update",
    "lookup",
    "margin_type",
    "optional_decimal",
    "position_side",
    "price_or_none",
    "spot_order_update",
]

T = TypeVar("T")
K = TypeVar("K")


class MalformedEvent(ValueError):
    """The payload is not something we can read; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class StreamTerminated:
    """Spot WS-API: the user-data subscription ended (e.g. the session logged out)."""

    ts_ms: int


@dataclass(frozen=True, slots=True)
class ListenKeyExpired:
    """The listen key expired: re-create it and reconnect. Only its last 4 chars are kept."""

    ts_ms: int
    listen_key_suffix: str


@dataclass(frozen=True, slots=True)
class UnknownUserEvent:
    """A well-formed event of a kind this module does not consume."""

    kind: str


UserEvent = (
    OrderUpdated
    | QuickFill
    | AlgoOrderUpdated
    | AccountUpdated
    | BalanceChanged
    | StreamTerminated
    | ListenKeyExpired
    | UnknownUserEvent
)

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
_MAX_EXPONENT = 40  # far beyond any real amount; keeps Decimal arithmetic from overflowing


# Wire shapes. Attribute names say what a field is; `name=` is Binance's key. Unknown keys
# are ignored, so new fields Binance adds never break decoding.
def _f(name: str, default: object = msgspec.NODEFAULT) -> Any:
    return msgspec.field(default=default, name=name)


class _Envelope(msgspec.Struct, frozen=True):
    kind: str | None = _f("e", None)
    event: msgspec.Raw = msgspec.Raw()  # WS-API: {"subscriptionId": N, "event": {...}}
    data: msgspec.Raw = msgspec.Raw()  # combined stream: {"stream": ..., "data": {...}}


class _Kind(msgspec.Struct, frozen=True):
    kind: str | None = _f("e", None)


class SpotExecutionWire(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    symbol: str = _f("s")
    client_order_id: str = _f("c")
    side: str = _f("S")
    order_type: str = _f("o")
    quantity: str = _f("q")
    status: str = _f("X")
    order_id: int = _f("i")
    cum_qty: str = _f("z")
    execution_type: str | None = _f("x", None)  # absent only in REST answers
    time_in_force: str | None = _f("f", None)
    price: str | None = _f("p", None)
    stop_price: str | None = _f("P", None)
    orig_client_order_id: str | None = _f("C", None)
    reject_reason: str | None = _f("r", None)
    expiry_reason: str | None = _f("eR", None)
    last_qty: str | None = _f("l", None)
    last_price: str | None = _f("L", None)
    commission: str | None = _f("n", None)
    commission_asset: str | None = _f("N", None)
    transaction_time: int | None = _f("T", None)
    trade_id: int = _f("t", -1)
    is_maker: bool = _f("m", False)
    cum_quote: str | None = _f("Z", None)


class _SpotBalance(msgspec.Struct, frozen=True):
    asset: str = _f("a")
    free: str = _f("f")
    locked: str = _f("l")


class _SpotAccount(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    balances: list[_SpotBalance] = _f("B")


class _SpotBalanceDelta(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    asset: str = _f("a")
    delta: str = _f("d")
    clear_time: int = _f("T")


class _StreamTerminated(msgspec.Struct, frozen=True):
    event_time: int = _f("E")


class _ListenKeyExpired(msgspec.Struct, frozen=True):
    event_time: int | str = _f("E")
    listen_key: str = _f("listenKey", "")


class FuturesOrderWire(msgspec.Struct, frozen=True):
    symbol: str = _f("s")
    client_order_id: str = _f("c")
    side: str = _f("S")
    order_type: str = _f("o")
    quantity: str = _f("q")
    status: str = _f("X")
    order_id: int = _f("i")
    cum_qty: str = _f("z")
    execution_type: str | None = _f("x", None)  # absent only in REST answers
    time_in_force: str | None = _f("f", None)
    price: str | None = _f("p", None)
    average_price: str | None = _f("ap", None)
    stop_price: str | None = _f("sp", None)
    activation_price: str | None = _f("AP", None)
    last_qty: str | None = _f("l", None)
    last_price: str | None = _f("L", None)
    commission_asset: str | None = _f("N", None)
    commission: str | None = _f("n", None)
    trade_time: int | None = _f("T", None)
    trade_id: int = _f("t", 0)
    is_maker: bool = _f("m", False)
    reduce_only: bool = _f("R", False)
    original_type: str | None = _f("ot", None)
    realized_pnl: str | None = _f("rp", None)


class _FuturesOrderEvent(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    order: FuturesOrderWire = _f("o")
    transaction_time: int | None = _f("T", None)


class _FuturesBalance(msgspec.Struct, frozen=True):
    asset: str = _f("a")
    wallet_balance: str = _f("wb")
    cross_wallet: str | None = _f("cw", None)


class _FuturesPosition(msgspec.Struct, frozen=True):
    symbol: str = _f("s")
    amount: str = _f("pa")
    entry_price: str = _f("ep")
    unrealized_pnl: str = _f("up")
    margin_type: str | None = _f("mt", None)
    position_side: str | None = _f("ps", None)


class _FuturesAccountData(msgspec.Struct, frozen=True):
    reason: str = _f("m", "")
    balances: list[_FuturesBalance] = _f("B", [])
    positions: list[_FuturesPosition] = _f("P", [])


class _FuturesAccountEvent(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    data: _FuturesAccountData = _f("a")


class _TradeLite(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    symbol: str = _f("s")
    client_order_id: str = _f("c")
    side: str = _f("S")
    last_price: str = _f("L")
    last_qty: str = _f("l")
    trade_id: int = _f("t")
    order_id: int = _f("i")
    is_maker: bool = _f("m", False)
    transaction_time: int | None = _f("T", None)


class AlgoOrderWire(msgspec.Struct, frozen=True):
    client_algo_id: str = _f("caid")
    algo_id: int = _f("aid")
    symbol: str = _f("s")
    side: str = _f("S")
    order_type: str = _f("o")
    status: str = _f("X")
    quantity: str | None = _f("q", None)
    trigger_price: str | None = _f("tp", None)
    price: str | None = _f("p", None)
    reduce_only: bool = _f("R", False)
    close_position: bool = _f("cp", False)
    actual_order_id: int | str | None = _f("ai", None)
    executed_qty: str | None = _f("aq", None)
    average_price: str | None = _f("ap", None)
    position_side: str | None = _f("ps", None)
    time_in_force: str | None = _f("f", None)
    reason: str | None = _f("rm", None)


class _AlgoEvent(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    order: AlgoOrderWire = _f("o")


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_KIND = msgspec.json.Decoder(_Kind)
_SPOT_EXECUTION = msgspec.json.Decoder(SpotExecutionWire)
_SPOT_ACCOUNT = msgspec.json.Decoder(_SpotAccount)
_SPOT_BALANCE = msgspec.json.Decoder(_SpotBalanceDelta)
_STREAM_TERMINATED = msgspec.json.Decoder(_StreamTerminated)
_LISTEN_KEY_EXPIRED = msgspec.json.Decoder(_ListenKeyExpired)
_FUTURES_ORDER_EVENT = msgspec.json.Decoder(_FuturesOrderEvent)
_FUTURES_ACCOUNT_EVENT = msgspec.json.Decoder(_FuturesAccountEvent)
_TRADE_LITE = msgspec.json.Decoder(_TradeLite)
_ALGO_EVENT = msgspec.json.Decoder(_AlgoEvent)


def lookup(table: Mapping[K, T], value: K, what: str) -> T:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise MalformedEvent(f"unknown {what} {value!r}") from None


def decimal_of(raw: str | None, what: str) -> Decimal:
    """A finite Decimal from Binance's string, exactly; anything else is malformed."""
    if raw is None:
        raise MalformedEvent(f"{what} is missing")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise MalformedEvent(f"{what} {raw!r} is not a number") from None
    if not value.is_finite() or abs(value.adjusted()) > _MAX_EXPONENT:
        raise MalformedEvent(f"{what} {raw!r} is not a usable number")
    return value


def amount_of(raw: str | None, what: str) -> Decimal:
    """A quantity or price: never negative."""
    value = decimal_of(raw, what)
    if value < 0:
        raise MalformedEvent(f"{what} {raw!r} is negative")
    return value


def optional_decimal(raw: str | None, what: str) -> Decimal | None:
    return None if raw is None or raw == "" else decimal_of(raw, what)


def price_or_none(raw: str | None, what: str) -> Decimal | None:
    """Binance sends "0" (or nothing) where a price does not apply."""
    if raw is None or raw == "":
        return None
    value = amount_of(raw, what)
    return value if value > 0 else None


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


def integer_of(raw: int | str, what: str) -> int:
    """An integer Binance may send as a string (listenKeyExpired `E`, algo `ai`)."""
    if isinstance(raw, str):
        if not (raw.isascii() and raw.isdigit()):
            raise MalformedEvent(f"{what} {raw!r} is not an integer")
        return int(raw)
    return raw


def decode(decoder: msgspec.json.Decoder[T], raw: bytes | str, what: str) -> T:
    try:
        return decoder.decode(raw)
    # Invalid UTF-8 and absurd nesting surface as these two rather than DecodeError.
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedEvent(f"{what}: {exc}") from None


def _unwrap(raw: bytes | str) -> tuple[str, bytes | str]:
    """The event kind and the event's own bytes, whichever envelope it came in."""
    outer = decode(_ENVELOPE, raw, "user-data message")
    if outer.kind is not None:
        return outer.kind, raw
    for inner in (outer.event, outer.data):
        if len(inner):
            kind = decode(_KIND, inner, "user-data event").kind
            if kind is None:
                raise MalformedEvent("user-data event has no event type 'e'")
            return kind, bytes(inner)
    raise MalformedEvent("not a user-data event: no 'e', 'event' or 'data'")


def _dispatch(
    raw: bytes | str, handlers: Mapping[str, Callable[[bytes | str], tuple[UserEvent, ...]]]
) -> tuple[UserEvent, ...]:
    kind, body = _unwrap(raw)
    handler = handlers.get(kind)
    if handler is None:
        return (UnknownUserEvent(kind),)
    return handler(body)


def decode_spot_user_event(raw: bytes | str) -> tuple[UserEvent, ...]:
    """One Spot user-data frame → domain messages. Raises only ``MalformedEvent``."""
    return _dispatch(raw, _SPOT_HANDLERS)


def decode_futures_user_event(raw: bytes | str) -> tuple[UserEvent, ...]:
    """One USDⓈ-M user-data frame → domain messages. Raises only ``MalformedEvent``."""
    return _dispatch(raw, _FUTURES_HANDLERS)


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


def _spot_execution(raw: bytes | str) -> tuple[UserEvent, ...]:
    report = decode(_SPOT_EXECUTION, raw, "executionReport")
    if report.execution_type is None:
        raise MalformedEvent("executionReport without an execution type x")
    return (spot_order_update(report),)


def _spot_account(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(_SPOT_ACCOUNT, raw, "outboundAccountPosition")
    balances = tuple(
        Balance(b.asset, amount_of(b.free, "free f"), amount_of(b.locked, "locked l"))
        for b in event.balances
    )
    return (AccountUpdated(event.event_time, "outboundAccountPosition", balances),)


def _spot_balance(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(_SPOT_BALANCE, raw, "balanceUpdate")
    delta = decimal_of(event.delta, "balance delta d")
    return (BalanceChanged(event.asset, delta, event.event_time, event.clear_time),)


def _stream_terminated(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(_STREAM_TERMINATED, raw, "eventStreamTerminated")
    return (StreamTerminated(event.event_time),)


def _listen_key_expired(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(_LISTEN_KEY_EXPIRED, raw, "listenKeyExpired")
    return (ListenKeyExpired(integer_of(event.event_time, "event time E"), event.listen_key[-4:]),)


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


def _futures_order(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(_FUTURES_ORDER_EVENT, raw, "ORDER_TRADE_UPDATE")
    if event.order.execution_type is None:
        raise MalformedEvent("ORDER_TRADE_UPDATE without an execution type x")
    return (futures_order_update(event.order, event.event_time, event.transaction_time),)


def _futures_account(raw: bytes | str) -> tuple[UserEvent, ...]:
    """Balances: `wb` (wallet balance) is `free`, `locked` is 0, `cw` is `cross_wallet`."""
    event = decode(_FUTURES_ACCOUNT_EVENT, raw, "ACCOUNT_UPDATE")
    balances = tuple(
        Balance(
            b.asset,
            decimal_of(b.wallet_balance, "wallet balance wb"),
            Decimal(0),
            cross_wallet=optional_decimal(b.cross_wallet, "cross wallet cw"),
        )
        for b in event.data.balances
    )
    positions = tuple(
        PositionSnapshot(
            p.symbol,
            decimal_of(p.amount, "position amount pa"),
            amount_of(p.entry_price, "entry price ep"),
            decimal_of(p.unrealized_pnl, "unrealized pnl up"),
            position_side=position_side(p.position_side),
            margin_type=margin_type(p.margin_type),
        )
        for p in event.data.positions
    )
    return (AccountUpdated(event.event_time, event.data.reason, balances, positions),)


def _trade_lite(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(_TRADE_LITE, raw, "TRADE_LITE")
    quick = QuickFill(
        client_order_id=event.client_order_id,
        symbol=event.symbol,
        side=lookup(SIDES, event.side, "side"),
        price=amount_of(event.last_price, "last price L"),
        quantity=amount_of(event.last_qty, "last quantity l"),
        trade_id=event.trade_id,
        exchange_order_id=event.order_id,
        is_maker=event.is_maker,
        ts_ms=event.transaction_time or event.event_time,
    )
    return (quick,)


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


def _algo_update(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(_ALGO_EVENT, raw, "ALGO_UPDATE")
    return (algo_order(event.order, event.event_time),)


_SPOT_HANDLERS: dict[str, Callable[[bytes | str], tuple[UserEvent, ...]]] = {
    "executionReport": _spot_execution,
    "outboundAccountPosition": _spot_account,
    "balanceUpdate": _spot_balance,
    "eventStreamTerminated": _stream_terminated,
    "listenKeyExpired": _listen_key_expired,
}
_FUTURES_HANDLERS: dict[str, Callable[[bytes | str], tuple[UserEvent, ...]]] = {
    "ORDER_TRADE_UPDATE": _futures_order,
    "ACCOUNT_UPDATE": _futures_account,
    "TRADE_LITE": _trade_lite,
    "ALGO_UPDATE": _algo_update,
    "listenKeyExpired": _listen_key_expired,
}
