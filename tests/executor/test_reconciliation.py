"""Start-up and periodic reconciliation against the simulator: a restart while orders were
filled, cancelled and placed by hand produces exactly the expected synthetic updates.

One simulator outlives two executors (`sim_session`, `executor_on`). What the first one
published on `order.update` stands in for the database (`_known`: the last update of every
order, the highest trade id per symbol, net positions per strategy and symbol). While no
executor runs, the test changes the account the way the world would: it moves the market
through resting orders (a quote fed to the simulator's matching engine, with its partial-fill
fault armed so an order fills in two trades), cancels one by hand and places two by hand — one
with a foreign id, one with our prefix that the database never knew.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from app.domain import (
    CancelOrder,
    ControlAction,
    MarketType,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
    TimeInForce,
)
from exchange.sim.faults import FaultKind, FaultRule
from exchange.sim.matching import Quote
from executor.reconciliation import (
    NEVER_PLACED,
    KnownState,
    PositionMismatch,
    ReconciliationFailed,
    reconcile,
)
from tests.executor.rig import SimSession, executor_on, order, sim_session
from tests.sim.harness import START_MS

SYMBOL = "BTCUSDT"


class HoldingJournal:
    """Records every intent; for `hold_ids` it then never returns (the process dies after
    the intent row was committed and before the order was sent)."""

    def __init__(self, hold_ids: Iterable[str] = ()) -> None:
        self.hold_ids = set(hold_ids)
        self.recorded: list[str] = []
        self.held = asyncio.Event()

    async def record_intent(self, order: SubmitOrder) -> None:
        self.recorded.append(order.client_order_id)
        if order.client_order_id in self.hold_ids:
            self.held.set()
            await asyncio.Event().wait()


def _known(seen: list[Any], prefix: str = "tb") -> KnownState:
    """What a recorder of `seen` would hand to reconciliation."""
    last: dict[str, OrderUpdated] = {}
    trade_ids: dict[str, int] = {}
    positions: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for update in seen:
        if not isinstance(update, OrderUpdated):
            continue
        last[update.client_order_id] = update
        if update.fill is not None:
            fill = update.fill
            trade_ids[fill.symbol] = max(trade_ids.get(fill.symbol, 0), fill.trade_id)
            positions[(update.strategy, update.symbol)] += fill.position_change
    booked: dict[str, Decimal] = defaultdict(Decimal)
    for update in seen:
        if isinstance(update, OrderUpdated) and update.fill is not None:
            booked[update.client_order_id] += update.fill.quantity
    return KnownState(
        # Not final, or final with fills missing (a futures answer carries none).
        orders=tuple(
            u
            for u in last.values()
            if not u.status.is_final or u.filled_quantity > booked[u.client_order_id]
        ),
        last_trade_ids=trade_ids,
        positions=dict(positions),
        client_id_prefix=prefix,
    )


def _limit(cid: str, price: Decimal, qty: str, strategy: str = "") -> SubmitOrder:
    return SubmitOrder(
        cid, strategy, SYMBOL, Side.BUY, OrderType.LIMIT, Decimal(qty), START_MS,
        price=price, time_in_force=TimeInForce.GTC,
    )  # fmt: skip


def _move_market(session: SimSession, price: Decimal) -> None:
    """The market trades at `price` (below resting buys above it: they fill)."""
    quote = Quote(
        SYMBOL, session.clock.now_ms(), price - 1, price, Decimal(10), Decimal(10), price,
        Decimal(10),
    )  # fmt: skip
    engine = session.sim.spot.engine
    engine.on_quote(quote, session.clock.now_ms())
    engine.drain_events()  # no user-data stream listens


def _sim_trades(session: SimSession, cid: str) -> list[dict[str, Any]]:
    snapshot = session.sim.spot.engine.snapshot()
    (record,) = [o for o in snapshot["orders"] if o["client_order_id"] == cid]
    trades = [t for t in snapshot["trades"] if t["order_id"] == record["order_id"]]
    return sorted(trades, key=lambda t: t["trade_id"])


def _row(update: OrderUpdated) -> tuple[Any, ...]:
    fill = update.fill.trade_id if update.fill is not None else None
    return (
        update.client_order_id,
        update.status,
        update.filled_quantity,
        fill,
        update.strategy,
        update.signal_id,
        update.purpose,
        update.reason,
    )


def _state_row(cid: str, status: OrderStatus, filled: Decimal, reason: str = "") -> tuple[Any, ...]:
    return (cid, status, filled, None, "s1", f"sig-{cid}", OrderPurpose.ENTRY, reason)


def _fill_rows(
    cid: str, trades: list[dict[str, Any]], last: OrderStatus, before: Decimal = Decimal(0)
) -> list[tuple[Any, ...]]:
    rows, total = [], before
    for index, trade in enumerate(trades):
        total += Decimal(trade["qty"])
        status = last if index == len(trades) - 1 else OrderStatus.PARTIALLY_FILLED
        rows.append(
            (cid, status, total, trade["trade_id"], "s1", f"sig-{cid}", OrderPurpose.ENTRY, "")
        )
    return rows  # fmt: skip


async def test_a_restart_produces_exactly_the_exchanges_truth() -> None:
    journal = HoldingJournal(hold_ids={"tb-e"})
    async with sim_session() as session:
        (book,) = await session.client.book_tickers(SYMBOL)
        bid = book.bid_price
        p_b, p_c, p_d = ((bid * Decimal(f)).quantize(Decimal(1)) for f in ("0.95", "0.93", "0.9"))
        async with executor_on(session, journal=journal) as first:
            await first.request(order("tb-a"))
            await first.wait_status("tb-a", OrderStatus.FILLED)
            # tb-f's answer is lost (5xx after the engine accepted it): UNKNOWN at the crash.
            await session.sim.faults.arm(
                FaultRule(FaultKind.ORDER_ERROR_5XX, market="spot", count=1)
            )
            await first.request(order("tb-f"))
            await first.wait_status("tb-f", OrderStatus.UNKNOWN)
            for cid, price in (("tb-b", p_b), ("tb-c", p_c), ("tb-d", p_d)):
                await first.request(order(cid, price=price, qty="0.02"))
                await first.wait_status(cid, OrderStatus.NEW)
            # Half of tb-b fills while running; the periodic pass books it (no stream here).
            await session.sim.faults.arm(
                FaultRule(FaultKind.PARTIAL_FILLS, fraction=Decimal("0.5"))
            )
            _move_market(session, p_b - 1)
            periodic = await first.executor.reconcile_once(symbols=[SYMBOL], client_id_prefix="tb")
            b_first = _sim_trades(session, "tb-b")[0]["trade_id"]
            assert [_row(e)[:4] for e in periodic.events] == [
                ("tb-b", OrderStatus.PARTIALLY_FILLED, Decimal("0.01"), b_first)
            ]
            await first.wait(lambda: len(first.updates("tb-b")) == 3)
            await first.request(order("tb-e"))  # recorded, then the process dies
            async with asyncio.timeout(5):
                await journal.held.wait()
            await first.wait_status("tb-e", OrderStatus.PENDING_NEW)
            known = _known(first.seen)
        # -- down: the world moves on --------------------------------------------------------
        _move_market(session, p_c - 1)  # the rest of tb-b and half of tb-c fill
        await session.client.cancel_order(SYMBOL, "tb-c")
        session.sim.faults.clear(FaultKind.PARTIAL_FILLS)
        await session.client.place_order(_limit("manual-1", p_d, "0.01"))
        await session.client.place_order(_limit("tb-zz9", p_d, "0.01"))
        assert "tb-e" not in {
            o["client_order_id"] for o in session.sim.spot.engine.snapshot()["orders"]
        }
        # -- restart -------------------------------------------------------------------------
        assert sorted(o.client_order_id for o in known.orders) == [
            "tb-b", "tb-c", "tb-d", "tb-e", "tb-f"
        ]  # fmt: skip
        async with executor_on(session) as second:
            report = await reconcile(session.port, known, [SYMBOL], session.clock)
            c_trades = _sim_trades(session, "tb-c")
            expected = [
                *_fill_rows(
                    "tb-b", _sim_trades(session, "tb-b")[1:], OrderStatus.FILLED, Decimal("0.01")
                ),
                *_fill_rows("tb-c", c_trades, OrderStatus.PARTIALLY_FILLED),
                _state_row("tb-c", OrderStatus.CANCELED, Decimal("0.01")),
                _state_row("tb-e", OrderStatus.REJECTED, Decimal(0), NEVER_PLACED),
                *_fill_rows("tb-f", _sim_trades(session, "tb-f"), OrderStatus.FILLED),
                ("tb-zz9", OrderStatus.NEW, Decimal(0), None, "", None, OrderPurpose.ENTRY, ""),
            ]  # fmt: skip
            assert len(c_trades) == 1
            assert len(_sim_trades(session, "tb-b")) == 2
            assert [_row(e) for e in report.events] == expected
            assert [o.client_order_id for o in report.adopted] == ["tb-zz9"]
            assert [o.client_order_id for o in report.foreign] == ["manual-1"]
            assert report.unresolved == ()
            assert report.problems == ()
            assert report.unmatched_trades == ()
            assert report.position_mismatches == ()  # the synthetic fills explain the balance
            last_trade = max(t["trade_id"] for t in session.sim.spot.engine.snapshot()["trades"])
            assert report.last_trade_ids == {SYMBOL: last_trade}

            published = await second.executor.adopt(report)
            assert published == len(expected)
            await second.wait(lambda: len(second.seen) == len(expected))
            assert second.seen == list(report.events)  # published as computed, stamped
            assert await second.executor.adopt(report) == 0  # exactly once
            # The open ones are really tracked: cancel, and flatten, go through the executor.
            await second.request(CancelOrder("tb-d", SYMBOL, START_MS, reason="after restart"))
            canceled = await second.wait_status("tb-d", OrderStatus.CANCELED)
            assert (canceled.strategy, canceled.reason) == ("s1", "after restart")
            await second.control(ControlAction.FLATTEN, "flat-1")
            await second.wait_status("tb-zz9", OrderStatus.CANCELED)
            await second.wait(lambda: len(second.acks()) == 1)
            statuses = {o["client_order_id"]: o["status"] for o in second.sim_orders()}
            assert statuses["tb-d"] == statuses["tb-zz9"] == "CANCELED"
            assert statuses["manual-1"] == "NEW"  # foreign: never touched
            assert statuses["tb-b"] == "FILLED"
            assert second.updates("manual-1") == []
            tracked = second.executor.book.get("tb-b")
            assert tracked is not None
            assert sorted(tracked.fills) == [t["trade_id"] for t in _sim_trades(session, "tb-b")]


async def test_periodic_reconciliation_publishes_only_differences() -> None:
    async with sim_session() as session, executor_on(session) as rig:
        (book,) = await session.client.book_tickers(SYMBOL)
        price = (book.bid_price * Decimal("0.9")).quantize(Decimal(1))
        await rig.request(order("tb-p1", price=price))
        await rig.request(order("tb-p2", price=price))
        await rig.request(order("tb-m"))
        for cid, status in (
            ("tb-p1", OrderStatus.NEW),
            ("tb-p2", OrderStatus.NEW),
            ("tb-m", OrderStatus.FILLED),
        ):
            await rig.wait_status(cid, status)  # fmt: skip
        # An order in flight (its answer lost, UNKNOWN) belongs to its resolution task.
        await session.sim.faults.arm(FaultRule(FaultKind.ORDER_ERROR_5XX, market="spot", count=1))
        await rig.request(order("tb-u", price=price))
        await rig.wait_status("tb-u", OrderStatus.UNKNOWN)
        before = len(rig.seen)
        report = await rig.executor.reconcile_once(symbols=[SYMBOL], client_id_prefix="tb")
        assert report.events == ()
        assert report.adopted == ()
        assert len(rig.seen) == before
        # Events the executor never heard of (no user-data stream in this test):
        await session.client.cancel_order(SYMBOL, "tb-p1")
        await session.client.place_order(_limit("tb-hand", price, "0.01"))
        by_hand = SubmitOrder(
            "manual-4", "", SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.01"), START_MS
        )
        foreign, _ = await session.client.place_order(by_hand)
        report = await rig.executor.reconcile_once(symbols=[SYMBOL], client_id_prefix="tb")
        assert {t.exchange_order_id for t in report.unmatched_trades} == {foreign.exchange_order_id}
        assert [(e.client_order_id, e.status, e.strategy) for e in report.events] == [
            ("tb-p1", OrderStatus.CANCELED, "s1"),
            ("tb-hand", OrderStatus.NEW, ""),
        ]
        await rig.wait(lambda: len(rig.seen) == before + 2)
        assert rig.seen[before:] == list(report.events)
        again = await rig.executor.reconcile_once(symbols=[SYMBOL], client_id_prefix="tb")
        assert again.events == ()
        assert again.unmatched_trades == ()
        assert len(rig.seen) == before + 2
        assert rig.executor.book.get("tb-hand") is not None
        # Fills the executor missed, below a trade it booked later: found all the same.
        await session.sim.faults.arm(FaultRule(FaultKind.PARTIAL_FILLS, fraction=Decimal("0.5")))
        _move_market(session, price - 1)  # half of tb-p2 and of tb-hand
        await rig.request(order("tb-m2"))
        await rig.wait_status("tb-m2", OrderStatus.FILLED)
        report = await rig.executor.reconcile_once(symbols=[SYMBOL], client_id_prefix="tb")
        assert [(e.client_order_id, e.status, e.fill is not None) for e in report.events] == [
            ("tb-hand", OrderStatus.PARTIALLY_FILLED, True),
            ("tb-p2", OrderStatus.PARTIALLY_FILLED, True),
        ]


async def test_futures_position_mismatch_is_reported() -> None:
    async with sim_session(market=MarketType.USDM) as session:
        async with executor_on(session) as first:
            await first.request(order("tb-long", qty="0.010"))
            await first.wait_status("tb-long", OrderStatus.FILLED)
            known = _known(first.seen)
        # By hand, while down: a foreign market buy grows the exchange's position.
        hand = SubmitOrder(
            "manual-2", "", SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.005"), START_MS
        )
        await session.client.place_order(hand)  # fmt: skip
        assert [o.client_order_id for o in known.orders] == ["tb-long"]  # no fills recorded
        report = await reconcile(session.port, known, [SYMBOL], session.clock)
        fills = [e.fill for e in report.events if e.fill is not None]
        assert len(fills) == len(report.events) >= 1
        assert sum(f.quantity for f in fills) == Decimal("0.010")
        assert report.events[-1].status is OrderStatus.FILLED
        assert report.position_mismatches == (
            PositionMismatch(SYMBOL, Decimal("0.010"), Decimal("0.015")),
        )
        assert report.unmatched_trades == ()  # no trade id recorded: no trades_since read
        assert {p.symbol: p.quantity for p in report.positions}[SYMBOL] == Decimal("0.015")


async def test_spot_position_shortfall_is_reported() -> None:
    async with sim_session() as session:
        async with executor_on(session) as first:
            await first.request(order("tb-buy", qty="0.02"))
            await first.wait_status("tb-buy", OrderStatus.FILLED)
            known = _known(first.seen)
        expected = known.positions[("s1", SYMBOL)] if known.positions else Decimal(0)
        sell = SubmitOrder(
            "manual-3", "", SYMBOL, Side.SELL, OrderType.MARKET, Decimal("0.01"), START_MS
        )
        await session.client.place_order(sell)  # fmt: skip
        report = await reconcile(session.port, known, [SYMBOL], session.clock)
        ((mismatch),) = report.position_mismatches
        assert (mismatch.symbol, mismatch.expected) == (SYMBOL, expected)
        assert mismatch.exchange == expected - Decimal("0.01")
        # Holding more than the instance bought is not a mismatch (not ours to attribute).
        report = await reconcile(
            session.port,
            KnownState(positions={("s1", SYMBOL): Decimal("0.001")}),
            [SYMBOL],
            session.clock,
        )
        assert report.position_mismatches == ()


async def test_a_failing_exchange_call_fails_reconciliation() -> None:
    async with sim_session() as session:
        async with executor_on(session) as first:
            (book,) = await session.client.book_tickers(SYMBOL)
            price = (book.bid_price * Decimal("0.9")).quantize(Decimal(1))
            await first.request(order("tb-x", price=price))
            await first.wait_status("tb-x", OrderStatus.NEW)
            known = _known(first.seen)
        await session.sim.faults.arm(FaultRule(FaultKind.IP_BAN_418, market="spot", ban_s=60))
        with pytest.raises(ReconciliationFailed, match="open orders of BTCUSDT"):
            await reconcile(session.port, known, [SYMBOL], session.clock)


async def test_trades_since_reads_every_page() -> None:
    async with sim_session() as session:
        await session.sim.faults.arm(FaultRule(FaultKind.PARTIAL_FILLS, fraction=Decimal("0.01")))
        for index in range(12):  # at most 100 trades per market order: > 1 page in all
            buy = SubmitOrder(
                f"manual-{index}", "", SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.01"), START_MS
            )
            await session.client.place_order(buy)
        trades = session.sim.spot.engine.snapshot()["trades"]
        assert len(trades) > 1000
        first = min(t["trade_id"] for t in trades)
        fetched = await session.port.trades_since(SYMBOL, first + 1)
        assert [f.trade_id for f in fetched] == sorted(t["trade_id"] for t in trades)[1:]
