"""The Spot user-data stream: a signed ``userDataStream.subscribe.signature`` on the WS API.

Binance retired Spot listenKeys; account events now arrive on a WebSocket API connection as
``{"subscriptionId": N, "event": {...}}`` after one signed subscribe request (it works for
HMAC keys too, unlike ``session.logon``). The subscription ends with ``eventStreamTerminated``
(subscribe again on the same connection), the server may announce ``serverShutdown``, and
every connection is cut after 24 hours; each of those, a dropped connection or a failed
subscribe, leads to a fresh connection after a jittered backoff. A reconnect signs a new
subscribe request: an old signature would fail ``recvWindow``.

Events are read by the client's reader into a queue and handled by the stream's own loop, so
subscribing again never waits on the very reader that must deliver the answer.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
from typing import Any

import aiohttp
import structlog

from app.domain.clock import Clock
from app.errors import FatalVenueError, RateLimitedError, TransientError, VenueError
from exchange.binance.parse_user import (
    ListenKeyExpired,
    MalformedEvent,
    StreamTerminated,
    UnknownUserEvent,
    decode_spot_user_event,
)
from exchange.binance.ratelimit import RateLimiter
from exchange.binance.signing import Signer
from exchange.binance.timesync import ServerTime
from exchange.binance.user_data import (
    Backoff,
    ResyncHandler,
    ThrottledCounter,
    UserEventsHandler,
    sole_exception,
)
from exchange.binance.ws_api import WsApiClient

__all__ = ["SUBSCRIBE_METHOD", "SpotUserDataStream"]

log = structlog.get_logger(__name__)

SUBSCRIBE_METHOD = "userDataStream.subscribe.signature"
SUBSCRIBE_WEIGHT = 2
_CONTROL = (StreamTerminated, ListenKeyExpired, UnknownUserEvent)


class _Signal(enum.StrEnum):
    CLOSED = "disconnected"
    MAX_AGE = "max_age"
    SERVER_SHUTDOWN = "server_shutdown"
    TERMINATED = "stream_terminated"


_Frames = asyncio.Queue[bytes | str | _Signal]


class SpotUserDataStream:
    """Keeps one Spot user-data subscription alive and hands its decoded events downstream."""

    def __init__(
        self,
        *,
        ws_api_url: str,
        clock: Clock,
        server_time: ServerTime,
        api_key: str,
        signer: Signer,
        limiter: RateLimiter | None,
        on_events: UserEventsHandler,
        on_resync: ResyncHandler | None = None,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_age_s: float = 23.5 * 3600,  # Binance cuts at 24 h; leave on our own terms first
        request_timeout_s: float = 10.0,
        recv_window_ms: int = 5000,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        name: str = "spot_user_data",
    ) -> None:
        self._url = ws_api_url
        self._clock = clock
        self._server_time = server_time
        self._api_key = api_key
        self._signer = signer
        self._limiter = limiter
        self._on_events = on_events
        self._on_resync = on_resync
        self._backoff = Backoff(
            initial_s=backoff_initial_s, max_s=backoff_max_s, rng=rng or random.Random()
        )
        self._max_age_s = max_age_s
        self._request_timeout_s = request_timeout_s
        self._recv_window_ms = recv_window_ms
        self._session = session
        self.name = name
        self._malformed = ThrottledCounter(clock)
        self._connected = False
        self._subscription_id: int | None = None
        self._subscriptions = 0
        self._reconnects = 0
        self._events = 0
        self._ignored = 0
        self._unknown = 0
        self._terminated = 0
        self._last_error: str | None = None
        self._resync_reason = "reconnected"

    async def run(self) -> None:
        """Connect, subscribe and deliver events until cancelled. Only a ``FatalVenueError``
        (bad key or signature: retrying cannot help) or an exception raised by ``on_events``
        or ``on_resync`` ends it; every other failure is followed by a reconnect."""
        owns_session = self._session is None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            while True:
                retry_after_s = 0.0
                try:
                    reason = await self._one_connection()
                except FatalVenueError:
                    raise
                except VenueError as error:
                    reason = f"error: {type(error).__name__}"
                    self._last_error = str(error)[:200]
                    if isinstance(error, RateLimitedError):
                        retry_after_s = error.retry_after_s
                self._reconnects += 1
                delay_s = max(self._backoff.next_delay(), retry_after_s)
                log.info("user_data_reconnecting", name=self.name, reason=reason, delay_s=delay_s)
                self._resync_reason = f"reconnected after {reason}"
                await self._clock.sleep(delay_s)
        finally:
            if owns_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _one_connection(self) -> str:
        frames: _Frames = asyncio.Queue()

        async def enqueue(frame: bytes | str) -> None:
            frames.put_nowait(frame)

        client = WsApiClient(
            url=self._url,
            clock=self._clock,
            server_time=self._server_time,
            api_key=self._api_key,
            signer=self._signer,
            limiter=self._limiter,
            recv_window_ms=self._recv_window_ms,
            request_timeout_s=self._request_timeout_s,
            session=self._session,
            name=self.name,
            on_event=enqueue,
        )
        try:
            await client.connect()
            self._connected = True
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read(client, frames))
                timer = tasks.create_task(self._expire(frames))
                try:
                    return await self._serve(client, frames)
                finally:
                    timer.cancel()
                    await client.close()
        except BaseExceptionGroup as group:
            raise sole_exception(group) from None
        finally:
            self._connected = False
            self._subscription_id = None
            await client.close()

    async def _read(self, client: WsApiClient, frames: _Frames) -> None:
        try:
            await client.run()
        finally:
            frames.put_nowait(_Signal.CLOSED)

    async def _expire(self, frames: _Frames) -> None:
        await self._clock.sleep(self._max_age_s)
        frames.put_nowait(_Signal.MAX_AGE)

    async def _serve(self, client: WsApiClient, frames: _Frames) -> str:
        await self._subscribe(client, self._resync_reason)
        self._backoff.reset()
        while True:
            item = await frames.get()
            if isinstance(item, _Signal):
                return item.value
            signal = await self._handle(item)
            if signal is _Signal.SERVER_SHUTDOWN:
                return signal.value
            if signal is _Signal.TERMINATED:
                self._terminated += 1
                log.info("user_data_terminated", name=self.name)
                await self._subscribe(client, "stream terminated")

    async def _subscribe(self, client: WsApiClient, resync_reason: str) -> None:
        self._subscription_id = None
        result = await client.request(
            SUBSCRIBE_METHOD, signed=True, mutating=False, weight=SUBSCRIBE_WEIGHT
        )
        subscription_id = result.get("subscriptionId") if isinstance(result, dict) else None
        if isinstance(subscription_id, bool) or not isinstance(subscription_id, int):
            raise TransientError(f"{SUBSCRIBE_METHOD}: no subscriptionId in the answer")
        self._subscription_id = subscription_id
        self._subscriptions += 1
        log.info("user_data_subscribed", name=self.name, subscription_id=subscription_id)
        if self._subscriptions > 1 and self._on_resync is not None:
            await self._on_resync(resync_reason)

    async def _handle(self, raw: bytes | str) -> _Signal | None:
        envelope = _envelope(raw)
        if envelope is not None:
            if _event_type(envelope) == "serverShutdown":
                log.info("user_data_server_shutdown", name=self.name)
                return _Signal.SERVER_SHUTDOWN
            subscription_id = envelope.get("subscriptionId")
            if subscription_id is not None and subscription_id != self._subscription_id:
                # Another subscription on this connection, or the one just terminated.
                self._ignored += 1
                return None
        try:
            decoded = decode_spot_user_event(raw)
        except MalformedEvent as error:
            self._report_malformed(error)
            return None
        domain = tuple(event for event in decoded if not isinstance(event, _CONTROL))
        self._unknown += sum(isinstance(event, UnknownUserEvent) for event in decoded)
        if domain:
            self._events += len(domain)
            await self._on_events(domain)
        if any(isinstance(event, StreamTerminated) for event in decoded):
            return _Signal.TERMINATED
        return None

    def _report_malformed(self, error: MalformedEvent) -> None:
        if self._malformed.hit():
            log.warning(
                "user_data_malformed_event",
                name=self.name,
                error=str(error)[:200],
                suppressed=self._malformed.take_suppressed(),
            )

    def snapshot(self) -> dict[str, Any]:
        """Plain-JSON state for the heartbeat."""
        return {
            "name": self.name,
            "connected": self._connected,
            "subscription_id": self._subscription_id,
            "subscriptions": self._subscriptions,
            "reconnects": self._reconnects,
            "events": self._events,
            "ignored": self._ignored,
            "unknown": self._unknown,
            "malformed": self._malformed.count,
            "terminated": self._terminated,
            "last_error": self._last_error,
        }


def _envelope(raw: bytes | str) -> dict[str, Any] | None:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # the decoder reports it as malformed
    return document if isinstance(document, dict) else None


def _event_type(envelope: dict[str, Any]) -> object:
    for inner in (envelope.get("event"), envelope.get("data"), envelope):
        if isinstance(inner, dict) and "e" in inner:
            return inner["e"]
    return None
