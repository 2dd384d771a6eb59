"""Trade management inside the strategy worker, assembled from the config file as the daemon
does it: sized entries on `signal.<instance>`, refusals back to the strategy, exits on bars,
positions from order updates, state across a restart — and the shipped logistic model deciding
entries end to end."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from app.bus import ORDER_UPDATE
from app.domain import Kline, ManualClock, OrderUpdated, Side, SignalAction
from app.strategy_wiring import StrategyConfigError, build_strategy_workers, resolve_strategy_runs
from config.loader import ConfigError, load_settings, render_effective
from config.settings import Settings
from strategies.runner import StrategyFailure
from strategies.snapshots import JsonSnapshotStore
from strategies.worker import TRADE_STATE_KEY, StrategyWorker
from tests.strategies.test_runner import Script
from tests.strategies.test_strategy_config import registry_of
from tests.strategies.test_worker import Harness
from tests.strategies.trade_support import STEP, T0, filled, ohlc

REPO = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = REPO / "config" / "models" / "entry_logistic.json"

EXCHANGE = '[exchange]\nsymbols = ["BTCUSDT", "ETHUSDT"]\nkline_intervals = ["1m"]\n'
RUN = """
[[strategies.run]]
strategy = "script"
name = "s1"
symbols = ["BTCUSDT"]
params = {{ enter_on_bar = {enter_on_bar}, re_enter_on_denial = {re_enter} }}

[strategies.run.trade]
capital = "10000"
atr_period = 5
adx_period = 5

[strategies.run.trade.sizer]
type = "fixed_fraction"
fraction = 0.2

[strategies.run.trade.exits]
[[strategies.run.trade.exits.rules]]
type = "fixed"
stop_loss_pct = 1.0
"""


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "tradebus.toml"
    path.write_text(EXCHANGE + text, encoding="utf-8")
    return load_settings(path, env={}, dotenv_file=None)


def rising(n: int) -> Kline:
    """A steady up-trend (ADX high) one point per bar from 100."""
    base = 100.0 + n
    return ohlc(n, base, base + 1.2, base - 0.2, base + 1.0)


def worker_from(
    tmp_path: Path,
    harness: Harness,
    extra: str = "",
    *,
    enter_on_bar: int = 30,
    re_enter: bool = False,
    store: JsonSnapshotStore | None = None,
) -> StrategyWorker:
    text = RUN.format(enter_on_bar=enter_on_bar, re_enter=str(re_enter).lower()) + extra
    settings = settings_from(tmp_path, text)
    runs = resolve_strategy_runs(settings, registry_of(Script))
    (worker,) = build_strategy_workers(
        runs, settings, bus=harness.bus, clock=harness.clock, history=None
    )
    worker.store = store
    return worker


async def fill(harness: Harness, update: OrderUpdated) -> None:
    await harness.bus.sender(ORDER_UPDATE.channel()).send(update)
    await harness.bus.run_until_idle()


async def test_entry_sized_filled_and_stopped_out_through_the_bus(tmp_path: Path) -> None:
    h = Harness(ManualClock(T0))
    worker = worker_from(tmp_path, h)
    await h.publish(*[rising(n) for n in range(30)])
    (entry,) = h.signals
    close = 100.0 + 29 + 1.0  # bar 30 is number 29 (0-based): close 130
    assert entry.action is SignalAction.ENTER_LONG
    assert entry.size_hint == Decimal(f"{0.2 * 10_000 / close:.12g}")
    assert "sizer:fixed_fraction" in entry.tags
    await fill(h, filled(side=Side.BUY, quantity=str(entry.size_hint), price="130",
                         trade_id=1, ts_ms=T0 + 30 * STEP + 2, signal_id=entry.signal_id,
                         strategy="s1"))  # fmt: skip
    assert worker.runners["BTCUSDT"].ctx.position == entry.size_hint
    # stop 1 % below 130 = 128.7
    await h.publish(ohlc(30, 130, 130.5, 128.5, 129))
    exit_signal = h.signals[-1]
    assert (exit_signal.action, exit_signal.reason) == (
        SignalAction.EXIT_LONG,
        "fixed: stop-loss 128.7",
    )
    assert exit_signal.size_hint == entry.size_hint
    await fill(h, filled(side=Side.SELL, quantity=str(entry.size_hint), price="128.7",
                         trade_id=2, ts_ms=T0 + 31 * STEP + 2, signal_id=exit_signal.signal_id,
                         client_order_id="c-2", strategy="s1"))  # fmt: skip
    trade = worker.status()["trade"]
    assert (trade["closed_trades"], trade["open_positions"], trade["exits"]) == (
        1,
        [],
        {"fixed": 1},
    )
    assert worker.runners["BTCUSDT"].ctx.position == 0


async def test_a_refusal_reaches_the_strategy_and_a_stubborn_strategy_is_cut_off(
    tmp_path: Path,
) -> None:
    h = Harness(ManualClock(T0))
    never = '\n[[strategies.run.trade.filters]]\ntype = "time_window"\ndays = ["sun"]\n'
    worker = worker_from(tmp_path, h, never, re_enter=True)  # T0 is a Tuesday
    await h.publish(*[rising(n) for n in range(30)])
    assert h.signals == []
    strategy = worker.runners["BTCUSDT"].strategy
    assert isinstance(strategy, Script)
    refusals = [reason for kind, reason in strategy.seen if kind == "order"]
    assert refusals[0].startswith("time_window: time_window: Tue")
    assert len(refusals) == 8  # answered with a new entry each time: cut after 8 rounds
    assert worker.status()["trade"]["refusals"] == {"time_window": 8}


async def test_exits_keep_working_when_the_strategy_copy_is_disabled(tmp_path: Path) -> None:
    h = Harness(ManualClock(T0))
    worker = worker_from(tmp_path, h)
    await h.publish(*[rising(n) for n in range(30)])
    (entry,) = h.signals
    await fill(h, filled(side=Side.BUY, quantity=str(entry.size_hint), price="130",
                         trade_id=1, ts_ms=T0 + 30 * STEP + 2, signal_id=entry.signal_id,
                         strategy="s1"))  # fmt: skip
    runner = worker.runners["BTCUSDT"]
    runner.failure = StrategyFailure("bar", 0, "RuntimeError: test")
    await h.publish(ohlc(30, 130, 130.5, 128.5, 129))
    assert h.signals[-1].reason == "fixed: stop-loss 128.7"


async def test_positions_and_their_exit_state_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    h = Harness(ManualClock(T0))
    trailing = """
