"""`rsi_reversion`: buy the turn out of oversold, sell the turn out of overbought (Wilder RSI).

Meant for ranging markets, or as an `ensemble` detector next to a trend filter; in a strong
trend the RSI stays pinned and every turn is faded too early.

- Entry long when the RSI crosses up through `oversold`: below it on the previous bar, at or
  above it now (short: above `overbought` before, at or below it now, when `allow_short`).
- Exit long on the first later bar whose RSI is at or above `exit_level` (short: at or below).
  A level, not a cross: a bar that jumps from oversold straight past the exit level still
  exits on the next bar rather than waiting for the next crossing.
- Confidence is 1: the crossing is the whole signal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from app.domain import Kline, OrderDenied, OrderUpdated
from strategies.base import Strategy, StrategyParams
from strategies.context import StrategyContext
from strategies.indicators import RSI
from strategies.stance import LONG, SHORT, Stance

__all__ = ["RsiReversion", "RsiReversionParams"]


class RsiReversionParams(StrategyParams):
    period: int = Field(default=14, ge=1, description="RSI lookback in bars")
    oversold: float = Field(default=30.0, gt=0, lt=100, description="long on the cross up here")
    overbought: float = Field(default=70.0, gt=0, lt=100, description="short on the cross down")
    exit_level: float = Field(default=50.0, gt=0, lt=100, description="leave at this RSI")
    allow_short: bool = Field(default=True, description="also fade overbought turns")

    @model_validator(mode="after")
    def _levels_in_order(self) -> RsiReversionParams:
        if not self.oversold < self.exit_level < self.overbought:
            raise ValueError("levels must satisfy oversold < exit_level < overbought")
        return self


class RsiReversion(Strategy[RsiReversionParams]):
    name = "rsi_reversion"
    params_model = RsiReversionParams
    summary = "long on the RSI turn up out of oversold, short on the turn down out of overbought"
    market = "ranging markets, or as an ensemble detector; fades trends too early"

    def __init__(self, params: RsiReversionParams, ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.rsi = RSI(params.period)
        # The RSI is ready at bar period + 1; a cross needs the bar before it as well.
        self.warmup_bars = params.period + 2
        self._previous = math.nan
        self.stance = Stance()

    def on_bar(self, bar: Kline) -> None:
        rsi = self.rsi.update(float(bar.close))
        previous = self._previous
        self._previous = rsi
        if rsi != rsi:
            return
        params = self.params
        stance = self.stance
        ctx = self.ctx
        if stance.side == LONG:
            if rsi >= params.exit_level:
                stance.exit(ctx, f"RSI {rsi:.4g} reached {params.exit_level:g}")
            return
        if stance.side == SHORT:
            if rsi <= params.exit_level:
                stance.exit(ctx, f"RSI {rsi:.4g} reached {params.exit_level:g}")
            return
        if previous != previous:
            return
        if previous < params.oversold <= rsi:
            reason = f"RSI {previous:.4g} -> {rsi:.4g} up through {params.oversold:g}"
            stance.entered(ctx.enter_long(reason, tags=("rsi_reversion",)), LONG)
        elif params.allow_short and previous > params.overbought >= rsi:
            reason = f"RSI {previous:.4g} -> {rsi:.4g} down through {params.overbought:g}"
            stance.entered(ctx.enter_short(reason, tags=("rsi_reversion",)), SHORT)

    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        self.stance.on_order(event, self.ctx.position)

    def snapshot(self) -> dict[str, Any]:
        previous = self._previous
        return {
            "rsi": self.rsi.snapshot(),
            "previous": None if previous != previous else previous,
            "stance": self.stance.snapshot(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.rsi.restore(state["rsi"])
        previous = state["previous"]
        self._previous = math.nan if previous is None else float(previous)
        self.stance.restore(state["stance"])
