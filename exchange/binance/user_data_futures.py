"""The USDⓈ-M user-data stream: a REST listenKey and a WebSocket on the ``/private`` route.

``POST /fapi/v1/listenKey`` makes a key that lives 60 minutes; every ``PUT`` extends it by 60
more (we send one every ``keepalive_s``, 30 minutes by default). ``-1125`` on a keepalive or a
``listenKeyExpired`` event means the key is gone: a new key and a new connection. Since the
2025 routing change user data is only delivered on ``/private``, at
``{futures_private}/ws?listenKey=<key>`` with an optional ``events=`` allow list (an event not
named there is never sent, so the list always includes ``listenKeyExpired``). Connections are
cut after 24 hours; any disconnect reconnects with a jittered backoff, re-using the key while
it is still alive. On shutdown the key is closed (``DELETE``), briefly and on a best-effort
basis: shutdown never waits on it.

The listenKey is a credential (anyone holding it reads the account's activity): logs and the
snapshot show its last 4 characters only, and no URL that carries it is ever logged.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from app.domain.clock import Clock
from app.errors import (
    FatalVenueError,
    NotFoundError,
    RateLimitedError,
    TransientError,
    VenueError,
)
from exchange.binance.futures import FuturesClient
from exchange.binance.parse_user import (
    ListenKeyExpired,
    MalformedEvent,
    StreamTerminated,
    UnknownUserEvent,
    decode_futures_user_event,
)
from exchange.binance.user_data import (
    Backoff,
    ResyncHandler,
    ThrottledCounter,
    UserEventsHandler,
    mask_secret,
    sole_exception,
)
from exchange.binance.ws_api import wait_with_clock

__all__ = ["LISTEN_KEY_TTL_S", "FuturesUserDataStream", "listen_key_stream_url"]

log = structlog.get_logger(__name__)

LISTEN_KEY_TTL_S = 3600.0
# A key older than this is not worth reconnecting with: it may lapse during the handshake.
_REUSE_MARGIN_S = 120.0
_EXPIRED = "listen_key_expired"
_CONTROL = (StreamTerminated, ListenKeyExpired, UnknownUserEvent)


def listen_key_stream_url(
    private_url: str, listen_key: str, events: Sequence[str] | None = None
) -> str:
    """The user-data WebSocket URL for one key on the routed ``/private`` endpoint."""
    url = f"{private_url.rstrip('/')}/ws?listenKey={quote(listen_key, safe='')}"
    if events:
        wanted = list(dict.fromkeys([*events, "listenKeyExpired"]))
        url += "&events=" + "/".join(quote(event, safe="") for event in wanted)
    return url


class FuturesUserDataStream:
    """Keeps a USDⓈ-M listenKey alive and its stream connected; decoded events go downstream."""

    def __init__(
        self,
        *,
        client: FuturesClient,
        private_url: str,
        clock: Clock,
        on_events: UserEventsHandler,
        on_resync: ResyncHandler | None = None,
        keepalive_s: float = 1800.0,
        keepalive_retry_s: float = 60.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_age_s: float = 23.5 * 3600,  # Binance cuts at 24 h; leave on our own terms first
        connect_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        heartbeat_s: float | None = 30.0,
        events: Sequence[str] | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        name: str = "futures_user_data",
    ) -> None:
        if not 0 < keepalive_s < LISTEN_KEY_TTL_S:
            raise ValueError(f"keepalive_s must be within the key's 60 minutes, got {keepalive_s}")
        self._client = client
        self._private_url = private_url
        self._clock = clock
        self._on_events = on_events
        self._on_resync = on_resync
        self._keepalive_s = keepalive_s
        self._keepalive_retry_s = keepalive_retry_s
        self._backoff = Backoff(
            initial_s=backoff_initial_s, max_s=backoff_max_s, rng=rng or random.Random()
        )
        self._max_age_s = max_age_s
        self._connect_timeout_s = connect_timeout_s
        self._close_timeout_s = close_timeout_s
        self._heartbeat_s = heartbeat_s
        self._events_filter = tuple(events) if events else None
        self._session = session
        self.name = name
        self._malformed = ThrottledCounter(clock)
        self._key: str | None = None
        self._key_extended_at = 0.0  # clock.monotonic() of the last create or keepalive
        self._stop_reason: str | None = None
        self._connected = False
        self._connections = 0
        self._reconnects = 0
        self._keys_created = 0
        self._keepalives = 0
        self._keepalive_failures = 0
        self._expired = 0
        self._events = 0
        self._unknown = 0
        self._last_error: str | None = None

    async def run(self) -> None:
        """Create a key, connect, keep both alive and deliver events until cancelled. Only a
        ``FatalVenueError`` or an exception raised by ``on_events``/``on_resync`` ends it.
        Whatever ends it, the key is closed on the way out (bounded by ``close_timeout_s``)."""
        owns_session = self._session is None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            reason = "start"
            while True:
                retry_after_s = 0.0
                try:
                    if not self._key_reusable():
                        await self._create_key()
                    reason = await self._one_connection(reason)
                except FatalVenueError:
                    raise
                except VenueError as error:
                    reason = f"error: {type(error).__name__}"
                    self._last_error = self._redact(str(error))[:200]
                    if isinstance(error, RateLimitedError):
                        retry_after_s = error.retry_after_s
                if reason == _EXPIRED:
                    self._expired += 1
                    self._key = None
                self._reconnects += 1
                delay_s = max(self._backoff.next_delay(), retry_after_s)
                log.info("user_data_reconnecting", name=self.name, reason=reason, delay_s=delay_s)
                await self._clock.sleep(delay_s)
        finally:
            await self._close_key()
            if owns_session and self._session is not None:
                await self._session.close()
                self._session = None

    # -- the key ------------------------------------------------------------------------------

    def _key_reusable(self) -> bool:
        age_s = self._clock.monotonic() - self._key_extended_at
        return self._key is not None and age_s < LISTEN_KEY_TTL_S - _REUSE_MARGIN_S

    async def _create_key(self) -> None:
        self._key = await self._client.create_listen_key()
        self._key_extended_at = self._clock.monotonic()
        self._keys_created += 1
        log.info("listen_key_created", name=self.name, listen_key=mask_secret(self._key))

    async def _keep_alive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        next_at = self._key_extended_at + self._keepalive_s
        while True:
            await self._clock.sleep(max(0.0, next_at - self._clock.monotonic()))
            try:
                await self._client.keepalive_listen_key()
            except NotFoundError:
                log.warning("listen_key_gone", name=self.name, listen_key=mask_secret(self._key))
                self._stop_reason = _EXPIRED
                await ws.close()
                return
            except FatalVenueError:
                raise
            except VenueError as error:
                # The key still has most of its hour; try again soon rather than give it up.
                self._keepalive_failures += 1
                self._last_error = self._redact(str(error))[:200]
                log.warning("listen_key_keepalive_failed", name=self.name, error=self._last_error)
                next_at = self._clock.monotonic() + self._keepalive_retry_s
                continue
            self._keepalives += 1
            self._key_extended_at = self._clock.monotonic()
            next_at = self._key_extended_at + self._keepalive_s

    async def _close_key(self) -> None:
        key, self._key = self._key, None
        if key is None:
            return
        try:
            async with asyncio.timeout(self._close_timeout_s):
                await self._client.close_listen_key()
        except (VenueError, TimeoutError, aiohttp.ClientError, OSError) as error:
            log.info("listen_key_close_failed", name=self.name, error_type=type(error).__name__)
        else:
            log.info("listen_key_closed", name=self.name, listen_key=mask_secret(key))

    # -- the connection -----------------------------------------------------------------------

    async def _one_connection(self, previous: str) -> str:
        assert self._key is not None  # run() makes one first
        assert self._session is not None
        url = listen_key_stream_url(self._private_url, self._key, self._events_filter)
        connecting = self._session.ws_connect(url, heartbeat=self._heartbeat_s, autoping=True)
        try:
            ws = await wait_with_clock(self._clock, connecting, self._connect_timeout_s)
        except TimeoutError:
            raise TransientError("connect timed out", endpoint=self.name) from None
        except aiohttp.WSServerHandshakeError as error:
            # Its text would quote the URL, and with it the key.
            raise TransientError(
                f"handshake refused with status {error.status}", endpoint=self.name
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            raise TransientError(
                f"cannot connect: {type(error).__name__}", endpoint=self.name
            ) from None
        self._stop_reason = None
        self._connected = True
        self._connections += 1
        log.info("user_data_connected", name=self.name, listen_key=mask_secret(self._key))
        try:
            if self._connections > 1 and self._on_resync is not None:
                await self._on_resync(f"reconnected after {previous}")
            self._backoff.reset()
            async with asyncio.TaskGroup() as tasks:
                keepalive = tasks.create_task(self._keep_alive(ws))
                timer = tasks.create_task(self._expire(ws))
                try:
                    return await self._read(ws)
                finally:
                    keepalive.cancel()
                    timer.cancel()
        except BaseExceptionGroup as group:
            raise sole_exception(group) from None
        finally:
            self._connected = False
            await ws.close()

    async def _expire(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await self._clock.sleep(self._max_age_s)
        self._stop_reason = "max_age"
        await ws.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        async for message in ws:
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                if await self._handle(message.data):
                    return _EXPIRED
            elif message.type is aiohttp.WSMsgType.ERROR:
                break
        return self._stop_reason or "disconnected"

    async def _handle(self, raw: bytes | str) -> bool:
        """Deliver one frame's events; True when it says the key expired."""
        try:
            decoded = decode_futures_user_event(raw)
        except MalformedEvent as error:
            if self._malformed.hit():
                log.warning(
                    "user_data_malformed_event",
                    name=self.name,
                    error=self._redact(str(error))[:200],
                    suppressed=self._malformed.take_suppressed(),
                )
            return False
        domain = tuple(event for event in decoded if not isinstance(event, _CONTROL))
        self._unknown += sum(isinstance(event, UnknownUserEvent) for event in decoded)
        if domain:
            self._events += len(domain)
            await self._on_events(domain)
        if any(isinstance(event, ListenKeyExpired) for event in decoded):
            log.warning("listen_key_expired", name=self.name, listen_key=mask_secret(self._key))
            return True
        return False

    def _redact(self, text: str) -> str:
        if self._key:
            return text.replace(self._key, mask_secret(self._key) or "…")
        return text

    def snapshot(self) -> dict[str, Any]:
        """Plain-JSON state for the heartbeat; the key appears as its last 4 characters."""
        return {
            "name": self.name,
            "connected": self._connected,
            "listen_key": mask_secret(self._key),
            "keys_created": self._keys_created,
            "keepalives": self._keepalives,
            "keepalive_failures": self._keepalive_failures,
            "connections": self._connections,
            "reconnects": self._reconnects,
            "expired": self._expired,
            "events": self._events,
            "unknown": self._unknown,
            "malformed": self._malformed.count,
            "last_error": self._last_error,
        }
