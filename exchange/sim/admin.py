"""The simulator's admin HTTP routes: arm, list and clear faults at run time.

Mounted on the simulator's own aiohttp application (loopback only, no authentication: it is a
test tool). ``tradebus sim fault ...`` (``app/sim_admin_cli.py``) is its client.

    GET    {prefix}/faults          {"rules": [...], "state": {...}}  (FaultInjector.snapshot)
    POST   {prefix}/faults          body: a FaultRule as JSON -> {"id": n, "rule": {...}}
    DELETE {prefix}/faults          clear all       -> {"cleared": n}
    DELETE {prefix}/faults/{kind}   clear one kind  -> {"cleared": n}
    GET    {prefix}/status          the optional ``status`` provider's JSON

Errors are ``{"error": "...", "field": "..."}``: 400 for an invalid rule or body, 404 for an
unknown kind, 409 when an action fault has no server to carry it out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Final

from aiohttp import web

from exchange.sim.faults import FaultInjector, FaultKind, FaultRule, FaultRuleError
from exchange.sim.faults import FaultUnavailableError as _Unavailable

__all__ = ["DEFAULT_PREFIX", "add_admin_routes"]

DEFAULT_PREFIX: Final = "/sim/admin"

StatusProvider = Callable[[], Mapping[str, object]]


def add_admin_routes(
    app: web.Application,
    injector: FaultInjector,
    *,
    prefix: str = DEFAULT_PREFIX,
    status: StatusProvider | None = None,
) -> None:
    """Add the admin routes under ``prefix`` to ``app`` (before it starts)."""
    prefix = prefix.rstrip("/")

    async def list_faults(request: web.Request) -> web.Response:
        return _json(200, injector.snapshot())

    async def add_fault(request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=_loads_exact)
        except ValueError as exc:
            return _error(400, f"body is not JSON: {exc}", "body")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object (a fault rule)", "body")
        try:
            rule = FaultRule.from_json(body)
        except FaultRuleError as exc:
            return _error(400, str(exc), exc.field)
        try:
            rule_id = await injector.arm(rule)
        except _Unavailable as exc:
            return _error(409, str(exc), "kind")
        return _json(200, {"id": rule_id, "rule": rule.to_json()})

    async def clear_all(request: web.Request) -> web.Response:
        return _json(200, {"cleared": injector.clear()})

    async def clear_kind(request: web.Request) -> web.Response:
        name = request.match_info["kind"]
        try:
            kind = FaultKind(name)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            return _error(404, f"unknown fault kind {name!r}; known: {known}", "kind")
        return _json(200, {"cleared": injector.clear(kind)})

    app.router.add_get(f"{prefix}/faults", list_faults)
    app.router.add_post(f"{prefix}/faults", add_fault)
    app.router.add_delete(f"{prefix}/faults", clear_all)
    app.router.add_delete(f"{prefix}/faults/{{kind}}", clear_kind)

    if status is not None:
        provider = status

        async def get_status(request: web.Request) -> web.Response:
            return _json(200, dict(provider()))

        app.router.add_get(f"{prefix}/status", get_status)


def _loads_exact(text: str) -> object:
    # Numbers keep their digits: a fraction such as 0.1 reaches FaultRule as Decimal("0.1").
    return json.loads(text, parse_float=Decimal)


def _error(status: int, message: str, field: str) -> web.Response:
    return _json(status, {"error": message, "field": field})


def _json(status: int, body: Mapping[str, object]) -> web.Response:
    return web.json_response(dict(body), status=status, dumps=_dumps)


def _dumps(obj: object) -> str:
    return json.dumps(obj, default=_default)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
