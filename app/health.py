"""Health: the heartbeat file and the measurements behind it.

`HealthMonitor` (an OBSERVER-stage component) writes `status/heartbeat.json` every
`interval_s`: identity (pid, version, mode, instance), phase and uptime, per-component state and
age of last progress, every queue's depth, drops and rate, every channel's traffic, event-loop
lag (p99 over a window, measured by `LoopLagMonitor`) and the trading state published on
`risk.state`. The file is replaced atomically (temp file, fsync, rename, fsync of the folder),
so a reader never sees half a document. `app.status` reads it back for `tradebus status`.

Consumes `risk.state`. Produces nothing on the bus; pings the systemd watchdog when asked.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from app.atomic_file import replace_atomically
from app.bus import Bus
from app.domain import Clock, TradingState, TradingStateChanged
from app.redaction import Redactor
from app.runtime import ComponentRecord, ComponentState, ExitCode, Phase, Supervisor
from app.systemd import SystemdNotifier

log = structlog.get_logger("app.health")

HEARTBEAT_SCHEMA = 1


@dataclass(frozen=True)
class HealthOptions:
    heartbeat_path: Path
    interval_s: float = 5.0
    stale_after_s: float = 20.0
    stall_after_s: float = 60.0
    loop_lag_p99_max_ms: float = 250.0


class LoopLagMonitor:
    """Measures how late the event loop wakes a timer: the lag every other task suffers too.

    This one looks at real time on purpose: it measures the loop, not the market.
    """

    def __init__(self, *, sample_s: float = 0.25, window_s: float = 60.0) -> None:
        self.sample_s = sample_s
        self.samples: deque[float] = deque(maxlen=max(1, round(window_s / sample_s)))
        self.measured = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.sample_s)
            self.record(loop.time() - before - self.sample_s)

    def record(self, lag_s: float) -> None:
        self.samples.append(max(0.0, lag_s))
        self.measured += 1

    def summary_ms(self) -> dict[str, float | int]:
        if not self.samples:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}
        ordered = sorted(self.samples)

        def pick(q: float) -> float:
            # Nearest rank: the smallest sample with at least q of all samples at or below it
            # (p50 of 1..100 is 50, p99 is 99). The epsilon keeps 0.99 * 100 from rounding up.
            rank = max(1, math.ceil(q * len(ordered) - 1e-9))
            return round(ordered[rank - 1] * 1e3, 3)

        return {"p50": pick(0.50), "p99": pick(0.99), "max": pick(1.0), "samples": len(ordered)}


class _Rate:
    """Turns ever-growing counters into per-second rates between two heartbeats."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, float]] = {}

    def __call__(self, key: str, count: int, now: float) -> float:
        previous = self._last.get(key)
        self._last[key] = (count, now)
        if previous is None or now <= previous[1]:
            return 0.0
        return round((count - previous[0]) / (now - previous[1]), 3)


