"""Kline stream ingest: frames from a local WebSocket server through parse onto the bus.

The client is the daemon's own path: ``MarketStreams`` (one combined-stream connection, the
kline sequencer, the watchdog) hands each decoded frame to ``MarketPublisher.on_frame``, which
publishes on ``market.kline.<SYMBOL>`` of a live ``Bus`` with the default capacities; one
subscriber on ``market.kline.>`` runs its ``deliver()`` loop and counts what it receives. The
sender (``bench/_loopback_server.py stream``) runs in its own process on another core and
blasts pre-built frames, so this process's core does nothing but ingest. Market channels
conflate intrabar updates per bar when the subscriber lags: that is their policy, and the
count is reported; closed bars are never conflated away and are checked.

Rates are taken between the first and the last poll (every few ms) of the publisher's counter,
so no per-frame hook is added; the client's CPU time over the same span gives its cost per
frame. Then the steps after the socket (decode, kline sequencer, publish to a subscriber) are
timed in-process over the same frames, and what they leave of the CPU per frame is aiohttp's
receive and the connection's read loop.

    python bench/stream_ingest.py [--frames 300000] [--symbols BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT]
                                  [--no-parts]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from _loopback_server import UPDATES_PER_BAR, LoopbackServer, kline_frames, pinning_cores

from app.bus import Bus
from app.domain.clock import SystemClock
from app.domain.market import Kline
from app.feeds.market import MarketPublisher
from exchange.binance.kline_gaps import KlineSequencer
from exchange.binance.parse_market import decode_market_frame
from exchange.binance.streams import SPOT_LIMITS, MarketStreams

TARGET_FRAMES_PER_S = 50_000
POLL_S = 0.002
TIME_LIMIT_S = 120.0
PARTS_SAMPLE = 100_000
YIELD_EVERY = 256


class KlineCounter:
    """The subscriber: counts klines and closed bars delivered to it, and when the last came."""

    def __init__(self) -> None:
        self.received = 0
        self.closed = 0
        self.last_at = 0.0

    async def __call__(self, kline: Kline) -> None:
        self.received += 1
        self.last_at = time.perf_counter()
        if kline.closed:
            self.closed += 1


@dataclass(frozen=True)
class Ingest:
    published: int
    publish_rate: float
    delivered: int
    deliver_rate: float
    closed_delivered: int
    conflated: int
    dropped: int
    high_water: int
    malformed: int
    frames_read: int
    sequencer: dict[str, Any]
    counts: dict[str, int]
    cpu_busy: float
    preempted: int  # involuntary context switches while measuring


@dataclass(frozen=True)
class Mark:
    """The client's counters at one poll."""

    wall: float
    cpu: float
    published: int
    delivered: int
    preempted: int

    @classmethod
    def take(cls, publisher: MarketPublisher, counter: KlineCounter) -> Mark:
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        now = time.perf_counter()
        return cls(now, time.process_time(), publisher.published, counter.received, switches)


async def ingest(base_url: str, streams: list[str], expected: int) -> Ingest:
    """Run the feed until ``expected`` frames were published or the server closed."""
    bus = Bus()
    publisher = MarketPublisher(bus=bus)
    counter = KlineCounter()
    subscription = bus.subscribe_pattern("market.kline.>", counter, subscriber="bench")
    feed = MarketStreams(
        name="bench",
        base_url=base_url.replace("http://", "ws://"),
        streams=streams,
        clock=SystemClock(),
        on_message=publisher.on_frame,
        fetch_klines=None,
        limits=SPOT_LIMITS,
    )
    connection = feed.connections[0]
    gc.collect()
    delivering = asyncio.create_task(subscription.deliver())
    running = asyncio.create_task(feed.run())
    deadline = time.perf_counter() + TIME_LIMIT_S
    first: Mark | None = None
    while True:
        await asyncio.sleep(POLL_S)
        if first is None and publisher.published:
            first = Mark.take(publisher, counter)
        ended = connection.counters["reconnects"] > 0 or time.perf_counter() > deadline
        if publisher.published >= expected or ended:
            break
    last = Mark.take(publisher, counter)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    bus.close_subscriber("bench")
    await delivering
    if first is None:
        raise RuntimeError("no frame was published: is the server up?")
    wall = last.wall - first.wall
    inbox = subscription.inbox
    assert inbox is not None
    return Ingest(
        published=last.published,
        publish_rate=(last.published - first.published) / wall,
        delivered=counter.received,
        deliver_rate=(counter.received - first.delivered) / (counter.last_at - first.wall),
        closed_delivered=counter.closed,
        conflated=inbox.conflated,
        dropped=inbox.dropped,
        high_water=inbox.high_water,
        malformed=connection.counters["malformed"],
        frames_read=connection.counters["frames"],
        sequencer=feed.sequencer.snapshot(),
        counts=dict(publisher.counts),
        cpu_busy=(last.cpu - first.cpu) / wall,
        preempted=last.preempted - first.preempted,
    )


