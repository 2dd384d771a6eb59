"""The simulator's error answers, classified by the real client's ``error_from_http``."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from app.domain.clock import ManualClock
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
from exchange.binance.errors import error_from_http
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, RateLimiter
from exchange.sim.replies import Reply, error_reply, json_reply, rate_limited_reply


def _classify(reply: Reply, *, mutating: bool = True) -> VenueError:
    return error_from_http(
        reply.status,
        reply.body,
        dict(reply.headers),
        endpoint="/api/v3/order",
        mutating=mutating,
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (-1000, 500, StatusUnknownError),
        (-1007, 408, StatusUnknownError),
        (-1008, 503, TransientError),
        (-1013, 400, RejectedError),
        (-1021, 400, ClockSkewError),
        (-1022, 400, FatalVenueError),
        (-1102, 400, RejectedError),
        (-1121, 400, RejectedError),
        (-1125, 400, NotFoundError),
        (-2010, 400, RejectedError),
        (-2011, 400, NotFoundError),  # "Unknown order sent." marks the order as gone
        (-2013, 400, NotFoundError),
        (-2015, 401, FatalVenueError),
    ],
)
def test_error_replies_classify_as_binance_ones(
    code: int, status: int, expected: type[VenueError]
) -> None:
    reply = error_reply(code)
    assert reply.status == status
    assert reply.header("content-type") == "application/json;charset=UTF-8"
    error = _classify(reply)
    assert type(error) is expected
    assert (error.code, error.http_status) == (code, status)


def test_exact_binance_messages() -> None:
    def message(code: int) -> str:
        body = json.loads(error_reply(code).body)
        assert body["code"] == code
        text = body["msg"]
        assert isinstance(text, str)
        return text

    assert message(-1021) == "Timestamp for this request is outside of the recvWindow."
    assert message(-1022) == "Signature for this request is not valid."
    assert message(-1121) == "Invalid symbol."
    assert message(-2011) == "Unknown order sent."
    assert message(-2013) == "Order does not exist."
    assert message(-2015) == "Invalid API-key, IP, or permissions for action."
    assert message(-1125) == "This listenKey does not exist."
    assert message(-1007) == (
        "Timeout waiting for response from backend server. "
        "Send status unknown; execution status unknown."
    )


def test_timeout_on_a_read_is_transient_not_unknown() -> None:
    assert type(_classify(error_reply(-1007), mutating=False)) is TransientError


def test_cancel_rejected_for_another_reason_stays_rejected() -> None:
    reply = error_reply(-2011, "Order was not canceled due to cancel restrictions.")
    assert type(_classify(reply)) is RejectedError


def test_explicit_status_and_unknown_code() -> None:
    reply = error_reply(-9999, "made up", status=409)
    assert reply.status == 409
    assert json.loads(reply.body) == {"code": -9999, "msg": "made up"}
    assert type(_classify(reply)) is RejectedError


def test_429_carries_retry_after() -> None:
    reply = rate_limited_reply(2.2, banned=False)
    assert reply.status == 429
    assert reply.header("Retry-After") == "3"  # rounded up, never early
    error = _classify(reply)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 3.0
    assert not error.banned
    assert error.code == -1003


def test_418_is_a_ban_until_the_given_time() -> None:
    reply = rate_limited_reply(120, banned=True, banned_until_ms=1_763_700_120_000)
    assert reply.status == 418
    message = json.loads(reply.body)["msg"]
    assert message.startswith("Way too many requests; IP(127.0.0.1) banned until 1763700120000")
    error = _classify(reply, mutating=False)
    assert isinstance(error, RateLimitedError)
    assert error.banned
    assert error.retry_after_s == 120.0


def test_rate_limited_reply_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="banned_until_ms"):
        rate_limited_reply(1, banned=True)
    with pytest.raises(ValueError, match="non-negative"):
        rate_limited_reply(-1, banned=False)


def test_json_reply_writes_decimals_as_strings_and_usage_headers() -> None:
    reply = json_reply(
        {"price": Decimal("60000.10"), "qty": Decimal("1E-5"), "fills": [{"n": 1}]},
        weight_headers={"1M": 42},
        order_count_headers={"10s": 3},
    )
    assert reply.status == 200
    assert json.loads(reply.body) == {"price": "60000.10", "qty": "0.00001", "fills": [{"n": 1}]}
    assert reply.header("x-mbx-used-weight-1m") == "42"
    assert reply.header("X-MBX-ORDER-COUNT-10S") == "3"


def test_json_reply_refuses_floats() -> None:
    with pytest.raises(TypeError, match="float"):
        json_reply({"price": 1.5}, weight_headers={})


def test_client_limiter_reads_the_usage_headers() -> None:
    limiter = RateLimiter(clock=ManualClock(), rules=DEFAULT_SPOT_RULES)
    reply = json_reply({}, weight_headers={"1M": 4321}, order_count_headers={"10S": 7})
    limiter.observe_headers(dict(reply.headers))
    used = {(r["kind"], r["window"]): r["used"] for r in limiter.snapshot()["rules"]}
    assert used[("REQUEST_WEIGHT", "1M")] == 4321
    assert used[("ORDERS", "10S")] == 7
