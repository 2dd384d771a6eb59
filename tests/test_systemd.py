"""Tests for app.systemd: sd_notify datagrams on a real unix socket standing in for systemd.

Every wait is a blocking `recv` with a deadline (set by the `notify_socket` fixture): the test
waits for the datagram itself, not for time to pass.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from app.bus import Bus
from app.domain.clock import ManualClock
from app.health import HealthMonitor, HealthOptions, LoopLagMonitor
from app.redaction import Redactor
from app.runtime import Phase, Supervisor
from app.systemd import SystemdNotifier

if TYPE_CHECKING:
    from tests.conftest import DaemonProcess

Receive = Callable[[socket.socket, str], list[str]]
NotifySocket = tuple[socket.socket, str]


def lines(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().splitlines()


def test_disabled_without_a_socket() -> None:
    notifier = SystemdNotifier(None, watchdog_usec=1_000_000)
    assert notifier.enabled is False
    assert notifier.notify("READY=1") is False
    notifier.ready()  # no-ops, no errors
    notifier.watchdog()
    notifier.stopping()
    assert SystemdNotifier("").enabled is False


def test_ready_status_and_stopping(notify_socket: NotifySocket) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier(path)
    assert notifier.enabled is True

    notifier.ready()
    assert lines(sock) == ["READY=1", "STATUS=running"]
    notifier.status("running, healthy")
    assert lines(sock) == ["STATUS=running, healthy"]
    notifier.stopping("draining after SIGTERM")
    assert lines(sock) == ["STOPPING=1", "STATUS=draining after SIGTERM"]
    assert notifier.enabled is True


def test_watchdog_pings_only_when_the_watchdog_is_on(notify_socket: NotifySocket) -> None:
    sock, path = notify_socket
    without = SystemdNotifier(path)
    assert without.watchdog_interval_s is None
    without.watchdog()  # sends nothing: the next datagram on the socket is the READY below
    without.ready()
    assert lines(sock)[0] == "READY=1"

    with_watchdog = SystemdNotifier(path, watchdog_usec=3_000_000)
    assert with_watchdog.watchdog_interval_s == 1.5  # half the timeout
    with_watchdog.watchdog()
    assert lines(sock) == ["WATCHDOG=1"]


def test_abstract_namespace_address() -> None:
    name = f"tradebus-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(20)
        notifier = SystemdNotifier("@" + name)
        notifier.ready()
        assert lines(sock) == ["READY=1", "STATUS=running"]


def test_dead_socket_path_switches_notifications_off(tmp_path: Path) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone.sock"))
    with capture_logs() as logs:
        assert notifier.notify("READY=1") is False  # no exception
        notifier.ready()
        notifier.watchdog()
    assert notifier.enabled is False
    assert [entry["event"] for entry in logs] == ["systemd_notify_failed"]  # logged once


def test_socket_whose_listener_went_away_switches_notifications_off(tmp_path: Path) -> None:
    path = tmp_path / "closed.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    assert path.exists()  # the file stays, nobody reads it: connection refused
    notifier = SystemdNotifier(str(path), watchdog_usec=1_000_000)
    notifier.watchdog()
    assert notifier.enabled is False
    notifier.stopping()  # still no exception


async def test_health_monitor_pings_the_watchdog_at_half_its_timeout(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    sock, path = notify_socket
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    async def next_lines() -> list[str]:
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 20)
        return data.decode().splitlines()

    clock = ManualClock()
    bus = Bus()
    supervisor = Supervisor(bus=bus, clock=clock)
    supervisor.phase = Phase.RUNNING
    monitor = HealthMonitor(
        options=HealthOptions(heartbeat_path=tmp_path / "hb.json", interval_s=5.0),
        supervisor=supervisor,
        bus=bus,
        clock=clock,
        loop_lag=LoopLagMonitor(),
        identity={"version": "0", "instance": "t", "mode": "paper"},
        redactor=Redactor(),
        notifier=SystemdNotifier(path, watchdog_usec=2_000_000),  # ping every 1 s, not 5 s
    )
    task = asyncio.create_task(monitor.run())
    try:
        assert await next_lines() == ["STATUS=running, healthy"]
        assert await next_lines() == ["WATCHDOG=1"]
        # The monitor pinged and went to sleep on the clock without yielding in between.
        assert clock.sleeper_count == 1
        clock.advance(1.0)
        assert await next_lines() == ["STATUS=running, healthy"]
        assert await next_lines() == ["WATCHDOG=1"]
        assert monitor.writes == 2
        assert json.loads((tmp_path / "hb.json").read_text())["uptime_s"] == 1.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.slow
def test_tradebus_run_notifies_ready_watchdog_and_stopping(
    tmp_path: Path,
    tradebus_env: dict[str, str],
    start_daemon: Callable[..., DaemonProcess],
    notify_socket: NotifySocket,
    receive: Receive,
) -> None:
    sock, path = notify_socket
    env = {**tradebus_env, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}
    daemon = start_daemon(
        "--set",
        f"logging.file={tmp_path / 'logs' / 'tradebus.log'}",
        "--set",
        f"health.heartbeat_path={tmp_path / 'hb.json'}",
        "--set",
        "sim.port=0",
        "--set",
        f"sim.state_file={tmp_path / 'sim_state.json'}",
        env=env,
    )

    first = receive(sock, "READY=1")
    # Start hooks take a moment (the embedded simulator, exchangeInfo): status and watchdog
    # pings may come first, READY only with the running heartbeat.
    assert first[-1] == "READY=1\nSTATUS=running"
    assert all("READY" not in message for message in first[:-1])
    receive(sock, "WATCHDOG=1")  # the watchdog is pinged with each heartbeat
    daemon.terminate()
    after = receive(sock, "STOPPING=1")
    assert after[-1] == "STOPPING=1\nSTATUS=draining"

    assert daemon.wait() == 0
    assert json.loads((tmp_path / "hb.json").read_text())["phase"] == "stopped"
