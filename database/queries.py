"""What the daemon reads back from the database at start-up (and `tradebus reconcile`).

`load_recovery(engine)` returns, in domain types, everything reconciliation with the exchange
starts from: the orders that may still change (not final, or final with fewer recorded fills
than their filled quantity: a futures answer carries no trades, they come from the stream),
the fills already recorded for those orders, the highest recorded trade id per symbol, the
net position of every strategy instance, the balances last seen and the last trading state.

Synchronous, like every engine call: the caller runs it in a worker thread. Reads use indexed
columns only (`orders.is_open`, `fills.client_order_id`, the fills' unique (symbol, trade_id)),
so a database with 100,000 finished orders costs little more than an empty one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlmodel import col

from app.domain import Balance, Fill, OrderStatus, OrderUpdated, TradingStateChanged
from database.mapping import fill_from_row, order_from_row, trading_state_from_row
from database.models import BalanceRow, FillRow, OrderRow, PositionRow, TradingStateRow

__all__ = ["Recovery", "load_recovery"]


@dataclass(frozen=True, slots=True)
class Recovery:
    orders: tuple[OrderUpdated, ...] = ()
    fills: dict[str, tuple[Fill, ...]] = field(default_factory=dict)
    last_trade_ids: dict[str, int] = field(default_factory=dict)
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    balances: tuple[Balance, ...] = ()
    trading_state: TradingStateChanged | None = None
    # Newest time an intent was recorded without an answer (ms): a request sent just before a
    # crash may still reach the exchange until its recvWindow has passed.
    newest_pending_intent_ms: int | None = None
    finished_orders: int = 0


def load_recovery(engine: Engine) -> Recovery:
    with Session(engine) as session:
        open_rows = list(session.execute(select(OrderRow).where(col(OrderRow.is_open))).scalars())
        recorded = _recorded_quantity(session)
        underfilled = [
            row
            for row in session.execute(
                select(OrderRow).where(
                    ~col(OrderRow.is_open), col(OrderRow.filled_quantity) != Decimal(0)
                )
            ).scalars()
            if recorded.get(row.client_order_id, Decimal(0)) < row.filled_quantity
        ]
        rows = sorted(open_rows + underfilled, key=lambda r: (r.symbol, r.client_order_id))
        ids = [row.client_order_id for row in rows]
        fills: dict[str, list[Fill]] = defaultdict(list)
        for chunk in _chunks(ids, 500):
            statement = (
                select(FillRow)
                .where(col(FillRow.client_order_id).in_(chunk))
                .order_by(col(FillRow.symbol), col(FillRow.trade_id))
            )
            for fill_row in session.execute(statement).scalars():
                fills[fill_row.client_order_id].append(fill_from_row(fill_row))
        last_trade_ids = {
            symbol: int(trade_id)
            for symbol, trade_id in session.execute(
                select(col(FillRow.symbol), func.max(col(FillRow.trade_id))).group_by(
                    col(FillRow.symbol)
                )
            ).all()
        }
        positions = {
            (row.strategy, row.symbol): row.quantity
            for row in session.execute(select(PositionRow)).scalars()
        }
        balances = tuple(
            Balance(asset=row.asset, free=row.free, locked=row.locked)
            for row in session.execute(select(BalanceRow).order_by(col(BalanceRow.asset))).scalars()
        )
        state_row = session.execute(
            select(TradingStateRow).order_by(col(TradingStateRow.id).desc()).limit(1)
        ).scalar_one_or_none()
        finished = session.execute(
            select(func.count()).select_from(OrderRow).where(~col(OrderRow.is_open))
        ).scalar_one()
    pending = [row.created_ms for row in open_rows if row.status == OrderStatus.PENDING_NEW.value]
    return Recovery(
        orders=tuple(order_from_row(row) for row in rows),
        fills={cid: tuple(items) for cid, items in fills.items()},
        last_trade_ids=last_trade_ids,
        positions=positions,
        balances=balances,
        trading_state=None if state_row is None else trading_state_from_row(state_row),
        newest_pending_intent_ms=max(pending) if pending else None,
        finished_orders=int(finished),
    )


def _recorded_quantity(session: Session) -> dict[str, Decimal]:
    """Sum of recorded fill quantities per client id, for finished orders with fills.

    Summed in Python: quantities are exact text on SQLite, where SQL's SUM would go through
    floats. Only orders that report a filled quantity are read."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    statement = (
        select(col(FillRow.client_order_id), col(FillRow.quantity))
        .join(OrderRow, col(OrderRow.client_order_id) == col(FillRow.client_order_id))
        .where(~col(OrderRow.is_open))
    )
    for client_order_id, quantity in session.execute(statement).all():
        totals[client_order_id] += quantity
    return totals


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
