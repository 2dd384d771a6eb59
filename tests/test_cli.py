"""Tests of the real `tradebus` console script, run as a subprocess.

Every run happens in `tmp_path` (no `config/tradebus.toml` or `.env` there) with an environment
stripped of `TRADEBUS_*` and systemd variables; log files and heartbeats go to `tmp_path`.
The daemon tests wait on events: a log line read from the daemon's stdout, or a datagram on a
notify socket standing in for systemd, each with a deadline.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app import __version__
from app.redaction import MASK

if TYPE_CHECKING:
    from tests.conftest import DaemonProcess

RunTradebus = Callable[..., subprocess.CompletedProcess[str]]
StartDaemon = Callable[..., "DaemonProcess"]
Receive = Callable[[socket.socket, str], list[str]]
NotifySocket = tuple[socket.socket, str]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def daemon_options(tmp_path: Path) -> list[str]:
    return [
        "--set",
        "health.interval_s=0.2",
        "--set",
        "health.stale_after_s=5",
        "--set",
        f"health.heartbeat_path={tmp_path / 'hb.json'}",
        "--set",
        f"logging.file={tmp_path / 'logs' / 't.log'}",
        # The embedded simulator: any free port (tests run side by side), its state in tmp.
        "--set",
        "sim.port=0",
        "--set",
        f"sim.state_file={tmp_path / 'sim_state.json'}",
    ]


# --- help and version -------------------------------------------------------------------------


def test_version(run_tradebus: RunTradebus) -> None:
    result = run_tradebus("version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"tradebus {__version__} (Python 3.")

    flag = run_tradebus("--version")
    assert flag.returncode == 0
    assert flag.stdout.strip() == f"tradebus {__version__}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], ["run", "status", "config", "version", "Exit codes"]),
        (["run", "--help"], ["--config", "--set", "--mode", "--secrets-dir"]),
        (["status", "--help"], ["--heartbeat", "--stale-after", "--json"]),
        (["config", "check", "--help"], ["--config", "--set"]),
    ],
)
def test_help(run_tradebus: RunTradebus, args: list[str], expected: list[str]) -> None:
    result = run_tradebus(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tradebus")
    for word in expected:
        assert word in result.stdout


def test_no_command_is_a_usage_error(run_tradebus: RunTradebus) -> None:
    result = run_tradebus()
    assert result.returncode == 2
    assert "usage: tradebus" in result.stderr


# --- config check -----------------------------------------------------------------------------


def test_config_check_without_config_prints_parseable_toml(
    tmp_path: Path, run_tradebus: RunTradebus
) -> None:
    result = run_tradebus("config", "check")

    assert result.returncode == 0, result.stderr
    effective = tomllib.loads(result.stdout)
    assert effective["mode"] == "paper"
    assert effective["health"]["interval_s"] == 5.0
    assert effective["exchange"]["venue"] == "sim"
    assert result.stdout.rstrip().endswith("# configuration is valid")
    assert not (tmp_path / "logs").exists()  # config check writes nothing


def test_config_check_shows_overrides(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    config = write(
        tmp_path / "my.toml", '[health]\ninterval_s = 2.5\n[exchange]\nmarket = "usdm"\n'
    )
    result = run_tradebus(
        "config", "check", "--config", str(config), "--set", "health.stale_after_s=30"
    )
    assert result.returncode == 0, result.stderr
    effective = tomllib.loads(result.stdout)
    assert effective["health"]["interval_s"] == 2.5
    assert effective["health"]["stale_after_s"] == 30
    assert effective["exchange"]["market"] == "usdm"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('[health]\ninterval_s = "fast"\n', "health.interval_s", "valid number"),
        ("[health]\nintervall_s = 1\n", "health.intervall_s", "unknown key"),
        ("[health]\ninterval_s = 10\nstale_after_s = 5\n", "health.stale_after_s", "greater"),
        ("mode = = 1\n", "bad.toml", "invalid TOML"),
    ],
)
def test_config_check_rejects_bad_config(
    tmp_path: Path, run_tradebus: RunTradebus, text: str, field: str, reason: str
) -> None:
    write(tmp_path / "bad.toml", text)
    result = run_tradebus("config", "check", "--config", "bad.toml")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("tradebus: invalid configuration:")
    (problem,) = [line for line in result.stderr.splitlines() if field in line]
    assert reason in problem


def test_config_check_with_missing_config_file(run_tradebus: RunTradebus) -> None:
    result = run_tradebus("config", "check", "--config", "nowhere.toml")
    assert result.returncode == 2
    assert "--config: file not found: nowhere.toml" in result.stderr


def test_config_check_rejects_unknown_environment_variable(
    tradebus_env: dict[str, str], run_tradebus: RunTradebus
) -> None:
    env = {**tradebus_env, "TRADEBUS_HEALTH__INTERVALL_S": "1"}
    result = run_tradebus("config", "check", env=env)
    assert result.returncode == 2
    assert "TRADEBUS_HEALTH__INTERVALL_S: unknown environment variable" in result.stderr
    assert "did you mean TRADEBUS_HEALTH__INTERVAL_S?" in result.stderr


def test_invalid_set_option(run_tradebus: RunTradebus) -> None:
    result = run_tradebus("config", "check", "--set", "health.interval_s")
    assert result.returncode == 2
    assert "invalid --set" in result.stderr


# --- run: refusals ----------------------------------------------------------------------------


def test_run_backtest_is_refused_with_a_clear_message(
    tmp_path: Path, run_tradebus: RunTradebus
) -> None:
    result = run_tradebus("run", "--mode", "backtest", *daemon_options(tmp_path))
    assert result.returncode == 2
    assert "tradebus: mode 'backtest'" in result.stderr
    assert "not built yet" in result.stderr
    assert not (tmp_path / "hb.json").exists()


def test_run_live_without_keys_names_what_is_missing(
    tmp_path: Path, run_tradebus: RunTradebus
) -> None:
    result = run_tradebus("run", "--mode", "live", *daemon_options(tmp_path))
    assert result.returncode == 2
    assert "exchange.api_key: required when mode is 'live'" in result.stderr
    assert "exchange.api_secret: required when mode is 'live'" in result.stderr
    assert "exchange.venue:" in result.stderr
    assert not (tmp_path / "hb.json").exists()
    assert not (tmp_path / "logs").exists()


def test_run_with_invalid_config_exits_2(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    write(tmp_path / "bad.toml", '[health]\ninterval_s = "fast"\n')
    result = run_tradebus("run", "--config", "bad.toml")
    assert result.returncode == 2
    assert "health.interval_s" in result.stderr


# --- run: end to end --------------------------------------------------------------------------


@pytest.mark.slow
def test_run_status_and_graceful_stop(
    tmp_path: Path,
    tradebus_env: dict[str, str],
    run_tradebus: RunTradebus,
    start_daemon: StartDaemon,
    notify_socket: NotifySocket,
    receive: Receive,
) -> None:
    sock, notify_path = notify_socket
    heartbeat = tmp_path / "hb.json"
    daemon = start_daemon(
        *daemon_options(tmp_path), env={**tradebus_env, "NOTIFY_SOCKET": notify_path}
    )

    started = daemon.wait_for_event("daemon_started")
    assert (started["level"], started["mode"], started["instance"]) == ("info", "paper", "tradebus")
    # The health monitor reports over the notify socket right after each heartbeat it wrote.
    receive(sock, "STATUS=running, healthy")

    status = run_tradebus("status", "--heartbeat", str(heartbeat))
    assert status.returncode == 0, status.stdout + status.stderr
    assert "HEALTHY" in status.stdout
    running = json.loads(heartbeat.read_text(encoding="utf-8"))
    assert running["pid"] == daemon.proc.pid
    assert running["phase"] == "running"
    assert set(running["components"]) == {
        "supervisor",
        "alerts",
        "loop_lag",
        "health",
        "sim",
        "market_feed",
        "clock_sync",
        "risk",
        "executor",
        "control",
        "recorder",
        "snapshots",
    }

    daemon.terminate()
    stopped_event = daemon.wait_for_event("daemon_stopped")
    assert (stopped_event["exit_code"], stopped_event["reason"]) == (0, "signal SIGTERM")
    assert daemon.wait() == 0
    assert daemon.stderr == ""

    final = json.loads(heartbeat.read_text(encoding="utf-8"))
    assert (final["phase"], final["exit_code"]) == ("stopped", 0)
    assert final["undelivered_at_shutdown"] == 0
    after = run_tradebus("status", "--heartbeat", str(heartbeat))
    assert after.returncode == 1
    assert "daemon is stopped (exit code 0)" in after.stdout

    events = [json.loads(line)["event"] for line in daemon.stdout_lines]
    assert events[0] == "daemon_starting"
    assert events.index("daemon_started") < events.index("shutdown_requested")
    log_events = [
        json.loads(line)["event"]
        for line in (tmp_path / "logs" / "t.log").read_text(encoding="utf-8").splitlines()
    ]
    assert log_events == events  # the file gets the same JSON lines
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in {"logs", "notify.sock"}]
    # No temp heartbeat or state files; nothing else written. The database in status/ holds the
    # risk gate's and the strategies' state too (its WAL checkpointed and removed on a clean
    # close), and the control socket is removed on the way out.
    assert sorted(leftovers) == ["hb.json", "sim_state.json", "status"]
    status_files = sorted(p.name for p in (tmp_path / "status").iterdir())
    assert status_files == ["tradebus.db"]


# --- the secret canary ------------------------------------------------------------------------


@pytest.fixture
def canaries(tradebus_env: dict[str, str]) -> tuple[dict[str, str], tuple[str, str]]:
    secret = f"CANARY-{uuid.uuid4().hex}"
    webhook = f"https://hooks.slack.test/services/CANARY-{uuid.uuid4().hex}"
    env = {
        **tradebus_env,
        "TRADEBUS_EXCHANGE__API_SECRET": secret,
        "TRADEBUS_ALERTS__SLACK_WEBHOOK_URL": webhook,
    }
    return env, (secret, webhook)


def assert_no_canary(canaries: tuple[str, ...], *texts: str) -> None:
    for canary in canaries:
        for text in texts:
            assert canary not in text
        # The distinctive half alone (e.g. after a URL was split) must not show either.
        for text in texts:
            assert canary.rsplit("CANARY-", 1)[1] not in text


def test_secret_canary_in_config_check(
    run_tradebus: RunTradebus, canaries: tuple[dict[str, str], tuple[str, str]]
) -> None:
    env, secrets = canaries
    result = run_tradebus("config", "check", env=env)

    assert result.returncode == 0, result.stderr
    assert_no_canary(secrets, result.stdout, result.stderr)
    effective = tomllib.loads(result.stdout)
    assert effective["exchange"]["api_secret"] == MASK
    assert effective["alerts"]["slack_webhook_url"] == MASK


def test_secret_canary_in_invalid_config_check(
    tmp_path: Path, run_tradebus: RunTradebus, canaries: tuple[dict[str, str], tuple[str, str]]
) -> None:
    env, secrets = canaries
    write(tmp_path / "bad.toml", '[health]\ninterval_s = "fast"\n')
    env = {**env, "TRADEBUS_EXCHANGE__API_SECRT": secrets[0]}  # a typo'd secret variable too

    result = run_tradebus("config", "check", "--config", "bad.toml", env=env)

    assert result.returncode == 2
    assert "health.interval_s" in result.stderr
    assert "TRADEBUS_EXCHANGE__API_SECRT" in result.stderr
    assert_no_canary(secrets, result.stdout, result.stderr)

    live = run_tradebus("run", "--mode", "live", env=env)  # refused: venue, key, typo
    assert live.returncode == 2
    assert_no_canary(secrets, live.stdout, live.stderr)


@pytest.mark.slow
def test_secret_canary_never_appears_while_running(
    tmp_path: Path,
    start_daemon: StartDaemon,
    notify_socket: NotifySocket,
    receive: Receive,
    canaries: tuple[dict[str, str], tuple[str, str]],
) -> None:
    env, secrets = canaries
    sock, notify_path = notify_socket
    daemon = start_daemon(
        *daemon_options(tmp_path), "--log-level", "DEBUG", env={**env, "NOTIFY_SOCKET": notify_path}
    )
    daemon.wait_for_event("daemon_started")
    datagrams = receive(sock, "STATUS=running, healthy")  # a heartbeat has been written
    daemon.terminate()
    assert daemon.wait() == 0, daemon.stderr

    log_file = (tmp_path / "logs" / "t.log").read_text(encoding="utf-8")
    heartbeat = (tmp_path / "hb.json").read_text(encoding="utf-8")
    assert "daemon_started" in log_file
    assert json.loads(heartbeat)["phase"] == "stopped"
    assert_no_canary(secrets, daemon.stdout, daemon.stderr, log_file, heartbeat, *datagrams)
