"""Stream faults of the running simulator, seen from the client's side of the socket.

Market streams, the WebSocket API and the futures listenKey stream are opened on the live
``SimExchange``; a fault is armed and the test reads what arrives: a connection cut without a
close frame, a stall on the clock, Binance's ``serverShutdown`` and ``listenKeyExpired``
events, and an order that fills over several trades on the user-data stream.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp

from app.domain import OrderStatus
from app.domain.clock import ManualClock
from app.errors import TransientError
from exchange.sim.faults import FaultKind, FaultRule
from tests.sim.fault_helpers import guarded, market_buy, sim_sleepers, ws_api_client
from tests.sim.harness import START_MS, futures_client, running_sim, spot_client, with_options

KLINE = "btcusdt@kline_1m"
QTY = "0.002"


async def _next_text(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await guarded(ws.receive())
    assert message.type is aiohttp.WSMsgType.TEXT, message
    decoded: dict[str, Any] = json.loads(message.data)
    return decoded


async def _read_until_event(ws: aiohttp.ClientWebSocketResponse, event: str) -> dict[str, Any]:
    """Skip market frames until the unwrapped event ``event`` arrives."""
    while True:
        frame = await _next_text(ws)
        if frame.get("e") == event:
            return frame


async def _fence(ws: aiohttp.ClientWebSocketResponse, request_id: int) -> None:
    """Read until the reply to a control request: frames queued before it come before it."""
    await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": request_id})
    while (await _next_text(ws)).get("id") != request_id:
        pass


async def _read_until_gone(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """Read (market frames may still be buffered) until the connection ends; the last message."""
    while True:
        message = await guarded(ws.receive())
        if message.type is not aiohttp.WSMsgType.TEXT:
            return message


async def test_drop_streams_cuts_market_ws_api_and_private_connections_without_close() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        futures_client(sim, clock) as futures,
        aiohttp.ClientSession() as http,
        ws_api_client(sim.endpoints.spot_ws_api, clock) as (ws_api, reader),
    ):
        listen_key = await futures.create_listen_key()
        market = await http.ws_connect(f"{sim.endpoints.spot_streams}/ws/{KLINE}")
        private = await http.ws_connect(
            f"{sim.endpoints.futures_private}/ws?listenKey={listen_key}"
        )
        await _next_text(market)  # the market is flowing
        await guarded(sim.spot.streams.wait_for_connections(1))
        assert sim.private.connection_count == 1
        await sim.faults.arm(FaultRule(FaultKind.DROP_STREAMS))
        for ws in (market, private):
            last = await _read_until_gone(ws)
            # No close frame: the client sees the socket end, not a CLOSE message.
            assert last.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), last
            assert ws.close_code == 1006
        await guarded(reader)  # the WS API reader ends with its connection
        assert not ws_api.connected
        try:
            await ws_api.request("ping")
        except TransientError:
            pass
        else:
            raise AssertionError("a request on a dropped WS API connection must fail")
        # Nothing is kept: a new connection is served as before.
        again = await http.ws_connect(f"{sim.endpoints.spot_streams}/ws/{KLINE}")
        assert (await _next_text(again))["e"] == "kline"
        await again.close()


async def test_stall_streams_sends_no_market_frame_until_stall_ends() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(with_options(speed=1.0), clock=clock) as sim,
        aiohttp.ClientSession() as http,
    ):
        ws = await http.ws_connect(f"{sim.endpoints.spot_streams}/ws/btcusdt@bookTicker")
        await guarded(sim.spot.streams.wait_for_connections(1))
        # The expiry check and the two paced pumps sleep on the clock.
        await guarded(clock.wait_for_sleepers(3))
        clock.advance(15.0)
        first = await _next_text(ws)
        assert first["s"] == "BTCUSDT"
        await guarded(clock.wait_for_sleepers(3))
        await _fence(ws, 0)  # whatever the pump sent so far is read
        await sim.faults.arm(FaultRule(FaultKind.STALL_STREAMS, market="spot", stall_s=60.0))
        request_id = 1
        for _ in range(3):  # 45 s of stall: three 15 s bookTicker updates are held back
            clock.advance(15.0)
            await guarded(clock.wait_for_sleepers(3))
            # Control replies still go, in order: one that arrives first proves no market
            # frame was queued before it.
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": request_id})
            frame = await _next_text(ws)
            assert frame == {"result": ["btcusdt@bookTicker"], "id": request_id}
            request_id += 1
        clock.advance(15.0)  # 60 s: the stall ends and paced time catches up
        resumed = await _next_text(ws)
        assert resumed["s"] == "BTCUSDT"
        assert resumed["u"] != first["u"]
        await ws.close()


async def test_server_shutdown_reaches_market_ws_api_and_private_connections() -> None:
    clock = ManualClock(START_MS)
    events: list[dict[str, Any]] = []
    got_event = asyncio.Event()

    async def on_event(raw: bytes | str) -> None:
        events.append(json.loads(raw))
        got_event.set()

    async with (
        running_sim(clock=clock) as sim,
        futures_client(sim, clock) as futures,
        aiohttp.ClientSession() as http,
        ws_api_client(sim.endpoints.futures_ws_api, clock, on_event=on_event) as _,
    ):
        listen_key = await futures.create_listen_key()
        spot_market = await http.ws_connect(f"{sim.endpoints.spot_streams}/stream?streams={KLINE}")
        futures_market = await http.ws_connect(f"{sim.endpoints.futures_market}/ws/{KLINE}")
        private = await http.ws_connect(f"{sim.endpoints.futures_private}/ws/{listen_key}")
        await guarded(sim.spot.streams.wait_for_connections(1))
        await guarded(sim.futures.streams.wait_for_connections(1))
        assert sim.private.connection_count == 1
        await sim.faults.arm(FaultRule(FaultKind.SERVER_SHUTDOWN))
        for ws in (spot_market, futures_market, private):
            shutdown = await _read_until_event(ws, "serverShutdown")
            assert isinstance(shutdown["E"], int)
        await guarded(got_event.wait())
        assert [e["event"]["e"] for e in events] == ["serverShutdown"]
        for ws in (spot_market, futures_market, private):
            await ws.close()


async def test_listen_key_expired_then_closed() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        futures_client(sim, clock) as futures,
        aiohttp.ClientSession() as http,
    ):
        listen_key = await futures.create_listen_key()
        url = f"{sim.endpoints.futures_private}/ws?listenKey={listen_key}"
        private = await http.ws_connect(url)
        await guarded(sim_sleepers(clock))
        assert sim.private.connection_count == 1
        await sim.faults.arm(FaultRule(FaultKind.LISTEN_KEY_EXPIRED, market="futures"))
        expired = await _next_text(private)
        assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", listen_key)
        closing = await guarded(private.receive())
        assert closing.type is aiohttp.WSMsgType.CLOSE
        # The key is dead: a new connection with it is refused at once.
        again = await http.ws_connect(url)
        refused = await guarded(again.receive())
        assert refused.type is aiohttp.WSMsgType.CLOSE
        assert refused.data == 1008


async def test_partial_fills_show_partially_filled_then_filled_on_the_user_stream() -> None:
    clock = ManualClock(START_MS)
    reports: list[dict[str, Any]] = []
    filled = asyncio.Event()

    async def on_event(raw: bytes | str) -> None:
        event = json.loads(raw)["event"]
        if event.get("e") == "executionReport":
            reports.append(event)
            if (event["c"], event["X"]) == ("tb-partial", "FILLED"):
                filled.set()

    async with (
        running_sim(clock=clock) as sim,
        spot_client(sim, clock) as client,
        ws_api_client(sim.endpoints.spot_ws_api, clock, on_event=on_event) as (ws_api, _),
    ):
        await ws_api.request("userDataStream.subscribe.signature", signed=True)
        # Without the fault this order fills in one trade (the market stands still: no
        # stream client moves it).
        _, single = await client.place_order(market_buy("tb-whole", clock, qty=QTY))
        assert len(single) == 1
        await sim.faults.arm(FaultRule(FaultKind.PARTIAL_FILLS, market="spot"))
        update, fills = await client.place_order(market_buy("tb-partial", clock, qty=QTY))
        assert update.status is OrderStatus.FILLED
        assert len(fills) >= 2
        assert all(f.quantity <= update.quantity / 2 for f in fills)
        await guarded(filled.wait())
        mine = [r for r in reports if r["c"] == "tb-partial" and r["x"] == "TRADE"]
        statuses = [r["X"] for r in mine]
        assert statuses[-1] == "FILLED"
        assert set(statuses[:-1]) == {"PARTIALLY_FILLED"}
        assert len(mine) == len(fills) >= 2
        # Cleared: the next order fills in one trade again.
        sim.faults.clear(FaultKind.PARTIAL_FILLS)
        _, again = await client.place_order(market_buy("tb-whole-2", clock, qty=QTY))
        assert len(again) == 1


async def test_partial_fills_on_the_futures_private_stream() -> None:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        futures_client(sim, clock) as client,
        aiohttp.ClientSession() as http,
    ):
        listen_key = await client.create_listen_key()
        private = await http.ws_connect(
            f"{sim.endpoints.futures_private}/ws?listenKey={listen_key}&events=ORDER_TRADE_UPDATE"
        )
        await sim.faults.arm(
            FaultRule(FaultKind.PARTIAL_FILLS, market="futures", fraction=Decimal("0.25"))
        )
        update = await client.place_order(market_buy("tb-f-partial", clock, qty="0.004"))
        assert update.status is OrderStatus.FILLED
        statuses: list[str] = []
        while not statuses or statuses[-1] != "FILLED":
            order = (await _next_text(private))["o"]
            if order["c"] == "tb-f-partial" and order["x"] == "TRADE":
                statuses.append(order["X"])
        # Each trade is at most a quarter of the order: four trades or more.
        assert len(statuses) >= 4
        assert set(statuses[:-1]) == {"PARTIALLY_FILLED"}
        await private.close()
