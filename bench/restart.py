"""Restart to trading-ready with 100,000 orders in the database.

A SQLite database is filled with `--orders` finished orders (each with one fill, over three
symbols, as a long-running instance leaves them) plus a few open ones, through the real schema
(alembic upgrade) and the recorder's own row mapping. Then the real daemon is built on it, live
executor against the embedded simulator, and the time from `Daemon.run()` to the supervisor's
"running" (every start hook done: schema check, recorder, executor, risk gate, strategies, the
start-up reconciliation with the exchange, feeds started) is measured, `--runs` times.

Target (issue 8): <= 3 s.

    python bench/restart.py [--orders 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog
from sqlalchemy import insert

from app.domain import Fill, OrderStatus, OrderType, OrderUpdated, Side
from app.wiring import build_daemon
from config import load_settings
from database.engine import make_engine
from database.models import FillRow, OrderRow
from database.order_mapping import fill_values, order_values
from database.schema import upgrade
from executor.live import LiveExecutor

TARGET_S = 3.0
SYMBOLS = ("BTCUSDT", "ETHUSDT", "XAAUSDT")
_CHUNK = 10_000


def fill_database(url: str, orders: int) -> None:
    settings = load_settings(None, overrides={"database.url": url}, env={}, dotenv_file=None)
    engine = make_engine(settings.database)
    upgrade(engine)
    with engine.begin() as connection:
        for start in range(0, orders, _CHUNK):
            order_rows, fill_rows = [], []
            for n in range(start, min(start + _CHUNK, orders)):
                symbol = SYMBOLS[n % len(SYMBOLS)]
                cid = f"tb-bench{n:08d}"
                side = Side.BUY if n % 2 == 0 else Side.SELL
                fill = Fill(
                    trade_id=n + 1, client_order_id=cid, symbol=symbol, side=side,
                    price=Decimal("100.25"), quantity=Decimal("0.5"), fee=Decimal("0.05"),
                    fee_asset="USDT", is_maker=False, ts_ms=1_700_000_000_000 + n,
                    exchange_order_id=n + 1,
                )  # fmt: skip
                update = OrderUpdated(
                    cid, symbol, side, OrderType.MARKET, OrderStatus.FILLED, Decimal("0.5"),
                    Decimal("0.5"), fill.ts_ms, average_fill_price=Decimal("100.25"),
                    exchange_order_id=n + 1, strategy="flip",
                )  # fmt: skip
                order_rows.append(order_values(update))
                fill_rows.append(fill_values(fill, strategy="flip"))
            connection.execute(insert(OrderRow), order_rows)
            connection.execute(insert(FillRow), fill_rows)
    engine.dispose()


async def time_to_ready(folder: Path, url: str) -> float:
    overrides: dict[str, object] = {
        "exchange.symbols": list(SYMBOLS),
        "executor.mode": "live",
        "database.url": url,
        "sim.port": 0,
        "sim.state_file": "",
        "sim.history_bars": 50,
        "health.heartbeat_path": str(folder / "hb.json"),
        "health.systemd_notify": False,
        "logging.file": "",
        "runtime.control_socket": str(folder / "c.sock"),
        "risk.state_file": str(folder / "risk.json"),
        "strategies.snapshot_file": str(folder / "strategies.json"),
    }
    settings = load_settings(None, overrides=overrides, env={}, dotenv_file=None)
    daemon = build_daemon(settings)
    ready = asyncio.Event()
    daemon.supervisor.on_running(ready.set)
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        running = group.create_task(daemon.run(install_signal_handlers=False))
        await ready.wait()
        elapsed = time.perf_counter() - started
        daemon.supervisor.request_shutdown("benchmark done")
    running.result()
    executor = daemon.trading.executor
    if not isinstance(executor, LiveExecutor) or executor.last_reconciliation is None:
        raise SystemExit("the daemon became ready without reconciling with the exchange")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with tempfile.TemporaryDirectory(prefix="tbrestart") as name:
        folder = Path(name)
        url = f"sqlite:///{folder / 'tradebus.db'}"
        began = time.perf_counter()
        fill_database(url, args.orders)
        print(f"database filled             {args.orders:,} orders + fills in "
              f"{time.perf_counter() - began:.1f} s")  # fmt: skip
        times = [asyncio.run(time_to_ready(folder, url)) for _ in range(args.runs)]
    print("restart to trading-ready    " + ", ".join(f"{t:.2f} s" for t in times))
    median = statistics.median(times)
    print(f"median                      {median:.2f} s   (target <= {TARGET_S} s)")
    print("target met" if max(times) <= TARGET_S else "TARGET MISSED")


if __name__ == "__main__":
    main()
