"""Start-up (and periodic) reconciliation: ask the exchange what happened, in domain types.

`reconcile(port, known, symbols, clock)` fetches through the venue port, one call after
another (a deterministic order, and a burst the rate limiter paces):

1. the open orders of every symbol (the symbols asked for plus those of known orders);
2. every known non-final order by origClientOrderId ("does not exist" is an answer);
3. the trades since the last recorded trade id of each symbol that has one (paged), and the
   full trade list of each known order that has fills (to tell recorded fills from missing
   ones) and of each order about to be adopted;
4. balances and (futures) positions.

then hands everything to the pure `reconciliation_diff.diff`, which returns the
`ReconcileReport` (synthetic `order.update` events, adopted and foreign orders, unresolved
orders, unmatched trades, position mismatches, problems). Any failed exchange call other than
a query's "does not exist" raises `ReconciliationFailed`: without the exchange's truth the
daemon must not trade. Nothing is published here: `LiveExecutor.adopt(report)` applies the
report (and `tradebus reconcile --dry-run` can print it without applying).

Applying (`apply_report`, used by `LiveExecutor.adopt`): every known and adopted order is
loaded into the executor's book as the diff rebuilt it, then each synthetic event is applied
to it through `ExecutorCore.apply` — the path every exchange report takes — which publishes
it on `order.update`, stamped, and tells the observers. Applying a report twice publishes
nothing the second time (same statuses are stale, same trade ids are booked once), and the
periodic run (`known_from_book`: the executor's own open orders and booked fills) publishes
only what the executor did not know.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import replace
from typing import TypeVar

import structlog

from app.domain import Clock
from app.domain.orders import Fill, OrderUpdated
from app.errors import NotFoundError, VenueError
from executor.core import ExecutorCore
from executor.reconciliation_diff import (
    NEVER_PLACED,
    ExchangeView,
    KnownState,
    PositionMismatch,
    ReconcileReport,
    RestoredOrder,
    Unresolved,
    diff,
    is_our_client_id,
)
from executor.tracked import OrderBook
from executor.venue_port import VenuePort

__all__ = [
    "NEVER_PLACED",
    "ExchangeView",
    "KnownState",
    "PositionMismatch",
    "ReconcileReport",
    "ReconciliationFailed",
    "RestoredOrder",
    "Unresolved",
    "apply_report",
    "fetch_view",
    "known_from_book",
    "reconcile",
]

log = structlog.get_logger("executor.reconciliation")

_T = TypeVar("_T")


class ReconciliationFailed(Exception):
    """An exchange call reconciliation needs failed: the exchange's truth is unknown."""


async def reconcile(
    port: VenuePort,
    known: KnownState,
    symbols: Iterable[str],
    clock: Clock,
    *,
    base_assets: Mapping[str, str] | None = None,
) -> ReconcileReport:
    """The difference between `known` and the exchange. `base_assets`: spot symbol → base
    asset (from exchange info) for the balance check; guessed from the name when absent."""
    view = await fetch_view(port, known, symbols)
    report = diff(known, view, market=port.market, now_ms=clock.now_ms(), base_assets=base_assets)
    log.info("reconciliation_done", market=port.market.value, **report.summary())
    return report


