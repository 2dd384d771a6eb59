"""``SimMarketFeed``: the simulator's market-data streams as Binance-shaped frames over time.

Pure (no I/O, no clock): ``frames_until(now_ms)`` hands out every frame due up to simulated
time ``now_ms``, in time order, as ``(stream name, JSON bytes)`` pairs; the WebSocket side
(``exchange.sim.stream_server``) decides who gets which and when. Per symbol:

- ``<symbol>@kline_<interval>``: each closed bar of the symbol's ``PriceSource`` becomes
  ``updates_per_bar`` updates (``intrabar_updates``) spread evenly over the bar; the last, the
  only one with ``x: true``, is due at the bar's end (close time + 1 ms), as Binance sends it;
- ``<symbol>@bookTicker``: with every kline update, best bid at the update's close and best ask
  ``spread_ticks`` ticks above; spot frames carry no ``e``/``E``/``T``, futures frames do;
- ``<symbol>@markPrice@1s`` (futures only): every whole second, the last close plus a small
  seeded basis, the last close as index, a seeded funding rate drawn once per funding period,
  and the next funding time (the next multiple of ``funding_interval_hours``).

``items_until`` hands out the same frames with what the matching engines need: each kline
update as a ``Quote`` (the book it implies and the volume traded since the previous update)
and the ``Kline`` itself (for the REST klines history), each mark price as a ``MarkTick``.

Determinism: each symbol draws from its own ``random.Random`` seeded from the feed's seed and
the symbol, and frames are produced in a fixed order, so a seed (and the same sources) gives
the same bytes however ``frames_until`` is called. Frames at the same millisecond come in
symbol order, then kline, bookTicker, markPrice.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from app.domain.market import Kline
from exchange.sim.matching import MarkTick, Quote
from exchange.sim.price_sources import PriceSource, intrabar_updates

__all__ = [
    "DEFAULT_FUNDING_INTERVAL_HOURS",
    "MARK_PRICE_PERIOD_MS",
    "FeedItem",
    "SimMarketFeed",
    "SymbolMarket",
    "book_ticker_stream",
    "kline_stream",
    "mark_price_stream",
    "next_funding_time_ms",
]

DEFAULT_FUNDING_INTERVAL_HOURS: Final = 8
MARK_PRICE_PERIOD_MS: Final = 1_000
_HOUR_MS: Final = 3_600_000
_FUNDING_RATE_STEP: Final = Decimal("0.00000001")
# Funding rates drawn in [-0.0001, 0.0003], in units of 1e-8: Binance's usual band, skewed
# positive as perpetuals mostly are.
_FUNDING_RATE_RANGE: Final = (-10_000, 30_000)
_QUANTITY_STEP: Final = Decimal("0.001")
_MAX_BOOK_QUANTITY_STEPS: Final = 5_000
# One book-quantity unit is worth about this much quote at the symbol's start price (0.001 BTC
# at 60,000): top-of-book depth then spans ~60 to ~300,000 quote units on every symbol, as on
# Binance's USDT markets, instead of a few units of a coin worth 1.
BOOK_UNIT_NOTIONAL: Final = Decimal(60)
# Kinds at the same millisecond go out in this order.
_KLINE, _BOOK, _MARK = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SymbolMarket:
    """How one symbol is quoted: its tick, spread, and (futures) funding schedule."""

    tick_size: Decimal
    futures: bool = False
    spread_ticks: int = 1
    basis_ticks: int = 2  # the mark price strays at most this far from the last close
    funding_interval_hours: int = DEFAULT_FUNDING_INTERVAL_HOURS
    book_quantity_unit: Decimal = _QUANTITY_STEP  # top-of-book quantities are multiples

    def __post_init__(self) -> None:
        if not (self.tick_size.is_finite() and self.tick_size > 0):
            raise ValueError(f"tick_size must be positive, got {self.tick_size}")
        if not (self.book_quantity_unit.is_finite() and self.book_quantity_unit > 0):
            raise ValueError(f"book_quantity_unit must be positive, got {self.book_quantity_unit}")
        if self.spread_ticks < 1 or self.basis_ticks < 0 or self.funding_interval_hours < 1:
            raise ValueError(f"invalid market settings: {self}")


def book_quantity_unit(start_price: Decimal, step_size: Decimal) -> Decimal:
    """A whole number of lot steps worth about `BOOK_UNIT_NOTIONAL` at `start_price`."""
    steps = (BOOK_UNIT_NOTIONAL / start_price / step_size).to_integral_value(rounding=ROUND_FLOOR)
    return max(steps, Decimal(1)) * step_size


def kline_stream(symbol: str, interval: str) -> str:
    return f"{symbol.lower()}@kline_{interval}"


def book_ticker_stream(symbol: str) -> str:
    return f"{symbol.lower()}@bookTicker"


def mark_price_stream(symbol: str) -> str:
    return f"{symbol.lower()}@markPrice@1s"


def next_funding_time_ms(now_ms: int, interval_hours: int) -> int:
    """The first funding time strictly after ``now_ms`` (funding times are multiples of the
    interval since the epoch: 00:00, 08:00, 16:00 UTC for 8 h)."""
    period = interval_hours * _HOUR_MS
    return (now_ms // period + 1) * period


def _text(value: Decimal) -> str:
    return f"{value:f}"


def _json(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One frame for the streams and, for kline and mark-price frames, the prices it carries
    for the matching engines (a kline update is a ``Quote``: the book it implies and the
    volume traded since the previous update)."""

    stream: str
    frame: bytes
    tick: Quote | MarkTick | None
    kline: Kline | None  # the update a kline frame carries (``closed`` on the bar's last)


