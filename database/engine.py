"""The SQLAlchemy engine for the configured database, with the settings a trading daemon needs.

SQLite: WAL journal (readers never block the recorder, and a killed process loses nothing
committed), ``busy_timeout`` (a second connection waits for a lock instead of failing at once),
``synchronous`` from config (NORMAL survives ``kill -9``; FULL also a power cut) and foreign
keys on. The file's folder is created. PostgreSQL: a small pool with pre-ping, so a restarted
server costs a reconnect, not an error.

Engines are synchronous: the recorder and the start-up queries run them in a worker thread,
never on the event loop. The URL holds no password (config refuses one); the password comes from
``database.password`` and is added here, where nothing prints it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

from config.database import DatabaseSettings

__all__ = ["make_engine", "sqlite_path"]

_WAL_ATTEMPTS = 10
_WAL_RETRY_S = 0.05


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def make_engine(settings: DatabaseSettings) -> Engine:
    url = make_url(settings.url)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if settings.password is not None:
            url = url.set(password=settings.password.get_secret_value())
        return create_engine(url, pool_size=4, max_overflow=2, pool_pre_ping=True)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})
    _apply_sqlite_pragmas(engine, settings)
    return engine


def _apply_sqlite_pragmas(engine: Engine, settings: DatabaseSettings) -> None:
    synchronous = settings.synchronous.upper()
    busy_timeout_ms = settings.busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            _switch_to_wal(cursor)
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """Switching a brand-new file to WAL ignores busy_timeout: two processes opening it at once
    can get "database is locked". Once the file is WAL (it stays so) nothing is switched."""
    for attempt in range(_WAL_ATTEMPTS):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(_WAL_RETRY_S * (attempt + 1))  # a connect in a worker thread, never the loop
