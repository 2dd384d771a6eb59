"""Binance user-data events → domain messages, for Spot and USDⓈ-M Futures.

Spot events arrive in the WebSocket-API envelope ``{"subscriptionId": N, "event": {...}}``;
both decoders also take a bare event and the combined-stream wrapper
``{"stream": ..., "data": {...}}``. Each returns a tuple because one event may yield several
messages. Anything that cannot be read raises ``MalformedEvent`` (never another error);
kinds we do not consume (listStatus, MARGIN_CALL, ACCOUNT_CONFIG_UPDATE ...) come back as
``UnknownUserEvent`` so the caller can count them.

Times: state messages carry the event time ``E``; fills carry the trade time ``T``.
This module dispatches events; the pieces it shares with ``parse_account`` (REST) live in
``wire_user`` (wire shapes, value readers), ``order_mapping`` (Binance's vocabulary) and
``order_updates`` (orders → domain), and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.domain.account import AccountUpdated, Balance, BalanceChanged, PositionSnapshot
from app.domain.orders import AlgoOrderUpdated, OrderUpdated, QuickFill
from exchange.binance import wire_user as wire
from exchange.binance.order_mapping import (
    ALGO_STATUSES,
    EXECUTION_TYPES,
    FUTURES_ORDER_TYPES,
    ORDER_STATUSES,
    SIDES,
    SPOT_ORDER_TYPES,
    margin_type,
    position_side,
)
from exchange.binance.order_updates import algo_order, futures_order_update, spot_order_update
from exchange.binance.wire_user import (
    AlgoOrderWire,
    FuturesOrderWire,
    MalformedEvent,
    SpotExecutionWire,
    amount_of,
    decimal_of,
    decode,
    integer_of,
    lookup,
    optional_decimal,
    price_or_none,
)

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


def _unwrap(raw: bytes | str) -> tuple[str, bytes | str]:
    """The event kind and the event's own bytes, whichever envelope it came in."""
    outer = decode(wire.ENVELOPE, raw, "user-data message")
    if outer.kind is not None:
        return outer.kind, raw
    for inner in (outer.event, outer.data):
        if len(inner):
            kind = decode(wire.EVENT_KIND, inner, "user-data event").kind
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


def _spot_execution(raw: bytes | str) -> tuple[UserEvent, ...]:
    report = decode(wire.SPOT_EXECUTION, raw, "executionReport")
    if report.execution_type is None:
        raise MalformedEvent("executionReport without an execution type x")
    return (spot_order_update(report),)


def _spot_account(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(wire.SPOT_ACCOUNT, raw, "outboundAccountPosition")
    balances = tuple(
        Balance(b.asset, amount_of(b.free, "free f"), amount_of(b.locked, "locked l"))
        for b in event.balances
    )
    return (AccountUpdated(event.event_time, "outboundAccountPosition", balances),)


def _spot_balance(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(wire.SPOT_BALANCE_DELTA, raw, "balanceUpdate")
    delta = decimal_of(event.delta, "balance delta d")
    return (BalanceChanged(event.asset, delta, event.event_time, event.clear_time),)


def _stream_terminated(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(wire.STREAM_TERMINATED, raw, "eventStreamTerminated")
    return (StreamTerminated(event.event_time),)


def _listen_key_expired(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(wire.LISTEN_KEY_EXPIRED, raw, "listenKeyExpired")
    return (ListenKeyExpired(integer_of(event.event_time, "event time E"), event.listen_key[-4:]),)


def _futures_order(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(wire.FUTURES_ORDER_EVENT, raw, "ORDER_TRADE_UPDATE")
    if event.order.execution_type is None:
        raise MalformedEvent("ORDER_TRADE_UPDATE without an execution type x")
    return (futures_order_update(event.order, event.event_time, event.transaction_time),)


def _futures_account(raw: bytes | str) -> tuple[UserEvent, ...]:
    """Balances: `wb` (wallet balance) is `free`, `locked` is 0, `cw` is `cross_wallet`."""
    event = decode(wire.FUTURES_ACCOUNT_EVENT, raw, "ACCOUNT_UPDATE")
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
    event = decode(wire.TRADE_LITE, raw, "TRADE_LITE")
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


def _algo_update(raw: bytes | str) -> tuple[UserEvent, ...]:
    event = decode(wire.ALGO_EVENT, raw, "ALGO_UPDATE")
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
