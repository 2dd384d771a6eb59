"""Equity and metrics snapshots (`app.snapshot_wiring`) written through the real recorder into a
real database file, with time driven by a ManualClock.

The wiring under a real supervisor with the real persistence wiring (SQLite and PostgreSQL):
one equity row per interval with the risk gate's exact figures, one metrics row with the
redacted heartbeat, a final pair at shutdown while the recorder still runs. Without a gate only
metrics. A failing database neither stops the loop nor hangs it; a snapshot that raises is
counted. And the real daemon (`build_daemon`, embedded simulator) writes its shutdown pair.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.bus import Bus
from app.domain import Alert, AlertSeverity, ManualClock, SignalAction
from app.health import HealthMonitor, HealthOptions, LoopLagMonitor
from app.recovery_wiring import wire_persistence
from app.redaction import MASK, Redactor
from app.runtime import ComponentState, ExitCode, Phase, Stage, Supervisor
from app.snapshot_wiring import Snapshotter, wire_snapshots
from app.wiring import build_daemon
from config import Settings, load_settings
from config.database import DatabaseSettings
from database.engine import make_engine
from database.models import metadata
from database.recorder import Recorder
from risk.gate import RiskGate
from tests.database import conftest as database_fixtures
from tests.database.test_mapping import create_schema
from tests.database.test_recorder import rows, running
from tests.risk.gate_support import GateHarness, make_gate
from tests.test_embedded_sim import DEFECT_BOUND_S, default_settings

# The database fixtures: SQLite, and PostgreSQL when TRADEBUS_TEST_POSTGRES_DSN is set.
db_settings = database_fixtures.db_settings
sqlite_settings = database_fixtures.sqlite_settings
postgresql_settings = database_fixtures.postgresql_settings
postgres_base_url = database_fixtures.postgres_base_url

TIMEOUT_S = 30.0  # a bug fails the test instead of hanging it
INTERVAL_S = 7.0
SECRET = "s3cr3t-api-key"
CAPITAL = Decimal(10_000)  # risk.capital's default


@dataclass
class Rig:
    clock: ManualClock
    supervisor: Supervisor
    health: HealthMonitor
    recorder: Recorder
    engine: Engine
    snapshots: Snapshotter

    async def tick(self) -> None:
        """One snapshot interval; returns once the loop has taken it and sleeps again."""
        await self.clock.wait_for_sleepers()
        self.clock.advance(INTERVAL_S)
        await self.clock.wait_for_sleepers()


def settings_for(tmp_path: Path, database: DatabaseSettings) -> Settings:
    overrides: dict[str, object] = {
        "database.url": database.url,
        "database.snapshot_interval_s": INTERVAL_S,
        "health.heartbeat_path": str(tmp_path / "hb.json"),
        "instance_name": f"bot-{SECRET}",  # a secret that leaks into the heartbeat
    }
    return load_settings(None, overrides=overrides, env={}, dotenv_file=None)


@asynccontextmanager
async def daemon_parts(
    tmp_path: Path, database: DatabaseSettings, gate: RiskGate | None, clock: ManualClock
) -> AsyncIterator[Rig]:
    """The persistence and snapshot wiring of the daemon under a real supervisor; no feeds."""
    settings = settings_for(tmp_path, database)
    bus = Bus()
    supervisor = Supervisor(bus=bus, clock=clock)
    health = HealthMonitor(
        options=HealthOptions(heartbeat_path=settings.health.heartbeat_path),
        supervisor=supervisor,
        bus=bus,
        clock=clock,
        loop_lag=LoopLagMonitor(),
        identity={"instance": settings.instance_name},
        redactor=Redactor([SECRET]),
    )
    persistence = wire_persistence(
        settings, bus=bus, clock=clock, supervisor=supervisor, health=health
    )
    snapshots = wire_snapshots(
        settings,
        clock=clock,
        supervisor=supervisor,
        health=health,
        recorder=persistence.recorder,
        gate=gate,
        redactor=Redactor([SECRET]),
    )
    started = asyncio.Event()
    supervisor.on_running(started.set)
    rig = Rig(clock, supervisor, health, persistence.recorder, persistence.engine, snapshots)
    try:
        async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as group:
            daemon = group.create_task(supervisor.run(install_signal_handlers=False))
            await started.wait()
            try:
                yield rig
            finally:
                supervisor.request_shutdown("test done")
        assert daemon.result() == ExitCode.OK
    finally:
        persistence.engine.dispose()


def equity_rows(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, "equity_snapshots", "ts_ms")


def metrics_documents(engine: Engine) -> list[tuple[int, dict[str, Any]]]:
    return [(r["ts_ms"], json.loads(r["document"])) for r in rows(engine, "metrics_snapshots")]


def equity(
    ts_ms: int, equity: str, realized: str, unrealized: str, exposure: str, positions: int
) -> dict[str, Any]:
    return {
        "ts_ms": ts_ms,
        "equity": Decimal(equity),
        "realized_pnl": Decimal(realized),
        "unrealized_pnl": Decimal(unrealized),
        "exposure": Decimal(exposure),
        "open_positions": positions,
    }


async def trade_some(harness: GateHarness) -> None:
    """A closed ETH round trip (+10 realised) and an open BTC position."""
    await harness.open_position("ETHUSDT", "0.1", "3000")
    await harness.fill(await harness.approve(SignalAction.EXIT_LONG, "ETHUSDT"), "3100")
    await harness.open_position("BTCUSDT", "0.01", "60000")


# -- the wiring under a supervisor --------------------------------------------------------------
async def test_every_interval_records_the_gates_equity_and_the_redacted_heartbeat(
    tmp_path: Path, db_settings: DatabaseSettings
) -> None:
    clock = ManualClock()
    harness = await make_gate(tmp_path, clock=clock)
    await trade_some(harness)
    book = harness.gate.book
    assert (book.realised_pnl, book.open_positions()) == (Decimal("10.0"), 1)  # the setup holds
    start = clock.now_ms()
    step = int(INTERVAL_S * 1000)
    async with daemon_parts(tmp_path, db_settings, harness.gate, clock) as rig:
        [record] = [r for r in rig.supervisor.components if r.spec.name == "snapshots"]
        assert (record.spec.stage, record.spec.restartable) == (Stage.OBSERVER, True)
        await rig.clock.wait_for_sleepers()
        rig.clock.advance(INTERVAL_S - 0.001)  # not yet due
        await asyncio.sleep(0)
        assert rig.snapshots.status()["metrics_rows"] == 0
        rig.clock.advance(0.001)
        await rig.clock.wait_for_sleepers()
        await harness.bar("BTCUSDT", "61234.56")  # the figures move between snapshots
        await rig.tick()
        await harness.bar("BTCUSDT", "59000.01")
        await rig.tick()
        await rig.recorder.flush()
        assert equity_rows(rig.engine) == [
            equity(start + step, "10010.0", "10.0", "0.00", "600.00", 1),
            equity(start + 2 * step, "10022.3456", "10.0", "12.3456", "612.3456", 1),
            equity(start + 3 * step, "10000.0001", "10.0", "-9.9999", "590.0001", 1),
        ]
        documents = metrics_documents(rig.engine)
        heartbeat = rig.health.snapshot()
        assert [ts for ts, _ in documents] == [start + step, start + 2 * step, start + 3 * step]
        for _, document in documents:
            assert set(document) == set(heartbeat)
            assert document["phase"] == "running"
            assert document["instance"] == f"bot-{MASK}"  # redacted like the heartbeat file
            assert SECRET not in json.dumps(document)
        last = documents[-1][1]["snapshots"]  # the section as it was while it was taken
        assert (last["equity_rows"], last["metrics_rows"]) == (3, 2)
        status = heartbeat["snapshots"]
        assert (status["equity_rows"], status["metrics_rows"], status["failures"]) == (3, 3, 0)
        assert status["last_ts_ms"] == start + 3 * step
        await harness.bar("BTCUSDT", "60000")
        rig.clock.advance(1.0)  # shutdown between two intervals: the last figures still count
    final = equity_rows(rig.engine)
    assert len(final) == 4
    assert final[-1] == equity(start + 3 * step + 1000, "10010.0", "10.0", "0.00", "600.00", 1)
    [(ts, document)] = metrics_documents(rig.engine)[3:]
    assert (ts, document["phase"]) == (start + 3 * step + 1000, "draining")


async def test_without_a_gate_only_metrics_are_recorded(
    tmp_path: Path, sqlite_settings: DatabaseSettings
) -> None:
    async with daemon_parts(tmp_path, sqlite_settings, None, ManualClock()) as rig:
        for _ in range(3):
            await rig.tick()
        await rig.recorder.flush()
        assert len(metrics_documents(rig.engine)) == 3
        status = rig.snapshots.status()
        assert (status["equity_rows"], status["metrics_rows"], status["failures"]) == (0, 3, 0)
    assert equity_rows(rig.engine) == []
    assert len(metrics_documents(rig.engine)) == 4  # and the one at shutdown


# -- failures -------------------------------------------------------------------------------------
async def tick(clock: ManualClock) -> None:
    await clock.wait_for_sleepers()
    clock.advance(INTERVAL_S)
    await clock.wait_for_sleepers()


async def test_a_failing_database_neither_stops_nor_blocks_the_snapshots(
    tmp_path: Path, sqlite_settings: DatabaseSettings
) -> None:
    clock, db_clock = ManualClock(), ManualClock()  # the recorder retries on its own clock
    harness = await make_gate(tmp_path, clock=clock)
    engine = create_schema(sqlite_settings)
    settings = sqlite_settings.model_copy(
        update={"queue_max_rows": 1_000, "write_attempts": 1, "flush_interval_s": 60.0}
    )
    recorder = Recorder(bus=Bus(), clock=db_clock, engine=engine, settings=settings)
    snapshots = Snapshotter(
        recorder=recorder,
        clock=clock,
        interval_s=INTERVAL_S,
        gate=harness.gate,
        figures=lambda: {"answer": 42},
    )
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE equity_snapshots"))
    try:
        async with asyncio.timeout(TIMEOUT_S), running(recorder), asyncio.TaskGroup() as group:
            loop = group.create_task(snapshots.run())
            await tick(clock)
            flushed = group.create_task(recorder.flush())
            await db_clock.wait_for_sleepers()  # the batch failed; the writer backs off
            assert recorder.status()["failing"] is True
            await tick(clock)  # the loop goes on while the database fails
            assert (snapshots.equity_rows, snapshots.metrics_rows) == (2, 2)
            alert = Alert(AlertSeverity.INFO, "test", "filler", clock.now_ms())
            while recorder.status()["queue_depth"] < settings.queue_max_rows:
                await recorder.on_alert(alert)
            await tick(clock)  # a full queue: skipped, not waited for
            assert (snapshots.skipped, snapshots.equity_rows) == (2, 2)
            await snapshots.take()  # the shutdown snapshot cannot hang either
            assert snapshots.skipped == 4
            assert not loop.done()
            metadata.create_all(engine)
            db_clock.advance(60.0)  # the next retry succeeds
            await flushed
            await recorder.flush()
            await tick(clock)
            await recorder.flush()
            loop.cancel()
    finally:
        engine.dispose()
    assert (snapshots.equity_rows, snapshots.metrics_rows, snapshots.failures) == (3, 3, 0)
    assert len(equity_rows(engine)) == 3
    assert [d for _, d in metrics_documents(engine)] == [{"answer": 42}] * 3


async def test_a_snapshot_that_raises_is_counted_and_the_loop_goes_on(
    tmp_path: Path, sqlite_settings: DatabaseSettings
) -> None:
    clock = ManualClock()
    harness = await make_gate(tmp_path, clock=clock)
    engine = create_schema(sqlite_settings)
    recorder = Recorder(bus=Bus(), clock=clock, engine=engine, settings=sqlite_settings)
    calls = 0

    def figures() -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("heartbeat unavailable")
        return {"call": calls}

    snapshots = Snapshotter(
        recorder=recorder, clock=clock, interval_s=INTERVAL_S, gate=harness.gate, figures=figures
    )
    try:
        async with asyncio.timeout(TIMEOUT_S), running(recorder), asyncio.TaskGroup() as group:
            loop = group.create_task(snapshots.run())
            await tick(clock)
            await tick(clock)
            await recorder.flush()
            loop.cancel()
    finally:
        engine.dispose()
    status = snapshots.status()
    assert (status["failures"], status["equity_rows"], status["metrics_rows"]) == (1, 2, 1)
    assert status["last_error"] == "metrics: ValueError: heartbeat unavailable"
    assert len(equity_rows(engine)) == 2  # the failing metrics did not cost the equity row
    assert [d for _, d in metrics_documents(engine)] == [{"call": 2}]


# -- the real daemon ------------------------------------------------------------------------------
@pytest.mark.parametrize(("executor_mode", "equity_count"), [("paper", 1), ("off", 0)])
async def test_the_daemon_snapshots_on_shutdown(
    tmp_path: Path, executor_mode: str, equity_count: int
) -> None:
    settings = default_settings(
        tmp_path, **{"executor.mode": executor_mode, "risk.state_file": str(tmp_path / "r.json")}
    )
    daemon = build_daemon(settings)
    started = asyncio.Event()
    daemon.supervisor.on_running(started.set)
    async with asyncio.TaskGroup() as group:
        running_daemon = group.create_task(daemon.run(install_signal_handlers=False))
        try:
            await asyncio.wait_for(started.wait(), timeout=DEFECT_BOUND_S)
        finally:
            daemon.supervisor.request_shutdown("test done")
    assert running_daemon.result() == ExitCode.OK
    assert daemon.supervisor.phase is Phase.STOPPED
    [record] = [r for r in daemon.supervisor.components if r.spec.name == "snapshots"]
    assert record.state is ComponentState.STOPPED
    engine = make_engine(settings.database)
    try:
        equities = equity_rows(engine)
        [(_, document)] = metrics_documents(engine)
    finally:
        engine.dispose()
    assert len(equities) == equity_count
    if equities:
        assert equities[0]["equity"] == CAPITAL
        assert equities[0]["open_positions"] == 0
    assert document["phase"] == "draining"
    assert {"components", "queues", "recorder", "snapshots"} <= set(document)
    heartbeat = json.loads(await asyncio.to_thread(settings.health.heartbeat_path.read_text))
    assert heartbeat["snapshots"]["metrics_rows"] == 1
