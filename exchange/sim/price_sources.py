"""Where the simulator's prices come from: one protocol, two sources, and intrabar updates.

``PriceSource`` is what the simulator's market side pulls closed bars from. Two implement it:

- ``SyntheticMarket`` (``exchange.sim.synthetic``): a seeded regime-switching generator;
- ``ReplayMarket`` (here): klines loaded from Binance public-data files
  (``exchange.sim.kline_files.load_kline_csv``), replayed once or in a loop.

``intrabar_updates`` turns one closed bar into the in-progress (``closed=False``) updates a
Binance kline stream shows while that bar forms, ending with the bar itself.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import replace
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Final, Protocol

from app.domain.market import Kline
from exchange.sim.kline_files import KlineFileError, load_kline_csv
from exchange.sim.synthetic import Regime, SyntheticMarket

__all__ = [
    "KlineFileError",
    "PriceSource",
    "Regime",
    "ReplayMarket",
    "SyntheticMarket",
    "intrabar_updates",
    "load_kline_csv",
]

_CONTEXT: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
_SHARE_BITS: Final = 32
_SHARE_SCALE: Final = Decimal(2**_SHARE_BITS)


class PriceSource(Protocol):
    """A stream of closed bars for one symbol and interval, oldest first."""

    @property
    def symbol(self) -> str: ...

    @property
    def interval(self) -> str: ...

    def next_bar(self) -> Kline | None:
        """The next closed bar, or ``None`` once the source is exhausted (it stays so)."""
        ...


class ReplayMarket:
    """Replays closed klines of one symbol and interval, in order; implements ``PriceSource``.

    With ``loop=True`` the series starts again after its last bar, so a short file can drive a
    long run. Each new pass is shifted so that the simulated market stays plausible:

    - time: open and close times move forward by the span of the series (first open to last
      close), so times keep increasing and the pattern of gaps in the file is kept;
    - price: every price moves by the same amount, chosen so the pass opens at the previous
      pass's last close. An additive shift (rather than scaling) keeps every price on the
      file's tick grid and each bar's shape exact; quote volume moves by ``volume * shift``,
      which is exactly what shifting each trade's price gives. If a shift would bring a
      pass's lowest low to zero or below (a file that falls overall, looped many times), that
      pass is replayed at its original prices instead: one price jump, then the file again.
    """

    def __init__(self, klines: Sequence[Kline], *, loop: bool = False) -> None:
        if not klines:
            raise ValueError("ReplayMarket needs at least one kline")
        first = klines[0]
        for previous, kline in itertools.pairwise(klines):
            if kline.open_time_ms <= previous.open_time_ms:
                raise ValueError(f"klines out of order at open time {kline.open_time_ms}")
        for kline in klines:
            if (kline.symbol, kline.interval) != (first.symbol, first.interval):
                raise ValueError(
                    f"mixed series: {kline.symbol} {kline.interval} among "
                    f"{first.symbol} {first.interval}"
                )
            if not kline.closed:
                raise ValueError(f"kline at {kline.open_time_ms} is not closed")
        self._klines = tuple(klines)
        self._loop = loop
        self._span_ms = klines[-1].close_time_ms + 1 - first.open_time_ms
        self._lowest = min(kline.low for kline in klines)
        self._index = 0
        self._passes = 0
        self._time_shift_ms = 0
        self._price_shift = Decimal(0)

    @property
    def symbol(self) -> str:
        return self._klines[0].symbol

    @property
    def first_open_ms(self) -> int:
        return self._klines[0].open_time_ms

    @property
    def interval(self) -> str:
        return self._klines[0].interval

    def next_bar(self) -> Kline | None:
        if self._index == len(self._klines):
            if not self._loop:
                return None
            self._start_next_pass()
        kline = self._klines[self._index]
        self._index += 1
        if self._passes == 0:
            return kline
        return _shifted(kline, self._time_shift_ms, self._price_shift)

    def _start_next_pass(self) -> None:
        last_close = self._klines[-1].close + self._price_shift
        shift = last_close - self._klines[0].open
        self._price_shift = shift if self._lowest + shift > 0 else Decimal(0)
        self._time_shift_ms += self._span_ms
        self._passes += 1
        self._index = 0


def _shifted(kline: Kline, time_ms: int, price: Decimal) -> Kline:
    return replace(
        kline,
        open_time_ms=kline.open_time_ms + time_ms,
        close_time_ms=kline.close_time_ms + time_ms,
        open=kline.open + price,
        high=kline.high + price,
        low=kline.low + price,
        close=kline.close + price,
        quote_volume=kline.quote_volume + kline.volume * price,
    )


def intrabar_updates(bar: Kline, *, steps: int, rng: random.Random) -> list[Kline]:
    """The ``steps`` kline-stream updates for ``bar``: ``steps - 1`` in progress, then ``bar``.

    Each in-progress update has the bar's open and times; its close walks a path from the
    open to the bar's close that touches the bar's high and low (when at least two updates are
    in progress) at random moments; its high and low are the running extremes of that path, so
    never beyond the bar's own. Prices stay on the finest decimal grid of the bar's prices.
    Volume, quote volume and trade count grow, never shrink, up to the bar's. The same ``rng``
    state gives the same updates.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not bar.closed:
        raise ValueError("intrabar_updates needs the final, closed bar")
    if not (bar.low <= min(bar.open, bar.close) and max(bar.open, bar.close) <= bar.high):
        raise ValueError(f"inconsistent OHLC in bar at {bar.open_time_ms}")
    with localcontext(_CONTEXT):
        return _intrabar_updates(bar, steps - 1, rng)


