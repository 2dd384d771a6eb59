"""The live order executor: places the risk gate's orders on the venue and follows them.

Consumes `order.request` (SubmitOrder, CancelOrder, ReplaceOrder), `venue.order` (the
exchange's own order events from the user-data stream), `system.control` (HALT, FLATTEN,
RESUME) and `risk.state`. Produces `order.update` (every tracked order's state, stamped with
strategy, signal and purpose; foreign orders, quick fills and algo orders passed through)
and `system.ack`.

One intent, one exchange order: a client order id already seen is never sent again
(`duplicate_intent`), retries reuse the id, and an order whose answer was lost is UNKNOWN
until the stream or a query settles it — never re-sent (see `placement`). Every report goes
through the state machine (`state_machine`) and books each fill once by trade id
(`tracked`). `run()` owns the tasks (placements, resolutions, cancels) and a housekeeping
loop: LIMIT orders past their TTL are cancelled ("ttl expired"), fills the stream missed are
fetched from the trade list, and failed cancels are tried again.

Hooks: `observers` are told of every update published for a tracked order (stamped with its
purpose: ENTRY with a fill is an entry fill) via `on_order_update(update)`. The protective-stop
component (`protective_stops`, duck-typed by `StopsHook`) gets the symbol's net position from
our own booked fills (and the exchange's liquidation/ADL fills) after every fill, in a task
of its own, and every `AlgoOrderUpdated`; `positions.seed` takes the exchange's positions at
start-up.

Persistence (issue 8): `journal` (an `IntentJournal`, the recorder's) is awaited before the
first send of every client order id (`journal.WriteAhead`; its waits are in `status()`).
After a restart, `adopt(report)` loads what `reconciliation.reconcile` found into the book and
publishes its synthetic updates once; `reconcile_periodically` runs the same diff against the
executor's own book while trading and publishes only the differences.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import structlog

from app.bus import ORDER_REQUEST, RISK_STATE, SYSTEM_CONTROL, VENUE_ORDER, Bus
from app.domain import (
    CancelOrder,
    Clock,
    ControlAction,
    ControlCommand,
    MarketType,
    OrderPurpose,
    OrderStatus,
    ReplaceOrder,
    SubmitOrder,
    TradingStateChanged,
)
from app.domain.enums import OrderOrigin
from app.domain.orders import (
    AlgoOrderUpdated,
    OrderRequest,
    OrderUpdated,
    UserStreamResynced,
    VenueOrderEvent,
)
from config.executor import ExecutorSettings
from executor.amend import Amender
from executor.core import ExecutorCore, OrderObserver
from executor.halt import HaltGate
from executor.journal import IntentJournal, JournaledPort, NoJournal, WriteAhead
from executor.placement import Placement
from executor.positions import NetPosition, NetPositions
from executor.reconciliation import (
    ReconcileReport,
    ReconciliationFailed,
    apply_report,
    known_from_book,
    reconcile,
)
from executor.tracked import OrderBook, TrackedOrder
from executor.venue_port import VenuePort

__all__ = ["LiveExecutor", "OrderObserver", "StopsHook"]

log = structlog.get_logger("executor.live")

TTL_REASON = "ttl expired"
FLATTEN_REASON = "flatten"
_FOREIGN_TRADES_REMEMBERED = 10_000


class StopsHook(Protocol):
    """What the executor tells the protective-stop component (`executor.protective_stops`)."""

    async def on_position(
        self, symbol: str, quantity: Decimal, average_price: Decimal | None
    ) -> None: ...

    def on_algo_update(self, update: AlgoOrderUpdated) -> None: ...


class LiveExecutor:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        venue: VenuePort,
        settings: ExecutorSettings,
        market: MarketType,
        name: str = "executor",
        protective_stops: StopsHook | None = None,
        observers: Sequence[OrderObserver] = (),
        rng: random.Random | None = None,
        journal: IntentJournal | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.settings = settings
        self.market = market
        self.stops = protective_stops
        self.positions = NetPositions()
        self._foreign_trades: deque[tuple[str, int]] = deque(maxlen=_FOREIGN_TRADES_REMEMBERED)
        self.write_ahead = WriteAhead(journal or NoJournal(), clock)
        # The highest trade id seen per symbol: where the periodic reconciliation reads on.
        self.trade_cursor: dict[str, int] = {}
        self.last_reconciliation: dict[str, Any] | None = None
        self.core = ExecutorCore(
            bus=bus,
            clock=clock,
            venue=JournaledPort(venue, self.write_ahead),
            settings=settings,
            market=market,
            name=name,
            observers=[self, *observers],
            rng=rng,
        )
        self.gate = HaltGate(bus=bus, clock=clock, component=name)
        self.placement = Placement(self.core, self.gate, self.write_ahead)
        self.amend = Amender(self.core, self.gate, self.placement)
        self.core.on_acknowledged = self._acknowledged
        self.handled = 0
        bus.subscribe(ORDER_REQUEST.channel(), self.on_request, subscriber=name)
        bus.subscribe(VENUE_ORDER.channel(), self.on_venue_event, subscriber=name)
        bus.subscribe(SYSTEM_CONTROL.channel(), self.on_control, subscriber=name)
        bus.subscribe(RISK_STATE.channel(), self.on_risk_state, subscriber=name)

    @property
    def book(self) -> OrderBook:
        return self.core.book

    @property
    def progress(self) -> int:
        """Grows while the executor works (the supervisor's stall detection)."""
        return self.handled + self.core.fills_booked + self.core.counts["send_retries"]

    def add_observer(self, observer: OrderObserver) -> None:
        self.core.observers.append(observer)

    async def on_order_update(self, update: OrderUpdated) -> None:
        """Our own observer: positions for the protective stops, from booked fills."""
        if update.fill is not None:
            fill = update.fill
            self.trade_cursor[fill.symbol] = max(
                self.trade_cursor.get(fill.symbol, 0), fill.trade_id
            )
            self._position_changed(self.positions.add(fill), update.symbol)

    def _position_changed(self, position: NetPosition, symbol: str) -> None:
        if self.stops is not None:
            self.core.spawn(
                self.stops.on_position(symbol, position.quantity, position.average_price),
                f"protective stop {symbol}",
            )

    async def start(self) -> None:
        log.info("executor_started", market=self.market.value, name=self.name)

    # -- order.request ----------------------------------------------------------------------
    async def on_request(self, request: OrderRequest) -> None:
        self.handled += 1
        if isinstance(request, SubmitOrder):
            await self.submit(request)
        elif isinstance(request, CancelOrder):
            await self.cancel(request)
        elif isinstance(request, ReplaceOrder):
            await self.amend.replace(request)

    async def submit(self, request: SubmitOrder) -> None:
        core = self.core
        existing = core.book.get(request.client_order_id)
        if existing is not None:
            core.counts["duplicate_intents"] += 1
            log.warning(
                "duplicate_intent",
                client_order_id=request.client_order_id,
                status=existing.status.value,
            )
            await core.republish(existing)
            return
        order = TrackedOrder(request, created_ms=self.clock.now_ms())
        core.book.add(order)
        blocked = self.gate.blocked_reason() if request.is_entry else None
        if blocked is not None:
            core.counts["entries_refused"] += 1
            await core.set_status(order, OrderStatus.REJECTED, blocked)
            return
        await core.publish_current(order)
        core.spawn(self.placement.place(order), f"place {order.cid}")

    async def cancel(self, request: CancelOrder) -> None:
        order = self.core.book.get(request.client_order_id)
        if order is None:
            self.core.counts["cancel_unknown_order"] += 1
            log.warning("cancel_of_unknown_order", client_order_id=request.client_order_id)
            return
        self.amend.request_cancel(order, request.reason or "cancel requested")

    def _acknowledged(self, order: TrackedOrder) -> None:
        # A cancel asked for while the order was PENDING_NEW/UNKNOWN can go out now.
        self.amend.request_cancel(order, order.cancel_reason or "cancel requested")

    # -- venue.order ------------------------------------------------------------------------
    async def on_venue_event(self, event: VenueOrderEvent) -> None:
        self.handled += 1
        core = self.core
        if isinstance(event, UserStreamResynced):
            # Fills or cancels during the gap never arrive as events: ask the exchange.
            await self.reconcile(f"user stream re-established: {event.reason}")
            return
        if isinstance(event, OrderUpdated):
            order = core.book.find(event)
            if order is not None:
                await core.apply(order, event, source="stream")
                return
            core.counts["foreign_events"] += 1
            self._foreign_fill(event)
        else:
            core.counts["passed_through"] += 1
            if isinstance(event, AlgoOrderUpdated) and self.stops is not None:
                self.stops.on_algo_update(event)
        await core.forward(event)

    def _foreign_fill(self, event: OrderUpdated) -> None:
        # The exchange's own close-outs (liquidation, ADL, settlement) move our position too;
        # another client's orders on the account do not concern our stops.
        fill = event.fill
        if fill is None or event.origin is OrderOrigin.CLIENT:
            return
        key = (fill.symbol, fill.trade_id)
        if key in self._foreign_trades:
            return
        self._foreign_trades.append(key)
        self._position_changed(self.positions.add(fill), fill.symbol)

    # -- system.control / risk.state --------------------------------------------------------
    async def on_control(self, command: ControlCommand) -> None:
        self.handled += 1
        detail = ""
        if command.action is ControlAction.FLATTEN:
            cancelled = 0
            for order in self.core.book.open_orders():
                if order.request.purpose is not OrderPurpose.PROTECTIVE_STOP:
                    self.amend.request_cancel(order, FLATTEN_REASON)
                    cancelled += 1
            detail = f"cancel requested for {cancelled} open orders"
        log.info("control_command_received", action=command.action.value, id=command.command_id)
        await self.gate.command(command, detail)

    async def on_risk_state(self, change: TradingStateChanged) -> None:
        self.handled += 1
        self.gate.risk_state = change.state
        log.info("executor_trading_state", state=change.state.value)

    async def reconcile(self, reason: str = "") -> None:
        """Ask the exchange about every acknowledged open order (each query in its own task):
        for after the user-data stream was re-established, when events may have been lost
        (`UserStreamResynced` on `venue.order` triggers it). Fills the queries reveal are then
        fetched from the trade list by the housekeeping loop."""
        orders = [o for o in self.core.book.open_orders() if o.acknowledged]
        log.info("executor_reconciling", open_orders=len(orders), reason=reason)
        self.core.counts["reconciliations"] += 1
        for order in orders:
            self.core.spawn(self.amend.requery(order), f"reconcile {order.cid}")

    # -- persistence: start-up adoption, periodic reconciliation ------------------------------
    async def adopt(self, report: ReconcileReport) -> int:
        """Track the reconciled orders (known and adopted) and publish the report's synthetic
        updates on order.update; idempotent. Returns how many updates were published."""
        published = await apply_report(self.core, report)
        self._advance_cursor(report.last_trade_ids)
        self.core.counts["reconciled_updates"] += published
        self.last_reconciliation = {"ts_ms": report.ts_ms, "published": published}
        log.info("executor_adopted", published=published, **report.summary())
        return published

    async def reconcile_once(
        self, *, symbols: Iterable[str], client_id_prefix: str
    ) -> ReconcileReport:
        """One periodic pass: the diff against the executor's own book, applied (only what
        the executor did not know is published). Raises `ReconciliationFailed`."""
        known = known_from_book(self.book, client_id_prefix, self.trade_cursor)
        report = await reconcile(self.core.venue, known, symbols, self.clock)
        await self.adopt(report)
        return report

    async def reconcile_periodically(
        self, *, symbols: Sequence[str], client_id_prefix: str, interval_s: float
    ) -> None:
        """Run `reconcile_once` every `interval_s` (the wiring runs it in its TaskGroup). A
        failed pass is logged and counted; the next one tries again."""
        while True:
            await self.clock.sleep(interval_s)
            try:
                await self.reconcile_once(symbols=symbols, client_id_prefix=client_id_prefix)
            except ReconciliationFailed as error:
                self.core.counts["reconciliations_failed"] += 1
                log.warning("periodic_reconciliation_failed", error=str(error))

    def _advance_cursor(self, last_trade_ids: Mapping[str, int]) -> None:
        for symbol, trade_id in last_trade_ids.items():
            self.trade_cursor[symbol] = max(self.trade_cursor.get(symbol, 0), trade_id)

    # -- run --------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.core.run_tasks(self._housekeeping())

    async def _housekeeping(self) -> None:
        interval_s = self.settings.ttl_check_interval_s
        while True:
            await self.clock.sleep(interval_s)
            self.housekeep()

    def housekeep(self) -> None:
        """One pass: TTLs, cancels to try again, fills the stream missed (each in its own
        task)."""
        now_ms = self.clock.now_ms()
        for order in self.core.book:
            if not order.is_final:
                if order.ttl_expired(now_ms):
                    self.amend.request_cancel(order, TTL_REASON)
                elif order.is_open and order.cancel_reason is not None:
                    self.amend.request_cancel(order, order.cancel_reason)
            # Final orders too: a FILLED query answer during a stream drop has no trades.
            if order.gap_since_ms is not None and not order.gap_fetching:
                wait_s = min(
                    self.settings.unknown_query_initial_s * 2**order.gap_checks,
                    self.settings.unknown_query_max_s,
                )
                if now_ms - order.gap_since_ms >= wait_s * 1000:
                    order.gap_checks += 1
                    order.gap_since_ms = now_ms
                    self.core.spawn(self.placement.fill_gap(order), f"trades {order.cid}")

    # -- heartbeat --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        core = self.core
        book = core.book
        open_orders = book.open_orders()
        return {
            "market": self.market.value,
            "open_orders": len(open_orders),
            "tracked": len(book),
            "by_status": book.by_status(),
            "unknown": sum(1 for o in open_orders if o.status is OrderStatus.UNKNOWN),
            "pending_new": sum(1 for o in open_orders if o.status is OrderStatus.PENDING_NEW),
            "retries": core.counts["send_retries"],
            "duplicate_intents": core.counts["duplicate_intents"],
            "refused_transitions": dict(core.refused),
            "foreign_events": core.counts["foreign_events"],
            "fills_booked": core.fills_booked,
            "fees": {asset: str(amount) for asset, amount in sorted(core.fees.items())},
            "last_latency_ms": core.last_latency_ms,
            "halted": self.gate.halted_by.value if self.gate.halted_by else None,
            "trading_state": self.gate.risk_state.value,
            "entries_in_flight": self.gate.entries_in_flight,
            "positions": self.positions.snapshot(),
            "journal": self.write_ahead.status(),
            "last_reconciliation": self.last_reconciliation,
            "counts": dict(sorted(core.counts.items())),
        }
