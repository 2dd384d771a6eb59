"""The runner and its symbol-bound context: what reaches a strategy, when, and what leaves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from pydantic import Field

from app.domain import (
    BookTicker,
    Fill,
    Kline,
    MarkPrice,
    OrderDenied,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SignalAction,
)
from strategies.base import Strategy, StrategyParams, Timer
from strategies.context import ForeignSymbol, StrategyContext
from strategies.runner import SnapshotMismatch, StrategyRunner
from tests.factories import book, kline


class ScriptParams(StrategyParams):
    warmup: int = Field(default=0, ge=0)
    enter_on_bar: int = -1  # bar number (1-based) on which to enter long
    fail_on_bar: int = -1
    intrabar: bool = False
    re_enter_on_denial: bool = False


class Script(Strategy[ScriptParams]):
    """Records every event it sees and signals as its parameters say."""

    name = "script"
    params_model = ScriptParams

    def __init__(self, params: ScriptParams, ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.warmup_bars = params.warmup
        self.intrabar = params.intrabar
        self.book_tickers = True
        self.mark_prices = True
        self.seen: list[tuple[str, Any]] = []
        self.bars = 0

    def on_bar(self, bar: Kline) -> None:
        self.bars += 1
        self.seen.append(("bar", bar.open_time_ms))
        if self.bars == self.params.fail_on_bar:
            raise RuntimeError("boom")
        if self.bars == self.params.enter_on_bar:
            self.ctx.enter_long("scripted", confidence=0.7, tags=("t",))

    def on_intrabar(self, bar: Kline) -> None:
        self.seen.append(("intrabar", bar.open_time_ms))

    def on_book(self, book: BookTicker) -> None:
        self.seen.append(("book", book.ts_ms))

    def on_mark(self, mark: MarkPrice) -> None:
        self.seen.append(("mark", mark.ts_ms))

    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        self.seen.append(("order", event.reason))
        if isinstance(event, OrderDenied) and self.params.re_enter_on_denial:
            self.ctx.enter_long("again")

    def on_timer(self, timer: Timer) -> None:
        self.seen.append(("timer", (timer.name, timer.due_ms)))
        self.ctx.exit_long(f"timer {timer.name}")

    def snapshot(self) -> dict[str, Any]:
        return {"bars": self.bars}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.bars = int(state["bars"])


def runner(symbol: str = "BTCUSDT", **params: Any) -> StrategyRunner:
    return StrategyRunner(
        Script, ScriptParams(**params), instance="s1", symbol=symbol, interval="1m"
    )


def seen(r: StrategyRunner) -> list[tuple[str, Any]]:
    strategy = r.strategy
    assert isinstance(strategy, Script)
    return strategy.seen


def bar(n: int, *, closed: bool = True, symbol: str = "BTCUSDT") -> Kline:
    return kline(symbol, n * 60_000, "100", closed=closed)


def mark(symbol: str = "BTCUSDT", ts_ms: int = 5) -> MarkPrice:
    return MarkPrice(symbol, Decimal(1), Decimal(1), Decimal(0), 0, ts_ms)


def fill_update(trade_id: int, side: Side = Side.BUY, qty: str = "2", **kw: Any) -> OrderUpdated:
    fill = Fill(
        trade_id, "c1", "BTCUSDT", side, Decimal(100), Decimal(qty), Decimal(0), "USDT", False, 9
    )
    return OrderUpdated(
        "c1", "BTCUSDT", side, OrderType.MARKET, OrderStatus.PARTIALLY_FILLED, Decimal(9),
        Decimal(qty), 9, fill=fill, strategy=kw.get("strategy", "s1"),
    )  # fmt: skip


# -- the context is bound to one symbol -------------------------------------------------------
@pytest.mark.parametrize(
    "event",
    [
        bar(1, symbol="ETHUSDT"),
        book("ETHUSDT"),
        mark("ETHUSDT"),
        OrderDenied("s1", "ETHUSDT", "nope", 1),
    ],
    ids=["kline", "book", "mark", "order"],
)
def test_data_for_another_symbol_is_refused_before_the_strategy_sees_it(event: Any) -> None:
    r = runner()
    handler = {
        Kline: r.on_kline,
        BookTicker: r.on_book,
        MarkPrice: r.on_mark,
        OrderDenied: r.on_order,
    }[type(event)]
    with pytest.raises(ForeignSymbol, match="bound to BTCUSDT, refused data for ETHUSDT"):
        handler(event)
    assert seen(r) == []
    assert not r.disabled  # a wiring bug is loud, but not the strategy's fault


def test_signals_always_carry_the_bound_symbol_and_the_event_time() -> None:
    r = runner(enter_on_bar=2)
    assert r.on_kline(bar(1)) == ()
    (signal,) = r.on_kline(bar(2))
    assert signal.symbol == "BTCUSDT"
    assert signal.strategy == "s1"
    assert signal.action is SignalAction.ENTER_LONG
    assert signal.ts_ms == bar(2).close_time_ms
    assert signal.signal_id == f"s1:BTCUSDT:{bar(2).close_time_ms}:0"
    assert (signal.confidence, signal.reason, signal.tags) == (0.7, "scripted", ("t",))


def test_a_bar_of_another_interval_is_a_wiring_error() -> None:
    r = runner()
    other = Kline("BTCUSDT", "5m", 0, 299_999, *[Decimal(1)] * 6, 1, True)
    with pytest.raises(ValueError, match="runs on 1m bars"):
        r.on_kline(other)


# -- ordering, staleness and opt-in streams ------------------------------------------------------
def test_closed_bars_are_delivered_once_and_in_order() -> None:
    r = runner()
    for n in (1, 2, 2, 1, 3):
        r.on_kline(bar(n))
    assert seen(r) == [("bar", 60_000), ("bar", 120_000), ("bar", 180_000)]
    assert r.stats.stale_bars == 2
    assert r.stats.bars == 3


def test_intrabar_updates_only_when_asked_and_never_for_a_closed_bar() -> None:
    quiet = runner()
    quiet.on_kline(bar(1, closed=False))
    assert seen(quiet) == []
    eager = runner(intrabar=True)
    eager.on_kline(bar(1, closed=False))
    eager.on_kline(bar(1))
    eager.on_kline(bar(1, closed=False))  # late update of a bar that already closed
    eager.on_kline(bar(2, closed=False))
    assert seen(eager) == [("intrabar", 60_000), ("bar", 60_000), ("intrabar", 120_000)]


def test_books_and_marks_reach_a_strategy_that_asked_for_them() -> None:
    r = runner()
    r.on_book(book("BTCUSDT", ts_ms=4))
    r.on_mark(mark(ts_ms=5))
    assert seen(r) == [("book", 4), ("mark", 5)]
    assert (r.stats.books, r.stats.marks) == (1, 1)


# -- warm-up ------------------------------------------------------------------------------------
def test_history_signals_are_discarded_and_their_entries_denied() -> None:
    r = runner(enter_on_bar=2)
    fed = r.warm_up([bar(1), bar(2, closed=False), bar(2), bar(3)])
    assert fed == 3
    assert r.stats.warmup_bars == 3
    assert r.stats.suppressed == 1
    assert ("order", "warm_up: signal from history or before the declared warm-up") in seen(r)
    assert r.on_kline(bar(4)) == ()
    assert r.stats.bars == 1


def test_no_signal_before_the_declared_warm_up_but_on_the_bar_that_completes_it() -> None:
    early = runner(warmup=3, enter_on_bar=2)
    assert [early.on_kline(bar(n)) for n in (1, 2)] == [(), ()]
    assert early.stats.suppressed == 1
    assert not early.warmed_up
    on_time = runner(warmup=3, enter_on_bar=3)
    signals = [s for n in (1, 2, 3) for s in on_time.on_kline(bar(n))]
    assert [s.action for s in signals] == [SignalAction.ENTER_LONG]
    assert on_time.warmed_up


def test_a_strategy_that_keeps_re_entering_on_denial_is_cut_off() -> None:
    r = runner(enter_on_bar=1, re_enter_on_denial=True)
    r.warm_up([bar(1)])
    assert r.stats.suppressed == 8  # bounded, not an endless loop
    assert r.ctx.pending == []


# -- isolation --------------------------------------------------------------------------------
def test_a_raising_strategy_is_disabled_alone_and_keeps_its_position() -> None:
    r = runner(fail_on_bar=2, enter_on_bar=3)
    healthy = runner(enter_on_bar=3)
    for n in (1, 2, 3):
        r.on_kline(bar(n))
        healthy.on_kline(bar(n))
    assert r.disabled
    assert r.failure is not None
    assert (r.failure.event, r.failure.error) == ("bar", "RuntimeError: boom")
    assert r.failure.event_ts_ms == bar(2).close_time_ms
    assert r.stats.errors == 1
    assert r.on_kline(bar(4)) == ()
    assert seen(r) == [("bar", 60_000), ("bar", 120_000)]
    r.on_order(fill_update(1))
    assert r.ctx.position == Decimal(2)  # fills are still booked while disabled
    assert healthy.stats.signals == 1
    assert not healthy.disabled


def test_an_invalid_signal_is_the_strategy_s_error() -> None:
    class Overconfident(Script):
        def on_bar(self, bar: Kline) -> None:
            self.ctx.enter_long("sure", confidence=1.5)

    r = StrategyRunner(
        Overconfident, ScriptParams(), instance="s1", symbol="BTCUSDT", interval="1m"
    )
    assert r.on_kline(bar(1)) == ()
    assert r.failure is not None
    assert "confidence must be within 0..1" in r.failure.error


# -- own orders -------------------------------------------------------------------------------
def test_position_counts_each_exchange_trade_once() -> None:
    r = runner()
    r.on_order(fill_update(1))
    r.on_order(fill_update(1))  # the same trade, resent
    r.on_order(fill_update(2, Side.SELL, "0.5"))
    assert r.ctx.position == Decimal("1.5")
    assert r.stats.orders == 3


def test_order_events_of_another_strategy_are_refused() -> None:
    with pytest.raises(ValueError, match="order event of 'other'"):
        runner().on_order(fill_update(1, strategy="other"))


# -- timers -----------------------------------------------------------------------------------
def test_timers_fire_in_due_order_before_the_bar_that_passes_them() -> None:
    r = runner()
    r.on_kline(bar(1))
    r.ctx.set_timer("late", bar(3).close_time_ms - 1)
    r.ctx.set_timer("early", bar(2).close_time_ms - 10)
    r.ctx.set_timer("cancelled", bar(2).close_time_ms - 5)
    r.ctx.cancel_timer("cancelled")
    signals = r.on_kline(bar(2))
    assert [s.reason for s in signals] == ["timer early"]
    assert seen(r)[-2:] == [("timer", ("early", bar(2).close_time_ms - 10)), ("bar", 120_000)]
    assert r.ctx.next_timer_ms == bar(3).close_time_ms - 1
    assert [s.reason for s in r.fire_timers(bar(3).close_time_ms)] == ["timer late"]
    assert not r.ctx.has_timers


def test_signal_times_never_go_back_and_ids_stay_unique() -> None:
    ctx = StrategyContext(strategy="s1", symbol="BTCUSDT", interval="1m")
    ctx.now_ms = 100
    a = ctx.enter_long("a")
    ctx.now_ms = 90  # a book ticker that arrived after a later bar
    b = ctx.exit_long("b")
    ctx.now_ms = 200
    c = ctx.enter_short("c")
    assert [(s.ts_ms, s.signal_id) for s in (a, b, c)] == [
        (100, "s1:BTCUSDT:100:0"),
        (100, "s1:BTCUSDT:100:1"),
        (200, "s1:BTCUSDT:200:0"),
    ]


# -- snapshots --------------------------------------------------------------------------------
def test_snapshot_round_trips_through_json_and_continues_identically() -> None:
    r = runner(enter_on_bar=5)
    for n in (1, 2, 3):
        r.on_kline(bar(n))
    r.on_order(fill_update(7))
    r.ctx.set_timer("t", bar(4).close_time_ms)
    saved = json.loads(json.dumps(r.snapshot()))
    twin = runner(enter_on_bar=5)
    twin.restore(saved)
    assert twin.ctx.position == Decimal(2)
    assert twin.bars_seen == 3
    assert twin.last_bar_open_ms == bar(3).open_time_ms
    for n in (3, 4, 5):
        assert r.on_kline(bar(n)) == twin.on_kline(bar(n))
    twin.on_order(fill_update(7))  # remembered: not booked twice
    assert twin.ctx.position == Decimal(2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": {"warmup": 9}}, "saved params differs"),
        ({"state_version": 0}, "saved state_version differs"),
        ({"interval": "5m"}, "saved interval differs"),
        ({"symbol": "ETHUSDT"}, "saved symbol differs"),
    ],
)
def test_a_snapshot_of_another_configuration_is_refused(
    change: dict[str, Any], message: str
) -> None:
    saved = {**runner().snapshot(), **change}
    with pytest.raises(SnapshotMismatch, match=message):
        runner().restore(saved)
