"""The pure half of reconciliation: what the database knew + what the exchange says → the
synthetic `order.update` events that make them agree, and what cannot be made to agree.

No I/O, no clock: `executor.reconciliation.reconcile` fetches an `ExchangeView` and calls
`diff`. Each known order is rebuilt as a `TrackedOrder` in the state the database recorded
(`RestoredOrder.tracked`) and the exchange's answer plus its missing trades are applied to it
with the executor's own state machine and stamping (`tracked.apply_update`,
`stamping.stamped_updates`) — so a synthetic event is exactly the event the live executor
would have published had it seen the exchange's reports, and `LiveExecutor.adopt` publishes
the same events by applying them to the same rebuilt orders (idempotent: a second application
finds nothing new).

Rules:
- a known order the exchange answers for: status change and one event per missing fill (trade
  ids above the last recorded one for its symbol), in trade order; an order that ended
  (cancelled, expired) after fills gets its fills as PARTIALLY_FILLED, then its end;
- a PENDING_NEW intent the exchange does not know never reached it: REJECTED "never placed";
  an UNKNOWN or acknowledged order it does not know is kept as it is and reported;
- open orders whose client id has our prefix and that the database did not know are adopted
  (strategy "", purpose EXIT when reduce-only else ENTRY); the rest are foreign: reported;
- trades since the last recorded id that belong to no known or adopted order are reported;
- positions: futures, the sum over our strategies of each symbol's net position (after the
  synthetic fills) against the exchange's; spot has no position, so the base-asset balance is
  compared only where our position says we hold some, and only a shortfall is a mismatch
  (the account may hold more of the asset than this instance bought: that is not ours to
  attribute).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final

from app.domain.account import Balance, PositionSnapshot
from app.domain.enums import MarketType, OrderPurpose, OrderStatus
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from executor.stamping import intent_update, local_update, stamped_updates
from executor.tracked import TrackedOrder, apply_update

__all__ = [
    "NEVER_PLACED",
    "ExchangeView",
    "KnownState",
    "PositionMismatch",
    "ReconcileReport",
    "RestoredOrder",
    "Unresolved",
    "diff",
    "is_our_client_id",
]

NEVER_PLACED: Final = "never placed"
_ZERO: Final = Decimal(0)
# Fallback when the wiring gives no base asset for a spot symbol (it should: exchange info).
_QUOTES: Final = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY")


def is_our_client_id(prefix: str, client_order_id: str) -> bool:
    """Whether the id has this instance's shape `<prefix>-<digest>` (the risk gate's ids)."""
    head, sep, tail = client_order_id.rpartition("-")
    return sep == "-" and head == prefix and bool(tail)


@dataclass(frozen=True, slots=True)
class KnownState:
    """What the database knew at start-up (built by the wiring from it).

    `orders`: every order not final (PENDING_NEW intents, UNKNOWN, open) — and every final
    one whose recorded fills add up to less than its filled quantity (a futures answer has no
    trades: they come from the stream) — as its last recorded update stamped with strategy,
    signal and purpose. `last_trade_ids`: the highest
    recorded trade id per symbol (fills are recorded in order, so every lower one is
    recorded too). `positions`: net quantity per (strategy, symbol); None: not compared.
    `ttl_ms`: the intents' TTLs by client id, where recorded (resting orders keep expiring).
    `fills`: the fills already recorded per client id — the wiring should pass them from the
    fills table (the periodic run passes the executor's own). Without them an order never
    acknowledged counts as having none, another its trades up to the symbol's last recorded
    id (wrong for an order whose fills were lost while later trades were recorded).
    """

    orders: tuple[OrderUpdated, ...] = ()
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)
    positions: Mapping[tuple[str, str], Decimal] | None = None
    client_id_prefix: str = "tb"
    ttl_ms: Mapping[str, int] = field(default_factory=dict)
    fills: Mapping[str, tuple[Fill, ...]] = field(default_factory=dict)
    # Client ids known but not reconciled here (the periodic run's orders in flight): never
    # adopted, never reported foreign.
    other_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ExchangeView:
    """What the exchange said. `answers`: the query by origClientOrderId of every known
    order (None: the order does not exist). `order_trades`: all trades of one order, by
    client id, for known orders with fills and adopted ones."""

    open_orders: Mapping[str, tuple[OrderUpdated, ...]]
    answers: Mapping[str, OrderUpdated | None]
    trades_since: Mapping[str, tuple[Fill, ...]]
    order_trades: Mapping[str, tuple[Fill, ...]]
    balances: tuple[Balance, ...] = ()
    positions: tuple[PositionSnapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class RestoredOrder:
    """An order to track after reconciliation, in the state the synthetic events apply to:
    as recorded (known) or as a bare intent (adopted); `recorded_fills` are fills the
    database already has (booked silently, so a later re-delivery is not booked twice)."""

    start: OrderUpdated
    recorded_fills: tuple[Fill, ...] = ()
    ttl_ms: int | None = None
    adopted: bool = False

    def tracked(self) -> TrackedOrder:
        start = self.start
        request = _request_from(start, strategy=start.strategy, ttl_ms=self.ttl_ms)
        status, cancel_reason = start.status, None
        if status is OrderStatus.PENDING_CANCEL:
            # The cancel was in flight at the crash: open again, and cancelled again by the
            # executor's housekeeping unless the exchange says it ended.
            filled = start.filled_quantity > 0
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW
            cancel_reason = start.reason or "cancel requested"
        order = TrackedOrder(
            request,
            created_ms=start.ts_ms,
            status=status,
            quantity=start.quantity,
            price=start.price,
            exchange_order_id=start.exchange_order_id,
            exchange_filled=start.filled_quantity,
            # Not the recorded reason: an UNKNOWN order's is the lost answer's error, which
            # the exchange's truth must not repeat.
            sent_ms=start.ts_ms,
            cancel_reason=cancel_reason,
            last=start,
        )
        if order.acknowledged:
            order.acked_ms = start.ts_ms
        for fill in sorted(self.recorded_fills, key=lambda f: f.trade_id):
            order.book(fill)
        return order


@dataclass(frozen=True, slots=True)
class Unresolved:
    client_order_id: str
    symbol: str
    status: OrderStatus
    why: str


@dataclass(frozen=True, slots=True)
class PositionMismatch:
    symbol: str
    expected: Decimal  # our net position after the synthetic fills
    exchange: Decimal
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    market: MarketType
    ts_ms: int
    events: tuple[OrderUpdated, ...]  # synthetic, stamped, in publication order
    orders: tuple[RestoredOrder, ...]  # known + adopted: what the executor tracks from now
    adopted: tuple[OrderUpdated, ...]
    foreign: tuple[OrderUpdated, ...]
    unresolved: tuple[Unresolved, ...]
    unmatched_trades: tuple[Fill, ...]
    position_mismatches: tuple[PositionMismatch, ...]
    balances: tuple[Balance, ...]
    positions: tuple[PositionSnapshot, ...]
    last_trade_ids: Mapping[str, int]  # the cursor for the next run
    problems: tuple[str, ...]

    def summary(self) -> dict[str, object]:
        return {
            "events": len(self.events),
            "fills": sum(1 for e in self.events if e.fill is not None),
            "orders": len(self.orders),
            "adopted": [o.client_order_id for o in self.adopted],
            "foreign": [o.client_order_id for o in self.foreign],
            "unresolved": [u.client_order_id for u in self.unresolved],
            "unmatched_trades": len(self.unmatched_trades),
            "position_mismatches": [
                {"symbol": m.symbol, "expected": str(m.expected), "exchange": str(m.exchange)}
                for m in self.position_mismatches
            ],
            "problems": list(self.problems),
        }


def diff(
    known: KnownState,
    view: ExchangeView,
    *,
    market: MarketType,
    now_ms: int,
    base_assets: Mapping[str, str] | None = None,
) -> ReconcileReport:
    events: list[OrderUpdated] = []
    restored: list[RestoredOrder] = []
    unresolved: list[Unresolved] = []
    problems: list[str] = []
    claimed: set[tuple[str, int]] = set()  # (symbol, exchange order id) of orders we track
    known_ids = {o.client_order_id for o in known.orders} | known.other_ids

    for start in sorted(known.orders, key=lambda o: (o.symbol, o.client_order_id)):
        cid, symbol = start.client_order_id, start.symbol
        last_id = known.last_trade_ids.get(symbol)
        own = view.order_trades.get(cid, ())
        recorded = known.fills.get(cid)
        if recorded is None:
            recorded = _recorded(start, own, last_id)
        entry = RestoredOrder(start, recorded, known.ttl_ms.get(cid))
        restored.append(entry)
        order = entry.tracked()
        answer = view.answers.get(cid)
        if answer is None:
            if order.status is OrderStatus.PENDING_NEW:
                order.status, order.reason = OrderStatus.REJECTED, NEVER_PLACED
                events.append(local_update(order, now_ms, NEVER_PLACED))
            else:
                why = f"{start.status.value} order unknown to the exchange: kept, not invented"
                unresolved.append(Unresolved(cid, symbol, start.status, why))
                problems.append(f"{cid}: {why}")
            continue
        if answer.exchange_order_id is not None:
            claimed.add((symbol, answer.exchange_order_id))
        # Recorded fills are booked in `tracked()`: booking them again is a no-op.
        missing = _missing(own, view.trades_since.get(symbol, ()), answer)
        events.extend(_catch_up(order, answer, missing, problems))

    adopted: list[OrderUpdated] = []
    foreign: list[OrderUpdated] = []
    for symbol in sorted(view.open_orders):
        for report in sorted(view.open_orders[symbol], key=lambda o: o.exchange_order_id or 0):
            cid = report.client_order_id
            if cid in known_ids:
                continue
            if not is_our_client_id(known.client_id_prefix, cid):
                foreign.append(report)
                continue
            adopted.append(report)
            if report.exchange_order_id is not None:
                claimed.add((symbol, report.exchange_order_id))
            entry = RestoredOrder(_adopted_intent(report), adopted=True)
            restored.append(entry)
            missing = _missing(
                view.order_trades.get(cid, ()), view.trades_since.get(symbol, ()), report
            )
            events.extend(_catch_up(entry.tracked(), report, missing, problems))

    unmatched = [
        t
        for symbol in sorted(view.trades_since)
        for t in view.trades_since[symbol]
        if (symbol, t.exchange_order_id) not in claimed
    ]
    cursor = dict(known.last_trade_ids)
    for symbol, trades in view.trades_since.items():
        if trades:
            cursor[symbol] = max(cursor.get(symbol, 0), *(t.trade_id for t in trades))
    mismatches = (
        []
        if known.positions is None
        else _position_mismatches(known.positions, events, view, market, base_assets or {})
    )
    return ReconcileReport(
        market=market,
        ts_ms=now_ms,
        events=tuple(events),
        orders=tuple(restored),
        adopted=tuple(adopted),
        foreign=tuple(foreign),
        unresolved=tuple(unresolved),
        unmatched_trades=tuple(unmatched),
        position_mismatches=tuple(mismatches),
        balances=view.balances,
        positions=view.positions,
        last_trade_ids=cursor,
        problems=tuple(problems),
    )


def _recorded(start: OrderUpdated, own: Iterable[Fill], last_id: int | None) -> tuple[Fill, ...]:
    """Without the recorded fills: an order never acknowledged has none (a fill arrives with
    the acknowledgement); else its trades up to the symbol's last recorded id."""
    if last_id is None or start.status in (OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN):
        return ()
    return tuple(t for t in own if t.trade_id <= last_id)


def _missing(own: Iterable[Fill], since: Iterable[Fill], answer: OrderUpdated) -> list[Fill]:
    """The order's trades (its own list, and those since the cursor that carry its exchange
    id), in trade order."""
    found = {t.trade_id: t for t in own}
    if answer.exchange_order_id is not None:
        for trade in since:
            if trade.exchange_order_id == answer.exchange_order_id:
                found.setdefault(trade.trade_id, trade)
    return [found[k] for k in sorted(found)]


def _catch_up(
    order: TrackedOrder, answer: OrderUpdated, missing: list[Fill], problems: list[str]
) -> list[OrderUpdated]:
    steps: list[tuple[OrderUpdated, list[Fill]]] = [(answer, missing)]
    if missing and answer.status.is_final and answer.status is not OrderStatus.FILLED:
        # Fills first, as the stream would have told them; the end after.
        steps = [(replace(answer, status=OrderStatus.PARTIALLY_FILLED), missing), (answer, [])]
    events: list[OrderUpdated] = []
    for report, fills in steps:
        applied = apply_update(order, report, fills)
        if applied.refused:
            problems.append(
                f"{order.cid}: exchange says {report.status.value}, "
                f"recorded {applied.previous.value}: transition refused"
            )
        if applied.changed:
            events.extend(stamped_updates(order, report, applied.new_fills))
    if order.fill_gap > 0:
        problems.append(
            f"{order.cid}: exchange reports {order.exchange_filled} filled, "
            f"trades account for {order.booked_quantity}"
        )
    return events


def _request_from(update: OrderUpdated, *, strategy: str, ttl_ms: int | None = None) -> SubmitOrder:
    """The request an order known only by its state stands for (restored or adopted)."""
    purpose = update.purpose or (OrderPurpose.EXIT if update.reduce_only else OrderPurpose.ENTRY)
    return SubmitOrder(
        update.client_order_id,
        strategy,
        update.symbol,
        update.side,
        update.order_type,
        update.quantity,
        update.ts_ms,
        price=update.price,
        stop_price=update.stop_price,
        time_in_force=update.time_in_force,
        reduce_only=update.reduce_only,
        signal_id=update.signal_id,
        purpose=purpose,
        ttl_ms=ttl_ms,
    )


def _adopted_intent(report: OrderUpdated) -> OrderUpdated:
    request = _request_from(report, strategy="")
    return intent_update(
        request,
        status=OrderStatus.PENDING_NEW,
        ts_ms=report.ts_ms,
        quantity=report.quantity,
        price=report.price,
    )


def _position_mismatches(
    positions: Mapping[tuple[str, str], Decimal],
    events: list[OrderUpdated],
    view: ExchangeView,
    market: MarketType,
    base_assets: Mapping[str, str],
) -> list[PositionMismatch]:
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for (_strategy, symbol), quantity in positions.items():
        expected[symbol] += quantity
    for event in events:
        if event.fill is not None:
            expected[event.symbol] += event.fill.position_change
    mismatches: list[PositionMismatch] = []
    if market is MarketType.USDM:
        held: dict[str, Decimal] = defaultdict(Decimal)
        for position in view.positions:
            held[position.symbol] += position.quantity
        for symbol in sorted(set(expected) | set(held)):
            if expected[symbol] != held[symbol]:
                mismatches.append(PositionMismatch(symbol, expected[symbol], held[symbol]))
        return mismatches
    for symbol in sorted(expected):
        quantity = expected[symbol]
        if quantity == 0:
            continue
        base = base_assets.get(symbol) or _base_asset(symbol)
        balance = sum((b.total for b in view.balances if b.asset == base), _ZERO)
        if quantity < 0:
            note = "spot position below zero"
        elif balance < quantity:
            note = f"the account holds less {base} than the position"
        else:
            continue
        mismatches.append(PositionMismatch(symbol, quantity, balance, note))
    return mismatches


def _base_asset(symbol: str) -> str:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return symbol
