"""Order-path faults of the running simulator, as the real Binance client sees them.

Each fault is armed on the live ``SimExchange`` (through ``sim.faults``, the admin HTTP
endpoint or the ``tradebus sim fault`` CLI) and a request goes through the real
``SpotClient``/``FuturesClient`` (REST) or ``WsApiClient``/``WsOrderEntry`` (WebSocket API);
the test checks the ``app.errors`` class the client raises and what the simulator really did
(an order that exists although the answer was lost, or that was never created).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from decimal import Decimal

import aiohttp
import pytest

from app.domain import OrderStatus
from app.domain.clock import ManualClock
from app.domain.enums import MarketType
from app.errors import (
    NotFoundError,
    RateLimitedError,
    RejectedError,
    StatusUnknownError,
)
from app.sim_admin_cli import add_fault_commands, run_fault_command
from exchange.binance.ws_orders import WsOrderEntry
from exchange.sim.faults import FaultKind, FaultRule
from tests.sim.fault_helpers import guarded, limit_buy, market_buy, sim_sleepers, ws_api_client
from tests.sim.harness import START_MS, futures_client, running_sim, spot_client

FAR = Decimal("0.97")  # a buy this far under the bid rests on the book


# -- the answer is lost after the engine accepted the order ------------------------------------


async def test_order_error_5xx_is_status_unknown_and_the_order_exists() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        (book,) = await client.book_tickers("BTCUSDT")
        await sim.faults.arm(
            FaultRule(FaultKind.ORDER_ERROR_5XX, market="spot", count=1, http_status=503)
        )
        order = limit_buy("tb-5xx", clock, book.bid_price * FAR)
        with pytest.raises(StatusUnknownError) as caught:
            await client.place_order(order)
        assert (caught.value.http_status, caught.value.code) == (503, -1001)
        found = await client.query_order("BTCUSDT", "tb-5xx")
        assert (found.status, found.quantity) == (OrderStatus.NEW, order.quantity)
        assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == ["tb-5xx"]
        # count=1: the next placement is answered normally.
        update, _ = await client.place_order(limit_buy("tb-ok", clock, book.bid_price * FAR))
        assert update.status is OrderStatus.NEW


async def test_order_error_1007_is_status_unknown_and_the_order_exists() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, futures_client(sim, clock) as client:
        (book,) = await client.book_tickers("BTCUSDT")
        await sim.faults.arm(FaultRule(FaultKind.ORDER_ERROR_1007, market="futures", count=1))
        order = limit_buy("tb-1007", clock, book.bid_price * FAR, qty="0.010")
        with pytest.raises(StatusUnknownError) as caught:
            await client.place_order(order)
        assert caught.value.code == -1007
        found = await client.query_order("BTCUSDT", "tb-1007")
        assert found.status is OrderStatus.NEW
        assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == ["tb-1007"]


async def test_order_timeout_on_the_ws_api_is_status_unknown_and_the_order_exists() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        spot_client(sim, clock) as rest,
        ws_api_client(sim.endpoints.spot_ws_api, clock, timeout_s=2.0) as (ws, _),
    ):
        (book,) = await rest.book_tickers("BTCUSDT")
        await sim.faults.arm(
            FaultRule(FaultKind.ORDER_TIMEOUT, market="spot", channel="ws_api", timeout_s=30.0)
        )
        entry = WsOrderEntry(ws, MarketType.SPOT)
        baseline = await sim_sleepers(clock)
        placing = asyncio.get_running_loop().create_task(
            entry.place_order(limit_buy("tb-timeout", clock, book.bid_price * FAR))
        )
        # The server holds the request (30 s) and the client waits for its answer (2 s).
        await guarded(clock.wait_for_sleepers(baseline + 2))
        clock.advance(2.0)
        with pytest.raises(StatusUnknownError):
            await guarded(placing)
        found = await rest.query_order("BTCUSDT", "tb-timeout")
        assert found.status is OrderStatus.NEW


async def test_order_timeout_on_rest_cuts_the_connection_after_accept() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        await sim.faults.arm(FaultRule(FaultKind.ORDER_TIMEOUT, market="spot", count=1))
        baseline = await sim_sleepers(clock)
        placing = asyncio.get_running_loop().create_task(
            client.place_order(market_buy("tb-rest-timeout", clock))
        )
        await guarded(clock.wait_for_sleepers(baseline + 1))
        assert not placing.done()  # held: no answer until the server gives up
        clock.advance(10.0)
        with pytest.raises(StatusUnknownError):
            await guarded(placing)
        found = await client.query_order("BTCUSDT", "tb-rest-timeout")
        assert found.status is OrderStatus.FILLED


# -- refused before the engine ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"), [(FaultKind.REJECT_2010, -2010), (FaultKind.REJECT_1013, -1013)]
)
async def test_reject_creates_no_order(kind: FaultKind, code: int) -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        await sim.faults.arm(FaultRule(kind, market="spot", count=1))
        with pytest.raises(RejectedError) as caught:
            await client.place_order(market_buy("tb-rejected", clock))
        assert caught.value.code == code
        assert not isinstance(caught.value, NotFoundError)
        with pytest.raises(NotFoundError):
            await client.query_order("BTCUSDT", "tb-rejected")
        balances = {b.asset: b.free for b in await client.account()}
        assert "BTC" not in balances or balances["BTC"] == 0


async def test_reject_over_the_ws_api() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        futures_client(sim, clock) as rest,
        ws_api_client(sim.endpoints.futures_ws_api, clock) as (ws, _),
    ):
        await sim.faults.arm(FaultRule(FaultKind.REJECT_2010, market="futures", count=1))
        with pytest.raises(RejectedError) as caught:
            await WsOrderEntry(ws, MarketType.USDM).place_order(
                market_buy("tb-ws-rejected", clock, qty="0.010")
            )
        assert caught.value.code == -2010
        assert await rest.open_orders("BTCUSDT") == []
        with pytest.raises(NotFoundError):
            await rest.query_order("BTCUSDT", "tb-ws-rejected")


# -- rate limits and bans ---------------------------------------------------------------------


async def test_rate_limit_429_sends_retry_after_then_blocks_the_market() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        await sim.faults.arm(
            FaultRule(FaultKind.RATE_LIMIT_429, market="spot", count=1, retry_after_s=7)
        )
        with pytest.raises(RateLimitedError) as caught:
            await client.place_order(market_buy("tb-429", clock))
        assert (caught.value.http_status, caught.value.retry_after_s) == (429, 7)
        assert not caught.value.banned
        # The rule is used up, but the window stands: raw requests see 429 with Retry-After.
        url = f"{sim.endpoints.spot_rest}/api/v3/time"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 429
                assert response.headers["Retry-After"] == "7"
                assert (await response.json())["code"] == -1003
            clock.advance(7.0)
            async with http.get(url) as response:
                assert response.status == 200
        assert sim.faults.snapshot()["rate_limited_until_ms"] == {}


async def test_ip_ban_418_bans_every_market_until_it_ends() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        spot_client(sim, clock) as spot,
        futures_client(sim, clock) as futures,
    ):
        await sim.faults.arm(FaultRule(FaultKind.IP_BAN_418, market="spot", count=1, ban_s=120))
        with pytest.raises(RateLimitedError) as caught:
            await spot.place_order(market_buy("tb-418", clock))
        assert caught.value.banned
        assert caught.value.http_status == 418
        assert caught.value.retry_after_s == 120
        with pytest.raises(RateLimitedError) as caught_futures:
            await futures.place_order(market_buy("tb-418-f", clock, qty="0.010"))
        assert caught_futures.value.banned
        clock.advance(120.0)
        update = await futures.place_order(market_buy("tb-after-ban", clock, qty="0.010"))
        assert update.status is OrderStatus.FILLED


# -- latency ----------------------------------------------------------------------------------


async def test_latency_holds_the_answer_until_the_clock_moves() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        await sim.faults.arm(
            FaultRule(FaultKind.LATENCY, market="spot", channel="rest", latency_ms=1500)
        )
        baseline = await sim_sleepers(clock)
        asking = asyncio.get_running_loop().create_task(client.server_time_ms())
        await guarded(clock.wait_for_sleepers(baseline + 1))
        clock.advance(1.0)
        await asyncio.sleep(0)  # let a wrongly woken request finish, so the check can fail
        assert not asking.done()
        clock.advance(0.5)
        # The server's time is read after the delay, as on a slow exchange.
        assert await guarded(asking) == START_MS + 1500


# -- the order is not visible right after creation --------------------------------------------


async def test_order_not_found_after_create_until_grace_ends() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        (book,) = await client.book_tickers("BTCUSDT")
        await sim.faults.arm(
            FaultRule(FaultKind.ORDER_NOT_FOUND_AFTER_CREATE, market="spot", grace_ms=2000)
        )
        update, _ = await client.place_order(limit_buy("tb-hidden", clock, book.bid_price * FAR))
        assert update.status is OrderStatus.NEW
        with pytest.raises(NotFoundError) as caught:
            await client.query_order("BTCUSDT", "tb-hidden")
        assert caught.value.code == -2013
        clock.advance(1.999)
        with pytest.raises(NotFoundError):
            await client.query_order("BTCUSDT", "tb-hidden")
        clock.advance(0.001)
        found = await client.query_order("BTCUSDT", "tb-hidden")
        assert found.status is OrderStatus.NEW


# -- clock skew -------------------------------------------------------------------------------


async def test_clock_skew_makes_an_unsynced_client_resync_after_1021() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        transport = client.transport
        await sim.faults.arm(FaultRule(FaultKind.CLOCK_SKEW, market="spot", skew_ms=-20_000))
        assert await client.server_time_ms() == START_MS - 20_000
        assert transport.server_time.offset_ms == 0  # never synced: signs with local time
        balances = await client.account()  # -1021, resync, signed again: accepted
        assert {b.asset for b in balances} >= {"USDT"}
        assert transport.server_time.offset_ms == -20_000
        assert transport.snapshot()["outcomes"].get("ClockSkewError") == 1


# -- arming through the admin HTTP endpoint and the CLI ---------------------------------------


async def test_fault_armed_through_the_admin_endpoint() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        url = f"{sim.endpoints.spot_rest}/sim/admin/faults"
        rule = {"kind": "reject_1013", "market": "spot", "count": 1, "message": "Filter failure"}
        async with aiohttp.ClientSession() as http, http.post(url, json=rule) as response:
            assert response.status == 200, await response.text()
        with pytest.raises(RejectedError) as caught:
            await client.place_order(market_buy("tb-admin", clock))
        assert (caught.value.code, caught.value.venue_message) == (-1013, "Filter failure")
        update, _ = await client.place_order(market_buy("tb-admin-2", clock))
        assert update.status is OrderStatus.FILLED


async def test_fault_armed_through_the_cli() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, futures_client(sim, clock) as client:
        root = argparse.ArgumentParser(prog="tradebus sim")
        add_fault_commands(root.add_subparsers(dest="sim_command", required=True))
        args = root.parse_args(
            [
                "fault",
                "add",
                "order_error_5xx",
                "--market",
                "futures",
                "--count",
                "1",
                "--param",
                "error_code=-1006",
                "--url",
                f"{sim.endpoints.futures_rest}/sim/admin",
            ]
        )
        out, err = io.StringIO(), io.StringIO()
        code = await guarded(asyncio.to_thread(run_fault_command, args, stdout=out, stderr=err))
        assert (code, err.getvalue()) == (0, ""), out.getvalue()
        assert json.loads(out.getvalue())["rule"]["error_code"] == -1006
        with pytest.raises(StatusUnknownError) as caught:
            await client.place_order(market_buy("tb-cli", clock, qty="0.010"))
        assert (caught.value.http_status, caught.value.code) == (500, -1006)
        found = await client.query_order("BTCUSDT", "tb-cli")
        assert found.status is OrderStatus.FILLED


async def test_ip_ban_over_the_ws_api_tells_the_wait_on_the_skewed_server_clock() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        ws_api_client(sim.endpoints.spot_ws_api, clock) as (ws, _),
    ):
        # The server's clock runs 30 s ahead: serverTime and retryAfter must both be on it.
        await sim.faults.arm(FaultRule(FaultKind.CLOCK_SKEW, market="spot", skew_ms=30_000))
        await sim.faults.arm(FaultRule(FaultKind.IP_BAN_418, market="spot", count=1, ban_s=60))
        with pytest.raises(RateLimitedError) as caught:
            await WsOrderEntry(ws, MarketType.SPOT).place_order(market_buy("tb-ws-418", clock))
        assert caught.value.banned
        assert caught.value.http_status == 418
        assert caught.value.retry_after_s == 60
        clock.advance(30.0)
        with pytest.raises(RateLimitedError) as still:
            await ws.request("time")
        assert still.value.retry_after_s == 30
