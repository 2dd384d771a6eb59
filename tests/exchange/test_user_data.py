"""The Spot and USDⓈ-M user-data streams against real local servers on 127.0.0.1.

Spot runs against the fake WebSocket API of ``fake_ws_api`` (signatures verified server-side);
futures against a small fake with the listenKey REST endpoints and a ``/private/ws`` route.
All timers (backoff, keepalive, max age, request timeouts) run on a RecordingClock: a test
waits until the timer it wants is armed, then advances past it. Nothing sleeps in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from app.domain.orders import OrderUpdated
from app.errors import FatalVenueError
from exchange.binance.futures import FuturesClient
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, DEFAULT_USDM_RULES, RateLimiter
from exchange.binance.rest import RestTransport
from exchange.binance.signing import HmacSigner
from exchange.binance.timesync import ServerTime
from exchange.binance.user_data import Backoff, mask_secret
from exchange.binance.user_data_futures import FuturesUserDataStream, listen_key_stream_url
from exchange.binance.user_data_spot import SUBSCRIBE_METHOD, SpotUserDataStream
from tests.exchange.fake_ws_api import FakeWsApi, RecordingClock, failed, fake_ws_api
from tests.exchange.loopback import TEST_API_KEY, TEST_SECRET

BACKOFF_MAX_S = 4.0
MAX_AGE_S = 5_000.0
KEEPALIVE_S = 1_800.0
CONNECT_TIMEOUT_S = 7.0

EXECUTION_REPORT = {
    "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW",
    "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410",
    "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "", "x": "NEW", "X": "NEW", "r": "NONE",
    "i": 4293153, "l": "0.00000000", "z": "0.00000000", "L": "0.00000000", "n": "0", "N": None,
    "T": 1499405658657, "t": -1, "v": 3, "I": 8641984, "w": True, "m": False, "M": False,
    "O": 1499405658657, "Z": "0.00000000", "Y": "0.00000000", "Q": "0.00000000",
    "W": 1499405658657, "V": "NONE",
}  # fmt: skip
ORDER_TRADE_UPDATE = {
    "e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650,
    "o": {
        "s": "BTCUSDT", "c": "TEST", "S": "SELL", "o": "LIMIT", "f": "GTC", "q": "0.001",
        "p": "7103.04", "ap": "0", "sp": "0", "x": "NEW", "X": "NEW", "i": 8886774, "l": "0",
        "z": "0", "L": "0", "N": "USDT", "n": "0", "T": 1568879465650, "t": 0, "b": "0",
        "a": "9.91", "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "LIMIT", "ps": "BOTH",
        "cp": False, "rp": "0", "V": "EXPIRE_TAKER", "pm": "NONE", "gtd": 0,
    },
}  # fmt: skip


def report(client_order_id: str) -> dict[str, Any]:
    return {**EXECUTION_REPORT, "c": client_order_id}


@dataclass
class Downstream:
    """What the executor would see: batches of events and resync requests."""

    events: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)
    resyncs: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    async def on_events(self, events: tuple[Any, ...]) -> None:
        self.events.put_nowait(events)

    async def on_resync(self, reason: str) -> None:
        self.resyncs.put_nowait(reason)


@contextlib.asynccontextmanager
async def running(stream: SpotUserDataStream | FuturesUserDataStream) -> AsyncIterator[Any]:
    task = asyncio.ensure_future(stream.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def reconnect_after_backoff(clock: RecordingClock) -> None:
    await clock.armed_at_most(BACKOFF_MAX_S)
    clock.advance(BACKOFF_MAX_S)


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
def downstream() -> Downstream:
    return Downstream()


def test_backoff_is_exponential_with_full_jitter() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    for attempt, delay in enumerate(delays):
        assert 0.0 <= delay <= min(8.0, 2.0**attempt)
    assert len(set(delays)) == len(delays)  # jittered, not fixed steps
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_listen_key_stream_url_uses_the_private_route() -> None:
    base = "wss://fstream.binance.com/private"
    assert listen_key_stream_url(base, "abc") == f"{base}/ws?listenKey=abc"
    filtered = listen_key_stream_url(base + "/", "abc", ["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"])
    # The filter is an allow list: without listenKeyExpired the expiry would never arrive.
    assert filtered == (
        f"{base}/ws?listenKey=abc&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/listenKeyExpired"
    )


# -- Spot ------------------------------------------------------------------------------------


@pytest.fixture
async def ws_api(clock: RecordingClock) -> AsyncIterator[FakeWsApi]:
    async with fake_ws_api(clock) as fake:
        yield fake


def spot_stream(
    server: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> SpotUserDataStream:
    return SpotUserDataStream(
        ws_api_url=server.url,
        clock=clock,
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_SECRET),
        limiter=RateLimiter(clock=clock, rules=DEFAULT_SPOT_RULES, name="spot"),
        on_events=downstream.on_events,
        on_resync=downstream.on_resync,
        backoff_initial_s=1.0,
        backoff_max_s=BACKOFF_MAX_S,
        max_age_s=MAX_AGE_S,
        request_timeout_s=30.0,
        recv_window_ms=5000,
        rng=random.Random(1),
    )


async def subscribed(server: FakeWsApi) -> int:
    """The id of the next successful subscription, once its answer is on the wire."""
    while True:
        result = (await server.answered.get()).get("result")
        if isinstance(result, dict) and "subscriptionId" in result:
            return int(result["subscriptionId"])


async def serving(server: FakeWsApi, downstream: Downstream) -> int:
    """The id of the next subscription, once the stream itself has taken its answer in.

    ``subscribed`` only proves the answer is on the wire; the client may not have read it yet,
    so its request timer is still armed and a big clock jump would expire it. An event pushed
    after the answer reaches downstream only once the subscribe request has completed.
    """
    subscription = await subscribed(server)
    await server.push({"subscriptionId": subscription, "event": report("barrier")})
    (barrier,) = await downstream.events.get()
    assert barrier.client_order_id == "barrier"
    return subscription


async def test_spot_delivers_its_own_events_decoded(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    stream = spot_stream(ws_api, clock, downstream)
    async with running(stream):
        subscription = await subscribed(ws_api)
        await ws_api.push({"subscriptionId": subscription + 7, "event": report("not-ours")})
        await ws_api.push({"subscriptionId": subscription, "event": report("ours")})
        (update,) = await downstream.events.get()
        snapshot = stream.snapshot()
    assert isinstance(update, OrderUpdated)
    assert (update.client_order_id, update.symbol, update.exchange_order_id) == (
        "ours", "ETHBTC", 4293153,
    )  # fmt: skip
    (subscribe,) = ws_api.calls(SUBSCRIBE_METHOD)
    assert subscribe["params"]["apiKey"] == TEST_API_KEY  # signed; the server checked it
    assert snapshot["connected"] is True
    assert snapshot["subscription_id"] == subscription
    assert (snapshot["events"], snapshot["ignored"], snapshot["subscriptions"]) == (1, 1, 1)
    json.dumps(snapshot)
    assert downstream.resyncs.empty()  # the first subscription is not a resync


async def test_spot_recorded_trade_report_arrives_with_its_fill(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream, binance_fixtures: Path
) -> None:
    recorded = json.loads(
        (binance_fixtures / "ws" / "ws_spot_execution_report_trade.json").read_text()
    )
    stream = spot_stream(ws_api, clock, downstream)
    async with running(stream):
        subscription = await subscribed(ws_api)
        await ws_api.push({"subscriptionId": subscription, "event": recorded["data"]})
        (update,) = await downstream.events.get()
    assert isinstance(update, OrderUpdated)
    assert update.fill is not None
    assert update.fill.trade_id == recorded["data"]["t"]


async def test_spot_stream_terminated_resubscribes_on_the_same_connection(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    stream = spot_stream(ws_api, clock, downstream)
    async with running(stream):
        first = await subscribed(ws_api)
        await ws_api.push(
            {"subscriptionId": first, "event": {"e": "eventStreamTerminated", "E": 1}}
        )
        second = await subscribed(ws_api)
        assert await downstream.resyncs.get() == "stream terminated"
        await ws_api.push({"subscriptionId": first, "event": report("old-subscription")})
        await ws_api.push({"subscriptionId": second, "event": report("new-subscription")})
        (update,) = await downstream.events.get()
        snapshot = stream.snapshot()
    assert second != first
    assert update.client_order_id == "new-subscription"
    assert len(ws_api.sockets) == 1
    assert len(ws_api.calls(SUBSCRIBE_METHOD)) == 2
    assert (snapshot["terminated"], snapshot["subscriptions"], snapshot["reconnects"]) == (1, 2, 0)


async def test_spot_disconnect_reconnects_resubscribes_and_asks_for_a_resync(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    stream = spot_stream(ws_api, clock, downstream)
    async with running(stream):
        await subscribed(ws_api)
        await ws_api.drop()
        await reconnect_after_backoff(clock)
        subscription = await subscribed(ws_api)
        reason = await downstream.resyncs.get()
        await ws_api.push({"subscriptionId": subscription, "event": report("after")})
        (update,) = await downstream.events.get()
        snapshot = stream.snapshot()
    assert "disconnected" in reason
    assert update.client_order_id == "after"
    assert len(ws_api.sockets) == 2
    first, second = ws_api.calls(SUBSCRIBE_METHOD)
    assert first["params"]["signature"] != second["params"]["signature"]  # signed afresh
    assert (snapshot["reconnects"], snapshot["subscriptions"]) == (1, 2)


async def test_spot_server_shutdown_moves_to_a_new_connection(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    stream = spot_stream(ws_api, clock, downstream)
    async with running(stream):
        await subscribed(ws_api)
        await ws_api.push({"event": {"e": "serverShutdown", "E": 1}})
        await ws_api.closed.get()  # we closed the old connection
        await reconnect_after_backoff(clock)
        await subscribed(ws_api)
        reason = await downstream.resyncs.get()
    assert "server_shutdown" in reason
    assert len(ws_api.sockets) == 2


async def test_spot_reconnects_before_the_24h_cut(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    stream = spot_stream(ws_api, clock, downstream)
    async with running(stream):
        # Jumping MAX_AGE_S also jumps the subscribe request's 30 s timeout: it must be over.
        await serving(ws_api, downstream)
        await clock.armed(MAX_AGE_S)
        clock.advance(MAX_AGE_S - 1)
        await settle()
        assert ws_api.closed.empty()  # not a moment early
        clock.advance(1)
        await ws_api.closed.get()  # we closed the old connection ourselves
        await reconnect_after_backoff(clock)
        await subscribed(ws_api)
        reason = await downstream.resyncs.get()
        snapshot = stream.snapshot()
    assert "max_age" in reason
    assert len(ws_api.sockets) == 2
    assert (snapshot["reconnects"], snapshot["subscriptions"]) == (1, 2)
    assert snapshot["last_error"] is None  # rotated on schedule, not after a failure


async def test_spot_malformed_events_are_counted_and_logged_once(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    stream = spot_stream(ws_api, clock, downstream)
    with capture_logs() as logs:
        async with running(stream):
            subscription = await subscribed(ws_api)
            await ws_api.push("{not json")
            await ws_api.push({"subscriptionId": subscription, "event": {"e": "executionReport"}})
            await ws_api.push({"subscriptionId": subscription, "event": report("still-going")})
            (update,) = await downstream.events.get()
            snapshot = stream.snapshot()
    assert update.client_order_id == "still-going"
    assert snapshot["malformed"] == 2
    warnings = [entry for entry in logs if entry["event"] == "user_data_malformed_event"]
    assert len(warnings) == 1  # the second one within the minute is only counted


async def test_spot_transient_subscribe_failure_retries_without_a_resync(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    refusals = iter([True])

    async def busy_once(frame: dict[str, Any]) -> dict[str, Any]:
        if next(refusals, False):
            return failed(frame, 503, -1008, "Server is currently overloaded.")
        return {"id": frame["id"], "status": 200, "result": {"subscriptionId": 5}}

    ws_api.handlers[SUBSCRIBE_METHOD] = busy_once
    stream = spot_stream(ws_api, clock, downstream)
    async with running(stream):
        await reconnect_after_backoff(clock)
        assert await subscribed(ws_api) == 5
        await ws_api.push({"subscriptionId": 5, "event": report("x")})
        await downstream.events.get()
        snapshot = stream.snapshot()
    assert downstream.resyncs.empty()  # nothing was ever delivered before: nothing to repair
    assert snapshot["reconnects"] == 1
    assert "-1008" in snapshot["last_error"]


async def test_spot_bad_credentials_end_the_stream(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    async def refuse(frame: dict[str, Any]) -> dict[str, Any]:
        return failed(frame, 401, -2015, "Invalid API-key, IP, or permissions for action.")

    ws_api.handlers[SUBSCRIBE_METHOD] = refuse
    stream = spot_stream(ws_api, clock, downstream)
    with pytest.raises(FatalVenueError):
        await stream.run()


async def test_spot_downstream_exception_propagates(
    ws_api: FakeWsApi, clock: RecordingClock, downstream: Downstream
) -> None:
    async def broken(events: tuple[Any, ...]) -> None:
        raise RuntimeError("executor bug")

    stream = spot_stream(ws_api, clock, downstream)
    stream._on_events = broken
    task = asyncio.ensure_future(stream.run())
    subscription = await subscribed(ws_api)
    await ws_api.push({"subscriptionId": subscription, "event": report("boom")})
    with pytest.raises(RuntimeError, match="executor bug"):
        await task
    assert stream.snapshot()["connected"] is False


# -- USDⓈ-M ----------------------------------------------------------------------------------


@dataclass
class FakeFutures:
    """``/fapi/v1/listenKey`` plus the ``/private/ws`` user-data route."""

    base_url: str = ""
    private_url: str = ""
    active_key: str | None = None
    created: int = 0
    keepalive_gone: bool = False
    close_hangs: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    rest_calls: list[str] = field(default_factory=list)
    requests: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ws_keys: list[str] = field(default_factory=list)
    connections: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)

    async def listen_key(self, request: web.Request) -> web.Response:
        if request.headers.get("X-MBX-APIKEY") != TEST_API_KEY:
            return web.json_response({"code": -2015, "msg": "Invalid API-key"}, status=401)
        self.rest_calls.append(request.method)
        self.requests.put_nowait(request.method)
        if request.method == "POST":
            if self.active_key is None:
                self.created += 1
                self.active_key = f"{'Zq' * 30}{self.created:04d}"
            return web.json_response({"listenKey": self.active_key})
        if request.method == "PUT":
            if self.keepalive_gone or self.active_key is None:
                self.active_key = None
                return web.json_response(
                    {"code": -1125, "msg": "This listenKey does not exist."}, status=400
                )
            return web.json_response({})
        if self.close_hangs:
            await self.release.wait()
        self.active_key = None
        return web.json_response({})

    async def private_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        self.ws_keys.append(request.query["listenKey"])
        self.connections.put_nowait(request.query["listenKey"])
        async for _ in ws:
            pass
        return ws

    async def push(self, document: Any) -> None:
        text = document if isinstance(document, str) else json.dumps(document)
        await self.sockets[-1].send_str(text)


@pytest.fixture
async def futures_server() -> AsyncIterator[FakeFutures]:
    server = FakeFutures()
    app = web.Application()
    app.router.add_route("*", "/fapi/v1/listenKey", server.listen_key)
    app.router.add_get("/private/ws", server.private_ws)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.base_url = f"http://127.0.0.1:{port}"
    server.private_url = f"ws://127.0.0.1:{port}/private"
    try:
        yield server
    finally:
        server.release.set()
        for ws in server.sockets:
            await ws.close()
        await runner.cleanup()


@pytest.fixture
async def futures_client(
    futures_server: FakeFutures, clock: RecordingClock
) -> AsyncIterator[FuturesClient]:
    transport = RestTransport(
        base_url=futures_server.base_url,
        server_time_path="/fapi/v1/time",
        clock=clock,
        limiter=RateLimiter(clock=clock, rules=DEFAULT_USDM_RULES, name="usdm"),
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_SECRET),
    )
    async with transport:
        yield FuturesClient(transport)


def futures_stream(
    server: FakeFutures,
    client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
    *,
    close_timeout_s: float = 2.0,
) -> FuturesUserDataStream:
    return FuturesUserDataStream(
        client=client,
        private_url=server.private_url,
        clock=clock,
        on_events=downstream.on_events,
        on_resync=downstream.on_resync,
        keepalive_s=KEEPALIVE_S,
        backoff_initial_s=1.0,
        backoff_max_s=BACKOFF_MAX_S,
        max_age_s=MAX_AGE_S,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        close_timeout_s=close_timeout_s,
        rng=random.Random(2),
    )


async def test_futures_delivers_events_and_keeps_the_key_alive_on_time(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    stream = futures_stream(futures_server, futures_client, clock, downstream)
    async with running(stream):
        key = await futures_server.connections.get()
        await futures_server.push(ORDER_TRADE_UPDATE)
        (update,) = await downstream.events.get()
        await clock.armed(KEEPALIVE_S)  # the first keepalive is due keepalive_s after creation
        clock.advance(KEEPALIVE_S - 1)
        await settle()
        assert futures_server.rest_calls == ["POST"]
        clock.advance(1)
        while await futures_server.requests.get() != "PUT":
            pass
        await clock.armed(KEEPALIVE_S)  # and the next one a full interval later
        snapshot = stream.snapshot()
    assert key == futures_server.ws_keys[0]
    assert isinstance(update, OrderUpdated)
    assert (update.client_order_id, update.symbol) == ("TEST", "BTCUSDT")
    assert snapshot["keepalives"] == 1
    assert snapshot["events"] == 1
    assert downstream.resyncs.empty()


async def test_futures_minus_1125_on_keepalive_makes_a_new_key_and_reconnects(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    stream = futures_stream(futures_server, futures_client, clock, downstream)
    async with running(stream):
        first_key = await futures_server.connections.get()
        futures_server.keepalive_gone = True
        await clock.armed(KEEPALIVE_S)
        clock.advance(KEEPALIVE_S)
        await clock.armed_at_most(BACKOFF_MAX_S)
        futures_server.keepalive_gone = False
        clock.advance(BACKOFF_MAX_S)
        second_key = await futures_server.connections.get()
        reason = await downstream.resyncs.get()
        snapshot = stream.snapshot()
    assert second_key != first_key
    assert futures_server.ws_keys == [first_key, second_key]
    assert futures_server.rest_calls[:3] == ["POST", "PUT", "POST"]
    assert "listen_key_expired" in reason
    assert (snapshot["keys_created"], snapshot["expired"], snapshot["connections"]) == (2, 1, 2)


async def test_futures_listen_key_expired_event_makes_a_new_key(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    stream = futures_stream(futures_server, futures_client, clock, downstream)
    async with running(stream):
        first_key = await futures_server.connections.get()
        futures_server.active_key = None  # lapsed on the server
        # E arrives as a string in this event.
        expired = {"e": "listenKeyExpired", "E": "1576653824250", "listenKey": first_key}
        await futures_server.push(expired)
        await reconnect_after_backoff(clock)
        second_key = await futures_server.connections.get()
        reason = await downstream.resyncs.get()
    assert second_key != first_key
    assert futures_server.rest_calls[:2] == ["POST", "POST"]
    assert "listen_key_expired" in reason


async def test_futures_disconnect_reconnects_with_the_same_live_key(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    stream = futures_stream(futures_server, futures_client, clock, downstream)
    async with running(stream):
        first_key = await futures_server.connections.get()
        await futures_server.sockets[-1].close()
        await reconnect_after_backoff(clock)
        second_key = await futures_server.connections.get()
        reason = await downstream.resyncs.get()
        await futures_server.push(ORDER_TRADE_UPDATE)
        await downstream.events.get()
        assert futures_server.rest_calls == ["POST"]  # still valid: no new key needed
    assert second_key == first_key
    assert "disconnected" in reason


async def test_futures_cancellation_closes_the_key(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    stream = futures_stream(futures_server, futures_client, clock, downstream)
    task = asyncio.ensure_future(stream.run())
    await futures_server.connections.get()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert futures_server.rest_calls == ["POST", "DELETE"]
    assert futures_server.active_key is None
    assert stream.snapshot()["listen_key"] is None


async def test_futures_a_hanging_close_does_not_block_shutdown(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    futures_server.close_hangs = True
    stream = futures_stream(futures_server, futures_client, clock, downstream, close_timeout_s=0.05)
    task = asyncio.ensure_future(stream.run())
    await futures_server.connections.get()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert futures_server.rest_calls == ["POST", "DELETE"]


async def test_futures_malformed_event_is_counted_and_the_stream_goes_on(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    stream = futures_stream(futures_server, futures_client, clock, downstream)
    async with running(stream):
        await futures_server.connections.get()
        await futures_server.push({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTCUSDT"}})
        await futures_server.push(ORDER_TRADE_UPDATE)
        await downstream.events.get()
        snapshot = stream.snapshot()
    assert snapshot["malformed"] == 1
    assert snapshot["connections"] == 1


async def test_futures_key_never_appears_in_snapshot_or_logs(
    futures_server: FakeFutures,
    futures_client: FuturesClient,
    clock: RecordingClock,
    downstream: Downstream,
) -> None:
    stream = futures_stream(futures_server, futures_client, clock, downstream)
    with capture_logs() as logs:
        async with running(stream):
            key = await futures_server.connections.get()
            await futures_server.sockets[-1].close()
            await reconnect_after_backoff(clock)
            await futures_server.connections.get()
            snapshot = stream.snapshot()
    text = json.dumps(snapshot)
    assert key not in text
    assert snapshot["listen_key"] == mask_secret(key) == f"…{key[-4:]}"
    assert logs
    assert key not in json.dumps(logs, default=str)
