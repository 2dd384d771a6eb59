"""The intent journal stays small for the whole run: each intent is forgotten from it once the
recorder's writer thread has committed its row to the main database, never before. At any
instant an intent is in the journal or committed in the main database (crash safety)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.bus import Bus
from app.domain import Clock, ManualClock, SubmitOrder, SystemClock
from config.database import DatabaseSettings
from database.intent_journal import IntentJournal
from database.models import metadata
from database.recorder import Recorder
from tests.database.test_recorder import (
    _settings,
    engine,  # noqa: F401 - the fixture
    intent,
    rows,
    running,
)

TIMEOUT_S = 20.0  # a bug fails the test instead of hanging it


class ObservedJournal(IntentJournal):
    """The real journal, telling the test each time it forgot something (so the test waits on
    an event rather than polling)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.changed = asyncio.Event()

    def forget(self, client_order_ids: Iterable[str]) -> int:
        forgotten = super().forget(client_order_ids)
        self.changed.set()
        return forgotten

    async def wait_forgotten(self, count: int) -> None:
        while self.forgotten < count:
            self.changed.clear()
            await self.changed.wait()


def _journaled(path: Path) -> list[str]:
    """What another process (the next daemon after a kill -9) reads from the journal file."""
    with sqlite3.connect(path) as reader:
        found = reader.execute("SELECT client_order_id FROM intents ORDER BY 1").fetchall()
    reader.close()
    return [cid for (cid,) in found]


def _committed(database: Engine) -> set[str]:
    return {r["client_order_id"] for r in rows(database, "orders")}


def _journaling_recorder(
    database: Engine,
    settings: DatabaseSettings,
    journal: IntentJournal,
    clock: Clock | None = None,
) -> Recorder:
    return Recorder(
        bus=Bus(), clock=clock or ManualClock(), engine=database, settings=settings, journal=journal
    )


