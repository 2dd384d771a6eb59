"""`momentum`: ride trends — moving-average alignment confirmed by a channel breakout.

Meant for trending markets and trend-prone pairs on 15m-4h bars (it works on 1m, with more
whipsaw). In a range it buys highs and sells lows and loses the spread each time: pair it with
a regime filter, or run `vwap_reversion` there instead.

- Entry long when the fast EMA is above the slow EMA and the bar closes above the highest high
  of the previous `breakout_bars` bars (short: fast below slow and a close below the lowest
  low). With `require_breakout = false` the EMA cross alone enters.
- Exit long when the fast EMA falls back below the slow one, or the close breaks the lowest low
  of the previous `exit_bars` bars (a shorter channel: let winners run, cut reversals fast).
- Confidence is the EMA spread relative to `full_confidence_pct`: 1.0 at or beyond it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from app.domain import Kline, OrderDenied, OrderUpdated
from strategies.base import Strategy, StrategyParams
from strategies.context import StrategyContext
from strategies.indicators import EMA, Donchian
from strategies.stance import LONG, SHORT, Stance

__all__ = ["Momentum", "MomentumParams"]


class MomentumParams(StrategyParams):
    fast: int = Field(default=20, ge=1, description="fast EMA period in bars")
    slow: int = Field(default=50, ge=2, description="slow EMA period in bars")
    breakout_bars: int = Field(default=20, ge=1, description="entry channel lookback in bars")
    exit_bars: int = Field(default=10, ge=1, description="exit channel lookback in bars")
    require_breakout: bool = Field(
        default=True, description="need a channel breakout, not just the EMA alignment"
    )
    full_confidence_pct: float = Field(
        default=1.0, gt=0, description="EMA spread (% of the slow EMA) that gives confidence 1"
    )
    allow_short: bool = Field(default=True, description="also follow downtrends")


class Momentum(Strategy[MomentumParams]):
    name = "momentum"
    params_model = MomentumParams
    summary = "trend following: fast/slow EMA alignment plus a channel breakout"
    market = "trending markets on 15m-4h bars; loses to whipsaw in ranges"

    def __init__(self, params: MomentumParams, ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        if params.fast >= params.slow:
            raise ValueError("fast must be shorter than slow")
        self.fast = EMA(params.fast)
        self.slow = EMA(params.slow)
        self.entry_channel = Donchian(params.breakout_bars)
        self.exit_channel = Donchian(params.exit_bars)
        # The channels look at the bars *before* the current one, hence the extra bar.
        self.warmup_bars = max(params.slow, params.breakout_bars + 1, params.exit_bars + 1)
        self._full = params.full_confidence_pct / 100.0
        self.stance = Stance()

    def on_bar(self, bar: Kline) -> None:
        high = float(bar.high)
        low = float(bar.low)
        close = float(bar.close)
        # Channels of the previous bars, read before this bar joins them.
        entry = self.entry_channel
        leave = self.exit_channel
        entry_high = entry.upper
        entry_low = entry.lower
        exit_high = leave.upper
        exit_low = leave.lower
        entry.update(high, low)
        leave.update(high, low)
        fast = self.fast.update(close)
        slow = self.slow.update(close)
        if slow != slow:  # nan: the slow EMA is not seeded yet
            return
        stance = self.stance
        ctx = self.ctx
        if stance.side == LONG:
            if fast < slow:
                stance.exit(ctx, "fast EMA below slow")
            elif close < exit_low:
                stance.exit(ctx, f"close below {self.params.exit_bars}-bar low {exit_low:.8g}")
            return
        if stance.side == SHORT:
            if fast > slow:
                stance.exit(ctx, "fast EMA above slow")
            elif close > exit_high:
                stance.exit(ctx, f"close above {self.params.exit_bars}-bar high {exit_high:.8g}")
            return
        breakout = self.params.require_breakout
        confidence = min(1.0, abs(fast - slow) / slow / self._full)
        if fast > slow and (not breakout or close > entry_high):
            signal = ctx.enter_long(
                f"uptrend: EMA {fast:.8g} > {slow:.8g}"
                + (f", close above {entry_high:.8g}" if breakout else ""),
                confidence=confidence,
                tags=("momentum",),
            )
            side = LONG
        elif self.params.allow_short and fast < slow and (not breakout or close < entry_low):
            signal = ctx.enter_short(
                f"downtrend: EMA {fast:.8g} < {slow:.8g}"
                + (f", close below {entry_low:.8g}" if breakout else ""),
                confidence=confidence,
                tags=("momentum",),
            )
            side = SHORT
        else:
            return
        stance.entered(signal, side)

    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        self.stance.on_order(event, self.ctx.position)

    def snapshot(self) -> dict[str, Any]:
        return {
            "fast": self.fast.snapshot(),
            "slow": self.slow.snapshot(),
            "entry_channel": self.entry_channel.snapshot(),
            "exit_channel": self.exit_channel.snapshot(),
            "stance": self.stance.snapshot(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.fast.restore(state["fast"])
        self.slow.restore(state["slow"])
        self.entry_channel.restore(state["entry_channel"])
        self.exit_channel.restore(state["exit_channel"])
        self.stance.restore(state["stance"])