async def fetch_view(port: VenuePort, known: KnownState, symbols: Iterable[str]) -> ExchangeView:
    names = sorted(set(symbols) | {o.symbol for o in known.orders})
    open_orders: dict[str, tuple[OrderUpdated, ...]] = {}
    for symbol in names:
        found = await _call(port.open_orders(symbol), f"open orders of {symbol}")
        open_orders[symbol] = tuple(found)

    answers: dict[str, OrderUpdated | None] = {}
    order_trades: dict[str, tuple[Fill, ...]] = {}
    for order in sorted(known.orders, key=lambda o: (o.symbol, o.client_order_id)):
        cid = order.client_order_id
        try:
            answer: OrderUpdated | None = await port.query(order.symbol, cid)
        except NotFoundError:
            answer = None
        except Exception as error:
            raise ReconciliationFailed(f"query of order {cid}: {_text(error)}") from error
        answers[cid] = answer
        if answer is None:
            continue
        exchange_id = answer.exchange_order_id or order.exchange_order_id
        if exchange_id is not None and max(answer.filled_quantity, order.filled_quantity) > 0:
            trades = await _call(port.trades(order.symbol, exchange_id), f"trades of {cid}")
            order_trades[cid] = tuple(trades)

    known_ids = set(answers) | known.other_ids
    for symbol in names:
        for report in open_orders[symbol]:
            cid = report.client_order_id
            if (
                cid not in known_ids
                and is_our_client_id(known.client_id_prefix, cid)
                and report.exchange_order_id is not None
                and report.filled_quantity > 0
            ):
                trades = await _call(
                    port.trades(symbol, report.exchange_order_id), f"trades of {cid}"
                )
                order_trades[cid] = tuple(trades)

    trades_since: dict[str, tuple[Fill, ...]] = {}
    for symbol in names:
        last_id = known.last_trade_ids.get(symbol)
        if last_id is not None:
            trades = await _call(port.trades_since(symbol, last_id + 1), f"trades of {symbol}")
            trades_since[symbol] = tuple(trades)

    balances = await _call(port.balances(), "balances")
    positions = await _call(port.positions(), "positions")
    return ExchangeView(
        open_orders=open_orders,
        answers=answers,
        trades_since=trades_since,
        order_trades=order_trades,
        balances=balances,
        positions=positions,
    )


async def _call(call: Awaitable[_T], what: str) -> _T:
    # Any failure (an error answer, a lost connection, an answer we cannot read) leaves the
    # exchange's truth unknown.
    try:
        return await call
    except Exception as error:
        raise ReconciliationFailed(f"{what}: {_text(error)}") from error


def _text(error: Exception) -> str:
    return str(error) if isinstance(error, VenueError) else f"{type(error).__name__}: {error}"


def known_from_book(book: OrderBook, prefix: str, cursor: Mapping[str, int]) -> KnownState:
    """The executor's own knowledge, for the periodic run: its acknowledged open orders
    (PENDING_NEW and UNKNOWN ones belong to their placement and resolution tasks) with the
    fills it booked, and the trade cursor. Positions are not compared (the executor only
    knows the fills of this run)."""
    orders = [
        o for o in book.open_orders() if o.acknowledged and o.last is not None and not o.cancel_sent
    ]
    return KnownState(
        orders=tuple(replace(o.last, status=o.status) for o in orders if o.last is not None),
        last_trade_ids=dict(cursor),
        client_id_prefix=prefix,
        ttl_ms={o.cid: o.request.ttl_ms for o in orders if o.request.ttl_ms is not None},
        fills={o.cid: tuple(o.fills.values()) for o in orders},
        other_ids=frozenset(o.cid for o in book),
    )


async def apply_report(core: ExecutorCore, report: ReconcileReport) -> int:
    """Load the report's orders into the book (those not tracked yet) and apply its events;
    returns how many updates were published."""
    for restored in report.orders:
        if restored.start.client_order_id not in core.book:
            fresh = restored.tracked()
            core.book.add(fresh)
            core.book.remember_exchange_id(fresh)
    published = 0
    for event in report.events:
        order = core.book.get(event.client_order_id)
        if order is None:  # pragma: no cover - every event belongs to one of report.orders
            continue
        applied = await core.apply(order, event, source="reconciliation")
        published += applied.changed
    for adopted in report.adopted:
        log.warning(
            "order_adopted",
            client_order_id=adopted.client_order_id,
            symbol=adopted.symbol,
            origin="open on the exchange with our prefix, unknown to the database",
        )
    for foreign in report.foreign:
        log.info(
            "foreign_order_left_alone",
            client_order_id=foreign.client_order_id,
            symbol=foreign.symbol,
        )
    for unresolved in report.unresolved:
        log.error(
            "order_unresolved",
            client_order_id=unresolved.client_order_id,
            status=unresolved.status.value,
            why=unresolved.why,
        )
    for mismatch in report.position_mismatches:
        log.error(
            "position_mismatch",
            symbol=mismatch.symbol,
            expected=str(mismatch.expected),
            exchange=str(mismatch.exchange),
            note=mismatch.note,
        )
    return published
