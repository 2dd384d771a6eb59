"""Server-time sync on a ManualClock: the fake server's fetch advances simulated time to play
out each round trip, so offsets and RTTs are exact and nothing sleeps for real."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
import structlog

from app.domain.clock import ManualClock
from exchange.binance.timesync import ServerTime


class FakeServer:
    """A server whose clock runs ``skew_ms`` ahead of ours; each fetch takes the scripted
    (request delay, response delay) in seconds, or raises the scripted exception."""

    def __init__(
        self, clock: ManualClock, skew_ms: int, legs: Iterable[tuple[float, float] | Exception]
    ) -> None:
        self.clock = clock
        self.skew_ms = skew_ms
        self.legs = iter(legs)
        self.calls = 0

    async def fetch(self) -> int:
        self.calls += 1
        leg = next(self.legs)
        if isinstance(leg, Exception):
            raise leg
        to_server, back = leg
        self.clock.advance(to_server)
        server_time = self.clock.now_ms() + self.skew_ms
        self.clock.advance(back)
        return server_time


async def test_offset_and_timestamp_from_a_symmetric_round_trip() -> None:
    clock = ManualClock()
    server = FakeServer(clock, skew_ms=-1234, legs=[(0.05, 0.05)])
    server_time = ServerTime(clock=clock)
    assert server_time.timestamp_ms() == clock.now_ms()  # offset 0 before any sync

    assert await server_time.sync(server.fetch, samples=1) == -1234
    assert server_time.offset_ms == -1234
    assert server_time.rtt_ms == 100
    assert server_time.synced_at_ms == clock.now_ms()
    assert server_time.timestamp_ms() == clock.now_ms() - 1234
    clock.advance(60)
    assert server_time.timestamp_ms() == clock.now_ms() - 1234


async def test_the_sample_with_the_smallest_round_trip_wins() -> None:
    clock = ManualClock()
    # Asymmetric legs skew the midpoint estimate; the 20 ms symmetric sample is exact.
    legs = [(0.300, 0.010), (0.010, 0.010), (0.010, 0.150)]
    server = FakeServer(clock, skew_ms=2500, legs=legs)
    server_time = ServerTime(clock=clock)

    assert await server_time.sync(server.fetch) == 2500
    assert server.calls == 3
    assert server_time.rtt_ms == 20
    assert server_time.syncs == 1


async def test_a_lone_asymmetric_sample_is_off_by_half_the_asymmetry() -> None:
    clock = ManualClock()
    server = FakeServer(clock, skew_ms=0, legs=[(0.300, 0.010)])
    server_time = ServerTime(clock=clock)
    # The server read its clock 300 ms after we asked; the midpoint assumption says 155 ms.
    assert await server_time.sync(server.fetch, samples=1) == 145


async def test_failure_without_a_good_sample_propagates_and_is_counted() -> None:
    clock = ManualClock()
    server = FakeServer(clock, skew_ms=500, legs=[ConnectionError("down"), (0.01, 0.01)])
    server_time = ServerTime(clock=clock)

    with pytest.raises(ConnectionError, match="down"):
        await server_time.sync(server.fetch)
    assert server.calls == 1  # no hammering after a failure
    assert server_time.failures == 1
    assert server_time.syncs == 0
    assert server_time.offset_ms == 0
    assert server_time.synced_at_ms is None


async def test_failure_after_a_good_sample_keeps_the_good_sample() -> None:
    clock = ManualClock()
    server = FakeServer(clock, skew_ms=700, legs=[(0.02, 0.02), TimeoutError(), (0.001, 0.001)])
    server_time = ServerTime(clock=clock)

    assert await server_time.sync(server.fetch) == 700
    assert server.calls == 2
    assert server_time.failures == 0
    assert server_time.syncs == 1
    assert server_time.rtt_ms == 40


async def test_samples_must_be_positive() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="samples"):
        await ServerTime(clock=clock).sync(FakeServer(clock, 0, []).fetch, samples=0)


async def test_periodic_loop_resyncs_survives_failures_and_cancels() -> None:
    clock = ManualClock()
    legs: list[tuple[float, float] | Exception] = [
        (0.01, 0.01), (0.01, 0.01), (0.01, 0.01),  # first interval: skew 100
        RuntimeError("server time endpoint broke"),  # second interval: fails at once
        (0.01, 0.01), (0.01, 0.01), (0.01, 0.01),  # third interval
    ]  # fmt: skip
    server = FakeServer(clock, skew_ms=100, legs=legs)
    server_time = ServerTime(clock=clock)

    with structlog.testing.capture_logs() as logs:
        loop = asyncio.create_task(server_time.run_periodic(server.fetch, interval_s=300))
        try:
            await clock.wait_for_sleepers(1)
            assert server.calls == 0  # sleeps first: the caller did the initial sync

            clock.advance(300)
            await clock.wait_for_sleepers(1)
            assert server_time.syncs == 1
            assert server_time.offset_ms == 100

            server.skew_ms = 250
            clock.advance(300)
            await clock.wait_for_sleepers(1)
            assert server_time.failures == 1
            assert server_time.offset_ms == 100  # the last good offset stays in use
            assert not loop.done()

            clock.advance(300)
            await clock.wait_for_sleepers(1)
            assert server_time.syncs == 2
            assert server_time.offset_ms == 250
        finally:
            loop.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop

    failures = [entry for entry in logs if entry["event"] == "server_time_sync_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "warning"
    assert failures[0]["error_type"] == "RuntimeError"
    assert failures[0]["failures"] == 1


async def test_snapshot_for_the_heartbeat() -> None:
    clock = ManualClock()
    server_time = ServerTime(clock=clock)
    assert server_time.snapshot() == {
        "offset_ms": 0,
        "rtt_ms": None,
        "synced_at_ms": None,
        "syncs": 0,
        "failures": 0,
    }
    await server_time.sync(FakeServer(clock, 42, [(0.003, 0.003)]).fetch, samples=1)
    assert server_time.snapshot() == {
        "offset_ms": 42,
        "rtt_ms": 6,
        "synced_at_ms": clock.now_ms(),
        "syncs": 1,
        "failures": 0,
    }
