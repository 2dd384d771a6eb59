"""WsApiClient against a real Binance-shaped WebSocket API server on 127.0.0.1.

The server (``tests.exchange.fake_ws_api``) checks every signed request the way Binance does,
answers by id, can hold answers back, answer -1021, push events and drop the connection. Time
is a ManualClock: request timeouts fire only when a test advances it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from app.domain.clock import ManualClock, SystemClock
from app.errors import (
    ClockSkewError,
    FatalVenueError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    StatusUnknownError,
    TransientError,
    VenueError,
)
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, RateLimiter
from exchange.binance.signing import HmacSigner, ws_api_signature_payload
from exchange.binance.timesync import ServerTime
from exchange.binance.ws_api import WsApiClient, wait_with_clock
from tests.exchange.fake_ws_api import FakeWsApi, RecordingClock, failed, fake_ws_api, ok
from tests.exchange.loopback import TEST_API_KEY, TEST_SECRET

REQUEST_TIMEOUT_S = 30.0


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
async def server(clock: RecordingClock) -> AsyncIterator[FakeWsApi]:
    async with fake_ws_api(clock) as fake:
        yield fake


def make_client(
    server: FakeWsApi,
    clock: ManualClock,
    *,
    on_event: Callable[[bytes | str], Awaitable[None]] | None = None,
    limiter: RateLimiter | None = None,
) -> WsApiClient:
    return WsApiClient(
        url=server.url,
        clock=clock,
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_SECRET),
        limiter=limiter,
        recv_window_ms=5000,
        request_timeout_s=REQUEST_TIMEOUT_S,
        name="test_ws_api",
        on_event=on_event,
    )


@asynccontextmanager
async def running(client: WsApiClient) -> AsyncIterator[asyncio.Task[None]]:
    """Connect and run the reader for the duration of the block, the way a stream owns it."""
    await client.connect()
    async with asyncio.TaskGroup() as tasks:
        reader = tasks.create_task(client.run())
        try:
            yield reader
        finally:
            await client.close()


# -- correlation and signing ---------------------------------------------------------------


async def test_concurrent_requests_are_matched_by_id(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    release = asyncio.Event()
    held: list[dict[str, Any]] = []

    async def slow(frame: dict[str, Any]) -> dict[str, Any] | None:
        # Hold every answer until all three asked, then answer in reverse order.
        held.append(frame)
        if len(held) < 3:
            await release.wait()
            return None
        for earlier in reversed(held[:-1]):
            await server.sockets[-1].send_str(json.dumps(ok(earlier, earlier["params"]["n"])))
        release.set()
        return ok(frame, frame["params"]["n"])

    server.handlers["ticker.price"] = slow
    client = make_client(server, clock)
    async with running(client):
        results = await asyncio.gather(
            *(client.request("ticker.price", {"n": n}) for n in (1, 2, 3))
        )
    assert results == [1, 2, 3]
    assert len({frame["id"] for frame in server.received}) == 3


async def test_signed_request_carries_key_timestamp_window_and_a_valid_signature(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    client = make_client(server, clock)
    async with running(client):
        result = await client.request(
            "order.test", {"symbol": "BTCUSDT", "quantity": Decimal("0.010"), "price": None},
            signed=True,
        )  # fmt: skip
    (frame,) = server.calls("order.test")
    params = frame["params"]
    assert params["apiKey"] == TEST_API_KEY
    assert params["timestamp"] == clock.now_ms()
    assert params["recvWindow"] == 5000
    assert params["quantity"] == "0.010"  # Decimal as its exact string, never a float
    assert "price" not in params  # None is left out, of the request and of the signature
    # The server verified the signature, or it would have answered -1022 instead of echoing.
    assert result["echo"]["symbol"] == "BTCUSDT"
    tampered = {**params, "symbol": "ETHUSDT"}
    expected = hmac.new(
        TEST_SECRET.encode(), ws_api_signature_payload(tampered).encode(), hashlib.sha256
    ).hexdigest()
    assert expected != params["signature"]


async def test_unsigned_request_carries_no_credentials(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    client = make_client(server, clock)
    async with running(client):
        await client.request("depth", {"symbol": "BTCUSDT", "limit": 5})
    (frame,) = server.calls("depth")
    assert frame["params"] == {"symbol": "BTCUSDT", "limit": 5}


async def test_a_wrong_secret_is_refused_as_fatal(server: FakeWsApi, clock: RecordingClock) -> None:
    client = make_client(server, clock)
    client._signer = HmacSigner("not-the-secret")
    async with running(client):
        with pytest.raises(FatalVenueError) as raised:
            await client.request("account.status", signed=True)
    assert raised.value.code == -1022


async def test_signed_request_without_credentials_is_fatal_and_not_sent(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    client = make_client(server, clock)
    client._api_key = None
    async with running(client):
        with pytest.raises(FatalVenueError):
            await client.request("account.status", signed=True)
    assert server.received == []


async def test_float_params_are_refused(server: FakeWsApi, clock: RecordingClock) -> None:
    client = make_client(server, clock)
    async with running(client):
        with pytest.raises(TypeError):
            await client.request("order.test", {"price": 0.1}, signed=True)
    assert server.received == []


async def test_secrets_never_reach_the_log(server: FakeWsApi, clock: RecordingClock) -> None:
    client = make_client(server, clock)
    with capture_logs() as logs:
        async with running(client):
            await client.request("account.status", signed=True)
    (frame,) = server.calls("account.status")
    text = json.dumps(logs, default=str)
    assert logs  # connect and disconnect are logged
    assert TEST_API_KEY not in text
    assert frame["params"]["signature"] not in text


# -- error answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, -2010, RejectedError),
        (400, -2013, NotFoundError),
        (400, -2015, FatalVenueError),
        (503, -1007, StatusUnknownError),
    ],
)
async def test_error_answers_become_the_right_exception(
    server: FakeWsApi, clock: RecordingClock, status: int, code: int, expected: type[VenueError]
) -> None:
    async def refuse(frame: dict[str, Any]) -> dict[str, Any]:
        return failed(frame, status, code, "refused")

    server.handlers["order.place"] = refuse
    client = make_client(server, clock)
    async with running(client):
        with pytest.raises(expected) as raised:
            await client.request("order.place", {"symbol": "BTCUSDT"}, signed=True, mutating=True)
    assert raised.value.code == code
    assert raised.value.endpoint == "order.place"


async def test_an_unknown_outcome_on_a_read_is_transient(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    async def busy(frame: dict[str, Any]) -> dict[str, Any]:
        return failed(frame, 503, -1007, "Timeout waiting for response from backend server.")

    server.handlers["order.status"] = busy
    client = make_client(server, clock)
    async with running(client):
        with pytest.raises(TransientError) as raised:
            await client.request("order.status", signed=True)
    assert not isinstance(raised.value, StatusUnknownError)


async def test_429_blocks_the_shared_limiter(server: FakeWsApi, clock: RecordingClock) -> None:
    async def too_many(frame: dict[str, Any]) -> dict[str, Any]:
        data = {"serverTime": clock.now_ms(), "retryAfter": clock.now_ms() + 20_000}
        return failed(frame, 429, -1003, "Too much request weight used.", data=data)

    server.handlers["order.place"] = too_many
    limiter = RateLimiter(clock=clock, rules=DEFAULT_SPOT_RULES, name="test")
    client = make_client(server, clock, limiter=limiter)
    async with running(client):
        with pytest.raises(RateLimitedError) as raised:
            await client.request("order.place", signed=True, mutating=True)
        assert raised.value.retry_after_s == pytest.approx(20)
        assert limiter.blocked_for_s() == pytest.approx(20)
        # Nothing more is sent while blocked.
        with pytest.raises(RateLimitedError):
            await client.request("ping")
    assert server.methods() == ["order.place"]


async def test_rate_limit_counts_in_answers_reach_the_limiter(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    async def counted(frame: dict[str, Any]) -> dict[str, Any]:
        limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 6000, "count": 4321},
        ]  # fmt: skip
        return {**ok(frame, {}), "rateLimits": limits}

    server.handlers["exchangeInfo"] = counted
    limiter = RateLimiter(clock=clock, rules=DEFAULT_SPOT_RULES, name="test")
    client = make_client(server, clock, limiter=limiter)
    async with running(client):
        await client.request("exchangeInfo", weight=20)
    weight = next(
        rule
        for rule in limiter.snapshot()["rules"]
        if rule["kind"] == "REQUEST_WEIGHT" and rule["window"] == "1M"
    )
    assert weight["used"] == 4321


# -- clock skew ----------------------------------------------------------------------------


async def test_minus_1021_resyncs_with_the_time_method_and_retries_once(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    server.server_ahead_ms = 7_000
    server.skew_next = 1
    client = make_client(server, clock)
    async with running(client):
        result = await client.request("order.place", {"symbol": "BTCUSDT"}, signed=True)
    assert result["echo"]["symbol"] == "BTCUSDT"
    first, second = server.calls("order.place")
    assert server.calls("time")  # the offset was measured over the same connection
    assert second["params"]["timestamp"] - first["params"]["timestamp"] == 7_000
    assert first["params"]["signature"] != second["params"]["signature"]  # signed afresh


async def test_minus_1021_uses_the_given_time_fetcher(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    server.skew_next = 1
    fetched: list[int] = []

    async def rest_time() -> int:
        fetched.append(1)
        return clock.now_ms() + 3_000

    client = make_client(server, clock)
    client._fetch_server_time_ms = rest_time
    async with running(client):
        await client.request("order.place", signed=True)
    assert fetched == [1, 1, 1]  # ServerTime takes three samples
    assert server.calls("time") == []
    assert server.calls("order.place")[-1]["params"]["timestamp"] == clock.now_ms() + 3_000


async def test_a_second_minus_1021_surfaces(server: FakeWsApi, clock: RecordingClock) -> None:
    server.skew_next = 2
    client = make_client(server, clock)
    async with running(client):
        with pytest.raises(ClockSkewError):
            await client.request("order.place", signed=True, mutating=True)
    assert len(server.calls("order.place")) == 2


# -- lost answers --------------------------------------------------------------------------


async def silent(frame: dict[str, Any]) -> None:
    return None


@pytest.mark.parametrize(("mutating", "expected"), [(True, StatusUnknownError), (False, None)])
async def test_no_answer_in_time(
    server: FakeWsApi, clock: RecordingClock, mutating: bool, expected: type[VenueError] | None
) -> None:
    server.handlers["order.place"] = silent
    client = make_client(server, clock)
    async with running(client):
        request = asyncio.ensure_future(
            client.request("order.place", {"symbol": "BTCUSDT"}, signed=True, mutating=mutating)
        )
        await server.arrivals.get()
        await clock.armed(REQUEST_TIMEOUT_S)
        clock.advance(REQUEST_TIMEOUT_S - 1)
        await asyncio.sleep(0)
        assert not request.done()
        clock.advance(1)
        with pytest.raises(TransientError if expected is None else expected) as raised:
            await request
        if expected is None:
            assert not isinstance(raised.value, StatusUnknownError)
        assert client.snapshot()["pending"] == 0


@pytest.mark.parametrize(("mutating", "expected"), [(True, StatusUnknownError), (False, None)])
async def test_a_dropped_connection_fails_pending_requests(
    server: FakeWsApi, clock: RecordingClock, mutating: bool, expected: type[VenueError] | None
) -> None:
    async def drop(frame: dict[str, Any]) -> None:
        await server.drop()

    server.handlers["order.place"] = drop
    client = make_client(server, clock)
    async with running(client) as reader:
        with pytest.raises(TransientError if expected is None else expected) as raised:
            await client.request("order.place", signed=True, mutating=mutating)
        await reader  # the reader returns once the connection is gone
        if expected is None:
            assert not isinstance(raised.value, StatusUnknownError)
        assert not client.connected
        with pytest.raises(TransientError):
            await client.request("ping")
    assert server.methods() == ["order.place"]


async def test_connect_failure_is_transient(clock: RecordingClock) -> None:
    async with fake_ws_api(clock) as fake:
        url = fake.url
    client = WsApiClient(
        url=url,
        clock=clock,
        server_time=ServerTime(clock=clock),
        api_key=None,
        signer=None,
        limiter=None,
        recv_window_ms=5000,
        request_timeout_s=REQUEST_TIMEOUT_S,
        name="test",
    )
    try:
        with pytest.raises(TransientError, match="cannot connect"):
            await client.connect()
    finally:
        await client.close()


# -- events --------------------------------------------------------------------------------


async def test_frames_without_an_id_go_to_on_event_in_order(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    events: asyncio.Queue[bytes | str] = asyncio.Queue()

    async def on_event(raw: bytes | str) -> None:
        events.put_nowait(raw)

    client = make_client(server, clock, on_event=on_event)
    first = {"subscriptionId": 0, "event": {"e": "balanceUpdate", "E": 1, "a": "BTC", "d": "1"}}
    async with running(client):
        await client.request("ping")  # the connection is up on the server side too
        await server.push(first)
        await server.push('{"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":2}}')
        assert json.loads(await events.get()) == first
        assert json.loads(await events.get())["event"]["e"] == "eventStreamTerminated"
    assert client.snapshot()["events"] == 2


async def test_an_exception_in_on_event_ends_run_and_fails_pending(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    async def broken(raw: bytes | str) -> None:
        raise RuntimeError("downstream bug")

    server.handlers["order.place"] = silent
    client = make_client(server, clock, on_event=broken)
    await client.connect()
    reader = asyncio.ensure_future(client.run())
    request = asyncio.ensure_future(client.request("order.place", signed=True, mutating=True))
    await server.arrivals.get()
    await server.push({"subscriptionId": 0, "event": {"e": "outboundAccountPosition"}})
    with pytest.raises(RuntimeError, match="downstream bug"):
        await reader
    with pytest.raises(StatusUnknownError):
        await request
    await client.close()


async def test_wait_with_clock_returns_the_result_or_times_out(clock: RecordingClock) -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(wait_with_clock(clock, future, 5))
    await clock.armed(5)
    future.set_result(7)
    assert await waiting == 7
    assert clock.sleeper_count == 0  # the timer went with it
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(wait_with_clock(clock, never, 5))
    await clock.armed(5)
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert not waiting.done()  # clock time, not wall time
    clock.advance(0.1)
    with pytest.raises(TimeoutError):
        await waiting
    assert never.cancelled()


async def test_wait_with_clock_raises_the_awaitables_own_error_unwrapped(
    clock: RecordingClock,
) -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(wait_with_clock(clock, future, 5))
    await clock.armed(5)
    future.set_exception(ConnectionResetError("gone"))
    with pytest.raises(ConnectionResetError, match="gone"):  # not an ExceptionGroup
        await waiting
    assert clock.sleeper_count == 0


async def test_wait_with_clock_unwinds_the_awaitable_before_raising(clock: RecordingClock) -> None:
    unwound = asyncio.Event()

    async def slow_to_cancel() -> int:
        try:
            await asyncio.Event().wait()
        finally:
            # Cleanup that needs the loop, like an aiohttp handshake closing its socket.
            for _ in range(3):
                await asyncio.sleep(0)
            unwound.set()
        return 0

    waiting = asyncio.ensure_future(wait_with_clock(clock, slow_to_cancel(), 5))
    await clock.armed(5)
    clock.advance(5)
    with pytest.raises(TimeoutError):
        await waiting
    assert unwound.is_set()
    assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left running


async def test_cancelling_wait_with_clock_cancels_the_awaitable_and_its_timer(
    clock: RecordingClock,
) -> None:
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(wait_with_clock(clock, never, 5))
    await clock.armed(5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert never.cancelled()
    assert clock.sleeper_count == 0


async def test_a_stalled_handshake_times_out_on_the_clock(
    server: FakeWsApi, clock: RecordingClock
) -> None:
    server.handshake_gate = asyncio.Event()
    client = make_client(server, clock)
    try:
        connecting = asyncio.ensure_future(client.connect())
        await clock.armed(REQUEST_TIMEOUT_S)
        clock.advance(REQUEST_TIMEOUT_S - 1)
        await asyncio.sleep(0)
        assert not connecting.done()
        clock.advance(1)
        with pytest.raises(TransientError, match="connect timed out"):
            await connecting
        assert not client.connected
        assert clock.sleeper_count == 0
    finally:
        await client.close()


async def test_wait_with_the_system_clock_uses_a_plain_timeout() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    # A real (tiny) deadline: the behaviour under test is the real timer firing.
    with pytest.raises(TimeoutError):
        await wait_with_clock(SystemClock(), never, 0.01)
    assert never.cancelled()
    assert await wait_with_clock(SystemClock(), asyncio.sleep(0, result=7), 5.0) == 7
