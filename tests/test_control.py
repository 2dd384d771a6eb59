"""The kill-switch transport: the control server on a real Unix socket, a real live `Bus` run by
a real `Supervisor`, and hand-written components that acknowledge on `system.ack` the way the
risk gate and the executor do; the client and `tradebus halt|resume|flatten|shutdown` in-process.

Time-outs are driven by a `ManualClock` (the server's deadline runs on the injected clock), so
no test waits for one in real time, except the CLI test of "not acknowledged", which runs the
daemon side on the real clock with a 0.2 s deadline.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Collection, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import app.control as control_module
from app.bus import SYSTEM_ACK, SYSTEM_CONTROL, Bus
from app.cli import main
from app.control import ControlServer, ControlSocketError, RequestError, parse_request
from app.control_client import ControlUnavailable, format_answer, send_control
from app.domain import (
    Clock,
    ControlAcknowledged,
    ControlAction,
    ControlCommand,
    ManualClock,
    SystemClock,
)
from app.runtime import ComponentSpec, ExitCode, Stage, Supervisor

CLIENT_TIMEOUT_S = 5.0  # a bug fails the test through the client's deadline, never hangs it
_UNIX_PATH_MAX = 100


async def until(predicate: Callable[[], bool], rounds: int = 10_000) -> None:
    """Yield to the loop until something has happened (no time passes)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    """Where the socket goes: in a folder that does not exist yet, short enough for sun_path."""
    path = tmp_path / "run" / "control.sock"
    if len(str(path)) <= _UNIX_PATH_MAX:
        yield path
        return
    scratch = tempfile.mkdtemp(prefix="tb-")
    try:
        yield Path(scratch) / "run" / "control.sock"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


Logs = list[MutableMapping[str, Any]]


@pytest.fixture(autouse=True)
def logs() -> Iterator[Logs]:
    """The structured log events (and none on stdout, where the CLI tests read their output)."""
    with capture_logs() as captured:
        yield captured


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def gone(path: Path) -> bool:
    return not path.exists()