class HealthMonitor:
    def __init__(
        self,
        *,
        options: HealthOptions,
        supervisor: Supervisor,
        bus: Bus,
        clock: Clock,
        loop_lag: LoopLagMonitor,
        identity: dict[str, Any],
        redactor: Redactor,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.options = options
        self._supervisor = supervisor
        self._bus = bus
        self._clock = clock
        self._loop_lag = loop_lag
        self._identity = identity
        self._redactor = redactor
        self._notifier = notifier
        self._started = clock.monotonic()
        self._progress: dict[str, tuple[int, float]] = {}
        # When a heartbeat first saw work waiting for each component (no progress since).
        self._waiting_since: dict[str, float] = {}
        self._rate = _Rate()
        self._writing: asyncio.Future[None] | None = None
        self.trading_state: TradingState | None = None
        self.writes = 0
        self._sections: dict[str, Callable[[], dict[str, Any]]] = {}

    def add_section(self, name: str, provider: Callable[[], dict[str, Any]]) -> None:
        """Include ``provider()`` under ``name`` in every heartbeat (e.g. the venue's
        rate-limit and stream state). A provider that raises is reported, never fatal."""
        if name in self._sections:
            raise ValueError(f"heartbeat section {name!r} already registered")
        self._sections[name] = provider

    async def on_trading_state(self, change: TradingStateChanged) -> None:
        self.trading_state = change.state

    async def run(self) -> None:
        interval = self.options.interval_s
        if self._notifier is not None and self._notifier.watchdog_interval_s:
            interval = min(interval, self._notifier.watchdog_interval_s)
        failing = False
        while True:
            try:
                document = await self.write_once()
            except OSError as exc:
                # A full disk or a read-only status folder must not stop trading: log it once
                # per outage and keep trying. `tradebus status` sees the file go stale.
                if not failing:
                    log.error(
                        "heartbeat_write_failed",
                        path=str(self.options.heartbeat_path),
                        error=str(exc),
                    )
                failing = True
            else:
                if failing:
                    log.info("heartbeat_write_recovered")
                failing = False
                if self._notifier is not None:
                    self._notifier.status(_one_line(document))
            if self._notifier is not None:
                self._notifier.watchdog()  # liveness of the loop, whatever the disk does
            await self._clock.sleep(interval)

    async def beat(self) -> None:
        """Write a heartbeat now (on lifecycle changes), between the periodic ones."""
        await self.write_once()

    async def write_once(self, exit_code: ExitCode | None = None) -> dict[str, Any]:
        document = self.snapshot(exit_code)
        # A write whose caller was cancelled (the health task stopped at shutdown) still runs
        # in its thread. Let it land first: run side by side, the older document could replace
        # this newer one (the final "stopped" heartbeat) and both would share one temp file.
        while self._writing is not None and not self._writing.done():
            await asyncio.wait({self._writing})
        writing = asyncio.get_running_loop().run_in_executor(
            None, write_atomically, self.options.heartbeat_path, document, self._redactor
        )
        writing.add_done_callback(_retrieve_exception)
        self._writing = writing
        await asyncio.shield(writing)
        self.writes += 1
        return document

    def snapshot(self, exit_code: ExitCode | None = None) -> dict[str, Any]:
        now = self._clock.monotonic()
        supervisor = self._supervisor
        stalled_for: dict[str, float] = {}
        components = {
            r.spec.name: self._component(r, now, stalled_for) for r in supervisor.components
        }
        queues = {
            s.name: {
                "source": s.source,
                "depth": len(s.inbox),
                "capacity": s.inbox.capacity,
                "overflow": s.inbox.overflow.value,
                "high_water": s.inbox.high_water,
                "delivered": s.inbox.taken,
                "dropped": s.inbox.dropped,
                "conflated": s.inbox.conflated,
                "refused_after_close": s.inbox.rejected_closed,
                "blocked_senders": s.inbox.blocked_senders,
                "rate_per_s": self._rate(f"q:{s.name}", s.inbox.taken, now),
            }
            for s in self._bus.subscriptions()
            if s.inbox is not None
        }
        channels = {
            t.name: {
                "published": t.published,
                "unrouted": t.unrouted,
                "rate_per_s": self._rate(f"c:{t.name}", t.published, now),
            }
            for t in self._bus.topics
        }
        loop_lag = self._loop_lag.summary_ms()
        problems = self._problems(components, stalled_for, loop_lag)
        return {
            "schema": HEARTBEAT_SCHEMA,
            "timestamp": self._clock.now()
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "ts_ms": self._clock.now_ms(),
            **self._identity,
            "pid": os.getpid(),
            "phase": supervisor.phase.value,
            "uptime_s": round(now - self._started, 3),
            "interval_s": self.options.interval_s,
            "stale_after_s": self.options.stale_after_s,
            "healthy": not problems,
            "problems": problems,
            "trading_state": self.trading_state.value if self.trading_state else None,
            "components": components,
            "queues": queues,
            "channels": channels,
            "loop_lag_ms": loop_lag,
            **self._extra_sections(),
            "undelivered_at_shutdown": supervisor.undelivered,
            "exit_code": int(exit_code) if exit_code is not None else None,
        }

    def _extra_sections(self) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for name, provider in self._sections.items():
            try:
                sections[name] = provider()
            except Exception as exc:  # noqa: BLE001 - a broken section must not stop heartbeats
                sections[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return sections

    def _component(
        self, record: ComponentRecord, now: float, stalled_for: dict[str, float]
    ) -> dict[str, Any]:
        name = record.spec.name
        progress = record.progress
        pending = record.depth
        previous = self._progress.get(name)
        if previous is None or previous[0] != progress:
            previous = self._progress[name] = (progress, now)
        # A component is stalled when work has been waiting and no progress was made for
        # stall_after_s. Idle time before the work arrived does not count: a queue quiet for
        # an hour that receives one message is not stalled the moment a heartbeat sees it.
        if pending:
            waiting_since = self._waiting_since.setdefault(name, now)
            stalled_for[name] = now - max(previous[1], waiting_since)
        else:
            self._waiting_since.pop(name, None)
        return {
            "state": record.state.value,
            "stage": record.spec.stage.name.lower(),
            "restarts": record.restarts,
            "failures": record.failures,
            "last_error": record.last_error,
            "pending": pending,
            "progress": progress,
            "last_progress_age_s": round(now - previous[1], 3),
        }

    def _problems(
        self,
        components: dict[str, Any],
        stalled_for: dict[str, float],
        loop_lag: dict[str, Any],
    ) -> list[str]:
        problems: list[str] = []
        phase = self._supervisor.phase
        if phase is not Phase.RUNNING:
            problems.append(f"daemon is {phase.value}")
        for name, info in components.items():
            state = info["state"]
            if state in (ComponentState.FAILED, ComponentState.RESTARTING):
                problems.append(f"{name} is {state}: {info['last_error']}")
            elif stalled_for.get(name, 0.0) > self.options.stall_after_s:
                problems.append(
                    f"{name} stalled: {info['pending']} pending, no progress for "
                    f"{stalled_for[name]:.0f}s"
                )
        limit = self.options.loop_lag_p99_max_ms
        if loop_lag["p99"] > limit:
            problems.append(f"event-loop lag p99 {loop_lag['p99']:.0f} ms > {limit:.0f} ms")
        return problems


def _retrieve_exception(future: asyncio.Future[None]) -> None:
    # A write nobody awaits any more (its caller was cancelled) must not end in asyncio's
    # "exception was never retrieved"; the next write reports its own failure.
    if not future.cancelled():
        future.exception()


def _one_line(document: dict[str, Any]) -> str:
    verdict = "healthy" if document["healthy"] else "; ".join(document["problems"])
    return f"{document['phase']}, {verdict}"


def write_atomically(path: Path, document: dict[str, Any], redactor: Redactor) -> None:
    """Replace `path` with the JSON document (redacted) so that a reader sees the old or the
    new file, never a torn one, even across a power cut."""
    text = json.dumps(redactor.redact_obj(document), indent=2, sort_keys=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, text.encode())
