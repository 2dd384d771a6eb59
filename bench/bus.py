"""Bus throughput and per-hop latency, against raw asyncio.Queue hops in the same run.

Pipeline (no-op handlers, one pre-built message per stage):
    market.kline.X -> strategy -> signal.bench -> risk -> order.request -> executor
    -> order.update -> recorder
Prints end-to-end messages/s and per-hop latency p50/p99 (sampled every SAMPLE_EVERY-th
message, publish to handler start), the same for four raw `asyncio.Queue` hops, and a fan-out
case with three subscribers.

    python bench/bus.py [--messages 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from decimal import Decimal
from typing import Any

from app.bus import (
    MARKET_KLINE,
    ORDER_REQUEST,
    ORDER_UPDATE,
    SIGNAL,
    Bus,
)
from app.domain import (
    Kline,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    Signal,
    SignalAction,
    SubmitOrder,
)

SAMPLE_EVERY = 64
CAPACITY = 1024
HOPS = ("market->strategy", "signal->risk", "request->executor", "update->recorder")


def _klines(count: int) -> list[Kline]:
    one = Decimal("1")
    return [
        Kline("BTCUSDT", "1m", i, i + 59_999, one, one, one, one, one, one, i, True)
        for i in range(count)
    ]


SIGNAL_MSG = Signal("bench", "BTCUSDT", SignalAction.ENTER_LONG, 0, "s")
ORDER_MSG = SubmitOrder("c", "bench", "BTCUSDT", Side.BUY, OrderType.MARKET, Decimal(1), 0)
UPDATE_MSG = OrderUpdated(
    "c", "BTCUSDT", Side.BUY, OrderType.MARKET, OrderStatus.NEW, Decimal(1), Decimal(0), 0
)


class Stamps:
    """Publish times of sampled messages per hop; handlers look up their own hop's stamp."""

    def __init__(self, count: int) -> None:
        self.sent = [[0] * (count // SAMPLE_EVERY + 1) for _ in HOPS]
        self.lat: list[list[int]] = [[] for _ in HOPS]

    def send(self, hop: int, seq: int) -> None:
        if seq % SAMPLE_EVERY == 0:
            self.sent[hop][seq // SAMPLE_EVERY] = time.perf_counter_ns()

    def receive(self, hop: int, seq: int) -> None:
        if seq % SAMPLE_EVERY == 0:
            self.lat[hop].append(time.perf_counter_ns() - self.sent[hop][seq // SAMPLE_EVERY])


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


async def _produce(
    klines: list[Kline], publish: Any, stamps: Stamps, depth: Any, one_done: asyncio.Event | None
) -> None:
    # Conflating market channels never block; a real feed is paced by the network. Here the
    # producer yields when the strategy's inbox is half full so nothing is conflated or dropped.
    # Paced (`one_done` given): one message in flight at a time, for latency without queueing.
    for seq, kline in enumerate(klines):
        stamps.send(0, seq)
        await publish(kline)
        if one_done is not None:
            await one_done.wait()
            one_done.clear()
        elif depth() >= CAPACITY // 2:
            await asyncio.sleep(0)


async def bus_pipeline(count: int, paced: bool = False) -> tuple[float, Stamps, dict[str, int]]:
    bus = Bus()
    stamps = Stamps(count)
    done = asyncio.Event()
    one_done = asyncio.Event() if paced else None
    signals = bus.sender(SIGNAL.channel("bench"))
    orders = bus.sender(ORDER_REQUEST.channel())
    updates = bus.sender(ORDER_UPDATE.channel())
    market = bus.sender(MARKET_KLINE.channel("BTCUSDT"))
    seq_box = {"strategy": 0, "risk": 0, "executor": 0, "recorder": 0}

    async def strategy(kline: Kline) -> None:
        seq = kline.open_time_ms
        stamps.receive(0, seq)
        stamps.send(1, seq)
        await signals.send(SIGNAL_MSG)

    async def risk(_: Signal) -> None:
        seq = seq_box["risk"]
        seq_box["risk"] = seq + 1
        stamps.receive(1, seq)
        stamps.send(2, seq)
        await orders.send(ORDER_MSG)

    async def executor(_: Any) -> None:
        seq = seq_box["executor"]
        seq_box["executor"] = seq + 1
        stamps.receive(2, seq)
        stamps.send(3, seq)
        await updates.send(UPDATE_MSG)

    async def recorder(_: Any) -> None:
        seq = seq_box["recorder"]
        seq_box["recorder"] = seq + 1
        stamps.receive(3, seq)
        if one_done is not None:
            one_done.set()
        if seq + 1 == count:
            done.set()

    strategy_sub = bus.subscribe(
        MARKET_KLINE.any(), strategy, subscriber="strategy", capacity=CAPACITY
    )
    subs = [
        strategy_sub,
        bus.subscribe(SIGNAL.any(), risk, subscriber="risk", capacity=CAPACITY),
        bus.subscribe(ORDER_REQUEST.channel(), executor, subscriber="executor", capacity=CAPACITY),
        bus.subscribe(ORDER_UPDATE.channel(), recorder, subscriber="recorder", capacity=CAPACITY),
    ]
    klines = _klines(count)
    gc.collect()
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(sub.deliver()) for sub in subs]
        start = time.perf_counter()
        await _produce(klines, market.send, stamps, lambda: strategy_sub.depth, one_done)
        await done.wait()
        elapsed = time.perf_counter() - start
        for task in tasks:
            task.cancel()
    drops = {s.name: (s.inbox.dropped + s.inbox.conflated if s.inbox else 0) for s in subs}
    return count / elapsed, stamps, drops


async def queue_pipeline(count: int, paced: bool = False) -> tuple[float, Stamps]:
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(CAPACITY) for _ in HOPS]
    stamps = Stamps(count)
    done = asyncio.Event()
    one_done = asyncio.Event() if paced else None

    async def stage(hop: int, out: Any) -> None:
        inbox = queues[hop]
        seq = 0
        while True:
            await inbox.get()
            stamps.receive(hop, seq)
            if hop + 1 < len(queues):
                stamps.send(hop + 1, seq)
                await queues[hop + 1].put(out)
            else:
                if one_done is not None:
                    one_done.set()
                if seq + 1 == count:
                    done.set()
            seq += 1

    klines = _klines(count)
    gc.collect()
    async with asyncio.TaskGroup() as group:
        outputs = (SIGNAL_MSG, ORDER_MSG, UPDATE_MSG, None)
        tasks = [group.create_task(stage(hop, outputs[hop])) for hop in range(len(HOPS))]
        start = time.perf_counter()
        await _produce(klines, queues[0].put, stamps, queues[0].qsize, one_done)
        await done.wait()
        elapsed = time.perf_counter() - start
        for task in tasks:
            task.cancel()
    return count / elapsed, stamps


async def fanout(count: int, subscribers: int = 3) -> float:
    bus = Bus()
    updates = bus.sender(ORDER_UPDATE.channel())
    remaining = [count * subscribers]
    done = asyncio.Event()

    async def handler(_: Any) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set()

    subs = [
        bus.subscribe(ORDER_UPDATE.channel(), handler, subscriber=f"sub{i}", capacity=CAPACITY)
        for i in range(subscribers)
    ]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(sub.deliver()) for sub in subs]
        start = time.perf_counter()
        for _ in range(count):
            await updates.send(UPDATE_MSG)
        await done.wait()
        elapsed = time.perf_counter() - start
        for task in tasks:
            task.cancel()
    return count / elapsed


def _report(label: str, rate: float, stamps: Stamps) -> None:
    print(f"{label}: {rate:,.0f} messages/s end to end")
    for hop, name in enumerate(HOPS):
        lat = stamps.lat[hop]
        print(f"  {name:<20} p50 {_pct(lat, 0.50):8.1f} µs   p99 {_pct(lat, 0.99):8.1f} µs")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--paced", type=int, default=50_000, help="messages sent one at a time")
    arguments = parser.parse_args()
    count = arguments.messages
    print(f"{count:,} messages, four hops, capacity {CAPACITY}, no-op handlers")
    print("== throughput (producer as fast as the pipeline takes it; latency includes queueing)")
    bus_rate, bus_stamps, drops = await bus_pipeline(count)
    queue_rate, queue_stamps = await queue_pipeline(count)
    _report("bus", bus_rate, bus_stamps)
    _report("raw asyncio.Queue", queue_rate, queue_stamps)
    print(f"bus dropped or conflated: {sum(drops.values())}")
    ratio = queue_rate / bus_rate
    print(f"bus time / raw time: {ratio:.2f}x (target <= 1.30x)")
    print(f"== latency, one message in flight at a time ({arguments.paced:,} messages)")
    rate, stamps, _ = await bus_pipeline(arguments.paced, paced=True)
    _report("bus", rate, stamps)
    rate, stamps = await queue_pipeline(arguments.paced, paced=True)
    _report("raw asyncio.Queue", rate, stamps)
    print("== fan-out")
    fan = await fanout(count // 2)
    print(
        f"fan-out, 1 publisher -> 3 subscribers: {fan:,.0f} messages/s published "
        f"({3 * fan:,.0f} deliveries/s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
