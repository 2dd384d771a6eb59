"""The recorder: everything the daemon does, written to the database without stalling the loop.

Consumes `order.update` (OrderUpdated with their fills, OrderDenied), `signal.*`,
`account.update` (balances), `market.kline.*` (closed 1m bars only), `risk.state` and
`system.alert`. Produces `system.alert` and `system.control` (HALT) when the database cannot
be written: trading halts rather than runs unrecorded.

Handlers only enqueue; the writer thread (`database.writer`) batches and commits, with the
idempotent upserts of `database.upserts`. The queue holds at most `queue_max_rows` items: when
it is full, a handler for anything but candles waits for room (an alarm, logged: order updates,
fills and intents are never dropped) while candles are dropped and counted.

Write-ahead: `record_intent(order)` returns once the order's PENDING_NEW row is committed (it
jumps the queue) and raises `IntentNotRecorded` otherwise, at once while the database is
failing. `run()` drains and commits everything queued when it is cancelled.

With an intent journal, each intent is forgotten from it once the writer has committed its row
to the main database: at most one journal transaction per committed batch, on the loop (the
journal's connection is the loop's), in `run()`, `flush()` and at stop after the last commit.
At any instant an intent is in the journal or committed in the main database.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy.engine import Engine

from app.bus import (
    ACCOUNT_UPDATE,
    MARKET_KLINE,
    ORDER_UPDATE,
    RISK_STATE,
    SIGNAL,
    SYSTEM_ALERT,
    SYSTEM_CONTROL,
    Bus,
)
from app.domain import (
    AccountUpdated,
    Alert,
    AlertSeverity,
    Clock,
    ControlAction,
    ControlCommand,
    Kline,
    OrderDenied,
    OrderUpdated,
    PositionsReconciled,
    Signal,
    SubmitOrder,
    TradingStateChanged,
)
from app.domain.account import AccountEvent
from app.domain.orders import OrderEvent
from config.database import DatabaseSettings
from database.intent_journal import IntentJournal
from database.mapping import CANDLE_INTERVAL
from database.upserts import Kind, RunStart, RunStop, metrics_document
from database.writer import IntentNotRecorded, Writer, WriterNotice

__all__ = ["IntentNotRecorded", "Recorder"]

log = structlog.get_logger("database.recorder")

_INTENT_SAMPLES = 1_000
_JOIN_TIMEOUT_S = 60.0


class Recorder:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        engine: Engine,
        settings: DatabaseSettings,
        name: str = "recorder",
        intent_timeout_s: float = 5.0,
        max_backoff_s: float = 30.0,
        journal: IntentJournal | None = None,
    ) -> None:
        """`journal`: where intents are made durable before their order is sent (a local file
        written on the loop, `database.intent_journal`); without one, `record_intent` waits
        for the intent's commit in the main database."""
        self.name = name
        self.clock = clock
        self.settings = settings
        self._engine = engine
        self._journal = journal
        self._intent_timeout_s = intent_timeout_s
        self._max_backoff_s = max_backoff_s
        self._writer: Writer | None = None
        self._notices: deque[WriterNotice] = deque()
        self._noticed: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._halts = 0
        self.candles_dropped = 0
        self.full_waits = 0  # handlers that had to wait for room in the queue
        self.progress = 0
        self.intent_ms: deque[float] = deque(maxlen=_INTENT_SAMPLES)
        self._unforgotten: list[str] = []  # committed intents the journal still holds
        self.journal_forget_failures = 0
        self._alerts = bus.sender(SYSTEM_ALERT.channel())
        self._control = bus.sender(SYSTEM_CONTROL.channel())
        bus.subscribe(ORDER_UPDATE.channel(), self.on_order_event, subscriber=name)
        bus.subscribe(SIGNAL.any(), self.on_signal, subscriber=name)
        bus.subscribe(ACCOUNT_UPDATE.channel(), self.on_account, subscriber=name)
        bus.subscribe(MARKET_KLINE.any(), self.on_kline, subscriber=name)
        bus.subscribe(RISK_STATE.channel(), self.on_trading_state, subscriber=name)
        bus.subscribe(SYSTEM_ALERT.channel(), self.on_alert, subscriber=name)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the writer thread and its connection; raises if the database is unreachable."""
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        self._noticed = asyncio.Event()
        self._space = asyncio.Event()
        writer = Writer(
            engine=self._engine,
            settings=self.settings,
            loop=loop,
            sleep=self.clock.sleep,
            notify=self._on_notice,
            space_freed=self._space.set,
            max_backoff_s=self._max_backoff_s,
            intents_committed=None if self._journal is None else self._on_intents_committed,
        )
        self._writer = writer
        await writer.start()
        if self._journal is not None:
            await asyncio.to_thread(self._journal.open)
        log.info("recorder_started", database=self._engine.url.render_as_string())

    async def run(self) -> None:
        """Announce write failures until cancelled; then commit everything queued."""
        await self.start()
        noticed = self._noticed
        assert noticed is not None
        try:
            while True:
                await noticed.wait()
                noticed.clear()
                while self._notices:
                    await self._announce(self._notices.popleft())
                self._forget_committed_intents()
        finally:
            self._stop()

    def _stop(self) -> None:
        """Synchronous on purpose: a second cancellation cannot cut the last commits short."""
        writer = self._writer
        if writer is None:
            return
        depth = writer.depth
        writer.stop()
        finished = writer.join(_JOIN_TIMEOUT_S)
        if self._journal is not None:
            self._forget_committed_intents()  # the last commits'; what was lost stays
            self._journal.close()
        log.info(
            "recorder_stopped",
            flushed=depth - writer.lost,
            lost=writer.lost,
            finished=finished,
            rows_written=writer.rows_written,
        )

    async def flush(self) -> None:
        """Return once everything queued before this call is committed (or given up)."""
        writer = self._running()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        writer.put_barrier(done)
        await done
        self._forget_committed_intents()

    # -- write-ahead -----------------------------------------------------------------------------
    async def record_intent(self, order: SubmitOrder) -> None:
        """Return once the order's intent (PENDING_NEW) is committed; raise
        `IntentNotRecorded` if it is not, in which case the order must not be sent."""
        writer = self._running()
        if writer.failing:
            raise IntentNotRecorded(f"database writes failing: {writer.last_error}")
        await self._room(writer, "intent")
        started = time.perf_counter()
        if self._journal is not None:
            try:
                self._journal.record(order)
            except sqlite3.Error as exc:
                raise IntentNotRecorded(f"intent journal: {exc}") from None
            writer.put(Kind.INTENT, order)  # the main database's row, with the next batch
            self.intent_ms.append((time.perf_counter() - started) * 1000.0)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        writer.put_intent(order, done)
        try:
            async with asyncio.timeout(self._intent_timeout_s):
                await done
        except TimeoutError:
            raise IntentNotRecorded(
                f"intent {order.client_order_id} not committed within {self._intent_timeout_s} s"
            ) from None
        self.intent_ms.append((time.perf_counter() - started) * 1000.0)

    def _on_intents_committed(self) -> None:
        """On the loop: the writer committed intents; `run()` forgets them from the journal."""
        if self._noticed is not None:
            self._noticed.set()

    def _forget_committed_intents(self) -> None:
        """Forget from the journal every intent the main database has committed (they are
        durable there), in one transaction. On failure they stay journaled, which is safe
        (start-up recovery forgets them too), and are tried again next time."""
        journal, writer = self._journal, self._writer
        if journal is None or writer is None:
            return
        self._unforgotten.extend(writer.take_committed_intents())
        if not self._unforgotten:
            return
        try:
            journal.forget(self._unforgotten)
        except sqlite3.Error as exc:
            self.journal_forget_failures += 1
            log.warning(
                "intent_journal_forget_failed", pending=len(self._unforgotten), error=str(exc)
            )
            return
        self._unforgotten.clear()

    def _running(self) -> Writer:
        writer = self._writer
        if writer is None or not writer.alive:
            raise IntentNotRecorded("the recorder is not running")
        return writer

    # -- handlers --------------------------------------------------------------------------------
    async def on_order_event(self, event: OrderEvent) -> None:
        # QuickFill is followed by the full fill in an OrderUpdated; algo (conditional) order
        # states are not recorded until they become regular orders.
        if isinstance(event, OrderUpdated):
            await self._put(Kind.ORDER, event)
        elif isinstance(event, OrderDenied):
            await self._put(Kind.DENIAL, event)

    async def on_signal(self, signal: Signal) -> None:
        await self._put(Kind.SIGNAL, signal)

    async def on_account(self, event: AccountEvent) -> None:
        # A BalanceChanged delta is followed by the AccountUpdated carrying the new balance.
        if isinstance(event, AccountUpdated) and event.balances:
            await self._put(Kind.ACCOUNT, event)
        elif isinstance(event, PositionsReconciled):
            await self._put(Kind.POSITIONS, event)

    async def on_kline(self, kline: Kline) -> None:
        if not kline.closed or kline.interval != CANDLE_INTERVAL:
            return
        writer = self._writer
        if writer is None or writer.depth >= self.settings.queue_max_rows:
            self.candles_dropped += 1
            return
        self.progress += 1
        writer.put(Kind.CANDLE, kline)

    async def on_trading_state(self, change: TradingStateChanged) -> None:
        await self._put(Kind.STATE, change)

    async def on_alert(self, alert: Alert) -> None:
        await self._put(Kind.ALERT, alert)

    # -- runs and snapshots ----------------------------------------------------------------------
    async def record_run_start(self, version: str, mode: str, instance_name: str) -> None:
        await self._put(Kind.RUN_START, RunStart(version, mode, instance_name, self.clock.now_ms()))

    async def record_run_stop(self, exit_status: str, reason: str = "") -> None:
        await self._put(Kind.RUN_STOP, RunStop(exit_status, reason, self.clock.now_ms()))

    async def record_equity(
        self,
        *,
        equity: Decimal,
        realized_pnl: Decimal,
        unrealized_pnl: Decimal,
        exposure: Decimal,
        open_positions: int,
        ts_ms: int | None = None,
    ) -> None:
        values = {
            "ts_ms": self.clock.now_ms() if ts_ms is None else ts_ms,
            "equity": equity,
            "realized_pnl": realized_pnl,
            "unrealized_pnl": unrealized_pnl,
            "exposure": exposure,
            "open_positions": open_positions,
        }
        await self._put(Kind.EQUITY, values)

    async def record_metrics(self, figures: Mapping[str, Any], ts_ms: int | None = None) -> None:
        ts = self.clock.now_ms() if ts_ms is None else ts_ms
        await self._put(Kind.METRICS, (ts, metrics_document(figures)))

    # -- queueing --------------------------------------------------------------------------------
    async def _put(self, kind: Kind, payload: Any) -> None:
        writer = self._writer
        if writer is None:
            raise RuntimeError("the recorder's handlers run only after start()")
        self.progress += 1
        if writer.depth >= self.settings.queue_max_rows:
            await self._room(writer, kind.name.lower())
        writer.put(kind, payload)

    async def _room(self, writer: Writer, what: str) -> None:
        """Wait until the queue has room (never drop what must be recorded)."""
        space = self._space
        assert space is not None
        if writer.depth < self.settings.queue_max_rows:
            return
        self.full_waits += 1
        log.warning(
            "recorder_queue_full",
            waiting=what,
            depth=writer.depth,
            bound=self.settings.queue_max_rows,
            failing=writer.failing,
        )
        while writer.depth >= self.settings.queue_max_rows:
            space.clear()
            writer.space_wanted = True
            await space.wait()
        writer.space_wanted = False

    def _on_notice(self, notice: WriterNotice) -> None:
        """On the loop: the writer's news, announced by `run()`."""
        self._notices.append(notice)
        if self._noticed is not None:
            self._noticed.set()

    async def _announce(self, notice: WriterNotice) -> None:
        now = self.clock.now_ms()
        if not notice.failing:
            log.warning("recorder_recovered")
            await self._alerts.send(
                Alert(
                    AlertSeverity.WARNING, self.name, "database writes recovered", now,
                    "trading stays halted until an operator resumes",
                )
            )  # fmt: skip
            return
        reason = f"database writes failing after {notice.attempts} attempts: {notice.detail}"
        log.error("recorder_failing", attempts=notice.attempts, error=notice.detail)
        await self._alerts.send(
            Alert(AlertSeverity.CRITICAL, self.name, "trading halted", now, reason)
        )
        self._halts += 1
        await self._control.send(
            ControlCommand(ControlAction.HALT, self.name, now, reason, f"{self.name}-halt-{now}")
        )

    # -- heartbeat -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        writer = self._writer
        if writer is None:
            return {"running": False}
        latencies = list(writer.write_ms)
        return {
            "running": writer.alive,
            "queue_depth": writer.depth,
            "queue_max": self.settings.queue_max_rows,
            "rows_written": writer.rows_written,
            "batches": writer.batches,
            "write_ms": {
                "last": round(latencies[-1], 3) if latencies else 0.0,
                "p99": _percentile(latencies, 0.99),
                "max": round(writer.max_write_ms, 3),
            },
            "intents_recorded": writer.intents_recorded,
            "intents_journaled": 0 if self._journal is None else self._journal.recorded,
            # Bounded by what is on its way to the main database, not by the run's length.
            "journal_rows": 0 if self._journal is None else self._journal.rows,
            "journal_forget_pending": len(self._unforgotten) + writer.committed_intents_waiting,
            "journal_forget_failures": self.journal_forget_failures,
            "intent_ms": {
                "p50": _percentile(list(self.intent_ms), 0.50),
                "p99": _percentile(list(self.intent_ms), 0.99),
            },
            "failures": writer.failures,
            "failing": writer.failing,
            "last_error": writer.last_error,
            "halts_requested": self._halts,
            "candles_dropped": self.candles_dropped,
            "queue_full_waits": self.full_waits,
            "rejected": writer.rejected,
            "lost": writer.lost,
        }


def _percentile(values: list[float], q: float) -> float:
    """Nearest rank, like the loop-lag figures of the heartbeat."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return round(ordered[rank - 1], 3)