def events(logs: Logs, name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the CLI finds no config/tradebus.toml or .env here
    for name in list(os.environ):
        if name.upper().startswith("TRADEBUS_"):
            monkeypatch.delenv(name)


class Acker:
    """A component obeying `system.control` the way risk and executor do: it acts, then says so."""

    def __init__(
        self, bus: Bus, clock: Clock, name: str, *, acks: bool = True, detail: str = ""
    ) -> None:
        self.name = name
        self.clock = clock
        self.acks = acks
        self.detail = detail
        self.received: list[ControlCommand] = []
        self.acked = asyncio.Event()
        self.gate: asyncio.Event | None = None  # when set by a test: ack only once it opens
        self._sender = bus.sender(SYSTEM_ACK.channel())
        bus.subscribe(SYSTEM_CONTROL.channel(), self.on_control, subscriber=name)

    async def on_control(self, command: ControlCommand) -> None:
        self.received.append(command)
        if not self.acks or command.action is ControlAction.SHUTDOWN:
            return
        if self.gate is not None:
            await self.gate.wait()
        ack = ControlAcknowledged(
            command_id=command.command_id,
            action=command.action,
            component=self.name,
            ts_ms=self.clock.now_ms(),
            detail=self.detail,
        )
        await self._sender.send(ack)
        self.acked.set()


@dataclass
class Daemon:
    bus: Bus
    supervisor: Supervisor
    server: ControlServer
    ackers: dict[str, Acker]
    task: asyncio.Task[ExitCode]

    async def ask(self, action: str, reason: str = "") -> dict[str, object]:
        return await send_control(
            self.server.path,
            action,
            reason=reason,
            requested_by="alice",
            timeout_s=CLIENT_TIMEOUT_S,
        )


@asynccontextmanager
async def running(
    path: Path,
    *,
    clock: Clock,
    required: Collection[str] = ("risk", "executor"),
    silent: Collection[str] = (),
    timeout_s: float = 5.0,
) -> AsyncIterator[Daemon]:
    """The daemon's control path as `app/wiring.py` assembles it, with fake risk and executor."""
    bus = Bus()
    supervisor = Supervisor(bus=bus, clock=clock)
    server = ControlServer(
        bus=bus, clock=clock, path=path, required_acks=required, ack_timeout_s=timeout_s
    )
    supervisor.add(ComponentSpec("control", Stage.OBSERVER, start=server.start, run=server.run))
    supervisor.on_stopping(server.stop_accepting)
    ackers = {
        "risk": Acker(bus, clock, "risk", acks="risk" not in silent, detail="state halted"),
        "executor": Acker(bus, clock, "executor", acks="executor" not in silent),
    }
    supervisor.add(ComponentSpec("risk", Stage.RISK))
    supervisor.add(ComponentSpec("executor", Stage.EXECUTOR))
    started = asyncio.Event()
    supervisor.on_running(started.set)
    task = asyncio.create_task(supervisor.run(install_signal_handlers=False))
    try:
        await asyncio.wait_for(started.wait(), CLIENT_TIMEOUT_S)
        yield Daemon(bus, supervisor, server, ackers, task)
    finally:
        supervisor.request_shutdown("test over")
        await asyncio.wait_for(task, CLIENT_TIMEOUT_S)


# --- commands and acknowledgements --------------------------------------------------------------


async def test_halt_is_answered_once_both_components_acknowledged(
    sock_path: Path, logs: Logs
) -> None:
    clock = ManualClock()
    async with running(sock_path, clock=clock) as daemon:
        answer = await daemon.ask("halt", reason="too volatile")
        command = daemon.ackers["executor"].received[0]
        status = daemon.server.status()

    assert answer == {
        "ok": True,
        "command_id": command.command_id,
        "action": "halt",
        "acks": {"executor": "", "risk": "state halted"},
        "elapsed_ms": 0,
    }
    assert command.command_id == f"{clock.now_ms()}-1"
    assert command.action is ControlAction.HALT
    assert command.requested_by == "cli:alice"
    assert command.reason == "too volatile"
    assert daemon.ackers["risk"].received == [command]
    assert status["served"] == 1
    assert status["listening"] is True
    assert status["last"]["outcome"] == "acknowledged"
    assert status["last"]["command_id"] == command.command_id
    assert gone(sock_path)  # removed when run() was cancelled by the drain
    [received] = events(logs, "control_command_received")
    assert received["requested_by"] == "cli:alice"
    assert received["reason"] == "too volatile"
    [acknowledged] = events(logs, "control_command_acknowledged")
    assert acknowledged["acks"] == ["executor", "risk"]
    assert acknowledged["elapsed_ms"] == 0


async def test_the_answer_waits_for_the_slowest_component(sock_path: Path) -> None:
    clock = ManualClock()
    async with running(sock_path, clock=clock) as daemon:
        executor = daemon.ackers["executor"]
        executor.gate = asyncio.Event()
        asking = asyncio.create_task(daemon.ask("halt"))
        await daemon.ackers["risk"].acked.wait()
        acks_seen = daemon.bus.subscriptions("control")[0]
        await until(lambda: acks_seen.handled == 1)  # the server has risk's ack
        for _ in range(200):  # many turns of the loop (no time passes): it still waits
            await asyncio.sleep(0)
            assert daemon.server.status()["pending"] == 1
        assert not asking.done()
        executor.gate.set()
        answer = await asking

    assert answer["ok"] is True
    assert answer["acks"] == {"executor": "", "risk": "state halted"}


async def test_component_that_never_acknowledges_is_named_after_the_deadline(
    sock_path: Path,
) -> None:
    clock = ManualClock()
    async with running(sock_path, clock=clock, silent={"executor"}, timeout_s=5.0) as daemon:
        asking = asyncio.create_task(daemon.ask("flatten"))
        await daemon.ackers["risk"].acked.wait()
        await clock.wait_for_sleepers(1)  # the server's deadline
        assert not asking.done()
        clock.advance(5.0)
        answer = await asking
        status = daemon.server.status()

    assert answer["ok"] is False
    assert answer["error"] == "not acknowledged by: executor"
    assert answer["acks"] == {"risk": "state halted"}
    assert answer["elapsed_ms"] == 5000
    assert answer["action"] == "flatten"
    assert status["unacknowledged"] == 1
    assert status["pending"] == 0
    assert status["last"]["outcome"] == "not acknowledged by: executor"


async def test_an_ack_arriving_before_the_waiter_is_matched(sock_path: Path) -> None:
    clock = ManualClock()
    async with running(
        sock_path, clock=clock, required=("risk",), silent={"risk", "executor"}
    ) as daemon:
        # Ids are `<ts_ms>-<sequence>`: the first command of this server will carry this one.
        expected_id = f"{clock.now_ms()}-1"
        await daemon.bus.sender(SYSTEM_ACK.channel()).send(
            ControlAcknowledged(expected_id, ControlAction.HALT, "risk", clock.now_ms(), "early")
        )
        control_inbox = daemon.bus.subscriptions("control")[0]
        await until(lambda: control_inbox.handled == 1)
        answer = await daemon.ask("halt")  # without the early ack: no answer within 5 s

    assert answer["ok"] is True
    assert answer["command_id"] == expected_id
    assert answer["acks"] == {"risk": "early"}


async def test_a_late_ack_does_not_confuse_the_next_command(sock_path: Path) -> None:
    clock = ManualClock()
    async with running(sock_path, clock=clock, silent={"executor"}, timeout_s=1.0) as daemon:
        asking = asyncio.create_task(daemon.ask("halt"))
        await daemon.ackers["risk"].acked.wait()
        await clock.wait_for_sleepers(1)
        clock.advance(1.0)
        first = await asking
        late = ControlAcknowledged(
            str(first["command_id"]), ControlAction.HALT, "executor", clock.now_ms()
        )
        await daemon.bus.sender(SYSTEM_ACK.channel()).send(late)
        daemon.ackers["executor"].acks = True
        second = await daemon.ask("resume")

    assert first["ok"] is False
    assert second["ok"] is True
    assert second["command_id"] != first["command_id"]


async def test_concurrent_clients_each_get_their_own_answer(sock_path: Path) -> None:
    clock = ManualClock()
    async with running(sock_path, clock=clock) as daemon:
        actions = ["halt", "resume", "flatten"] * 30  # more than the backlog
        answers = await asyncio.gather(*(daemon.ask(action) for action in actions))
        received = daemon.ackers["executor"].received

    assert all(a["ok"] for a in answers), answers
    assert [a["action"] for a in answers] == actions
    ids = {a["command_id"] for a in answers}
    assert len(ids) == len(actions)
    assert {c.command_id for c in received} == ids


async def test_shutdown_is_answered_at_once_and_stops_the_daemon(sock_path: Path) -> None:
    clock = ManualClock()
    async with running(sock_path, clock=clock) as daemon:
        answer = await daemon.ask("shutdown", reason="maintenance")
        code = await asyncio.wait_for(daemon.task, CLIENT_TIMEOUT_S)

    assert answer["ok"] is True
    assert answer["acks"] == {}
    assert code is ExitCode.OK
    assert daemon.supervisor.shutdown_reason == "control command from cli:alice"
    assert gone(sock_path)


async def test_commands_are_refused_once_the_drain_began(sock_path: Path) -> None:
    async with running(sock_path, clock=ManualClock()) as daemon:
        daemon.server.stop_accepting()
        answer = await daemon.ask("halt")
    assert answer == {"ok": False, "error": "the daemon is shutting down"}
    assert daemon.ackers["risk"].received == []


# --- bad requests and clients -------------------------------------------------------------------


async def _raw(path: Path, payload: bytes) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(payload)
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), CLIENT_TIMEOUT_S)
    writer.close()
    await writer.wait_closed()
    answer = json.loads(line)
    assert isinstance(answer, dict)
    return answer


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"halt please\n", "request is not valid JSON"),
        (b"[1, 2]\n", "request must be a JSON object"),
        (b'{"action": "sell_everything"}\n', "unknown action 'sell_everything'"),
        (b'{"reason": "x"}\n', "unknown action None"),
        (b'{"action": "halt", "reason": 5}\n', "reason must be a string"),
        (b"[" * 3000 + b"\n", "request is not valid JSON"),
        (b'{"action": "halt", "reason": "' + b"x" * 5000 + b'"}\n', "longer than 4096 bytes"),
    ],
)
async def test_bad_requests_are_answered_and_the_server_keeps_serving(
    sock_path: Path, payload: bytes, error: str
) -> None:
    async with running(sock_path, clock=ManualClock()) as daemon:
        refused = await _raw(sock_path, payload)
        after = await daemon.ask("halt")
        status = daemon.server.status()

    assert refused["ok"] is False
    assert error in str(refused["error"])
    assert after["ok"] is True
    assert daemon.ackers["risk"].received == [daemon.ackers["executor"].received[0]]
    assert status["refused"] == 1


