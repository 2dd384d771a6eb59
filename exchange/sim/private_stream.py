"""The USD-M user-data stream of the simulator: ``/private/ws?listenKey=...`` connections.

A connection names its listenKey (``?listenKey=`` on the routed ``/private`` endpoint, or
``/ws/<listenKey>`` as the legacy path has it) and optionally ``events=A/B`` to receive only
those event types; it then gets every account event as a raw JSON object (no envelope), in
the order the engine produced them. An unknown or expired key is refused at the handshake
with a close frame (1008). When a key expires (no keepalive for 60 minutes, or the
``listen_key_expired`` fault) its connections get ``{"e": "listenKeyExpired", ...}`` and are
closed, as Binance does. ``run()`` watches expiry on the clock; the owner runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from app.domain.clock import Clock
from exchange.sim.replies import encode_json
from exchange.sim.user_hub import ListenKeys, UserEventHub

__all__ = ["SimPrivateStreamServer"]

_POLICY_VIOLATION: Final = 1008
_EXPIRY_CHECK_S: Final = 1.0


@dataclass(eq=False)
class _Listener:
    ws: web.WebSocketResponse
    request: web.Request
    listen_key: str
    events: frozenset[str] | None
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)


class SimPrivateStreamServer:
    def __init__(
        self,
        *,
        clock: Clock,
        hub: UserEventHub,
        listen_keys: ListenKeys,
        server_now_ms: Any,
        heartbeat_s: float = 20.0,
    ) -> None:
        self._clock = clock
        self._hub = hub
        self._keys = listen_keys
        self._server_now_ms = server_now_ms
        self._heartbeat_s = heartbeat_s
        self._listeners: list[_Listener] = []
        self.accepted = 0
        self.refused = 0

    def add_routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/ws", self._serve)
        app.router.add_get(f"{prefix}/ws/{{listen_key}}", self._serve)

    @property
    def connection_count(self) -> int:
        return len(self._listeners)

    def expire_all(self) -> None:
        """Expire every key now and tell its connections (the ``listen_key_expired`` fault)."""
        for key in self._keys.expire_all():
            self._expired(key)

    def drop_all(self) -> None:
        for listener in list(self._listeners):
            if listener.request.transport is not None:
                listener.request.transport.abort()

    async def send_server_shutdown(self) -> None:
        frame = json.dumps({"e": "serverShutdown", "E": self._server_now_ms()})
        for listener in list(self._listeners):
            listener.outbox.put_nowait(frame)

    async def run(self) -> None:
        """Expires keys whose validity ran out, forever (the owner cancels it)."""
        while True:
            await self._clock.sleep(_EXPIRY_CHECK_S)
            now_ms = self._server_now_ms()
            for key in {listener.listen_key for listener in self._listeners}:
                if not self._keys.is_valid(key, now_ms):
                    self._expired(key)

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        listen_key = request.match_info.get("listen_key") or request.query.get("listenKey", "")
        wanted = request.query.get("events")
        ws = web.WebSocketResponse(heartbeat=self._heartbeat_s)
        await ws.prepare(request)
        self.accepted += 1
        if not self._keys.is_valid(listen_key, self._server_now_ms()):
            self.refused += 1
            await ws.close(code=_POLICY_VIOLATION, message=b"invalid listenKey")
            return ws
        events = frozenset(wanted.split("/")) | {"listenKeyExpired"} if wanted else None
        listener = _Listener(ws, request, listen_key, events)
        self._listeners.append(listener)
        token = self._hub.subscribe(lambda event: self._deliver(listener, event))
        try:
            async with asyncio.TaskGroup() as group:
                sender = group.create_task(self._send(listener))
                async for _ in ws:
                    pass  # clients send nothing but pongs, which aiohttp handles
                sender.cancel()
        except* ConnectionError:
            pass
        finally:
            self._hub.unsubscribe(token)
            self._listeners.remove(listener)
        return ws

    def _deliver(self, listener: _Listener, event: dict[str, Any]) -> None:
        if listener.events is not None and event.get("e") not in listener.events:
            return
        listener.outbox.put_nowait(encode_json(event))

    async def _send(self, listener: _Listener) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                text = await listener.outbox.get()
                if text is None:
                    await listener.ws.close()
                    return
                await listener.ws.send_str(text)

    def _expired(self, key: str) -> None:
        now_ms = self._server_now_ms()
        frame = json.dumps({"e": "listenKeyExpired", "E": now_ms, "listenKey": key})
        for listener in self._listeners:
            if listener.listen_key == key:
                listener.outbox.put_nowait(frame)
                listener.outbox.put_nowait(None)
