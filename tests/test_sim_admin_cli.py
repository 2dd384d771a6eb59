"""``tradebus sim fault ...`` against a real admin server on loopback.

The CLI is synchronous (urllib), so it runs in a worker thread while the server keeps serving
on the test's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import pytest
from aiohttp import web

from app.domain.clock import ManualClock
from app.sim_admin_cli import DEFAULT_SIM_PORT, DEFAULT_URL, add_fault_commands, run_fault_command
from exchange.sim.admin import add_admin_routes
from exchange.sim.faults import FaultInjector, FaultKind


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tradebus sim")
    add_fault_commands(root.add_subparsers(dest="sim_command", required=True))
    return root


async def run(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = parser().parse_args(argv)
    code = await asyncio.to_thread(run_fault_command, args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
async def server() -> AsyncIterator[tuple[FaultInjector, str]]:
    injector = FaultInjector(seed=3, clock=ManualClock())
    app = web.Application()
    add_admin_routes(app, injector)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield injector, f"http://127.0.0.1:{port}/sim/admin"
    await runner.cleanup()


async def test_add_list_clear(server: tuple[FaultInjector, str]) -> None:
    injector, url = server
    code, out, err = await run(
        [
            "fault",
            "add",
            "latency",
            "--probability",
            "0.5",
            "--count",
            "3",
            "--market",
            "spot",
            "--channel",
            "rest",
            "--symbol",
            "btcusdt",
            "--param",
            "latency_ms=250",
            "--url",
            url,
        ]
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["rule"]["latency_ms"] == 250
    (active,) = injector.rules()
    assert active.rule.kind is FaultKind.LATENCY
    assert (active.rule.probability, active.remaining, active.rule.symbol) == (0.5, 3, "BTCUSDT")

    code, out, _ = await run(
        ["fault", "add", "partial_fills", "--param", "fraction=0.2", "--url", url]
    )
    assert code == 0
    assert injector.partial_fill_fraction("futures") == Decimal("0.2")

    code, out, _ = await run(["fault", "list", "--url", url])
    assert code == 0
    assert [r["rule"]["kind"] for r in json.loads(out)["rules"]] == ["latency", "partial_fills"]

    code, out, _ = await run(["fault", "clear", "latency", "--url", url])
    assert (code, json.loads(out)) == (0, {"cleared": 1})
    code, out, _ = await run(["fault", "clear", "--url", url])
    assert (code, json.loads(out)) == (0, {"cleared": 1})
    assert injector.rules() == []


async def test_invalid_rule_is_a_usage_error(server: tuple[FaultInjector, str]) -> None:
    _, url = server
    code, out, err = await run(["fault", "add", "latency", "--param", "ban_s=3", "--url", url])
    assert (code, out) == (2, "")
    assert "400" in err
    assert "ban_s" in err
    code, _, err = await run(["fault", "clear", "meteor", "--url", url])
    assert code == 2
    assert "meteor" in err


async def test_malformed_param_never_reaches_the_server(server: tuple[FaultInjector, str]) -> None:
    injector, url = server
    code, _, err = await run(["fault", "add", "latency", "--param", "latency_ms", "--url", url])
    assert code == 2
    assert "NAME=VALUE" in err
    assert injector.rules() == []


async def test_action_without_a_server_behind_it_is_an_error(
    server: tuple[FaultInjector, str],
) -> None:
    _, url = server
    code, _, err = await run(["fault", "add", "drop_streams", "--url", url])
    assert code == 1
    assert "409" in err


async def test_unreachable_server() -> None:
    # A port that was just free: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/sim/admin"
    code, out, err = await run(["fault", "list", "--url", url])
    assert (code, out) == (1, "")
    assert "cannot reach" in err
    assert url in err


def test_default_url_uses_the_default_port() -> None:
    args = parser().parse_args(["fault", "list"])
    assert args.url == DEFAULT_URL
    assert f":{DEFAULT_SIM_PORT}/" in DEFAULT_URL
