"""The live executor's shared core: the order book, the one path by which a report changes
an order and reaches `order.update`, the counters, and the task spawner.

Placement (`placement`), cancel/replace (`amend`) and the component (`live`) all go through
`ExecutorCore.apply` (an exchange report) or `ExecutorCore.set_status` (our own PENDING_NEW,
UNKNOWN, PENDING_CANCEL and local rejections), so every change passes the state machine,
books fills once, and is published stamped, in order: apply-and-publish runs under one lock,
so two reports about one order (a REST answer and the stream's event) cannot interleave
their updates. Observers (the protective-stop hook) are called after the lock is released,
so they may submit orders themselves.

Produces `order.update`. Tasks (placements, UNKNOWN resolution, cancels) are spawned into
the TaskGroup owned by `LiveExecutor.run()`; those spawned before it starts wait for it.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

import structlog

from app.bus import ORDER_UPDATE, Bus
from app.domain import Clock, MarketType
from app.domain.enums import ExecutionType, OrderStatus
from app.domain.orders import Fill, OrderEvent, OrderUpdated
from config.executor import ExecutorSettings
from executor.stamping import local_update, stamped_updates
from executor.state_machine import Verdict, decide
from executor.tracked import Applied, OrderBook, TrackedOrder, apply_update
from executor.venue_port import VenuePort

__all__ = ["ExecutorCore", "OrderObserver"]

log = structlog.get_logger("executor.live")


class OrderObserver(Protocol):
    """Told of every update published for a tracked order (stamped with its purpose), e.g.
    the protective-stop component reacting to entry fills and to exits that flatten."""

    async def on_order_update(self, update: OrderUpdated) -> None: ...


class ExecutorCore:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        venue: VenuePort,
        settings: ExecutorSettings,
        market: MarketType,
        name: str,
        observers: Sequence[OrderObserver] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.venue = venue
        self.settings = settings
        self.market = market
        self.name = name
        self.rng = rng or random.Random()
        self.book = OrderBook()
        self.observers: list[OrderObserver] = list(observers)
        self.counts: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # "from->to"
        self.fees: dict[str, Decimal] = {}
        self.fills_booked = 0
        self.last_latency_ms: float | None = None
        # Called when an order is first acknowledged while a cancel waits for it.
        self.on_acknowledged: Callable[[TrackedOrder], None] | None = None
        self._updates = bus.sender(ORDER_UPDATE.channel())
        self._lock = asyncio.Lock()
        self._tasks: asyncio.TaskGroup | None = None
        self._backlog: list[tuple[str, Coroutine[Any, Any, None]]] = []

    # -- tasks ------------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """Run `coro` in run()'s TaskGroup (queued until run() starts)."""
        if self._tasks is None:
            self._backlog.append((what, coro))
            return
        self._tasks.create_task(self._guarded(coro, what))

    async def _guarded(self, coro: Awaitable[None], what: str) -> None:
        # One failing order operation must not end the executor: logged and counted, per task.
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            self.counts["task_errors"] += 1
            log.exception("executor_task_failed", task=what)

    async def run_tasks(self, *loops: Coroutine[Any, Any, None]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._tasks = group
                backlog, self._backlog = self._backlog, []
                for what, coro in backlog:
                    group.create_task(self._guarded(coro, what))
                for loop in loops:
                    group.create_task(loop)
        finally:
            self._tasks = None

    # -- changing orders --------------------------------------------------------------------
    async def apply(
        self, order: TrackedOrder, report: OrderUpdated, fills: Sequence[Fill] = (), *, source: str
    ) -> Applied:
        """An exchange report about a tracked order: state machine, fills, publication."""
        async with self._lock:
            was_acknowledged = order.acknowledged
            applied = apply_update(order, report, fills)
            self.book.remember_exchange_id(order)
            if applied.refused:
                self._refuse(order, applied.previous, report.status, source)
                if applied.new_fills:
                    log.error(
                        "order_fill_after_refused_transition",
                        client_order_id=order.cid,
                        status=order.status.value,
                        trades=[f.trade_id for f in applied.new_fills],
                    )
            for fill in applied.new_fills:
                self.fills_booked += 1
                self.fees[fill.fee_asset] = self.fees.get(fill.fee_asset, Decimal(0)) + fill.fee
            if order.acked_ms is None and order.acknowledged:
                order.acked_ms = self.clock.now_ms()
            self._track_gap(order)
            updates: list[OrderUpdated] = []
            if applied.changed:
                updates = stamped_updates(order, report, applied.new_fills)
                await self._send_all(order, updates)
        await self._notify(updates)
        if (
            not was_acknowledged
            and order.is_open
            and order.cancel_reason is not None
            and self.on_acknowledged is not None
        ):
            self.on_acknowledged(order)
        return applied

    async def set_status(
        self, order: TrackedOrder, status: OrderStatus, reason: str = "", *, source: str = "local"
    ) -> bool:
        """One of our own steps (PENDING_CANCEL, UNKNOWN, a local rejection), published."""
        async with self._lock:
            verdict = decide(order.status, status)
            if verdict is Verdict.REFUSE:
                self._refuse(order, order.status, status, source)
                return False
            if verdict is Verdict.STALE:
                return False
            order.status = status
            if reason:
                order.reason = reason
            update = local_update(order, self.clock.now_ms(), reason)
            await self._send_all(order, [update])
        await self._notify([update])
        return True

    async def publish_current(self, order: TrackedOrder, reason: str = "") -> None:
        """Publish the order as it stands (a new intent's PENDING_NEW, a reverted cancel)."""
        async with self._lock:
            update = local_update(order, self.clock.now_ms(), reason)
            await self._send_all(order, [update])
        await self._notify([update])

    async def republish(self, order: TrackedOrder) -> None:
        """Send the last published state again (answer to a duplicate intent)."""
        if order.last is not None:
            await self._updates.send(order.last)

    async def forward(self, event: OrderEvent) -> None:
        """An event that belongs to no tracked order (foreign, liquidation, algo, quick fill)."""
        await self._updates.send(event)

    def revert_cancel(self, order: TrackedOrder) -> None:
        """A cancel that did not happen: the order is open again. Our own bookkeeping, so it
        bypasses the table (PENDING_CANCEL → NEW is otherwise an older report)."""
        if order.status is OrderStatus.PENDING_CANCEL:
            filled = order.filled_quantity > 0
            order.status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW
        order.cancel_sent = False

    def gap_report(self, order: TrackedOrder) -> OrderUpdated:
        """A report carrying only fills fetched from the trade list (state unchanged)."""
        base = order.last or local_update(order, self.clock.now_ms())
        return replace(
            base,
            status=order.status,
            fill=None,
            reason="",
            execution_type=ExecutionType.TRADE,
            ts_ms=self.clock.now_ms(),
        )

    # -- internals --------------------------------------------------------------------------
    async def _send_all(self, order: TrackedOrder, updates: list[OrderUpdated]) -> None:
        for update in updates:
            order.last = update
            await self._updates.send(update)

    async def _notify(self, updates: list[OrderUpdated]) -> None:
        for update in updates:
            for observer in self.observers:
                try:
                    await observer.on_order_update(update)
                except Exception:
                    self.counts["observer_errors"] += 1
                    log.exception("order_observer_failed", client_order_id=update.client_order_id)

    def _refuse(
        self, order: TrackedOrder, current: OrderStatus, reported: OrderStatus, source: str
    ) -> None:
        self.refused[f"{current.value}->{reported.value}"] += 1
        log.warning(
            "order_transition_refused",
            client_order_id=order.cid,
            from_status=current.value,
            to_status=reported.value,
            source=source,
        )

    def _track_gap(self, order: TrackedOrder) -> None:
        if order.fill_gap > 0 and order.exchange_order_id is not None:
            if order.gap_since_ms is None:
                order.gap_since_ms = self.clock.now_ms()
                order.gap_checks = 0
        else:
            order.gap_since_ms = None
