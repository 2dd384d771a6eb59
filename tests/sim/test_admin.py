"""The admin routes on a real loopback aiohttp server, driven by a real aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from app.domain.clock import ManualClock
from exchange.sim.admin import add_admin_routes
from exchange.sim.faults import FaultInjector, FaultKind, FaultRule


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def admin() -> AsyncIterator[tuple[FaultInjector, str, aiohttp.ClientSession]]:
    injector = FaultInjector(seed=1, clock=ManualClock())
    app = web.Application()
    add_admin_routes(app, injector, status=lambda: {"orders": 3, "cash": Decimal("1.50")})
    runner, base = await start(app)
    async with aiohttp.ClientSession() as session:
        yield injector, f"{base}/sim/admin", session
    await runner.cleanup()


Admin = tuple[FaultInjector, str, aiohttp.ClientSession]


async def test_add_list_and_clear(admin: Admin) -> None:
    injector, url, session = admin
    rule = {"kind": "partial_fills", "market": "spot", "fraction": 0.1}
    async with session.post(f"{url}/faults", json=rule) as resp:
        assert resp.status == 200
        added = await resp.json()
    assert added["rule"]["fraction"] == "0.1"
    assert injector.partial_fill_fraction("spot") == Decimal("0.1")
    async with session.post(f"{url}/faults", json={"kind": "latency", "count": 2}) as resp:
        assert resp.status == 200
    async with session.get(f"{url}/faults") as resp:
        listing = await resp.json()
    kinds = [(r["id"], r["rule"]["kind"], r["remaining"]) for r in listing["rules"]]
    assert kinds == [(added["id"], "partial_fills", None), (added["id"] + 1, "latency", 2)]
    async with session.delete(f"{url}/faults/latency") as resp:
        assert await resp.json() == {"cleared": 1}
    async with session.delete(f"{url}/faults") as resp:
        assert await resp.json() == {"cleared": 1}
    assert injector.rules() == []


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"kind": "latency", "latency_ms": "slow"}, "latency_ms"),
        ({"kind": "nope"}, "kind"),
        ([1, 2], "body"),
    ],
)
async def test_invalid_rule_is_400_naming_the_field(
    admin: Admin, body: object, field_name: str
) -> None:
    injector, url, session = admin
    async with session.post(f"{url}/faults", json=body) as resp:
        assert resp.status == 400
        answer = await resp.json()
    assert answer["field"] == field_name
    assert field_name in answer["error"]
    assert injector.rules() == []


async def test_body_not_json(admin: Admin) -> None:
    _, url, session = admin
    async with session.post(f"{url}/faults", data=b"{oops") as resp:
        assert resp.status == 400
        assert (await resp.json())["field"] == "body"


async def test_action_without_server_is_409_and_with_one_runs(admin: Admin) -> None:
    injector, url, session = admin
    async with session.post(f"{url}/faults", json={"kind": "server_shutdown"}) as resp:
        assert resp.status == 409
    seen: list[FaultRule] = []

    async def shutdown(rule: FaultRule) -> None:
        seen.append(rule)

    injector.on_action(FaultKind.SERVER_SHUTDOWN, shutdown)
    body = {"kind": "server_shutdown", "market": "futures"}
    async with session.post(f"{url}/faults", json=body) as resp:
        assert resp.status == 200
    assert seen == [FaultRule(FaultKind.SERVER_SHUTDOWN, market="futures")]


async def test_unknown_kind_on_delete_is_404(admin: Admin) -> None:
    _, url, session = admin
    async with session.delete(f"{url}/faults/meteor") as resp:
        assert resp.status == 404
        assert "meteor" in (await resp.json())["error"]


async def test_status_provider(admin: Admin) -> None:
    _, url, session = admin
    async with session.get(f"{url}/status") as resp:
        assert await resp.json() == {"orders": 3, "cash": "1.50"}


async def test_no_status_route_without_provider() -> None:
    app = web.Application()
    add_admin_routes(app, FaultInjector(seed=0, clock=ManualClock()), prefix="/x/")
    runner, base = await start(app)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/x/status") as resp:
                assert resp.status == 404
            async with session.get(f"{base}/x/faults") as resp:
                assert (await resp.json())["rules"] == []
    finally:
        await runner.cleanup()
