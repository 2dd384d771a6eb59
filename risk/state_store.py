"""The risk gate's saved state: trading state, guards and book survive a restart.

One JSON document. Where it lives is a ``StateDocuments``: the daemon keeps it in its database
(``database.documents``, with the recorder's engine); ``FileStateDocuments`` keeps it in a file
replaced atomically (``app.atomic_file``), so a crash leaves the old state or the new, never a
torn file. The document::

    {"version": 1, "saved_ms": ..., "trading_state": {...}, "guards": {...}, "book": {...},
     "closing": [...]}

The parts are the snapshots of ``TradingStateMachine``, ``Guards``, ``RiskBook`` and the exits in
flight (``risk.orders.ClosingOrders``); this module does not look inside them. A missing file is
a first start. A document that cannot be read or parsed, or that has another version, raises
``StateFileError``: the gate then starts HALTED, because the lost state might have held a halt
(never silently ACTIVE after losing one), and moves the document aside (``quarantine``) for a
post-mortem before it writes its own. A store that cannot write raises ``OSError``.

No channels; the gate calls it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

from app.atomic_file import replace_atomically

__all__ = [
    "STATE_VERSION",
    "FileStateDocuments",
    "SavedState",
    "StateDocuments",
    "StateFileError",
    "decode_state",
    "encode_state",
    "quarantine",
]

STATE_VERSION = 1
_PARTS = ("trading_state", "guards", "book")


class StateFileError(Exception):
    """The state file exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class SavedState:
    trading_state: dict[str, Any]
    guards: dict[str, Any]
    book: dict[str, Any]
    closing: list[dict[str, Any]] = field(default_factory=list)
    saved_ms: int = 0


def encode_state(state: SavedState) -> bytes:
    document = {
        "version": STATE_VERSION,
        "saved_ms": state.saved_ms,
        "trading_state": state.trading_state,
        "guards": state.guards,
        "book": state.book,
        "closing": state.closing,
    }
    # msgspec, not json.dumps: this runs on the event loop every few seconds while trading,
    # and the book keeps ten thousand trade ids. json took ~15 ms here (a stall an order
    # would wait behind); msgspec takes ~1 ms for the same sorted, indented document.
    return msgspec.json.format(msgspec.json.encode(document, order="sorted"), indent=1)


def decode_state(data: bytes) -> SavedState:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateFileError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise StateFileError(f"expected an object, found {type(document).__name__}")
    version = document.get("version")
    if version != STATE_VERSION:
        raise StateFileError(f"version {version!r}, expected {STATE_VERSION}")
    parts: dict[str, dict[str, Any]] = {}
    for name in _PARTS:
        part = document.get(name)
        if not isinstance(part, dict):
            raise StateFileError(f"{name!r} missing or not an object")
        parts[name] = part
    saved_ms = document.get("saved_ms", 0)
    if not isinstance(saved_ms, int):
        raise StateFileError("'saved_ms' is not an integer")
    closing = document.get("closing", [])
    if not isinstance(closing, list) or not all(isinstance(row, dict) for row in closing):
        raise StateFileError("'closing' is not a list of objects")
    return SavedState(
        trading_state=parts["trading_state"],
        guards=parts["guards"],
        book=parts["book"],
        closing=closing,
        saved_ms=saved_ms,
    )


def quarantine(path: Path, now_ms: int) -> Path | None:
    """Move an unusable state file aside (``<name>.corrupt-<ms>``); None when that fails."""
    target = path.with_name(f"{path.name}.corrupt-{now_ms}")
    try:
        path.rename(target)
    except OSError:
        return None
    return target


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, data)


class StateDocuments(Protocol):
    """Where the encoded state lives (the gate does not care)."""

    @property
    def location(self) -> str:
        """Where, for logs and alerts (never a secret: no password reaches it)."""
        ...

    async def read(self) -> bytes | None:
        """The stored document, None on a first start; StateFileError when unreadable."""
        ...

    async def write(self, data: bytes) -> None:
        """Store durably; OSError when that fails."""
        ...

    def write_now(self, data: bytes) -> None:
        """Store synchronously: the last write on the way out, which no cancellation may tear."""
        ...

    async def quarantine(self, now_ms: int) -> str | None:
        """Move an unusable document aside; where it went, None when that failed."""
        ...


class FileStateDocuments:
    """The state in one file (what the gate uses when nothing else is given: tests, tools)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def location(self) -> str:
        return str(self.path)

    async def read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"{type(exc).__name__}: {exc}") from exc

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(_write, self.path, data)

    def write_now(self, data: bytes) -> None:
        _write(self.path, data)

    async def quarantine(self, now_ms: int) -> str | None:
        moved = quarantine(self.path, now_ms)
        return None if moved is None else str(moved)
