"""RestTransport against a real aiohttp server on 127.0.0.1, with a ManualClock.

Covers what the issue asks of the transport: signing verified server-side, -1021 resync and a
single retry, Retry-After honoured for every request of the client, weight headers tracked,
placement never retried while reads and cancels are, and the outcome-unknown cases.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from app.domain.clock import ManualClock
from app.errors import (
    ClockSkewError,
    FatalVenueError,
    RateLimitedError,
    RejectedError,
    StatusUnknownError,
    TransientError,
)
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, RateLimiter
from exchange.binance.rest import RestTransport, RetryPolicy, Security
from exchange.binance.signing import HmacSigner
from exchange.binance.timesync import ServerTime
from tests.exchange.loopback import (
    TEST_API_KEY,
    TEST_SECRET,
    Received,
    ScriptedBinance,
    json_response,
    scripted_binance,
    text_response,
)

ORDER = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.01")]


@pytest.fixture
async def server() -> AsyncIterator[ScriptedBinance]:
    async with scripted_binance() as scripted:
        yield scripted


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ms=1_700_000_000_000)


def make_transport(
    server: ScriptedBinance, clock: ManualClock, *, timeout_s: float = 5.0, base_url: str = ""
) -> RestTransport:
    return RestTransport(
        base_url=base_url or server.base_url,
        server_time_path="/api/v3/time",
        clock=clock,
        limiter=RateLimiter(clock=clock, rules=DEFAULT_SPOT_RULES, name="test"),
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_SECRET),
        recv_window_ms=5000,
        timeout_s=timeout_s,
        retry=RetryPolicy(attempts=3, wait_initial_s=1.0, wait_max_s=4.0),
    )


async def test_signed_request_is_verified_by_the_server(server, clock) -> None:
    server.on("POST", "/api/v3/order", json_response({"orderId": 1}))
    async with make_transport(server, clock) as transport:
        body = await transport.request(
            "POST", "/api/v3/order", ORDER, security=Security.SIGNED, orders=1
        )
    assert json.loads(body) == {"orderId": 1}
    (got,) = server.calls("POST", "/api/v3/order")
    assert got.signature_ok()
    assert got.headers["X-MBX-APIKEY"] == TEST_API_KEY
    params = got.params
    assert params["timestamp"] == str(clock.now_ms())
    assert params["recvWindow"] == "5000"
    # Parameters go out in the caller's order, then recvWindow, timestamp and signature.
    assert list(params) == [*(k for k, _ in ORDER), "recvWindow", "timestamp", "signature"]


async def test_a_wrong_secret_would_not_verify(server, clock) -> None:
    server.on("GET", "/api/v3/account", json_response({}))
    async with make_transport(server, clock) as transport:
        await transport.request("GET", "/api/v3/account", security=Security.SIGNED)
    (got,) = server.calls("GET", "/api/v3/account")
    assert not got.signature_ok("another-secret")


async def test_unsigned_requests_carry_no_key_or_signature(server, clock) -> None:
    server.on("GET", "/api/v3/klines", json_response([]))
    async with make_transport(server, clock) as transport:
        await transport.request("GET", "/api/v3/klines", [("symbol", "BTCUSDT")])
    (got,) = server.calls("GET", "/api/v3/klines")
    assert "X-MBX-APIKEY" not in got.headers
    assert got.query_string == "symbol=BTCUSDT"


async def test_minus_1021_resyncs_the_clock_resigns_and_retries_once(server, clock) -> None:
    server_ahead_ms = 7_000

    async def server_time(_: Received) -> web.Response:
        return json_response({"serverTime": clock.now_ms() + server_ahead_ms}).build()

    async def order(got: Received) -> web.Response:
        skew = abs(int(got.params["timestamp"]) - (clock.now_ms() + server_ahead_ms))
        if skew > 1000:
            return json_response(
                {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
                status=400,
            ).build()
        return json_response({"orderId": 7}).build()

    server.on("GET", "/api/v3/time", server_time)
    server.on("POST", "/api/v3/order", order)
    async with make_transport(server, clock) as transport:
        body = await transport.request(
            "POST", "/api/v3/order", ORDER, security=Security.SIGNED, idempotent=False
        )
        assert transport.server_time.timestamp_ms() == clock.now_ms() + server_ahead_ms
    assert json.loads(body) == {"orderId": 7}
    first, second = server.calls("POST", "/api/v3/order")
    assert first.signature_ok()
    assert second.signature_ok()
    assert int(second.params["timestamp"]) - int(first.params["timestamp"]) == server_ahead_ms


async def test_a_second_minus_1021_surfaces(server, clock) -> None:
    server.on("GET", "/api/v3/time", json_response({"serverTime": 1}))
    server.on("POST", "/api/v3/order", json_response({"code": -1021, "msg": "outside"}, status=400))
    async with make_transport(server, clock) as transport:
        with pytest.raises(ClockSkewError):
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
    assert len(server.calls("POST", "/api/v3/order")) == 2


async def test_429_blocks_every_request_until_retry_after_passes(server, clock) -> None:
    server.on(
        "POST",
        "/api/v3/order",
        json_response(
            {"code": -1003, "msg": "Too many requests"},
            status=429,
            headers={"Retry-After": "30"},
        ),
        json_response({"orderId": 2}),
    )
    server.on("GET", "/api/v3/openOrders", json_response([]))
    async with make_transport(server, clock) as transport:
        with pytest.raises(RateLimitedError) as raised:
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
        assert raised.value.retry_after_s == pytest.approx(30)
        # Any request of this client, read or write, is refused locally while blocked.
        with pytest.raises(RateLimitedError):
            await transport.request("GET", "/api/v3/openOrders", security=Security.SIGNED)
        assert server.calls("GET", "/api/v3/openOrders") == []
        assert transport.snapshot()["rate_limits"]["blocked_for_s"] == pytest.approx(30)
        clock.advance(30)
        assert await transport.request("GET", "/api/v3/openOrders", security=Security.SIGNED)
        assert await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)


async def test_418_is_a_ban(server, clock) -> None:
    server.on(
        "GET",
        "/api/v3/account",
        json_response({"code": -1003, "msg": "banned"}, status=418, headers={"Retry-After": "120"}),
    )
    async with make_transport(server, clock) as transport:
        with pytest.raises(RateLimitedError) as raised:
            await transport.request("GET", "/api/v3/account", security=Security.SIGNED)
        assert raised.value.banned
        # A ban is never slept through by the read retry.
        assert len(server.calls("GET", "/api/v3/account")) == 1
        assert transport.snapshot()["rate_limits"]["banned"] is True


async def test_used_weight_headers_reach_the_limiter(server, clock) -> None:
    server.on(
        "GET",
        "/api/v3/exchangeInfo",
        json_response({}, headers={"x-mbx-used-weight-1m": "4321"}),
    )
    async with make_transport(server, clock) as transport:
        await transport.request("GET", "/api/v3/exchangeInfo", weight=20)
        rules = transport.snapshot()["rate_limits"]["rules"]
    weight = next(r for r in rules if r["kind"] == "REQUEST_WEIGHT")
    assert weight["used"] == 4321


async def test_rejection_keeps_code_and_message_and_no_signature(server, clock) -> None:
    server.on(
        "POST",
        "/api/v3/order",
        json_response({"code": -2010, "msg": "Account has insufficient balance."}, status=400),
    )
    async with make_transport(server, clock) as transport:
        with pytest.raises(RejectedError) as raised:
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
    assert raised.value.code == -2010
    assert "insufficient balance" in str(raised.value)
    assert "signature" not in str(raised.value)
    assert "POST /api/v3/order" in str(raised.value)
    assert len(server.calls("POST", "/api/v3/order")) == 1


async def test_5xx_on_placement_is_status_unknown_and_not_retried(server, clock) -> None:
    server.on("POST", "/api/v3/order", text_response("Service Unavailable", status=503))
    async with make_transport(server, clock) as transport:
        with pytest.raises(StatusUnknownError):
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
    assert len(server.calls("POST", "/api/v3/order")) == 1


async def test_minus_1007_on_placement_is_status_unknown(server, clock) -> None:
    server.on(
        "POST",
        "/api/v3/order",
        json_response(
            {"code": -1007, "msg": "Timeout waiting for response from backend server."},
            status=408,
        ),
    )
    async with make_transport(server, clock) as transport:
        with pytest.raises(StatusUnknownError) as raised:
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
    assert raised.value.code == -1007


async def test_reads_are_retried_with_backoff_on_the_clock(server, clock) -> None:
    server.on(
        "GET",
        "/api/v3/openOrders",
        text_response("bad gateway", status=502),
        text_response("gateway timeout", status=504),
        json_response([{"ok": True}]),
    )
    async with make_transport(server, clock) as transport:
        reading = asyncio.ensure_future(
            transport.request("GET", "/api/v3/openOrders", security=Security.SIGNED)
        )
        for _ in range(2):
            await clock.wait_for_sleepers()
            clock.advance(4.0)  # the policy's cap; jitter stays below it
        assert json.loads(await reading) == [{"ok": True}]
    assert len(server.calls("GET", "/api/v3/openOrders")) == 3


async def test_reads_give_up_after_the_attempt_limit(server, clock) -> None:
    server.on("GET", "/api/v3/openOrders", text_response("oops", status=500))
    async with make_transport(server, clock) as transport:
        reading = asyncio.ensure_future(
            transport.request("GET", "/api/v3/openOrders", security=Security.SIGNED)
        )
        for _ in range(2):
            await clock.wait_for_sleepers()
            clock.advance(4.0)
        with pytest.raises(TransientError):
            await reading
    assert len(server.calls("GET", "/api/v3/openOrders")) == 3


async def test_cancels_are_retried(server, clock) -> None:
    server.on(
        "DELETE",
        "/api/v3/order",
        text_response("busy", status=503),
        json_response({"status": "CANCELED"}),
    )
    async with make_transport(server, clock) as transport:
        cancelling = asyncio.ensure_future(
            transport.request(
                "DELETE", "/api/v3/order", ORDER[:1], security=Security.SIGNED, idempotent=True
            )
        )
        await clock.wait_for_sleepers()
        clock.advance(4.0)
        assert json.loads(await cancelling) == {"status": "CANCELED"}


async def test_disconnect_after_send_is_unknown_for_placement(server, clock) -> None:
    async def hang_up(_: Received) -> web.StreamResponse:
        raise ConnectionResetError  # aiohttp drops the connection without an answer

    server.on("POST", "/api/v3/order", hang_up)
    server.on("GET", "/api/v3/openOrders", hang_up)
    async with make_transport(server, clock) as transport:
        with pytest.raises(StatusUnknownError):
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
        reading = asyncio.ensure_future(
            transport.request("GET", "/api/v3/openOrders", security=Security.SIGNED)
        )
        for _ in range(2):
            await clock.wait_for_sleepers()
            clock.advance(4.0)
        with pytest.raises(TransientError) as raised:
            await reading
        assert not isinstance(raised.value, StatusUnknownError)
    assert len(server.calls("POST", "/api/v3/order")) == 1


async def test_timeout_after_send_is_unknown_for_placement(server, clock) -> None:
    never = asyncio.Event()

    async def stall(_: Received) -> web.StreamResponse:
        await never.wait()
        return json_response({}).build()

    server.on("POST", "/api/v3/order", stall)
    # A real (tiny) timeout: the behaviour under test is aiohttp's own timer firing.
    async with make_transport(server, clock, timeout_s=0.05) as transport:
        with pytest.raises(StatusUnknownError, match="timed out"):
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
    never.set()


async def test_connection_refused_is_transient_even_for_placement(clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = make_transport(ScriptedBinance(), clock, base_url=f"http://127.0.0.1:{port}")
    async with transport:
        with pytest.raises(TransientError) as raised:
            await transport.request("POST", "/api/v3/order", ORDER, security=Security.SIGNED)
    assert not isinstance(raised.value, StatusUnknownError)


async def test_signed_request_without_credentials_is_fatal(server, clock) -> None:
    transport = RestTransport(
        base_url=server.base_url,
        server_time_path="/api/v3/time",
        clock=clock,
        limiter=RateLimiter(clock=clock, rules=DEFAULT_SPOT_RULES),
        server_time=ServerTime(clock=clock),
    )
    async with transport:
        with pytest.raises(FatalVenueError, match="api_key"):
            await transport.request("GET", "/api/v3/account", security=Security.SIGNED)
    assert server.received == []


async def test_sync_time_measures_the_offset(server, clock) -> None:
    server.on("GET", "/api/v3/time", json_response({"serverTime": clock.now_ms() - 1500}))
    async with make_transport(server, clock) as transport:
        offset = await transport.sync_time()
        snapshot = transport.snapshot()
    assert offset == -1500
    assert snapshot["server_time"]["offset_ms"] == -1500
    assert snapshot["outcomes"]["ok"] >= 1
