"""``SyntheticMarket``: a seeded, regime-switching price path producing closed klines.

The path is a multiplicative random walk sampled ``SUBSTEPS`` times per bar (so high and low
are real extremes of the path, not decoration). It switches between regimes after a random
number of bars (``MIN_REGIME_BARS``..``MAX_REGIME_BARS``):

- trending up / down: a steady drift with moderate noise;
- ranging: pulled back towards the price at which the regime began (mean reversion);
- volatile: no drift, several times the usual noise, and heavier volume.

Determinism: only integer draws of ``random.Random`` are used (``getrandbits``, ``randint``),
and all arithmetic is Decimal in a fixed local context, so a seed gives the same bars on any
platform and regardless of the caller's decimal context.
"""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, localcontext
from enum import StrEnum
from typing import Final

from app.domain.market import Kline
from exchange.binance.kline_gaps import interval_ms as interval_length_ms
from exchange.binance.wire_market import KLINE_INTERVALS

__all__ = ["MAX_REGIME_BARS", "MIN_REGIME_BARS", "SUBSTEPS", "Regime", "SyntheticMarket"]

SUBSTEPS: Final = 8
MIN_REGIME_BARS: Final = 20
MAX_REGIME_BARS: Final = 200
_CONTEXT: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
_UNIFORM_BITS: Final = 32
_UNIFORM_SCALE: Final = Decimal(2**_UNIFORM_BITS)
_VOLUME_STEP: Final = Decimal("0.001")
_QUOTE_STEP: Final = Decimal("0.00000001")
# Per-bar drift (fraction of price) and noise scale, split evenly over the substeps. A noise
# draw lies in [-3, 3] (see `_noise`), so a substep moves at most ~4% even when volatile and
# the multiplier stays far above zero.
_TREND_DRIFT: Final = Decimal("0.0006")
_REVERSION_PER_BAR: Final = Decimal("0.15")
_MAX_REVERSION: Final = Decimal("0.01")
_SIGMA: Final[dict[str, Decimal]] = {
    "trending_up": Decimal("0.002"),
    "trending_down": Decimal("0.002"),
    "ranging": Decimal("0.0015"),
    "volatile": Decimal("0.008"),
}
_INTERVAL_BY_MS: Final[dict[int, str]] = {
    length: name
    for name in KLINE_INTERVALS
    if (length := interval_length_ms(name)) is not None  # "1M" has no fixed length
}


class Regime(StrEnum):
    """How the synthetic price behaves for the current stretch of bars."""

    TRENDING_UP = "trending_up"
    TRENDING_DOWN = "trending_down"
    RANGING = "ranging"
    VOLATILE = "volatile"


