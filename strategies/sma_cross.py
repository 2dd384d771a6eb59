"""`sma_cross`: the textbook moving-average crossover, a small trend detector.

Meant as a building block (an `ensemble` detector) or for trending markets on 15m-4h bars; in
a range it crosses back and forth and pays the spread each time.

- Entry long when the fast SMA closes above the slow SMA after closing at or below it on the
  previous bar (short: below after at or above, when `allow_short`).
- Exit on the opposite cross; with `allow_short` the same bar also enters the other side, so
  the detector is always on the side of the latest cross.
- Confidence is 1: a cross is a yes/no event, its size says little about what follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from app.domain import Kline, OrderDenied, OrderUpdated
from strategies.base import Strategy, StrategyParams
from strategies.context import StrategyContext
from strategies.indicators import SMA
from strategies.stance import FLAT, LONG, SHORT, Stance

__all__ = ["SmaCross", "SmaCrossParams"]


class SmaCrossParams(StrategyParams):
    fast: int = Field(default=10, ge=1, description="fast SMA period in bars")
    slow: int = Field(default=30, ge=2, description="slow SMA period in bars")
    allow_short: bool = Field(default=True, description="also go short on the cross below")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be shorter than slow")
        return self


class SmaCross(Strategy[SmaCrossParams]):
    name = "sma_cross"
    params_model = SmaCrossParams
    summary = "fast/slow SMA crossover: long on the cross above, short on the cross below"
    market = "trending markets on 15m-4h bars, or as an ensemble detector; whipsaws in ranges"

    def __init__(self, params: SmaCrossParams, ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.fast = SMA(params.fast)
        self.slow = SMA(params.slow)
        # A cross compares this bar with the previous one, so one bar beyond the slow SMA.
        self.warmup_bars = params.slow + 1
        self._previous_diff = math.nan
        self.stance = Stance()

    def on_bar(self, bar: Kline) -> None:
        close = float(bar.close)
        fast = self.fast.update(close)
        slow = self.slow.update(close)
        previous = self._previous_diff
        diff = fast - slow
        self._previous_diff = diff
        if previous != previous or diff != diff:  # nan: not both SMAs seen a full window yet
            return
        if diff > 0 and previous <= 0:
            self._cross(LONG, f"SMA{self.params.fast} {fast:.8g} crossed above {slow:.8g}")
        elif diff < 0 and previous >= 0:
            self._cross(SHORT, f"SMA{self.params.fast} {fast:.8g} crossed below {slow:.8g}")

    def _cross(self, side: int, reason: str) -> None:
        stance = self.stance
        ctx = self.ctx
        if stance.side == -side:
            stance.exit(ctx, reason)
        if stance.side != FLAT:
            return
        if side == LONG:
            stance.entered(ctx.enter_long(reason, tags=("sma_cross",)), LONG)
        elif self.params.allow_short:
            stance.entered(ctx.enter_short(reason, tags=("sma_cross",)), SHORT)

    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        self.stance.on_order(event, self.ctx.position)

    def snapshot(self) -> dict[str, Any]:
        previous = self._previous_diff
        return {
            "fast": self.fast.snapshot(),
            "slow": self.slow.snapshot(),
            "previous_diff": None if previous != previous else previous,
            "stance": self.stance.snapshot(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.fast.restore(state["fast"])
        self.slow.restore(state["slow"])
        previous = state["previous_diff"]
        self._previous_diff = math.nan if previous is None else float(previous)
        self.stance.restore(state["stance"])
