"""`tradebus run` with no config: the daemon against its embedded simulator, end to end.

The real wiring (default settings but a free port and a temporary state file): the
simulator starts listening before the feed asks it for exchangeInfo, market data reaches the
bus at once (a book ticker within the first second of simulated real time, the kline history
is served), the heartbeat has a ``sim`` section, and a second daemon on the same state file
continues the same simulated market and account.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.bus import MARKET_BOOK, MARKET_KLINE
from app.domain.market import BookTicker, Kline
from app.runtime import ComponentSpec, ExitCode, Stage
from app.wiring import StartupConfigError, build_daemon
from config import Settings, load_settings
from exchange.sim.server import bind_socket

# Real seconds after which the test gives up on a defect (data arrives in about one second).
DEFECT_BOUND_S = 20.0


def default_settings(tmp_path: Path, **extra: object) -> Settings:
    overrides: dict[str, object] = {
        "sim.port": 0,
        "sim.state_file": str(tmp_path / "sim_state.json"),
        "health.heartbeat_path": str(tmp_path / "hb.json"),
        "database.url": f"sqlite:///{tmp_path / 'tradebus.db'}",
        "logging.file": str(tmp_path / "t.log"),
        "strategies.snapshot_file": str(tmp_path / "strategy_state.json"),
        **extra,
    }
    # No config file, no environment: what a fresh clone runs, but on a free port.
    return load_settings(None, overrides=overrides, env={}, dotenv_file=None)


async def test_default_run_streams_market_data_from_the_embedded_simulator(
    tmp_path: Path,
) -> None:
    settings = default_settings(tmp_path)
    daemon = build_daemon(settings)
    tickers: list[BookTicker] = []
    klines: list[Kline] = []
    flowing = asyncio.Event()

    async def on_book(ticker: BookTicker) -> None:
        tickers.append(ticker)
        if {t.symbol for t in tickers} == {"BTCUSDT", "ETHUSDT"}:
            flowing.set()

    async def on_kline(kline: Kline) -> None:
        klines.append(kline)

    daemon.bus.subscribe(MARKET_BOOK.any(), on_book, subscriber="probe")
    daemon.bus.subscribe(MARKET_KLINE.any(), on_kline, subscriber="probe")
    daemon.supervisor.add(ComponentSpec("probe", Stage.STRATEGY))
    async with asyncio.TaskGroup() as group:
        running = group.create_task(daemon.run(install_signal_handlers=False))
        try:
            await asyncio.wait_for(flowing.wait(), timeout=DEFECT_BOUND_S)
            heartbeat = daemon.health.snapshot()
        finally:
            daemon.supervisor.request_shutdown("test done")
    assert running.result() == ExitCode.OK
    assert all(t.bid_price < t.ask_price for t in tickers)
    assert {k.symbol for k in klines} <= {"BTCUSDT", "ETHUSDT"}
    sim = heartbeat["sim"]
    assert sim["spot"]["requests"] >= 2  # time sync and exchangeInfo, at least
    assert sim["spot"]["stream_connections"] == 1
    assert heartbeat["venue"]["rest"]["base_url"].startswith("http://127.0.0.1:")
    state = json.loads((tmp_path / "sim_state.json").read_text())
    assert state["state"]["spot"]["market_ms"] > 0  # saved on the way out


async def test_a_restart_reads_the_saved_state_and_refuses_another_seed(tmp_path: Path) -> None:
    """The state file written by one run is read by the next (same seed and symbols); the
    account's continuity itself is shown in tests/sim/test_sim_state.py."""
    origins = []
    for _ in range(2):
        daemon = build_daemon(default_settings(tmp_path))
        started = asyncio.Event()
        daemon.supervisor.on_running(started.set)
        async with asyncio.TaskGroup() as group:
            running = group.create_task(daemon.run(install_signal_handlers=False))
            await asyncio.wait_for(started.wait(), timeout=DEFECT_BOUND_S)
            daemon.supervisor.request_shutdown("test done")
        assert running.result() == ExitCode.OK
        origins.append(json.loads((tmp_path / "sim_state.json").read_text())["state"]["origin_ms"])
    assert origins[0] == origins[1]  # the second run continued the first run's market
    # Another seed cannot continue that market: refused at start-up, with the reason.
    with pytest.raises(StartupConfigError, match="seed"):
        build_daemon(default_settings(tmp_path, **{"sim.seed": 7}))


def test_a_taken_port_is_a_startup_error_naming_the_setting(tmp_path: Path) -> None:
    taken = bind_socket("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(StartupConfigError, match=r"sim\.port"):
            build_daemon(default_settings(tmp_path, **{"sim.port": port}))
    finally:
        taken.close()
