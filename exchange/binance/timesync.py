"""Server-time tracking: the ``timestamp`` of every signed request is local time plus an offset.

Binance refuses a signed request whose ``timestamp`` is more than 1 s ahead of its clock or
older than ``recvWindow`` (-1021), so a drifting host clock would stop all trading. The offset
is measured NTP-style: each sample brackets one ``serverTime`` fetch between two local
readings, assumes the server read its clock halfway through the round trip, and the sample with
the shortest round trip wins (it bounds the error best: at most half its RTT).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from app.domain.clock import Clock

__all__ = ["FetchServerTime", "ServerTime"]

FetchServerTime = Callable[[], Awaitable[int]]

log = structlog.get_logger(__name__)


class ServerTime:
    """The exchange's clock as seen from here. Offset 0 until the first successful sync."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self.offset_ms = 0  # server minus local
        self.rtt_ms: int | None = None  # round trip of the sample the offset came from
        self.synced_at_ms: int | None = None  # local time of the last successful sync
        self.syncs = 0
        self.failures = 0

    def timestamp_ms(self) -> int:
        """Best estimate of the server's current time: the ``timestamp`` to sign with."""
        return self._clock.now_ms() + self.offset_ms

    async def sync(self, fetch_server_time_ms: FetchServerTime, *, samples: int = 3) -> int:
        """Measure up to ``samples`` round trips and adopt the offset of the shortest one.

        A failing fetch ends the sampling at once (hammering an endpoint that just failed, maybe
        with a rate limit, would make things worse). If an earlier sample succeeded its result
        is used; otherwise the failure is counted and the exception propagates. Returns the new
        offset in milliseconds.
        """
        if samples < 1:
            raise ValueError("samples must be at least 1")
        best: tuple[float, int] | None = None  # (rtt ms, offset ms)
        for _ in range(samples):
            local_before_ms = self._clock.now_ms()
            started = self._clock.monotonic()
            try:
                server_ms = await fetch_server_time_ms()
            except Exception:
                if best is None:
                    self.failures += 1
                    raise
                break
            rtt_ms = (self._clock.monotonic() - started) * 1000
            offset_ms = round(server_ms - (local_before_ms + rtt_ms / 2))
            if best is None or rtt_ms < best[0]:
                best = (rtt_ms, offset_ms)
        assert best is not None  # samples >= 1, and a first failure raised above
        self.rtt_ms = round(best[0])
        self.offset_ms = best[1]
        self.synced_at_ms = self._clock.now_ms()
        self.syncs += 1
        log.debug("server_time_synced", offset_ms=self.offset_ms, rtt_ms=self.rtt_ms)
        return self.offset_ms

    async def run_periodic(
        self, fetch_server_time_ms: FetchServerTime, *, interval_s: float
    ) -> None:
        """Resync every ``interval_s`` forever. A failed sync is logged and retried at the next
        interval; only cancellation ends the loop."""
        while True:
            await self._clock.sleep(interval_s)
            try:
                await self.sync(fetch_server_time_ms)
            except Exception as exc:
                # The old offset stays in use: still the best estimate we have.
                log.warning(
                    "server_time_sync_failed",
                    error_type=type(exc).__name__,
                    error=str(exc)[:200],
                    failures=self.failures,
                    exc_info=True,
                )

    def snapshot(self) -> dict[str, int | None]:
        """The numbers for the heartbeat document."""
        return {
            "offset_ms": self.offset_ms,
            "rtt_ms": self.rtt_ms,
            "synced_at_ms": self.synced_at_ms,
            "syncs": self.syncs,
            "failures": self.failures,
        }
