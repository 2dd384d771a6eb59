"""The simulator's WebSocket API (spot ``/ws-api/v3``, futures ``/ws-fapi/v1``).

Requests are ``{"id", "method", "params"}``; answers ``{"id", "status": 200, "result",
"rateLimits"}`` or ``{"id", "status", "error": {"code", "msg"}, "rateLimits"}``, as Binance
sends them. Signed methods carry ``apiKey``, ``timestamp``, ``signature`` (and optionally
``recvWindow``) in ``params``; frames are decoded with ``parse_float=Decimal`` so the signed
text of every number survives (``exchange.sim.auth.verify_ws_api``).

Each request runs in its own task in the connection's task group, so one held request (the
"times out after accept" fault: no answer at all) or an added latency does not hold up the
others; every frame leaves through one outbox, in order. ``userDataStream.subscribe.signature``
(spot) subscribes the connection to the account's events, delivered as
``{"subscriptionId": N, "event": {...}}``; ``userDataStream.unsubscribe`` ends it. The
``serverShutdown`` hook announces a restart to every connection, as Binance does before
maintenance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from aiohttp import WSMsgType, web

from app.domain.clock import Clock
from exchange.sim.auth import AuthError, KeyStore, verify_ws_api
from exchange.sim.errors import SimError
from exchange.sim.gateway import Access, Operation, Outcome, SimGateway
from exchange.sim.replies import encode_json
from exchange.sim.user_hub import UserEventHub

__all__ = ["SUBSCRIBE_METHOD", "SimWsApiServer"]

SUBSCRIBE_METHOD: Final = "userDataStream.subscribe.signature"
UNSUBSCRIBE_METHOD: Final = "userDataStream.unsubscribe"
_SIGNATURE_PARAMS: Final = ("apiKey", "signature")


def _pong(params: Mapping[str, str], server_now_ms: int, api_key: str | None) -> dict[str, Any]:
    return {}


def _server_time(
    params: Mapping[str, str], server_now_ms: int, api_key: str | None
) -> dict[str, Any]:
    return {"serverTime": server_now_ms}


# Through the gateway like every other method: they cost weight 1 and a ban, a 429 window or
# added latency applies to them as on Binance (and as to REST /time).
_BUILT_IN: Final[Mapping[str, Operation]] = {
    "ping": Operation("ping", Access.NONE, 1, _pong),
    "time": Operation("time", Access.NONE, 1, _server_time),
}


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.subscriptions: dict[int, int] = {}  # subscriptionId -> hub token

    def send(self, payload: Mapping[str, Any]) -> None:
        self.outbox.put_nowait(encode_json(payload))


class SimWsApiServer:
    def __init__(
        self,
        *,
        clock: Clock,
        keys: KeyStore,
        gateway: SimGateway,
        operations: Mapping[str, Operation],
        hub: UserEventHub | None = None,
        heartbeat_s: float = 20.0,
    ) -> None:
        self._clock = clock
        self._keys = keys
        self._gateway = gateway
        self._operations = operations
        self._hub = hub
        self._heartbeat_s = heartbeat_s
        self._connections: list[_Connection] = []
        self._next_subscription = 0
        self.accepted = 0

    def add_routes(self, app: web.Application, path: str) -> None:
        app.router.add_get(path, self._serve)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def send_server_shutdown(self) -> None:
        for connection in list(self._connections):
            event = {"e": "serverShutdown", "E": self._gateway.server_now_ms()}
            connection.send({"event": event})

    def drop_all(self) -> None:
        """Cut every connection without a close frame (the drop-streams fault)."""
        for connection in list(self._connections):
            transport = connection.request.transport
            if transport is not None:
                transport.abort()

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self._heartbeat_s, max_msg_size=1 << 20)
        await ws.prepare(request)
        self.accepted += 1
        connection = _Connection(ws, request)
        self._connections.append(connection)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = {group.create_task(self._send(connection))}
                async for message in ws:
                    if message.type is not WSMsgType.TEXT:
                        continue
                    tasks.add(group.create_task(self._answer(connection, message.data)))
                    tasks = {task for task in tasks if not task.done()}
                for task in tasks:  # the client is gone: held requests and the sender too
                    task.cancel()
        except* ConnectionError:
            pass
        finally:
            self._connections.remove(connection)
            if self._hub is not None:
                for token in connection.subscriptions.values():
                    self._hub.unsubscribe(token)
        return ws

    async def _send(self, connection: _Connection) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                text = await connection.outbox.get()
                await connection.ws.send_str(text)

    async def _answer(self, connection: _Connection, text: str) -> None:
        try:
            request = json.loads(text, parse_float=Decimal)
        except ValueError:
            connection.send(_error_frame(None, 400, SimError(-1100, "Malformed request.").body()))
            return
        if not isinstance(request, dict):
            connection.send(_error_frame(None, 400, SimError(-1100, "Malformed request.").body()))
            return
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            body = SimError(-1102, "Mandatory parameter 'method' was not sent.").body()
            connection.send(_error_frame(request_id, 400, body))
            return
        if method in (SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD) and self._hub is not None:
            connection.send(self._subscription(connection, request_id, method, params))
            return
        operation = _BUILT_IN.get(method) or self._operations.get(method)
        if operation is None:
            body = {"code": -1020, "msg": "This operation is not supported."}
            connection.send(_error_frame(request_id, 400, body))
            return
        try:
            api_key = self._authenticate(operation, params)
        except AuthError as exc:
            connection.send(_error_frame(request_id, exc.status, exc.body()))
            return
        plain = {k: _text(v) for k, v in params.items() if k not in _SIGNATURE_PARAMS}
        outcome = await self._gateway.execute(operation, plain, channel="ws_api", api_key=api_key)
        if outcome.hold_s > 0 or outcome.status == 0:
            await self._clock.sleep(outcome.hold_s)
            return  # never answered: the client's request times out, status unknown
        connection.send(self._frame(request_id, outcome))

    def _authenticate(self, operation: Operation, params: Mapping[str, object]) -> str | None:
        if operation.access is Access.SIGNED:
            now_ms = self._gateway.server_now_ms()
            return verify_ws_api(params=params, keys=self._keys, now_ms=now_ms).api_key
        if operation.access is Access.API_KEY:
            api_key = params.get("apiKey")
            if not isinstance(api_key, str) or api_key not in self._keys:
                raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
            return api_key
        return None

    def _subscription(
        self, connection: _Connection, request_id: object, method: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        assert self._hub is not None
        if method == UNSUBSCRIBE_METHOD:
            wanted = params.get("subscriptionId")
            for subscription_id in list(connection.subscriptions):
                if wanted is None or wanted == subscription_id:
                    self._hub.unsubscribe(connection.subscriptions.pop(subscription_id))
            return {"id": request_id, "status": 200, "result": {}, "rateLimits": []}
        try:
            verify_ws_api(params=params, keys=self._keys, now_ms=self._gateway.server_now_ms())
        except AuthError as exc:
            return _error_frame(request_id, exc.status, exc.body())
        subscription_id = self._next_subscription
        self._next_subscription += 1

        def deliver(event: dict[str, Any]) -> None:
            connection.send({"subscriptionId": subscription_id, "event": event})

        connection.subscriptions[subscription_id] = self._hub.subscribe(deliver)
        verdict = self._gateway.usage.charge(self._gateway.server_now_ms(), weight=2)
        return {
            "id": request_id,
            "status": 200,
            "result": {"subscriptionId": subscription_id},
            "rateLimits": self._gateway.usage.rate_limits(verdict),
        }

    def _frame(self, request_id: object, outcome: Outcome) -> dict[str, Any]:
        rate_limits = (
            self._gateway.usage.rate_limits(outcome.usage) if outcome.usage is not None else []
        )
        if outcome.error is None:
            return {
                "id": request_id,
                "status": 200,
                "result": outcome.result,
                "rateLimits": rate_limits,
            }
        error = dict(outcome.error)
        if outcome.retry_after_s is not None:
            server_now = self._gateway.server_now_ms()
            if outcome.until_ms is not None:
                # The injector's ban/window ends on the unskewed clock; the answer speaks the
                # server's (possibly skewed) time, as ``serverTime`` does.
                until = outcome.until_ms + server_now - self._clock.now_ms()
            else:
                until = server_now + math.ceil(outcome.retry_after_s * 1000)
            error["data"] = {"serverTime": server_now, "retryAfter": until}
        return _error_frame(request_id, outcome.status, error, rate_limits)


def _error_frame(
    request_id: object,
    status: int,
    error: Mapping[str, object],
    rate_limits: list[dict[str, object]] | None = None,
) -> dict[str, Any]:
    return {
        "id": request_id,
        "status": status,
        "error": dict(error),
        "rateLimits": rate_limits or [],
    }


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | dict):
        return encode_json(value)
    return str(value)
