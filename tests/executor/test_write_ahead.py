"""Write-ahead: no order reaches the simulator before its intent is recorded.

A journal double records intents into a list; it can be made to fail (for chosen client ids)
or to block until an event is set. The simulator's own probe (`gateway.on_order_received`,
called when a placement request arrives, before the engine sees it) checks at that instant
that the intent was already recorded. Time is a ManualClock, so the journal wait the executor
measures is exactly the time the test let pass while the journal blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal

from app.domain import OrderStatus, ReplaceOrder, SubmitOrder
from exchange.sim.faults import FaultKind, FaultRule
from tests.executor.rig import GUARD_S, Rig, SimSession, executor_on, order, sim_session
from tests.sim.harness import START_MS

BASE = 2  # the simulator's listenKey timer and the executor's housekeeping loop


class ListJournal:
    """Records intents in a list; fails for `fail_ids`, blocks while `gate` is not set."""

    def __init__(self) -> None:
        self.recorded: list[SubmitOrder] = []
        self.calls: list[str] = []
        self.fail_ids: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    @property
    def ids(self) -> list[str]:
        return [o.client_order_id for o in self.recorded]

    async def record_intent(self, order: SubmitOrder) -> None:
        self.calls.append(order.client_order_id)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if order.client_order_id in self.fail_ids:
            raise OSError("database is locked")
        self.recorded.append(order)


def _probe(session: SimSession, rig: Rig, journal: ListJournal) -> list[tuple[str, bool]]:
    """(client id, was it recorded already?) for every placement the simulator receives."""
    arrivals: list[tuple[str, bool]] = []
    gateway = session.sim.spot.gateway

    def on_order(params: Mapping[str, str]) -> None:
        cid = params.get("newClientOrderId", "")
        arrivals.append((cid, cid in journal.ids))
        rig.received.append(cid)

    gateway.on_order_received = on_order
    return arrivals


async def _resting_price(session: SimSession) -> Decimal:
    (book,) = await session.client.book_tickers("BTCUSDT")
    price: Decimal = (book.bid_price * Decimal("0.9")).quantize(Decimal(1))
    return price


async def test_no_order_reaches_the_exchange_before_its_intent_is_recorded() -> None:
    journal = ListJournal()
    async with sim_session() as session, executor_on(session, journal=journal) as rig:
        arrivals = _probe(session, rig, journal)
        price = await _resting_price(session)
        await rig.request(order("tb-m1"))
        await rig.request(order("tb-l1", price=price))
        await rig.wait_status("tb-m1", OrderStatus.FILLED)
        await rig.wait_status("tb-l1", OrderStatus.NEW)
        # A spot cancel-replace places a new client id: recorded first as well.
        await rig.request(
            ReplaceOrder("tb-l1", "BTCUSDT", START_MS, price - 10, Decimal("0.01"), "tb-l2")
        )
        await rig.wait_status("tb-l2", OrderStatus.NEW)
        assert arrivals == [("tb-m1", True), ("tb-l1", True), ("tb-l2", True)]
        assert journal.ids == ["tb-m1", "tb-l1", "tb-l2"]
        recorded = journal.recorded[0]
        assert (recorded.strategy, recorded.symbol, recorded.quantity) == (
            "s1",
            "BTCUSDT",
            Decimal("0.01"),
        )
        assert rig.executor.status()["journal"]["recorded"] == 3


async def test_a_retried_intent_is_recorded_once() -> None:
    journal = ListJournal()
    async with sim_session() as session, executor_on(session, journal=journal) as rig:
        arrivals = _probe(session, rig, journal)
        await session.sim.faults.arm(
            FaultRule(FaultKind.RATE_LIMIT_429, market="spot", count=1, retry_after_s=2)
        )
        await rig.request(order("tb-retry"))
        await rig.sleepers(BASE + 1)  # the executor waits out Retry-After
        rig.advance(2.0)
        await rig.wait_status("tb-retry", OrderStatus.FILLED)
        assert arrivals == [("tb-retry", True), ("tb-retry", True)]  # sent twice ...
        assert journal.calls == ["tb-retry"]  # ... recorded once


async def test_an_intent_that_cannot_be_recorded_is_never_sent() -> None:
    journal = ListJournal()
    journal.fail_ids = {"tb-lost"}
    async with sim_session() as session, executor_on(session, journal=journal) as rig:
        arrivals = _probe(session, rig, journal)
        await rig.request(order("tb-lost"))
        rejected = await rig.wait_status("tb-lost", OrderStatus.REJECTED)
        assert rejected.reason.startswith("not recorded:")
        assert "database is locked" in rejected.reason
        assert (rejected.strategy, rejected.signal_id) == ("s1", "sig-tb-lost")
        assert rig.statuses("tb-lost") == [OrderStatus.PENDING_NEW, OrderStatus.REJECTED]
        # Sent afterwards, an order proves the executor went on: tb-lost never arrived.
        await rig.request(order("tb-next"))
        await rig.wait_status("tb-next", OrderStatus.FILLED)
        assert arrivals == [("tb-next", True)]
        assert rig.sim_orders("tb-lost") == []
        status = rig.executor.status()
        assert status["journal"]["failed"] == 1
        assert status["counts"]["intents_not_recorded"] == 1


async def test_a_cancel_replace_whose_new_intent_cannot_be_recorded_sends_nothing() -> None:
    journal = ListJournal()
    journal.fail_ids = {"tb-new"}
    async with sim_session() as session, executor_on(session, journal=journal) as rig:
        arrivals = _probe(session, rig, journal)
        price = await _resting_price(session)
        await rig.request(order("tb-old", price=price))
        await rig.wait_status("tb-old", OrderStatus.NEW)
        await rig.request(
            ReplaceOrder("tb-old", "BTCUSDT", START_MS, price - 10, Decimal("0.01"), "tb-new")
        )
        rejected = await rig.wait_status("tb-new", OrderStatus.REJECTED)
        assert rejected.reason.startswith("not recorded:")
        await rig.wait(lambda: rig.statuses("tb-old")[-1] is OrderStatus.NEW)  # open again
        assert arrivals == [("tb-old", True)]
        assert rig.sim_orders("tb-new") == []
        assert rig.sim_orders("tb-old")[0]["status"] == "NEW"


async def test_a_slow_journal_delays_the_send_and_its_wait_is_measured() -> None:
    journal = ListJournal()
    journal.gate = asyncio.Event()
    async with sim_session() as session, executor_on(session, journal=journal) as rig:
        arrivals = _probe(session, rig, journal)
        await rig.request(order("tb-slow"))
        async with asyncio.timeout(GUARD_S):
            await journal.entered.wait()
        rig.advance(0.25)  # the database takes 250 ms
        await rig.request(order("tb-queued"))  # the executor is not blocked meanwhile ...
        await rig.wait(lambda: rig.statuses("tb-queued") == [OrderStatus.PENDING_NEW])
        assert arrivals == []  # ... but nothing was sent
        assert rig.statuses("tb-slow") == [OrderStatus.PENDING_NEW]
        journal.gate.set()
        await rig.wait_status("tb-slow", OrderStatus.FILLED)
        await rig.wait_status("tb-queued", OrderStatus.FILLED)
        assert sorted(arrivals) == [("tb-queued", True), ("tb-slow", True)]
        waits = rig.executor.status()["journal"]
        assert waits["wait_p99_ms"] == 250.0
        assert waits["wait_p50_ms"] in (0.0, 250.0)
