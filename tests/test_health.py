"""Tests for app.health: the heartbeat document, stall and loop-lag verdicts, atomic writes.

Real parts: a live `Bus`, a `Supervisor` that is never run (its snapshot works from the start;
the phase is set by hand), real files in `tmp_path`. Time is a `ManualClock`; messages are
delivered by the subscriptions' own `deliver()` loops, awaited to the end of their stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app.bus import MARKET_KLINE, RISK_STATE, SIGNAL, Bus, Subscription
from app.domain import Signal, TradingState, TradingStateChanged
from app.domain.clock import ManualClock
from app.health import HealthMonitor, HealthOptions, LoopLagMonitor, write_atomically
from app.redaction import MASK, Redactor
from app.runtime import ComponentSpec, ComponentState, ExitCode, Phase, Stage, Supervisor
from tests.factories import kline, signal

TIMEOUT_S = 10.0
STALL_AFTER_S = 30.0
CANARY = "CANARY-5f0c2a9e-heartbeat-secret"


class Rig:
    """A bus, a supervisor and a health monitor wired the way `app.wiring` does it."""

    def __init__(self, tmp_path: Path, *, redactor: Redactor | None = None, **options: Any):
        self.clock = ManualClock()
        self.bus = Bus()
        self.supervisor = Supervisor(bus=self.bus, clock=self.clock)
        self.path = tmp_path / "status" / "heartbeat.json"
        self.loop_lag = LoopLagMonitor(sample_s=0.25, window_s=60.0)
        options.setdefault("stall_after_s", STALL_AFTER_S)
        self.health = HealthMonitor(
            options=HealthOptions(heartbeat_path=self.path, **options),
            supervisor=self.supervisor,
            bus=self.bus,
            clock=self.clock,
            loop_lag=self.loop_lag,
            identity={"version": "9.9.9-test", "instance": "t1", "mode": "paper"},
            redactor=redactor or Redactor(),
        )
        self.health_inbox = self.bus.subscribe(
            RISK_STATE.channel(), self.health.on_trading_state, subscriber="health"
        )
        self.supervisor.add(ComponentSpec("health", Stage.OBSERVER))

    def add_risk(self, handler: Any) -> Subscription[Signal]:
        """A RISK-stage component "risk" that receives signal.s1."""
        subscription = self.bus.subscribe(SIGNAL.channel("s1"), handler, subscriber="risk")
        self.supervisor.add(ComponentSpec("risk", Stage.RISK))
        return subscription

    async def send_signals(self, count: int) -> None:
        sender = self.bus.sender(SIGNAL.channel("s1"))
        for n in range(count):
            await sender.send(signal("s1", n))

    def record(self, name: str) -> Any:
        (record,) = [r for r in self.supervisor.components if r.spec.name == name]
        return record

    def read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text(encoding="utf-8"))


async def drain(bus: Bus, subscriber: str, subscription: Subscription[Any]) -> None:
    """Deliver everything pending to `subscriber`, then let its delivery loop end."""
    bus.close_subscriber(subscriber)
    await asyncio.wait_for(subscription.deliver(), TIMEOUT_S)


async def ignore(_: object) -> None:
    return None


# --- the document -----------------------------------------------------------------------------


async def test_write_once_writes_every_documented_key(tmp_path: Path) -> None:
    rig = Rig(tmp_path, interval_s=1.0, stale_after_s=5.0)
    rig.add_risk(ignore)
    rig.supervisor.phase = Phase.RUNNING
    await rig.send_signals(2)  # pending in risk<signal.s1
    await rig.bus.sender(MARKET_KLINE.channel("BTCUSDT")).send(kline())  # nobody listens
    rig.clock.advance(12.5)

    returned = await rig.health.write_once()
    beat = rig.read()

    assert beat == json.loads(json.dumps(returned))  # the file holds what was returned
    assert beat["timestamp"] == rig.clock.now().isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    assert beat["ts_ms"] == rig.clock.now_ms()
    assert isinstance(beat["pid"], int)
    assert (beat["version"], beat["instance"], beat["mode"]) == ("9.9.9-test", "t1", "paper")
    assert beat["phase"] == "running"
    assert beat["uptime_s"] == 12.5
    assert (beat["interval_s"], beat["stale_after_s"]) == (1.0, 5.0)
    assert beat["healthy"] is True
    assert beat["problems"] == []
    assert beat["trading_state"] is None
    assert beat["exit_code"] is None

    assert set(beat["components"]) == {"supervisor", "health", "risk"}
    risk = beat["components"]["risk"]
    assert risk["state"] == "pending"
    assert risk["stage"] == "risk"
    assert risk["pending"] == 2
    assert risk["last_progress_age_s"] == 0.0
    assert (risk["restarts"], risk["failures"], risk["last_error"]) == (0, 0, None)

    queue = beat["queues"]["risk<signal.s1"]
    assert (queue["depth"], queue["dropped"], queue["capacity"]) == (2, 0, 1024)
    assert queue["overflow"] == "block"
    assert "health<risk.state" in beat["queues"]
    assert beat["channels"]["signal.s1"]["published"] == 2
    assert beat["channels"]["market.kline.BTCUSDT"] == {
        "published": 1,
        "unrouted": 1,
        "rate_per_s": 0.0,
    }
    assert beat["loop_lag_ms"] == {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}


async def test_atomic_write_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.supervisor.phase = Phase.RUNNING

    await rig.health.write_once()
    first = rig.read()
    rig.clock.advance(5.0)
    await rig.health.write_once()
    second = rig.read()

    assert second["uptime_s"] == first["uptime_s"] + 5.0
    assert second["ts_ms"] == first["ts_ms"] + 5000
    assert rig.health.writes == 2
    assert [p.name for p in rig.path.parent.iterdir()] == ["heartbeat.json"]


def test_write_atomically_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "hb.json"
    write_atomically(path, {"x": 1}, Redactor())
    assert json.loads(path.read_text(encoding="utf-8")) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["hb.json"]


def test_failed_write_leaves_no_temp_file_and_keeps_the_target(tmp_path: Path) -> None:
    target = tmp_path / "hb.json"
    target.mkdir()  # os.replace() of a file onto a folder fails after the temp file is written
    (target / "keep").write_text("x", encoding="utf-8")

    with pytest.raises(IsADirectoryError):
        write_atomically(target, {"x": 1}, Redactor())

    assert sorted(p.name for p in tmp_path.iterdir()) == ["hb.json"]
    assert (target / "keep").read_text(encoding="utf-8") == "x"


async def test_final_heartbeat_carries_phase_stopped_and_exit_code(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.supervisor.phase = Phase.STOPPED

    await rig.health.write_once(exit_code=ExitCode.DRAIN_INCOMPLETE)

    beat = rig.read()
    assert (beat["phase"], beat["exit_code"]) == ("stopped", 4)
    assert beat["healthy"] is False
    assert beat["problems"] == ["daemon is stopped"]


async def test_a_cancelled_write_in_flight_never_replaces_a_newer_heartbeat(
    tmp_path: Path,
) -> None:
    """At shutdown the health task is cancelled, possibly while its write runs in a thread;
    the final heartbeat written next must be the one left on disk."""

    class HeldRedactor(Redactor):
        """Holds the first write inside its worker thread until released."""

        def __init__(self) -> None:
            super().__init__()
            self.entered = threading.Event()
            self.release = threading.Event()

        def redact_obj(self, value: object) -> object:
            if not self.entered.is_set():
                self.entered.set()
                assert self.release.wait(TIMEOUT_S)
            return super().redact_obj(value)

    redactor = HeldRedactor()
    rig = Rig(tmp_path, redactor=redactor)
    rig.supervisor.phase = Phase.RUNNING
    routine = asyncio.create_task(rig.health.write_once())
    assert await asyncio.to_thread(redactor.entered.wait, TIMEOUT_S)
    routine.cancel()
    with pytest.raises(asyncio.CancelledError):
        await routine

    rig.supervisor.phase = Phase.STOPPED
    final = asyncio.create_task(rig.health.write_once(exit_code=ExitCode.OK))
    # Not a wait for something to happen: a bounded check that the final write does not
    # overtake the one still in flight (unfixed, it finishes at once and is then overwritten).
    done, _ = await asyncio.wait({final}, timeout=0.2)
    assert not done
    redactor.release.set()
    await asyncio.wait_for(final, TIMEOUT_S)

    beat = rig.read()
    assert (beat["phase"], beat["exit_code"]) == ("stopped", 0)
    assert [p.name for p in rig.path.parent.iterdir()] == ["heartbeat.json"]


# --- stalls -----------------------------------------------------------------------------------


async def test_pending_work_without_progress_is_a_stall_and_progress_clears_it(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    stuck = asyncio.Event()
    unblock = asyncio.Event()
    seen: list[Signal] = []

    async def on_signal(message: Signal) -> None:
        seen.append(message)
        if len(seen) == 2:  # the second message hangs the handler: a real stall
            stuck.set()
            await unblock.wait()

    subscription = rig.add_risk(on_signal)
    rig.supervisor.phase = Phase.RUNNING
    await rig.send_signals(3)
    delivering = asyncio.create_task(subscription.deliver())
    await asyncio.wait_for(stuck.wait(), TIMEOUT_S)

    first = rig.health.snapshot()
    assert first["components"]["risk"]["pending"] == 1
    assert first["components"]["risk"]["progress"] == 1
    assert first["healthy"] is True

    rig.clock.advance(STALL_AFTER_S - 1)
    assert rig.health.snapshot()["healthy"] is True  # not yet

    rig.clock.advance(2)
    second = rig.health.snapshot()
    assert second["healthy"] is False
    (problem,) = second["problems"]
    assert problem.startswith("risk stalled: 1 pending, no progress for 31s")
    assert second["components"]["risk"]["last_progress_age_s"] == STALL_AFTER_S + 1

    unblock.set()
    rig.bus.close_subscriber("risk")
    await asyncio.wait_for(delivering, TIMEOUT_S)
    third = rig.health.snapshot()
    assert third["components"]["risk"]["progress"] == 3
    assert third["components"]["risk"]["pending"] == 0
    assert third["components"]["risk"]["last_progress_age_s"] == 0.0
    assert third["healthy"] is True


async def test_progress_while_work_is_pending_resets_the_age(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    subscription = rig.add_risk(ignore)
    rig.supervisor.phase = Phase.RUNNING
    await rig.send_signals(1)
    rig.health.snapshot()
    rig.clock.advance(STALL_AFTER_S + 5)
    assert rig.health.snapshot()["healthy"] is False

    await drain(rig.bus, "risk", subscription)
    rig.clock.advance(1)
    beat = rig.health.snapshot()
    assert beat["components"]["risk"]["last_progress_age_s"] == 0.0
    assert beat["healthy"] is True


async def test_idle_time_before_work_arrives_is_not_a_stall(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.add_risk(ignore)
    rig.supervisor.phase = Phase.RUNNING
    rig.health.snapshot()
    rig.clock.advance(10 * STALL_AFTER_S)  # quiet for a long time: no work, no progress

    await rig.send_signals(1)  # work arrives just before a heartbeat
    beat = rig.health.snapshot()
    assert beat["components"]["risk"]["last_progress_age_s"] == 10 * STALL_AFTER_S
    assert beat["healthy"] is True, beat["problems"]

    rig.clock.advance(STALL_AFTER_S + 1)  # and then nothing happens to it
    beat = rig.health.snapshot()
    assert beat["problems"] == [
        f"risk stalled: 1 pending, no progress for {STALL_AFTER_S + 1:.0f}s"
    ]


async def test_failed_component_is_a_problem(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.add_risk(ignore)
    rig.supervisor.phase = Phase.RUNNING
    record = rig.record("risk")
    record.state = ComponentState.FAILED
    record.last_error = "RuntimeError: boom"

    beat = rig.health.snapshot()
    assert beat["healthy"] is False
    assert beat["problems"] == ["risk is failed: RuntimeError: boom"]


async def test_queue_rate_is_per_second_between_heartbeats(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    subscription = rig.add_risk(ignore)
    rig.supervisor.phase = Phase.RUNNING
    rig.health.snapshot()
    await rig.send_signals(6)
    await drain(rig.bus, "risk", subscription)
    rig.clock.advance(2.0)

    beat = rig.health.snapshot()
    assert beat["queues"]["risk<signal.s1"]["rate_per_s"] == 3.0
    assert beat["queues"]["risk<signal.s1"]["delivered"] == 6
    assert beat["channels"]["signal.s1"]["rate_per_s"] == 3.0


# --- loop lag ---------------------------------------------------------------------------------


def test_loop_lag_percentiles_for_a_known_sample_set() -> None:
    monitor = LoopLagMonitor(sample_s=0.25, window_s=60.0)
    assert monitor.summary_ms() == {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}
    for ms in range(100, 0, -1):  # 1..100 ms, out of order
        monitor.record(ms / 1e3)

    assert monitor.summary_ms() == {"p50": 50.0, "p99": 99.0, "max": 100.0, "samples": 100}
    assert monitor.measured == 100


def test_loop_lag_window_keeps_the_latest_samples_and_clamps_negatives() -> None:
    monitor = LoopLagMonitor(sample_s=0.5, window_s=2.0)  # 4 samples
    for lag_s in (9.0, -0.5, 0.001, 0.002, 0.003):
        monitor.record(lag_s)

    assert monitor.summary_ms() == {"p50": 1.0, "p99": 3.0, "max": 3.0, "samples": 4}
    assert monitor.samples[0] == 0.0  # the negative sample, clamped
    assert monitor.measured == 5


async def test_loop_lag_above_the_limit_is_unhealthy(tmp_path: Path) -> None:
    rig = Rig(tmp_path, loop_lag_p99_max_ms=250.0)
    rig.supervisor.phase = Phase.RUNNING
    for _ in range(99):
        rig.loop_lag.record(0.010)
    assert rig.health.snapshot()["healthy"] is True

    for _ in range(2):
        rig.loop_lag.record(0.400)
    beat = await rig.health.write_once()

    assert beat["loop_lag_ms"]["p99"] == 400.0
    assert beat["loop_lag_ms"]["p50"] == 10.0
    assert beat["healthy"] is False
    assert beat["problems"] == ["event-loop lag p99 400 ms > 250 ms"]
    assert rig.read()["loop_lag_ms"]["p99"] == 400.0


async def test_loop_lag_monitor_measures_a_blocked_loop() -> None:
    class Watched(LoopLagMonitor):
        def __init__(self) -> None:
            super().__init__(sample_s=0.01, window_s=1.0)
            self.sampled = asyncio.Event()

        def record(self, lag_s: float) -> None:
            super().record(lag_s)
            self.sampled.set()

    monitor = Watched()
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.wait_for(monitor.sampled.wait(), TIMEOUT_S)
        monitor.sampled.clear()
        time.sleep(0.06)  # noqa: ASYNC251 - blocks the loop on purpose: this is the lag
        await asyncio.wait_for(monitor.sampled.wait(), TIMEOUT_S)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert monitor.summary_ms()["max"] >= 40.0


# --- trading state and secrets ----------------------------------------------------------------


async def test_trading_state_follows_risk_state_messages(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.supervisor.phase = Phase.RUNNING
    sender = rig.bus.sender(RISK_STATE.channel())
    await sender.send(TradingStateChanged(TradingState.ACTIVE, None, "start", 1))
    await sender.send(TradingStateChanged(TradingState.HALTED, TradingState.ACTIVE, "dd", 2))
    await drain(rig.bus, "health", rig.health_inbox)

    assert rig.health.trading_state is TradingState.HALTED
    await rig.health.write_once()
    assert rig.read()["trading_state"] == "halted"


async def test_a_secret_in_last_error_never_reaches_the_file(tmp_path: Path) -> None:
    rig = Rig(tmp_path, redactor=Redactor([CANARY]))
    rig.add_risk(ignore)
    rig.supervisor.phase = Phase.RUNNING
    record = rig.record("risk")
    record.state = ComponentState.RESTARTING
    record.last_error = f"HTTPStatusError: 401 for /api/v3/order?signature={CANARY}&x=1"

    returned = await rig.health.write_once()

    text = rig.path.read_text(encoding="utf-8")
    assert CANARY not in text
    assert MASK in text
    beat = json.loads(text)
    assert beat["components"]["risk"]["last_error"].endswith(f"signature={MASK}&x=1")
    assert beat["problems"] == [f"risk is restarting: {beat['components']['risk']['last_error']}"]
    assert CANARY in returned["components"]["risk"]["last_error"]  # redacted on the way out


async def test_a_failing_heartbeat_write_is_logged_and_retried_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the status folder should be")
    rig = Rig(tmp_path)
    rig.health.options = HealthOptions(heartbeat_path=blocker / "heartbeat.json", interval_s=5.0)
    task = asyncio.create_task(rig.health.run())
    try:
        for _ in range(3):  # three failed attempts, each followed by the normal interval
            await asyncio.wait_for(rig.clock.wait_for_sleepers(), TIMEOUT_S)
            assert not task.done()
            rig.clock.advance(5.0)
        assert rig.health.writes == 0
        blocker.unlink()
        blocker.mkdir()  # the disk recovers: the next beat lands
        await asyncio.wait_for(rig.clock.wait_for_sleepers(), TIMEOUT_S)
        assert rig.health.writes == 1
        assert (blocker / "heartbeat.json").exists()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
