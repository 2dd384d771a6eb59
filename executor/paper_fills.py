"""The paper venue's fill model: pure functions deciding whether, and at what price, one order
fills against one market event. No I/O, no clock, no state of its own; `executor.paper` keeps
the orders and feeds it book tickers and klines.

Time. An order arrives at `received_ms` (the later of the request's `ts_ms` and the clock) and
is *live* from `live_at_ms = received_ms + latency_ms`. Nothing before the live time is used.

Book tickers (the fine-grained source; `at_ms` is the ticker's time as the executor saw it):

- MARKET: the first ticker at or after the live time; a buy pays ask x (1 + slippage), a sell
  gets bid x (1 - slippage); taker.
- IOC / FOK: decided on that same first ticker (the order's "first look"): if the touch crosses
  the limit it fills like a market order, never beyond its limit (taker); otherwise EXPIRED.
  Fills are always complete and depth is not modelled, so IOC and FOK behave alike.
- GTX / LIMIT_MAKER (post-only): if the first look crosses, EXPIRED (reason: Binance's
  "Order would immediately match and take."). Binance futures expires a GTX order the same
  way; spot *rejects* a crossing LIMIT_MAKER at placement (-2010), but the paper venue has
  already acknowledged the order (NEW) by then and NEW -> REJECTED is not a legal transition,
  so both expire. Otherwise it rests like GTC.
- GTC (and post-only once resting): fills at its limit price, maker, on a ticker *later* than
  the live time (`at_ms > live_at_ms`) whose ask <= limit (buy) / bid >= limit (sell).

Klines (bar-granular: a bar's range has no times inside it):

- A bar is *eligible* for an order when it opens after the bar in progress when the order
  arrived (per interval: the latest bar the executor had seen, closed or not; the closed bar
  that produced the signal is therefore never used) and ends at or after the live time. With
  no bar of that interval seen before the order, only bars opening at or after its arrival
  count. Latency inside a bar cannot be resolved, so it only excludes bars that ended before
  the order was live.
- MARKET: the open of the first eligible bar, with slippage, taker. This is "the next bar
  after the order", not "the next bar opening after the live time": with 50 ms of latency the
  latter would delay every market order by a whole bar. Used only while the symbol has no
  book ticker (the executor's choice, see `executor.paper`).
- The first eligible bar is the first look for IOC/FOK and post-only, judged at its open.
- A resting limit fills on an eligible bar whose low <= limit (buy) / high >= limit (sell), at
  the limit, or at the open when the bar opened through the limit (a better price); maker.

TTL: an order whose `expires_at_ms` has passed is not matched (a ticker at or after it, a bar
opening at or after it); the executor cancels it.

Prices are not rounded onto the tick grid (slippage makes off-grid prices); every product here
is exact in Decimal for exchange-sized numbers, which the accounting property test relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from app.domain import BookTicker, Kline, OrderType, Side, TimeInForce

__all__ = [
    "BPS",
    "NOT_CROSSED",
    "WOULD_TAKE",
    "Behaviour",
    "Expire",
    "FillAt",
    "FillModel",
    "OrderTerms",
    "Outcome",
    "Rest",
    "behaviour_of",
    "kline_eligible",
    "match_book",
    "match_kline",
]

BPS = Decimal(10_000)
WOULD_TAKE = "Order would immediately match and take."
NOT_CROSSED = "IOC/FOK order could not be filled at once"


class Behaviour(StrEnum):
    """How an order meets the market, from its type and time in force."""

    MARKET = "market"
    IMMEDIATE = "immediate"  # IOC, FOK: fill at the first look or expire
    POST_ONLY = "post_only"  # GTX, LIMIT_MAKER: expire if the first look crosses
    RESTING = "resting"  # GTC (and GTD, treated as GTC: its end is the order's TTL)


def behaviour_of(order_type: OrderType, time_in_force: TimeInForce | None) -> Behaviour | None:
    """None for types the paper venue does not fill (stop and take-profit orders)."""
    if order_type is OrderType.MARKET:
        return Behaviour.MARKET
    if order_type is OrderType.LIMIT_MAKER:
        return Behaviour.POST_ONLY
    if order_type is not OrderType.LIMIT:
        return None
    if time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        return Behaviour.IMMEDIATE
    if time_in_force is TimeInForce.GTX:
        return Behaviour.POST_ONLY
    return Behaviour.RESTING


@dataclass(frozen=True, slots=True)
class FillModel:
    maker_fee: Decimal
    taker_fee: Decimal
    slippage_bps: Decimal

    @property
    def slippage(self) -> Decimal:
        return self.slippage_bps / BPS

    def slipped(self, side: Side, touch: Decimal) -> Decimal:
        """The price a taker pays (buy) or gets (sell) at this touch: always worse than it."""
        if side is Side.BUY:
            return touch * (1 + self.slippage)
        return touch * (1 - self.slippage)

    def fee(self, price: Decimal, quantity: Decimal, *, is_maker: bool) -> Decimal:
        """In the quote asset, on both sides (Binance spot charges a buy in the base asset unless
        BNB pays; one asset keeps the virtual books simple and the value accounting exact)."""
        return price * quantity * (self.maker_fee if is_maker else self.taker_fee)


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What matching needs to know of one order."""

    side: Side
    behaviour: Behaviour
    quantity: Decimal
    price: Decimal | None  # the limit; None for MARKET
    received_ms: int
    live_at_ms: int
    # interval -> open time of the latest bar seen (closed or in progress) when the order arrived
    arrival_bars: Mapping[str, int] = field(default_factory=dict)
    expires_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class FillAt:
    price: Decimal
    is_maker: bool


