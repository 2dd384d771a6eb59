"""Binance rate limits: the rules from exchangeInfo, a pre-send limiter and Retry-After blocks.

Binance counts in fixed windows aligned to the epoch (a request at 00:01:23.456 counts toward
the 00:01:00 minute; the count drops to zero at 00:02:00). ``REQUEST_WEIGHT`` and
``RAW_REQUESTS`` are per IP, so other bots on the same IP spend the same budget; ``ORDERS`` is
per account. Every response reports the IP's used weight in ``X-MBX-USED-WEIGHT-<n><L>`` and
order responses the account's count in ``X-MBX-ORDER-COUNT-<n><L>``; ``RAW_REQUESTS`` has no
header and is counted locally only.

A 429 means a limit was broken and carries ``Retry-After`` seconds; sending anything before
they pass escalates to a 418 IP ban (2 minutes up to 3 days). So :class:`RateLimiter` reserves
budget before each request, raises at once while a block is in force, and never sleeps through
one.

The rule records, their parser and the default rules live in ``exchange.binance.ratelimit_rules``
and are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

import structlog
from multidict import istr

from app.domain.clock import Clock
from app.errors import RateLimitedError
from exchange.binance.ratelimit_rules import (
    DEFAULT_SPOT_RULES,
    DEFAULT_USDM_RULES,
    RateLimitInterval,
    RateLimitKind,
    RateLimitRule,
    parse_rate_limits,
)

__all__ = [
    "DEFAULT_SPOT_RULES",
    "DEFAULT_USDM_RULES",
    "RateLimitInterval",
    "RateLimitKind",
    "RateLimitRule",
    "RateLimiter",
    "parse_rate_limits",
]

log = structlog.get_logger(__name__)

_HEADER_KIND: Final[dict[str, RateLimitKind]] = {
    "used-weight": "REQUEST_WEIGHT",
    "order-count": "ORDERS",
}
_USAGE_HEADER = re.compile(r"^x-mbx-(used-weight|order-count)-(\d+)([smhd])$")
_HEADER_WORD: Final[dict[str, str]] = {kind: word for word, kind in _HEADER_KIND.items()}
# Header name as received -> (its lower-case name, the canonical name of its window), or None.
# Responses repeat the same dozen names, so after the first one each header costs one dict
# lookup, not strip + lower + regex. Bounded: the names come from the network. Only str and
# istr names (aiohttp's), whose equality is plain str equality, are memoised.
_UsageName = tuple[str, str]
_USAGE_NAMES: dict[str, _UsageName | None] = {}
_USAGE_NAMES_MAX: Final = 512
_MEMO_KEY_TYPES: Final = (str, istr)


def _usage_name(raw_name: object) -> _UsageName | None:
    name = str(raw_name).strip().lower()
    match = _USAGE_HEADER.match(name)
    if match is None:
        return None
    # canonical as a rule spells its header: "01m" is the 1m window
    return name, f"x-mbx-{match[1]}-{int(match[2])}{match[3]}"


_RuleKey = tuple[str, str, int]


def _key(rule: RateLimitRule) -> _RuleKey:
    return (rule.kind, rule.interval, rule.interval_num)


class _Window:
    """The count of one rule in the current fixed window."""

    __slots__ = ("budget", "length_ms", "rule", "start_ms", "used")

    def __init__(self, rule: RateLimitRule, budget: int) -> None:
        self.rule = rule  # replaced by set_rules only with a rule of the same window
        self.budget = budget
        self.length_ms = rule.window_s * 1000  # read on every request and response
        self.start_ms = -1
        self.used = 0

    def roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.length_ms
        if start != self.start_ms:
            self.start_ms, self.used = start, 0

    def ms_until_reset(self, now_ms: int) -> int:
        return self.start_ms + self.length_ms - now_ms


class RateLimiter:
    """Pre-send budget for one client (the WS API client may share it), per Binance rule.

    ``acquire`` reserves weight/orders/raw requests in every window before a request goes out;
    ``observe_headers`` raises local counts to what the server reports (other bots on the IP);
    ``block`` stops everything after a 429/418 until its ``Retry-After`` has passed.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        rules: Sequence[RateLimitRule],
        share: float = 1.0,
        name: str = "binance",
        max_wait_s: float = 10.0,
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if not max_wait_s >= 0.0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self._clock = clock
        self._share = share
        self._name = name
        self._max_wait_s = max_wait_s
        self._windows: dict[_RuleKey, _Window] = {}
        self._windows_by_header: dict[str, _Window] = {}
        self._reported: dict[str, int] = {}
        self._blocked_until = 0.0  # on clock.monotonic()
        self._banned_until = 0.0
        self._line: deque[asyncio.Future[None]] = deque()
        self._head_wakeup: asyncio.Timeout | None = None
        self._waits = 0
        self._wait_seconds_total = 0.0
        self._rejected_local = 0
        self._blocks = 0
        self.set_rules(rules)

    # -- configuration ---------------------------------------------------------------------

    def set_rules(self, rules: Sequence[RateLimitRule]) -> None:
        """Replace the rules (after exchangeInfo). Counts of windows that still exist are kept;
        an empty list keeps the current rules, since no limits at all is never the truth."""
        if not rules:
            return
        windows: dict[_RuleKey, _Window] = {}
        for rule in sorted(rules, key=lambda r: r.limit, reverse=True):
            # a duplicate window keeps its strictest limit: the smallest one, sorted last
            key = _key(rule)
            window = self._windows.get(key) or windows.get(key) or _Window(rule, 0)
            window.rule, window.budget = rule, max(1, math.floor(rule.limit * self._share))
            windows[key] = window
        self._windows = windows
        # One window per header: (kind, interval, number) is unique and S/M/H/D differ.
        self._windows_by_header = {
            f"x-mbx-{_HEADER_WORD[w.rule.kind]}-{w.rule.header_suffix.lower()}": w
            for w in windows.values()
            if w.rule.kind in _HEADER_WORD  # RAW_REQUESTS has no header
        }
        self._wake_head()

    # -- sending ---------------------------------------------------------------------------

    async def acquire(self, *, weight: int, orders: int = 0, raw: int = 1) -> None:
        """Reserve budget for one request, waiting (FIFO) up to ``max_wait_s`` for windows to
        reset. Raises :class:`RateLimitedError` while blocked, when the wait would be longer,
        or when the request alone exceeds a budget."""
        per_kind: dict[str, int] = {"REQUEST_WEIGHT": weight, "ORDERS": orders, "RAW_REQUESTS": raw}
        if any(amount < 0 for amount in per_kind.values()):
            raise ValueError(f"negative rate-limit amount: {per_kind}")
        self._raise_if_blocked()
        amounts = self._amounts(per_kind)
        self._raise_if_never_fits(amounts)
        if not self._line and self._try_take(amounts):
            return
        await self._wait_in_line(per_kind)

    def _amounts(self, per_kind: Mapping[str, int]) -> list[tuple[_Window, int]]:
        """What this request costs in each window that counts it (rules may change while it
        waits, so this is recomputed after every wake-up)."""
        return [(w, per_kind[w.rule.kind]) for w in self._windows.values() if per_kind[w.rule.kind]]

    def _raise_if_blocked(self) -> None:
        remaining = self.blocked_for_s()
        if remaining > 0:
            self._rejected_local += 1
            banned = self._banned_until > self._clock.monotonic()
            raise RateLimitedError(
                f"{self._name}: requests blocked by the venue for {remaining:.1f}s",
                retry_after_s=remaining,
                banned=banned,
            )

    def _raise_if_never_fits(self, amounts: list[tuple[_Window, int]]) -> None:
        for window, amount in amounts:
            if amount > window.budget:
                self._rejected_local += 1
                raise RateLimitedError(
                    f"{self._name}: {amount} exceeds the whole {window.rule.kind} "
                    f"budget of {window.budget} per {window.rule.header_suffix}",
                    retry_after_s=float(window.rule.window_s),
                )

    def _try_take(self, amounts: list[tuple[_Window, int]]) -> bool:
        now_ms = self._clock.now_ms()
        for window, amount in amounts:
            window.roll(now_ms)
            if window.used + amount > window.budget:
                return False
        for window, amount in amounts:
            window.used += amount
        return True

    def _seconds_until_fits(self, amounts: list[tuple[_Window, int]]) -> float:
        now_ms = self._clock.now_ms()
        waits_ms = [w.ms_until_reset(now_ms) for w, amount in amounts if w.used + amount > w.budget]
        return max(waits_ms, default=0) / 1000

    async def _wait_in_line(self, per_kind: Mapping[str, int]) -> None:
        # Only the head of the line takes budget, so a small request never overtakes a large
        # one queued before it; a future per waiter is its "your turn" signal.
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        if self._line[0] is turn:
            turn.set_result(None)
        started = self._clock.monotonic()
        self._waits += 1
        try:
            await turn
            await self._wait_as_head(per_kind, deadline=started + self._max_wait_s)
        finally:
            self._wait_seconds_total += self._clock.monotonic() - started
            was_head = self._line[0] is turn
            self._line.remove(turn)
            if was_head and self._line and not self._line[0].done():
                self._line[0].set_result(None)

    async def _wait_as_head(self, per_kind: Mapping[str, int], deadline: float) -> None:
        while True:
            # re-checked after every wake-up: a block may have arrived, headers may have raised
            # counts, set_rules() may have changed the budgets
            self._raise_if_blocked()
            amounts = self._amounts(per_kind)
            self._raise_if_never_fits(amounts)
            if self._try_take(amounts):
                return
            wait_s = self._seconds_until_fits(amounts)
            if self._clock.monotonic() + wait_s > deadline:
                self._rejected_local += 1
                raise RateLimitedError(
                    f"{self._name}: rate-limit budget exhausted for {wait_s:.1f}s",
                    retry_after_s=wait_s,
                )
            await self._sleep_unless_woken(wait_s)

    async def _sleep_unless_woken(self, seconds: float) -> None:
        # An open-ended timeout scope is the stdlib's way to interrupt an await from outside
        # (block() and set_rules() reschedule it to now) without spawning a task.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None) as scope:
                self._head_wakeup = scope
                try:
                    await self._clock.sleep(seconds)
                finally:
                    self._head_wakeup = None

    def _wake_head(self) -> None:
        scope = self._head_wakeup
        if scope is not None and not scope.expired():
            scope.reschedule(asyncio.get_running_loop().time())

    # -- feedback from the venue -----------------------------------------------------------

    def observe_headers(self, headers: Mapping[str, str], *, sent_ms: int | None = None) -> None:
        """Raise local counts to the server's ``X-MBX-USED-WEIGHT-*``/``X-MBX-ORDER-COUNT-*``.

        ``sent_ms`` (when the request left) lets a response that straddled a window boundary be
        ignored for that window: its count may belong to the window that has just ended.
        """
        now_ms = self._clock.now_ms()
        memo = _USAGE_NAMES
        for raw_name, raw_value in headers.items():
            if type(raw_name) in _MEMO_KEY_TYPES:
                try:
                    usage = memo[raw_name]
                except KeyError:
                    usage = _usage_name(raw_name)
                    if len(memo) < _USAGE_NAMES_MAX:
                        memo[raw_name] = usage
            else:
                usage = _usage_name(raw_name)
            if usage is None:
                continue
            try:
                value = int(str(raw_value).strip())
            except ValueError:
                continue
            if value < 0:
                continue
            name, canonical = usage
            self._reported[name] = value
            window = self._windows_by_header.get(canonical)
            if window is not None:
                window.roll(now_ms)
                if sent_ms is None or sent_ms >= window.start_ms:
                    window.used = max(window.used, value)

    def block(self, retry_after_s: float, *, banned: bool, reason: str) -> None:
        """Stop every request until now + ``retry_after_s`` (a 429, a 418 ban, -1003/-1015).
        A longer block extends the current one; a shorter one never shortens it."""
        seconds = retry_after_s if math.isfinite(retry_after_s) and retry_after_s > 0 else 0.0
        until = self._clock.monotonic() + seconds
        self._blocks += 1
        self._blocked_until = max(self._blocked_until, until)
        if banned:
            self._banned_until = max(self._banned_until, until)
        log.warning(
            "rate_limit_blocked",
            name=self._name,
            retry_after_s=seconds,
            banned=banned,
            reason=reason,
        )
        self._wake_head()

    def blocked_for_s(self) -> float:
        """Seconds until requests may be sent again; 0.0 when not blocked."""
        return max(0.0, self._blocked_until - self._clock.monotonic())

    # -- reporting -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain-JSON state for the heartbeat. ``rejected_local`` counts every
        :class:`RateLimitedError` raised here (blocked, too heavy, or too long a wait);
        ``blocks`` counts calls of :meth:`block`."""
        now_ms = self._clock.now_ms()
        rules: list[dict[str, Any]] = []
        for window in self._windows.values():
            window.roll(now_ms)
            rules.append(
                {
                    "kind": window.rule.kind,
                    "window": window.rule.header_suffix,
                    "limit": window.rule.limit,
                    "budget": window.budget,
                    "used": window.used,
                    "remaining": max(0, window.budget - window.used),
                }
            )
        return {
            "name": self._name,
            "share": self._share,
            "rules": rules,
            "reported": dict(self._reported),
            "blocked_for_s": self.blocked_for_s(),
            "banned": self._banned_until > self._clock.monotonic(),
            "waiting": len(self._line),
            "waits": self._waits,
            "wait_seconds_total": self._wait_seconds_total,
            "rejected_local": self._rejected_local,
            "blocks": self._blocks,
        }
