"""Binance market REST answers → domain types: klines, premium index, funding info, server
time and book tickers, for Spot and USDⓈ-M.

Each parser takes the raw body and returns domain values (``Kline``, ``MarkPrice``,
``BookTicker``) or ``FundingInfo``, or raises ``MalformedFrame``; no other exception escapes.
Decimals are built from Binance's JSON strings, never through float, and NaN or infinity is
refused. Rules taken from Binance and kept here rather than in callers:

- REST klines: ``closed`` is ``close_time_ms < now_ms``; the last row is usually the open bar.
- A funding rate sent as "" (symbols without funding, e.g. delivery contracts) reads as 0.

``parse_market`` re-exports everything public here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance import wire_market as wire
from exchange.binance.parse_market_common import (
    DECODE_ERRORS,
    ZERO,
    malformed,
    new_book_ticker,
    new_kline,
    new_mark_price,
)
from exchange.binance.wire_market import strict_decimal

__all__ = [
    "FundingInfo",
    "parse_funding_info",
    "parse_premium_index",
    "parse_rest_book_ticker",
    "parse_rest_klines",
    "parse_server_time",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class FundingInfo:
    """A symbol whose funding differs from the defaults. Symbols absent from
    /fapi/v1/fundingInfo use Binance's defaults (8 h interval); the caller applies them."""

    symbol: str
    interval_hours: int
    adjusted_cap: Decimal
    adjusted_floor: Decimal


def _rest(endpoint: str, payload: bytes | str, convert: Callable[[], R]) -> R:
    try:
        return convert()
    except DECODE_ERRORS as exc:
        raise malformed(endpoint, exc, payload) from exc


def parse_rest_klines(
    payload: bytes | str, *, symbol: str, interval: str, now_ms: int
) -> list[Kline]:
    """GET /api/v3/klines or /fapi/v1/klines; a row is closed once its close time has passed."""

    def convert() -> list[Kline]:
        d = strict_decimal  # history does not repeat: keep it out of the stream cache
        return [
            new_kline(
                symbol,
                interval,
                row.open_time_ms,
                row.close_time_ms,
                d(row.open),
                d(row.high),
                d(row.low),
                d(row.close),
                d(row.volume),
                d(row.quote_volume),
                row.trades,
                row.close_time_ms < now_ms,
            )
            for row in wire.REST_KLINES.decode(payload)
        ]

    return _rest(f"klines {symbol} {interval}", payload, convert)


def parse_premium_index(payload: bytes | str, *, now_ms: int | None = None) -> list[MarkPrice]:
    """GET /fapi/v1/premiumIndex, one object (``symbol`` given) or a list. ``ts_ms`` is the
    response's ``time``, else ``now_ms``, else 0; a "" funding rate reads as 0."""

    def convert() -> list[MarkPrice]:
        decoded = wire.PREMIUM_INDEX.decode(payload)
        rows = decoded if isinstance(decoded, list) else [decoded]
        return [
            new_mark_price(
                row.symbol,
                strict_decimal(row.mark_price),
                strict_decimal(row.index_price),
                strict_decimal(row.funding_rate) if row.funding_rate else ZERO,
                row.next_funding_time_ms,
                row.time_ms or now_ms or 0,
            )
            for row in rows
        ]

    return _rest("premiumIndex", payload, convert)


def parse_funding_info(payload: bytes | str) -> dict[str, FundingInfo]:
    """GET /fapi/v1/fundingInfo, by symbol. Binance lists only symbols whose cap, floor or
    interval was adjusted; for the others the caller applies the defaults (8 h interval)."""

    def convert() -> dict[str, FundingInfo]:
        return {
            row.symbol: FundingInfo(
                row.symbol,
                row.interval_hours,
                strict_decimal(row.adjusted_cap),
                strict_decimal(row.adjusted_floor),
            )
            for row in wire.FUNDING_INFO.decode(payload)
        }

    return _rest("fundingInfo", payload, convert)


def parse_server_time(payload: bytes | str) -> int:
    """GET /api/v3/time or /fapi/v1/time: the server's clock in epoch milliseconds."""
    return _rest("time", payload, lambda: wire.SERVER_TIME.decode(payload).server_time_ms)


def parse_rest_book_ticker(payload: bytes | str) -> list[BookTicker]:
    """GET /api/v3/ticker/bookTicker or /fapi/v1/ticker/bookTicker, object or list. Spot sends
    no time and no update id: both read as 0."""

    def convert() -> list[BookTicker]:
        decoded = wire.REST_BOOK_TICKER.decode(payload)
        rows = decoded if isinstance(decoded, list) else [decoded]
        return [
            new_book_ticker(
                row.symbol,
                strict_decimal(row.bid_price),
                strict_decimal(row.bid_quantity),
                strict_decimal(row.ask_price),
                strict_decimal(row.ask_quantity),
                row.time_ms,
                row.update_id,
            )
            for row in rows
        ]

    return _rest("bookTicker", payload, convert)