class SyntheticMarket:
    """A deterministic price path for one symbol; implements ``PriceSource`` (never ends).

    ``interval_ms`` must be the length of a Binance kline interval (``1s``..``1w``); prices are
    multiples of ``tick_size`` and never below one tick; bars are contiguous from ``start_ms``.
    """

    def __init__(
        self,
        symbol: str,
        *,
        seed: int,
        start_price: Decimal,
        tick_size: Decimal,
        interval_ms: int = 60_000,
        start_ms: int,
        base_volume: Decimal = Decimal(100),
    ) -> None:
        if interval_ms not in _INTERVAL_BY_MS:
            raise ValueError(f"{interval_ms} ms is not the length of a Binance kline interval")
        if not (tick_size.is_finite() and tick_size > 0):
            raise ValueError(f"tick_size must be positive, got {tick_size}")
        if not (start_price.is_finite() and start_price >= tick_size):
            raise ValueError(f"start_price must be at least one tick, got {start_price}")
        if not (base_volume.is_finite() and base_volume > 0):
            raise ValueError(f"base_volume must be positive, got {base_volume}")
        self._symbol = symbol
        self._interval = _INTERVAL_BY_MS[interval_ms]
        self._interval_ms = interval_ms
        self._tick = tick_size
        self._base_volume = base_volume
        self._rng = random.Random(seed)
        self._price = start_price  # unrounded path value; bars show it rounded to the tick
        self._next_open_ms = start_ms
        self._regime = self._rng.choice(list(Regime))
        self._anchor = start_price
        self._bars_left = self._regime_length()

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def interval(self) -> str:
        return self._interval

    @property
    def current_regime(self) -> Regime:
        """The regime the next bar will be drawn in."""
        return self._regime

    def next_bar(self) -> Kline:
        """The next closed bar; its open is the previous bar's close."""
        if self._bars_left == 0:
            self._switch_regime()
        self._bars_left -= 1
        with localcontext(_CONTEXT):
            return self._draw_bar()

    def _draw_bar(self) -> Kline:
        open_ = self._on_tick(self._price)
        high = low = open_
        sigma = _SIGMA[self._regime] / SUBSTEPS
        for _ in range(SUBSTEPS):
            factor = 1 + self._drift() / SUBSTEPS + sigma * self._noise()
            self._price = max(self._price * factor, self._tick)
            shown = self._on_tick(self._price)
            high, low = max(high, shown), min(low, shown)
        close = self._on_tick(self._price)
        volume = self._volume(open_, high, low)
        average = (open_ + high + low + close) / 4
        quote_volume = (volume * average).quantize(_QUOTE_STEP)
        trades = max(1, int(volume / self._base_volume * self._rng.randint(200, 400)))
        open_ms = self._next_open_ms
        self._next_open_ms += self._interval_ms
        return Kline(
            self._symbol,
            self._interval,
            open_ms,
            open_ms + self._interval_ms - 1,
            open_,
            high,
            low,
            close,
            volume,
            quote_volume,
            trades,
            closed=True,
        )

    def _switch_regime(self) -> None:
        others = [regime for regime in Regime if regime is not self._regime]
        self._regime = others[self._rng.randrange(len(others))]
        self._bars_left = self._regime_length()
        self._anchor = self._price

    def _regime_length(self) -> int:
        return self._rng.randint(MIN_REGIME_BARS, MAX_REGIME_BARS)

    def _drift(self) -> Decimal:
        """Expected move per bar, as a fraction of the price."""
        if self._regime is Regime.TRENDING_UP:
            return _TREND_DRIFT
        if self._regime is Regime.TRENDING_DOWN:
            return -_TREND_DRIFT
        if self._regime is Regime.RANGING:
            pull = -_REVERSION_PER_BAR * (self._price - self._anchor) / self._anchor
            return max(-_MAX_REVERSION, min(_MAX_REVERSION, pull))
        return Decimal(0)

    def _uniform(self) -> Decimal:
        """Uniform in [0, 1), from integer bits so it is exact on every platform."""
        return Decimal(self._rng.getrandbits(_UNIFORM_BITS)) / _UNIFORM_SCALE

    def _noise(self) -> Decimal:
        """Mean 0, variance 1, bounded to [-3, 3]: twice the centred sum of three uniforms."""
        return 2 * (self._uniform() + self._uniform() + self._uniform()) - 3

    def _volume(self, open_: Decimal, high: Decimal, low: Decimal) -> Decimal:
        # Wide bars trade more, as on a real exchange; the volatile regime trades more still.
        range_fraction = (high - low) / open_
        heat = 3 if self._regime is Regime.VOLATILE else 1
        raw = self._base_volume * (Decimal("0.5") + self._uniform()) * (1 + 100 * range_fraction)
        return max((raw * heat).quantize(_VOLUME_STEP, rounding=ROUND_DOWN), _VOLUME_STEP)

    def _on_tick(self, price: Decimal) -> Decimal:
        ticks = (price / self._tick).to_integral_value(rounding=ROUND_HALF_EVEN)
        return max(ticks, Decimal(1)) * self._tick
