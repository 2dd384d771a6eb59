"""The intent journal: a local SQLite file written on the loop before an order leaves, and read
back at start-up for intents the main database never got."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from app.domain import OrderStatus, OrderType, Side, SubmitOrder
from config.database import DatabaseSettings
from database.intent_journal import IntentJournal, journal_path
from database.queries import load_recovery
from database.recorder import IntentNotRecorded
from tests.database.test_recorder import (
    _recorder,
    _settings,
    engine,  # noqa: F401 - the fixture
    intent,
    rows,
    running,
)


def order(cid: str, ts: int = 7) -> SubmitOrder:
    return SubmitOrder(
        cid, "s1", "ETHUSDT", Side.SELL, OrderType.LIMIT, Decimal("0.0123"), ts,
        price=Decimal("3000.01"), signal_id=f"sig-{cid}",
    )  # fmt: skip


def test_a_recorded_intent_is_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    journal = IntentJournal(tmp_path / "j.db")
    journal.record(order("a"))
    journal.record(order("a"))  # the same intent twice: one row
    journal.record(order("b", ts=9))
    # A second reader (the next daemon after a kill -9) sees both without any close.
    reader = IntentJournal(tmp_path / "j.db")
    entries = reader.entries()
    assert [(e.client_order_id, e.status, e.ts_ms) for e in entries] == [
        ("a", OrderStatus.PENDING_NEW, 7),
        ("b", OrderStatus.PENDING_NEW, 9),
    ]
    first = entries[0]
    assert (first.quantity, first.price, first.side, first.signal_id, first.strategy) == (
        Decimal("0.0123"), Decimal("3000.01"), Side.SELL, "sig-a", "s1",
    )  # fmt: skip
    assert reader.forget(["a", "zz"]) == 1
    assert [e.client_order_id for e in journal.entries()] == ["b"]
    journal.close()
    reader.close()


def test_the_journal_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    sqlite = DatabaseSettings(url=f"sqlite:///{tmp_path / 'x.db'}")
    assert journal_path(sqlite) == tmp_path / "x-intents.db"
    postgres = DatabaseSettings(url="postgresql://u@h/db")
    assert journal_path(postgres) == Path("status/tradebus-intents.db")


async def test_record_intent_writes_the_journal_before_returning(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    journal = IntentJournal(tmp_path / "intents.db")
    recorder = _recorder(engine, _settings(db_settings))
    recorder._journal = journal  # what the wiring passes as `journal=`
    async with running(recorder):
        await recorder.record_intent(intent("w"))
        with sqlite3.connect(tmp_path / "intents.db") as reader:
            assert reader.execute("SELECT client_order_id FROM intents").fetchall() == [("w",)]
        await recorder.flush()  # the main database gets the same row with its batch
        [row] = rows(engine, "orders")
        assert (row["client_order_id"], row["status"]) == ("w", "pending_new")
        assert recorder.status()["intents_journaled"] == 1


async def test_a_failing_journal_refuses_the_intent(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    journal = IntentJournal(tmp_path / "intents.db")
    recorder = _recorder(engine, _settings(db_settings))
    recorder._journal = journal
    async with running(recorder):
        assert journal._connection is not None
        journal._connection.close()  # the file's connection is gone: nothing can be recorded
        with pytest.raises(IntentNotRecorded, match="intent journal"):
            await recorder.record_intent(intent("x"))
        await recorder.flush()
        assert rows(engine, "orders") == []  # and nothing was queued for the main database


def test_a_journal_that_cannot_be_created_stops_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(FileExistsError):
        IntentJournal(blocker / "intents.db").open()


def test_recovery_counts_journaled_intents_the_database_lacks(
    engine: Engine,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    journal = IntentJournal(tmp_path / "intents.db")
    journal.record(order("lost", ts=50))
    recovery = load_recovery(engine, journal.entries())
    assert [(o.client_order_id, o.status) for o in recovery.orders] == [
        ("lost", OrderStatus.PENDING_NEW)
    ]
    assert recovery.newest_pending_intent_ms == 50
    assert recovery.journaled_in_database == ()
    journal.close()
