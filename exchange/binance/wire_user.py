"""Binance user-data wire shapes (msgspec) and the value readers every user-data parser shares.

The structs describe the stream events (``executionReport``, ``ORDER_TRADE_UPDATE``,
``ACCOUNT_UPDATE``, ``ALGO_UPDATE`` ...); ``parse_account`` translates REST order answers to
the same keys and reads them with the same three order structs. Attribute names say what a
field is; ``name=`` is Binance's key. Unknown keys are ignored, so new fields Binance adds
never break decoding.

Amounts stay ``str`` on the wire and become ``Decimal`` through ``decimal_of`` and its
siblings, straight from Binance's text. Every reader here raises only ``MalformedEvent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec

__all__ = [
    "ALGO_EVENT",
    "ENVELOPE",
    "EVENT_KIND",
    "FUTURES_ACCOUNT_EVENT",
    "FUTURES_ORDER_EVENT",
    "LISTEN_KEY_EXPIRED",
    "SPOT_ACCOUNT",
    "SPOT_BALANCE_DELTA",
    "SPOT_EXECUTION",
    "STREAM_TERMINATED",
    "TRADE_LITE",
    "AlgoEventWire",
    "AlgoOrderWire",
    "EnvelopeWire",
    "EventKindWire",
    "FuturesAccountDataWire",
    "FuturesAccountEventWire",
    "FuturesBalanceWire",
    "FuturesOrderEventWire",
    "FuturesOrderWire",
    "FuturesPositionWire",
    "ListenKeyExpiredWire",
    "MalformedEvent",
    "SpotAccountWire",
    "SpotBalanceDeltaWire",
    "SpotBalanceWire",
    "SpotExecutionWire",
    "StreamTerminatedWire",
    "TradeLiteWire",
    "amount_of",
    "decimal_of",
    "decode",
    "integer_of",
    "lookup",
    "optional_decimal",
    "price_or_none",
]

T = TypeVar("T")
K = TypeVar("K")

_MAX_EXPONENT = 40  # far beyond any real amount; keeps Decimal arithmetic from overflowing


class MalformedEvent(ValueError):
    """The payload is not something we can read; the message says which field and why."""


def _f(name: str, default: object = msgspec.NODEFAULT) -> Any:
    return msgspec.field(default=default, name=name)


class EnvelopeWire(msgspec.Struct, frozen=True):
    kind: str | None = _f("e", None)
    event: msgspec.Raw = msgspec.Raw()  # WS-API: {"subscriptionId": N, "event": {...}}
    data: msgspec.Raw = msgspec.Raw()  # combined stream: {"stream": ..., "data": {...}}


class EventKindWire(msgspec.Struct, frozen=True):
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


class SpotBalanceWire(msgspec.Struct, frozen=True):
    asset: str = _f("a")
    free: str = _f("f")
    locked: str = _f("l")


class SpotAccountWire(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    balances: list[SpotBalanceWire] = _f("B")


class SpotBalanceDeltaWire(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    asset: str = _f("a")
    delta: str = _f("d")
    clear_time: int = _f("T")


class StreamTerminatedWire(msgspec.Struct, frozen=True):
    event_time: int = _f("E")


class ListenKeyExpiredWire(msgspec.Struct, frozen=True):
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


class FuturesOrderEventWire(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    order: FuturesOrderWire = _f("o")
    transaction_time: int | None = _f("T", None)


class FuturesBalanceWire(msgspec.Struct, frozen=True):
    asset: str = _f("a")
    wallet_balance: str = _f("wb")
    cross_wallet: str | None = _f("cw", None)


class FuturesPositionWire(msgspec.Struct, frozen=True):
    symbol: str = _f("s")
    amount: str = _f("pa")
    entry_price: str = _f("ep")
    unrealized_pnl: str = _f("up")
    margin_type: str | None = _f("mt", None)
    position_side: str | None = _f("ps", None)


class FuturesAccountDataWire(msgspec.Struct, frozen=True):
    reason: str = _f("m", "")
    balances: list[FuturesBalanceWire] = _f("B", [])
    positions: list[FuturesPositionWire] = _f("P", [])


class FuturesAccountEventWire(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    data: FuturesAccountDataWire = _f("a")


class TradeLiteWire(msgspec.Struct, frozen=True):
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


class AlgoEventWire(msgspec.Struct, frozen=True):
    event_time: int = _f("E")
    order: AlgoOrderWire = _f("o")


ENVELOPE = msgspec.json.Decoder(EnvelopeWire)
EVENT_KIND = msgspec.json.Decoder(EventKindWire)
SPOT_EXECUTION = msgspec.json.Decoder(SpotExecutionWire)
SPOT_ACCOUNT = msgspec.json.Decoder(SpotAccountWire)
SPOT_BALANCE_DELTA = msgspec.json.Decoder(SpotBalanceDeltaWire)
STREAM_TERMINATED = msgspec.json.Decoder(StreamTerminatedWire)
LISTEN_KEY_EXPIRED = msgspec.json.Decoder(ListenKeyExpiredWire)
FUTURES_ORDER_EVENT = msgspec.json.Decoder(FuturesOrderEventWire)
FUTURES_ACCOUNT_EVENT = msgspec.json.Decoder(FuturesAccountEventWire)
TRADE_LITE = msgspec.json.Decoder(TradeLiteWire)
ALGO_EVENT = msgspec.json.Decoder(AlgoEventWire)


def decode(decoder: msgspec.json.Decoder[T], raw: bytes | str, what: str) -> T:
    try:
        return decoder.decode(raw)
    # Invalid UTF-8 and absurd nesting surface as these two rather than DecodeError.
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedEvent(f"{what}: {exc}") from None


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


def integer_of(raw: int | str, what: str) -> int:
    """An integer Binance may send as a string (listenKeyExpired `E`, algo `ai`)."""
    if isinstance(raw, str):
        if not (raw.isascii() and raw.isdigit()):
            raise MalformedEvent(f"{what} {raw!r} is not an integer")
        return int(raw)
    return raw
