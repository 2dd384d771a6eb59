"""``tradebus db upgrade | current``: the database's schema revision, from the command line.

``upgrade`` applies the pending migrations to the configured database (``database.url``), as
the daemon does at start when ``database.auto_upgrade`` is on; ``current`` prints its revision
and this tradebus's. Exit codes (``app.runtime.ExitCode``): 0 done (``current``: and the
database is at head), 1 the database cannot be opened, is behind (``current``), or is newer
than this tradebus, 2 a config or usage error. Results go to stdout, logs and errors to stderr.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TextIO

from app.runtime import ExitCode
from config import Settings

__all__ = ["add_db_commands", "run_db_command"]

_HELP = {
    "upgrade": "apply the pending migrations to the configured database (back it up first)",
    "current": "print the database's schema revision; exit 0 when it is this tradebus's head",
}


def add_db_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    config_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add ``db {upgrade,current}``, each taking the usual config options."""
    db = commands.add_parser("db", help="database schema tools")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for action, text in _HELP.items():
        config_options(actions.add_parser(action, help=text, description=f"{text}."))


def run_db_command(
    args: argparse.Namespace, settings: Settings, *, stdout: TextIO, stderr: TextIO
) -> int:
    # The database stack is imported here, so other commands do not pay for it.
    from sqlalchemy.exc import SQLAlchemyError

    from app.log_setup import configure_logging
    from database.engine import make_engine
    from database.schema import SchemaError, current_revision, head_revision, upgrade

    logging_settings = settings.logging
    configure_logging(
        level=logging_settings.level,
        fmt=logging_settings.format,
        file=logging_settings.file,
        file_max_bytes=logging_settings.file_max_bytes,
        file_backups=logging_settings.file_backups,
        stream=stderr,  # stdout carries the result alone
        static_context={"instance": settings.instance_name, "mode": "db"},
    )
    # alembic logs "Context impl SQLiteImpl." and the like at INFO on every check; our own
    # schema_* events say what happened.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        engine = make_engine(settings.database)
    except (OSError, SQLAlchemyError) as exc:
        return _failed(settings.database.url, exc, stderr)
    url = engine.url.render_as_string(hide_password=True)
    try:
        head = head_revision()
        if args.db_command == "upgrade":
            result = upgrade(engine)
            if result.changed:
                print(f"{url}: upgraded from {_name(result.before)} to {head} (head)", file=stdout)
            else:
                print(f"{url}: already at {head} (head)", file=stdout)
            return ExitCode.OK
        current = current_revision(engine)
        if current == head:
            print(f"{current} (head)", file=stdout)
            return ExitCode.OK
        print(f"{_name(current)} (this tradebus's head is {head})", file=stdout)
        return 1
    except SchemaError as exc:
        print(f"tradebus: db {args.db_command}: {exc}", file=stderr)
        return 1
    except (OSError, SQLAlchemyError) as exc:
        return _failed(url, exc, stderr)
    finally:
        engine.dispose()


def _name(revision: str | None) -> str:
    return revision if revision is not None else "none (no schema yet)"


def _failed(url: str, exc: Exception, stderr: TextIO) -> int:
    # The driver's own message (e.g. "connection refused", "unable to open database file"),
    # without SQLAlchemy's statement dump and link; never a traceback.
    reason = getattr(exc, "orig", None) or exc
    print(f"tradebus: db: cannot use the database {url}: {reason}", file=stderr)
    return 1
