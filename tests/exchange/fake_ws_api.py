"""Test doubles shared by the WebSocket API and Spot user-data tests.

``FakeWsApi`` is Binance's WebSocket API on 127.0.0.1 as far as those tests need it: it checks
every signed request the way Binance does (HMAC over the sorted, unencoded params), answers by
id and concurrently, can hold answers back, answer -1021, push events and drop the connection.
``RecordingClock`` is a ManualClock that lets a test wait for a given timer to be armed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from app.domain.clock import ManualClock
from exchange.binance.signing import ws_api_signature_payload
from tests.exchange.loopback import TEST_API_KEY, TEST_SECRET

__all__ = ["FakeWsApi", "Handler", "RecordingClock", "failed", "fake_ws_api", "ok"]

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class RecordingClock(ManualClock):
    """A ManualClock that also reports every sleep it is asked for, so a test can wait for a
    specific timer (a backoff, a keepalive) to be armed before advancing past it."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        super().__init__(start_ms)
        self.sleeps: asyncio.Queue[float] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.put_nowait(seconds)
        await super().sleep(seconds)

    async def armed(self, seconds: float) -> None:
        """Return once a sleep of exactly ``seconds`` has started."""
        while await self.sleeps.get() != pytest.approx(seconds):
            pass

    async def armed_at_most(self, seconds: float) -> float:
        """Return the first sleep started that is no longer than ``seconds``."""
        while (asked := await self.sleeps.get()) > seconds:
            pass
        return asked


def ok(frame: dict[str, Any], result: Any) -> dict[str, Any]:
    return {"id": frame["id"], "status": 200, "result": result}


def failed(frame: dict[str, Any], status: int, code: int, msg: str, **extra: Any) -> dict[str, Any]:
    return {"id": frame["id"], "status": status, "error": {"code": code, "msg": msg, **extra}}


@dataclass
class FakeWsApi:
    """Binance's WebSocket API as far as these tests need it."""

    clock: ManualClock
    url: str = ""
    server_ahead_ms: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    skew_next: int = 0  # answer -1021 to this many of the next signed requests
    subscription_ids: Any = field(default_factory=itertools.count)
    arrivals: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    connections: asyncio.Queue[web.WebSocketResponse] = field(default_factory=asyncio.Queue)
    closed: asyncio.Queue[web.WebSocketResponse] = field(default_factory=asyncio.Queue)
    answered: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    # While set, an upgrade request waits here: the client's handshake never completes.
    handshake_gate: asyncio.Event | None = None

    def methods(self) -> list[str]:
        return [frame["method"] for frame in self.received]

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [frame for frame in self.received if frame["method"] == method]

    async def push(self, document: Any) -> None:
        text = document if isinstance(document, str) else json.dumps(document)
        await self.sockets[-1].send_str(text)

    async def drop(self) -> None:
        await self.sockets[-1].close()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if self.handshake_gate is not None:
            await self.handshake_gate.wait()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connections.put_nowait(ws)
        answering: set[asyncio.Task[None]] = set()
        try:
            async for message in ws:
                frame = json.loads(message.data)
                self.received.append(frame)
                self.arrivals.put_nowait(frame)
                # Answered concurrently, as Binance does: a held answer blocks nothing else.
                task = asyncio.ensure_future(self.respond(ws, frame))
                answering.add(task)
                task.add_done_callback(answering.discard)
        finally:
            for task in answering:
                task.cancel()
            self.closed.put_nowait(ws)
        return ws

    async def respond(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        answer = await self.answer(frame)
        if answer is not None and not ws.closed:
            await ws.send_str(json.dumps(answer))
            self.answered.put_nowait(answer)

    async def answer(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        params = frame.get("params", {})
        if "signature" in params:
            expected = hmac.new(
                TEST_SECRET.encode(), ws_api_signature_payload(params).encode(), hashlib.sha256
            ).hexdigest()
            if params.get("apiKey") != TEST_API_KEY or params["signature"] != expected:
                return failed(frame, 400, -1022, "Signature for this request is not valid.")
            if self.skew_next > 0:
                self.skew_next -= 1
                return failed(
                    frame, 400, -1021, "Timestamp for this request is outside of the recvWindow."
                )
        handler = self.handlers.get(frame["method"])
        if handler is not None:
            return await handler(frame)
        if frame["method"] == "time":
            return ok(frame, {"serverTime": self.clock.now_ms() + self.server_ahead_ms})
        if frame["method"] == "userDataStream.subscribe.signature":
            return ok(frame, {"subscriptionId": next(self.subscription_ids)})
        return ok(frame, {"echo": {k: v for k, v in params.items() if k != "signature"}})


@asynccontextmanager
async def fake_ws_api(clock: ManualClock) -> AsyncIterator[FakeWsApi]:
    """Serve a ``FakeWsApi`` at ``server.url`` for the duration of the block."""
    server = FakeWsApi(clock)
    app = web.Application()
    app.router.add_get("/ws-api/v3", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"ws://127.0.0.1:{port}/ws-api/v3"
    try:
        yield server
    finally:
        if server.handshake_gate is not None:
            server.handshake_gate.set()
        for ws in server.sockets:
            await ws.close()
        await runner.cleanup()