def test_parse_request_cleans_operator_text() -> None:
    request = parse_request(b'{"action": "flatten", "reason": "bad\\nfill\\u001b", "x": 1}')
    assert request.action is ControlAction.FLATTEN
    assert request.reason == "bad fill"
    assert request.requested_by == "unknown"
    with pytest.raises(RequestError, match="longer than 500"):
        parse_request(json.dumps({"action": "halt", "reason": "y" * 501}).encode())


async def test_a_client_leaving_before_its_answer_does_not_hurt_the_server(
    sock_path: Path,
) -> None:
    async with running(sock_path, clock=ManualClock()) as daemon:
        _, writer = await asyncio.open_unix_connection(str(sock_path))
        writer.write(b'{"action": "halt", "requested_by": "bob"}\n')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await until(lambda: daemon.server.served == 1)  # the command still went through
        answer = await daemon.ask("resume")
        first = daemon.ackers["risk"].received[0]

    assert first.requested_by == "cli:bob"
    assert answer["ok"] is True
    assert daemon.server.served == 2


async def test_a_silent_client_is_dropped_without_blocking_others(
    sock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_module, "READ_TIMEOUT_S", 0.05)
    async with running(sock_path, clock=ManualClock()) as daemon:
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        answer = await daemon.ask("halt")  # served while the silent one is connected
        dropped = json.loads(await asyncio.wait_for(reader.readline(), CLIENT_TIMEOUT_S))
        writer.close()
        await writer.wait_closed()
    assert answer["ok"] is True
    assert dropped == {"ok": False, "error": "no request line within 0.05 s"}


