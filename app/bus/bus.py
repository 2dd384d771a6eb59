"""The event bus: typed channels, fan-out topics, pattern subscriptions, and the two ways of
delivering to a component's handlers.

Components never hold a queue. They get a `Sender[T]` for each channel they may write (so mypy
proves a strategy cannot write `order.request`) and register `async def on_…(msg)` handlers.
Who calls the handlers is the runtime's business:

- live/paper (`Bus()`): each subscription owns a bounded `Inbox` with its channel's overflow
  policy, and the supervisor runs one `deliver()` task per subscription. Handlers of one
  subscriber never run concurrently (a per-subscriber lock is taken once it has two inboxes).
- replay (`Bus(replay=True)`): publishing appends to one global FIFO and `run_until_idle()` runs
  the handlers one at a time, in publish order, until nothing is left — lock-step, deterministic,
  and never re-entrant, so a backtest cannot run ahead of its own executor.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from app.bus.catalogue import (
    ALL_SPECS,
    CapacityClass,
    ChannelPattern,
    ChannelRef,
    ChannelSpec,
    Delivery,
    spec_for,
)
from app.bus.inbox import ChannelClosed, Inbox
from app.bus.names import matches, split_pattern, tokens_overlap

T = TypeVar("T")
Handler = Callable[[T], Awaitable[None]]

DEFAULT_CAPACITIES: Mapping[CapacityClass, int] = {
    CapacityClass.MARKET: 4096,
    CapacityClass.ORDER: 1024,
    CapacityClass.DEFAULT: 1024,
}


class BusError(Exception):
    pass


class WiringError(BusError):
    """The channels were connected in a way the catalogue forbids (a bug, found at start-up)."""


class NoReceiver(BusError):
    """A point-to-point channel was written while nobody receives it."""


class _Subscriber:
    __slots__ = ("lock", "name", "subscriptions")

    def __init__(self, name: str) -> None:
        self.name = name
        self.subscriptions: list[Subscription[Any]] = []
        self.lock: asyncio.Lock | None = None


class Subscription(Generic[T]):
    """One handler bound to one channel or pattern for one subscriber."""

    __slots__ = ("_owner", "handled", "handler", "in_flight", "inbox", "source", "spec")

    def __init__(
        self,
        owner: _Subscriber,
        source: str,
        spec: ChannelSpec[T],
        handler: Handler[T],
        inbox: Inbox[T] | None,
    ) -> None:
        self._owner = owner
        self.source = source
        self.spec = spec
        self.handler = handler
        self.inbox = inbox
        self.handled = 0
        self.in_flight: T | None = None

    @property
    def subscriber(self) -> str:
        return self._owner.name

    @property
    def name(self) -> str:
        return f"{self._owner.name}<{self.source}"

    @property
    def depth(self) -> int:
        return len(self.inbox) if self.inbox is not None else 0

    async def deliver(self) -> None:
        """Run the handler on every message until end of stream (live mode only).

        An exception from the handler propagates to the supervisor with `in_flight` still set,
        so the failing message can be named; a restarted `deliver()` continues after it.
        """
        inbox = self.inbox
        if inbox is None:
            raise BusError("deliver() is for live buses; a replay bus uses run_until_idle()")
        handler = self.handler
        owner = self._owner
        pending = inbox.pending
        take_nowait = inbox.take_nowait
        while True:
            if pending:
                item = take_nowait()
            else:
                try:
                    item = await inbox.take()
                except ChannelClosed:
                    return
            try:
                lock = owner.lock
                if lock is None:
                    await handler(item)
                else:
                    async with lock:
                        await handler(item)
            except BaseException:
                # Zero-cost until it happens: remember which message broke the handler.
                self.in_flight = item
                raise
            self.handled += 1


class Topic(Generic[T]):
    """One concrete channel: counts what is published and routes it to its subscriptions."""

    __slots__ = (
        "_bus",
        "_inboxes",
        "_key",
        "_p2p",
        "_replay",
        "_types",
        "closed",
        "name",
        "published",
        "spec",
        "subscriptions",
        "unrouted",
    )

    def __init__(self, bus: Bus, name: str, spec: ChannelSpec[T]) -> None:
        self._bus = bus
        self.name = name
        self.spec = spec
        self._types = spec.item_types
        self._key = spec.key
        self._p2p = spec.delivery is Delivery.POINT_TO_POINT
        self._replay = bus.replay
        self.subscriptions: list[Subscription[T]] = []
        self._inboxes: list[Inbox[T]] = []
        self.published = 0
        self.unrouted = 0
        self.closed = False

    async def publish(self, message: T) -> None:
        if self.closed:
            raise ChannelClosed(self.name)
        if not isinstance(message, self._types):
            raise TypeError(f"{self.name} carries {self._types}, not {type(message).__name__}")
        self.published += 1
        subscriptions = self.subscriptions
        if not subscriptions:
            if self._p2p:
                raise NoReceiver(f"nobody receives {self.name}")
            self.unrouted += 1
            return
        if self._replay:
            ready = self._bus.ready
            for subscription in subscriptions:
                ready.append((subscription, message))
            return
        key: Hashable = self._key(message) if self._key is not None else None
        for inbox in self._inboxes:
            try:
                if not inbox.try_put(message, key):
                    await inbox.put(message, key)
            except ChannelClosed:
                # A fan-out subscriber that already stopped (during shutdown) just misses it;
                # the inbox counts it. A lone receiver that stopped is the sender's problem.
                if self._p2p:
                    raise

    def attach(self, subscription: Subscription[T]) -> None:
        self.subscriptions.append(subscription)
        if subscription.inbox is not None:
            self._inboxes.append(subscription.inbox)

    def close(self) -> None:
        """No more messages on this channel; exact subscribers see end of stream after draining."""
        self.closed = True
        for subscription in self.subscriptions:
            if subscription.source == self.name and subscription.inbox is not None:
                subscription.inbox.close()


class Sender(Generic[T]):
    """The send end of one channel. `await sender.send(msg)`; blocks only on BLOCK channels."""

    __slots__ = ("name", "send", "topic")

    def __init__(self, topic: Topic[T]) -> None:
        self.topic = topic
        self.name = topic.name
        self.send: Callable[[T], Awaitable[None]] = topic.publish


class Bus:
    def __init__(
        self,
        *,
        capacities: Mapping[CapacityClass, int] | None = None,
        replay: bool = False,
    ) -> None:
        self.capacities = {**DEFAULT_CAPACITIES, **(capacities or {})}
        self.replay = replay
        self.ready: deque[tuple[Subscription[Any], Any]] = deque()
        self._topics: dict[str, Topic[Any]] = {}
        self._patterns: list[tuple[str, Subscription[Any]]] = []
        self._subscribers: dict[str, _Subscriber] = {}

    # -- wiring ----------------------------------------------------------------------------
    def sender(self, ref: ChannelRef[T]) -> Sender[T]:
        return Sender(self._topic(ref.name, ref.spec))

    def subscribe(
        self,
        source: ChannelRef[T] | ChannelPattern[T],
        handler: Handler[T],
        *,
        subscriber: str,
        capacity: int | None = None,
    ) -> Subscription[T]:
        """Deliver messages of a channel (or of every channel matching a pattern) to a handler."""
        if isinstance(source, ChannelRef):
            topic = self._topic(source.name, source.spec)
            if topic.spec.delivery is Delivery.POINT_TO_POINT and topic.subscriptions:
                raise WiringError(
                    f"{topic.name} is point-to-point and already received by "
                    f"{topic.subscriptions[0].subscriber}"
                )
            subscription = self._new_subscription(
                subscriber, source.name, source.spec, handler, capacity
            )
            topic.attach(subscription)
            return subscription
        return self._subscribe_pattern(source.pattern, source.spec, handler, subscriber, capacity)

    def subscribe_pattern(
        self, pattern: str, handler: Handler[Any], *, subscriber: str, capacity: int | None = None
    ) -> Subscription[Any]:
        """Untyped subscription across families (`market.>`); they must share an overflow policy."""
        tokens = split_pattern(pattern)
        specs = [spec for spec in ALL_SPECS if tokens_overlap(tokens, spec.tokens)]
        if not specs:
            raise WiringError(f"pattern {pattern!r} matches no channel in the catalogue")
        if len({spec.overflow for spec in specs}) > 1:
            raise WiringError(f"pattern {pattern!r} mixes overflow policies; subscribe separately")
        return self._subscribe_pattern(pattern, specs[0], handler, subscriber, capacity)

    def _subscribe_pattern(
        self,
        pattern: str,
        spec: ChannelSpec[T],
        handler: Handler[T],
        subscriber: str,
        capacity: int | None,
    ) -> Subscription[T]:
        tokens = split_pattern(pattern)
        for other in ALL_SPECS:
            if other.delivery is Delivery.POINT_TO_POINT and tokens_overlap(tokens, other.tokens):
                raise WiringError(f"pattern {pattern!r} covers point-to-point {other.template}")
        subscription = self._new_subscription(subscriber, pattern, spec, handler, capacity)
        self._patterns.append((pattern, subscription))
        for topic in self._topics.values():
            if matches(pattern, topic.name):
                topic.attach(subscription)
        return subscription

    def _new_subscription(
        self,
        subscriber: str,
        source: str,
        spec: ChannelSpec[T],
        handler: Handler[T],
        capacity: int | None,
    ) -> Subscription[T]:
        owner = self._subscribers.get(subscriber)
        if owner is None:
            owner = self._subscribers[subscriber] = _Subscriber(subscriber)
        inbox: Inbox[T] | None = None
        if not self.replay:
            bound = capacity if capacity is not None else self.capacities[spec.capacity_class]
            inbox = Inbox(f"{subscriber}<{source}", bound, spec.overflow)
        subscription = Subscription(owner, source, spec, handler, inbox)
        owner.subscriptions.append(subscription)
        if len(owner.subscriptions) > 1 and owner.lock is None:
            owner.lock = asyncio.Lock()
        return subscription

    def _topic(self, name: str, spec: ChannelSpec[T]) -> Topic[T]:
        topic = self._topics.get(name)
        if topic is None:
            if spec_for(name) is not spec:
                raise WiringError(f"{name} does not belong to {spec.template}")
            topic = Topic(self, name, spec)
            for pattern, subscription in self._patterns:
                if matches(pattern, name):
                    topic.attach(subscription)
            self._topics[name] = topic
        return topic

    # -- observation and lifecycle ------------------------------------------------------------
    @property
    def topics(self) -> list[Topic[Any]]:
        return list(self._topics.values())

    def subscriptions(self, subscriber: str | None = None) -> list[Subscription[Any]]:
        if subscriber is not None:
            owner = self._subscribers.get(subscriber)
            return list(owner.subscriptions) if owner else []
        return [s for owner in self._subscribers.values() for s in owner.subscriptions]

    def close_subscriber(self, subscriber: str) -> None:
        """End of stream for every inbox of a subscriber: it drains what it has, then stops."""
        for subscription in self.subscriptions(subscriber):
            if subscription.inbox is not None:
                subscription.inbox.close()

    async def run_until_idle(self, max_messages: int | None = None) -> int:
        """Replay mode: run handlers in publish order until no message is pending.

        Returns how many deliveries ran. A handler's exception propagates: a backtest stops loud.
        """
        if not self.replay:
            raise BusError("run_until_idle() is for replay buses")
        ready = self.ready
        delivered = 0
        while ready and (max_messages is None or delivered < max_messages):
            subscription, message = ready.popleft()
            subscription.in_flight = message
            await subscription.handler(message)
            subscription.in_flight = None
            subscription.handled += 1
            delivered += 1
        return delivered
