"""Kelly sizing: the growth-optimal fraction of equity from the win rate and payoff of the
instance's recent closed trades, scaled down (fractional Kelly) and capped.

Over the last `window` trades: p = wins / n, where a win has pnl > 0; the payoff
b = mean(return_pct of wins) / mean(|return_pct| of losses), where a loss has pnl < 0; and
f* = p - (1 - p) / b. A break-even trade (pnl == 0) counts in n but neither as a win nor in the
loss mean: it lowers the win rate without shrinking the average loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from app.domain import Signal
from strategies.sizing.base import check_in_range, entry_market, fmt, size_for, zero_size
from strategies.trade.state import ClosedTrade, PositionSize, Prices, TradeState

__all__ = ["Kelly", "KellyEstimate"]


@dataclass(frozen=True, slots=True)
class KellyEstimate:
    """The win rate and payoff of a run of closed trades, and the Kelly fraction they imply."""

    trades: int
    wins: int
    losses: int
    win_rate: float  # p; NaN without trades
    payoff: float  # b; inf without losses, 0 without wins

    @classmethod
    def of(cls, trades: Sequence[ClosedTrade]) -> KellyEstimate:
        win_returns = [trade.return_pct for trade in trades if trade.pnl > 0]
        loss_returns = [abs(trade.return_pct) for trade in trades if trade.pnl < 0]
        mean_win = fmean(win_returns) if win_returns else 0.0
        mean_loss = fmean(loss_returns) if loss_returns else 0.0
        if math.isnan(mean_win) or math.isnan(mean_loss):
            payoff = math.nan
        elif mean_win <= 0:
            payoff = 0.0
        elif mean_loss == 0:
            # Losses that cost nothing (or none at all): every bet's downside is nil.
            payoff = math.inf
        else:
            payoff = mean_win / mean_loss
        win_rate = len(win_returns) / len(trades) if trades else math.nan
        return cls(len(trades), len(win_returns), len(loss_returns), win_rate, payoff)

    @property
    def optimal_fraction(self) -> float:
        """f* = p - (1 - p) / b: p without losses (b = inf), -inf without wins (b = 0)."""
        if self.payoff == 0:
            return -math.inf
        return self.win_rate - (1 - self.win_rate) / self.payoff


@dataclass(frozen=True, slots=True)
class Kelly:
    """Enter min(cap, fraction x f*) of equity, f* estimated from the last `window` trades;
    `fallback_fraction` of equity until `min_trades` trades are known (0: no entry then)."""

    fraction: float = 0.5
    cap: float = 0.25
    window: int = 50
    min_trades: int = 20
    fallback_fraction: float = 0.01
    name: str = "kelly"

    def __post_init__(self) -> None:
        check_in_range("fraction", self.fraction, 0.0, 1.0, low_open=True)
        check_in_range("cap", self.cap, 0.0, 1.0, low_open=True)
        if not self.window >= 1:
            raise ValueError(f"window must be at least 1, got {self.window}")
        if not 1 <= self.min_trades <= self.window:
            raise ValueError(
                f"min_trades must be in [1, window={self.window}], got {self.min_trades}"
            )
        check_in_range("fallback_fraction", self.fallback_fraction, 0.0, 1.0, low_open=False)

    def compute_size(self, signal: Signal, state: TradeState, prices: Prices) -> PositionSize:
        market = entry_market(self.name, signal, state, prices)
        if isinstance(market, PositionSize):
            return market
        equity = state.equity
        recent = state.trades[-self.window :]
        if len(recent) < self.min_trades:
            too_few = f"only {len(recent)} < min_trades {self.min_trades} trades"
            if self.fallback_fraction == 0:
                return zero_size(self.name, too_few)
            notional = self.fallback_fraction * equity
            why = f"{too_few}, fallback {fmt(self.fallback_fraction)} of equity {fmt(equity)}"
            return size_for(self.name, notional, market, why)

        estimate = KellyEstimate.of(recent)
        f_star = estimate.optimal_fraction
        stats = f"p={fmt(estimate.win_rate)}, b={fmt(estimate.payoff)}, n={estimate.trades}"
        if estimate.wins == 0:
            return zero_size(self.name, f"no edge (no wins in {estimate.trades} trades)")
        if math.isnan(f_star):
            return zero_size(self.name, f"f* not finite ({stats})")
        if not f_star > 0:
            return zero_size(self.name, f"no edge (f*={fmt(f_star)}; {stats})")
        scaled = self.fraction * f_star
        used = min(self.cap, scaled)
        capped = f", capped at {fmt(self.cap)}" if scaled > self.cap else ""
        why = (
            f"f*={fmt(f_star)} x {fmt(self.fraction)} = {fmt(scaled)}{capped}"
            f" of equity {fmt(equity)} ({stats})"
        )
        return size_for(self.name, used * equity, market, why)
