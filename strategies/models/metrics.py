"""The numbers a `StrategyModel` sees, and the only place where prices become model inputs.

Every metric is a ratio, a percentage, a count or a z-score, so a model's weights mean the same
on any symbol and at any price level, and a model cannot learn a price. An unknown value is
NaN (no market data yet, no closed trade yet); the model decides how to fill it.

Signal metrics (`signal_metrics`), per candidate signal:
- confidence: the signal's own confidence, 0..1.
- direction: +1 for a long entry, -1 for a short entry (NaN for an exit).
- atr_pct: ATR as a percentage of the last close.
- annualised_vol: per-bar volatility of log returns scaled to a year, as a fraction (0.6 = 60%).
- adx: the ADX, 0..100.
- last_return_pct: the last bar's log return x 100.
- return_z: the last log return divided by the per-bar volatility.

Strategy metrics (`strategy_metrics`), from the account:
- trades: closed trades in the window (the last `window` trades).
- win_rate: the fraction of those that made money (pnl > 0; a break-even trade is no win).
- payoff: mean return % of the winners / mean |return %| of the losers (pnl < 0); NaN unless
  the window holds both.
- consecutive_losses: losing trades in a row ending with the latest, through every trade held
  (a streak is not cut short by the window); a break-even trade ends the streak.
- drawdown_pct: equity below its high-water mark, in percent.
- open_positions: positions open now.
"""

from __future__ import annotations

import math

from app.domain import Signal, SignalAction
from strategies.models.base import ModelState
from strategies.sizing.kelly import KellyEstimate
from strategies.trade.state import SymbolMarket, TradeState

__all__ = [
    "SIGNAL_METRICS",
    "STRATEGY_METRICS",
    "model_state",
    "signal_metrics",
    "strategy_metrics",
]

SIGNAL_METRICS: tuple[str, ...] = (
    "confidence",
    "direction",
    "atr_pct",
    "annualised_vol",
    "adx",
    "last_return_pct",
    "return_z",
)
STRATEGY_METRICS: tuple[str, ...] = (
    "trades",
    "win_rate",
    "payoff",
    "consecutive_losses",
    "drawdown_pct",
    "open_positions",
)

_DIRECTION = {SignalAction.ENTER_LONG: 1.0, SignalAction.ENTER_SHORT: -1.0}


def _known(value: float) -> float:
    """`value`, or NaN when it is not finite (an infinity is as unknown as a NaN)."""
    return value if math.isfinite(value) else math.nan


def signal_metrics(signal: Signal, market: SymbolMarket | None) -> dict[str, float]:
    """The metrics of `signal` in `market` (its symbol's market; None when not known yet)."""
    metrics = dict.fromkeys(SIGNAL_METRICS, math.nan)
    metrics["confidence"] = _known(float(signal.confidence))
    metrics["direction"] = _DIRECTION.get(signal.action, math.nan)
    if market is None:
        return metrics
    if market.symbol != signal.symbol:
        raise ValueError(f"market of {market.symbol} given for a {signal.symbol} signal")
    metrics["atr_pct"] = _known(market.atr_pct)
    # sqrt of a negative bars-per-year would raise; a nonsensical scale is an unknown value.
    if market.bars_per_year >= 0:
        metrics["annualised_vol"] = _known(market.annualised_volatility)
    metrics["adx"] = _known(market.adx)
    if market.returns:
        last = market.returns[-1]
        metrics["last_return_pct"] = _known(last * 100)
        if market.volatility > 0:
            metrics["return_z"] = _known(last / market.volatility)
    return metrics


def strategy_metrics(state: TradeState, window: int = 50) -> dict[str, float]:
    """The account's metrics; win_rate and payoff judge only the last `window` trades."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    recent = state.trades[-window:]
    estimate = KellyEstimate.of(recent)
    # The model gets a payoff only when both wins and costly losses exist (NaN, not 0 or inf).
    payoff = estimate.payoff if estimate.wins and math.isfinite(estimate.payoff) else math.nan
    streak = 0
    for trade in reversed(state.trades):
        if trade.pnl >= 0:
            break
        streak += 1
    return {
        "trades": float(len(recent)),
        "win_rate": estimate.win_rate,
        "payoff": payoff,
        "consecutive_losses": float(streak),
        "drawdown_pct": _known(state.drawdown_pct),
        "open_positions": float(len(state.positions)),
    }


def model_state(state: TradeState, symbol: str, *, waited_bars: int = 0) -> ModelState:
    """The price-free view of `state` for a candidate entry in `symbol`."""
    open_long = sum(1 for position in state.positions if position.side == "long")
    return ModelState(
        now_ms=state.now_ms,
        open_positions=len(state.positions),
        open_long=open_long,
        open_short=len(state.positions) - open_long,
        same_symbol_positions=sum(1 for p in state.positions if p.symbol == symbol),
        drawdown_pct=_known(state.drawdown_pct),
        waited_bars=waited_bars,
    )
