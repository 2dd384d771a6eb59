"""Market data messages, as carried on `market.*` channels. Times are epoch milliseconds (UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle. Intrabar updates share `open_time_ms`; the last one has `closed=True`."""

    symbol: str
    interval: str
    open_time_ms: int
    close_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    closed: bool


@dataclass(frozen=True, slots=True)
class BookTicker:
    """Best bid and ask."""

    symbol: str
    bid_price: Decimal
    bid_quantity: Decimal
    ask_price: Decimal
    ask_quantity: Decimal
    ts_ms: int
    update_id: int = 0


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """Futures mark price with the funding facts read from the exchange, never assumed."""

    symbol: str
    mark_price: Decimal
    index_price: Decimal
    funding_rate: Decimal
    next_funding_time_ms: int
    ts_ms: int
