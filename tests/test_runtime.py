"""The supervisor: ordered start-up and drain, crash policy, restarts with backoff, signals."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from app.bus import (
    MARKET_KLINE,
    ORDER_REQUEST,
    ORDER_UPDATE,
    SIGNAL,
    SYSTEM_ALERT,
    SYSTEM_CONTROL,
    Bus,
)
from app.domain import (
    Alert,
    AlertSeverity,
    ControlAction,
    ControlCommand,
    Kline,
    ManualClock,
    OrderUpdated,
    Signal,
    SubmitOrder,
)
from app.runtime import (
    ComponentSpec,
    ComponentState,
    ExitCode,
    RuntimeOptions,
    Stage,
    Supervisor,
)
from tests.factories import kline, order, update
from tests.factories import signal as make_signal


async def until(predicate: Callable[[], bool], rounds: int = 10_000) -> None:
    """Yield to the loop until something has happened (no time passes)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


class AlertInbox:
    def __init__(self, bus: Bus, supervisor: Supervisor) -> None:
        self.alerts: list[Alert] = []
        bus.subscribe(SYSTEM_ALERT.channel(), self.on_alert, subscriber="alert-inbox")
        supervisor.add(ComponentSpec("alert-inbox", Stage.OBSERVER))

    async def on_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


def make(clock: ManualClock | None = None, **options: Any) -> tuple[Bus, Supervisor, ManualClock]:
    clock = clock or ManualClock()
    bus = Bus()
    supervisor = Supervisor(bus=bus, clock=clock, options=RuntimeOptions(**options))
    return bus, supervisor, clock


# -- ordered drain under load -------------------------------------------------------------
class Pipeline:
    """feed -> strategy -> risk -> executor -> recorder, with a global sequence of events."""

    def __init__(self, bus: Bus, supervisor: Supervisor, signal_after: int) -> None:
        self.seq = 0
        self.last: dict[str, int] = {}
        self.published = 0
        self.orders_sent: list[str] = []
        self.orders_received: list[str] = []
        self.updates_sent: list[str] = []
        self.updates_recorded: list[str] = []
        self.signal_after = signal_after
        self._market = bus.sender(MARKET_KLINE.channel("BTCUSDT"))
        self._signals = bus.sender(SIGNAL.channel("s1"))
        self._orders = bus.sender(ORDER_REQUEST.channel())
        self._updates = bus.sender(ORDER_UPDATE.channel())
        bus.subscribe(MARKET_KLINE.any(), self.on_kline, subscriber="strategy", capacity=64)
        bus.subscribe(SIGNAL.any(), self.on_signal, subscriber="risk", capacity=8)
        bus.subscribe(ORDER_REQUEST.channel(), self.on_order, subscriber="executor", capacity=4)
        bus.subscribe(ORDER_UPDATE.channel(), self.on_update, subscriber="recorder", capacity=4)
        supervisor.add(ComponentSpec("feed", Stage.FEED, run=self.feed, restartable=True))
        supervisor.add(ComponentSpec("strategy", Stage.STRATEGY))
        supervisor.add(ComponentSpec("risk", Stage.RISK))
        supervisor.add(ComponentSpec("executor", Stage.EXECUTOR))
        supervisor.add(ComponentSpec("recorder", Stage.RECORDER))

    def mark(self, who: str) -> None:
        self.seq += 1
        self.last[who] = self.seq

    async def feed(self) -> None:
        n = 0
        while True:  # a feed never ends by itself: shutdown cancels it
            await self._market.send(kline(open_time_ms=n * 60_000))
            self.mark("feed")
            n += 1
            if n == self.signal_after:
                os.kill(os.getpid(), signal.SIGTERM)  # a real signal, through the real handler
            await asyncio.sleep(0)

    async def on_kline(self, k: Kline) -> None:
        self.mark("strategy")
        await self._signals.send(make_signal("s1", k.open_time_ms))

    async def on_signal(self, s: Signal) -> None:
        self.mark("risk")
        request = order(s.ts_ms)
        self.orders_sent.append(request.client_order_id)
        await self._orders.send(request)

    async def on_order(self, request: Any) -> None:
        assert isinstance(request, SubmitOrder)
        self.mark("executor")
        self.orders_received.append(request.client_order_id)
        await asyncio.sleep(0)  # a slower stage: backlog builds up behind it
        event = update(request.ts_ms)
        self.updates_sent.append(event.client_order_id)
        await self._updates.send(event)

    async def on_update(self, event: Any) -> None:
        assert isinstance(event, OrderUpdated)
        self.mark("recorder")
        self.updates_recorded.append(event.client_order_id)


