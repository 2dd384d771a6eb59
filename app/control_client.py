"""The client end of the control socket (`app.control`), used by `tradebus halt|resume|flatten|
shutdown`: send one request line, read one answer line, and turn every way of not reaching the
daemon into a `ControlUnavailable` whose message tells the operator what to check."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from contextlib import suppress
from pathlib import Path
from typing import Any

__all__ = ["ControlUnavailable", "format_answer", "send_control"]

# Answers carry one detail line per component; far below this.
_MAX_ANSWER_BYTES = 1 << 20

_BACKLOG_RETRY_S = 0.005

_DONE = {"halt": "halted", "resume": "resumed", "flatten": "flattening", "shutdown": "shutdown"}


class ControlUnavailable(Exception):
    """The daemon could not be asked, or did not answer: whether the command acted is unknown
    (or it certainly did not, when nobody listens)."""


async def send_control(
    path: Path,
    action: str,
    *,
    reason: str = "",
    requested_by: str,
    timeout_s: float,
) -> dict[str, Any]:
    """Send one command and return the daemon's answer (`{"ok": ..., ...}`)."""
    request = {"action": action, "reason": reason, "requested_by": requested_by}
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_unix_connection(
                sock=await _connect(path), limit=_MAX_ANSWER_BYTES
            )
            try:
                writer.write(json.dumps(request).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with suppress(OSError):
                    await writer.wait_closed()
    except FileNotFoundError:
        raise ControlUnavailable(
            f"no daemon is listening on {path}: is tradebus running? (runtime.control_socket)"
        ) from None
    except ConnectionRefusedError:
        raise ControlUnavailable(
            f"no daemon is listening on {path} (only a stale socket file is left): "
            "is tradebus running? (runtime.control_socket)"
        ) from None
    except PermissionError:
        raise ControlUnavailable(
            f"permission denied on {path}: run this as the user the daemon runs as "
            "(the control socket is mode 0600)"
        ) from None
    except TimeoutError:
        raise ControlUnavailable(
            f"no answer from the daemon on {path} within {timeout_s:g} s; the command may "
            "still take effect (check `tradebus status`)"
        ) from None
    except ValueError:  # the answer line overran the limit
        raise ControlUnavailable("the daemon's answer is too long") from None
    except OSError as exc:
        raise ControlUnavailable(
            f"cannot reach the daemon on {path}: {exc.strerror or exc}"
        ) from None
    if not line:
        raise ControlUnavailable(
            "the daemon closed the connection without answering (is it shutting down?)"
        )
    try:
        answer = json.loads(line)
    except ValueError:
        raise ControlUnavailable("the daemon's answer is not valid JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise ControlUnavailable("the daemon's answer is not a control answer")
    return answer


async def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        while True:
            try:
                sock.connect(os.fspath(path))
                return sock
            except BlockingIOError:
                # The daemon's accept backlog is full. asyncio would take this for "connected"
                # and fail on the first write; wait for room instead (the caller's timeout).
                await asyncio.sleep(_BACKLOG_RETRY_S)
    except BaseException:
        sock.close()
        raise


def format_answer(action: str, answer: dict[str, Any]) -> str:
    """The one-line result for a person, plus one indented line per component detail."""
    acks: dict[str, Any] = answer.get("acks") or {}
    elapsed = answer.get("elapsed_ms")
    took = f" in {elapsed} ms" if elapsed is not None else ""
    if not answer.get("ok"):
        error = answer.get("error", "refused")
        if "command_id" not in answer:
            return f"{action} refused: {error}"
        seen = f" (acknowledged by {', '.join(acks)})" if acks else ""
        line = f"{action} {error}{seen} after {elapsed} ms; command {answer['command_id']}"
    elif action == "shutdown":
        line = f"shutdown requested; command {answer.get('command_id')}"
    elif acks:
        line = f"{_DONE.get(action, action)}: acknowledged by {', '.join(acks)}{took}"
    else:
        line = f"{_DONE.get(action, action)}: published (no component must acknowledge){took}"
    details = [f"  {component}: {detail}" for component, detail in acks.items() if detail]
    return "\n".join([line, *details])
