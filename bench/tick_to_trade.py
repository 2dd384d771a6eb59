"""Tick-to-trade: from the simulator sending the closing kline that triggers a signal to the
simulator receiving the order, through the whole daemon, while it streams 50 symbols.

The real wiring (`app.wiring.build_daemon`) with the live executor against the embedded
simulator on loopback: market stream → feed → `market.kline.<SYM>` → strategy worker →
`signal.*` → risk gate → `order.request` → live executor → signed REST POST → simulator.
Every symbol runs `sma_cross` with fast=1/slow=2 (long only), so about every other closed bar
of each symbol turns into an entry or an exit order. Bars of all 50 symbols close at the same
instant, as 1m bars do on Binance, so each close is a burst of about 25 orders.

Timestamps come from the simulator's probes, in this process (perf_counter_ns): the instant a
closed kline frame was written to the daemon's socket, and the instant an order placement for
that symbol arrived at the simulator's gateway. Simulator, daemon and clients share one event
loop and one core's worth of Python here, so the figure includes the simulator's own work.

Targets (issue 7): p50 <= 2 ms, p99 <= 10 ms.

    python bench/tick_to_trade.py [--symbols 50] [--bars 40] [--speed 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from app.runtime import ExitCode
from app.wiring import build_daemon
from config import Settings, load_settings

TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0


def bench_symbols(count: int) -> list[str]:
    """BTCUSDT and ETHUSDT, then made-up USDT pairs the simulator derives rules for."""
    names = ["BTCUSDT", "ETHUSDT"]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    index = 0
    while len(names) < count:
        names.append(f"X{letters[index // 26]}{letters[index % 26]}USDT")
        index += 1
    return names[:count]


def bench_settings(folder: Path, symbols: list[str], speed: float) -> Settings:
    overrides: dict[str, object] = {
        "executor.mode": "live",
        "exchange.symbols": symbols,
        "exchange.kline_intervals": ["1m"],
        "sim.port": 0,
        "sim.speed": speed,
        "sim.updates_per_bar": 4,
        "sim.history_bars": 5,
        "sim.state_file": "",
        "sim.spot_balances": {"USDT": "100000000"},
        "health.heartbeat_path": str(folder / "heartbeat.json"),
        "logging.file": "",
        "logging.level": "WARNING",
        "runtime.control_socket": str(folder / "c.sock"),
        "risk.state_file": str(folder / "risk.json"),
        "risk.orders.default_entry_notional": "50",
        "strategies.snapshot_file": str(folder / "strategies.json"),
        "strategies.run": [
            {
                "strategy": "sma_cross",
                "name": "flip",
                "params": {"fast": 1, "slow": 2, "allow_short": False},
            }
        ],
    }
    return load_settings(None, overrides=overrides, env={}, dotenv_file=None)


class Probe:
    """Pairs each order arriving at the simulator with its symbol's last closed kline frame."""

    def __init__(self) -> None:
        self.closed_sent_ns: dict[str, int] = {}
        self.latencies_ms: list[float] = []
        self.closes = 0
        self.orders = 0
        self.unpaired = 0

    def on_frame_sent(self, text: str) -> None:
        if '"x":true' not in text:
            return
        now = time.perf_counter_ns()
        frame = json.loads(text)
        data = frame.get("data", frame)
        symbol = data.get("s")
        if data.get("e") == "kline" and isinstance(symbol, str):
            self.closed_sent_ns[symbol] = now
            self.closes += 1

    def on_order_received(self, params: Mapping[str, str]) -> None:
        now = time.perf_counter_ns()
        self.orders += 1
        sent = self.closed_sent_ns.pop(params.get("symbol", ""), None)
        if sent is None:
            self.unpaired += 1  # a retry, or a second order from one close
            return
        self.latencies_ms.append((now - sent) / 1e6)


async def measure(symbols: list[str], bars: int, speed: float) -> Probe:
    probe = Probe()
    with tempfile.TemporaryDirectory(prefix="tt") as folder:
        daemon = build_daemon(bench_settings(Path(folder), symbols, speed))
        sim = daemon.sim
        assert sim is not None
        sim.spot.streams.on_frame_sent = probe.on_frame_sent
        sim.spot.gateway.on_order_received = probe.on_order_received
        bar_s = 60.0 / speed
        async with asyncio.TaskGroup() as group:
            running = group.create_task(daemon.run(install_signal_handlers=False))
            # Run for the requested number of bar closes after the warm-up bars.
            await asyncio.sleep(bar_s * (bars + 3))
            daemon.supervisor.request_shutdown("benchmark done")
        code = running.result()
        if code is not ExitCode.OK:
            raise SystemExit(f"daemon stopped with exit code {int(code)}")
    return probe


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--bars", type=int, default=40, help="bar closes to measure")
    parser.add_argument("--speed", type=float, default=30.0, help="simulated seconds per second")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    symbols = bench_symbols(args.symbols)
    probe = asyncio.run(measure(symbols, args.bars, args.speed))
    values = probe.latencies_ms
    if not values:
        raise SystemExit("no order reached the simulator")
    p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
    print(f"symbols streamed           {len(symbols)}")
    print(f"closed klines sent         {probe.closes}")
    print(f"orders received            {probe.orders} ({probe.unpaired} not paired with a close)")
    print(f"tick-to-trade p50          {p50:.3f} ms   (target <= {TARGET_P50_MS} ms)")
    print(f"tick-to-trade p90          {percentile(values, 0.90):.3f} ms")
    print(f"tick-to-trade p99          {p99:.3f} ms   (target <= {TARGET_P99_MS} ms)")
    print(f"tick-to-trade max          {max(values):.3f} ms")
    print(f"tick-to-trade mean         {statistics.fmean(values):.3f} ms")
    ok = p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()
