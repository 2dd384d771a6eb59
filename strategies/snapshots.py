"""Saved strategy state, so a restart continues where the last run stopped instead of warming
up from scratch.

`SnapshotStore` is what the workers need. The daemon keeps snapshots in its database
(`database.documents.DatabaseSnapshotStore`); `JsonSnapshotStore` keeps every instance's state
in one JSON file, written atomically (temp file, fsync, rename) off the event loop: the format
versions before the database used, read once by the database store to import it.

A snapshot is only advice: one that cannot be read, was written by other parameters or by an
older state layout is ignored (and reported) and the strategy warms up from history.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import structlog

from app.atomic_file import replace_atomically

__all__ = ["JsonSnapshotStore", "SnapshotStore"]

log = structlog.get_logger("strategies.snapshots")

_FORMAT = 1


class SnapshotStore(Protocol):
    async def load(self, instance: str, symbol: str) -> Mapping[str, Any] | None: ...

    def put(self, instance: str, symbol: str, snapshot: dict[str, Any]) -> None: ...

    async def flush(self) -> None:
        """Store everything put so far; OSError when that fails."""
        ...


class JsonSnapshotStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.writes = 0
        self.load_error: str | None = None
        self._saved: dict[str, dict[str, Any]] | None = None
        self._current: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def load(self, instance: str, symbol: str) -> Mapping[str, Any] | None:
        if self._saved is None:
            self._saved = self._read()
        found = self._saved.get(instance, {}).get(symbol)
        return found if isinstance(found, dict) else None

    def put(self, instance: str, symbol: str, snapshot: dict[str, Any]) -> None:
        self._current.setdefault(instance, {})[symbol] = snapshot

    async def flush(self) -> None:
        """Write everything put so far, merged over what the file held for other instances."""
        async with self._lock:
            merged = {name: dict(symbols) for name, symbols in (self._saved or {}).items()}
            for instance, symbols in self._current.items():
                merged.setdefault(instance, {}).update(symbols)
            document = {"format": _FORMAT, "instances": merged}
            # Serialised here, on the loop, so the state cannot change while the thread writes.
            text = json.dumps(document, separators=(",", ":"), allow_nan=False)
            await asyncio.to_thread(_save, self.path, text.encode())
            self.writes += 1

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.warning("strategy_snapshots_unreadable", path=str(self.path), error=self.load_error)
            return {}
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            self.load_error = "unknown format"
            log.warning(
                "strategy_snapshots_unreadable", path=str(self.path), error="unknown format"
            )
            return {}
        instances = document.get("instances")
        return instances if isinstance(instances, dict) else {}


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, data)
