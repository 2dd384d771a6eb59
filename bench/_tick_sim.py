"""The simulator half of bench/tick_to_trade.py, in its own process (as an exchange would be).

Serves the simulator described by the bench's settings on the given port with two probes: the
instant each closed kline frame is written to a client's socket, and the instant each order
placement arrives. On SIGTERM it writes every (close → order) latency to the output file.

    python bench/_tick_sim.py SETTINGS_JSON PORT OUTPUT
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import SystemClock
from app.sim_venue import sim_options
from config import load_settings
from exchange.sim.server import SimExchange


class Probe:
    """Pairs each order arriving with its symbol's last closed kline frame."""

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


async def serve(overrides: dict[str, object], port: int, output: Path) -> None:
    overrides = {**overrides, "sim.port": port}
    settings = load_settings(None, overrides=overrides, env={}, dotenv_file=None)
    sim = SimExchange(sim_options(settings), clock=SystemClock())
    probe = Probe()
    sim.spot.streams.on_frame_sent = probe.on_frame_sent
    sim.spot.gateway.on_order_received = probe.on_order_received
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with sim.serving(), asyncio.TaskGroup() as group:
        task = group.create_task(sim.run())
        await stop.wait()
        task.cancel()
    output.write_text(  # noqa: ASYNC240 - once, after the measurement
        json.dumps(
            {
                "latencies_ms": probe.latencies_ms,
                "closes": probe.closes,
                "orders": probe.orders,
                "unpaired": probe.unpaired,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(serve(json.loads(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
