"""Saved state in the database: the risk gate's trading state, guards and book
(``DatabaseStateDocuments``) and the strategy workers' snapshots (``DatabaseSnapshotStore``),
on SQLite and PostgreSQL, with the one-time import from the files older versions wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.domain import AlertSeverity, ControlAction, ManualClock, TradingState
from config.database import DatabaseSettings
from database.documents import DatabaseSnapshotStore, DatabaseStateDocuments, StorageError
from tests.database.test_mapping import create_schema
from tests.risk.gate_support import START_MS, make_gate

NAME = "risk_gate"


@pytest.fixture
def engine(db_settings: DatabaseSettings) -> Iterator[Engine]:
    engine = create_schema(db_settings)
    yield engine
    engine.dispose()


def _documents(engine: Engine, legacy: Path | None = None) -> DatabaseStateDocuments:
    return DatabaseStateDocuments(engine, NAME, ManualClock(START_MS), legacy_file=legacy)


def _rows(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        found = connection.execute(text("SELECT name, document FROM state_documents")).all()
    return {str(name): str(document) for name, document in found}


# -- the risk gate's state ------------------------------------------------------------------------
async def test_a_halt_and_a_position_survive_a_restart_in_the_database(
    tmp_path: Path, engine: Engine
) -> None:
    first = await make_gate(tmp_path, documents=_documents(engine))
    await first.open_position("BTCUSDT", size="0.01", price="60000")
    await first.control(ControlAction.HALT, "maintenance")
    await first.gate.persist()

    assert not (tmp_path / "risk_state.json").exists()  # nothing went to the file
    again = await make_gate(tmp_path, documents=_documents(engine))
    assert (again.gate.state.state, again.gate.state.reason) == (
        TradingState.HALTED,
        "operator: maintenance",
    )
    assert again.gate.book.position("alpha", "BTCUSDT") == Decimal("0.01")
    assert again.states[0].state is TradingState.HALTED
    assert json.loads(_rows(engine)[NAME])["trading_state"]["state"] == "halted"


async def test_a_corrupt_document_halts_and_is_kept_aside(tmp_path: Path, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO state_documents (name, document, saved_ms) VALUES (:n, :d, 1)"),
            {"n": NAME, "d": '{"version": 99}'},
        )
    h = await make_gate(tmp_path, documents=_documents(engine))

    assert h.gate.state.state is TradingState.HALTED
    assert h.gate.state.reason.startswith("state file unreadable: version 99")
    assert any(a.severity is AlertSeverity.CRITICAL for a in h.alerts)
    rows = _rows(engine)
    assert rows[f"{NAME}.corrupt-{START_MS}"] == '{"version": 99}'
    # The halt itself was written at once: the next start is halted without an alert.
    again = await make_gate(tmp_path, documents=_documents(engine))
    assert again.gate.state.state is TradingState.HALTED
    assert again.alerts == []


async def test_the_state_file_of_an_older_version_is_imported_once(
    tmp_path: Path, engine: Engine
) -> None:
    legacy = tmp_path / "old" / "risk_state.json"
    older = await make_gate(tmp_path / "old")  # a file-backed gate: what versions before wrote
    await older.control(ControlAction.HALT, "kept from the file")
    await older.gate.persist()
    assert legacy.exists()

    imported = await make_gate(tmp_path, documents=_documents(engine, legacy))
    assert imported.gate.state.reason == "operator: kept from the file"
    await imported.gate.persist()
    assert not legacy.exists()
    assert legacy.with_name("risk_state.json.imported").exists()
    await imported.control(ControlAction.RESUME)
    await imported.gate.persist()

    # From now on the database is the truth, even if a stale file reappears.
    legacy.write_bytes(legacy.with_name("risk_state.json.imported").read_bytes())
    again = await make_gate(tmp_path, documents=_documents(engine, legacy))
    assert again.gate.state.state is TradingState.ACTIVE


async def test_an_unreadable_old_state_file_halts_and_is_kept_aside(
    tmp_path: Path, engine: Engine
) -> None:
    legacy = tmp_path / "risk_state.json"
    legacy.write_bytes(b"{torn")
    h = await make_gate(tmp_path, documents=_documents(engine, legacy))

    assert h.gate.state.state is TradingState.HALTED
    assert h.gate.state.reason.startswith("state file unreadable: not JSON")
    assert (tmp_path / f"risk_state.json.corrupt-{START_MS}").read_bytes() == b"{torn"
    assert json.loads(_rows(engine)[NAME])["trading_state"]["state"] == "halted"


async def test_a_database_that_refuses_the_write_is_alerted(tmp_path: Path, engine: Engine) -> None:
    h = await make_gate(tmp_path, documents=_documents(engine))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE state_documents"))

    with pytest.raises(StorageError):
        await h.gate.documents.write(b"{}")
    await h.gate.persist()
    await h.settle()
    assert [a.title for a in h.alerts if a.severity is AlertSeverity.CRITICAL] == [
        "risk state not saved"
    ]


# -- strategy snapshots ---------------------------------------------------------------------------
def _store(engine: Engine, legacy: Any = None) -> DatabaseSnapshotStore:
    return DatabaseSnapshotStore(engine, ManualClock(START_MS), legacy=legacy)


async def test_snapshots_round_trip_per_instance_and_symbol(engine: Engine) -> None:
    store = _store(engine)
    assert await store.load("fast", "BTCUSDT") is None
    store.put("fast", "BTCUSDT", {"sma": "60000.10", "bars": 3})
    store.put("fast", "__trade__", {"positions": []})
    store.put("slow", "BTCUSDT", {"sma": "59000"})
    await store.flush()
    store.put("fast", "BTCUSDT", {"sma": "60001", "bars": 4})  # a later save replaces
    await store.flush()

    again = _store(engine)
    assert await again.load("fast", "BTCUSDT") == {"sma": "60001", "bars": 4}
    assert await again.load("fast", "__trade__") == {"positions": []}
    assert await again.load("slow", "BTCUSDT") == {"sma": "59000"}
    assert await again.load("slow", "ETHUSDT") is None


async def test_an_instance_without_snapshots_is_imported_from_the_old_file(
    engine: Engine,
) -> None:
    asked: list[tuple[str, str]] = []

    async def legacy(instance: str, symbol: str) -> Mapping[str, Any] | None:
        asked.append((instance, symbol))
        return {"from": "file"}

    first = _store(engine)
    first.put("known", "BTCUSDT", {"from": "database"})
    await first.flush()

    store = _store(engine, legacy)
    assert await store.load("known", "BTCUSDT") == {"from": "database"}
    assert await store.load("known", "ETHUSDT") is None  # the database knows this instance
    assert await store.load("new", "BTCUSDT") == {"from": "file"}
    assert asked == [("new", "BTCUSDT")]


async def test_a_failed_flush_keeps_the_snapshots_for_the_next(engine: Engine) -> None:
    store = _store(engine)
    store.put("fast", "BTCUSDT", {"bars": 1})
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE strategy_snapshots RENAME TO parked"))
    with pytest.raises(StorageError):
        await store.flush()
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE parked RENAME TO strategy_snapshots"))
    await store.flush()

    assert await _store(engine).load("fast", "BTCUSDT") == {"bars": 1}