@dataclass(frozen=True, slots=True)
class Expire:
    reason: str


@dataclass(frozen=True, slots=True)
class Rest:
    """The event was usable and the order keeps resting: its first look is behind it."""


Outcome = FillAt | Expire | Rest | None  # None: the event does not concern the order (yet)
_REST = Rest()


def _crosses(side: Side, price: Decimal, limit: Decimal) -> bool:
    return price <= limit if side is Side.BUY else price >= limit


def _taker(model: FillModel, terms: OrderTerms, touch: Decimal) -> FillAt:
    price = model.slipped(terms.side, touch)
    limit = terms.price
    if limit is not None:  # a marketable limit never fills beyond its limit
        price = min(price, limit) if terms.side is Side.BUY else max(price, limit)
    return FillAt(price, is_maker=False)


def _first_look(model: FillModel, terms: OrderTerms, touch: Decimal, limit: Decimal) -> Outcome:
    """IOC/FOK and post-only decisions at the first price seen once the order is live."""
    crosses = _crosses(terms.side, touch, limit)
    if terms.behaviour is Behaviour.IMMEDIATE:
        return _taker(model, terms, touch) if crosses else Expire(NOT_CROSSED)
    if terms.behaviour is Behaviour.POST_ONLY and crosses:
        return Expire(WOULD_TAKE)
    return None


def match_book(
    model: FillModel, terms: OrderTerms, book: BookTicker, at_ms: int, *, first_look: bool
) -> Outcome:
    """One order against one book ticker seen at `at_ms`."""
    if at_ms < terms.live_at_ms:
        return None
    if terms.expires_at_ms is not None and at_ms >= terms.expires_at_ms:
        return None
    touch = book.ask_price if terms.side is Side.BUY else book.bid_price
    if terms.behaviour is Behaviour.MARKET:
        return _taker(model, terms, touch)
    limit = terms.price
    assert limit is not None  # every non-market behaviour has a limit (checked on submit)
    if first_look and (decided := _first_look(model, terms, touch, limit)) is not None:
        return decided
    if at_ms > terms.live_at_ms and _crosses(terms.side, touch, limit):
        return FillAt(limit, is_maker=True)
    return _REST


def kline_eligible(terms: OrderTerms, kline: Kline) -> bool:
    """Whether the bar comes after the order (see the module docstring)."""
    if kline.close_time_ms < terms.live_at_ms:
        return False
    if terms.expires_at_ms is not None and kline.open_time_ms >= terms.expires_at_ms:
        return False
    arrival = terms.arrival_bars.get(kline.interval)
    if arrival is None:
        return kline.open_time_ms >= terms.received_ms
    return kline.open_time_ms > arrival


def match_kline(model: FillModel, terms: OrderTerms, kline: Kline, *, first_look: bool) -> Outcome:
    """One order against one kline (an intrabar update or a closed bar)."""
    if not kline_eligible(terms, kline):
        return None
    if terms.behaviour is Behaviour.MARKET:
        return _taker(model, terms, kline.open)
    limit = terms.price
    assert limit is not None
    if first_look and (decided := _first_look(model, terms, kline.open, limit)) is not None:
        return decided
    side = terms.side
    extreme = kline.low if side is Side.BUY else kline.high
    if _crosses(side, extreme, limit):
        gapped = _crosses(side, kline.open, limit)
        return FillAt(kline.open if gapped else limit, is_maker=True)
    return _REST
