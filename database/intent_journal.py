"""The write-ahead journal of order intents: one small local SQLite file, written on the event
loop in tens of microseconds, so recording an intent before sending its order costs almost
nothing on the tick-to-trade path.

Why a file of its own, beside the main database: an intent must be durable *before* the order
leaves, and the order is waiting. Committing it through the recorder's writer thread meant a
thread hand-off, the GIL and the rest of a bar-close burst in front of the order (~3 ms at
p50, `bench/tick_to_trade.py`). Here the loop commits one row to a file nobody else writes
(WAL, ``synchronous=NORMAL``: it survives ``kill -9`` like the main database; ``full`` in
``database.synchronous`` also a power cut), with no lock to wait for. The recorder still
writes the same PENDING_NEW row into the main database, in its batches.

Start-up recovery reads the journal: an intent the main database does not have (the daemon
died between the two writes) counts as a PENDING_NEW order, reconciled like the others. Rows
the main database has are then forgotten. During a run the recorder forgets each intent once
the main database has committed its row (`Recorder`), so the file holds only the intents
still on their way there.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url

from app.domain import OrderUpdated, SubmitOrder
from config.database import DatabaseSettings
from database.models import OrderRow
from database.order_mapping import intent_values, order_from_row
from database.queries import chunks

__all__ = ["IntentJournal", "journal_path"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS intents ("
    " client_order_id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, row TEXT NOT NULL)"
)
_JOURNAL_NAME = "-intents.db"
_FALLBACK = Path("status") / "tradebus-intents.db"


def journal_path(settings: DatabaseSettings) -> Path:
    """Beside the SQLite database file (``x.db`` → ``x-intents.db``); for PostgreSQL or an
    in-memory SQLite, ``status/tradebus-intents.db``."""
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        main = Path(url.database)
        return main.with_name(main.stem + _JOURNAL_NAME)
    return _FALLBACK


class IntentJournal:
    def __init__(self, path: Path, *, synchronous: str = "normal") -> None:
        self.path = path
        self._synchronous = synchronous.upper()
        self._connection: sqlite3.Connection | None = None
        self.recorded = 0
        self.rows = 0  # intents the file holds now (the heartbeat shows it stays small)
        self.forgotten = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=5000")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute(_SCHEMA)
        (self.rows,) = connection.execute("SELECT COUNT(*) FROM intents").fetchone()
        self._connection = connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def record(self, order: SubmitOrder) -> None:
        """Commit the intent (synchronously: the caller sends the order right after). A second
        record of the same client id changes nothing. Raises ``sqlite3.Error``."""
        row = json.dumps(intent_values(order), default=str, separators=(",", ":"))
        connection = self._open_connection()
        inserted = connection.execute(
            "INSERT OR IGNORE INTO intents VALUES (?, ?, ?)",
            (order.client_order_id, order.ts_ms, row),
        ).rowcount
        self.recorded += 1
        self.rows += inserted

    def entries(self) -> list[OrderUpdated]:
        """Every journaled intent, as the PENDING_NEW order it stands for, oldest first."""
        cursor = self._open_connection().execute(
            "SELECT row FROM intents ORDER BY created_ms, client_order_id"
        )
        return [order_from_row(OrderRow.model_validate(json.loads(text))) for (text,) in cursor]

    def forget(self, client_order_ids: Iterable[str]) -> int:
        """Delete these intents (unknown ids are skipped) in one transaction; returns how
        many were deleted. Raises ``sqlite3.Error`` (then nothing is deleted)."""
        connection = self._open_connection()
        forgotten = 0
        connection.execute("BEGIN")
        try:
            for chunk in chunks(list(client_order_ids)):
                marks = ",".join("?" * len(chunk))
                forgotten += connection.execute(
                    f"DELETE FROM intents WHERE client_order_id IN ({marks})",
                    chunk,
                ).rowcount
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        self.rows -= forgotten
        self.forgotten += forgotten
        return forgotten

    def _open_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            self.open()
        assert self._connection is not None
        return self._connection
