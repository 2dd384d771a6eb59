"""A client for the Binance WebSocket API: JSON requests correlated by id over one connection.

A request is ``{"id", "method", "params"}``; its answer carries the same ``id`` with
``status`` 200 and a ``result``, or an HTTP-like status and ``error: {code, msg}``. Signed
requests put ``apiKey``, ``timestamp``, ``recvWindow`` and ``signature`` inside ``params``;
the signature covers every other param, sorted by name, raw UTF-8 (see
:func:`exchange.binance.signing.ws_api_signature_payload`). Frames without an ``id`` are events
(user data) and go, unparsed, to the ``on_event`` callback, in arrival order.

The reader is not a hidden background task: whoever connects also runs :meth:`WsApiClient.run`
(normally inside its own ``TaskGroup``) and it returns when the connection closes. ``on_event``
is awaited by that reader, so it must not itself wait for a response on the same client: the
response could never be read. Hand events to a queue instead.

Outcomes follow ``app.errors``: an error response becomes the class chosen by the code table
(429/418 also block the rate limiter); ``-1021`` resyncs the clock, re-signs and retries once;
a timeout or a dropped connection after a request went out is ``StatusUnknownError`` for a
request that changes state, ``TransientError`` for a read. Timeouts run on the injected clock.
Logs name the method and request id only, never the API key, the signature or signed params.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import structlog

from app.domain.clock import Clock
from app.errors import (
    ClockSkewError,
    FatalVenueError,
    RateLimitedError,
    StatusUnknownError,
    TransientError,
    VenueError,
)
from exchange.binance.clock_timeout import wait_with_clock
from exchange.binance.errors import error_from_ws_api
from exchange.binance.ratelimit import RateLimiter
from exchange.binance.signing import Signer, format_value, ws_api_signature_payload
from exchange.binance.timesync import FetchServerTime, ServerTime

__all__ = ["EventHandler", "WsApiClient", "wait_with_clock"]

log = structlog.get_logger(__name__)

EventHandler = Callable[[bytes | str], Awaitable[None]]

# Binance counts a WebSocket API connection attempt against the IP's request weight.
CONNECT_WEIGHT = 2
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_INTERVAL_LETTER = {"SECOND": "s", "MINUTE": "m", "HOUR": "h", "DAY": "d"}
_USAGE_HEADER_KIND = {"REQUEST_WEIGHT": "used-weight", "ORDERS": "order-count"}


@dataclass(slots=True)
class _Pending:
    method: str
    mutating: bool
    future: asyncio.Future[dict[str, Any]]


class WsApiClient:
    """One WebSocket API connection: requests with ids, answers by id, events to a callback."""

    def __init__(
        self,
        *,
        url: str,
        clock: Clock,
        server_time: ServerTime,
        api_key: str | None,
        signer: Signer | None,
        limiter: RateLimiter | None,
        recv_window_ms: int,
        request_timeout_s: float,
        session: aiohttp.ClientSession | None = None,
        name: str,
        on_event: EventHandler | None = None,
        fetch_server_time_ms: FetchServerTime | None = None,
        heartbeat_s: float | None = 30.0,
    ) -> None:
        self._url = url
        self._clock = clock
        self.server_time = server_time
        self._api_key = api_key
        self._signer = signer
        self.limiter = limiter
        self._recv_window_ms = recv_window_ms
        self._request_timeout_s = request_timeout_s
        self._session = session
        self._owns_session = session is None
        self.name = name
        self._on_event = on_event
        # Without a REST fetcher the WS API's own ``time`` method measures the offset.
        self._fetch_server_time_ms = fetch_server_time_ms or self.fetch_server_time_ms
        self._heartbeat_s = heartbeat_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self.requests = 0
        self.failures = 0
        self.events = 0
        self.late_responses = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def connect(self) -> None:
        """Open the connection. Nothing has been sent if this fails, so it is a
        ``TransientError`` (or ``RateLimitedError`` while the limiter is blocked)."""
        if self.connected:
            return
        if self.limiter is not None:
            await self.limiter.acquire(weight=CONNECT_WEIGHT)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        connecting = self._session.ws_connect(
            self._url,
            heartbeat=self._heartbeat_s,
            autoping=True,
            max_msg_size=_MAX_MESSAGE_BYTES,
        )
        try:
            self._ws = await wait_with_clock(self._clock, connecting, self._request_timeout_s)
        except TimeoutError:
            raise TransientError("connect timed out", endpoint=self.name) from None
        except aiohttp.WSServerHandshakeError as error:
            raise TransientError(
                f"handshake refused with status {error.status}", endpoint=self.name
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            raise TransientError(
                f"cannot connect: {type(error).__name__}", endpoint=self.name
            ) from None
        log.info("ws_api_connected", name=self.name)

    async def close(self) -> None:
        """Close the connection (``run`` then returns) and the session if this client made it."""
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            await ws.close()
        self._fail_pending()
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        """Read frames until the connection closes: answers complete their requests, everything
        else goes to ``on_event``. Pending requests fail when it returns; an exception raised
        by ``on_event`` propagates (after closing the connection)."""
        ws = self._ws
        if ws is None:
            return
        try:
            async for message in ws:
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    await self._dispatch(message.data)
                elif message.type is aiohttp.WSMsgType.ERROR:
                    error_type = type(ws.exception()).__name__
                    log.warning("ws_api_read_error", name=self.name, error_type=error_type)
                    break
        finally:
            if self._ws is ws:
                self._ws = None
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
            self._fail_pending()
            log.info("ws_api_disconnected", name=self.name, close_code=ws.close_code)

    async def _dispatch(self, data: bytes | str) -> None:
        frame = _parse_frame(data)
        if frame is not None and "id" in frame and ("status" in frame or "result" in frame):
            request_id = str(frame["id"])
            pending = self._pending.get(request_id)
            if pending is not None and not pending.future.done():
                pending.future.set_result(frame)
            else:
                # Its request already timed out (or the server could not read our id).
                self.late_responses += 1
                log.debug("ws_api_unmatched_response", name=self.name, request_id=request_id)
            return
        self.events += 1
        if self._on_event is not None:
            await self._on_event(data)

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(
                    _lost(entry.method, entry.mutating, "connection closed before the answer")
                )

    # -- requests ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, object] | None = None,
        *,
        signed: bool = False,
        mutating: bool = False,
        weight: int = 1,
        orders: int = 0,
    ) -> Any:
        """Send one request and return its ``result``.

        ``mutating`` marks a request that changes state (placing, cancelling): a lost answer is
        then ``StatusUnknownError``. A ``-1021`` answer to a signed request resyncs the server
        time and sends the request once more, freshly signed.
        """
        try:
            return await self._request_once(method, params, signed, mutating, weight, orders)
        except ClockSkewError:
            if not signed:
                raise
            offset_ms = await self.server_time.sync(self._fetch_server_time_ms)
            log.warning("clock_resynced_after_1021", endpoint=method, offset_ms=offset_ms)
            return await self._request_once(method, params, signed, mutating, weight, orders)

    async def fetch_server_time_ms(self) -> int:
        """The server's clock through the WS API ``time`` method."""
        result = await self.request("time")
        server_ms = result.get("serverTime") if isinstance(result, dict) else None
        if isinstance(server_ms, bool) or not isinstance(server_ms, int):
            raise TransientError("time: no serverTime in the answer", endpoint=self.name)
        return server_ms

    async def _request_once(
        self,
        method: str,
        params: Mapping[str, object] | None,
        signed: bool,
        mutating: bool,
        weight: int,
        orders: int,
    ) -> Any:
        if self.limiter is not None:
            await self.limiter.acquire(weight=weight, orders=orders)
        ws = self._ws
        if ws is None or ws.closed:
            raise TransientError("not connected", endpoint=method)
        request_id = str(next(self._ids))
        frame = {"id": request_id, "method": method, "params": self._prepare(params, signed)}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(method, mutating, future)
        self.requests += 1
        try:
            try:
                await ws.send_str(json.dumps(frame, separators=(",", ":")))
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as error:
                # aiohttp refuses before writing anything once the transport is closing.
                raise TransientError(f"not sent: {type(error).__name__}", endpoint=method) from None
            try:
                answer = await wait_with_clock(self._clock, future, self._request_timeout_s)
            except TimeoutError:
                raise _lost(method, mutating, "no answer in time") from None
        except VenueError:
            self.failures += 1
            raise
        finally:
            self._pending.pop(request_id, None)
        return self._result_of(answer, method, mutating)

    def _prepare(self, params: Mapping[str, object] | None, signed: bool) -> dict[str, Any]:
        prepared = {key: _json_value(value) for key, value in (params or {}).items()}
        prepared = {key: value for key, value in prepared.items() if value is not None}
        if not signed:
            return prepared
        if self._api_key is None:
            raise FatalVenueError("this request needs exchange.api_key, which is not set")
        if self._signer is None:
            raise FatalVenueError(
                "this request needs a signing key (exchange.api_secret or private_key_file)"
            )
        prepared["apiKey"] = self._api_key
        if self._recv_window_ms > 0:
            prepared["recvWindow"] = self._recv_window_ms
        prepared["timestamp"] = self.server_time.timestamp_ms()
        prepared["signature"] = self._signer.sign(ws_api_signature_payload(prepared))
        return prepared

    def _result_of(self, answer: Mapping[str, Any], method: str, mutating: bool) -> Any:
        usage = _usage_as_headers(answer.get("rateLimits"))
        if usage and self.limiter is not None:
            self.limiter.observe_headers(usage)
        status = answer.get("status", 200)
        if status == 200 and "error" not in answer:
            return answer.get("result")
        self.failures += 1
        raw_error = answer.get("error")
        error = error_from_ws_api(
            status if isinstance(status, int) and not isinstance(status, bool) else 500,
            raw_error if isinstance(raw_error, Mapping) else {},
            method=method,
            mutating=mutating,
            now_ms=self.server_time.timestamp_ms(),
        )
        if isinstance(error, RateLimitedError) and self.limiter is not None:
            self.limiter.block(error.retry_after_s, banned=error.banned, reason=str(error))
        raise error

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connected": self.connected,
            "pending": len(self._pending),
            "requests": self.requests,
            "failures": self.failures,
            "events": self.events,
            "late_responses": self.late_responses,
        }


