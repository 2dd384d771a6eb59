"""The database schema's revision: apply tradebus's alembic migrations, and check at start that
the database and this code agree before anything else touches it.

The migrations ship inside the package (``database/migrations``) and alembic is configured
here in code, so neither the daemon nor ``tradebus db`` needs an ``alembic.ini``
(``database/alembic.ini`` exists only for developers writing a new migration).

What ``ensure_schema`` does with the database it finds::

    database revision           auto_upgrade = true      auto_upgrade = false
    the head of this code       use it                   use it
    older, or an empty database upgrade, then use it     refuse: `tradebus db upgrade`
    unknown (a newer tradebus)  refuse                   refuse
    our tables but no revision  refuse                   refuse

An upgrade runs in one transaction that holds the database's write lock (``BEGIN IMMEDIATE``
on SQLite, an advisory lock on PostgreSQL): two processes starting together apply it once,
and a failed or killed upgrade leaves the schema it started from. Within one process a lock
also keeps migrations from overlapping (alembic's ``context`` and ``op`` are globals).

Synchronous, like every database call: the daemon runs it in a worker thread. Logs name the
database by its URL rendered with the password hidden (the configured URL has none anyway).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from config.database import DatabaseSettings
from database.models import metadata

__all__ = [
    "MIGRATIONS_DIR",
    "SchemaError",
    "SchemaUpgrade",
    "alembic_config",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "upgrade",
]

log = structlog.get_logger("database.schema")

MIGRATIONS_DIR: Final = Path(__file__).resolve().with_name("migrations")
# "tradebus" in ASCII: the PostgreSQL advisory lock every schema change takes.
_PG_LOCK_KEY: Final = 0x7472_6164_6562_7573
# alembic keeps the running migration in module globals (``alembic.context``, ``alembic.op``),
# so two migrations in one process must not overlap, whatever databases they target.
_PROCESS_LOCK: Final = threading.Lock()


class SchemaError(Exception):
    """The database's schema cannot be used by this tradebus, and was left unchanged."""


@dataclass(frozen=True, slots=True)
class SchemaUpgrade:
    """The revision before (None: no schema yet) and after an upgrade."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config() -> Config:
    """Alembic's configuration for the shipped migrations (no ini file)."""
    config = Config()
    # Config interpolates "%": a path containing one must not be read as a reference.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this code knows (the schema of ``database.models``)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for a database no migration has touched."""
    with engine.connect() as connection:
        return _revision_of(connection)


def upgrade(engine: Engine) -> SchemaUpgrade:
    """Apply every pending migration, atomically; raise ``SchemaError`` (changing nothing)
    when the database is newer than this code or holds our tables without a revision."""
    url = _display_url(engine)
    head = head_revision()
    with _locked_transaction(engine) as connection:
        # Read under the lock: another process may have upgraded while we waited for it.
        before = _revision_of(connection)
        _refuse_unusable(connection, before, head, url)
        if before != head:
            _run(connection, "upgrade", "head")
        after = _revision_of(connection)
    if after != head:  # a migration that forgot to move the version: a bug, not a state
        raise SchemaError(f"database {url}: upgrade ended at {after!r}, expected {head!r}")
    result = SchemaUpgrade(before=before, after=after)
    if result.changed:
        log.info("schema_upgraded", url=url, from_revision=before, to_revision=after)
    else:
        log.info("schema_checked", url=url, revision=after, head=head)
    return result


def downgrade(engine: Engine, revision: str = "base") -> str | None:
    """Undo migrations down to ``revision`` ("base": drop every table); return where it ended.
    For tests and a human repairing a database, never the daemon."""
    url = _display_url(engine)
    with _locked_transaction(engine) as connection:
        before = _revision_of(connection)
        _run(connection, "downgrade", revision)
        after = _revision_of(connection)
    log.info("schema_downgraded", url=url, from_revision=before, to_revision=after)
    return after


def ensure_schema(settings: DatabaseSettings, engine: Engine) -> str:
    """Make sure the database has this code's schema before the daemon uses it (see the table
    in the module docstring); return the revision. Raises ``SchemaError`` when it must not
    start, with the revisions and what to do in the message."""
    url = _display_url(engine)
    head = head_revision()
    with engine.connect() as connection:
        current = _revision_of(connection)
        if current == head:
            log.info("schema_checked", url=url, revision=current, head=head)
            return head
        _refuse_unusable(connection, current, head, url)
    if not settings.auto_upgrade:
        found = current if current is not None else "none (an empty database)"
        raise SchemaError(
            f"database {url} is at schema revision {found}, this tradebus needs {head}, and "
            "database.auto_upgrade is off: back the database up, then run `tradebus db upgrade` "
            "(or set database.auto_upgrade = true)"
        )
    log.info("schema_upgrading", url=url, from_revision=current, to_revision=head)
    return upgrade(engine).after


# --- internals ---------------------------------------------------------------------------------


def _display_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _refuse_unusable(connection: Connection, current: str | None, head: str, url: str) -> None:
    if current is None:
        ours = sorted(set(inspect(connection).get_table_names()) & set(metadata.tables))
        if ours:
            raise SchemaError(
                f"database {url} has tradebus tables ({', '.join(ours)}) but no schema "
                "revision: migrations did not create it, so tradebus cannot tell which schema "
                "it has. Move it aside and let tradebus create a new one"
            )
        return
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    if current not in known:
        raise SchemaError(
            f"database {url} is at schema revision {current}, which this tradebus does not "
            f"know (its newest is {head}): a newer tradebus wrote it. Run that version, or "
            "point database.url at another database"
        )


@contextmanager
def _locked_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the write lock, committed when the block ends cleanly."""
    with _PROCESS_LOCK, engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite does not begin a transaction before DDL (each CREATE would commit on
            # its own); an explicit BEGIN IMMEDIATE makes the upgrade one transaction and
            # takes the write lock now, waiting up to busy_timeout for another writer.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        yield connection


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection  # env.py runs the migrations on it
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)
