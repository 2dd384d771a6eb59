"""Saved component state in the database, so a restart reads it from the same place as the
orders and positions it must agree with (and from PostgreSQL on a new machine).

- ``DatabaseStateDocuments``: one named document in ``state_documents``. The risk gate keeps its
  trading state, guards and book there (``risk.state_store.StateDocuments``).
- ``DatabaseSnapshotStore``: the strategy workers' per-instance, per-symbol snapshots in
  ``strategy_snapshots`` (``strategies.snapshots.SnapshotStore``).

Both satisfy their protocols structurally: ``database`` never imports ``risk`` or ``strategies``.
Reads and writes run in a thread, never on the event loop. A write that fails raises
``StorageError``, an ``OSError``, because that is what both callers already treat as "could not
store" (a full disk for a file, a database error here).

Upgrading from a version that kept them in files: while the database holds nothing yet, the old
file (``risk.state_file``, ``strategies.snapshot_file``) is read once; after the first write to
the database the state file is renamed ``<name>.imported`` so it is never read again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.domain import Clock
from database.models import StateDocumentRow, StrategySnapshotRow

__all__ = ["DatabaseSnapshotStore", "DatabaseStateDocuments", "StorageError"]

log = structlog.get_logger("database.documents")

_DOCUMENTS = StateDocumentRow.__table__  # type: ignore[attr-defined]
_SNAPSHOTS = StrategySnapshotRow.__table__  # type: ignore[attr-defined]

LegacySnapshots = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]


class StorageError(OSError):
    """The database did not take the write (the cause is chained)."""


class DatabaseStateDocuments:
    def __init__(
        self, engine: Engine, name: str, clock: Clock, *, legacy_file: Path | None = None
    ) -> None:
        self.engine = engine
        self.name = name
        self.clock = clock
        self.legacy_file = legacy_file
        self._imported_from: Path | None = None

    @property
    def location(self) -> str:
        return f"database table state_documents, name {self.name!r}"

    async def read(self) -> bytes | None:
        try:
            stored = await asyncio.to_thread(self._select)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read {self.location}: {exc}") from exc
        if stored is not None:
            return stored.encode()
        return await asyncio.to_thread(self._read_legacy)

    def _select(self) -> str | None:
        with self.engine.connect() as connection:
            found = connection.execute(
                select(_DOCUMENTS.c.document).where(_DOCUMENTS.c.name == self.name)
            ).scalar_one_or_none()
        return None if found is None else str(found)

    def _read_legacy(self) -> bytes | None:
        path = self.legacy_file
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            # ValueError: what the gate takes for "unusable" (a lost halt: it starts HALTED).
            self._imported_from = path
            raise ValueError(f"{path}: {type(exc).__name__}: {exc}") from exc
        self._imported_from = path
        log.warning("state_imported_from_file", name=self.name, path=str(path))
        return data

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self.write_now, data)

    def write_now(self, data: bytes) -> None:
        document = data.decode()
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(_DOCUMENTS).where(_DOCUMENTS.c.name == self.name))
                connection.execute(
                    insert(_DOCUMENTS).values(
                        name=self.name, document=document, saved_ms=self.clock.now_ms()
                    )
                )
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot write {self.location}: {exc}") from exc
        self._retire_legacy_file()

    def _retire_legacy_file(self) -> None:
        path, self._imported_from = self._imported_from, None
        if path is None:
            return
        try:
            path.rename(path.with_name(f"{path.name}.imported"))
        except OSError as exc:
            log.warning("state_file_not_retired", path=str(path), error=str(exc))

    async def quarantine(self, now_ms: int) -> str | None:
        return await asyncio.to_thread(self._quarantine, now_ms)

    def _quarantine(self, now_ms: int) -> str | None:
        aside = f"{self.name}.corrupt-{now_ms}"
        path = self._imported_from
        if path is not None:
            self._imported_from = None
            target = path.with_name(f"{path.name}.corrupt-{now_ms}")
            try:
                path.rename(target)
            except OSError:
                return None
            return str(target)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    update(_DOCUMENTS).where(_DOCUMENTS.c.name == self.name).values(name=aside)
                )
        except SQLAlchemyError as exc:
            log.error("state_document_not_quarantined", name=self.name, error=str(exc))
            return None
        return f"state_documents name {aside!r}"


class DatabaseSnapshotStore:
    """All instances' snapshots, read once (on the first load) and written on each flush."""

    def __init__(
        self, engine: Engine, clock: Clock, *, legacy: LegacySnapshots | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.legacy = legacy
        self.writes = 0
        self.load_error: str | None = None
        self._saved: dict[tuple[str, str], str] | None = None
        self._saved_instances: set[str] = set()
        self._current: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def load(self, instance: str, symbol: str) -> Mapping[str, Any] | None:
        async with self._lock:
            if self._saved is None:
                try:
                    self._saved = await asyncio.to_thread(self._select_all)
                except SQLAlchemyError as exc:
                    raise StorageError(f"cannot read strategy_snapshots: {exc}") from exc
                self._saved_instances = {name for name, _ in self._saved}
        if instance not in self._saved_instances:
            return None if self.legacy is None else await self.legacy(instance, symbol)
        text = self._saved.get((instance, symbol))
        if text is None:
            return None
        try:
            found = json.loads(text)
        except ValueError as exc:
            self.load_error = f"{instance}/{symbol}: {exc}"
            log.warning("strategy_snapshot_unreadable", instance=instance, symbol=symbol)
            return None
        return found if isinstance(found, dict) else None

    def _select_all(self) -> dict[tuple[str, str], str]:
        columns = (_SNAPSHOTS.c.strategy, _SNAPSHOTS.c.symbol, _SNAPSHOTS.c.document)
        with self.engine.connect() as connection:
            rows = connection.execute(select(*columns)).all()
        return {(str(row[0]), str(row[1])): str(row[2]) for row in rows}

    def put(self, instance: str, symbol: str, snapshot: dict[str, Any]) -> None:
        self._current[(instance, symbol)] = snapshot

    async def flush(self) -> None:
        async with self._lock:
            if not self._current:
                return
            # Serialised here, on the loop, so the state cannot change while the thread writes.
            rows = [
                {
                    "strategy": instance,
                    "symbol": symbol,
                    "document": json.dumps(snapshot, separators=(",", ":"), allow_nan=False),
                    "updated_ms": self.clock.now_ms(),
                }
                for (instance, symbol), snapshot in self._current.items()
            ]
            taken, self._current = self._current, {}
            try:
                await asyncio.to_thread(self._replace, rows)
            except SQLAlchemyError as exc:
                for key, snapshot in taken.items():  # kept for the next flush, unless newer
                    self._current.setdefault(key, snapshot)
                raise StorageError(f"cannot write strategy_snapshots: {exc}") from exc
            self.writes += 1

    def _replace(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            for row in rows:
                connection.execute(
                    delete(_SNAPSHOTS).where(
                        _SNAPSHOTS.c.strategy == row["strategy"],
                        _SNAPSHOTS.c.symbol == row["symbol"],
                    )
                )
            connection.execute(insert(_SNAPSHOTS), rows)
