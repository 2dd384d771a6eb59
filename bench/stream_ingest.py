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
so no per-frame hook is added. Then, for comparison on the same frames: aiohttp receiving only
(no decode), and ``decode_market_frame`` alone in-process.

    python bench/stream_ingest.py [--frames 300000] [--symbols BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from _loopback_server import LoopbackServer, kline_frames, server_cpus

from app.bus import Bus
from app.domain.clock import SystemClock
from app.domain.market import Kline
from app.feeds.market import MarketPublisher
from exchange.binance.parse_market import decode_market_frame
from exchange.binance.streams import SPOT_LIMITS, MarketStreams

TARGET_FRAMES_PER_S = 50_000
POLL_S = 0.002
TIME_LIMIT_S = 120.0
DECODE_SAMPLE = 100_000


class KlineCounter:
    """The subscriber: counts klines and closed bars delivered to it."""

    def __init__(self) -> None:
        self.received = 0
        self.closed = 0

    async def __call__(self, kline: Kline) -> None:
        self.received += 1
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
    first: tuple[float, float, int, int] | None = None  # wall, cpu, published, delivered
    while True:
        await asyncio.sleep(POLL_S)
        now = time.perf_counter()
        if first is None and publisher.published:
            first = (now, time.process_time(), publisher.published, counter.received)
        ended = connection.counters["reconnects"] > 0 or now > deadline
        if publisher.published >= expected or ended:
            break
    last_wall, last_cpu, last_published = now, time.process_time(), publisher.published
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    bus.close_subscriber("bench")
    await delivering
    delivered_at = time.perf_counter()
    if first is None:
        raise RuntimeError("no frame was published: is the server up?")
    wall = last_wall - first[0]
    inbox = subscription.inbox
    assert inbox is not None
    return Ingest(
        published=last_published,
        publish_rate=(last_published - first[2]) / wall,
        delivered=counter.received,
        deliver_rate=(counter.received - first[3]) / (delivered_at - first[0]),
        closed_delivered=counter.closed,
        conflated=inbox.conflated,
        dropped=inbox.dropped,
        high_water=inbox.high_water,
        malformed=connection.counters["malformed"],
        frames_read=connection.counters["frames"],
        sequencer=feed.sequencer.snapshot(),
        counts=dict(publisher.counts),
        cpu_busy=(last_cpu - first[1]) / wall,
    )


async def receive_only(base_url: str, streams: list[str]) -> tuple[int, float]:
    """aiohttp alone: read every frame of one burst, decode nothing; (frames, frames/s)."""
    url = f"{base_url}/stream?streams={'/'.join(streams)}"
    frames, first, last = 0, 0.0, 0.0
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                if not frames:
                    first = time.perf_counter()
                frames += 1
        last = time.perf_counter()
    return frames, (frames - 1) / (last - first) if frames > 1 else 0.0


def decode_only(frames: list[str]) -> float:
    """ns per ``decode_market_frame`` call over the same frames, as str (aiohttp TEXT)."""
    decode = decode_market_frame
    for frame in frames[:10_000]:
        decode(frame)
    start = time.perf_counter_ns()
    for frame in frames:
        decode(frame)
    return (time.perf_counter_ns() - start) / len(frames)


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
    print(f"  client CPU busy {result.cpu_busy:.0%} of the time", end="")
    if sender:
        busy = sender["send_cpu_s"] / sender["send_s"]
        print(f"; sender CPU busy {busy:.0%} of its {sender['send_s']:.2f} s burst", end="")
    print()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT")
    parser.add_argument("--no-baseline", action="store_true", help="skip receive/decode only")
    arguments = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    symbols = arguments.symbols.split(",")
    streams = [f"{symbol.lower()}@kline_1m" for symbol in symbols]
    count = arguments.frames
    client_cpu, server_cpu = server_cpus()
    print(f"Python {platform.python_version()}, {cpu_model()}; ", end="")
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
        baseline = None if arguments.no_baseline else await receive_only(server.url, streams)
    per_symbol = [len(range(i, count, len(symbols))) for i in range(len(symbols))]
    report(result, count, sum(n // 60 for n in per_symbol), sender)
    if baseline is not None:
        sample = [f.decode() for f in kline_frames(min(count, DECODE_SAMPLE), symbols)]
        per_frame_ns = decode_only(sample)
        print("== the same frames, parts alone")
        print(f"  aiohttp receive only (no decode): {baseline[1]:,.0f} frames/s ", end="")
        print(f"({baseline[0]:,} frames)")
        print(f"  decode_market_frame alone: {per_frame_ns:,.0f} ns/frame ", end="")
        print(f"({1e9 / per_frame_ns:,.0f} frames/s)")
    verdict = "PASS" if result.publish_rate >= TARGET_FRAMES_PER_S else "MISS"
    print(
        f"target: >= {TARGET_FRAMES_PER_S:,} kline frames/s onto the bus, one core  "
        f"({result.publish_rate:,.0f}/s: {verdict})"
    )


if __name__ == "__main__":
    asyncio.run(main())
