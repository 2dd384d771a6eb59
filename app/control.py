"""The control server: `tradebus halt|resume|flatten|shutdown` reach the running daemon through
a local Unix socket (`runtime.control_socket`, mode 0600: only the daemon's user may command it).

Produces `ControlCommand` on `system.control`; consumes `ControlAcknowledged` on `system.ack`.

Protocol, one JSON line each way:

    → {"action": "halt"|"resume"|"flatten"|"shutdown", "reason": "...", "requested_by": "..."}
    ← {"ok": true, "command_id": "...", "action": "halt", "acks": {"risk": "..."}, "elapsed_ms": 3}
    ← {"ok": false, "error": "not acknowledged by: executor", "command_id": ..., "acks": {...}}
    ← {"ok": false, "error": "<why the request was refused>"}

The answer comes only once every component in `required_acks` has acknowledged the command on
`system.ack` (for `halt`: nothing new leaves it from then on), so the operator's "ok" means the
command has taken effect, not that it was queued. `shutdown` is answered as soon as it is
published: the supervisor acts on it by draining, which takes this server down too. Once the
drain began (`stop_accepting`) commands are refused, since the stages that would acknowledge
them are already stopping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import stat
from collections import OrderedDict
from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from app.bus import SYSTEM_ACK, SYSTEM_CONTROL, Bus
from app.domain import Clock, ControlAcknowledged, ControlAction, ControlCommand

__all__ = [
    "MAX_REQUEST_BYTES",
    "ControlRequest",
    "ControlServer",
    "ControlSocketError",
    "RequestError",
    "parse_request",
]

log = structlog.get_logger("app.control")

MAX_REQUEST_BYTES = 4096
MAX_REASON_CHARS = 500
MAX_REQUESTER_CHARS = 64
# A client that connects and says nothing must not hold a task forever.
READ_TIMEOUT_S = 10.0
# How long start() waits for an existing socket to answer before calling it taken.
_PROBE_TIMEOUT_S = 1.0
# sun_path is 108 bytes on Linux, including the terminating NUL.
_UNIX_PATH_MAX = 107
_BACKLOG = 64
# Acks for ids the server is not (or no longer) waiting for are kept in bounded memories.
_REMEMBERED = 64


class ControlSocketError(Exception):
    """The control socket cannot be set up: the path is unusable or another daemon owns it."""


class RequestError(ValueError):
    """A request the server refuses; the message is sent back to the client."""


@dataclass(frozen=True, slots=True)
class ControlRequest:
    action: ControlAction
    reason: str
    requested_by: str


def _printable(text: str) -> str:
    # Operator text goes into logs and alerts: no control characters that could forge lines.
    return "".join(c if c.isprintable() else " " for c in text).strip()


def parse_request(line: bytes) -> ControlRequest:
    """One request line → a request, or `RequestError` naming what is wrong with it."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        raise RequestError("request is not valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError("request must be a JSON object")
    action = data.get("action")
    choices = ", ".join(a.value for a in ControlAction)
    if not isinstance(action, str) or action not in {a.value for a in ControlAction}:
        raise RequestError(f"unknown action {action!r}; expected one of {choices}")
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise RequestError("reason must be a string")
    if len(reason) > MAX_REASON_CHARS:
        raise RequestError(f"reason is longer than {MAX_REASON_CHARS} characters")
    requested_by = data.get("requested_by", "unknown")
    if not isinstance(requested_by, str):
        raise RequestError("requested_by must be a string")
    requested_by = _printable(requested_by)[:MAX_REQUESTER_CHARS] or "unknown"
    return ControlRequest(ControlAction(action), _printable(reason), requested_by)


@dataclass
class _Pending:
    command: ControlCommand
    required: frozenset[str]
    acks: dict[str, str] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def missing(self) -> list[str]:
        return sorted(self.required - self.acks.keys())

    def add(self, ack: ControlAcknowledged) -> None:
        if ack.action is not self.command.action:
            log.warning(
                "control_ack_mismatched",
                command_id=ack.command_id,
                component=ack.component,
                expected=self.command.action.value,
                got=ack.action.value,
            )
            return
        self.acks[ack.component] = ack.detail
        if not self.missing:
            self.done.set()


