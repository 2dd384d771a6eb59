"""Time for everything that decides: strategies, risk and the executor read a `Clock`, never the
wall clock, so a backtest can drive them with simulated time and tests never sleep."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, UTC."""
        ...

    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock, for live and paper trading."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """Simulated time that moves only when told to: backtests and tests advance it explicitly.

    `sleep` suspends until `advance` moves the clock past the sleeper's deadline, so code that
    waits on time (backoff, timers) can be tested without waiting in real time.
    """

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ns = start_ms * 1_000_000
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()
        self._watchers: list[asyncio.Future[None]] = []

    def now_ms(self) -> int:
        return self._now_ns // 1_000_000

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now_ns / 1e9, tz=UTC)

    def monotonic(self) -> float:
        return self._now_ns / 1e9

    @property
    def sleeper_count(self) -> int:
        """How many coroutines are waiting on this clock (lets tests wait for a sleeper)."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline = self._now_ns + int(seconds * 1e9)
        heapq.heappush(self._sleepers, (deadline, next(self._sequence), future))
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            if not watcher.done():
                watcher.set_result(None)
        await future

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Return once at least `count` coroutines sleep on this clock (tests wait on this
        instead of polling, e.g. for a retry loop running partly in a worker thread)."""
        while self.sleeper_count < count:
            watcher: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._watchers.append(watcher)
            await watcher

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed, in deadline order."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._now_ns += int(seconds * 1e9)
        while self._sleepers and self._sleepers[0][0] <= self._now_ns:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def set_ms(self, epoch_ms: int) -> None:
        """Jump to an absolute time (a replay driver sets the clock to each bar's close)."""
        target = epoch_ms * 1_000_000
        if target < self._now_ns:
            raise ValueError("a clock cannot go back")
        self.advance((target - self._now_ns) / 1e9)
