"""Timeouts measured on an injected ``Clock``, so a ``ManualClock`` drives them in tests.

``wait_with_clock`` bounds any awaitable by clock time; the WebSocket clients use it for
connects and answers. Re-exported by ``exchange.binance.ws_api``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from app.domain.clock import Clock, SystemClock

__all__ = ["wait_with_clock"]

T = TypeVar("T")


async def wait_with_clock(clock: Clock, awaitable: Awaitable[T], timeout_s: float) -> T:
    """Await ``awaitable`` for at most ``timeout_s`` seconds of ``clock`` time.

    Raises ``TimeoutError`` (and cancels the awaitable) when the clock runs out first, so a
    ``ManualClock`` drives timeouts in tests exactly as real time does in production.

    The awaitable runs in the caller's own task under ``asyncio.timeout``; the only extra task
    is an alarm, owned by a task group here, that sleeps on ``clock`` and then moves the
    deadline to "now". A cancelled awaitable unwinds in the caller before ``TimeoutError`` is
    raised, so nothing is left running once this returns.
    """
    if type(clock) is SystemClock:
        # Real time is the loop's time: a plain timeout needs no alarm task (about 50 µs and
        # five loop turns less per request on the order path).
        async with asyncio.timeout(timeout_s):
            return await awaitable
    failure: Exception | None = None
    async with asyncio.timeout(None) as deadline, asyncio.TaskGroup() as group:
        alarm = group.create_task(_expire_after(clock, timeout_s, deadline))
        try:
            return await awaitable
        except Exception as error:  # noqa: BLE001 - re-raised below, outside the task group
            # Raised inside the group it would come out wrapped in an ExceptionGroup.
            failure = error
        finally:
            alarm.cancel()
    # Only a failure gets here: a result returned above and an expiry raised TimeoutError.
    assert failure is not None
    raise failure


async def _expire_after(clock: Clock, timeout_s: float, deadline: asyncio.Timeout) -> None:
    await clock.sleep(timeout_s)
    deadline.reschedule(asyncio.get_running_loop().time())