class ControlServer:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        path: Path,
        required_acks: Collection[str],
        ack_timeout_s: float,
        name: str = "control",
    ) -> None:
        self.name = name
        self.path = path
        self.clock = clock
        self.required_acks = frozenset(required_acks)
        self.ack_timeout_s = ack_timeout_s
        self.served = 0
        self.refused = 0
        self.unacknowledged = 0
        self.last: dict[str, Any] | None = None
        self._commands = bus.sender(SYSTEM_CONTROL.channel())
        # Subscribed once, for the server's lifetime: an ack is matched whatever the moment it
        # arrives, before the waiter registered (kept in `_early`) or while it waits.
        bus.subscribe(SYSTEM_ACK.channel(), self.on_ack, subscriber=name)
        self._pending: dict[str, _Pending] = {}
        self._early: OrderedDict[str, dict[str, ControlAcknowledged]] = OrderedDict()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._sequence = itertools.count(1)
        self._sock: socket.socket | None = None
        self._identity: tuple[int, int] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the socket (the supervisor's start hook): a failure stops the start-up."""
        if self._sock is None:
            await self._bind()

    async def run(self) -> None:
        """Serve clients until cancelled; then close the socket and remove its file."""
        if self._sock is None:
            await self._bind()  # a restart after a crash binds again
        sock = self._sock
        assert sock is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as clients:
                while True:
                    try:
                        conn, _ = await loop.sock_accept(sock)
                    except OSError as exc:  # e.g. out of file descriptors: retry, don't die
                        log.error("control_accept_failed", error=str(exc))
                        await self.clock.sleep(0.1)
                        continue
                    clients.create_task(self._serve(conn), name=f"{self.name}:client")
        finally:
            self._close()

    def stop_accepting(self) -> None:
        """The drain began (`supervisor.on_stopping`): refuse new commands from now on."""
        self._stopping = True

    async def _bind(self) -> None:
        path = self.path
        if len(os.fsencode(path)) > _UNIX_PATH_MAX:
            raise ControlSocketError(
                f"control socket path {path} is longer than {_UNIX_PATH_MAX} bytes, the Unix "
                "socket limit; set runtime.control_socket to a shorter path"
            )
        try:
            os.makedirs(path.parent, exist_ok=True)
        except OSError as exc:
            raise ControlSocketError(f"cannot create {path.parent}: {exc.strerror}") from None
        await self._clear_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(os.fspath(path))
            # Nobody can connect before listen(), so the mode is 0600 before the first client.
            os.chmod(path, 0o600)
            sock.listen(_BACKLOG)
            sock.setblocking(False)
            info = os.stat(path)
        except OSError as exc:
            sock.close()
            raise ControlSocketError(
                f"cannot listen on control socket {path}: {exc.strerror or exc}"
            ) from None
        self._identity = (info.st_dev, info.st_ino)
        self._sock = sock
        log.info("control_socket_listening", path=str(path))

    async def _clear_stale(self, path: Path) -> None:
        """Remove a socket file left by a daemon that died; refuse one a live daemon answers on."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise ControlSocketError(
                f"{path} exists and is not a socket; not replacing it (runtime.control_socket)"
            )
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                _, writer = await asyncio.open_unix_connection(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            with suppress(FileNotFoundError):
                os.unlink(path)
            log.warning("control_socket_stale_removed", path=str(path))
            return
        except TimeoutError:
            pass  # something holds it and is too busy to accept: still not ours to take
        except OSError as exc:
            raise ControlSocketError(f"cannot probe control socket {path}: {exc}") from None
        else:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()
        raise ControlSocketError(
            f"another tradebus daemon is listening on {path}: two daemons must not share a "
            "control socket (set runtime.control_socket to another path)"
        )

    def _close(self) -> None:
        if self._sock is None:
            return
        self._sock.close()
        self._sock = None
        # Only our own file: a second daemon may have replaced a socket we lost track of.
        with suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._identity:
                self.path.unlink()
        log.info("control_socket_closed", path=str(self.path))

    # -- one client --------------------------------------------------------------------------
    async def _serve(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_REQUEST_BYTES)
        except OSError:
            conn.close()
            return
        try:
            answer = await self._answer(reader)
            if answer is not None:
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except OSError as exc:  # the client left before its answer: the command still stands
            log.info("control_client_gone", error=str(exc))
        except Exception:  # one bad request must not take the server down
            log.exception("control_request_failed")
        finally:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                line = await reader.readline()
        except TimeoutError:
            return self._refuse(f"no request line within {READ_TIMEOUT_S:g} s")
        except ValueError:  # the line overran the reader's limit
            return self._refuse(f"request is longer than {MAX_REQUEST_BYTES} bytes")
        if not line:
            return None  # connected and left without a word (e.g. another daemon's probe)
        try:
            request = parse_request(line)
        except RequestError as exc:
            return self._refuse(str(exc))
        return await self.execute(
            request.action, reason=request.reason, requested_by=f"cli:{request.requested_by}"
        )

    def _refuse(self, error: str) -> dict[str, Any]:
        self.refused += 1
        log.warning("control_request_refused", error=error)
        return {"ok": False, "error": error}

    # -- commands ----------------------------------------------------------------------------
    async def execute(
        self, action: ControlAction, *, reason: str, requested_by: str
    ) -> dict[str, Any]:
        """Publish a command and wait for the required acknowledgements; return the answer."""
        if self._stopping:
            return self._refuse("the daemon is shutting down")
        ts_ms = self.clock.now_ms()
        command = ControlCommand(
            action=action,
            requested_by=requested_by,
            ts_ms=ts_ms,
            reason=reason,
            command_id=f"{ts_ms}-{next(self._sequence)}",
        )
        started = self.clock.monotonic()
        log.info(
            "control_command_received",
            command_id=command.command_id,
            action=action.value,
            requested_by=requested_by,
            reason=reason,
        )
        if action is ControlAction.SHUTDOWN:
            await self._commands.send(command)
            return self._conclude(command, started, {}, [])
        pending = _Pending(command, self.required_acks)
        self._pending[command.command_id] = pending
        for ack in self._early.pop(command.command_id, {}).values():
            pending.add(ack)
        try:
            await self._commands.send(command)
            if pending.missing:
                await self._wait(pending)
        finally:
            del self._pending[command.command_id]
            _remember(self._finished, command.command_id, None)
        return self._conclude(command, started, dict(sorted(pending.acks.items())), pending.missing)

    async def _wait(self, pending: _Pending) -> None:
        # The deadline runs on the injected clock, so tests move time instead of waiting.
        async with asyncio.TaskGroup() as group:
            acked = group.create_task(pending.done.wait())
            deadline = group.create_task(self.clock.sleep(self.ack_timeout_s))
            await asyncio.wait((acked, deadline), return_when=asyncio.FIRST_COMPLETED)
            acked.cancel()
            deadline.cancel()

    def _conclude(
        self,
        command: ControlCommand,
        started: float,
        acks: dict[str, str],
        missing: list[str],
    ) -> dict[str, Any]:
        elapsed_ms = round((self.clock.monotonic() - started) * 1000)
        self.served += 1
        answer: dict[str, Any] = {
            "ok": not missing,
            "command_id": command.command_id,
            "action": command.action.value,
            "acks": acks,
            "elapsed_ms": elapsed_ms,
        }
        if missing:
            self.unacknowledged += 1
            answer["error"] = f"not acknowledged by: {', '.join(missing)}"
            outcome = answer["error"]
            log.error(
                "control_command_unacknowledged",
                command_id=command.command_id,
                action=command.action.value,
                missing=missing,
                acks=sorted(acks),
                elapsed_ms=elapsed_ms,
            )
        else:
            outcome = "published" if command.action is ControlAction.SHUTDOWN else "acknowledged"
            log.info(
                "control_command_acknowledged",
                command_id=command.command_id,
                action=command.action.value,
                acks=sorted(acks),
                elapsed_ms=elapsed_ms,
            )
        self.last = {
            "command_id": command.command_id,
            "action": command.action.value,
            "requested_by": command.requested_by,
            "reason": command.reason,
            "ts_ms": command.ts_ms,
            "outcome": outcome,
            "elapsed_ms": elapsed_ms,
        }
        return answer

    async def on_ack(self, ack: ControlAcknowledged) -> None:
        pending = self._pending.get(ack.command_id)
        if pending is not None:
            pending.add(ack)
        elif ack.command_id in self._finished:
            log.warning("control_ack_late", command_id=ack.command_id, component=ack.component)
        elif ack.command_id:
            # Before the waiter registered (or for a command published by someone else).
            early = self._early.setdefault(ack.command_id, {})
            early[ack.component] = ack
            _remember(self._early, ack.command_id, early)

    # -- observation -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The heartbeat section."""
        return {
            "path": str(self.path),
            "listening": self._sock is not None and not self._stopping,
            "required_acks": sorted(self.required_acks),
            "served": self.served,
            "refused": self.refused,
            "unacknowledged": self.unacknowledged,
            "pending": len(self._pending),
            "last": self.last,
        }


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > _REMEMBERED:
        memory.popitem(last=False)
