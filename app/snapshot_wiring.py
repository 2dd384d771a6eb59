"""Equity and metrics snapshots: every `database.snapshot_interval_s` of the daemon's clock, one
`equity_snapshots` row from the risk gate's book (none without a gate, `executor.mode = "off"`)
and one `metrics_snapshots` row holding the heartbeat document, redacted exactly as the
heartbeat file is. Consumes and produces nothing on the bus; writes through the recorder.

Ordering. The component sits at stage OBSERVER beside `health`, but shutdown drains OBSERVER
after RECORDER: by the time this component's `run()` is cancelled the recorder's writer has
stopped, and a row put then would be silently lost. So the final snapshot is taken by a
`supervisor.on_stopping` hook, which runs before any stage drains (the recorder is certainly
running and commits it with its final flush). The price: fills the risk gate still handles while
FEED..RISK drain are not in that last equity row; the next run's first snapshot has them.

Snapshots are telemetry, never worth stalling for: a snapshot is skipped (and counted) while the
recorder is not running or its queue is full (the database failing for a while), rather than
waiting for room like order updates do, so neither this loop nor the shutdown hook can hang on
a dead database. Any other failure is logged and counted; the loop goes on and trading with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from app.domain import Clock
from app.health import HealthMonitor
from app.redaction import Redactor
from app.runtime import ComponentSpec, Phase, Stage, Supervisor
from config import Settings
from database.recorder import Recorder
from risk.gate import RiskGate

__all__ = ["Snapshotter", "wire_snapshots"]

log = structlog.get_logger("app.snapshots")

COMPONENT = "snapshots"


class Snapshotter:
    def __init__(
        self,
        *,
        recorder: Recorder,
        clock: Clock,
        interval_s: float,
        gate: RiskGate | None,
        figures: Callable[[], Mapping[str, Any]],
        periodic: Callable[[], bool] = lambda: True,
    ) -> None:
        """`figures`: the metrics document (the redacted heartbeat); `periodic`: whether the
        timed snapshots are due now (the daemon is running, not starting or draining)."""
        self._recorder = recorder
        self._clock = clock
        self._interval_s = interval_s
        self._gate = gate
        self._figures = figures
        self._periodic = periodic
        self.equity_rows = 0
        self.metrics_rows = 0
        self.skipped = 0
        self.failures = 0
        self.last_ts_ms: int | None = None
        self.last_error: str | None = None

    @property
    def progress(self) -> int:
        return self.equity_rows + self.metrics_rows + self.skipped + self.failures

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._interval_s)
            if self._periodic():
                await self.take()

    async def take(self) -> None:
        """One equity row (with a gate) and one metrics row, both stamped with the same time."""
        ts_ms = self._clock.now_ms()
        if self._gate is not None:
            await self._guarded("equity", ts_ms, self._record_equity)
        await self._guarded("metrics", ts_ms, self._record_metrics)

    async def _record_equity(self, ts_ms: int) -> None:
        assert self._gate is not None
        # Read at each snapshot: the gate replaces its book when it restores its saved state.
        book = self._gate.book
        await self._recorder.record_equity(
            equity=book.equity(),
            realized_pnl=book.realised_pnl,
            unrealized_pnl=book.unrealised_pnl(),
            exposure=book.exposure(),
            open_positions=book.open_positions(),
            ts_ms=ts_ms,
        )
        self.equity_rows += 1

    async def _record_metrics(self, ts_ms: int) -> None:
        await self._recorder.record_metrics(self._figures(), ts_ms=ts_ms)
        self.metrics_rows += 1

    async def _guarded(
        self, kind: str, ts_ms: int, record: Callable[[int], Awaitable[None]]
    ) -> None:
        try:
            if not self._recorder_has_room():
                self.skipped += 1
                log.warning("snapshot_skipped", kind=kind, reason="recorder not running or full")
                return
            await record(ts_ms)
        except Exception as exc:  # a lost snapshot must never stop trading (logged, counted)
            self.failures += 1
            self.last_error = f"{kind}: {type(exc).__name__}: {exc}"
            log.error("snapshot_failed", kind=kind, exc_info=exc)
            return
        self.last_ts_ms = ts_ms

    def _recorder_has_room(self) -> bool:
        # A full queue would make the recorder wait for room: a snapshot skips instead.
        status = self._recorder.status()
        return bool(status["running"]) and status["queue_depth"] < status["queue_max"]

    def status(self) -> dict[str, Any]:
        return {
            "interval_s": self._interval_s,
            "equity_rows": self.equity_rows,
            "metrics_rows": self.metrics_rows,
            "last_ts_ms": self.last_ts_ms,
            "skipped": self.skipped,
            "failures": self.failures,
            "last_error": self.last_error,
        }


def wire_snapshots(
    settings: Settings,
    *,
    clock: Clock,
    supervisor: Supervisor,
    health: HealthMonitor,
    recorder: Recorder,
    gate: RiskGate | None,
    redactor: Redactor,
) -> Snapshotter:
    """The `snapshots` component, its shutdown hook and its heartbeat section."""

    def figures() -> Mapping[str, Any]:
        # The heartbeat document through the heartbeat file's own redaction: no secrets.
        document = redactor.redact_obj(health.snapshot())
        assert isinstance(document, dict)
        return document

    snapshotter = Snapshotter(
        recorder=recorder,
        clock=clock,
        interval_s=settings.database.snapshot_interval_s,
        gate=gate,
        figures=figures,
        periodic=lambda: supervisor.phase is Phase.RUNNING,
    )
    supervisor.add(
        ComponentSpec(
            COMPONENT,
            Stage.OBSERVER,
            run=snapshotter.run,
            restartable=True,
            progress=lambda: snapshotter.progress,
        )
    )
    supervisor.on_stopping(snapshotter.take)
    health.add_section(COMPONENT, snapshotter.status)
    return snapshotter