def best_ns_per_frame(run: Callable[[], object], frames: int, repeats: int = 3) -> float:
    """ns per frame of the fastest of ``repeats`` passes (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - start) / frames)
    return best


async def parts_alone(raw: list[str]) -> list[tuple[str, float]]:
    """The steps of the ingest path after the socket, each over the same frames in-process
    (ns per frame); the rest of the client's time is aiohttp and the connection's loop."""

    def decode() -> None:
        for frame in raw:
            decode_market_frame(frame)

    decode_ns = best_ns_per_frame(decode, len(raw))
    decoded = [decode_market_frame(frame) for frame in raw]
    klines = [frame.message for frame in decoded if isinstance(frame.message, Kline)]
    # Live, a frame is garbage once published; kept here, they must not slow the collector.
    gc.freeze()

    def sequence() -> None:
        sequencer = KlineSequencer()
        for kline in klines:
            sequencer.accept(kline)
            sequencer.pending_gap(kline.symbol, kline.interval)

    async def publish() -> None:
        bus = Bus()
        subscription = bus.subscribe_pattern("market.kline.>", KlineCounter(), subscriber="b")
        delivering = asyncio.create_task(subscription.deliver())
        on_frame = MarketPublisher(bus=bus).on_frame
        for index, frame in enumerate(decoded):
            await on_frame(frame)
            if index % YIELD_EVERY == 0:  # the socket reader yields once per read chunk
                await asyncio.sleep(0)
        bus.close_subscriber("b")
        await delivering

    sequence_ns = best_ns_per_frame(sequence, len(klines))
    publish_ns = float("inf")
    for _ in range(3):
        start = time.perf_counter_ns()
        await publish()
        publish_ns = min(publish_ns, (time.perf_counter_ns() - start) / len(decoded))
    gc.unfreeze()
    return [
        ("decode_market_frame", decode_ns),
        ("KlineSequencer accept + pending_gap", sequence_ns),
        ("MarketPublisher.on_frame -> bus -> subscriber", publish_ns),
    ]


async def server_stats(base_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/bench/stats") as r:
        stats: dict[str, Any] = await r.json()
        return stats


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def report(result: Ingest, expected: int, closed_sent: int, sender: dict[str, Any]) -> None:
    print("== feed -> MarketPublisher -> bus -> 1 subscriber on market.kline.>")
    print(f"  frames read {result.frames_read:,}, published {result.published:,} of {expected:,}")
    print(f"  published (decoded + sequenced + on the bus): {result.publish_rate:,.0f} frames/s")
    print(f"  delivered to the subscriber:  {result.deliver_rate:,.0f} klines/s ", end="")
    print(f"({result.delivered:,} klines)")
    print(f"  conflated in the subscriber's inbox: {result.conflated:,} intrabar updates ", end="")
    print(f"(dropped {result.dropped}, inbox high water {result.high_water})")
    print(f"  closed bars delivered: {result.closed_delivered:,} of {closed_sent:,} sent")
    print(f"  malformed: {result.malformed}; publisher counts {result.counts}")
    sequencer = result.sequencer
    print(
        f"  sequencer: stale dropped {sequencer['stale_updates_dropped']}, duplicates "
        f"{sequencer['duplicates_dropped']}, gaps {sequencer['gaps_detected']}"
    )
    cpu_us = result.cpu_busy / result.publish_rate * 1e6
    print(f"  client CPU {cpu_us:.1f} µs/frame, busy {result.cpu_busy:.0%} of the time ", end="")
    print(f"(preempted {result.preempted:,} times)", end="")
    if sender:
        busy = sender["send_cpu_s"] / sender["send_s"]
        print(f"; sender CPU busy {busy:.0%} of its {sender['send_s']:.2f} s burst", end="")
    print()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT")
    parser.add_argument("--no-parts", action="store_true", help="skip the in-process steps")
    arguments = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    symbols = arguments.symbols.split(",")
    streams = [f"{symbol.lower()}@kline_1m" for symbol in symbols]
    count = arguments.frames
    client_cpu, server_cpu = pinning_cores()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Python {platform.python_version()}, {cpu_model()}, load average {load}; ", end="")
    if client_cpu is None:
        print("not pinned (one core available or no sched_setaffinity)")
    else:
        print(f"client pinned to core {client_cpu}, sender to core {server_cpu}")
    print(f"{count:,} combined kline_1m frames over {len(symbols)} symbols, one connection")
    server_arguments = ["stream", "--frames", str(count), "--symbols", ",".join(symbols)]
    with LoopbackServer(server_arguments, cpu=server_cpu) as server:
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        result = await ingest(server.url, streams, count)
        sender = await server_stats(server.url)
    per_symbol = [len(range(i, count, len(symbols))) for i in range(len(symbols))]
    report(result, count, sum(n // UPDATES_PER_BAR for n in per_symbol), sender)
    if not arguments.no_parts:
        sample = [f.decode() for f in kline_frames(min(count, PARTS_SAMPLE), symbols)]
        parts = await parts_alone(sample)
        print(f"== steps after the socket, in-process over {len(sample):,} of the frames")
        for label, ns in parts:
            print(f"  {label:<46} {ns / 1000:5.1f} µs/frame")
        rest = result.cpu_busy / result.publish_rate * 1e6 - sum(ns for _, ns in parts) / 1000
        print(
            "  the rest of the client's CPU per frame (aiohttp receive, connection loop, ", end=""
        )
        print(f"awaits): {rest:.1f} µs")
    verdict = "PASS" if result.publish_rate >= TARGET_FRAMES_PER_S else "MISS"
    print(
        f"target: >= {TARGET_FRAMES_PER_S:,} kline frames/s onto the bus, one core  "
        f"({result.publish_rate:,.0f}/s: {verdict})"
    )


if __name__ == "__main__":
    asyncio.run(main())
