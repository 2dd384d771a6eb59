"""Who hears the simulated account's user-data events, and the futures listenKeys.

``UserEventHub`` fans one market's events out, in the order the engine made them, to every
open subscription (spot: WebSocket-API ``userDataStream.subscribe.signature``; futures: a
``/private`` connection of a live listenKey). The simulator holds one account per market, so
every subscriber sees every event.

``ListenKeys`` behaves as USD-M's listenKey endpoints do: POST creates a key or, when the key
is still valid, returns the same one and extends it; PUT extends it (``-1125`` when unknown);
DELETE closes it; a key not extended within 60 minutes expires, and its connections get
``listenKeyExpired`` before they are closed.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from exchange.sim.errors import SimError

__all__ = ["LISTEN_KEY_VALIDITY_MS", "ListenKeys", "UserEventHub"]

LISTEN_KEY_VALIDITY_MS: Final = 60 * 60 * 1000
_KEY_ALPHABET: Final = string.ascii_letters + string.digits
_KEY_LENGTH: Final = 64

Listener = Callable[[dict[str, Any]], None]


class UserEventHub:
    def __init__(self) -> None:
        self._listeners: dict[int, Listener] = {}
        self._next_token = 0
        self.published = 0
        self._subscribed = asyncio.Event()

    def subscribe(self, listener: Listener) -> int:
        self._next_token += 1
        self._listeners[self._next_token] = listener
        self._subscribed.set()
        return self._next_token

    async def wait_for_subscribers(self, count: int) -> None:
        """Until at least ``count`` listeners are subscribed: lets tests and tools start
        trading once a user-data client is listening, without polling."""
        while len(self._listeners) < count:
            self._subscribed.clear()
            await self._subscribed.wait()

    def unsubscribe(self, token: int) -> None:
        self._listeners.pop(token, None)

    @property
    def subscriber_count(self) -> int:
        return len(self._listeners)

    def publish(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.published += 1
            for listener in list(self._listeners.values()):
                listener(event)


@dataclass(slots=True)
class _Key:
    api_key: str
    expires_ms: int


class ListenKeys:
    def __init__(self, *, seed: int) -> None:
        self._rng = random.Random(f"{seed}:listenKey")
        self._keys: dict[str, _Key] = {}

    def create(self, api_key: str, now_ms: int) -> str:
        for key, entry in self._keys.items():
            if entry.api_key == api_key and entry.expires_ms > now_ms:
                entry.expires_ms = now_ms + LISTEN_KEY_VALIDITY_MS
                return key
        key = "".join(self._rng.choice(_KEY_ALPHABET) for _ in range(_KEY_LENGTH))
        self._keys[key] = _Key(api_key, now_ms + LISTEN_KEY_VALIDITY_MS)
        return key

    def keepalive(self, api_key: str, now_ms: int) -> str:
        for key, entry in self._keys.items():
            if entry.api_key == api_key and entry.expires_ms > now_ms:
                entry.expires_ms = now_ms + LISTEN_KEY_VALIDITY_MS
                return key
        raise SimError(-1125)

    def close(self, api_key: str) -> None:
        for key in [k for k, entry in self._keys.items() if entry.api_key == api_key]:
            del self._keys[key]

    def is_valid(self, key: str, now_ms: int) -> bool:
        entry = self._keys.get(key)
        return entry is not None and entry.expires_ms > now_ms

    def expires_ms(self, key: str) -> int | None:
        entry = self._keys.get(key)
        return entry.expires_ms if entry is not None else None

    def expire_all(self) -> list[str]:
        """Expire every key now (the ``listen_key_expired`` fault); returns them."""
        expired = list(self._keys)
        self._keys.clear()
        return expired

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))
