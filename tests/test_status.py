"""Tests for app.status (the verdict of `tradebus status`) and for the command itself.

The verdict takes `now` as a parameter, so staleness is tested with an injected clock instead of
by waiting; the CLI tests write a heartbeat whose timestamp is already in the past.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.bus import Bus
from app.domain.clock import ManualClock
from app.health import HealthMonitor, HealthOptions, LoopLagMonitor
from app.redaction import Redactor
from app.runtime import ExitCode, Phase, Supervisor
from app.status import DEFAULT_STALE_AFTER_S, format_status, read_status

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

RunTradebus = Callable[..., subprocess.CompletedProcess[str]]


def stamp(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def heartbeat(**fields: Any) -> dict[str, Any]:
    """A heartbeat as the daemon writes it: fresh at NOW, running and healthy."""
    document: dict[str, Any] = {
        "schema": 1,
        "timestamp": stamp(NOW),
        "version": "0.1.0",
        "instance": "tb-test",
        "mode": "paper",
        "pid": 4242,
        "phase": "running",
        "uptime_s": 3723.0,
        "interval_s": 5.0,
        "stale_after_s": 20.0,
        "healthy": True,
        "problems": [],
        "trading_state": "active",
        "components": {
            "risk": {"state": "running", "restarts": 1, "pending": 3, "last_progress_age_s": 0.5}
        },
        "queues": {
            "risk<signal.s1": {
                "depth": 3,
                "capacity": 1024,
                "dropped": 0,
                "conflated": 0,
                "rate_per_s": 2.5,
            }
        },
        "loop_lag_ms": {"p50": 0.4, "p99": 1.2, "max": 3.0, "samples": 240},
        "exit_code": None,
    }
    document.update(fields)
    return document


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def beat_path(tmp_path: Path) -> Path:
    return tmp_path / "heartbeat.json"


# --- the verdict ------------------------------------------------------------------------------


def test_fresh_running_healthy_heartbeat_is_healthy(beat_path: Path) -> None:
    write(beat_path, heartbeat())
    report = read_status(beat_path, now=NOW + timedelta(seconds=3))

    assert report.healthy is True
    assert report.reasons == ()
    assert report.age_s == pytest.approx(3.0)
    assert report.stale_after_s == 20.0
    assert report.heartbeat is not None
    assert report.heartbeat["instance"] == "tb-test"


def test_heartbeat_older_than_its_stale_after_is_stale(beat_path: Path) -> None:
    write(beat_path, heartbeat())
    assert read_status(beat_path, now=NOW + timedelta(seconds=20)).healthy is True  # the limit

    report = read_status(beat_path, now=NOW + timedelta(seconds=20.5))
    assert report.healthy is False
    assert report.reasons == ("stale: last heartbeat 20.5s ago (limit 20s)",)


def test_stale_after_override_beats_the_heartbeat_value(beat_path: Path) -> None:
    write(beat_path, heartbeat())
    report = read_status(beat_path, now=NOW + timedelta(seconds=6), stale_after_s=5)
    assert report.healthy is False
    assert report.reasons[0].startswith("stale:")
    assert report.stale_after_s == 5


def test_heartbeat_without_stale_after_uses_the_default(beat_path: Path) -> None:
    document = heartbeat()
    del document["stale_after_s"]
    write(beat_path, document)
    assert read_status(beat_path, now=NOW + timedelta(seconds=19)).healthy is True
    report = read_status(beat_path, now=NOW + timedelta(seconds=DEFAULT_STALE_AFTER_S + 1))
    assert report.healthy is False


def test_a_heartbeat_written_by_the_health_monitor_is_judged_with_its_clock(
    tmp_path: Path,
) -> None:
    """The real writer and the real reader agree, with time injected on both sides."""
    clock = ManualClock()
    bus = Bus()
    supervisor = Supervisor(bus=bus, clock=clock)
    supervisor.phase = Phase.RUNNING
    path = tmp_path / "hb.json"
    monitor = HealthMonitor(
        options=HealthOptions(heartbeat_path=path, interval_s=1.0, stale_after_s=3.0),
        supervisor=supervisor,
        bus=bus,
        clock=clock,
        loop_lag=LoopLagMonitor(),
        identity={"version": "0.1.0", "instance": "tb", "mode": "paper"},
        redactor=Redactor(),
    )
    asyncio.run(monitor.write_once())

    assert read_status(path, now=clock.now()).healthy is True
    clock.advance(3.5)
    report = read_status(path, now=clock.now())
    assert report.healthy is False
    assert report.reasons == ("stale: last heartbeat 3.5s ago (limit 3s)",)


def test_missing_file(tmp_path: Path) -> None:
    report = read_status(tmp_path / "nope.json", now=NOW)
    assert report.healthy is False
    assert report.heartbeat is None
    assert report.reasons == (f"no heartbeat at {tmp_path / 'nope.json'}",)
    assert report.stale_after_s == DEFAULT_STALE_AFTER_S


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "Expecting property name"),
        ("", "Expecting value"),
        ("[1, 2]", "not a JSON object"),
        ('{"phase": "running"}', "timestamp"),
        ('{"timestamp": "yesterday"}', "Invalid isoformat"),
        ('{"timestamp": 17}', "Invalid isoformat"),
        ('{"timestamp": "2025-03-01T12:00:00"}', "timestamp has no time zone"),
        ('{"timestamp": "2025-03-01T12:00:00Z", "stale_after_s": "soon"}', "could not convert"),
        ('{"timestamp": "2025-03-01T12:00:00Z", "stale_after_s": NaN}', "not a positive number"),
        ('{"timestamp": "2025-03-01T12:00:00Z", "stale_after_s": -5}', "not a positive number"),
    ],
)
def test_garbage_file_is_unhealthy_with_a_reason(
    beat_path: Path, content: str, detail: str
) -> None:
    beat_path.write_text(content, encoding="utf-8")
    report = read_status(beat_path, now=NOW)

    assert report.healthy is False
    assert report.heartbeat is None
    (reason,) = report.reasons
    assert reason.startswith(f"unreadable heartbeat {beat_path}: ")
    assert detail in reason
    assert "UNHEALTHY" in format_status(report)


def test_binary_garbage_is_unreadable(beat_path: Path) -> None:
    beat_path.write_bytes(b"\xff\xfe\x00garbage")
    report = read_status(beat_path, now=NOW)
    assert report.healthy is False
    assert report.reasons[0].startswith("unreadable heartbeat")


def test_stopped_daemon_names_its_exit_code_once(beat_path: Path) -> None:
    write(
        beat_path,
        heartbeat(phase="stopped", exit_code=0, healthy=False, problems=["daemon is stopped"]),
    )
    report = read_status(beat_path, now=NOW)
    assert report.healthy is False
    assert report.reasons == ("daemon is stopped (exit code 0)",)


def test_draining_daemon_is_unhealthy(beat_path: Path) -> None:
    write(beat_path, heartbeat(phase="draining", healthy=False, problems=["daemon is draining"]))
    report = read_status(beat_path, now=NOW)
    assert report.reasons == ("daemon is draining",)


def test_reported_problems_become_reasons(beat_path: Path) -> None:
    problems = ["risk stalled: 3 pending, no progress for 75s", "event-loop lag p99 400 ms > 250"]
    write(beat_path, heartbeat(healthy=False, problems=problems))
    report = read_status(beat_path, now=NOW)
    assert report.healthy is False
    assert report.reasons == tuple(problems)


def test_unhealthy_without_problems_still_says_why(beat_path: Path) -> None:
    write(beat_path, heartbeat(healthy=False, problems=[]))
    assert read_status(beat_path, now=NOW).reasons == ("daemon reported unhealthy",)


def test_stale_and_stopped_and_failed_are_all_reported(beat_path: Path) -> None:
    write(
        beat_path,
        heartbeat(
            phase="stopped",
            exit_code=3,
            healthy=False,
            problems=["daemon is stopped", "risk is failed: RuntimeError: boom"],
        ),
    )
    report = read_status(beat_path, now=NOW + timedelta(minutes=5))
    assert report.reasons == (
        "stale: last heartbeat 300.0s ago (limit 20s)",
        "daemon is stopped (exit code 3)",
        "risk is failed: RuntimeError: boom",
    )


# --- the display --------------------------------------------------------------------------------


def test_format_healthy(beat_path: Path) -> None:
    write(beat_path, heartbeat())
    text = format_status(read_status(beat_path, now=NOW + timedelta(seconds=2)))

    first = text.splitlines()[0]
    assert first.endswith("— HEALTHY")
    assert "instance tb-test" in first
    assert "mode paper" in first
    assert "pid 4242" in first
    assert "2.0s ago (stale after 20s)" in text
    assert "running, up 1h02m03s" in text
    assert "trading     active" in text
    assert "p50 0.4 ms, p99 1.2 ms" in text
    (component,) = [line for line in text.splitlines() if line.strip().startswith("risk ")]
    assert "running" in component
    assert "restarts 1" in component
    assert "pending 3" in component
    assert "progress 0.5s ago" in component
    (queue,) = [line for line in text.splitlines() if "risk<signal.s1" in line]
    assert "3/1024" in queue
    assert "2.5/s" in queue
    assert "!" not in text


def test_format_unhealthy_lists_the_reasons(beat_path: Path) -> None:
    write(beat_path, heartbeat(healthy=False, problems=["risk stalled: 3 pending"]))
    text = format_status(read_status(beat_path, now=NOW + timedelta(seconds=30)))
    assert text.splitlines()[0].endswith("— UNHEALTHY")
    assert "  ! stale: last heartbeat 30.0s ago (limit 20s)" in text
    assert "  ! risk stalled: 3 pending" in text


def test_format_shows_each_strategy_copy_and_why_one_is_disabled(beat_path: Path) -> None:
    strategies = {
        "vwap": {
            "symbols": {
                "BTCUSDT": {"state": "running", "bars": 120, "signals": 4, "mean_us": 5.25},
                "ETHUSDT": {
                    "state": "disabled",
                    "bars": 7,
                    "errors": 1,
                    "error": "ZeroDivisionError: float division by zero",
                },
            }
        },
        "broken": "not a mapping",
    }
    write(beat_path, heartbeat(strategies=strategies))
    lines = format_status(read_status(beat_path, now=NOW)).splitlines()
    start = lines.index("  strategies")
    running, disabled = lines[start + 1 :]
    assert running.split() == [
        "vwap/BTCUSDT", "running", "bars", "120", "signals", "4", "errors", "0", "5.2", "us/event",
    ]  # fmt: skip
    assert disabled.split()[:2] == ["vwap/ETHUSDT", "disabled"]
    assert disabled.endswith("! ZeroDivisionError: float division by zero")


def test_format_shows_an_instances_trade_management(beat_path: Path) -> None:
    trade = {
        "equity": 10_123.456,
        "drawdown_pct": 1.5,
        "open_positions": [{"position_id": "p"}],
        "closed_trades": 3,
        "entries": 9,
        "entries_sent": 4,
        "refusals": {"regime": 4, "model": 1},
    }
    write(beat_path, heartbeat(strategies={"mom": {"symbols": {}, "trade": trade}}))
    lines = format_status(read_status(beat_path, now=NOW)).splitlines()
    assert lines[lines.index("  strategies") + 1].split() == [
        "mom", "trade", "equity", "10123.46", "drawdown", "1.50%", "positions", "1", "trades",
        "3", "entries", "4/9", "refused:", "regime", "4,", "model", "1",
    ]  # fmt: skip


def test_format_without_heartbeat(tmp_path: Path) -> None:
    text = format_status(read_status(tmp_path / "missing.json", now=NOW))
    assert text == f"tradebus: UNHEALTHY\n  - no heartbeat at {tmp_path / 'missing.json'}\n"


def test_format_survives_sections_of_the_wrong_type(beat_path: Path) -> None:
    write(
        beat_path,
        heartbeat(
            components=["not", "a", "mapping"],
            queues={"q": "x"},
            loop_lag_ms=None,
            uptime_s="long",
            trading_state=None,
        ),
    )
    text = format_status(read_status(beat_path, now=NOW))
    assert "HEALTHY" in text
    assert "no risk gate has reported" in text
    assert "up 0m00s" in text


# --- through the command line ---------------------------------------------------------------------


def test_cli_status_exits_1_on_a_stale_heartbeat(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    path = write(tmp_path / "hb.json", heartbeat(timestamp=stamp(past)))

    result = run_tradebus("status", "--heartbeat", str(path))

    assert result.returncode == 1, result.stderr
    assert "UNHEALTHY" in result.stdout
    assert "stale: last heartbeat" in result.stdout
    assert result.stderr == ""


def test_cli_status_exits_0_on_a_fresh_heartbeat(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    path = write(tmp_path / "hb.json", heartbeat(timestamp=stamp(datetime.now(UTC))))

    result = run_tradebus("status", "--heartbeat", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].endswith("— HEALTHY")


def test_cli_status_stale_after_flag(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    written = datetime.now(UTC) - timedelta(seconds=60)
    path = write(tmp_path / "hb.json", heartbeat(timestamp=stamp(written)))

    assert run_tradebus("status", "--heartbeat", str(path)).returncode == 1
    result = run_tradebus("status", "--heartbeat", str(path), "--stale-after", "3600")
    assert result.returncode == 0, result.stdout


def test_cli_status_json_prints_the_document(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    document = heartbeat(timestamp=stamp(datetime.now(UTC)))
    path = write(tmp_path / "hb.json", document)

    result = run_tradebus("status", "--heartbeat", str(path), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == document


def test_cli_status_on_missing_and_garbage_files(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    missing = run_tradebus("status", "--heartbeat", str(tmp_path / "none.json"))
    assert missing.returncode == 1
    assert "no heartbeat at" in missing.stdout

    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"timestamp": "2025-01-01T00:00:00", "stale_after_s": "x"}')
    result = run_tradebus("status", "--heartbeat", str(garbage))
    assert result.returncode == 1
    assert "unreadable heartbeat" in result.stdout
    assert result.stderr == ""  # a verdict, not a traceback


def test_cli_status_reads_the_heartbeat_path_from_config(
    tmp_path: Path, run_tradebus: RunTradebus
) -> None:
    default = run_tradebus("status")  # status/heartbeat.json under the working directory
    assert default.returncode == 1
    assert "no heartbeat at status/heartbeat.json" in default.stdout

    path = write(tmp_path / "elsewhere.json", heartbeat(timestamp=stamp(datetime.now(UTC))))
    result = run_tradebus("status", "--set", f"health.heartbeat_path={path}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_heartbeat_exit_code_is_shown(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    document = heartbeat(
        timestamp=stamp(datetime.now(UTC)),
        phase="stopped",
        exit_code=int(ExitCode.COMPONENT_FAILED),
        healthy=False,
        problems=["daemon is stopped"],
    )
    path = write(tmp_path / "hb.json", document)
    result = run_tradebus("status", "--heartbeat", str(path))
    assert result.returncode == 1
    assert "! daemon is stopped (exit code 3)" in result.stdout


def test_format_shows_the_risk_gate_and_the_executor(beat_path: Path) -> None:
    risk = {
        "state": "halted",
        "reason": "operator: halt",
        "equity": "9950.00",
        "drawdown_pct": "0.50",
        "day_pnl": "-50.00",
        "exposure": "1200.00",
        "open_positions": {"flip/BTCUSDT": "0.01", "flip/ETHUSDT": "0.2"},
        "approved": 12,
        "denied": 3,
        "denials": {"trading_state": 2, "cooldown": 1},
    }
    executor = {
        "open_orders": 1,
        "unknown": 0,
        "retries": 2,
        "fills_booked": 30,
        "by_status": {"filled": 11, "new": 1},
    }
    write(beat_path, heartbeat(risk=risk, executor=executor))
    lines = format_status(read_status(beat_path, now=NOW)).splitlines()
    risk_line = next(line for line in lines if line.startswith("  risk"))
    assert risk_line.split() == [
        "risk", "halted", "(operator:", "halt)", "·", "equity", "9950.00", "·", "drawdown",
        "0.50%", "·", "day", "PnL", "-50.00", "·", "exposure", "1200.00", "·", "positions", "2",
        "·", "approved", "12", "·", "denied", "3", "(trading_state", "2,", "cooldown", "1)",
    ]  # fmt: skip
    executor_line = next(line for line in lines if line.startswith("  executor"))
    assert executor_line.split() == [
        "executor", "open", "1", "·", "unknown", "0", "·", "retries", "2", "·", "fills", "30",
        "·", "filled", "11,", "new", "1",
    ]  # fmt: skip
