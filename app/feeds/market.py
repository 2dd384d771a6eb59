"""Market feed: decoded stream frames → typed messages on the ``market.*`` channels.

Produces ``market.kline.{symbol}``, ``market.book.{symbol}`` and ``market.mark.{symbol}``;
consumes nothing from the bus. The stream client (``exchange.binance.streams``) owns the
connections, reconnects and kline gap fill and hands over each frame already parsed; this
module only routes by type and keeps per-kind counters for the heartbeat. Frames of kinds the
daemon does not consume were already counted by the stream client and never arrive here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from app.bus import MARKET_BOOK, MARKET_KLINE, MARKET_MARK, Bus, Sender
from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance.parse_market import MarketFrame

__all__ = ["MarketPublisher"]


class MarketPublisher:
    """Routes market messages to their per-symbol channel; one sender per channel, cached."""

    def __init__(self, *, bus: Bus) -> None:
        self._bus = bus
        self._klines: dict[str, Sender[Kline]] = {}
        self._books: dict[str, Sender[BookTicker]] = {}
        self._marks: dict[str, Sender[MarkPrice]] = {}
        self.counts: Counter[str] = Counter()
        self.published = 0

    async def on_frame(self, frame: MarketFrame) -> None:
        await self.publish(frame.message)

    async def publish(self, message: object) -> None:
        if isinstance(message, Kline):
            sender = self._klines.get(message.symbol)
            if sender is None:
                sender = self._klines[message.symbol] = self._bus.sender(
                    MARKET_KLINE.channel(message.symbol)
                )
            await sender.send(message)
            self.counts["kline_closed" if message.closed else "kline_update"] += 1
        elif isinstance(message, BookTicker):
            book = self._books.get(message.symbol)
            if book is None:
                book = self._books[message.symbol] = self._bus.sender(
                    MARKET_BOOK.channel(message.symbol)
                )
            await book.send(message)
            self.counts["book_ticker"] += 1
        elif isinstance(message, MarkPrice):
            mark = self._marks.get(message.symbol)
            if mark is None:
                mark = self._marks[message.symbol] = self._bus.sender(
                    MARKET_MARK.channel(message.symbol)
                )
            await mark.send(message)
            self.counts["mark_price"] += 1
        else:
            self.counts["not_published"] += 1
            return
        self.published += 1

    def snapshot(self) -> dict[str, Any]:
        return {"published": self.published, **dict(self.counts)}
