"""The simulator's REST API over aiohttp: Binance's paths, authentication and answers.

Each route is an ``Operation`` of a market's ``SimGateway``; this module only speaks HTTP:
it reads the raw query string and form body (the signature covers them exactly as sent),
authenticates as the operation requires, merges the parameters (the query string wins, as on
Binance) and renders the gateway's ``Outcome``: the JSON body, the usage headers, and
``Retry-After`` on 429/418. The "times out after accept" fault holds the request, then cuts
the connection without an answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web

from app.domain.clock import Clock
from exchange.sim.auth import AuthError, KeyStore, verify_api_key_only, verify_rest
from exchange.sim.gateway import Access, Operation, Outcome, SimGateway
from exchange.sim.replies import Reply, error_reply, json_reply, rate_limited_reply

__all__ = ["RestRoute", "SimRestServer"]


@dataclass(frozen=True, slots=True)
class RestRoute:
    method: str
    path: str
    operation: Operation
    gateway: SimGateway


class SimRestServer:
    def __init__(self, *, clock: Clock, keys: KeyStore, routes: list[RestRoute]) -> None:
        self._clock = clock
        self._keys = keys
        self._routes = routes

    def add_routes(self, app: web.Application) -> None:
        for route in self._routes:
            app.router.add_route(route.method, route.path, self._handler(route))

    def _handler(self, route: RestRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(route, request)

        return handle

    async def _handle(self, route: RestRoute, request: web.Request) -> web.StreamResponse:
        query = request.query_string
        body = await request.text() if request.can_read_body else ""
        gateway = route.gateway
        api_key: str | None = None
        try:
            if route.operation.access is Access.SIGNED:
                api_key = verify_rest(
                    query_string=query,
                    body=body,
                    headers=request.headers,
                    keys=self._keys,
                    now_ms=gateway.server_now_ms(),
                ).api_key
            elif route.operation.access is Access.API_KEY:
                api_key = verify_api_key_only(request.headers, self._keys).api_key
        except AuthError as exc:
            return _response(error_reply(exc.code, exc.msg, status=exc.status))
        params = _merged_params(query, body)
        outcome = await gateway.execute(route.operation, params, channel="rest", api_key=api_key)
        if outcome.hold_s > 0 or outcome.status == 0:
            await self._clock.sleep(outcome.hold_s)
            if request.transport is not None:
                request.transport.abort()
            # Nothing reaches the client: the socket is gone before aiohttp writes this
            # (aiohttp drops a response to a closed peer quietly; raising would log a traceback).
            return web.Response(status=504)
        return _response(_reply(outcome))


def _merged_params(query: str, body: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for text in (query, body):
        for name, value in parse_qsl(text, keep_blank_values=True):
            params.setdefault(name, value)
    params.pop("signature", None)
    return params


def _reply(outcome: Outcome) -> Reply:
    usage = outcome.usage
    weight = dict(usage.weight) if usage is not None else {}
    orders = dict(usage.orders) if usage is not None and usage.orders else None
    if outcome.status in (418, 429) and outcome.retry_after_s is not None:
        if outcome.status == 418 or (outcome.error or {}).get("code") == -1003:
            return rate_limited_reply(
                outcome.retry_after_s,
                banned=outcome.status == 418,
                banned_until_ms=outcome.until_ms,
            )
        reply = _error(outcome)
        retry_after = str(math.ceil(outcome.retry_after_s))
        return Reply(reply.status, reply.body, (*reply.headers, ("Retry-After", retry_after)))
    if outcome.error is not None:
        error = _error(outcome)
        headers = json_reply({}, weight_headers=weight, order_count_headers=orders).headers
        return Reply(error.status, error.body, headers)
    return json_reply(outcome.result, weight_headers=weight, order_count_headers=orders)


def _error(outcome: Outcome) -> Reply:
    assert outcome.error is not None
    return Reply(outcome.status, json.dumps(outcome.error, separators=(",", ":")).encode())


def _response(reply: Reply) -> web.Response:
    response = web.Response(status=reply.status, body=reply.body)
    for name, value in reply.headers:
        response.headers[name] = value
    return response