# --- the socket file ----------------------------------------------------------------------------


async def test_socket_is_private_and_its_folder_created(sock_path: Path) -> None:
    assert not sock_path.parent.exists()
    async with running(sock_path, clock=ManualClock()):
        info = os.stat(sock_path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600


async def test_a_stale_socket_file_is_replaced(sock_path: Path, logs: Logs) -> None:
    sock_path.parent.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))  # what a killed daemon leaves: a socket file nobody listens on
    dead.close()
    with pytest.raises(ControlUnavailable, match="stale socket file"):
        await send_control(sock_path, "halt", requested_by="a", timeout_s=CLIENT_TIMEOUT_S)

    async with running(sock_path, clock=ManualClock()) as daemon:
        answer = await daemon.ask("halt")
    assert answer["ok"] is True
    assert events(logs, "control_socket_stale_removed") == [
        {"event": "control_socket_stale_removed", "path": str(sock_path), "log_level": "warning"}
    ]


async def test_a_second_server_on_a_live_socket_is_refused(sock_path: Path) -> None:
    async with running(sock_path, clock=ManualClock()) as daemon:
        inode = os.stat(sock_path).st_ino
        other = ControlServer(
            bus=Bus(),
            clock=ManualClock(),
            path=sock_path,
            required_acks=(),
            ack_timeout_s=1.0,
        )
        with pytest.raises(ControlSocketError, match="another tradebus daemon is listening"):
            await other.start()
        assert os.stat(sock_path).st_ino == inode
        answer = await daemon.ask("halt")  # the first daemon still owns it
    assert answer["ok"] is True


@pytest.fixture
def not_a_socket(sock_path: Path) -> Path:
    sock_path.parent.mkdir()
    sock_path.write_text("keep me")
    return sock_path


async def test_a_file_that_is_not_a_socket_is_left_alone(not_a_socket: Path) -> None:
    sock_path = not_a_socket
    server = ControlServer(
        bus=Bus(), clock=ManualClock(), path=sock_path, required_acks=(), ack_timeout_s=1.0
    )
    with pytest.raises(ControlSocketError, match="is not a socket"):
        await server.start()
    assert read(sock_path) == "keep me"


async def test_a_path_too_long_for_a_unix_socket_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / ("d" * 60) / ("s" * 60 + ".sock")
    server = ControlServer(
        bus=Bus(), clock=ManualClock(), path=path, required_acks=(), ack_timeout_s=1.0
    )
    with pytest.raises(ControlSocketError, match=r"runtime\.control_socket to a shorter path"):
        await server.start()


async def test_client_without_a_daemon_says_what_to_check(sock_path: Path) -> None:
    with pytest.raises(ControlUnavailable) as raised:
        await send_control(sock_path, "halt", requested_by="a", timeout_s=CLIENT_TIMEOUT_S)
    assert str(raised.value) == (
        f"no daemon is listening on {sock_path}: is tradebus running? (runtime.control_socket)"
    )


