"""Binance market-data WebSocket stream frames → domain types.

Every function here either returns domain values (``Kline``, ``BookTicker``, ``MarkPrice``) or
small records defined below, or raises ``MalformedFrame``; no other exception escapes. Decimals
are built from Binance's JSON strings, never through float, and NaN or infinity is refused.
The market REST parsers live in ``parse_market_rest`` and are re-exported here, so this module
remains the one import for market data.

Stream frames come combined (``{"stream": "btcusdt@kline_1m", "data": {...}}``) or raw (the
event alone). ``MarketFrame.stream`` is the combined stream name as sent; for a raw frame it is
derived from the event: ``<symbol>@kline_<interval>``, ``<symbol>@bookTicker``, and
``<symbol>@markPrice`` (a raw frame does not say which update speed was subscribed, so the
``@1s`` suffix is never added); "" for control replies and for raw events we do not consume.

Rules taken from Binance and kept here rather than in callers:

- Spot bookTicker frames carry no ``e``/``E``/``T``; ``BookTicker.ts_ms`` is ``T``, else ``E``,
  else 0. An object with ``u``, ``s``, ``b`` and ``a`` but no ``e`` is a spot bookTicker.
- A funding rate sent as "" (symbols without funding, e.g. delivery contracts) reads as 0.
- ``serverShutdown`` (spot streams and WS API) means: reconnect now. It is honoured even
  without its ``E`` timestamp (``ts_ms`` 0), because dropping it would be worse.

Combined kline, bookTicker and markPrice frames take a fast path picked from the first bytes
(the stream name); any failure there re-runs the general path, which alone reports errors, so
both paths give the same answer for every input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance import wire_market as wire
from exchange.binance.parse_market_common import (
    DECODE_ERRORS,
    ZERO,
    MalformedFrame,
    malformed,
    new_book_ticker,
    new_kline,
    new_mark_price,
)
from exchange.binance.parse_market_rest import (
    FundingInfo,
    parse_funding_info,
    parse_premium_index,
    parse_rest_book_ticker,
    parse_rest_klines,
    parse_server_time,
)
from exchange.binance.wire_market import (
    DECIMALS,
    KLINE_INTERVALS,
    UNSET,
    frozen_builder,
    stream_names,
    strict_decimal,
)

__all__ = [
    "KLINE_INTERVALS",
    "ControlReply",
    "FundingInfo",
    "MalformedFrame",
    "MarketFrame",
    "MarketMessage",
    "ServerShutdown",
    "UnknownEvent",
    "decode_market_frame",
    "parse_funding_info",
    "parse_premium_index",
    "parse_rest_book_ticker",
    "parse_rest_klines",
    "parse_server_time",
    "stream_names",
]


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The server is about to restart: open a new connection now."""

    ts_ms: int


