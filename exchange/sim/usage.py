"""Request-weight and order-count accounting, as Binance keeps it for the usage headers.

Binance counts weight per IP and orders per account in fixed windows aligned to the clock
(a minute window starts at :00), reports the running counts in ``X-MBX-USED-WEIGHT-1M`` and
``X-MBX-ORDER-COUNT-10S``/``-1D`` (futures ``-1M``) and, with the WebSocket API, in each
answer's ``rateLimits``. Going over answers 429 ``-1003`` (weight) or ``-1015`` (orders) with
``Retry-After`` until the window ends; the rejected request still counts, as on Binance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["FUTURES_USAGE", "SPOT_USAGE", "UsageLimits", "UsageMeter", "UsageVerdict", "Window"]

_UNIT_MS: Final = {"S": 1_000, "M": 60_000, "H": 3_600_000, "D": 86_400_000}
_INTERVAL_NAME: Final = {"S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}


@dataclass(frozen=True, slots=True)
class Window:
    """One fixed window: ``number`` times ``unit`` (``"S"``, ``"M"``, ``"H"``, ``"D"``), a limit."""

    number: int
    unit: str
    limit: int

    @property
    def suffix(self) -> str:
        return f"{self.number}{self.unit}"

    @property
    def length_ms(self) -> int:
        return self.number * _UNIT_MS[self.unit]


@dataclass(frozen=True, slots=True)
class UsageLimits:
    weight: Sequence[Window]
    orders: Sequence[Window]


# The limits exchangeInfo advertises (exchange.sim.catalog): spot 6000 weight a minute, 100
# orders per 10 s and 200,000 a day; futures 2400 weight and 1200 orders a minute, 300 per 10 s.
SPOT_USAGE: Final = UsageLimits(
    weight=(Window(1, "M", 6000),), orders=(Window(10, "S", 100), Window(1, "D", 200_000))
)
FUTURES_USAGE: Final = UsageLimits(
    weight=(Window(1, "M", 2400),), orders=(Window(10, "S", 300), Window(1, "M", 1200))
)


@dataclass(frozen=True, slots=True)
class UsageVerdict:
    """The counts after charging one request and, when over a limit, how to refuse it."""

    weight: Mapping[str, int]
    orders: Mapping[str, int]
    over_code: int | None = None  # -1003 (weight) or -1015 (orders)
    retry_after_s: float = 0.0


class UsageMeter:
    def __init__(self, limits: UsageLimits) -> None:
        self._limits = limits
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}  # (kind, suffix) -> (start, n)

    def charge(self, now_ms: int, *, weight: int, orders: int = 0) -> UsageVerdict:
        weight_counts = {w.suffix: self._add("w", w, now_ms, weight) for w in self._limits.weight}
        order_counts = (
            {w.suffix: self._add("o", w, now_ms, orders) for w in self._limits.orders}
            if orders
            else self.order_counts(now_ms)
        )
        for window in self._limits.weight:
            if weight_counts[window.suffix] > window.limit:
                return UsageVerdict(
                    weight_counts, order_counts, -1003, self._left_s(window, now_ms)
                )
        for window in self._limits.orders if orders else ():
            if order_counts[window.suffix] > window.limit:
                return UsageVerdict(
                    weight_counts, order_counts, -1015, self._left_s(window, now_ms)
                )
        return UsageVerdict(weight_counts, order_counts)

    def order_counts(self, now_ms: int) -> dict[str, int]:
        return {w.suffix: self._add("o", w, now_ms, 0) for w in self._limits.orders}

    def rate_limits(self, verdict: UsageVerdict) -> list[dict[str, object]]:
        """The WebSocket API's ``rateLimits`` array for a verdict."""
        entries: list[dict[str, object]] = []
        for kind, windows, counts in (
            ("REQUEST_WEIGHT", self._limits.weight, verdict.weight),
            ("ORDERS", self._limits.orders, verdict.orders),
        ):
            for window in windows:
                if window.suffix not in counts:
                    continue
                entries.append(
                    {
                        "rateLimitType": kind,
                        "interval": _INTERVAL_NAME[window.unit],
                        "intervalNum": window.number,
                        "limit": window.limit,
                        "count": counts[window.suffix],
                    }
                )
        return entries

    def _add(self, kind: str, window: Window, now_ms: int, amount: int) -> int:
        start = now_ms - now_ms % window.length_ms
        began, count = self._counts.get((kind, window.suffix), (start, 0))
        if began != start:
            count = 0
        count += amount
        self._counts[(kind, window.suffix)] = (start, count)
        return count

    @staticmethod
    def _left_s(window: Window, now_ms: int) -> float:
        return (window.length_ms - now_ms % window.length_ms) / 1000
