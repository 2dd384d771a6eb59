"""A scripted Binance-shaped HTTP server on 127.0.0.1 for transport tests.

Each test registers the answers it wants per ``METHOD /path`` (a list is served in order, the
last one repeating) and reads back what the server received. Signed requests are verified the
way Binance does it: HMAC-SHA256 over the query string exactly as sent, before ``&signature=``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEST_API_KEY = "test-api-key-0123456789"
TEST_SECRET = "test-secret-abcdefghijklmnopqrstuvwxyz"


@dataclass
class Received:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]

    @property
    def params(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    def signature_ok(self, secret: str = TEST_SECRET) -> bool:
        payload, sep, signature = self.query_string.rpartition("&signature=")
        if not sep:
            return False
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


@dataclass(frozen=True)
class Reply:
    """A canned answer; a fresh ``web.Response`` is built for every request it serves
    (an aiohttp response object can only be sent once)."""

    status: int = 200
    text: str = ""
    headers: dict[str, str] | None = None
    content_type: str = "application/json"

    def build(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=self.text,
            headers=self.headers,
            content_type=self.content_type,
        )


Answer = Reply | Callable[[Received], Awaitable[web.StreamResponse]]


@dataclass
class ScriptedBinance:
    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[Answer]] = field(default_factory=lambda: defaultdict(list))

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[f"{method} {path}"] = list(answers)

    def calls(self, method: str, path: str) -> list[Received]:
        return [r for r in self.received if r.method == method and r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(request.method, request.path, request.query_string, dict(request.headers))
        self.received.append(got)
        queue = self.answers.get(f"{request.method} {request.path}")
        if not queue:
            return json_response({"code": -1100, "msg": "no scripted answer"}, status=400).build()
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Reply):
            return answer.build()
        return await answer(got)


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, text=json.dumps(body), headers=headers)


def text_response(text: str, *, status: int) -> Reply:
    return Reply(status=status, text=text, content_type="text/plain")


@asynccontextmanager
async def scripted_binance() -> AsyncIterator[ScriptedBinance]:
    server = ScriptedBinance()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.base_url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