@dataclass(frozen=True, slots=True)
class _Due:
    """One frame waiting to be handed out; ordered by time, symbol, kind, then creation."""

    time_ms: int
    symbol_rank: int
    kind: int
    sequence: int
    stream: str
    frame: bytes
    tick: Quote | MarkTick | None = None
    kline: Kline | None = None

    def key(self) -> tuple[int, int, int, int]:
        return (self.time_ms, self.symbol_rank, self.kind, self.sequence)


class _SymbolFeed:
    """Frames of one symbol, produced a whole bar at a time, kept until they are due."""

    def __init__(
        self,
        source: PriceSource,
        market: SymbolMarket,
        *,
        rank: int,
        updates_per_bar: int,
        seed: int,
    ) -> None:
        self._source = source
        self._market = market
        self._rank = rank
        self._updates_per_bar = updates_per_bar
        self._rng = random.Random(f"{seed}:{source.symbol}")
        self._symbol = source.symbol
        self._kline_stream = kline_stream(source.symbol, source.interval)
        self._book_stream = book_ticker_stream(source.symbol)
        self._mark_stream = mark_price_stream(source.symbol)
        self._pending: list[_Due] = []
        self._sequence = 0
        self._horizon_ms: int | None = None  # frames are made up to here (inclusive)
        self._exhausted = False
        self._next_trade_id = self._rng.randint(1, 10**9)
        self._next_update_id = self._rng.randint(1, 10**9)
        self._last_close: Decimal | None = None
        self._next_mark_ms: int | None = None
        self._funding_ends_ms = -1
        self._funding_rate = Decimal(0)

    def take_until(self, now_ms: int) -> list[_Due]:
        while not self._exhausted and (self._horizon_ms is None or self._horizon_ms < now_ms):
            self._make_next_bar()
        due = [item for item in self._pending if item.time_ms <= now_ms]
        self._pending = self._pending[len(due) :]
        return due

    def skip_until(self, now_ms: int) -> list[Kline]:
        """Take the bars that ended a bar or more before ``now_ms`` as history, without
        stream frames (fast); later bars are made as usual, their frames left pending."""
        skipped: list[Kline] = []
        while not self._exhausted and (self._horizon_ms is None or self._horizon_ms < now_ms):
            bar = self._source.next_bar()
            if bar is None:
                self._exhausted = True
                break
            # The last bar that ended and the one in progress are streamed as usual, so the
            # engine gets a quote at ``now_ms`` whatever the phase of the bar.
            length_ms = bar.close_time_ms + 1 - bar.open_time_ms
            if bar.close_time_ms + 1 > now_ms - length_ms:
                if skipped:
                    self._next_mark_ms = None  # marks restart at the bar in progress
                self._make_next_bar(bar)
                break
            skipped.append(bar)
            self._next_trade_id += bar.trades
            self._last_close = bar.close
            self._horizon_ms = bar.close_time_ms + 1
        return skipped

    def _make_next_bar(self, bar: Kline | None = None) -> None:
        bar = bar or self._source.next_bar()
        if bar is None:
            self._exhausted = True
            return
        length_ms = bar.close_time_ms + 1 - bar.open_time_ms
        updates = intrabar_updates(bar, steps=self._updates_per_bar, rng=self._rng)
        first_trade = self._next_trade_id
        self._next_trade_id += bar.trades
        made: list[_Due] = []
        timeline: list[tuple[int, Decimal]] = []
        traded_before = Decimal(0)
        for index, update in enumerate(updates, start=1):
            time_ms = bar.open_time_ms + length_ms * index // len(updates)
            book, quote = self._book(update.close, time_ms, update.volume - traded_before)
            traded_before = update.volume
            kline = self._kline(update, time_ms, first_trade)
            made.append(self._due(time_ms, _KLINE, self._kline_stream, kline, quote, update))
            made.append(self._due(time_ms, _BOOK, self._book_stream, book))
            timeline.append((time_ms, update.close))
        end_ms = bar.close_time_ms + 1
        if self._market.futures:
            made.extend(self._marks(bar, timeline, end_ms))
        self._last_close = bar.close
        self._horizon_ms = end_ms
        # Frames of one bar are made in time order except marks: one merge keeps all sorted.
        self._pending = list(heapq.merge(self._pending, sorted(made, key=_Due.key), key=_Due.key))

    def _due(
        self,
        time_ms: int,
        kind: int,
        stream: str,
        frame: bytes,
        tick: Quote | MarkTick | None = None,
        kline: Kline | None = None,
    ) -> _Due:
        self._sequence += 1
        return _Due(time_ms, self._rank, kind, self._sequence, stream, frame, tick, kline)

    def _kline(self, update: Kline, time_ms: int, first_trade: int) -> bytes:
        last_trade = first_trade + update.trades - 1 if update.trades else -1
        taker_volume = (update.volume / 2).quantize(update.volume, rounding=ROUND_FLOOR)
        taker_quote = (update.quote_volume / 2).quantize(update.quote_volume, rounding=ROUND_FLOOR)
        return _json(
            {
                "e": "kline",
                "E": time_ms,
                "s": update.symbol,
                "k": {
                    "t": update.open_time_ms,
                    "T": update.close_time_ms,
                    "s": update.symbol,
                    "i": update.interval,
                    "f": first_trade if update.trades else -1,
                    "L": last_trade,
                    "o": _text(update.open),
                    "c": _text(update.close),
                    "h": _text(update.high),
                    "l": _text(update.low),
                    "v": _text(update.volume),
                    "n": update.trades,
                    "x": update.closed,
                    "q": _text(update.quote_volume),
                    "V": _text(taker_volume),
                    "Q": _text(taker_quote),
                    "B": "0",
                },
            }
        )

    def _book(self, price: Decimal, time_ms: int, traded: Decimal) -> tuple[bytes, Quote]:
        tick = self._market.tick_size
        bid = max((price / tick).to_integral_value(rounding=ROUND_FLOOR), Decimal(1)) * tick
        ask = bid + self._market.spread_ticks * tick
        unit = self._market.book_quantity_unit
        bid_quantity = self._rng.randint(1, _MAX_BOOK_QUANTITY_STEPS) * unit
        ask_quantity = self._rng.randint(1, _MAX_BOOK_QUANTITY_STEPS) * unit
        self._next_update_id += 1
        book: dict[str, object] = {"u": self._next_update_id, "s": self._symbol}
        if self._market.futures:
            book = {"e": "bookTicker", "u": self._next_update_id, "E": time_ms, "T": time_ms}
            book["s"] = self._symbol
        book |= {"b": _text(bid), "B": _text(bid_quantity), "a": _text(ask)}
        book["A"] = _text(ask_quantity)
        quote = Quote(
            symbol=self._symbol,
            time_ms=time_ms,
            bid=bid,
            ask=ask,
            bid_qty=bid_quantity,
            ask_qty=ask_quantity,
            last=price,
            volume=max(traded, Decimal(0)),
        )
        return _json(book), quote

    def _marks(
        self, bar: Kline, timeline: list[tuple[int, Decimal]], end_ms: int
    ) -> Iterator[_Due]:
        """Mark prices for every whole second after the previous bar up to this bar's end; the
        price is the close last streamed at that second (the bar's open before any update)."""
        if self._next_mark_ms is None:
            self._next_mark_ms = -(-bar.open_time_ms // MARK_PRICE_PERIOD_MS) * MARK_PRICE_PERIOD_MS
        close = self._last_close if self._last_close is not None else bar.open
        updates = iter(timeline)
        upcoming = next(updates, None)
        while self._next_mark_ms <= end_ms:
            time_ms = self._next_mark_ms
            while upcoming is not None and upcoming[0] <= time_ms:
                close = upcoming[1]
                upcoming = next(updates, None)
            yield self._mark(close, time_ms)
            self._next_mark_ms += MARK_PRICE_PERIOD_MS

    def _mark(self, index_price: Decimal, time_ms: int) -> _Due:
        tick = self._market.tick_size
        basis = self._rng.randint(-self._market.basis_ticks, self._market.basis_ticks) * tick
        mark = max(index_price + basis, tick)
        next_funding = next_funding_time_ms(time_ms, self._market.funding_interval_hours)
        if next_funding != self._funding_ends_ms:
            # A new funding period: its rate is drawn once and holds until it ends.
            self._funding_ends_ms = next_funding
            self._funding_rate = self._rng.randint(*_FUNDING_RATE_RANGE) * _FUNDING_RATE_STEP
        frame = _json(
            {
                "e": "markPriceUpdate",
                "E": time_ms,
                "s": self._symbol,
                "p": _text(mark),
                "i": _text(index_price),
                "P": _text(index_price),
                "r": _text(self._funding_rate),
                "T": next_funding,
            }
        )
        mark_tick = MarkTick(
            symbol=self._symbol,
            time_ms=time_ms,
            mark_price=mark,
            index_price=index_price,
            funding_rate=self._funding_rate,
            next_funding_time_ms=next_funding,
        )
        return self._due(time_ms, _MARK, self._mark_stream, frame, mark_tick)


class SimMarketFeed:
    """Binance-shaped market frames for several symbols over simulated time (see module doc).

    ``sources`` maps each symbol to its ``PriceSource``; ``markets`` says how each symbol is
    quoted (every symbol of ``sources`` needs one). ``updates_per_bar`` is how many kline
    updates each bar streams, the last being the closed bar.
    """

    def __init__(
        self,
        sources: Mapping[str, PriceSource],
        markets: Mapping[str, SymbolMarket],
        *,
        seed: int,
        updates_per_bar: int = 4,
    ) -> None:
        if updates_per_bar < 1:
            raise ValueError(f"updates_per_bar must be at least 1, got {updates_per_bar}")
        missing = sorted(set(sources) - set(markets))
        if missing:
            raise ValueError(f"no SymbolMarket for {missing}")
        for symbol, source in sources.items():
            if source.symbol != symbol:
                raise ValueError(f"source for {symbol} streams {source.symbol}")
        self._symbols = [
            _SymbolFeed(
                source,
                markets[symbol],
                rank=rank,
                updates_per_bar=updates_per_bar,
                seed=seed,
            )
            for rank, (symbol, source) in enumerate(sources.items())
        ]
        self.streams = frozenset(
            name
            for symbol, source in sources.items()
            for name in (
                kline_stream(symbol, source.interval),
                book_ticker_stream(symbol),
                *([mark_price_stream(symbol)] if markets[symbol].futures else []),
            )
        )
        self._now_ms: int | None = None

    @property
    def now_ms(self) -> int | None:
        """Simulated time handed out so far (``None`` before the first call)."""
        return self._now_ms

    def skip_until(self, now_ms: int) -> list[Kline]:
        """Move to ``now_ms`` before the first frame is handed out, keeping only the closed
        bars (oldest first per symbol): history without the cost of streaming it. The next
        ``items_until`` starts with the bar in progress."""
        if self._now_ms is not None:
            raise ValueError("skip_until must come before the first frame is handed out")
        return [bar for symbol in self._symbols for bar in symbol.skip_until(now_ms)]

    def items_until(self, now_ms: int) -> list[FeedItem]:
        """Every frame due after the previous call and up to ``now_ms``, in time order, each
        with the prices it carries."""
        if self._now_ms is not None and now_ms < self._now_ms:
            raise ValueError(f"simulated time cannot go back: {now_ms} < {self._now_ms}")
        self._now_ms = now_ms
        due = heapq.merge(*(symbol.take_until(now_ms) for symbol in self._symbols), key=_Due.key)
        return [FeedItem(item.stream, item.frame, item.tick, item.kline) for item in due]

    def frames_until(self, now_ms: int) -> list[tuple[str, bytes]]:
        """Every frame due after the previous call and up to ``now_ms``, in time order."""
        return [(item.stream, item.frame) for item in self.items_until(now_ms)]
