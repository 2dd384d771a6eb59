"""The supervisor: one TaskGroup owns every component task; start-up, crash policy and the
ordered shutdown live here and nowhere else.

Start-up runs stages from last to first (observers, recorder, executor, risk, strategies,
feeds): each component's `start()` hook is awaited (the place for recovery and reconciliation)
before its tasks start, so no producer runs before its consumers are ready.

Shutdown (first SIGTERM/SIGINT, a `shutdown` command on `system.control`, or a fatal crash)
runs stages from first to last. For each stage: its inboxes are closed (end of stream), its
delivery tasks drain what is pending, then its `run()` tasks are cancelled — all within
`drain_timeout_s`. Feeds therefore stop first and the recorder and observers last. What a
stage could not deliver before its deadline is counted, logged and turns the exit code into
DRAIN_INCOMPLETE. A second signal cancels everything at once (exit code FORCED).

A component task that raises is logged with the message it failed on, announced on
`system.alert`, and either restarted with exponential backoff (when declared restartable, up to
`restart_max_in_window` restarts per `restart_window_s`) or brings the daemon down with
COMPONENT_FAILED after an ordered drain of everything else.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from app.bus import SYSTEM_ALERT, SYSTEM_CONTROL, Bus, Subscription
from app.domain import Alert, AlertSeverity, Clock, ControlAction, ControlCommand
from app.lifecycle import (
    EXIT_CODE_PRECEDENCE,
    ComponentRecord,
    ComponentSpec,
    ComponentState,
    ExitCode,
    Phase,
    RuntimeOptions,
    Stage,
    StartRefused,
)

__all__ = [
    "ComponentRecord",
    "ComponentSpec",
    "ComponentState",
    "ExitCode",
    "Phase",
    "RuntimeOptions",
    "Stage",
    "Supervisor",
]

log = structlog.get_logger("app.runtime")

SUPERVISOR_NAME = "supervisor"


class _Fatal(Exception):
    """A component cannot go on; the supervisor stops the daemon."""


class Supervisor:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        options: RuntimeOptions | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.options = options or RuntimeOptions()
        self.phase = Phase.STARTING
        self.exit_code = ExitCode.OK
        self.shutdown_reason: str | None = None
        self.undelivered = 0
        self._records: dict[str, ComponentRecord] = {}
        self._alerts = bus.sender(SYSTEM_ALERT.channel())
        self._shutdown = asyncio.Event()
        self._forced = False
        self._signals_seen = 0
        self._group: asyncio.TaskGroup | None = None
        self._starting: asyncio.Task[Exception | None] | None = None
        self._on_running: list[Callable[[], Awaitable[None] | None]] = []
        self._on_stopping: list[Callable[[], Awaitable[None] | None]] = []
        bus.subscribe(SYSTEM_CONTROL.channel(), self._on_control, subscriber=SUPERVISOR_NAME)
        self.add(ComponentSpec(SUPERVISOR_NAME, Stage.OBSERVER))

    # -- wiring ----------------------------------------------------------------------------
    def add(self, spec: ComponentSpec) -> None:
        if spec.name in self._records:
            raise ValueError(f"component {spec.name!r} is added twice")
        if self.phase is not Phase.STARTING:
            raise RuntimeError("components are added before run()")
        self._records[spec.name] = ComponentRecord(spec, self.bus.subscriptions(spec.name))

    def on_running(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Called (and awaited, if it is a coroutine function) once every component started."""
        self._on_running.append(callback)

    def on_stopping(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Called (and awaited, if it is a coroutine function) when the drain begins."""
        self._on_stopping.append(callback)

    @property
    def components(self) -> list[ComponentRecord]:
        return list(self._records.values())

    # -- requests from outside -------------------------------------------------------------
    def request_shutdown(self, reason: str, exit_code: ExitCode = ExitCode.OK) -> None:
        """Start the ordered drain (idempotent; the most severe exit code wins)."""
        self._escalate(exit_code)
        if not self._shutdown.is_set():
            self.shutdown_reason = reason
            log.info("shutdown_requested", reason=reason, exit_code=int(exit_code))
            self._shutdown.set()

    def _escalate(self, exit_code: ExitCode) -> None:
        if EXIT_CODE_PRECEDENCE.index(exit_code) > EXIT_CODE_PRECEDENCE.index(self.exit_code):
            self.exit_code = exit_code

    def handle_signal(self, name: str) -> None:
        """First signal: ordered drain. Second: cancel everything now."""
        self._signals_seen += 1
        if self._signals_seen == 1:
            self.request_shutdown(f"signal {name}")
            return
        log.warning("forced_exit", signal=name)
        self._forced = True
        self._escalate(ExitCode.FORCED)
        self._shutdown.set()
        for record in self._records.values():
            for task in (*record.delivery_tasks, *record.run_tasks):
                task.cancel()
        if self._starting is not None:
            self._starting.cancel()

    async def _on_control(self, command: ControlCommand) -> None:
        if command.action is ControlAction.SHUTDOWN:
            self.request_shutdown(f"control command from {command.requested_by}")

    # -- main ------------------------------------------------------------------------------
    async def run(self, *, install_signal_handlers: bool = True) -> ExitCode:
        """Run until shutdown; returns the exit code. Never raises for a component's failure."""
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.handle_signal, signum.name)
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                await self._start_all()
                if not self._shutdown.is_set():
                    self.phase = Phase.RUNNING
                    log.info("daemon_started", components=len(self._records))
                    await _notify(self._on_running)
                await self._shutdown.wait()
                await self._drain_all()
        finally:
            if install_signal_handlers:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
            self.phase = Phase.STOPPED
        log.info(
            "daemon_stopped",
            exit_code=int(self.exit_code),
            reason=self.shutdown_reason,
            undelivered=self.undelivered,
        )
        return self.exit_code

    async def _start_all(self) -> None:
        assert self._group is not None
        for stage in sorted(Stage, reverse=True):
            for record in self._in_stage(stage):
                if self._shutdown.is_set():
                    return
                # Subscriptions are read now, so wiring may subscribe before or after add().
                record.subscriptions = self.bus.subscriptions(record.spec.name)
                record.state = ComponentState.STARTING
                if record.spec.start is not None and not await self._run_start_hook(record):
                    return
                self._launch(record)
                record.state = ComponentState.RUNNING

    async def _run_start_hook(self, record: ComponentRecord) -> bool:
        """Await a start hook, unless shutdown is requested meanwhile. False: do not go on."""
        assert self._group is not None
        assert record.spec.start is not None
        hook = record.spec.start
        with structlog.contextvars.bound_contextvars(component=record.spec.name):
            starting = self._group.create_task(_call(hook), name=f"{record.spec.name}:start")
        self._starting = starting
        stop = self._group.create_task(self._shutdown.wait(), name="shutdown-watch")
        try:
            await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            self._starting = None
        if not starting.done():
            starting.cancel()
            await asyncio.wait({starting})
            record.state = ComponentState.STOPPED
            return False
        if starting.cancelled():
            record.state = ComponentState.STOPPED
            return False
        error = starting.result()
        if error is not None:
            record.state = ComponentState.FAILED
            await self._report_crash(record, "start", error, None)
            code = (
                ExitCode.CONFIG_ERROR
                if isinstance(error, StartRefused)
                else ExitCode.COMPONENT_FAILED
            )
            self.request_shutdown(f"{record.spec.name} failed to start", code)
            return False
        return True

    def _launch(self, record: ComponentRecord) -> None:
        assert self._group is not None
        name = record.spec.name
        for subscription in record.subscriptions:
            task = self._group.create_task(
                self._supervise(record, subscription.source, subscription.deliver, subscription),
                name=f"{name}:deliver:{subscription.source}",
            )
            record.delivery_tasks.append(task)
        if record.spec.run is not None:
            task = self._group.create_task(
                self._supervise(record, "run", record.spec.run, None), name=f"{name}:run"
            )
            record.run_tasks.append(task)

    async def _supervise(
        self,
        record: ComponentRecord,
        part: str,
        body: Callable[[], Awaitable[None]],
        subscription: Subscription[Any] | None,
    ) -> None:
        structlog.contextvars.bind_contextvars(component=record.spec.name)
        while True:
            try:
                await body()
            except Exception as exc:  # noqa: BLE001 - the policy below decides, nothing is lost
                await self._report_crash(record, part, exc, subscription)
                try:
                    delay = self._restart_delay(record)
                except _Fatal as fatal:
                    record.state = ComponentState.FAILED
                    self.request_shutdown(str(fatal), ExitCode.COMPONENT_FAILED)
                    return
                record.state = ComponentState.RESTARTING
                log.warning(
                    "component_restarting", part=part, delay_s=delay, restarts=record.restarts
                )
                await self.clock.sleep(delay)
                record.restarts += 1
                if record.state is ComponentState.RESTARTING:
                    record.state = ComponentState.RUNNING
                continue
            if subscription is None and self.phase is not Phase.DRAINING:
                record.state = ComponentState.FINISHED
                log.info("component_finished", part=part)
                if record.spec.finish_stops_daemon:
                    self.request_shutdown(f"{record.spec.name} finished")
            return

    def _restart_delay(self, record: ComponentRecord) -> float:
        if not record.spec.restartable:
            raise _Fatal(f"{record.spec.name} crashed and is not restartable")
        if self.phase is Phase.DRAINING:
            raise _Fatal(f"{record.spec.name} crashed while draining")
        options = self.options
        now = self.clock.monotonic()
        times = record.restart_times
        while times and now - times[0] > options.restart_window_s:
            times.popleft()
        if len(times) >= options.restart_max_in_window:
            raise _Fatal(
                f"{record.spec.name} crashed {len(times) + 1} times within "
                f"{options.restart_window_s:g}s"
            )
        times.append(now)
        return float(
            min(
                options.restart_backoff_max_s,
                options.restart_backoff_initial_s * 2 ** (len(times) - 1),
            )
        )

    async def _report_crash(
        self,
        record: ComponentRecord,
        part: str,
        exc: Exception,
        subscription: Subscription[Any] | None,
    ) -> None:
        record.failures += 1
        record.last_error = f"{type(exc).__name__}: {exc}"
        poison = subscription.in_flight if subscription is not None else None
        if subscription is not None:
            subscription.in_flight = None
        log.error(
            "component_crashed",
            part=part,
            restartable=record.spec.restartable,
            failed_message_type=type(poison).__name__ if poison is not None else None,
            failed_message=repr(poison)[:500] if poison is not None else None,
            exc_info=exc,
        )
        alert = Alert(
            severity=AlertSeverity.CRITICAL,
            source=record.spec.name,
            title=f"{record.spec.name} crashed",
            detail=f"{part}: {record.last_error}",
            ts_ms=self.clock.now_ms(),
        )
        await self._alerts.send(alert)  # system.alert drops the oldest; this never blocks

    # -- shutdown --------------------------------------------------------------------------
    async def _drain_all(self) -> None:
        self.phase = Phase.DRAINING
        await _notify(self._on_stopping)
        for stage in sorted(Stage):
            await self._drain_stage(stage)

    async def _drain_stage(self, stage: Stage) -> None:
        records = list(self._in_stage(stage))
        if not records:
            return
        for record in records:
            if record.state not in (ComponentState.FAILED, ComponentState.FINISHED):
                record.state = ComponentState.DRAINING
            self.bus.close_subscriber(record.spec.name)
        deadline = self.options.drain_timeout_s
        deliveries = [t for r in records for t in r.delivery_tasks if not t.done()]
        if deliveries and not self._forced:
            _, late = await asyncio.wait(deliveries, timeout=deadline)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        runs = [t for r in records for t in r.run_tasks if not t.done()]
        for task in runs:
            task.cancel()
        if runs:
            # run() tasks get their own deadline to finish their clean-up after cancellation.
            _, stuck = await asyncio.wait(runs, timeout=deadline)
            if stuck:
                log.error("component_stop_overran", stage=stage.name.lower(), tasks=len(stuck))
        lost = 0
        for record in records:
            for subscription in record.subscriptions:
                if subscription.inbox is not None and len(subscription.inbox):
                    count = subscription.inbox.discard()
                    lost += count
                    log.error(
                        "messages_undelivered",
                        subscription=subscription.name,
                        count=count,
                        forced=self._forced,
                    )
            if record.state is ComponentState.DRAINING:
                record.state = ComponentState.STOPPED
        if lost:
            self.undelivered += lost
            self._escalate(ExitCode.DRAIN_INCOMPLETE)
        log.info("stage_drained", stage=stage.name.lower(), undelivered=lost)

    def _in_stage(self, stage: Stage) -> list[ComponentRecord]:
        return [r for r in self._records.values() if r.spec.stage is stage]


async def _notify(callbacks: list[Callable[[], Awaitable[None] | None]]) -> None:
    for callback in callbacks:
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except Exception:  # a lifecycle observer must not stop the lifecycle
            log.exception(
                "lifecycle_callback_failed", callback=getattr(callback, "__qualname__", "?")
            )


async def _call(hook: Callable[[], Awaitable[None]]) -> Exception | None:
    """Run a start hook; its failure is returned, not raised, so the TaskGroup stays whole."""
    try:
        await hook()
    except Exception as exc:  # noqa: BLE001 - handed to the crash policy by the caller
        return exc
    return None
