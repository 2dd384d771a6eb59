"""How simulated orders meet the simulated market: value types and pure fill arithmetic.

The simulator has no order book of other participants, only a stream of top-of-book quotes
with the volume the market traded between them. These functions decide, from one ``Quote``,
how much of an order fills and at which prices; the spot and futures engines share them so
both markets fill alike. Everything here is pure (no state, no clock), so it is easy to test
and deterministic by construction.

Model:

* A taker (MARKET, or a LIMIT that crosses when placed) first takes the top-of-book quantity
  at the best price, then further chunks of the same size each ``slippage_bps`` worse, never
  beyond its limit price. Prices are rounded to the tick away from the taker (a buyer pays
  the tick above, a seller gets the tick below).
* A resting (maker) order fills entirely at its own limit price once the market trades
  strictly through it; when the market only touches the price it gets at most
  ``participation`` of the volume traded since the previous quote (the rest of the queue
  was ahead of it).
* The "partial fills" fault (``partial_fraction``) caps every single fill (each returned
  ``(price, qty)`` of a taker, each resting fill) at that fraction of the order's quantity,
  so an order fills over several trades.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

__all__ = [
    "Fees",
    "FillModel",
    "MarkTick",
    "Quote",
    "crosses",
    "resting_fill_quantity",
    "taker_fills",
]

_BPS: Final = Decimal(10_000)
# A market order larger than this many top-of-book chunks takes the rest in the last chunk:
# keeps the work bounded when the book shows a tiny quantity.
_MAX_CHUNKS: Final = 100


@dataclass(frozen=True, slots=True)
class Quote:
    """One top-of-book + last-trade update of one symbol."""

    symbol: str
    time_ms: int
    bid: Decimal
    ask: Decimal
    bid_qty: Decimal
    ask_qty: Decimal
    last: Decimal
    volume: Decimal  # base volume the market traded since this symbol's previous Quote (>= 0)


@dataclass(frozen=True, slots=True)
class MarkTick:
    """A futures mark price update."""

    symbol: str
    time_ms: int
    mark_price: Decimal
    index_price: Decimal
    funding_rate: Decimal
    next_funding_time_ms: int


@dataclass(frozen=True, slots=True)
class FillModel:
    """How generously the simulated market fills orders (swapped at run time by faults)."""

    # A taker consuming more than the top-of-book qty pays this much worse per further
    # top-of-book-sized chunk.
    slippage_bps: Decimal = Decimal("2")
    # Share of a Quote's traded volume a resting order may take when price only TOUCHES its
    # limit; 0 = no cap.
    participation: Decimal = Decimal("0.25")
    # Fault "partial fills": any single fill is at most this fraction of the order's original
    # qty (rounded down to step, at least one step).
    partial_fraction: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Fees:
    """Commission rates as fractions of the traded value (0.001 = 0.1 %)."""

    maker: Decimal
    taker: Decimal


def _is_buy(side: str) -> bool:
    if side == "BUY":
        return True
    if side == "SELL":
        return False
    raise ValueError(f"side must be BUY or SELL, not {side!r}")


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _ceil_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def _fill_cap(model: FillModel, original: Decimal, step_size: Decimal) -> Decimal | None:
    if model.partial_fraction is None:
        return None
    return max(_floor_to(original * model.partial_fraction, step_size), step_size)


def crosses(side: str, limit_price: Decimal, quote: Quote) -> bool:
    """Would an order at limit_price take liquidity now? BUY: ask <= price; SELL: bid >= price."""
    if _is_buy(side):
        return quote.ask <= limit_price
    return quote.bid >= limit_price


def taker_fills(
    *,
    side: str,
    quantity: Decimal,
    limit_price: Decimal | None,
    quote: Quote,
    model: FillModel,
    tick_size: Decimal,
    step_size: Decimal,
) -> list[tuple[Decimal, Decimal]]:
    """(price, qty) fills for an order taking liquidity now (MARKET: limit_price None).

    First the top-of-book qty at the best price, then further chunks each slippage_bps worse
    (prices rounded to tick away from the taker), never beyond limit_price; honours
    partial_fraction (each returned fill at most that fraction of ``quantity``). Quantities
    are multiples of step_size; the sum may be < quantity (caller decides: IOC/MARKET expire
    the rest, GTC rests it, FOK must check the full qty is fillable first).
    """
    buy = _is_buy(side)
    wanted = _floor_to(quantity, step_size)
    best = quote.ask if buy else quote.bid
    if wanted <= 0 or best <= 0:
        return []
    if limit_price is not None and not crosses(side, limit_price, quote):
        return []
    top = _floor_to(quote.ask_qty if buy else quote.bid_qty, step_size)
    # Without slippage every chunk has the same price: take everything in one.
    chunk = wanted if model.slippage_bps <= 0 else max(top, step_size)
    cap = _fill_cap(model, wanted, step_size)
    fills: list[tuple[Decimal, Decimal]] = []
    left = wanted
    for k in range(_MAX_CHUNKS):
        factor = model.slippage_bps * k / _BPS
        raw = best * (1 + factor) if buy else best * (1 - factor)
        price = _ceil_to(raw, tick_size) if buy else _floor_to(raw, tick_size)
        if k == 0:
            price = best  # the quoted best price is already on the grid
        if price <= 0:
            break
        if limit_price is not None and (price > limit_price if buy else price < limit_price):
            break
        take = left if k == _MAX_CHUNKS - 1 else min(chunk, left)
        while take > 0:
            piece = take if cap is None else min(cap, take)
            fills.append((price, piece))
            take -= piece
            left -= piece
        if left <= 0:
            break
    return fills


def resting_fill_quantity(
    *,
    side: str,
    limit_price: Decimal,
    remaining: Decimal,
    original: Decimal,
    quote: Quote,
    model: FillModel,
    step_size: Decimal,
) -> Decimal:
    """How much of a resting (maker) order fills at its limit price on this quote.

    0 if the market did not reach it; all of `remaining` when price traded strictly THROUGH
    it (BUY: ask < price or last < price); when it only touched (== price) at most
    participation * quote.volume; always capped by partial_fraction * original; rounded down
    to step_size.
    """
    if remaining <= 0:
        return Decimal(0)
    if _is_buy(side):
        through = quote.ask < limit_price or quote.last < limit_price
        touched = quote.ask == limit_price or quote.last == limit_price
    else:
        through = quote.bid > limit_price or quote.last > limit_price
        touched = quote.bid == limit_price or quote.last == limit_price
    if through:
        qty = remaining
    elif touched:
        qty = remaining
        if model.participation > 0:
            qty = min(qty, model.participation * max(quote.volume, Decimal(0)))
    else:
        return Decimal(0)
    cap = _fill_cap(model, original, step_size)
    if cap is not None:
        qty = min(qty, cap)
    return max(_floor_to(min(qty, remaining), step_size), Decimal(0))