async def test_sigterm_under_load_drains_in_order_and_loses_no_order() -> None:
    bus, supervisor, _ = make(drain_timeout_s=30)
    pipeline = Pipeline(bus, supervisor, signal_after=500)
    code = await supervisor.run()
    assert code is ExitCode.OK
    assert supervisor.shutdown_reason == "signal SIGTERM"
    assert supervisor.undelivered == 0
    assert len(pipeline.orders_sent) >= 500
    assert pipeline.orders_received == pipeline.orders_sent  # none lost, none reordered
    assert pipeline.updates_recorded == pipeline.updates_sent
    last = pipeline.last
    # Producers stopped first, then each stage finished before the next one did.
    assert last["feed"] < last["strategy"] < last["risk"] < last["executor"] < last["recorder"]
    assert all(r.state is ComponentState.STOPPED for r in supervisor.components)


async def test_startup_runs_hooks_from_the_last_stage_to_the_first() -> None:
    _, supervisor, _ = make()
    started: list[str] = []

    def hook(name: str) -> Callable[[], Any]:
        async def start() -> None:
            started.append(name)

        return start

    for name, stage in [("feed", Stage.FEED), ("recorder", Stage.RECORDER), ("risk", Stage.RISK)]:
        supervisor.add(ComponentSpec(name, stage, start=hook(name)))
    supervisor.on_running(lambda: supervisor.request_shutdown("test over"))
    assert await supervisor.run(install_signal_handlers=False) is ExitCode.OK
    assert started == ["recorder", "risk", "feed"]


async def test_failed_start_hook_stops_before_producers_start() -> None:
    bus, supervisor, _ = make()
    alerts = AlertInbox(bus, supervisor)
    feed_ran = asyncio.Event()

    async def broken_start() -> None:
        raise ConnectionError("reconciliation failed")

    async def feed() -> None:
        feed_ran.set()

    supervisor.add(ComponentSpec("executor", Stage.EXECUTOR, start=broken_start))
    supervisor.add(ComponentSpec("feed", Stage.FEED, run=feed))
    assert await supervisor.run(install_signal_handlers=False) is ExitCode.COMPONENT_FAILED
    assert not feed_ran.is_set()
    assert [a.source for a in alerts.alerts] == ["executor"]
    assert "reconciliation failed" in alerts.alerts[0].detail


# -- crash policy -------------------------------------------------------------------------
async def test_crashing_non_restartable_component_stops_the_daemon_with_an_alert() -> None:
    bus, supervisor, _ = make()
    alerts = AlertInbox(bus, supervisor)
    recorded: list[int] = []

    async def executor(request: Any) -> None:
        if request.ts_ms == 2:
            raise RuntimeError("executor bug")

    async def recorder(event: Any) -> None:
        recorded.append(event.ts_ms)

    bus.subscribe(ORDER_REQUEST.channel(), executor, subscriber="executor")
    bus.subscribe(ORDER_UPDATE.channel(), recorder, subscriber="recorder")
    supervisor.add(ComponentSpec("executor", Stage.EXECUTOR))
    supervisor.add(ComponentSpec("recorder", Stage.RECORDER))
    orders = bus.sender(ORDER_REQUEST.channel())
    updates = bus.sender(ORDER_UPDATE.channel())

    async def send_all() -> None:
        for n in range(5):
            await orders.send(order(n))
            await updates.send(update(n))

    supervisor.on_running(lambda: None)
    runner = asyncio.create_task(supervisor.run(install_signal_handlers=False))
    await send_all()
    code = await runner
    assert code is ExitCode.COMPONENT_FAILED
    record = {r.spec.name: r for r in supervisor.components}["executor"]
    assert record.state is ComponentState.FAILED
    assert record.last_error == "RuntimeError: executor bug"
    assert len(alerts.alerts) == 1
    assert alerts.alerts[0].severity is AlertSeverity.CRITICAL
    assert alerts.alerts[0].source == "executor"
    assert recorded == [0, 1, 2, 3, 4]  # the rest of the daemon still drained in order
    assert supervisor.undelivered == 2  # orders 3 and 4 never reached the dead executor


async def test_restartable_component_restarts_with_exponential_backoff() -> None:
    bus, supervisor, clock = make(
        restart_backoff_initial_s=0.5,
        restart_backoff_max_s=1.5,
        restart_max_in_window=3,
        restart_window_s=60,
    )
    alerts = AlertInbox(bus, supervisor)
    attempts = 0

    async def flaky_feed() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionResetError(f"stream dropped #{attempts}")

    supervisor.add(ComponentSpec("feed", Stage.FEED, run=flaky_feed, restartable=True))
    runner = asyncio.create_task(supervisor.run(install_signal_handlers=False))
    feed = {r.spec.name: r for r in supervisor.components}["feed"]
    for expected_delay in (0.5, 1.0, 1.5):  # doubles, capped at the maximum
        await until(lambda: clock.sleeper_count == 1)
        assert feed.state is ComponentState.RESTARTING
        tries = attempts
        clock.advance(expected_delay - 0.01)
        await until(lambda: True, rounds=20)
        assert attempts == tries, "restarted before its backoff elapsed"
        clock.advance(0.01)
        await until(lambda tries=tries: attempts == tries + 1)  # type: ignore[misc]
    # The fourth crash within the window exhausts the restart budget: the daemon stops.
    assert await runner is ExitCode.COMPONENT_FAILED
    assert attempts == 4
    assert feed.restarts == 3
    assert feed.state is ComponentState.FAILED
    assert len(alerts.alerts) == 4