@dataclass(frozen=True, slots=True)
class ControlReply:
    """Reply to SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS...; ``result`` is the decoded JSON."""

    request_id: int | str | None
    result: object
    error_code: int | None
    error_msg: str | None


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A valid event of a kind we do not consume: ``e``, or for an e-less object the stream's
    channel (``depth5@100ms``) or ""."""

    kind: str


MarketMessage = Kline | BookTicker | MarkPrice | ServerShutdown | ControlReply | UnknownEvent


@dataclass(frozen=True, slots=True)
class MarketFrame:
    """One decoded frame and the stream it belongs to (see the module docstring)."""

    stream: str
    message: MarketMessage


if TYPE_CHECKING:
    _new_frame = MarketFrame
else:
    _new_frame = frozen_builder(MarketFrame)


def _kline_frame(event: wire.KlineEvent, stream: str | None) -> MarketFrame:
    k = event.kline
    d = DECIMALS  # open/high/low/close repeat between intrabar updates, volumes never do
    volume, quote_volume = Decimal(k.volume), Decimal(k.quote_volume)
    if not (volume.is_finite() and quote_volume.is_finite()):
        raise ValueError("volume is not a finite number")
    kline = new_kline(
        k.symbol,
        k.interval,
        k.open_time_ms,
        k.close_time_ms,
        d[k.open],
        d[k.high],
        d[k.low],
        d[k.close],
        volume,
        quote_volume,
        k.trades,
        k.closed,
    )
    if stream is None:
        stream = f"{k.symbol.lower()}@kline_{k.interval}"
    return _new_frame(stream, kline)


def _book_ticker_frame(event: wire.BookTickerEvent, stream: str | None) -> MarketFrame:
    d = DECIMALS  # best prices sit on a few ticks; quantities are too varied to be worth it
    bid_quantity, ask_quantity = Decimal(event.bid_quantity), Decimal(event.ask_quantity)
    if not (bid_quantity.is_finite() and ask_quantity.is_finite()):
        raise ValueError("quantity is not a finite number")
    ticker = new_book_ticker(
        event.symbol,
        d[event.bid_price],
        bid_quantity,
        d[event.ask_price],
        ask_quantity,
        event.transaction_time_ms or event.event_time_ms,
        event.update_id,
    )
    if stream is None:
        stream = f"{event.symbol.lower()}@bookTicker"
    return _new_frame(stream, ticker)


def _mark_price_frame(event: wire.MarkPriceEvent, stream: str | None) -> MarketFrame:
    rate = event.funding_rate  # repeats for hours, unlike the prices
    mark = new_mark_price(
        event.symbol,
        strict_decimal(event.mark_price),
        strict_decimal(event.index_price),
        DECIMALS[rate] if rate else ZERO,
        event.next_funding_time_ms,
        event.event_time_ms,
    )
    if stream is None:
        stream = f"{event.symbol.lower()}@markPrice"
    return _new_frame(stream, mark)


def _fast_kline(raw: bytes | str) -> MarketFrame | None:
    frame = wire.KLINE_FRAME.decode(raw)
    if frame.data.event_type != "kline":
        return None
    return _kline_frame(frame.data, frame.stream)


def _fast_book_ticker(raw: bytes | str) -> MarketFrame | None:
    frame = wire.BOOK_TICKER_FRAME.decode(raw)
    if frame.data.event_type != "bookTicker":
        return None
    return _book_ticker_frame(frame.data, frame.stream)


def _fast_mark_price(raw: bytes | str) -> MarketFrame | None:
    frame = wire.MARK_PRICE_FRAME.decode(raw)
    if frame.data.event_type != "markPriceUpdate":
        return None
    return _mark_price_frame(frame.data, frame.stream)


def decode_market_frame(raw: bytes | str) -> MarketFrame:
    """Decode one text frame of a market stream connection (combined or raw)."""
    # The stream name picks a fast path. `in` on a short slice is the cheapest test CPython
    # offers here (str.find with bounds costs several times more), and it is only a hint: a
    # fast path declines anything that is not its own kind, and the general path decides.
    fast: Callable[[bytes | str], MarketFrame | None] | None = None
    if type(raw) is str:
        head = raw[11:64]  # after '{"stream":"'
        if "@kline_" in head:
            fast = _fast_kline
        elif "@bookTicker" in head:
            fast = _fast_book_ticker
        elif "@markPrice" in head:
            fast = _fast_mark_price
    elif type(raw) is bytes:
        head_bytes = raw[11:64]
        if b"@kline_" in head_bytes:
            fast = _fast_kline
        elif b"@bookTicker" in head_bytes:
            fast = _fast_book_ticker
        elif b"@markPrice" in head_bytes:
            fast = _fast_mark_price
    if fast is not None:
        try:
            frame = fast(raw)
        except DECODE_ERRORS:
            frame = None  # the general path below finds and reports the problem
        if frame is not None:
            return frame
    try:
        return _decode_general(raw)
    except MalformedFrame:
        raise
    except DECODE_ERRORS as exc:
        raise malformed("frame", exc, raw) from exc


def _decode_general(raw: bytes | str) -> MarketFrame:
    """Any frame: probe the keys that tell kinds apart, then decode with the kind's schema."""
    outer = wire.PROBE.decode(raw)
    if outer.stream is not UNSET:
        stream = outer.stream
        if not isinstance(stream, str) or not outer.data:
            raise malformed("frame", "combined frame needs a string stream and data", raw)
        try:
            inner = wire.PROBE.decode(outer.data)
        except DECODE_ERRORS as exc:
            raise malformed(stream, f"data: {exc}", raw) from exc
        return _decode_event(outer.data, inner, stream)
    if outer.event and outer.e is UNSET:  # WS-API envelope: {"subscriptionId": .., "event": {..}}
        return _decode_event(outer.event, wire.PROBE.decode(outer.event), None)
    if outer.e is UNSET and not (
        outer.id is UNSET and outer.result is UNSET and outer.error is UNSET and outer.code is UNSET
    ):
        return _new_frame("", _control_reply(outer, raw))
    return _decode_event(raw, outer, None)


def _decode_event(payload: Any, probe: wire.Probe, stream: str | None) -> MarketFrame:
    kind = probe.e
    if kind is UNSET:
        if probe.u and probe.b and probe.a and probe.s is not UNSET:
            kind = "bookTicker"
        else:
            channel = stream.partition("@")[2] if stream else ""
            return _new_frame(stream or "", UnknownEvent(channel))
    if not isinstance(kind, str):
        raise malformed(stream or "frame", "event type `e` is not a string", payload)
    symbol = probe.s if isinstance(probe.s, str) else "?"
    where = f"{stream or symbol}: {kind}"
    try:
        if kind == "kline":
            return _kline_frame(wire.KLINE_EVENT.decode(payload), stream)
        if kind == "bookTicker":
            return _book_ticker_frame(wire.BOOK_TICKER_EVENT.decode(payload), stream)
        if kind == "markPriceUpdate":
            return _mark_price_frame(wire.MARK_PRICE_EVENT.decode(payload), stream)
        if kind == "serverShutdown":
            shutdown = wire.SERVER_SHUTDOWN_EVENT.decode(payload)
            return _new_frame(stream or "", ServerShutdown(shutdown.event_time_ms))
    except DECODE_ERRORS as exc:
        raise malformed(where, exc, payload) from exc
    return _new_frame(stream or "", UnknownEvent(kind))


def _control_reply(probe: wire.Probe, raw: bytes | str) -> ControlReply:
    request_id = None if probe.id is UNSET else probe.id
    if request_id is not None and (
        isinstance(request_id, bool) or not isinstance(request_id, int | str)
    ):
        raise malformed("control reply", "id is neither an integer nor a string", raw)
    error = probe.error
    if error is UNSET or error is None:
        code, message = probe.code, probe.msg
    elif isinstance(error, dict):
        code, message = error.get("code", UNSET), error.get("msg", UNSET)
    else:
        raise malformed("control reply", "error is not an object", raw)
    code = None if code is UNSET or code is None else code
    message = None if message is UNSET or message is None else message
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise malformed("control reply", "error code is not an integer", raw)
    if message is not None and not isinstance(message, str):
        raise malformed("control reply", "error msg is not a string", raw)
    result = None if probe.result is UNSET else probe.result
    return ControlReply(request_id, result, code, message)
