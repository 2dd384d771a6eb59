"""The strategy worker on a real bus: routing, isolation, warm-up, snapshots, timers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.bus import MARKET_BOOK, MARKET_KLINE, ORDER_UPDATE, SIGNAL, SYSTEM_ALERT, Bus
from app.domain import (
    Alert,
    AlertSeverity,
    Kline,
    ManualClock,
    OrderDenied,
    Signal,
    SignalAction,
)
from strategies.snapshots import JsonSnapshotStore
from strategies.worker import StrategyWorker, WorkerOptions
from tests.factories import book, kline
from tests.strategies.test_runner import Script, ScriptParams

STEP = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % STEP


def bar(n: int, symbol: str = "BTCUSDT", *, closed: bool = True) -> Kline:
    return kline(symbol, T0 + n * STEP, str(100 + n), closed=closed)


class ListHistory:
    """A history source over bars held in memory, recording what it was asked for."""

    def __init__(self, bars: Sequence[Kline], *, fail: bool = False) -> None:
        self.bars = list(bars)
        self.fail = fail
        self.requests: list[tuple[str, int, int]] = []

    async def closed_klines(
        self, symbol: str, interval: str, *, start_ms: int, end_ms: int
    ) -> list[Kline]:
        self.requests.append((symbol, start_ms, end_ms))
        if self.fail:
            raise ConnectionError("venue unreachable")
        return [
            b
            for b in self.bars
            if b.symbol == symbol and start_ms <= b.open_time_ms <= end_ms and b.closed
        ]


class Harness:
    def __init__(self, clock: ManualClock | None = None) -> None:
        self.bus = Bus(replay=True)
        self.clock = clock or ManualClock(T0 + 10 * STEP + 1_000)
        self.signals: list[Signal] = []
        self.alerts: list[Alert] = []
        self.bus.subscribe(SIGNAL.any(), self._signal, subscriber="risk")
        self.bus.subscribe(SYSTEM_ALERT.channel(), self._alert, subscriber="alerts")

    async def _signal(self, signal: Signal) -> None:
        self.signals.append(signal)

    async def _alert(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def worker(
        self,
        instance: str = "s1",
        symbols: Sequence[str] = ("BTCUSDT",),
        **kw: Any,
    ) -> StrategyWorker:
        params = kw.pop("params", ScriptParams())
        return StrategyWorker(
            instance=instance,
            strategy_cls=Script,
            params=params,
            symbols=symbols,
            interval="1m",
            bus=self.bus,
            clock=self.clock,
            **kw,
        )

    async def publish(self, *klines: Kline) -> None:
        for k in klines:
            await self.bus.sender(MARKET_KLINE.channel(k.symbol)).send(k)
        await self.bus.run_until_idle()


async def test_many_instances_times_many_symbols_each_on_its_own_signal_channel() -> None:
    h = Harness()
    on_two = h.worker("first", ("BTCUSDT", "ETHUSDT"), params=ScriptParams(enter_on_bar=2))
    on_one = h.worker("second", ("ETHUSDT",), params=ScriptParams(enter_on_bar=1))
    await h.publish(bar(1), bar(1, "ETHUSDT"), bar(2), bar(2, "ETHUSDT"))
    got = [(s.strategy, s.symbol, s.ts_ms) for s in h.signals]
    assert got == [
        ("second", "ETHUSDT", bar(1).close_time_ms),
        ("first", "BTCUSDT", bar(2).close_time_ms),
        ("first", "ETHUSDT", bar(2).close_time_ms),
    ]
    assert on_two.status()["symbols"]["ETHUSDT"]["bars"] == 2
    assert on_one.bars_handled == 2


async def test_a_failing_symbol_is_disabled_alerted_and_the_rest_keep_running() -> None:
    h = Harness()
    params = ScriptParams(fail_on_bar=1, enter_on_bar=2)
    worker = h.worker("s1", ("BTCUSDT",), params=params)
    other = h.worker("s2", ("BTCUSDT",), params=ScriptParams(enter_on_bar=2))
    await h.publish(bar(1), bar(2))
    assert [s.strategy for s in h.signals] == ["s2"]
    (alert,) = h.alerts
    assert alert.severity is AlertSeverity.CRITICAL
    assert alert.title == "s1/BTCUSDT disabled"
    assert "RuntimeError: boom" in alert.detail
    status = worker.status()["symbols"]["BTCUSDT"]
    assert (status["state"], status["errors"], status["error"]) == (
        "disabled",
        1,
        "RuntimeError: boom",
    )
    assert other.status()["symbols"]["BTCUSDT"]["state"] == "running"
    totals = worker.status()
    assert (totals["bars"], totals["errors"], totals["disabled"]) == (1, 1, 1)
    assert (other.status()["signals"], other.status()["disabled"]) == (1, 0)
    await h.publish(bar(3))
    assert len(h.alerts) == 1  # alerted once, not per event


async def test_bars_of_another_interval_and_books_are_routed_by_what_it_asked_for() -> None:
    h = Harness()
    worker = h.worker()
    five = Kline("BTCUSDT", "5m", T0, T0 + 299_999, *[Decimal(1)] * 6, 1, True)
    await h.publish(five)
    await h.bus.sender(MARKET_BOOK.channel("BTCUSDT")).send(book("BTCUSDT", ts_ms=T0))
    await h.bus.run_until_idle()
    status = worker.status()["symbols"]["BTCUSDT"]
    assert (status["bars"], status["books"]) == (0, 1)


async def test_only_its_own_order_events_reach_it() -> None:
    h = Harness()
    worker = h.worker()
    updates = h.bus.sender(ORDER_UPDATE.channel())
    await updates.send(OrderDenied("someone_else", "BTCUSDT", "x", 1))
    await updates.send(OrderDenied("s1", "SOLUSDT", "not its symbol", 1))
    await updates.send(OrderDenied("s1", "BTCUSDT", "max_position", 1))
    await h.bus.run_until_idle()
    strategy = worker.runners["BTCUSDT"].strategy
    assert isinstance(strategy, Script)
    assert strategy.seen == [("order", "max_position")]


# -- start-up: warm-up, catch-up, snapshots -------------------------------------------------------
async def test_warm_up_fetches_exactly_the_declared_bars_before_live_data() -> None:
    h = Harness()
    history = ListHistory([bar(n) for n in range(10)])
    worker = h.worker(params=ScriptParams(warmup=4, enter_on_bar=5), history=history)
    await worker.start()
    # now is inside bar 10, so bar 9 is the newest closed one: bars 6..9 are the warm-up
    assert history.requests == [("BTCUSDT", bar(6).open_time_ms, bar(9).open_time_ms)]
    runner = worker.runners["BTCUSDT"]
    assert (runner.stats.warmup_bars, runner.warmed_up) == (4, True)
    assert worker.recovery["BTCUSDT"] == "warmed_up"
    await h.publish(bar(9), bar(10))  # bar 9 again from the feed: stale, dropped
    assert runner.stats.stale_bars == 1
    assert [s.ts_ms for s in h.signals] == [bar(10).close_time_ms]


async def test_bars_missed_between_warm_up_and_the_first_live_bar_are_filled_silently() -> None:
    h = Harness()
    history = ListHistory([bar(n) for n in range(14)])
    worker = h.worker(params=ScriptParams(warmup=2, enter_on_bar=4), history=history)
    await worker.start()  # bars 8, 9
    await h.publish(bar(12))  # 10 and 11 closed while the feed was connecting
    assert history.requests[-1] == ("BTCUSDT", bar(10).open_time_ms, bar(11).open_time_ms)
    runner = worker.runners["BTCUSDT"]
    assert runner.stats.warmup_bars == 4
    assert runner.stats.bars == 1
    assert h.signals == []  # the entry came on bar 11, a stale bar: denied, not sent


async def test_without_history_it_warms_up_on_live_bars_and_alerts() -> None:
    h = Harness()
    history = ListHistory([], fail=True)
    worker = h.worker(params=ScriptParams(warmup=2, enter_on_bar=1), history=history)
    await worker.start()
    await h.bus.run_until_idle()
    (alert,) = h.alerts
    assert alert.severity is AlertSeverity.WARNING
    assert "no warm-up history" in alert.title
    assert "ConnectionError" in alert.detail
    assert worker.recovery["BTCUSDT"] == "live_warmup"
    await h.publish(bar(10), bar(11))
    assert h.signals == []
    assert worker.status()["symbols"]["BTCUSDT"]["suppressed_signals"] == 1


async def test_a_restart_resumes_from_the_snapshot_and_fetches_only_missed_bars(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    first = Harness()
    history = ListHistory([bar(n) for n in range(30)])
    params = ScriptParams(warmup=5, enter_on_bar=12)
    worker = first.worker(params=params, history=history, store=JsonSnapshotStore(path))
    await worker.start()
    await first.publish(bar(10), bar(11))
    await worker.save()
    saved = json.loads(path.read_text())
    assert saved["instances"]["s1"]["BTCUSDT"]["last_bar_open_ms"] == bar(11).open_time_ms

    later = Harness(ManualClock(T0 + 15 * STEP + 5))  # bars 12..14 closed while it was down
    history.requests.clear()
    again = later.worker(params=params, history=history, store=JsonSnapshotStore(path))
    await again.start()
    assert history.requests == [("BTCUSDT", bar(12).open_time_ms, bar(14).open_time_ms)]
    assert again.recovery["BTCUSDT"] == "resumed"
    runner = again.runners["BTCUSDT"]
    assert runner.bars_seen == 7 + 3  # 5 warm-up + 2 live, then 3 caught up
    strategy = runner.strategy
    assert isinstance(strategy, Script)
    assert strategy.bars == 10


@pytest.mark.parametrize("damage", ["params", "corrupt", "too_old"])
async def test_an_unusable_snapshot_means_a_full_warm_up(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "state.json"
    h = Harness()
    history = ListHistory([bar(n) for n in range(3000)])
    params = ScriptParams(warmup=3)
    worker = h.worker(params=params, history=history, store=JsonSnapshotStore(path))
    await worker.start()
    await worker.save()
    clock = ManualClock(T0 + 10 * STEP + 1_000)
    if damage == "params":
        params = ScriptParams(warmup=4)
    elif damage == "corrupt":
        path.write_text("{not json")
    else:
        clock = ManualClock(T0 + 2000 * STEP + 1_000)  # more than max_catch_up_bars later
    history.requests.clear()
    store = JsonSnapshotStore(path)
    again = Harness(clock).worker(
        params=params, history=history, store=store, options=WorkerOptions(max_catch_up_bars=100)
    )
    await again.start()
    assert again.recovery["BTCUSDT"] == "warmed_up"
    assert len(history.requests) == 1
    runner = again.runners["BTCUSDT"]
    assert runner.bars_seen == params.warmup
    assert (store.load_error is not None) == (damage == "corrupt")


# -- timers and saving while running ----------------------------------------------------------
class TimerScript(Script):
    def on_bar(self, bar: Kline) -> None:
        super().on_bar(bar)
        self.ctx.set_timer("flat", bar.close_time_ms + 30_000)


async def test_timers_fire_on_the_clock_and_state_is_saved_on_the_way_out(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0 + 1 * STEP)
    h = Harness(clock)
    path = tmp_path / "state.json"
    worker = StrategyWorker(
        instance="s1",
        strategy_cls=TimerScript,
        params=ScriptParams(),
        symbols=("BTCUSDT",),
        interval="1m",
        bus=h.bus,
        clock=clock,
        store=JsonSnapshotStore(path),
        options=WorkerOptions(snapshot_interval_s=3600),
    )
    await h.publish(bar(0))
    task = asyncio.get_running_loop().create_task(worker.run())
    await clock.wait_for_sleepers()
    clock.advance(31)  # past bar 0's close + 30 s
    await clock.wait_for_sleepers()
    await h.bus.run_until_idle()
    assert [(s.action, s.reason) for s in h.signals] == [(SignalAction.EXIT_LONG, "timer flat")]
    assert not path.exists()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert json.loads(path.read_text())["instances"]["s1"]["BTCUSDT"]["bars_seen"] == 1
