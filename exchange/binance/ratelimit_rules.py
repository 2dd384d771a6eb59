"""Binance rate-limit rules: the ``rateLimits`` records of exchangeInfo and their defaults.

This is the data half of ``exchange.binance.ratelimit``, which re-exports everything public
here and holds the limiter that enforces these rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard, get_args

import structlog

__all__ = [
    "DEFAULT_SPOT_RULES",
    "DEFAULT_USDM_RULES",
    "RateLimitInterval",
    "RateLimitKind",
    "RateLimitRule",
    "parse_rate_limits",
]

log = structlog.get_logger(__name__)

RateLimitKind = Literal["REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS"]
RateLimitInterval = Literal["SECOND", "MINUTE", "HOUR", "DAY"]

_KINDS: Final[frozenset[str]] = frozenset(get_args(RateLimitKind))
_INTERVAL_SECONDS: Final[dict[str, int]] = {
    "SECOND": 1,
    "MINUTE": 60,
    "HOUR": 3_600,
    "DAY": 86_400,
}


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    """One entry of exchangeInfo ``rateLimits``: at most ``limit`` per ``interval_num`` units."""

    kind: RateLimitKind
    interval: RateLimitInterval
    interval_num: int
    limit: int

    @property
    def window_s(self) -> int:
        return _INTERVAL_SECONDS[self.interval] * self.interval_num

    @property
    def header_suffix(self) -> str:
        """The ``<n><L>`` ending of the usage header for this window, e.g. ``"1M"``, ``"10S"``."""
        return f"{self.interval_num}{self.interval[0]}"


def parse_rate_limits(raw: Sequence[Mapping[str, Any]]) -> tuple[RateLimitRule, ...]:
    """Rules from exchangeInfo ``rateLimits``; entries of unknown type or shape are skipped,
    since a new limiter type must not stop the client from starting."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        return ()
    rules: list[RateLimitRule] = []
    for entry in raw:
        rule = _parse_rule(entry)
        if rule is None:
            log.debug("rate_limit_rule_skipped", entry=repr(entry)[:200])
        else:
            rules.append(rule)
    return tuple(rules)


def _parse_rule(entry: object) -> RateLimitRule | None:
    if not isinstance(entry, Mapping):
        return None
    kind, interval = entry.get("rateLimitType"), entry.get("interval")
    num, limit = entry.get("intervalNum"), entry.get("limit")
    if kind not in _KINDS or interval not in _INTERVAL_SECONDS:
        return None
    if not (_is_count(num) and _is_count(limit)):
        return None
    return RateLimitRule(kind, interval, num, limit)


def _is_count(value: object) -> TypeGuard[int]:
    # bool is an int subclass; a JSON true is not a count
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# Used until exchangeInfo has been read. Spot: REQUEST_WEIGHT 6000/1m and RAW_REQUESTS 61000/5m
# as in the spot docs' enum examples; ORDERS 100/10s and 200000/1d as currently served.
# USD-M: REQUEST_WEIGHT 2400/1m, ORDERS 1200/1m and 300/10s (fapi exchangeInfo).
DEFAULT_SPOT_RULES: Final[tuple[RateLimitRule, ...]] = (
    RateLimitRule("REQUEST_WEIGHT", "MINUTE", 1, 6_000),
    RateLimitRule("ORDERS", "SECOND", 10, 100),
    RateLimitRule("ORDERS", "DAY", 1, 200_000),
    RateLimitRule("RAW_REQUESTS", "MINUTE", 5, 61_000),
)
DEFAULT_USDM_RULES: Final[tuple[RateLimitRule, ...]] = (
    RateLimitRule("REQUEST_WEIGHT", "MINUTE", 1, 2_400),
    RateLimitRule("ORDERS", "SECOND", 10, 300),
    RateLimitRule("ORDERS", "MINUTE", 1, 1_200),
)
