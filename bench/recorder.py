"""Recorder throughput into SQLite, the event loop's lag meanwhile, and write-ahead latency.

Targets (issue 8):
    order-update rows/s into SQLite    >= 20,000
    event-loop lag p99 while writing   <= 10 ms
    record_intent latency p50/p99      reported (what write-ahead adds before each order)

Order updates go through a real live bus (`order.update`, the recorder's own subscription and
delivery task) into a fresh SQLite file (WAL, synchronous=NORMAL, the shipped defaults); the
rate is counted from the first publish until everything is committed. A timer task samples the
loop's lag every millisecond throughout. Then intents are recorded one at a time, as the
executor does before each order (through the intent journal, as the live daemon does).

    python bench/recorder.py [--updates 200000] [--intents 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from app.bus import ORDER_UPDATE, Bus
from app.domain import (
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
    SystemClock,
)
from config.database import DatabaseSettings
from database.engine import make_engine
from database.intent_journal import IntentJournal, journal_path
from database.recorder import Recorder
from database.schema import upgrade


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _updates(count: int) -> list[OrderUpdated]:
    """Half the orders' NEW, then their FILLED: every update is an upsert of an order row."""
    orders = count // 2
    price, quantity = Decimal("42123.45"), Decimal("0.00150000")
    new = [
        OrderUpdated(
            f"tb-{n}", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, quantity,
            Decimal(0), n, price=price, exchange_order_id=n, strategy="bench",
            signal_id=None, purpose=OrderPurpose.ENTRY,
        )
        for n in range(orders)
    ]  # fmt: skip
    filled = [
        OrderUpdated(
            f"tb-{n}", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.FILLED, quantity,
            quantity, n + 1, price=price, average_fill_price=price, exchange_order_id=n,
            strategy="bench", purpose=OrderPurpose.ENTRY,
        )
        for n in range(orders)
    ]  # fmt: skip
    return new + filled


async def _sample_lag(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - before - 0.001) * 1000.0)


async def bench(path: Path, updates: int, intents: int) -> None:
    settings = DatabaseSettings(url=f"sqlite:///{path}")
    engine = make_engine(settings)
    upgrade(engine)
    bus = Bus()
    # As the live daemon wires it: intents go to the local journal first (database.intent_journal).
    journal = IntentJournal(journal_path(settings))
    recorder = Recorder(
        bus=bus, clock=SystemClock(), engine=engine, settings=settings, journal=journal
    )
    sender = bus.sender(ORDER_UPDATE.channel())
    messages = _updates(updates)
    lags: list[float] = []
    stop = asyncio.Event()
    gc.collect()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(recorder.run())
        await recorder.start()
        deliveries = [group.create_task(s.deliver()) for s in bus.subscriptions("recorder")]
        sampler = group.create_task(_sample_lag(lags, stop))
        await asyncio.sleep(0.05)  # a few idle samples: the loop's own baseline
        started = time.perf_counter()
        for message in messages:
            await sender.send(message)
        inbox = bus.subscriptions("recorder")[0]
        # The bus shows an inbox's depth, not an event: let the delivery task take the rest.
        while inbox.depth:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        await recorder.flush()
        elapsed = time.perf_counter() - started
        stop.set()
        await sampler
        status = recorder.status()

        intent_ms: list[float] = []
        for n in range(intents):
            order = SubmitOrder(
                f"in-{n}", "bench", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.001"), n,
                price=Decimal("42000"),
            )  # fmt: skip
            before = time.perf_counter()
            await recorder.record_intent(order)
            intent_ms.append((time.perf_counter() - before) * 1000.0)
        for task in (run, *deliveries):
            task.cancel()
    engine.dispose()
    size_mb = path.stat().st_size / 1e6  # noqa: ASYNC240 - after the measurement

    print(f"order updates          {updates:,} into SQLite ({size_mb:.1f} MB)")
    print(f"rows/s                 {updates / elapsed:,.0f}   (target >= 20,000)")
    print(
        f"batches                {status['batches']:,}; write ms last/p99/max "
        f"{status['write_ms']['last']:.1f} / {status['write_ms']['p99']:.1f} / "
        f"{status['write_ms']['max']:.1f}"
    )
    print(
        f"loop lag ms            p50 {_pct(lags, 0.5):.2f}  p99 {_pct(lags, 0.99):.2f}  "
        f"max {max(lags):.2f}   ({len(lags):,} samples; target p99 <= 10)"
    )
    print(
        f"record_intent ms       p50 {_pct(intent_ms, 0.5):.2f}  p99 {_pct(intent_ms, 0.99):.2f}"
        f"  max {max(intent_ms):.2f}   ({intents:,} intents, one at a time)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200_000)
    parser.add_argument("--intents", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(bench(Path(folder) / "bench.db", args.updates, args.intents))


if __name__ == "__main__":
    main()
