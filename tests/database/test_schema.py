"""The migrations against the models, and the start-up schema check, on SQLite and PostgreSQL.

Every test gets a fresh empty database from ``db_settings`` (tests/database/conftest.py) and
runs the real alembic upgrade. The SQLite pragma test reads a real file back with a plain
``sqlite3`` connection, which applies no pragmas of its own.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from config.database import DatabaseSettings
from database.engine import make_engine, sqlite_path
from database.models import metadata
from database.schema import (
    SchemaError,
    SchemaUpgrade,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)

HEAD = "0002"
MODEL_TABLES = set(metadata.tables)


@pytest.fixture
def engine(db_settings: DatabaseSettings) -> Any:
    engine = make_engine(db_settings)
    yield engine
    engine.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def stamp(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


# --- the migrations produce exactly the models ------------------------------------------------


def test_head_is_the_initial_revision() -> None:
    assert head_revision() == HEAD


def test_upgrade_creates_exactly_the_models_schema(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert tables(engine) == set()

    result = upgrade(engine)

    assert result == SchemaUpgrade(before=None, after=HEAD)
    assert current_revision(engine) == HEAD
    assert tables(engine) == MODEL_TABLES | {"alembic_version"}
    assert schema_diff(engine) == []


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    """The empty diff above means something: a changed column is reported."""
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_fills_ts_ms"))
        connection.execute(text("ALTER TABLE alerts ADD COLUMN extra INTEGER"))
    kinds = {entry[0] for entry in schema_diff(engine)}
    assert kinds == {"add_index", "remove_column"}


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    with capture_logs() as logs:
        again = upgrade(engine)
    assert again == SchemaUpgrade(before=HEAD, after=HEAD)
    assert not again.changed
    assert [entry["event"] for entry in logs if entry["log_level"] == "info"] == ["schema_checked"]
    assert schema_diff(engine) == []


def test_downgrade_to_base_leaves_no_tables_and_upgrades_again(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (started_ms, exit_reason, version, mode, "
                "instance_name) VALUES (1, '', '0.1', 'paper', 't')"
            )
        )

    assert downgrade(engine) is None

    assert current_revision(engine) is None
    assert tables(engine) - {"alembic_version"} == set()
    assert upgrade(engine).changed
    assert schema_diff(engine) == []


def test_a_failed_upgrade_leaves_the_database_as_it_was(engine: Engine) -> None:
    """One transaction: an index name already taken makes the last steps fail, and the
    tables created before them are rolled back too (SQLite included)."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE squatter (x INTEGER)"))
        connection.execute(text("CREATE INDEX ix_alerts_ts_ms ON squatter (x)"))

    with pytest.raises(Exception, match="ix_alerts_ts_ms"):
        upgrade(engine)

    assert tables(engine) == {"squatter"}
    assert current_revision(engine) is None


