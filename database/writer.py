"""The recorder's writer: one dedicated thread owning one database connection, so the event
loop never waits on the database.

The loop side only appends to a deque and, when the thread must act at once, sets an event.
The thread writes batches, each in ONE transaction: up to ``batch_max_rows`` items, or whatever
waited ``flush_interval_s``. Write-ahead intents and ``flush()`` barriers jump the wait: they are
committed at once, with whatever batch is ready. Results go back to the loop with
``call_soon_threadsafe`` only; the thread never blocks on the loop while stopping, so the
recorder may join it synchronously at shutdown.

Committed intents. Given ``intents_committed``, the thread keeps the client ids of the intents
each transaction committed, and only after the commit: the recorder takes them on the loop
(`take_committed_intents`) to forget them from its intent journal. Ids of intents that failed,
were rejected or lost are never handed back: those stay journaled.

Failures. A batch failing for a database reason (unreachable, locked, read-only, table
missing, permission) is retried with the same rows, with backoff doubling from
``retry_initial_s`` (capped at ``max_backoff_s``) slept on the recorder's Clock. At the
``write_attempts``-th failure the recorder is told (it alerts and halts trading); it keeps
retrying slowly and tells the recorder again when a batch commits. While failing, intents are
refused at once (the order must not be sent) rather than queued. A batch failing for a data
reason (a constraint, a bad value: retrying cannot help) is written item by item and the items
that fail are logged, counted and dropped, so one bad message cannot stop the recorder.

On stop the thread writes everything queued without waiting; what it still cannot write after
``write_attempts`` immediate attempts is counted as lost and logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
    StatementError,
)

from app.domain import SubmitOrder
from app.errors import TradebusError
from config.database import DatabaseSettings
from database.upserts import BatchWriter, Kind

__all__ = ["IntentNotRecorded", "Writer", "WriterNotice"]

log = structlog.get_logger("database.writer")

Item = tuple[Kind, Any]
_LATENCY_SAMPLES = 1_000


class IntentNotRecorded(TradebusError):
    """The order's intent is not durably recorded: the order must not be sent."""


@dataclass(frozen=True, slots=True)
class WriterNotice:
    """Sent to the loop when writes start failing for good (after the last attempt) or
    recover after that."""

    failing: bool
    attempts: int
    detail: str


def describe(exc: BaseException) -> str:
    """The driver's message without SQL text or parameters (short, and nothing private)."""
    origin = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(origin).strip().splitlines()[0] if str(origin).strip() else ""
    return f"{type(origin).__name__}: {text}"[:300]


