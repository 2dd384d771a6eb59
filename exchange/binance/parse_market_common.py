"""What the market-data parsers share: ``MalformedFrame``, how it is worded, the errors a bad
payload can raise while decoding, and fast constructors for the market domain types.

``parse_market`` (stream frames) and ``parse_market_rest`` (REST answers) both build on this;
``parse_market`` re-exports ``MalformedFrame``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance.wire_market import frozen_builder

__all__ = [
    "DECODE_ERRORS",
    "EXCERPT_CHARS",
    "ZERO",
    "MalformedFrame",
    "malformed",
    "new_book_ticker",
    "new_kline",
    "new_mark_price",
]

EXCERPT_CHARS = 120
ZERO = Decimal(0)

# What a malformed payload can raise inside msgspec, Decimal and our own checks.
DECODE_ERRORS = (msgspec.MsgspecError, ArithmeticError, ValueError, TypeError, RecursionError)

if TYPE_CHECKING:
    new_kline = Kline
    new_book_ticker = BookTicker
    new_mark_price = MarkPrice
else:
    new_kline = frozen_builder(Kline)
    new_book_ticker = frozen_builder(BookTicker)
    new_mark_price = frozen_builder(MarkPrice)


class MalformedFrame(ValueError):
    """A frame or REST body that is not a valid instance of a kind we consume."""


def _excerpt(payload: object) -> str:
    if isinstance(payload, bytes | bytearray | memoryview | msgspec.Raw):
        text = bytes(memoryview(payload)[: EXCERPT_CHARS + 1]).decode("utf-8", "replace")
    else:
        text = str(payload)[: EXCERPT_CHARS + 1]
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def malformed(where: str, problem: object, payload: object) -> MalformedFrame:
    """The error for ``payload``: where, what, and the payload's first characters."""
    return MalformedFrame(f"{where}: {str(problem)[:200]} in {_excerpt(payload)}")
