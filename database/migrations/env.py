"""Alembic's environment: where a migration run gets its connection and the models it targets.

Two ways in:

* ``database.schema`` (daemon start, ``tradebus db upgrade``, tests) hands over an open
  connection in ``config.attributes["connection"]``, already inside the transaction (and lock)
  that makes the whole upgrade atomic; migrations run on it and nothing here commits.
* A developer's ``alembic -c database/alembic.ini revision --autogenerate -m "…" --rev-id 0002``:
  no connection is given, so the database is the one tradebus's own configuration names
  (config file, ``TRADEBUS_DATABASE__URL``), opened by ``make_engine``. ``--sql`` (offline)
  renders the SQL for that URL's dialect.

Autogenerate renders our column types readably: ``ExactDecimal`` as
``database.types.ExactDecimal()`` and SQLModel's ``AutoString(n)`` as ``sa.String(length=n)``
(the same VARCHAR on every backend), so migrations do not depend on SQLModel internals.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import String
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from database.models import metadata
from database.types import ExactDecimal


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Autogenerate's rendering of our types; False means "alembic's default"."""
    if kind != "type":
        return False
    if isinstance(obj, ExactDecimal):
        autogen_context.imports.add("import database.types")
        return "database.types.ExactDecimal()"
    if type(obj) in (AutoString, String):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def configure_options(connection: Connection | None) -> dict[str, Any]:
    """What every run shares (``database.schema`` passes the same to ``compare_metadata``)."""
    sqlite = connection is not None and connection.dialect.name == "sqlite"
    return {
        "target_metadata": metadata,
        "compare_type": True,
        "render_item": render_item,
        # SQLite cannot ALTER most things: future migrations copy-and-swap tables instead.
        "render_as_batch": sqlite,
        # database.schema opens the transaction (BEGIN IMMEDIATE on SQLite), so DDL is
        # transactional on both backends: a failed upgrade leaves the previous schema.
        "transactional_ddl": True,
    }


def _run_on(connection: Connection) -> None:
    context.configure(connection=connection, **configure_options(connection))
    with context.begin_transaction():
        context.run_migrations()


def _run_from_settings() -> None:
    from config import load_settings
    from database.engine import make_engine

    settings = load_settings().database
    if context.is_offline_mode():
        context.configure(url=settings.url, literal_binds=True, **configure_options(None))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(settings)
    try:
        with engine.begin() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


_given = context.config.attributes.get("connection")
if isinstance(_given, Connection):
    _run_on(_given)
else:
    _run_from_settings()
