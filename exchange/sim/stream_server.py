"""The simulator's market-stream WebSocket endpoints, Binance-compatible, over aiohttp.

``SimStreamServer`` serves one shared :class:`~exchange.sim.market_feed.SimMarketFeed` (one
market timeline, as every Binance client sees the same market) on:

- ``/stream?streams=a/b/c``: combined streams, each frame ``{"stream": name, "data": {...}}``;
- ``/ws/<stream>``: one raw stream, the event alone.

``add_routes(app, prefix="")`` mounts both (a futures sim mounts them under ``/market`` and
``/public`` too; routes are not policed). One pump task, started and stopped with the app,
turns time into frames and queues each to the connections subscribed to its stream:

- paced (``speed`` a number): simulated time runs ``speed`` times as fast as the ``Clock``
  from ``start_ms``; the pump wakes every ``pump_interval_s`` on that clock;
- ``AS_FAST_AS_POSSIBLE``: simulated time moves ``step_ms`` per round without waiting on any
  clock, only while some client is connected, and only once every connection has sent what
  it was given (so a slow client slows the market instead of piling up memory).

Binance rules kept here: at most ``MAX_STREAMS_PER_CONNECTION`` (1024) streams a connection
(assumption: more is refused by closing with 1008 "policy violation"; Binance's exact answer
is undocumented); unknown stream names are accepted and stay silent; control messages
``SUBSCRIBE``, ``UNSUBSCRIBE`` and ``LIST_SUBSCRIPTIONS`` are answered with
``{"result": ..., "id": N}``, anything else with ``{"error": {"code", "msg"}, "id": N}``.
Pings are aiohttp's (``heartbeat_s``); aiohttp answers client pings.

Fault hooks for the fault injector: ``drop_all()`` (abort every socket, no close frame),
``send_server_shutdown()`` (Binance's ``{"e":"serverShutdown","E":...}``, sent unwrapped: the
docs describe it as an event, not a stream's data) and ``stall(seconds)`` (no frames for that
long on the clock; paced time keeps running, so a burst follows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeGuard

from aiohttp import WSMsgType, web

from app.domain.clock import Clock

__all__ = ["AS_FAST_AS_POSSIBLE", "MAX_STREAMS_PER_CONNECTION", "FrameSource", "SimStreamServer"]

AS_FAST_AS_POSSIBLE: Final = None
MAX_STREAMS_PER_CONNECTION: Final = 1024
_POLICY_VIOLATION: Final = 1008
_INVALID_REQUEST: Final = 2  # Binance's stream error code for a request it cannot serve
_INVALID_JSON: Final = 3


class FrameSource(Protocol):
    """What the pump reads: a ``SimMarketFeed``, or a timeline that also matches orders."""

    def frames_until(self, now_ms: int) -> list[tuple[str, bytes]]: ...


@dataclass(eq=False)
class _Client:
    """One accepted WebSocket, its subscriptions, and the frames queued for it."""

    ws: web.WebSocketResponse
    request: web.Request
    raw: bool
    streams: dict[str, None]  # ordered set: LIST_SUBSCRIPTIONS answers in subscription order
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def queue(self, text: str) -> None:
        self.idle.clear()
        self.outbox.put_nowait(text)


class SimStreamServer:
    """Serves a ``SimMarketFeed`` as Binance market streams (see the module docstring)."""

    def __init__(
        self,
        feed: FrameSource,
        *,
        clock: Clock,
        speed: float | None = 1.0,
        start_ms: int | None = None,
        pump_interval_s: float = 0.1,
        step_ms: int = 1_000,
        heartbeat_s: float = 20.0,
        server_now_ms: Callable[[], int] | None = None,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive or AS_FAST_AS_POSSIBLE, got {speed}")
        if pump_interval_s <= 0 or step_ms <= 0:
            raise ValueError("pump_interval_s and step_ms must be positive")
        self._feed = feed
        self._clock = clock
        self._speed = speed
        self._start_ms = start_ms
        self._pump_interval_s = pump_interval_s
        self._step_ms = step_ms
        self._heartbeat_s = heartbeat_s
        # Event times of control events: the server's clock (with any injected skew).
        self._server_now_ms = server_now_ms or clock.now_ms
        self._clients: list[_Client] = []
        self._changed = asyncio.Event()
        self._stalled_until: float | None = None
        self.accepted = 0  # connections accepted so far, refused ones included
        self.sim_now_ms: int | None = None  # simulated time the pump has reached
        # Measurement probe (benchmarks, latency tests): called with each frame right after it
        # was written to a client's socket.
        self.on_frame_sent: Callable[[str], None] | None = None

    # --- wiring ------------------------------------------------------------------------------

    def add_routes(self, app: web.Application, prefix: str = "") -> None:
        """Mount ``{prefix}/stream`` and ``{prefix}/ws/{stream}``. Frames flow only while the
        owner runs :meth:`run` (in its task group, next to the web server)."""
        app.router.add_get(f"{prefix}/stream", self._combined)
        app.router.add_get(f"{prefix}/ws/{{stream}}", self._raw)

    # --- what tests and the fault injector use -----------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._clients)

    async def wait_for_connections(self, count: int) -> None:
        """Return once exactly ``count`` clients are connected."""
        while len(self._clients) != count:
            self._changed.clear()
            await self._changed.wait()

    async def wait_for_accepted(self, count: int) -> None:
        """Return once at least ``count`` connections were accepted since the start."""
        while self.accepted < count:
            self._changed.clear()
            await self._changed.wait()

    def drop_all(self) -> None:
        """Cut every connection at the TCP level: clients see an abnormal closure."""
        for client in list(self._clients):
            transport = client.request.transport
            if transport is not None:
                transport.abort()

    async def send_server_shutdown(self) -> None:
        """Tell every client the server is going down (they should reconnect at once)."""
        event = json.dumps({"e": "serverShutdown", "E": self._server_now_ms()})
        for client in list(self._clients):
            client.queue(event)

    def stall(self, seconds: float) -> None:
        """Send no market frame for ``seconds`` on the clock (control replies still go)."""
        self._stalled_until = self._clock.monotonic() + seconds

    # --- connections -------------------------------------------------------------------------

    async def _combined(self, request: web.Request) -> web.WebSocketResponse:
        names = [name for name in request.query.get("streams", "").split("/") if name]
        return await self._serve(request, names, raw=False)

    async def _raw(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, [request.match_info["stream"]], raw=True)

    async def _serve(
        self, request: web.Request, names: list[str], *, raw: bool
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self._heartbeat_s)
        await ws.prepare(request)
        self.accepted += 1
        self._changed.set()
        if len(names) > MAX_STREAMS_PER_CONNECTION:
            await ws.close(code=_POLICY_VIOLATION, message=b"too many streams")
            return ws
        client = _Client(ws, request, raw, dict.fromkeys(names))
        client.idle.set()
        self._clients.append(client)
        self._changed.set()
        try:
            async with asyncio.TaskGroup() as tasks:
                sender = tasks.create_task(self._send(client))
                async for message in ws:
                    if message.type is WSMsgType.TEXT:
                        client.queue(self._control(client, message.data))
                sender.cancel()
        finally:
            self._clients.remove(client)
            client.idle.set()  # a pump waiting on this client must not wait forever
            self._changed.set()
        return ws

    async def _send(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                text = await client.outbox.get()
                await client.ws.send_str(text)
                if self.on_frame_sent is not None:
                    self.on_frame_sent(text)
                if client.outbox.empty():
                    client.idle.set()
                else:
                    # aiohttp writes without suspending while the socket takes the bytes, so a
                    # bar-close burst would hold the loop for its whole length. An exchange
                    # accepts orders while it fans market data out: let the gateway run.
                    await asyncio.sleep(0)

    def _control(self, client: _Client, text: str) -> str:
        """The reply to one control message (the subscription change is made here)."""
        try:
            request = json.loads(text)
        except ValueError as exc:
            return json.dumps({"error": {"code": _INVALID_JSON, "msg": f"Invalid JSON: {exc}"}})
        request_id = request.get("id") if isinstance(request, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        params = request.get("params", []) if isinstance(request, dict) else None
        result: object = None
        if method == "LIST_SUBSCRIPTIONS":
            result = list(client.streams)
        elif method in ("SUBSCRIBE", "UNSUBSCRIBE") and _is_names(params):
            if method == "UNSUBSCRIBE":
                for name in params:
                    client.streams.pop(name, None)
            elif len(client.streams | dict.fromkeys(params)) > MAX_STREAMS_PER_CONNECTION:
                return _error(request_id, "too many streams on this connection")
            else:
                client.streams |= dict.fromkeys(params)
        else:
            return _error(request_id, f"unsupported request: {text[:100]}")
        return json.dumps({"result": result, "id": request_id})

    # --- time and frames ---------------------------------------------------------------------

    async def run(self) -> None:
        """The market pump: advances simulated time and broadcasts due frames, forever."""
        origin_s = self._clock.monotonic()
        start_ms = self._start_ms if self._start_ms is not None else self._clock.now_ms()
        sim_now = start_ms
        while True:
            await self._wait_while_stalled()
            if self._speed is None:
                await self._wait_for_listeners()
            else:
                elapsed_ms = (self._clock.monotonic() - origin_s) * 1000 * self._speed
                sim_now = start_ms + int(elapsed_ms)
            self.sim_now_ms = sim_now
            self._broadcast(self._feed.frames_until(sim_now))
            if self._speed is None:
                for client in list(self._clients):
                    await client.idle.wait()
                sim_now += self._step_ms
                await asyncio.sleep(0)  # a round with no listener must still let others run
            else:
                await self._clock.sleep(self._pump_interval_s)

    async def _wait_while_stalled(self) -> None:
        while self._stalled_until is not None:
            left = self._stalled_until - self._clock.monotonic()
            if left <= 0:
                self._stalled_until = None
                return
            await self._clock.sleep(left)

    async def _wait_for_listeners(self) -> None:
        while not self._clients:
            self._changed.clear()
            await self._changed.wait()

    def _broadcast(self, frames: list[tuple[str, bytes]]) -> None:
        for stream, frame in frames:
            data = frame.decode()
            envelope: str | None = None
            for client in self._clients:
                if stream not in client.streams:
                    continue
                if client.raw:
                    client.queue(data)
                    continue
                if envelope is None:
                    envelope = f'{{"stream":"{stream}","data":{data}}}'
                client.queue(envelope)


def _is_names(params: object) -> TypeGuard[list[str]]:
    return isinstance(params, list) and all(isinstance(name, str) for name in params)


def _error(request_id: object, message: str) -> str:
    return json.dumps({"error": {"code": _INVALID_REQUEST, "msg": message}, "id": request_id})