def test_concurrent_upgrades_apply_the_migrations_once(db_settings: DatabaseSettings) -> None:
    engines = [make_engine(db_settings) for _ in range(2)]
    start = threading.Barrier(2)

    def run(engine: Engine) -> SchemaUpgrade:
        start.wait()  # both read the revision at the same moment, as two starting daemons
        return upgrade(engine)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = [future.result() for future in [pool.submit(run, e) for e in engines]]
        assert sorted(result.changed for result in results) == [False, True]
        assert schema_diff(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()


_UPGRADER = """
import sys
from config.database import DatabaseSettings
from database.engine import make_engine
from database.schema import upgrade

engine = make_engine(DatabaseSettings(url=sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()  # the go signal, sent to every process at once
print("changed" if upgrade(engine).changed else "unchanged", flush=True)
"""


def test_two_processes_upgrading_at_once_apply_the_migrations_once(
    db_settings: DatabaseSettings,
) -> None:
    """The database's own lock (not only the in-process one) serialises the upgrades."""
    # Create the SQLite file (in WAL mode) first: two connections switching a brand-new file
    # to WAL at once can fail with "database is locked" (engine.py's pragma, not the upgrade).
    engine = make_engine(db_settings)
    engine.connect().close()
    engine.dispose()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _UPGRADER, db_settings.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [process.returncode for process in processes] == [0, 0], outcomes
    # The last line: structlog, unconfigured in the child, prints its events to stdout too.
    assert sorted(out.splitlines()[-1] for out, _ in outcomes) == ["changed", "unchanged"]
    engine = make_engine(db_settings)
    try:
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


# --- SQLite settings --------------------------------------------------------------------------


@pytest.mark.parametrize(("synchronous", "level"), [("normal", 1), ("full", 2)])
def test_sqlite_file_is_wal_with_configured_timeout_and_sync(
    tmp_path: Path, synchronous: str, level: int
) -> None:
    settings = DatabaseSettings(
        url=f"sqlite:///{tmp_path / 'sub' / 'tb.db'}",
        busy_timeout_ms=1234,
        synchronous=synchronous,  # type: ignore[arg-type]
    )
    engine = make_engine(settings)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 1234
            assert pragma("PRAGMA synchronous").scalar() == level
            assert pragma("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    path = sqlite_path(engine.url)
    assert path is not None
    assert path.is_file()
    # WAL is a property of the file itself: a connection that sets nothing sees it too.
    plain = sqlite3.connect(path)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        names = {row[0] for row in plain.execute("SELECT name FROM sqlite_master")}
        assert names >= MODEL_TABLES
    finally:
        plain.close()


# --- ensure_schema: what the daemon does at start ---------------------------------------------


def test_ensure_schema_upgrades_an_empty_database(
    db_settings: DatabaseSettings, engine: Engine
) -> None:
    with capture_logs() as logs:
        assert ensure_schema(db_settings, engine) == HEAD

    assert tables(engine) == MODEL_TABLES | {"alembic_version"}
    upgraded = [entry for entry in logs if entry["event"] == "schema_upgraded"]
    assert len(upgraded) == 1
    assert upgraded[0]["from_revision"] is None
    assert upgraded[0]["to_revision"] == HEAD
    assert upgraded[0]["url"] == engine.url.render_as_string(hide_password=True)


def test_ensure_schema_at_head_changes_nothing(
    db_settings: DatabaseSettings, engine: Engine
) -> None:
    upgrade(engine)
    settings = db_settings.model_copy(update={"auto_upgrade": False})
    with capture_logs() as logs:
        assert ensure_schema(settings, engine) == HEAD
    assert [entry["event"] for entry in logs] == ["schema_checked"]
    assert logs[0]["revision"] == HEAD


def test_ensure_schema_without_auto_upgrade_refuses_an_older_database(
    db_settings: DatabaseSettings, engine: Engine
) -> None:
    settings = db_settings.model_copy(update={"auto_upgrade": False})

    with pytest.raises(SchemaError) as caught:
        ensure_schema(settings, engine)

    message = str(caught.value)
    assert "revision none" in message
    assert f"needs {HEAD}" in message
    assert "`tradebus db upgrade`" in message
    assert "database.auto_upgrade" in message
    assert tables(engine) == set()  # refused, not half-done


@pytest.mark.parametrize("auto_upgrade", [True, False])
def test_ensure_schema_refuses_a_database_from_a_newer_tradebus(
    db_settings: DatabaseSettings, engine: Engine, auto_upgrade: bool
) -> None:
    upgrade(engine)
    stamp(engine, "0099_from_the_future")
    settings = db_settings.model_copy(update={"auto_upgrade": auto_upgrade})

    with pytest.raises(SchemaError) as caught:
        ensure_schema(settings, engine)

    message = str(caught.value)
    assert "0099_from_the_future" in message
    assert f"newest is {HEAD}" in message
    assert "newer tradebus" in message
    assert current_revision(engine) == "0099_from_the_future"
    with pytest.raises(SchemaError, match="0099_from_the_future"):
        upgrade(engine)  # `tradebus db upgrade` refuses it too
    assert current_revision(engine) == "0099_from_the_future"


def test_ensure_schema_refuses_tables_without_a_revision(
    db_settings: DatabaseSettings, engine: Engine
) -> None:
    metadata.create_all(engine)  # as if made by hand, not by migrations

    with pytest.raises(SchemaError, match=r"tradebus tables \(alerts, balances, .*no schema"):
        ensure_schema(db_settings, engine)
    assert current_revision(engine) is None


def test_the_password_never_reaches_the_logs(postgresql_settings: DatabaseSettings) -> None:
    # The test server trusts local connections, so it never asks for this password.
    secret = "pw-that-must-not-leak-42"
    settings = postgresql_settings.model_copy(update={"password": SecretStr(secret)})
    engine = make_engine(settings)
    try:
        assert engine.url.password == secret  # the engine does carry it
        with capture_logs() as logs:
            ensure_schema(settings, engine)
            ensure_schema(settings, engine)
    finally:
        engine.dispose()
    assert logs
    assert secret not in repr(logs)
    assert all("***" in entry["url"] for entry in logs)


def test_a_database_at_the_first_release_upgrades_keeping_its_rows(engine: Engine) -> None:
    """0001 -> 0002 adds state_documents and leaves what 0001 held alone."""
    upgrade(engine)
    assert downgrade(engine, "0001") == "0001"
    assert "state_documents" not in tables(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (started_ms, exit_reason, version, mode, "
                "instance_name) VALUES (7, '', '0.1', 'live', 'kept')"
            )
        )

    assert upgrade(engine) == SchemaUpgrade(before="0001", after=HEAD)
    assert schema_diff(engine) == []
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT instance_name FROM runs")).scalars().all()
    assert kept == ["kept"]