def _lost(method: str, mutating: bool, what: str) -> VenueError:
    if mutating:
        return StatusUnknownError(what, endpoint=method)
    return TransientError(what, endpoint=method)


def _parse_frame(data: bytes | str) -> dict[str, Any] | None:
    try:
        # Decimal keeps any numeric amount in an answer exact.
        frame = json.loads(data, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    return frame if isinstance(frame, dict) else None


def _json_value(value: object) -> object:
    """A param as it goes into the JSON frame: ints, bools and strings as they are (Binance
    reads them back to the text it signs), amounts and enums as their wire strings."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return format_value(value)


def _usage_as_headers(rate_limits: object) -> dict[str, str]:
    """WS API ``rateLimits`` counts in the shape of REST usage headers, for the shared limiter."""
    headers: dict[str, str] = {}
    if not isinstance(rate_limits, list):
        return headers
    for entry in rate_limits:
        if not isinstance(entry, Mapping):
            continue
        kind = _USAGE_HEADER_KIND.get(str(entry.get("rateLimitType")))
        letter = _INTERVAL_LETTER.get(str(entry.get("interval")))
        number, count = entry.get("intervalNum"), entry.get("count")
        if kind and letter and isinstance(number, int) and isinstance(count, int):
            headers[f"x-mbx-{kind}-{number}{letter}"] = str(count)
    return headers