async def test_restarted_handler_skips_only_the_message_it_failed_on() -> None:
    bus, supervisor, clock = make(restart_backoff_initial_s=1)
    handled: list[int] = []

    async def strategy(k: Kline) -> None:
        if k.open_time_ms == 2:
            raise ValueError("bad bar")
        handled.append(k.open_time_ms)

    bus.subscribe(MARKET_KLINE.any(), strategy, subscriber="strategy")
    supervisor.add(ComponentSpec("strategy", Stage.STRATEGY, restartable=True))
    runner = asyncio.create_task(supervisor.run(install_signal_handlers=False))
    market = bus.sender(MARKET_KLINE.channel("BTCUSDT"))
    for n in range(5):
        await market.send(kline(open_time_ms=n))
    await until(lambda: clock.sleeper_count == 1)
    clock.advance(1)
    await until(lambda: len(handled) == 4)
    supervisor.request_shutdown("test over")
    assert await runner is ExitCode.OK
    assert handled == [0, 1, 3, 4]
    record = {r.spec.name: r for r in supervisor.components}["strategy"]
    assert (record.failures, record.restarts) == (1, 1)


# -- shutdown paths -----------------------------------------------------------------------
async def test_second_signal_cancels_the_drain_at_once() -> None:
    bus, supervisor, _ = make(drain_timeout_s=3600)  # only the second signal can end this
    never = asyncio.Event()
    entered = asyncio.Event()

    async def stuck(_: Any) -> None:
        entered.set()
        await never.wait()

    bus.subscribe(ORDER_REQUEST.channel(), stuck, subscriber="executor")
    supervisor.add(ComponentSpec("executor", Stage.EXECUTOR))
    runner = asyncio.create_task(supervisor.run(install_signal_handlers=False))
    orders = bus.sender(ORDER_REQUEST.channel())
    for n in range(3):
        await orders.send(order(n))
    await entered.wait()
    supervisor.handle_signal("SIGTERM")
    await until(lambda: supervisor.phase.value == "draining")
    supervisor.handle_signal("SIGINT")
    assert await runner is ExitCode.FORCED
    assert supervisor.undelivered == 2


async def test_missed_drain_deadline_counts_what_was_not_delivered() -> None:
    bus, supervisor, _ = make(drain_timeout_s=0.05)
    entered = asyncio.Event()

    async def stuck(_: Any) -> None:
        entered.set()
        await asyncio.Event().wait()

    bus.subscribe(ORDER_UPDATE.channel(), stuck, subscriber="recorder")
    supervisor.add(ComponentSpec("recorder", Stage.RECORDER))
    runner = asyncio.create_task(supervisor.run(install_signal_handlers=False))
    updates = bus.sender(ORDER_UPDATE.channel())
    for n in range(4):
        await updates.send(update(n))
    await entered.wait()
    supervisor.request_shutdown("test")
    assert await runner is ExitCode.DRAIN_INCOMPLETE
    assert supervisor.undelivered == 3


async def test_shutdown_command_on_system_control() -> None:
    bus, supervisor, clock = make()
    control = bus.sender(SYSTEM_CONTROL.channel())
    runner = asyncio.create_task(supervisor.run(install_signal_handlers=False))
    await until(lambda: supervisor.phase.value == "running")
    await control.send(ControlCommand(ControlAction.SHUTDOWN, "operator", clock.now_ms()))
    assert await runner is ExitCode.OK
    assert supervisor.shutdown_reason == "control command from operator"


async def test_a_finished_replay_feed_can_end_the_run() -> None:
    bus, supervisor, _ = make()
    market = bus.sender(MARKET_KLINE.channel("BTCUSDT"))
    seen: list[int] = []

    async def strategy(k: Kline) -> None:
        seen.append(k.open_time_ms)

    async def replay() -> None:
        for n in range(10):
            await market.send(kline(open_time_ms=n))
            await asyncio.sleep(0)

    bus.subscribe(MARKET_KLINE.any(), strategy, subscriber="strategy")
    supervisor.add(ComponentSpec("strategy", Stage.STRATEGY))
    supervisor.add(ComponentSpec("replay", Stage.FEED, run=replay, finish_stops_daemon=True))
    assert await supervisor.run(install_signal_handlers=False) is ExitCode.OK
    assert seen == list(range(10))


def test_components_are_named_once() -> None:
    _, supervisor, _ = make()
    supervisor.add(ComponentSpec("x", Stage.RISK))
    with pytest.raises(ValueError, match="twice"):
        supervisor.add(ComponentSpec("x", Stage.RISK))
