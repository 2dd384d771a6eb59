"""Database fixtures: every test that takes ``db_settings`` runs on a fresh SQLite file and,
when ``TRADEBUS_TEST_POSTGRES_DSN`` names a reachable server, on a fresh PostgreSQL schema.

PostgreSQL isolation is one schema per test (``search_path`` set through the connection's
``options``), dropped afterwards, so tests never see each other's rows and need no database
of their own. Unset or unreachable DSN: the PostgreSQL half skips, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from config.database import DatabaseSettings

POSTGRES_DSN_VARIABLE = "TRADEBUS_TEST_POSTGRES_DSN"


def postgres_dsn() -> str | None:
    """The test server's DSN, or None (with the reason in `postgres_unavailable`)."""
    return os.environ.get(POSTGRES_DSN_VARIABLE) or None


def _reachable(dsn: str) -> str | None:
    """None when the server answers, else why not."""
    url = make_url(dsn).set(drivername="postgresql+psycopg")
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sqlalchemy.exc.OperationalError as exc:
        return f"PostgreSQL at {make_url(dsn).render_as_string()} unreachable: {exc.orig}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    dsn = postgres_dsn()
    if dsn is None:
        pytest.skip(f"{POSTGRES_DSN_VARIABLE} is not set")
    problem = _reachable(dsn)
    if problem is not None:
        pytest.skip(problem)
    return dsn


@pytest.fixture
def postgresql_settings(postgres_base_url: str) -> Iterator[DatabaseSettings]:
    schema = f"tb_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(
        make_url(postgres_base_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(postgres_base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield DatabaseSettings(url=url.render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> DatabaseSettings:
    return DatabaseSettings(url=f"sqlite:///{tmp_path / 'tradebus.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request: pytest.FixtureRequest) -> DatabaseSettings:
    """A fresh, empty database of each kind (no tables: the test applies the schema)."""
    settings: DatabaseSettings = request.getfixturevalue(f"{request.param}_settings")
    return settings