async def test_flush_leaves_none_of_the_committed_intents_in_the_journal(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "intents.db"
    recorder = _journaling_recorder(engine, _settings(db_settings), IntentJournal(path))
    ids = [f"tb-{n}" for n in range(50)]
    async with asyncio.timeout(TIMEOUT_S):
        await recorder.start()  # and no run() task yet: flush() alone must prune the journal
        for cid in ids:
            await recorder.record_intent(intent(cid))
        # Nothing is due before the 60 s flush interval: all of them are journaled only.
        assert _journaled(path) == sorted(ids)
        assert recorder.status()["journal_rows"] == 50
        await recorder.flush()
        assert _committed(engine) == set(ids)
        assert _journaled(path) == []
        status = recorder.status()
        assert (status["journal_rows"], status["journal_forget_pending"]) == (0, 0)
        assert status["intents_journaled"] == 50
        async with asyncio.TaskGroup() as group:  # stop the recorder the usual way
            run = group.create_task(recorder.run())
            await asyncio.sleep(0)  # one step: run() is under way, so cancelling stops it
            run.cancel()
        assert recorder.status()["running"] is False


async def test_each_committed_batch_is_forgotten_without_a_flush(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "intents.db"
    journal = ObservedJournal(path)
    recorder = _journaling_recorder(engine, _settings(db_settings, batch_max_rows=10), journal)
    ids = [f"tb-{n:02}" for n in range(25)]
    async with asyncio.timeout(TIMEOUT_S), running(recorder):
        for cid in ids:
            await recorder.record_intent(intent(cid))
        # Two full batches of 10 commit on their own; the last 5 wait for the flush interval.
        await journal.wait_forgotten(20)
        assert journal.forgotten == 20
        assert _journaled(path) == ids[20:]
        assert _committed(engine) == set(ids[:20])
        assert recorder.status()["journal_rows"] == 5


async def test_an_intent_is_forgotten_only_after_a_retry_commits_it(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "intents.db"
    clock = ManualClock()
    settings = _settings(db_settings, write_attempts=2, retry_initial_s=1.0)
    recorder = _journaling_recorder(engine, settings, IntentJournal(path), clock)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE orders"))
    async with asyncio.timeout(TIMEOUT_S), running(recorder), asyncio.TaskGroup() as group:
        for cid in ("a", "b", "c"):
            await recorder.record_intent(intent(cid))
        flushed = group.create_task(recorder.flush())
        await clock.wait_for_sleepers()  # attempt 1 failed: backing off
        assert _journaled(path) == ["a", "b", "c"]
        assert recorder.status()["journal_forget_pending"] == 0
        clock.advance(1.0)  # attempt 2 fails too (the last: trading halts)
        await clock.wait_for_sleepers()
        assert _journaled(path) == ["a", "b", "c"]
        metadata.create_all(engine)
        clock.advance(2.0)  # the retry commits
        await flushed
        assert _committed(engine) == {"a", "b", "c"}
        assert _journaled(path) == []


async def test_an_intent_the_database_rejects_stays_journaled(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "intents.db"
    recorder = _journaling_recorder(engine, _settings(db_settings), IntentJournal(path))
    bad: SubmitOrder = dataclasses.replace(intent("bad"), quantity=Decimal("NaN"))
    async with asyncio.timeout(TIMEOUT_S), running(recorder):
        for order in (intent("good-1"), bad, intent("good-2")):
            await recorder.record_intent(order)
        await recorder.flush()  # the batch is refused; written item by item, "bad" dropped
        assert recorder.status()["rejected"] == 1
        assert _committed(engine) == {"good-1", "good-2"}
        assert _journaled(path) == ["bad"]
        assert recorder.status()["journal_rows"] == 1


async def test_intents_lost_at_shutdown_stay_journaled_and_the_rest_are_forgotten(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "intents.db"
    settings = _settings(db_settings, write_attempts=1)
    recorder = _journaling_recorder(engine, settings, IntentJournal(path))
    async with asyncio.timeout(TIMEOUT_S):
        async with running(recorder) as task:
            await recorder.record_intent(intent("early"))
            await recorder.flush()
            assert _committed(engine) == {"early"}
            await recorder.record_intent(intent("queued"))
            task.cancel()  # stop: the last batch is committed, then forgotten
        assert _committed(engine) == {"early", "queued"}
        assert _journaled(path) == []

        again = _journaling_recorder(engine, settings, IntentJournal(path))
        async with running(again) as task:
            await again.record_intent(intent("lost-1"))
            await again.record_intent(intent("lost-2"))
            with engine.begin() as connection:  # the database breaks before the last write
                connection.execute(text("ALTER TABLE orders RENAME TO orders_away"))
            task.cancel()
        assert again.status()["lost"] == 2
    # What the next daemon finds: every intent is in one of the two places.
    assert _journaled(path) == ["lost-1", "lost-2"]


async def test_every_intent_is_journaled_or_committed_at_every_step(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    """The writer thread commits on its own timer while intents keep coming: whenever we look
    (journal first, then the main database), no recorded intent is missing from both."""
    path = tmp_path / "intents.db"
    journal = ObservedJournal(path)
    settings = _settings(db_settings, batch_max_rows=7, flush_interval_s=0.001)
    recorder = _journaling_recorder(engine, settings, journal, SystemClock())
    recorded: list[str] = []
    async with asyncio.timeout(TIMEOUT_S), running(recorder):
        for n in range(150):
            cid = f"tb-{n:03}"
            await recorder.record_intent(intent(cid))
            recorded.append(cid)
            await asyncio.sleep(0)  # one loop step: the recorder may forget a batch here
            # Journal first: an id gone from it was committed before, so the database has it.
            journaled = set(_journaled(path))
            missing = set(recorded) - journaled - _committed(engine)
            assert not missing, f"neither journaled nor committed: {sorted(missing)}"
        await recorder.flush()
        assert _journaled(path) == []
    assert journal.forgotten == 150
