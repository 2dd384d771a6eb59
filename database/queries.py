"""What the daemon reads back from the database at start-up (and `tradebus reconcile`).

`load_recovery(engine)` returns, in domain types, everything reconciliation with the exchange
starts from: the orders that may still change (not final, or final with fewer recorded fills
than their filled quantity: a futures answer carries no trades, they come from the stream),
the fills already recorded for those orders, the highest recorded trade id per symbol, the
net position of every strategy instance, the balances last seen and the last trading state.

Synchronous, like every engine call: the caller runs it in a worker thread. Finished orders are
only aggregated in SQL, never read back one by one, so 100,000 of them cost one query
(`bench/restart.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Float, cast, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlmodel import col

from app.domain import Balance, Fill, OrderStatus, OrderUpdated, TradingStateChanged
from app.domain.positions import PositionState
from database.mapping import position_from_row, trading_state_from_row
from database.models import BalanceRow, FillRow, OrderRow, PositionRow, TradingStateRow
from database.order_mapping import fill_from_row, order_from_row

__all__ = ["IN_LIST_MAX", "Recovery", "chunks", "load_recovery"]

IN_LIST_MAX = 500


@dataclass(frozen=True, slots=True)
class Recovery:
    orders: tuple[OrderUpdated, ...] = ()
    fills: dict[str, tuple[Fill, ...]] = field(default_factory=dict)
    last_trade_ids: dict[str, int] = field(default_factory=dict)
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    # The same positions whole: quantity, average entry price, realized PnL.
    held: dict[tuple[str, str], PositionState] = field(default_factory=dict)
    balances: tuple[Balance, ...] = ()
    trading_state: TradingStateChanged | None = None
    # Newest time an intent was recorded without an answer (ms): a request sent just before a
    # crash may still reach the exchange until its recvWindow has passed.
    newest_pending_intent_ms: int | None = None
    finished_orders: int = 0
    journaled_in_database: tuple[str, ...] = ()


def load_recovery(engine: Engine, journaled: Sequence[OrderUpdated] = ()) -> Recovery:
    """`journaled`: the intent journal's entries (`database.intent_journal`); those the
    database lacks (the daemon died before the recorder wrote them) count as PENDING_NEW
    orders, the others are listed in `Recovery.journaled_in_database` to be forgotten."""
    with Session(engine) as session:
        open_rows = list(session.execute(select(OrderRow).where(col(OrderRow.is_open))).scalars())
        underfilled = _underfilled(session)
        in_database: set[str] = set()
        for chunk in chunks([o.client_order_id for o in journaled]):
            in_database.update(
                session.execute(
                    select(col(OrderRow.client_order_id)).where(
                        col(OrderRow.client_order_id).in_(chunk)
                    )
                ).scalars()
            )
        rows = sorted(open_rows + underfilled, key=lambda r: (r.symbol, r.client_order_id))
        ids = [row.client_order_id for row in rows]
        fills: dict[str, list[Fill]] = defaultdict(list)
        for chunk in chunks(ids):
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
        held = {
            (row.strategy, row.symbol): position_from_row(row)
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
    only_journaled = [o for o in journaled if o.client_order_id not in in_database]
    pending = [row.created_ms for row in open_rows if row.status == OrderStatus.PENDING_NEW.value]
    pending += [o.ts_ms for o in only_journaled]
    orders = [order_from_row(row) for row in rows] + only_journaled
    return Recovery(
        orders=tuple(sorted(orders, key=lambda o: (o.symbol, o.client_order_id))),
        journaled_in_database=tuple(sorted(in_database)),
        fills={cid: tuple(items) for cid, items in fills.items()},
        last_trade_ids=last_trade_ids,
        positions={key: position.quantity for key, position in held.items()},
        held=held,
        balances=balances,
        trading_state=None if state_row is None else trading_state_from_row(state_row),
        newest_pending_intent_ms=max(pending) if pending else None,
        finished_orders=int(finished),
    )


def _underfilled(session: Session) -> list[OrderRow]:
    """Finished orders whose recorded fills add up to less than their filled quantity.

    The database narrows it down: on PostgreSQL exactly (NUMERIC sums); on SQLite, where the
    amounts are exact text, through REAL sums with a relative margin of 1e-12 (a float sum of
    a thousand fills errs by ~1e-13), and every candidate is then checked exactly here. So the
    100,000 finished orders of a long-running instance cost one aggregate query, not 100,000
    rows read back."""
    postgres = session.get_bind().dialect.name == "postgresql"
    quantity = col(FillRow.quantity) if postgres else cast(col(FillRow.quantity), Float)
    filled = (
        col(OrderRow.filled_quantity) if postgres else cast(col(OrderRow.filled_quantity), Float)
    )
    sums = (
        select(col(FillRow.client_order_id).label("cid"), func.sum(quantity).label("recorded"))
        .group_by(col(FillRow.client_order_id))
        .subquery()
    )
    zero = Decimal(0) if postgres else 0.0
    recorded = func.coalesce(sums.c.recorded, zero)
    short = recorded < filled if postgres else recorded < filled * (1 - 1e-12)
    candidates = list(
        session.execute(
            select(OrderRow)
            .outerjoin(sums, sums.c.cid == col(OrderRow.client_order_id))
            .where(~col(OrderRow.is_open), filled > zero, short)
        ).scalars()
    )
    if postgres or not candidates:
        return candidates
    exact: dict[str, Decimal] = defaultdict(Decimal)
    ids = [row.client_order_id for row in candidates]
    for chunk in chunks(ids):
        statement = select(col(FillRow.client_order_id), col(FillRow.quantity)).where(
            col(FillRow.client_order_id).in_(chunk)
        )
        for client_order_id, amount in session.execute(statement).all():
            exact[client_order_id] += amount
    return [row for row in candidates if exact[row.client_order_id] < row.filled_quantity]


def chunks(items: list[str], size: int = IN_LIST_MAX) -> list[list[str]]:
    """`items` in slices short enough for one SQL ``IN (...)`` list."""
    return [items[start : start + size] for start in range(0, len(items), size)]
