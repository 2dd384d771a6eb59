"""`vwap_reversion`: fade stretches away from the session VWAP, only in sideways markets.

Meant for liquid pairs on intraday bars (1m-15m) in ranging, mean-reverting conditions. It is
the wrong tool for trending days: the ADX filter keeps it out of them, and it leaves as soon as
a trend appears. Not for daily or longer bars (the VWAP is anchored to the UTC day).

- Entry long when a bar closes below `VWAP - band_mult * sigma` (short: above the upper band), where
  sigma is the volume-weighted standard deviation of price around the session VWAP, and only when
  ADX < `adx_max` (no trend), the session has at least `min_session_bars` bars, the bands are at
  least `min_band_bps` wide (narrower bands cannot pay the fees) and the volatility guard is
  quiet.
- Volatility guard: the largest move within the last `guard_window_s` seconds — seen through
  book tickers and bar closes — must stay under `guard_max_move_pct`; a sudden jump means news
  or a liquidation cascade, when "the price will come back" is least true.
- Exit at the VWAP (the mean it bet on), when ADX rises above `adx_exit` (a trend has begun),
  or when the UTC session ends (its VWAP no longer exists).
- Confidence grows with the stretch: 0.5 at the band, 1.0 at twice the band distance.

It keeps its own stance (flat, long or short) from what it signalled, and returns to flat when
the risk gate denies its entry or the entry order ends unfilled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from app.domain import BookTicker, Kline, OrderDenied, OrderUpdated
from exchange.binance.kline_gaps import interval_ms
from strategies.base import Strategy, StrategyParams
from strategies.context import StrategyContext
from strategies.indicators import ADX, SessionVWAP, WindowedMove
from strategies.stance import FLAT, LONG, SHORT, Stance

__all__ = ["VwapReversion", "VwapReversionParams"]

_DAY_MS = 86_400_000


class VwapReversionParams(StrategyParams):
    band_mult: float = Field(default=2.0, gt=0, description="entry band width in sigma from VWAP")
    adx_period: int = Field(default=14, ge=2, le=200, description="ADX lookback in bars")
    adx_max: float = Field(default=20.0, gt=0, le=100, description="enter only below this ADX")
    adx_exit: float = Field(default=30.0, gt=0, le=100, description="leave above this ADX")
    min_session_bars: int = Field(
        default=30, ge=1, description="bars since the UTC session start before the first entry"
    )
    min_band_bps: float = Field(
        default=5.0, ge=0, description="skip entries when sigma is below this many bps of VWAP"
    )
    guard_window_s: float = Field(
        default=5.0, gt=0, le=3600, description="volatility guard window in seconds"
    )
    guard_max_move_pct: float = Field(
        default=0.5, gt=0, description="no entries while the window's move exceeds this %"
    )
    allow_short: bool = Field(default=True, description="also fade stretches above the band")


class VwapReversion(Strategy[VwapReversionParams]):
    name = "vwap_reversion"
    params_model = VwapReversionParams
    summary = "mean reversion to the session VWAP bands, only when ADX says sideways"
    market = (
        "liquid pairs on 1m-15m bars in ranging markets; stays out of trends (ADX filter) "
        "and out of sudden moves (5-second volatility guard)"
    )
    book_tickers = True  # feeds the volatility guard

    def __init__(self, params: VwapReversionParams, ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        step_ms = interval_ms(ctx.interval)
        if step_ms is None or step_ms >= _DAY_MS:
            raise ValueError(f"vwap_reversion needs intraday bars, not {ctx.interval}")
        if params.adx_exit < params.adx_max:
            raise ValueError("adx_exit must be at least adx_max")
        self.vwap = SessionVWAP(band_mult=params.band_mult)
        self.adx = ADX(params.adx_period)
        self.guard = WindowedMove(int(params.guard_window_s * 1000))
        # History must reach back to the session start, or the VWAP would be a partial one.
        self.warmup_bars = _DAY_MS // step_ms + 2 * params.adx_period
        self._guard_limit = params.guard_max_move_pct / 100.0
        self._min_band = params.min_band_bps / 10_000.0
        self._session_start_ms = -1
        self._session_bars = 0
        self._anchored = False  # the VWAP has seen its session's first bar
        self._last_tick_ms = 0
        self.stance = Stance()

    def on_book(self, book: BookTicker) -> None:
        self._tick(book.ts_ms, (float(book.bid_price) + float(book.ask_price)) * 0.5)

    def _tick(self, ts_ms: int, price: float) -> float:
        # Books and bars come from different streams; the guard needs non-decreasing time.
        if ts_ms < self._last_tick_ms:
            ts_ms = self._last_tick_ms
        self._last_tick_ms = ts_ms
        return self.guard.update(ts_ms, price)

    def on_bar(self, bar: Kline) -> None:
        high = float(bar.high)
        low = float(bar.low)
        close = float(bar.close)
        open_ms = bar.open_time_ms
        session = open_ms - open_ms % _DAY_MS
        new_session = session != self._session_start_ms
        if new_session:
            self._session_start_ms = session
            self._session_bars = 0
            self._anchored = open_ms == session
        self._session_bars += 1
        vwap = self.vwap.update(open_ms, high, low, close, float(bar.volume))
        adx = self.adx.update(high, low, close)
        move = self._tick(bar.close_time_ms, close)
        ctx = self.ctx
        stance = self.stance
        if stance.side != FLAT:
            if new_session:
                stance.exit(ctx, "session_end")
            elif adx > self.params.adx_exit:
                stance.exit(ctx, f"trend: ADX {adx:.1f} > {self.params.adx_exit}")
            elif (close >= vwap) if stance.side == LONG else (close <= vwap):
                stance.exit(ctx, f"reverted to VWAP {vwap:.8g}")
            return
        vwap_module = self.vwap
        std = vwap_module.std
        if not (
            self._anchored
            and self.adx.ready
            and vwap_module.ready
            and self._session_bars >= self.params.min_session_bars
            and adx < self.params.adx_max
            and std >= vwap * self._min_band
        ):
            return
        lower = vwap_module.lower
        upper = vwap_module.upper
        if close >= lower and (close <= upper or not self.params.allow_short):
            return
        if not move <= self._guard_limit:
            return  # a sudden move (or no full guard window seen yet): no fading it
        stretch = abs(close - vwap) / std
        band = self.params.band_mult
        confidence = min(1.0, 0.5 + 0.5 * (stretch - band) / band)
        tags = ("vwap_band", f"adx={adx:.1f}")
        if close < lower:
            signal = ctx.enter_long(
                f"close {close:.8g} below VWAP band {lower:.8g}", confidence=confidence, tags=tags
            )
            side = LONG
        else:
            signal = ctx.enter_short(
                f"close {close:.8g} above VWAP band {upper:.8g}", confidence=confidence, tags=tags
            )
            side = SHORT
        stance.entered(signal, side)

    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        self.stance.on_order(event, self.ctx.position)

    def snapshot(self) -> dict[str, Any]:
        return {
            "vwap": self.vwap.snapshot(),
            "adx": self.adx.snapshot(),
            "guard": self.guard.snapshot(),
            "session_start_ms": self._session_start_ms,
            "session_bars": self._session_bars,
            "anchored": self._anchored,
            "last_tick_ms": self._last_tick_ms,
            "stance": self.stance.snapshot(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.vwap.restore(state["vwap"])
        self.adx.restore(state["adx"])
        self.guard.restore(state["guard"])
        self._session_start_ms = int(state["session_start_ms"])
        self._session_bars = int(state["session_bars"])
        self._anchored = bool(state["anchored"])
        self._last_tick_ms = int(state["last_tick_ms"])
        self.stance.restore(state["stance"])