def _data_problem(exc: BaseException) -> bool:
    """True when the rows are at fault (retrying the same rows cannot succeed)."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True  # a value our column types refuse (NaN, a float for a Decimal)
    return not isinstance(exc, SQLAlchemyError)


class Writer:
    def __init__(
        self,
        *,
        engine: Engine,
        settings: DatabaseSettings,
        loop: asyncio.AbstractEventLoop,
        sleep: Callable[[float], Awaitable[None]],
        notify: Callable[[WriterNotice], None],
        space_freed: Callable[[], None],
        max_backoff_s: float = 30.0,
        intents_committed: Callable[[], None] | None = None,
    ) -> None:
        """`intents_committed`: called on the loop after a transaction committed intents
        (their ids wait in `take_committed_intents`); without it no ids are kept."""
        self._engine = engine
        self._settings = settings
        self._loop = loop
        self._sleep = sleep
        self._notify = notify
        self._space_freed = space_freed
        self._intents_committed = intents_committed
        # Appended by the thread after each commit, taken by the loop (deque appends and
        # pops are atomic): the hand-off needs no lock and never makes the thread wait.
        self._committed_intents: deque[str] = deque()
        self._max_backoff_s = max(max_backoff_s, settings.retry_initial_s)
        self._batch = BatchWriter(engine.dialect)
        self._queue: deque[Item] = deque()
        self._intents: deque[tuple[SubmitOrder, asyncio.Future[None]]] = deque()
        self._barriers: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._wake = threading.Event()
        self._interrupt = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name="recorder-writer", daemon=True)
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._connection: Connection | None = None
        self._in_hand: list[Item] = []
        self._deadline: float | None = None  # when the queued rows are due (flush interval)
        self._alerted = False
        self.enqueued = 0  # regular items ever queued (loop side)
        self.committed_items = 0  # regular items committed, in queue order (writer side)
        self.space_wanted = False
        # Figures for the heartbeat (written by the thread, read by the loop).
        self.rows_written = 0
        self.batches = 0
        self.failures = 0
        self.failing = False
        self.last_error = ""
        self.rejected = 0
        self.lost = 0
        self.intents_recorded = 0
        self.write_ms: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self.max_write_ms = 0.0

    # -- loop side -------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._queue) + len(self._in_hand) + len(self._intents)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping.is_set()

    async def start(self) -> None:
        """Start the thread and wait until it holds its connection (raises if it cannot)."""
        self._thread.start()
        await asyncio.wrap_future(self._started)

    def put(self, kind: Kind, payload: Any) -> None:
        queue = self._queue
        if not queue or len(queue) + 1 >= self._settings.batch_max_rows:
            self._wake.set()  # an empty queue starts the flush timer; a full batch goes now
        queue.append((kind, payload))
        self.enqueued += 1

    def put_intent(self, order: SubmitOrder, done: asyncio.Future[None]) -> None:
        self._intents.append((order, done))
        self._wake.set()

    def put_barrier(self, done: asyncio.Future[None]) -> None:
        """`done` resolves once every item queued so far is committed."""
        self._barriers.append((self.enqueued, done))
        self._wake.set()

    def take_committed_intents(self) -> list[str]:
        """Client ids of the intents committed since the last call, oldest first (loop side;
        after `join`, every intent the thread committed)."""
        committed, taken = self._committed_intents, list[str]()
        while committed:
            taken.append(committed.popleft())
        return taken

    @property
    def committed_intents_waiting(self) -> int:
        return len(self._committed_intents)

    def stop(self) -> None:
        self._stopping.set()
        self._interrupt.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to finish its last writes; False if it did not in time."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- thread side -----------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._connection = self._engine.connect()
        except Exception as exc:  # noqa: BLE001 - reported to start(); nothing else to do
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            while self._wait_ready():
                self._write_ready()
        except Exception:
            log.exception("recorder_writer_crashed")
            raise
        finally:
            self._shut_down()

    def _wait_ready(self) -> bool:
        """Block until there is something to write now; False once stopping with nothing left."""
        while True:
            self._wake.clear()
            if self._stopping.is_set():
                return bool(self._queue or self._intents or self._barriers)
            if self._intents or self._batch_due():
                return True
            if not self._queue:
                self._wake.wait()
                continue
            assert self._deadline is not None  # set by _batch_due for a non-empty queue
            self._wake.wait(max(0.0, self._deadline - time.monotonic()))

    def _batch_due(self) -> bool:
        """The queue must be written now: a flush barrier, stopping, a full batch, or its
        oldest row waited `flush_interval_s` (timed from when the queue stopped being empty,
        so intents committed in between never postpone it)."""
        if not self._queue:
            self._deadline = None
            return bool(self._barriers)
        if self._barriers or self._stopping.is_set():
            return True
        if len(self._queue) >= self._settings.batch_max_rows:
            return True
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self._settings.flush_interval_s
        return now >= self._deadline

    def _take(self, limit: int) -> list[Item]:
        queue, items = self._queue, list[Item]()
        while queue and len(items) < limit:
            items.append(queue.popleft())
        return items

    def _write_ready(self) -> None:
        """One cycle: the intents waiting, alone in a short transaction (an order is waiting on
        them: a bar close's candles must not sit in front of it), then the batch if it is due."""
        intents = list(self._intents)
        for _ in intents:
            self._intents.popleft()
        if intents:
            self._write([], intents, batch=False)
            if not self._batch_due():
                return
        self._deadline = None
        self._in_hand = self._take(self._settings.batch_max_rows)
        self._write(self._in_hand, [], batch=True)
        self._in_hand = []
        if self.space_wanted:
            # Again, now that `depth` no longer counts the batch: a handler woken by the commit
            # may have seen it still in hand and gone back to waiting for room.
            self._to_loop(self._space_freed)

    def _write(
        self, items: list[Item], intents: list[tuple[SubmitOrder, Any]], *, batch: bool
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self._commit(items, intents, batch=batch)
            except Exception as exc:  # noqa: BLE001 - classified just below
                if _data_problem(exc):
                    self._isolate(exc, items, intents, batch=batch)
                    return
                self._failed(exc, attempt, intents)
                intents = []
                if self._stopping.is_set() and attempt >= self._settings.write_attempts:
                    self._lose(items)
                    return
                if not items:
                    return  # only intents, all refused: nothing left to retry
                self._backoff(attempt)
                self._refuse_intents()
                continue
            return

    def _commit(
        self, items: list[Item], intents: list[tuple[SubmitOrder, Any]], *, batch: bool = True
    ) -> None:
        started = time.perf_counter()
        rows = 0
        try:
            connection = self._connection
            if connection is None or connection.closed or connection.invalidated:
                connection = self._connection = self._engine.connect()
            with connection.begin():
                if intents:
                    rows += self._batch.apply(connection, [(Kind.INTENT, o) for o, _ in intents])
                if items:
                    rows += self._batch.apply(connection, items)
        except BaseException:
            self._batch.forget()
            self._drop_connection()
            raise
        self._batch.committed()
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self.rows_written += rows
        self.batches += 1
        self.write_ms.append(elapsed_ms)
        self.max_write_ms = max(self.max_write_ms, elapsed_ms)
        self.intents_recorded += len(intents)
        self.committed_items += len(items)
        # Before any barrier or intent is resolved below: whoever waited on one finds these ids.
        self._hand_back_intents(items, intents)
        if self.failing:
            self.failing = False
            log.warning("recorder_writes_recovered", failures=self.failures)
            if self._alerted:
                self._alerted = False
                self._to_loop(self._notify, WriterNotice(False, 0, "writes recovered"))
        for _, done in intents:
            self._to_loop(_resolve, done, None)
        if batch:
            self._release_barriers()
        if self.space_wanted:
            self._to_loop(self._space_freed)

    def _hand_back_intents(self, items: list[Item], intents: list[tuple[SubmitOrder, Any]]) -> None:
        """Called only once their transaction committed: the journal may forget them now."""
        if self._intents_committed is None:
            return
        ids = [order.client_order_id for order, _ in intents]
        ids.extend(payload.client_order_id for kind, payload in items if kind is Kind.INTENT)
        if ids:
            self._committed_intents.extend(ids)
            self._to_loop(self._intents_committed)

    def _failed(self, exc: BaseException, attempt: int, intents: list[Any]) -> None:
        detail = describe(exc)
        self.failures += 1
        self.failing = True
        self.last_error = detail
        log.error(
            "recorder_write_failed",
            attempt=attempt,
            of=self._settings.write_attempts,
            rows=len(self._in_hand) + len(intents),
            error=detail,
        )
        for _, done in intents:
            self._to_loop(_resolve, done, IntentNotRecorded(f"database write failed: {detail}"))
        if attempt == self._settings.write_attempts and not self._alerted:
            self._alerted = True
            self._to_loop(self._notify, WriterNotice(True, attempt, detail))

    def _refuse_intents(self) -> None:
        """Intents queued while the database fails: refused, not left waiting for it."""
        while self._intents:
            _, done = self._intents.popleft()
            error = IntentNotRecorded(f"database writes failing: {self.last_error}")
            self._to_loop(_resolve, done, error)

    def _isolate(
        self,
        exc: BaseException,
        items: list[Item],
        intents: list[tuple[SubmitOrder, Any]],
        *,
        batch: bool,
    ) -> None:
        """A data error: write item by item, dropping (and logging) the ones that fail."""
        log.warning("recorder_batch_rejected_isolating", error=describe(exc))
        for order, done in intents:
            try:
                self._commit([], [(order, done)], batch=False)
            except Exception as item_exc:  # noqa: BLE001 - one bad intent is refused
                self._to_loop(_resolve, done, IntentNotRecorded(describe(item_exc)))
        for index, item in enumerate(items):
            try:
                self._commit([item], [], batch=False)
            except Exception as item_exc:  # noqa: BLE001 - one bad item is dropped, logged
                if not _data_problem(item_exc):
                    # The database itself failed meanwhile: the rest goes back, in order, to
                    # the retry path of the next cycle.
                    self._queue.extendleft(reversed(items[index:]))
                    break
                self.rejected += 1
                self.committed_items += 1  # gone for good: barriers must not wait for it
                log.error("recorder_item_rejected", kind=item[0].name, error=describe(item_exc))
        if batch:
            self._release_barriers()

    def _backoff(self, attempt: int) -> None:
        """Sleep on the recorder's Clock (tests drive it), or until stop is requested."""
        if self._stopping.is_set():
            return
        delay = min(self._settings.retry_initial_s * 2 ** (attempt - 1), self._max_backoff_s)
        self._interrupt.clear()
        try:
            sleeping = asyncio.run_coroutine_threadsafe(_sleep(self._sleep, delay), self._loop)
        except RuntimeError:  # the loop is gone: nothing left to record for
            return
        sleeping.add_done_callback(lambda _: self._interrupt.set())
        self._interrupt.wait()
        sleeping.cancel()

    def _lose(self, items: list[Item]) -> None:
        self.lost += len(items)
        self.committed_items += len(items)
        log.error("recorder_rows_lost", rows=len(items), error=self.last_error)

    def _release_barriers(self) -> None:
        barriers = self._barriers
        while barriers and barriers[0][0] <= self.committed_items:
            _, done = barriers.popleft()
            self._to_loop(_resolve, done, None)

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:  # noqa: BLE001 - a dead connection may fail to close
                log.debug("recorder_connection_close_failed", error=describe(exc))

    def _shut_down(self) -> None:
        left = len(self._queue)
        if left:
            self._lose(self._take(left))
        error = IntentNotRecorded("recorder stopped")
        while self._intents:
            self._to_loop(_resolve, self._intents.popleft()[1], error)
        while self._barriers:
            self._to_loop(_resolve, self._barriers.popleft()[1], error)
        self._drop_connection()

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)


async def _sleep(sleep: Callable[[float], Awaitable[None]], delay: float) -> None:
    await sleep(delay)


def _resolve(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return  # the caller gave up waiting (timeout, cancellation)
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
