"""A bounded single-consumer queue with an overflow policy: the receive side of every channel.

Written for the hot path rather than on top of `asyncio.Queue`: one consumer future instead of a
deque of getters, a non-blocking `try_put` so a publish that fits does not create a coroutine,
and policies that never block (drop-oldest, conflate-latest-per-key) implemented in place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class Overflow(StrEnum):
    """What a full queue does with one more message."""

    BLOCK = "block"  # the sender waits; nothing is ever dropped (orders)
    DROP_OLDEST = "drop_oldest"  # the oldest pending message is dropped and counted
    CONFLATE = "conflate"  # a pending message with the same key is replaced and counted


class ChannelClosed(Exception):
    """Raised to a sender after the receiving side was closed, and to the consumer at
    end of stream (closed and drained)."""


class Inbox(Generic[T]):
    """Bounded FIFO for one consumer. Counters are plain ints read by the health monitor."""

    __slots__ = (
        "_by_key",
        "_closed",
        "_getter",
        "_items",
        "_putters",
        "capacity",
        "conflated",
        "dropped",
        "high_water",
        "name",
        "overflow",
        "pending",
        "rejected_closed",
        "take_nowait",
        "taken",
        "try_put",
    )

    def __init__(self, name: str, capacity: int, overflow: Overflow) -> None:
        if capacity < 1:
            raise ValueError(f"inbox {name!r}: capacity must be at least 1")
        self.name = name
        self.capacity = capacity
        self.overflow = overflow
        self._items: deque[T] = deque()
        self._by_key: OrderedDict[Hashable, T] = OrderedDict()
        # The container that holds pending messages; its truth value is the cheapest
        # "anything there?" test for the delivery loop.
        self.pending: deque[T] | OrderedDict[Hashable, T] = (
            self._by_key if overflow is Overflow.CONFLATE else self._items
        )
        policies = {
            Overflow.BLOCK: self._put_block,
            Overflow.DROP_OLDEST: self._put_drop_oldest,
            Overflow.CONFLATE: self._put_conflate,
        }
        # Bound once to the policy's own methods so the hot path tests no policy.
        #: Enqueue without waiting; False only when a BLOCK inbox is full (or has waiters).
        self.try_put: Callable[[T, Hashable], bool] = policies[overflow]
        #: Remove and return the oldest message; the caller checked that one is there.
        self.take_nowait: Callable[[], T] = (
            self._take_keyed if overflow is Overflow.CONFLATE else self._take_fifo
        )
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.taken = 0
        self.dropped = 0
        self.conflated = 0
        self.rejected_closed = 0
        self.high_water = 0

    # -- observation -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.pending)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def blocked_senders(self) -> int:
        return sum(1 for putter in self._putters if not putter.done())

    # -- sending ---------------------------------------------------------------------------
    def _refuse_closed(self) -> None:
        self.rejected_closed += 1
        raise ChannelClosed(self.name)

    def _wake_getter(self, depth: int) -> None:
        if depth > self.high_water:
            self.high_water = depth
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():  # a consumer cancelled mid-wait leaves a cancelled future
                getter.set_result(None)

    def _put_block(self, item: T, key: Hashable = None) -> bool:
        if self._closed:
            self._refuse_closed()
        items = self._items
        if len(items) >= self.capacity or self._putters:
            return False
        items.append(item)
        self._wake_getter(len(items))
        return True

    def _put_drop_oldest(self, item: T, key: Hashable = None) -> bool:
        if self._closed:
            self._refuse_closed()
        items = self._items
        if len(items) >= self.capacity:
            items.popleft()
            self.dropped += 1
        items.append(item)
        self._wake_getter(len(items))
        return True

    def _put_conflate(self, item: T, key: Hashable = None) -> bool:
        if self._closed:
            self._refuse_closed()
        by_key = self._by_key
        if key in by_key:
            by_key[key] = item  # keeps the key's place in line: fairness across keys
            self.conflated += 1
            return True
        if len(by_key) >= self.capacity:
            by_key.popitem(last=False)
            self.dropped += 1
        by_key[key] = item
        self._wake_getter(len(by_key))
        return True

    async def put(self, item: T, key: Hashable = None) -> None:
        """Enqueue, waiting for room when the policy is BLOCK. Waiting senders go in FIFO order."""
        if self.try_put(item, key):
            return
        loop = asyncio.get_running_loop()
        queue_at_back = True
        while True:
            putter: asyncio.Future[None] = loop.create_future()
            if queue_at_back:
                self._putters.append(putter)
            else:  # woken but beaten to the room: keep our place at the head of the line
                self._putters.appendleft(putter)
            queue_at_back = False
            try:
                await putter
            except asyncio.CancelledError:
                if putter.done() and not putter.cancelled():
                    self._wake_putter()  # woken, then cancelled: hand the room on
                else:
                    with contextlib.suppress(ValueError):
                        self._putters.remove(putter)
                raise
            if self._closed:
                self._refuse_closed()
            items = self._items
            if len(items) < self.capacity:
                items.append(item)
                self._wake_getter(len(items))
                return

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters:
            putter = putters.popleft()
            if not putter.done():
                putter.set_result(None)
                return

    # -- receiving -------------------------------------------------------------------------
    def _take_fifo(self) -> T:
        item = self._items.popleft()
        self.taken += 1
        if self._putters:
            self._wake_putter()
        return item

    def _take_keyed(self) -> T:
        _, item = self._by_key.popitem(last=False)
        self.taken += 1
        return item

    async def take(self) -> T:
        """Wait for the next message. Raises ChannelClosed once closed and drained."""
        while not len(self):
            if self._closed:
                raise ChannelClosed(self.name)
            if self._getter is not None:
                raise RuntimeError(f"inbox {self.name!r} has a second consumer")
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                await getter
            finally:
                # Whoever resolved the getter already cleared it; a cancelled wait clears here.
                if self._getter is getter:
                    self._getter = None
        return self.take_nowait()

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """End of stream: pending messages remain deliverable; new ones are refused."""
        if self._closed:
            return
        self._closed = True
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)  # the sender wakes, sees the close and raises

    def discard(self) -> int:
        """Drop everything pending (after a drain deadline) and say how much was lost."""
        lost = len(self)
        self._items.clear()
        self._by_key.clear()
        return lost
