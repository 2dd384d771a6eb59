"""Sizers driven by volatility: a target annualised volatility for the new position, and
risk parity (inverse-volatility shares of one budget) across the open positions and the entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.domain import Signal
from strategies.sizing.base import (
    check_in_range,
    check_positive,
    entry_market,
    fmt,
    has_price,
    size_for,
    zero_size,
)
from strategies.trade.state import PositionSize, Prices, SymbolMarket, TradeState

__all__ = ["RiskParity", "VolatilityTarget"]


@dataclass(frozen=True, slots=True)
class VolatilityTarget:
    """Enter equity x target_vol / the symbol's annualised volatility, at most
    max_leverage x equity (which is also the size when volatility is 0)."""

    target_vol: float = 0.20
    max_leverage: float = 1.0
    name: str = "volatility_target"

    def __post_init__(self) -> None:
        check_positive("target_vol", self.target_vol)
        check_positive("max_leverage", self.max_leverage)

    def compute_size(self, signal: Signal, state: TradeState, prices: Prices) -> PositionSize:
        market = entry_market(self.name, signal, state, prices)
        if isinstance(market, PositionSize):
            return market
        equity = state.equity
        asset_vol = market.annualised_volatility
        if not (asset_vol >= 0 and math.isfinite(asset_vol)):
            return zero_size(self.name, f"volatility unknown ({fmt(asset_vol)})")
        ceiling = self.max_leverage * equity
        cap_reason = f"capped at max_leverage {fmt(self.max_leverage)} x equity {fmt(equity)}"
        if asset_vol == 0:
            return size_for(self.name, ceiling, market, f"volatility 0, {cap_reason}")
        leverage = self.target_vol / asset_vol
        why = (
            f"target {fmt(self.target_vol)} / volatility {fmt(asset_vol)} = {fmt(leverage)}"
            f" x equity {fmt(equity)}"
        )
        if leverage > self.max_leverage:
            return size_for(self.name, ceiling, market, f"{why}, {cap_reason}")
        return size_for(self.name, leverage * equity, market, why)


@dataclass(frozen=True, slots=True)
class RiskParity:
    """Share a budget of gross_fraction x equity among the open positions and the new entry in
    inverse proportion to their per-bar volatility; the entry gets its share, at most what the
    open positions (at their last close) leave of the budget.

    Every open position counts once, even when several hold the same symbol or the entry's.
    """

    gross_fraction: float = 1.0
    name: str = "risk_parity"

    def __post_init__(self) -> None:
        check_in_range("gross_fraction", self.gross_fraction, 0.0, 1.0, low_open=True)

    def compute_size(self, signal: Signal, state: TradeState, prices: Prices) -> PositionSize:
        market = entry_market(self.name, signal, state, prices)
        if isinstance(market, PositionSize):
            return market
        held: list[SymbolMarket] = []
        in_use = 0.0
        for position in state.positions:
            held_market = prices.get(position.symbol)
            if held_market is None or not has_price(held_market):
                return zero_size(self.name, f"no price for open position {position.symbol}")
            held.append(held_market)
            in_use += abs(float(position.quantity)) * held_market.close

        budget = self.gross_fraction * state.equity
        left = budget - in_use
        usage = f"{len(held)} open using {fmt(in_use)} of budget {fmt(budget)}"
        if not left > 0:
            return zero_size(self.name, f"budget used ({usage})")

        inverse_vols: list[float] = []
        for involved in (*held, market):
            vol = involved.volatility
            if not (vol > 0 and math.isfinite(vol)):
                what = "0" if vol == 0 else "unknown"
                return zero_size(self.name, f"volatility of {involved.symbol} {what} ({fmt(vol)})")
            inverse_vols.append(1 / vol)
        share = inverse_vols[-1] / sum(inverse_vols)
        wanted = budget * share
        why = f"share {fmt(share)} of budget {fmt(budget)} = {fmt(wanted)} ({usage})"
        if wanted > left:
            return size_for(self.name, left, market, f"{why}, limited to the {fmt(left)} left")
        return size_for(self.name, wanted, market, why)