[[strategies.run.trade.exits.rules]]
type = "trailing"
trail_pct = 2.0
"""
    worker = worker_from(tmp_path, h, trailing, store=JsonSnapshotStore(path))
    await h.publish(*[rising(n) for n in range(30)])
    (entry,) = h.signals
    await fill(h, filled(side=Side.BUY, quantity=str(entry.size_hint), price="130",
                         trade_id=1, ts_ms=T0 + 30 * STEP + 2, signal_id=entry.signal_id,
                         strategy="s1"))  # fmt: skip
    await h.publish(ohlc(30, 130, 140, 129.9, 139))  # peak 140: trailing stop 137.2
    await worker.save()
    saved = json.loads(path.read_text())["instances"]["s1"][TRADE_STATE_KEY]
    assert saved["positions"][0]["metadata"]["trailing"]["extreme"] == 140.0

    later = Harness(ManualClock(T0 + 31 * STEP + 1))
    again = worker_from(tmp_path, later, trailing, store=JsonSnapshotStore(path))
    await again.start()
    assert again.trade is not None
    assert len(again.trade.positions) == 1
    await later.publish(ohlc(31, 139, 139.5, 137, 137.5))
    (exit_signal,) = later.signals
    assert exit_signal.reason == "trailing: trailing stop 137.2 (peak 140)"


async def test_the_shipped_logistic_model_decides_entries_end_to_end(tmp_path: Path) -> None:
    h = Harness(ManualClock(T0))
    model = f'\n[strategies.run.trade.model]\nfile = "{SHIPPED_MODEL.as_posix()}"\n'
    worker = worker_from(tmp_path, h, model)
    await h.publish(*[rising(n) for n in range(30)])
    (entry,) = h.signals
    decided = [t for t in entry.tags if t.startswith("model:")]
    assert decided
    assert decided[0].split(":")[2] in ("enter", "reduce_size")
    assert entry.size_hint is not None
    assert 0 < entry.size_hint <= Decimal(f"{0.2 * 10_000 / 130.0:.12g}")
    status = worker.status()["trade"]
    assert (status["entries"], status["entries_sent"]) == (1, 1)


def test_trade_settings_errors_name_the_field(tmp_path: Path) -> None:
    bad = """
[[strategies.run]]
strategy = "script"
[strategies.run.trade]
capital = "0"
[strategies.run.trade.sizer]
type = "martingale"
[[strategies.run.trade.filters]]
type = "regime"
allow = "sideways"
"""
    with pytest.raises(ConfigError) as info:
        settings_from(tmp_path, bad)
    fields = {p.field for p in info.value.problems}
    assert "strategies.run.0.trade.capital" in fields
    assert any(f.startswith("strategies.run.0.trade.sizer") for f in fields)
    assert any(f.startswith("strategies.run.0.trade.filters.0") for f in fields)


def test_a_model_file_that_does_not_load_is_a_startup_error(tmp_path: Path) -> None:
    broken = tmp_path / "model.json"
    broken.write_text('{"weights": {"close": 1.0}}', encoding="utf-8")
    text = RUN.format(enter_on_bar=1, re_enter="false")
    text += f'\n[strategies.run.trade.model]\nfile = "{broken.as_posix()}"\n'
    settings = settings_from(tmp_path, text)
    with pytest.raises(StrategyConfigError) as info:
        resolve_strategy_runs(settings, registry_of(Script))
    ((field, reason),) = info.value.problems
    assert field == "strategies.run.0.trade.model.file"
    assert "close" in reason


def test_a_model_needs_a_sizer(tmp_path: Path) -> None:
    text = f"""
[[strategies.run]]
strategy = "script"
[strategies.run.trade]
capital = "100"
[strategies.run.trade.model]
file = "{SHIPPED_MODEL.as_posix()}"
"""
    with pytest.raises(ConfigError) as info:
        settings_from(tmp_path, text)
    assert {p.field for p in info.value.problems} == {"strategies.run.0.trade.sizer"}


def test_the_effective_config_renders_trade_tables_that_load_back(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, RUN.format(enter_on_bar=1, re_enter="false"))
    text = render_effective(settings)
    assert "[strategies.run.trade.sizer]" in text
    assert "[[strategies.run.trade.exits.rules]]" in text
    again = tmp_path / "again.toml"
    again.write_text(text, encoding="utf-8")
    assert load_settings(again, env={}, dotenv_file=None).strategies == settings.strategies
