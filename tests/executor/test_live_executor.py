"""The live executor against the running simulator: every placement path, fills, events,
cancel/replace/TTL and the halt semantics.

Real parts throughout: a live Bus, the real Spot/Futures client on loopback, the simulator's
own fault injection and order records, the user-data stream where events matter. Time is a
ManualClock: backoffs, Retry-After, grace periods and TTLs pass only when a test moves it,
after waiting for the sleeper it expects (the simulator's own timer, the executor's
housekeeping loop, then the one under test). Two hand-written ports stand in for what the
simulator cannot do: refuse a connection, and lose a request before the exchange reads it.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from app.domain import (
    AlgoOrderUpdated,
    CancelOrder,
    ControlAction,
    ControlCommand,
    MarketType,
    OrderOrigin,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    QuickFill,
    ReplaceOrder,
    Side,
    TradingState,
    TradingStateChanged,
)
from app.domain.enums import ExecutionType
from app.domain.orders import UserStreamResynced
from exchange.sim.faults import FaultKind, FaultRule
from executor.halt import HALTED_REASON
from executor.placement import NEVER_REACHED
from tests.executor.rig import (
    SETTINGS,
    FlakyPort,
    LostRequestPort,
    Rig,
    executor_rig,
    order,
)
from tests.sim.harness import START_MS

# The simulator's listenKey timer and the executor's housekeeping loop sleep on the clock
# from the start; the user-data stream adds its connection-age timer.
BASE = 2
BASE_STREAM = 3
FAR = Decimal("0.9")  # a buy this far under the market rests


async def _resting_price(rig: Rig) -> Decimal:
    port = rig.port
    client = port.client if hasattr(port, "client") else port.inner.client  # type: ignore[attr-defined]
    (book,) = await client.book_tickers("BTCUSDT")
    price: Decimal = (book.bid_price * FAR).quantize(Decimal(1))
    return price


# -- placement paths ---------------------------------------------------------------------------


async def test_market_order_is_placed_filled_and_stamped() -> None:
    async with executor_rig() as rig:
        await rig.request(order("tb-ok"))
        filled = await rig.wait_status("tb-ok", OrderStatus.FILLED)
        assert rig.statuses("tb-ok")[0] is OrderStatus.PENDING_NEW
        for update in rig.updates("tb-ok"):
            assert (update.strategy, update.signal_id) == ("s1", "sig-tb-ok")
            assert update.purpose is OrderPurpose.ENTRY
        assert filled.filled_quantity == Decimal("0.01")
        assert filled.fill is not None
        assert filled.fill.client_order_id == "tb-ok"
        (sim_order,) = rig.sim_orders("tb-ok")
        assert sim_order["status"] == "FILLED"
        trades = rig.sim_trades()
        assert {f.trade_id for u in rig.updates("tb-ok") if (f := u.fill)} == {
            t["trade_id"] for t in trades
        }
        status = rig.executor.status()
        assert status["fills_booked"] == len(trades)
        assert status["fees"] == {"BTC": str(sum(Decimal(t["commission"]) for t in trades))}
        assert status["last_latency_ms"] is not None
        assert status["open_orders"] == 0


async def test_transient_failure_is_retried_with_the_same_client_order_id() -> None:
    async with executor_rig(wrap=lambda p: FlakyPort(p, failures=2)) as rig:
        await rig.request(order("tb-flaky"))
        for attempt in (1, 2):
            await rig.sleepers(BASE + 1)  # the executor waits out its backoff
            assert rig.executor.status()["retries"] == attempt
            rig.advance(1.0)
        await rig.wait_status("tb-flaky", OrderStatus.FILLED)
        assert rig.port.place_calls == 3  # type: ignore[attr-defined]
        assert rig.received == ["tb-flaky"]  # only the third attempt reached the exchange
        assert len(rig.sim_orders("tb-flaky")) == 1


async def test_rate_limit_retry_after_is_waited_out() -> None:
    async with executor_rig() as rig:
        await rig.sim.faults.arm(
            FaultRule(FaultKind.RATE_LIMIT_429, market="spot", count=1, retry_after_s=7)
        )
        await rig.request(order("tb-429"))
        await rig.sleepers(BASE + 1)
        assert rig.received == ["tb-429"]
        rig.advance(6.9)
        await rig.sleepers(BASE + 1)  # an executor woken early would have tried and slept again
        tracked = rig.executor.book.get("tb-429")
        assert tracked is not None
        assert tracked.send_attempts == 1
        assert rig.received == ["tb-429"]
        assert rig.statuses("tb-429") == [OrderStatus.PENDING_NEW]
        rig.advance(0.2)
        await rig.wait_status("tb-429", OrderStatus.FILLED)
        assert rig.received == ["tb-429", "tb-429"]
        assert len(rig.sim_orders("tb-429")) == 1


async def test_five_transient_failures_reject_the_order() -> None:
    async with executor_rig(wrap=lambda p: FlakyPort(p, failures=5)) as rig:
        await rig.request(order("tb-down"))
        for _ in range(4):
            await rig.sleepers(BASE + 1)
            rig.advance(5.0)
        rejected = await rig.wait_status("tb-down", OrderStatus.REJECTED)
        assert rejected.reason.startswith("not sent after 5 attempts: ")
        assert "cannot connect" in rejected.reason
        assert rig.port.place_calls == 5  # type: ignore[attr-defined]
        assert rig.sim_orders("tb-down") == []


async def test_exchange_reject_is_final_with_its_message() -> None:
    async with executor_rig() as rig:
        await rig.sim.faults.arm(FaultRule(FaultKind.REJECT_2010, market="spot", count=1))
        await rig.request(order("tb-2010"))
        rejected = await rig.wait_status("tb-2010", OrderStatus.REJECTED)
        assert "insufficient balance" in rejected.reason.lower()
        assert rig.received == ["tb-2010"]  # not retried
        assert rig.sim_orders("tb-2010") == []


async def test_unknown_outcome_is_resolved_by_the_stream_without_a_query() -> None:
    async with executor_rig(stream=True, wrap=lambda p: FlakyPort(p, failures=0)) as rig:
        await rig.sim.faults.arm(FaultRule(FaultKind.ORDER_ERROR_5XX, market="spot", count=1))
        await rig.request(order("tb-5xx"))
        await rig.wait_status("tb-5xx", OrderStatus.UNKNOWN)
        filled = await rig.wait_status("tb-5xx", OrderStatus.FILLED)
        assert filled.fill is not None
        assert rig.port.query_calls == 0  # type: ignore[attr-defined]
        assert rig.received == ["tb-5xx"]
        assert rig.executor.status()["unknown"] == 0


async def test_unknown_outcome_is_resolved_by_a_query_and_its_trades() -> None:
    settings = SETTINGS.model_copy(update={"ttl_check_interval_s": 1.0})
    async with executor_rig(settings=settings) as rig:
        await rig.sim.faults.arm(FaultRule(FaultKind.ORDER_ERROR_1007, market="spot", count=1))
        await rig.request(order("tb-1007"))
        await rig.wait_status("tb-1007", OrderStatus.UNKNOWN)
        await rig.sleepers(BASE + 1)  # the resolver waits before its first query
        rig.advance(0.5)
        filled = await rig.wait_status("tb-1007", OrderStatus.FILLED)
        assert filled.fill is None  # a query answer carries no trades ...
        await rig.sleepers(BASE + 0)
        rig.advance(1.0)  # ... the housekeeping pass fetches them
        await rig.wait(lambda: any(u.fill for u in rig.updates("tb-1007")))
        booked = {u.fill.trade_id: u.fill.quantity for u in rig.updates("tb-1007") if u.fill}
        assert booked == {t["trade_id"]: Decimal(t["qty"]) for t in rig.sim_trades()}
        assert rig.received == ["tb-1007"]


async def test_not_found_within_the_grace_period_is_not_believed() -> None:
    async with executor_rig() as rig:
        price = await _resting_price(rig)
        await rig.sim.faults.arm(FaultRule(FaultKind.ORDER_ERROR_5XX, market="spot", count=1))
        await rig.sim.faults.arm(
            FaultRule(FaultKind.ORDER_NOT_FOUND_AFTER_CREATE, market="spot", count=1, grace_ms=3000)
        )
        await rig.request(order("tb-hidden", price=price))
        await rig.wait_status("tb-hidden", OrderStatus.UNKNOWN)
        for step_s in (0.5, 1.0, 2.0):  # queries at 0.5 s and 1.5 s: "does not exist"
            await rig.sleepers(BASE + 1)
            rig.advance(step_s)
        new = await rig.wait_status("tb-hidden", OrderStatus.NEW)  # found at 3.5 s
        assert new.exchange_order_id is not None
        assert OrderStatus.REJECTED not in rig.statuses("tb-hidden")
        assert rig.executor.core.counts["unknown_queries"] == 3


async def test_not_found_after_the_grace_period_rejects_and_never_resends() -> None:
    async with executor_rig(wrap=LostRequestPort) as rig:
        await rig.request(order("tb-lost"))
        await rig.wait_status("tb-lost", OrderStatus.UNKNOWN)
        elapsed = 0.0
        while elapsed < 9.9:  # backoff 0.5, 1, 2, 4, then up to the grace end at 10 s
            await rig.sleepers(BASE + 1)
            assert rig.statuses("tb-lost")[-1] is OrderStatus.UNKNOWN
            step = min(9.9 - elapsed, 0.5 * 2 ** rig.executor.core.counts["unknown_queries"])
            rig.advance(step)
            elapsed += step
        await rig.sleepers(BASE + 1)
        assert rig.statuses("tb-lost")[-1] is OrderStatus.UNKNOWN
        rig.advance(0.2)
        rejected = await rig.wait_status("tb-lost", OrderStatus.REJECTED)
        assert rejected.reason == NEVER_REACHED
        assert rig.port.place_calls == 1  # type: ignore[attr-defined]
        assert rig.received == []


async def test_a_repeated_intent_places_one_exchange_order() -> None:
    async with executor_rig() as rig:
        intent = order("tb-dup")
        await rig.request(intent)
        await rig.request(replace(intent, ts_ms=START_MS + 1))
        await rig.wait_status("tb-dup", OrderStatus.FILLED)
        await rig.request(intent)
        await rig.wait(lambda: rig.executor.status()["duplicate_intents"] == 2)
        assert rig.received == ["tb-dup"]
        assert len(rig.sim_orders("tb-dup")) == 1


# -- fills and events --------------------------------------------------------------------------


async def test_partial_fills_aggregate_and_events_are_idempotent() -> None:
    async with executor_rig(stream=True) as rig:
        await rig.sim.faults.arm(FaultRule(FaultKind.PARTIAL_FILLS, fraction=Decimal("0.25")))
        await rig.request(order("tb-parts", qty="0.04"))
        await rig.wait_status("tb-parts", OrderStatus.FILLED)
        trades = rig.sim_trades()
        assert len(trades) >= 4  # at most a quarter of the order per trade
        # The FULL answer and the stream both carried every trade: each booked once.
        await rig.wait(lambda: rig.executor.status()["fills_booked"] == len(trades))
        fills = [u.fill for u in rig.updates("tb-parts") if u.fill is not None]
        assert sorted(f.trade_id for f in fills) == sorted(t["trade_id"] for t in trades)
        last = rig.updates("tb-parts")[-1]
        assert last.filled_quantity == Decimal("0.04")
        value = sum(Decimal(t["price"]) * Decimal(t["qty"]) for t in trades)
        assert last.average_fill_price == value / Decimal("0.04")
        fee = sum(Decimal(t["commission"]) for t in trades)
        assert rig.executor.status()["fees"] == {"BTC": str(fee)}
        # The exchange's events again, duplicated and in reverse: nothing changes.
        tracked = rig.executor.book.get("tb-parts")
        assert tracked is not None
        published = len(rig.updates("tb-parts"))
        replay = [u for u in rig.updates("tb-parts") if u.fill is not None]
        for update in [*reversed(replay), *replay]:
            raw = replace(update, strategy="", signal_id=None, purpose=None)
            await rig.venue_event(replace(raw, status=OrderStatus.PARTIALLY_FILLED))
            await rig.venue_event(replace(raw, status=OrderStatus.NEW, fill=None))
        await rig.request(order("tb-marker"))  # flushes the executor's inboxes behind them
        await rig.wait_status("tb-marker", OrderStatus.FILLED)
        assert len(rig.updates("tb-parts")) == published
        assert tracked.status is OrderStatus.FILLED
        assert len(tracked.fills) == len(trades)
        assert rig.executor.status()["refused_transitions"] == {}


async def test_foreign_orders_quick_fills_and_algo_orders_pass_through_unstamped() -> None:
    async with executor_rig() as rig:
        foreign = OrderUpdated(
            "autoclose-123", "BTCUSDT", Side.SELL, OrderType.MARKET, OrderStatus.FILLED,
            Decimal("0.01"), Decimal("0.01"), START_MS, exchange_order_id=77,
            execution_type=ExecutionType.CALCULATED, origin=OrderOrigin.LIQUIDATION,
        )  # fmt: skip
        quick = QuickFill(
            "x", "BTCUSDT", Side.BUY, Decimal(1), Decimal(1), 5, 6, False, START_MS
        )  # fmt: skip
        algo = AlgoOrderUpdated(
            "a1", 9, "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, "new", Decimal(1), START_MS
        )  # fmt: skip
        for event in (foreign, quick, algo):
            await rig.venue_event(event)
        await rig.wait(lambda: len(rig.seen) == 3)
        assert rig.seen == [foreign, quick, algo]
        assert rig.executor.status()["foreign_events"] == 1


# -- cancel, replace, TTL ----------------------------------------------------------------------


async def test_a_resting_limit_order_is_cancelled_when_its_ttl_expires() -> None:
    settings = SETTINGS.model_copy(update={"ttl_check_interval_s": 1.0})
    async with executor_rig(settings=settings) as rig:
        price = await _resting_price(rig)
        await rig.request(order("tb-ttl", price=price, ttl_ms=3_000))
        await rig.wait_status("tb-ttl", OrderStatus.NEW)
        for _ in range(2):
            await rig.sleepers(BASE)
            rig.advance(1.0)
        await rig.sleepers(BASE)
        assert rig.statuses("tb-ttl")[-1] is OrderStatus.NEW  # 2 s: still within its TTL
        rig.advance(1.0)
        canceled = await rig.wait_status("tb-ttl", OrderStatus.CANCELED)
        assert canceled.reason == "ttl expired"
        assert OrderStatus.PENDING_CANCEL in rig.statuses("tb-ttl")
        (sim_order,) = rig.sim_orders("tb-ttl")
        assert sim_order["status"] == "CANCELED"


async def test_cancel_request_and_cancel_of_a_finished_order() -> None:
    async with executor_rig() as rig:
        price = await _resting_price(rig)
        await rig.request(order("tb-rest", price=price))
        await rig.request(order("tb-done"))
        await rig.wait_status("tb-rest", OrderStatus.NEW)
        await rig.wait_status("tb-done", OrderStatus.FILLED)
        await rig.request(CancelOrder("tb-rest", "BTCUSDT", START_MS, reason="strategy exit"))
        await rig.request(CancelOrder("tb-done", "BTCUSDT", START_MS))
        canceled = await rig.wait_status("tb-rest", OrderStatus.CANCELED)
        assert canceled.reason == "strategy exit"
        assert rig.executor.core.counts["cancel_of_final"] == 1
        assert rig.statuses("tb-done")[-1] is OrderStatus.FILLED


async def test_spot_cancel_replace_tracks_the_new_order_for_the_same_intent() -> None:
    async with executor_rig() as rig:
        price = await _resting_price(rig)
        await rig.request(order("tb-old", price=price))
        await rig.wait_status("tb-old", OrderStatus.NEW)
        new_price = price - 10
        await rig.request(
            ReplaceOrder("tb-old", "BTCUSDT", START_MS, new_price, Decimal("0.02"), "tb-new")
        )
        new = await rig.wait_status("tb-new", OrderStatus.NEW)
        old = await rig.wait_status("tb-old", OrderStatus.CANCELED)
        assert old.reason == "replaced by tb-new"
        assert (new.strategy, new.signal_id, new.purpose) == (
            "s1",
            "sig-tb-old",
            OrderPurpose.ENTRY,
        )
        assert (new.price, new.quantity) == (new_price, Decimal("0.02"))
        (sim_new,) = rig.sim_orders("tb-new")
        assert (Decimal(sim_new["price"]), sim_new["status"]) == (new_price, "NEW")
        assert rig.sim_orders("tb-old")[0]["status"] == "CANCELED"


async def test_futures_modify_changes_the_order_in_place() -> None:
    async with executor_rig(market=MarketType.USDM) as rig:
        price = await _resting_price(rig)
        await rig.request(order("tb-fut", price=price, qty="0.010"))
        await rig.wait_status("tb-fut", OrderStatus.NEW)
        await rig.request(
            ReplaceOrder("tb-fut", "BTCUSDT", START_MS, price - 20, Decimal("0.020"), "unused")
        )
        await rig.wait(lambda: rig.updates("tb-fut")[-1].price == price - 20)
        last = rig.updates("tb-fut")[-1]
        assert (last.status, last.quantity, last.strategy) == (
            OrderStatus.NEW,
            Decimal("0.020"),
            "s1",
        )
        (sim_order,) = rig.sim_orders("tb-fut")
        assert Decimal(sim_order["price"]) == price - 20
        assert Decimal(sim_order["orig_qty"]) == Decimal("0.020")


async def test_reconcile_learns_what_happened_while_no_event_came() -> None:
    async with executor_rig() as rig:
        price = await _resting_price(rig)
        await rig.request(order("tb-quiet", price=price))
        await rig.wait_status("tb-quiet", OrderStatus.NEW)
        client = rig.port.client  # type: ignore[attr-defined]
        await client.cancel_order("BTCUSDT", "tb-quiet")  # by hand; no stream in this rig
        await rig.executor.reconcile("test")
        canceled = await rig.wait_status("tb-quiet", OrderStatus.CANCELED)
        assert canceled.strategy == "s1"


async def test_a_user_stream_resync_on_venue_order_makes_the_executor_ask_the_exchange() -> None:
    async with executor_rig() as rig:
        price = await _resting_price(rig)
        await rig.request(order("tb-gap", price=price))
        await rig.wait_status("tb-gap", OrderStatus.NEW)
        client = rig.port.client  # type: ignore[attr-defined]
        await client.cancel_order("BTCUSDT", "tb-gap")  # its event was lost in the gap
        await rig.executor.on_venue_event(UserStreamResynced("reconnected", rig.clock.now_ms()))
        canceled = await rig.wait_status("tb-gap", OrderStatus.CANCELED)
        assert canceled.strategy == "s1"
        assert rig.executor.status()["counts"]["reconciliations"] == 1


# -- halt, flatten, trading state -------------------------------------------------------------


async def test_halt_is_acknowledged_after_the_entry_in_flight_and_refuses_later_entries() -> None:
    async with executor_rig() as rig:
        await rig.sim.faults.arm(
            FaultRule(FaultKind.LATENCY, market="spot", channel="rest", latency_ms=2000)
        )
        await rig.request(order("tb-inflight"))
        await rig.sleepers(BASE + 1)  # the simulator holds the request
        assert rig.received == ["tb-inflight"]
        # Called directly: when it returns the halt is in force (no message would say so).
        halt = ControlCommand(ControlAction.HALT, "test", rig.clock.now_ms(), "", "halt-1")
        await rig.executor.on_control(halt)
        assert rig.acks() == []  # the entry on the wire may still become an order
        rig.advance(2.0)
        await rig.wait(lambda: len(rig.acks()) == 1)
        filled_at = rig.seen.index(rig.updates("tb-inflight")[-1])
        assert rig.updates("tb-inflight")[-1].status is OrderStatus.FILLED
        assert filled_at < rig.seen.index(rig.acks()[0])
        assert (rig.acks()[0].command_id, rig.acks()[0].component) == ("halt-1", "executor")
        rig.sim.faults.clear()
        await rig.request(order("tb-after"))
        await rig.request(order("tb-exit", side=Side.SELL, qty="0.005", purpose=OrderPurpose.EXIT))
        refused = await rig.wait_status("tb-after", OrderStatus.REJECTED)
        assert refused.reason == HALTED_REASON
        await rig.wait_status("tb-exit", OrderStatus.FILLED)  # exits still leave
        assert "tb-after" not in rig.received
        await rig.control(ControlAction.RESUME, "resume-1")
        await rig.wait(lambda: len(rig.acks()) == 2)
        await rig.request(order("tb-resumed"))
        await rig.wait_status("tb-resumed", OrderStatus.FILLED)


async def test_flatten_cancels_open_orders_but_not_protective_stops() -> None:
    async with executor_rig() as rig:
        price = await _resting_price(rig)
        await rig.request(order("tb-entry", price=price))
        await rig.request(order("tb-stop", price=price, purpose=OrderPurpose.PROTECTIVE_STOP))
        await rig.wait_status("tb-entry", OrderStatus.NEW)
        await rig.wait_status("tb-stop", OrderStatus.NEW)
        await rig.control(ControlAction.FLATTEN, "flatten-1")
        canceled = await rig.wait_status("tb-entry", OrderStatus.CANCELED)
        assert canceled.reason == "flatten"
        await rig.wait(lambda: len(rig.acks()) == 1)
        assert rig.acks()[0].action is ControlAction.FLATTEN
        assert rig.statuses("tb-stop")[-1] is OrderStatus.NEW
        assert rig.sim_orders("tb-stop")[0]["status"] == "NEW"


async def test_risk_state_reducing_refuses_entries_until_active() -> None:
    async with executor_rig() as rig:
        reducing = TradingStateChanged(TradingState.REDUCING, TradingState.ACTIVE, "dd", START_MS)
        await rig.executor.on_risk_state(reducing)
        await rig.request(order("tb-reducing"))
        refused = await rig.wait_status("tb-reducing", OrderStatus.REJECTED)
        assert "reducing" in refused.reason
        active = TradingStateChanged(TradingState.ACTIVE, TradingState.REDUCING, "", START_MS)
        await rig.executor.on_risk_state(active)
        await rig.request(order("tb-active"))
        await rig.wait_status("tb-active", OrderStatus.FILLED)
        assert rig.received == ["tb-active"]