def test_format_answer() -> None:
    ok = {"ok": True, "command_id": "1-1", "acks": {"executor": "", "risk": "x"}, "elapsed_ms": 3}
    assert format_answer("halt", ok) == "halted: acknowledged by executor, risk in 3 ms\n  risk: x"
    assert format_answer("halt", {"ok": False, "error": "bad"}) == "halt refused: bad"
    missing = {**ok, "ok": False, "error": "not acknowledged by: risk", "acks": {"executor": ""}}
    assert format_answer("flatten", missing) == (
        "flatten not acknowledged by: risk (acknowledged by executor) after 3 ms; command 1-1"
    )


# --- the CLI ------------------------------------------------------------------------------------


async def _tradebus(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    # main() runs its own event loop, so it runs in a thread while the daemon runs on this one.
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return int(code), captured.out, captured.err


async def test_cli_halt_resume_flatten_against_a_running_daemon(
    sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    socket_args = ("--socket", str(sock_path), "--timeout", "5")
    async with running(sock_path, clock=SystemClock()) as daemon:
        halt = await _tradebus(capsys, "halt", "--reason", "news", *socket_args)
        # The config route: runtime.control_socket from --set, the timeout from the config.
        resume = await _tradebus(capsys, "resume", "--set", f"runtime.control_socket={sock_path}")
        flatten = await _tradebus(capsys, "flatten", "--yes", "--json", *socket_args)
        received = daemon.ackers["executor"].received

    code, out, err = halt
    assert (code, err) == (0, ""), err
    assert out.startswith("halted: acknowledged by executor, risk in ")
    assert out.splitlines()[0].endswith(" ms")
    assert out.splitlines()[1] == "  risk: state halted"
    assert resume[0] == 0, resume[2]
    assert resume[1].startswith("resumed: acknowledged by executor, risk in ")
    assert flatten[0] == 0, flatten[2]
    answer = json.loads(flatten[1])
    assert answer["ok"] is True
    assert answer["action"] == "flatten"
    assert [c.action for c in received] == [
        ControlAction.HALT,
        ControlAction.RESUME,
        ControlAction.FLATTEN,
    ]
    assert received[0].reason == "news"
    assert received[0].requested_by == f"cli:{getpass.getuser()}"


async def test_cli_not_acknowledged_exits_1_naming_the_component(
    sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running(sock_path, clock=SystemClock(), silent={"executor"}, timeout_s=0.2):
        code, out, err = await _tradebus(capsys, "halt", "--socket", str(sock_path))
    assert code == 1
    assert out == ""
    assert err.startswith("halt not acknowledged by: executor (acknowledged by risk) after ")


async def test_cli_without_a_daemon_exits_1(
    sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await _tradebus(capsys, "halt", "--socket", str(sock_path))
    assert code == 1
    assert out == ""
    assert err == (
        f"tradebus: no daemon is listening on {sock_path}: is tradebus running? "
        "(runtime.control_socket)\n"
    )


async def test_cli_flatten_asks_for_confirmation(
    sock_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    async with running(sock_path, clock=ManualClock()) as daemon:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        no_tty = await _tradebus(capsys, "flatten", "--socket", str(sock_path))
        monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
        declined = await _tradebus(capsys, "flatten", "--socket", str(sock_path))
        monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
        confirmed = await _tradebus(capsys, "flatten", "--socket", str(sock_path))
        received = daemon.ackers["risk"].received

    assert no_tty == (2, "", "tradebus: flatten needs --yes when not run on a terminal\n")
    assert declined[0] == 1
    assert "[y/N]" in declined[2]
    assert "not confirmed; nothing sent" in declined[2]
    assert confirmed[0] == 0
    assert confirmed[1].startswith("flattening: acknowledged by executor, risk in ")
    assert [c.action for c in received] == [ControlAction.FLATTEN]


async def test_cli_usage_and_config_errors_exit_2(
    sock_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unset = await _tradebus(capsys, "halt", "--set", "runtime.control_socket=")
    assert unset[0] == 2
    assert "runtime.control_socket is not set" in unset[2]
    bad_timeout = await _tradebus(capsys, "halt", "--socket", str(sock_path), "--timeout", "0")
    assert bad_timeout[0] == 2
    with pytest.raises(SystemExit) as usage:
        main(["halt", "--yes"])  # --yes belongs to flatten only
    assert usage.value.code == 2


def test_cli_help_lists_the_control_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("halt", "resume", "flatten", "shutdown"):
        assert command in out
