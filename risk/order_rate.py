"""A sliding-window count of orders sent, kept below a share of the exchange's ORDERS limits.

Pure: the gate records each order it lets out and asks before the next one. Binance counts
orders in fixed windows (per 10 s, per day...); a sliding window of the same length that never
holds more than the allowed number cannot exceed it in any fixed window either.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

__all__ = ["OrderRateLimit", "fmt_interval"]


def fmt_interval(ms: int) -> str:
    """10_000 -> "10s", 60_000 -> "1m", 86_400_000 -> "1d"."""
    for unit_ms, unit in ((86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")):
        if ms >= unit_ms and ms % unit_ms == 0:
            return f"{ms // unit_ms}{unit}"
    return f"{ms}ms"


class OrderRateLimit:
    """Sliding-window count of orders sent, kept below `share` of each exchange ORDERS limit."""

    def __init__(self, limits: Sequence[tuple[int, int]], *, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"order rate share must be in (0, 1], not {share}")
        for interval_ms, limit in limits:
            if interval_ms <= 0 or limit <= 0:
                raise ValueError(f"bad ORDERS limit: {limit} per {interval_ms} ms")
        self._share = share
        # (interval_ms, exchange limit, allowed), allowed = max(1, floor(limit x share)).
        self._limits = [
            (interval_ms, limit, max(1, math.floor(limit * share))) for interval_ms, limit in limits
        ]
        self._horizon_ms = max((interval for interval, _, _ in self._limits), default=0)
        self._sent: deque[int] = deque()
        self._last_ms: int | None = None

    def _prune(self, now_ms: int) -> None:
        self._last_ms = now_ms if self._last_ms is None else max(self._last_ms, now_ms)
        while self._sent and self._sent[0] <= now_ms - self._horizon_ms:
            self._sent.popleft()

    def _count(self, now_ms: int, interval_ms: int) -> int:
        """Orders sent in (now - interval, now]."""
        start = now_ms - interval_ms
        count = 0
        for ts in reversed(self._sent):
            if ts <= start:
                break
            count += 1
        return count

    def denial(self, now_ms: int) -> str | None:
        """Why one more order now would exceed an allowed rate, or None."""
        self._prune(now_ms)
        for interval_ms, limit, allowed in self._limits:
            count = self._count(now_ms, interval_ms)
            if count >= allowed:
                return (
                    f"order_rate: {count} orders in the last {fmt_interval(interval_ms)}, "
                    f"limit {allowed} ({self._share * 100:g}% of the exchange's {limit})"
                )
        return None

    def record(self, now_ms: int) -> None:
        self._prune(now_ms)
        self._sent.append(now_ms)

    def status(self) -> dict[str, object]:
        now = self._last_ms
        return {
            "share": self._share,
            "limits": [
                {
                    "interval": fmt_interval(interval_ms),
                    "exchange_limit": limit,
                    "allowed": allowed,
                    "sent": 0 if now is None else self._count(now, interval_ms),
                }
                for interval_ms, limit, allowed in self._limits
            ],
        }
