"""Tests of `tradebus db upgrade` and `tradebus db current`.

Most run the real command in-process (`app.cli.main`, captured stdout/stderr) from `tmp_path`
with every `TRADEBUS_*` variable removed, against a real SQLite file named by `--set
database.url=…` or a config file; one runs the installed console script as a subprocess.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from app.log_setup import reset_logging
from database.models import metadata

HEAD = "0002"

RunTradebus = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


Tradebus = Callable[..., Outcome]


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no config/tradebus.toml or .env here
    for name in list(os.environ):
        if name.upper().startswith("TRADEBUS_"):
            monkeypatch.delenv(name)
    yield
    reset_logging()  # the command configured logging for this process


@pytest.fixture
def tradebus(capsys: pytest.CaptureFixture[str]) -> Tradebus:
    def run(*args: str) -> Outcome:
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(int(code), captured.out, captured.err)

    return run


def url_option(path: Path) -> list[str]:
    return ["--set", f"database.url=sqlite:///{path}"]


def tables_in(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    finally:
        connection.close()


def test_upgrade_creates_the_tables_and_prints_the_revision(
    tmp_path: Path, tradebus: Tradebus
) -> None:
    path = tmp_path / "data" / "tb.db"

    result = tradebus("db", "upgrade", *url_option(path))

    assert result.code == 0, result.stderr
    assert (
        result.stdout == f"sqlite:///{path}: upgraded from none (no schema yet) to {HEAD} (head)\n"
    )
    assert set(metadata.tables) | {"alembic_version"} <= tables_in(path)
    assert "schema_upgraded" in result.stderr  # the log, on stderr

    again = tradebus("db", "upgrade", *url_option(path))
    assert again.code == 0, again.stderr
    assert again.stdout == f"sqlite:///{path}: already at {HEAD} (head)\n"


def test_current_prints_the_revision(tmp_path: Path, tradebus: Tradebus) -> None:
    path = tmp_path / "tb.db"
    config = tmp_path / "tb.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{path}"\n', encoding="utf-8")

    empty = tradebus("db", "current", "--config", str(config))
    assert empty.code == 1
    assert empty.stdout == f"none (no schema yet) (this tradebus's head is {HEAD})\n"

    assert tradebus("db", "upgrade", "--config", str(config)).code == 0
    current = tradebus("db", "current", "--config", str(config))
    assert current.code == 0, current.stderr
    assert current.stdout == f"{HEAD} (head)\n"


def test_a_database_from_a_newer_tradebus_is_refused(tmp_path: Path, tradebus: Tradebus) -> None:
    path = tmp_path / "tb.db"
    assert tradebus("db", "upgrade", *url_option(path)).code == 0
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_future'")
    connection.close()

    upgrade = tradebus("db", "upgrade", *url_option(path))
    assert upgrade.code == 1
    assert upgrade.stdout == ""
    assert "tradebus: db upgrade: database" in upgrade.stderr
    assert "0099_future" in upgrade.stderr
    assert "newer tradebus" in upgrade.stderr

    current = tradebus("db", "current", *url_option(path))
    assert current.code == 1
    assert current.stdout == f"0099_future (this tradebus's head is {HEAD})\n"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # The folder of the file cannot be created: its parent is a regular file.
        ("sqlite:///{tmp}/a_file/tb.db", "a_file"),
        # Nothing listens on port 1.
        ("postgresql://nobody@127.0.0.1:1/tradebus", "127.0.0.1"),
    ],
)
@pytest.mark.parametrize("action", ["upgrade", "current"])
def test_an_unusable_database_is_a_clear_error_without_traceback(
    tmp_path: Path, tradebus: Tradebus, url: str, reason: str, action: str
) -> None:
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")

    result = tradebus("db", action, "--set", f"database.url={url.format(tmp=tmp_path)}")

    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("tradebus: db: cannot use the database ")
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unsupported_url_is_a_config_error(tradebus: Tradebus) -> None:
    result = tradebus("db", "upgrade", "--set", "database.url=mysql://host/db")
    assert result.code == 2
    assert "database.url: unsupported database 'mysql'" in result.stderr


def test_the_console_script(tmp_path: Path, run_tradebus: RunTradebus) -> None:
    path = tmp_path / "tb.db"
    upgraded = run_tradebus("db", "upgrade", *url_option(path))
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"to {HEAD} (head)" in upgraded.stdout

    current = run_tradebus("db", "current", *url_option(path))
    assert (current.returncode, current.stdout) == (0, f"{HEAD} (head)\n")

    bad = run_tradebus("db", "current", "--set", f"database.url=sqlite:///{path}/inside/x.db")
    assert bad.returncode == 1
    assert "tradebus: db: cannot use the database" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_daemon_refuses_a_newer_database_as_a_config_error(
    tmp_path: Path, tradebus: Tradebus
) -> None:
    """Exit 2 (a person must act: upgrade tradebus), not 3 (a component that crashed)."""
    path = tmp_path / "tb.db"
    assert tradebus("db", "upgrade", *url_option(path)).code == 0
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_future'")
    connection.close()

    run = tradebus(
        "run",
        *url_option(path),
        "--set", "sim.port=0",
        "--set", "sim.state_file=",
        "--set", f"health.heartbeat_path={tmp_path / 'hb.json'}",
        "--set", "logging.file=",
        "--set", f"runtime.control_socket={tmp_path / 'c.sock'}",
    )  # fmt: skip

    assert run.code == 2, run.stdout + run.stderr
    assert "0099_future" in run.stdout + run.stderr
