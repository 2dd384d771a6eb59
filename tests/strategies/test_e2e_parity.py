"""End to end against the simulator: the daemon warms its strategies up from the simulator's
klines endpoint, streams closed klines for several symbols over WebSocket, and the signals
published on `signal.*` are exactly those the same strategies emit when fed the same closed
klines directly (parity), instance by instance and symbol by symbol, ids included.

The simulator runs at speed "max" (the market moves as fast as the feed reads), so a few
hundred bars per symbol take seconds. Book tickers are off, so every decision depends only on
closed klines, which is what the direct feeding reproduces.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.bus import MARKET_KLINE, SIGNAL
from app.domain import Kline, Signal
from app.runtime import ComponentSpec, ExitCode, Stage
from app.strategy_wiring import resolve_strategy_runs
from app.wiring import build_daemon
from config import Settings, load_settings
from exchange.binance.futures import FuturesClient
from exchange.binance.kline_gaps import interval_ms
from exchange.binance.spot import SpotClient
from strategies.runner import StrategyRunner

pytestmark = pytest.mark.slow

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
LIVE_BARS = 240  # closed bars per symbol streamed before the daemon is stopped
DEFECT_BOUND_S = 60.0
STEP_MS = interval_ms("1m") or 60_000

RUNS: list[dict[str, Any]] = [
    {
        "strategy": "vwap_reversion",
        "name": "vwap",
        "params": {
            "band_mult": 1.0,
            "adx_period": 5,
            "adx_max": 60.0,
            "adx_exit": 80.0,
            "min_session_bars": 3,
            "min_band_bps": 0.0,
        },
    },
    {
        "strategy": "momentum",
        "name": "mom_fast",
        "params": {"fast": 3, "slow": 8, "breakout_bars": 5, "exit_bars": 3},
    },
    {
        "strategy": "momentum",
        "name": "mom_pair",
        "symbols": ["ETHUSDT", "SOLUSDT"],
        "params": {"fast": 5, "slow": 13, "breakout_bars": 8, "exit_bars": 4},
    },
]


def parity_settings(tmp_path: Path) -> Settings:
    overrides: dict[str, object] = {
        "exchange.symbols": list(SYMBOLS),
        "exchange.book_ticker": False,
        "sim.port": 0,
        "sim.speed": "max",
        "sim.updates_per_bar": 2,
        "sim.state_file": "",
        "health.heartbeat_path": str(tmp_path / "hb.json"),
        "database.url": f"sqlite:///{tmp_path / 'tradebus.db'}",
        "logging.file": "",
        "strategies.snapshots": False,
        "strategies.run": RUNS,
        # Shadow mode: no orders, so no fill or denial feeds back into the strategies and the
        # direct feeding below sees exactly what the workers saw.
        "executor.mode": "off",
    }
    return load_settings(None, overrides=overrides, env={}, dotenv_file=None)


async def test_bus_signals_equal_direct_feeding_of_the_same_closed_klines(
    tmp_path: Path,
) -> None:
    settings = parity_settings(tmp_path)
    daemon = build_daemon(settings)
    published: dict[tuple[str, str], list[Signal]] = defaultdict(list)
    closed: dict[str, list[Kline]] = defaultdict(list)
    history: dict[str, list[Kline]] = {}
    enough = asyncio.Event()

    async def on_signal(signal: Signal) -> None:
        published[(signal.strategy, signal.symbol)].append(signal)

    async def on_kline(kline: Kline) -> None:
        if kline.closed:
            closed[kline.symbol].append(kline)
            if all(len(closed[s]) >= LIVE_BARS for s in SYMBOLS):
                enough.set()

    daemon.bus.subscribe(SIGNAL.any(), on_signal, subscriber="probe")
    daemon.bus.subscribe(MARKET_KLINE.any(), on_kline, subscriber="probe")
    daemon.supervisor.add(ComponentSpec("probe", Stage.RISK))
    # The daemon's own REST client to the simulator, for an independent history fetch.
    venue_client = daemon.venue.client

    async with asyncio.TaskGroup() as group:
        running = group.create_task(daemon.run(install_signal_handlers=False))
        try:
            await asyncio.wait_for(enough.wait(), timeout=DEFECT_BOUND_S)
            for symbol in SYMBOLS:
                first_live = closed[symbol][0].open_time_ms
                # Everything before the first streamed bar: the warm-up the workers fetched.
                history[symbol] = await _closed_history(venue_client, symbol, end=first_live)
        finally:
            daemon.supervisor.request_shutdown("parity test done")
    assert running.result() == ExitCode.OK

    runs = resolve_strategy_runs(settings)
    total = 0
    for run in runs:
        for symbol in run.symbols:
            live = closed[symbol]
            _assert_contiguous(history[symbol] + live)
            direct = StrategyRunner(
                run.strategy_cls,
                run.params,
                instance=run.instance,
                symbol=symbol,
                interval=run.interval,
            )
            direct.warm_up(history[symbol][-direct.strategy.warmup_bars :])
            expected = [s for bar in live for s in direct.on_kline(bar)]
            assert published[(run.instance, symbol)] == expected, (run.instance, symbol)
            total += len(expected)
        assert any(published[(run.instance, s)] for s in run.symbols), run.instance
    print(f"parity: {total} signals from {sum(len(b) for b in closed.values())} streamed bars")
    assert total >= 20  # the parity is about real signals, not two empty lists
    heartbeat = daemon.health.snapshot()["strategies"]
    assert heartbeat["vwap"]["symbols"]["BTCUSDT"]["recovery"] == "warmed_up"
    assert set(heartbeat["mom_pair"]["symbols"]) == {"ETHUSDT", "SOLUSDT"}
    assert all(
        entry["errors"] == 0 and entry["bars"] >= LIVE_BARS
        for instance in heartbeat.values()
        for entry in instance["symbols"].values()
    )


async def _closed_history(
    client: SpotClient | FuturesClient, symbol: str, *, end: int
) -> list[Kline]:
    bars: list[Kline] = []
    cursor = end - 2000 * STEP_MS
    while cursor < end:
        page = await client.klines(symbol, "1m", start_ms=cursor, end_ms=end - 1, limit=1000)
        if not page:
            break
        # Bars ahead of the wall clock are "not closed" by the client's reckoning, but at
        # speed "max" the market is ahead of it: every bar before `end` has closed.
        bars.extend(replace(bar, closed=True) for bar in page if bar.open_time_ms < end)
        cursor = page[-1].open_time_ms + 1
    return bars


def _assert_contiguous(bars: list[Kline]) -> None:
    opens = [bar.open_time_ms for bar in bars]
    assert opens == list(range(opens[0], opens[0] + STEP_MS * len(opens), STEP_MS))
