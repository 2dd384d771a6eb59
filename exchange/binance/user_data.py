"""What the two user-data streams share: callback types, reconnect backoff, throttled warnings.

The streams themselves live in :mod:`exchange.binance.user_data_spot` (Spot, subscribed over
the WebSocket API) and :mod:`exchange.binance.user_data_futures` (USDⓈ-M, a REST listenKey and
a ``/private`` WebSocket). Both follow one contract:

* ``on_events`` gets every decoded domain event (orders, fills, balances, account updates) in
  arrival order; an exception from it is a downstream bug and ends ``run()``.
* ``on_resync(reason)`` is called after every (re)subscription except the very first: events
  may have been missed while the stream was down, so the executor must reconcile over REST.
* Reconnects wait an exponential backoff with full jitter on the injected clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator

from app.domain.clock import Clock
from exchange.binance.parse_user import UserEvent

__all__ = [
    "Backoff",
    "ResyncHandler",
    "ThrottledCounter",
    "UserEventsHandler",
    "mask_secret",
    "sole_exception",
]

# Called with the domain events of one frame (never the control records such as
# StreamTerminated, which the streams act on themselves).
UserEventsHandler = Callable[[tuple[UserEvent, ...]], Awaitable[None]]
ResyncHandler = Callable[[str], Awaitable[None]]


class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(max, initial·2ⁿ)).

    Full jitter spreads the reconnects of many clients cut at once (a venue restart) instead of
    having them all return together. ``reset`` after a connection proved healthy.
    """

    def __init__(self, *, initial_s: float, max_s: float, rng: random.Random) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s} and {max_s}")
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._max_s, self._initial_s * 2 ** min(self.attempt, 62))
        self.attempt += 1
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class ThrottledCounter:
    """Counts occurrences and says when one may be logged: at most once per ``interval_s``, so
    a venue that starts sending garbage cannot flood the log. ``suppressed`` is how many were
    counted but not logged since the last logged one."""

    def __init__(self, clock: Clock, *, interval_s: float = 60.0) -> None:
        self._clock = clock
        self._interval_s = interval_s
        self._last_logged: float | None = None
        self.count = 0
        self.suppressed = 0

    def hit(self) -> bool:
        """Count one occurrence; True when this one should be logged."""
        self.count += 1
        now = self._clock.monotonic()
        if self._last_logged is not None and now - self._last_logged < self._interval_s:
            self.suppressed += 1
            return False
        self._last_logged = now
        return True

    def take_suppressed(self) -> int:
        suppressed, self.suppressed = self.suppressed, 0
        return suppressed


def mask_secret(secret: str | None) -> str | None:
    """Only the last 4 characters of a credential (a listenKey), for logs and snapshots."""
    if secret is None:
        return None
    return f"…{secret[-4:]}" if len(secret) > 4 else "…"


def sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception that ended a ``TaskGroup``: its first leaf that is not a cancellation.

    The streams run a reader and a timer or two beside their main loop; only one of them fails
    for a real reason, and callers want that exception, not a group around it.
    """
    for error in _leaves(group):
        if not isinstance(error, asyncio.CancelledError):
            return error
    return asyncio.CancelledError()


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error
