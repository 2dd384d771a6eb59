"""Shared fixtures for the subprocess tests of the real `tradebus` console script.

- `tradebus_env`: the process environment minus every `TRADEBUS_*` variable and the systemd
  variables (a test run under systemd must not notify the test runner's own service manager).
- `run_tradebus`: run one command to completion, with a timeout.
- `start_daemon`: start `tradebus run` in the background; a reader thread turns its stdout into
  a queue of lines, so a test blocks on "the next line" (an event) with a deadline. Every
  process started is killed at teardown if the test left it running, pass or fail.
- `notify_socket`: a bound `AF_UNIX`/`SOCK_DGRAM` socket standing in for systemd.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

TRADEBUS = str(Path(sys.executable).parent / "tradebus")
TIMEOUT_S = 20.0  # generous: a bug fails the test instead of hanging it
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes on Linux; keep a margin


class DaemonProcess:
    """`tradebus run` as a child process whose stdout lines can be awaited one by one."""

    def __init__(
        self, args: list[str], *, cwd: Path, env: Mapping[str, str], command: str = "run"
    ) -> None:
        self.proc = subprocess.Popen(
            [TRADEBUS, command, *args],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout_lines: list[str] = []
        self._stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)  # end of output

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def wait_for_event(self, event: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """Block until the daemon logs `event` (a JSON line on stdout) and return that record."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no {event!r} within {timeout}s\nstdout:\n{self.stdout}"
                ) from None
            if line is None:
                raise AssertionError(
                    f"daemon exited (code {self.proc.wait(timeout)}) before {event!r}\n"
                    f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                )
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == event:
                return record

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = TIMEOUT_S) -> int:
        """Wait for the exit and for both pipes to be read to the end; return the exit code."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT_S)
        for reader in self._readers:
            reader.join(TIMEOUT_S)


@pytest.fixture
def tradebus_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("TRADEBUS_")
        and name not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    }
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the pipe as they are written
    return env


@pytest.fixture
def run_tradebus(
    tmp_path: Path, tradebus_env: dict[str, str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TRADEBUS, *args],
            cwd=cwd or tmp_path,
            env=dict(env if env is not None else tradebus_env),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )

    return run


@pytest.fixture
def start_daemon(
    tmp_path: Path, tradebus_env: dict[str, str]
) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> DaemonProcess:
        daemon = DaemonProcess(
            list(args), cwd=tmp_path, env=env if env is not None else tradebus_env
        )
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()  # a no-op for a process the test already saw exit


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket playing systemd; yields (socket, the NOTIFY_SOCKET value)."""
    directory = tmp_path
    scratch: str | None = None
    if len(str(tmp_path / "notify.sock")) > _UNIX_PATH_MAX:
        directory = Path(scratch := tempfile.mkdtemp(prefix="tb-"))
    path = str(directory / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        sock.settimeout(TIMEOUT_S)  # recv() waits for the datagram, up to this deadline
        yield sock, path
    finally:
        sock.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    """Receive datagrams until one holds the line `wanted`; return every datagram seen."""
    seen: list[str] = []
    while True:
        try:
            datagram = sock.recv(4096).decode()
        except TimeoutError:
            raise AssertionError(f"no {wanted!r} datagram; received {seen}") from None
        seen.append(datagram)
        if wanted in datagram.splitlines():
            return seen


@pytest.fixture
def receive() -> Callable[[socket.socket, str], list[str]]:
    return receive_until
