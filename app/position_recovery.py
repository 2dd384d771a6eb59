"""The strategy positions start-up reconciliation settles on, so the database, the risk book and
the exchange agree before trading resumes.

Start from what the database held per (strategy, symbol), add the fills it missed (the report's
synthetic updates, by the same rule the recorder books them with), then, under the
``trust_exchange`` policy, move each mismatched symbol to the exchange's quantity:

- a position the exchange holds less of (closed or reduced by hand, liquidated) is taken off
  the instances that hold it, in name order, down to zero;
- what remains (the exchange holds more, or the other way round) goes to the risk gate's own
  instance (``risk.gate.FOREIGN``): no strategy manages it, the gate counts it in exposure and
  an operator's flatten closes it;
- spot: the position becomes what the account holds, never below zero.

The ``halt`` policy changes nothing here (the daemon halts for a person to look).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from app.domain import MarketType, PositionsReconciled, StrategyPosition
from app.domain.positions import PositionState
from database.mapping import apply_fill
from executor.reconciliation import ReconcileReport
from executor.reconciliation_diff import PositionMismatch
from risk.gate import FOREIGN

__all__ = ["settle_positions"]

_ZERO = Decimal(0)
Key = tuple[str, str]


def settle_positions(
    held: Mapping[Key, PositionState], report: ReconcileReport, *, trust_exchange: bool
) -> PositionsReconciled:
    positions = dict(held)
    folded: list[tuple[str, int]] = []
    for event in report.events:
        if event.fill is None:
            continue
        key = (event.strategy, event.symbol)
        positions[key] = apply_fill(positions.get(key, PositionState()), event.fill)
        folded.append((event.fill.symbol, event.fill.trade_id))
    corrections: list[str] = []
    if trust_exchange:
        entry_prices = {p.symbol: p.entry_price for p in report.positions}
        for mismatch in report.position_mismatches:
            target = _target(mismatch, report.market)
            corrections += _move_to(positions, mismatch.symbol, target, entry_prices)
    return PositionsReconciled(
        ts_ms=report.ts_ms,
        positions=tuple(
            StrategyPosition(strategy, symbol, p.quantity, p.average_price)
            for (strategy, symbol), p in sorted(positions.items())
            if p.quantity != 0
        ),
        corrections=tuple(corrections),
        folded_trades=tuple(folded),
    )


def _target(mismatch: PositionMismatch, market: MarketType) -> Decimal:
    if market is MarketType.USDM:
        return mismatch.exchange
    # Spot: a mismatch means the account holds less than the position (or it went below 0).
    return max(_ZERO, min(mismatch.expected, mismatch.exchange))


def _move_to(
    positions: dict[Key, PositionState],
    symbol: str,
    target: Decimal,
    entry_prices: Mapping[str, Decimal],
) -> list[str]:
    before = {key: p.quantity for key, p in positions.items() if key[1] == symbol}
    remaining = target - sum(before.values(), _ZERO)
    for key in sorted(before):
        position = positions[key]
        # Only a position on the other side of the change can absorb it, down to zero.
        if remaining == 0 or position.quantity == 0 or (position.quantity > 0) == (remaining > 0):
            continue
        taken = min(abs(position.quantity), abs(remaining))
        step = taken if remaining > 0 else -taken
        quantity = position.quantity + step or _ZERO  # "0", not "0.0", in the corrections
        average = position.average_price if quantity else _ZERO
        positions[key] = PositionState(quantity, average, position.realized_pnl)
        remaining -= step
    if remaining:
        key = (FOREIGN, symbol)
        held = positions.get(key, PositionState())
        quantity = held.quantity + remaining
        average = entry_prices.get(symbol) or held.average_price
        positions[key] = PositionState(quantity, average if quantity else _ZERO, held.realized_pnl)
    return [
        f"{symbol}: {strategy} {before.get((strategy, s), _ZERO)} -> {p.quantity} (exchange)"
        for (strategy, s), p in sorted(positions.items())
        if s == symbol and p.quantity != before.get((strategy, s), _ZERO)
    ]