def _intrabar_updates(bar: Kline, in_progress: int, rng: random.Random) -> list[Kline]:
    path = _intrabar_path(bar, in_progress, rng)
    # Integer draws keep the split exact and platform-independent, like the generator's.
    shares = sorted(
        Decimal(rng.getrandbits(_SHARE_BITS)) / _SHARE_SCALE for _ in range(in_progress)
    )
    updates: list[Kline] = []
    high = low = bar.open
    for price, share in zip(path, shares, strict=True):
        high, low = max(high, price), min(low, price)
        updates.append(
            replace(
                bar,
                high=high,
                low=low,
                close=price,
                volume=_floor_like(bar.volume * share, bar.volume),
                quote_volume=_floor_like(bar.quote_volume * share, bar.quote_volume),
                trades=int(bar.trades * share),
                closed=False,
            )
        )
    updates.append(bar)
    return updates


def _intrabar_path(bar: Kline, length: int, rng: random.Random) -> list[Decimal]:
    """``length`` prices in [low, high]: piecewise lines through open, high, low and close
    (the extremes at random positions), jittered by up to a tenth of the bar's range."""
    if length == 0:
        return []
    grid = _price_grid(bar)
    positions = rng.sample(range(length), k=2) if length >= 2 else []
    anchors = sorted(zip(positions, (bar.high, bar.low), strict=False))
    knots = [(-1, bar.open), *anchors, (length, bar.close)]
    jitter = int((bar.high - bar.low) / grid / 10)
    path: list[Decimal] = []
    for step in range(length):
        left = max(knot for knot in knots if knot[0] <= step)
        right = min(knot for knot in knots if knot[0] > step)
        if left[0] == step:
            path.append(left[1])
            continue
        weight = Decimal(step - left[0]) / Decimal(right[0] - left[0])
        line = left[1] + (right[1] - left[1]) * weight
        price = (line / grid).to_integral_value() * grid + rng.randint(-jitter, jitter) * grid
        path.append(min(bar.high, max(bar.low, price)))
    return path


def _price_grid(bar: Kline) -> Decimal:
    """The coarsest power of ten that all four prices are multiples of."""
    return Decimal(1).scaleb(min(_exponent(p) for p in (bar.open, bar.high, bar.low, bar.close)))


def _exponent(price: Decimal) -> int:
    exponent = price.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity: refused before we get here
        raise ValueError(f"price {price} is not finite")
    return exponent


def _floor_like(value: Decimal, like: Decimal) -> Decimal:
    """``value`` rounded down to the decimal places ``like`` is written with."""
    return value.quantize(like, rounding=ROUND_FLOOR)
