"""The Binance error-code table and the builders that turn failed responses into app.errors."""

from __future__ import annotations

import json

import pytest

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
from exchange.binance.errors import (
    ALREADY_IN_STATE_CODES,
    CODE_TABLE,
    MAX_MESSAGE_CHARS,
    ErrorKind,
    classify,
    error_from_http,
    error_from_ws_api,
    venue_error,
)

K = ErrorKind

# The codes the brief names, with the kind each must have (spot errors.md and the USD-M futures
# error-code page give the names).
REQUIRED = {
    -1000: (K.AMBIGUOUS, "UNKNOWN"),
    -1001: (K.AMBIGUOUS, "DISCONNECTED"),
    -1002: (K.FATAL, "UNAUTHORIZED"),
    -1003: (K.RATE_LIMITED, "TOO_MANY_REQUESTS"),
    -1006: (K.AMBIGUOUS, "UNEXPECTED_RESP"),
    -1007: (K.AMBIGUOUS, "TIMEOUT"),
    -1008: (K.TRANSIENT, "SERVER_BUSY/REQUEST_THROTTLED"),
    -1013: (K.REJECTED, "INVALID_MESSAGE"),
    -1014: (K.REJECTED, "UNKNOWN_ORDER_COMPOSITION"),
    -1015: (K.RATE_LIMITED, "TOO_MANY_ORDERS"),
    -1016: (K.TRANSIENT, "SERVICE_SHUTTING_DOWN"),
    -1020: (K.REJECTED, "UNSUPPORTED_OPERATION"),
    -1021: (K.CLOCK_SKEW, "INVALID_TIMESTAMP"),
    -1022: (K.FATAL, "INVALID_SIGNATURE"),
    -1099: (K.FATAL, "NOT_FOUND"),
    -1100: (K.REJECTED, "ILLEGAL_CHARS"),
    -1102: (K.REJECTED, "MANDATORY_PARAM_EMPTY_OR_MALFORMED"),
    -1111: (K.REJECTED, "BAD_PRECISION"),
    -1121: (K.REJECTED, "BAD_SYMBOL"),
    -1125: (K.NOT_FOUND, "INVALID_LISTEN_KEY"),
    -2010: (K.REJECTED, "NEW_ORDER_REJECTED"),
    -2011: (K.REJECTED, "CANCEL_REJECTED"),
    -2013: (K.NOT_FOUND, "NO_SUCH_ORDER"),
    -2014: (K.FATAL, "BAD_API_KEY_FMT"),
    -2015: (K.FATAL, "REJECTED_MBX_KEY"),
    -2018: (K.REJECTED, "BALANCE_NOT_SUFFICIENT"),
    -2019: (K.REJECTED, "MARGIN_NOT_SUFFICIEN"),  # sic, as documented
    -2021: (K.REJECTED, "ORDER_CANCEL_REPLACE_PARTIALLY_FAILED/ORDER_WOULD_IMMEDIATELY_TRIGGER"),
    -2022: (K.REJECTED, "ORDER_CANCEL_REPLACE_FAILED/REDUCE_ONLY_REJECT"),
    -2026: (K.REJECTED, "ORDER_ARCHIVED/REDUCE_ONLY_ORDER_TYPE_NOT_SUPPORTED"),
    -2027: (K.REJECTED, "MAX_LEVERAGE_RATIO"),
    -2028: (K.REJECTED, "MIN_LEVERAGE_RATIO"),
    -4046: (K.REJECTED, "NO_NEED_TO_CHANGE_MARGIN_TYPE"),
    -4059: (K.REJECTED, "NO_NEED_TO_CHANGE_POSITION_SIDE"),
    -4061: (K.REJECTED, "POSITION_SIDE_NOT_MATCH"),
    -4164: (K.REJECTED, "MIN_NOTIONAL"),
    -5021: (K.REJECTED, "FOK_ORDER_REJECT"),
    -5022: (K.REJECTED, "GTX_ORDER_REJECT"),
    -5028: (K.CLOCK_SKEW, "ME_RECVWINDOW_REJECT"),
}


@pytest.mark.parametrize(("code", "entry"), sorted(REQUIRED.items()))
def test_table_covers_the_required_codes(code: int, entry: tuple[ErrorKind, str]) -> None:
    assert CODE_TABLE[code] == entry


def test_table_is_well_formed() -> None:
    assert len(CODE_TABLE) >= 190  # a table that silently shrank would be noticed
    for code, (kind, name) in CODE_TABLE.items():
        assert code < 0
        assert isinstance(kind, ErrorKind)
        assert name
        assert name == name.strip()
    assert CODE_TABLE.keys() >= ALREADY_IN_STATE_CODES


@pytest.mark.parametrize("code", sorted(CODE_TABLE))
@pytest.mark.parametrize("mutating", [True, False])
def test_every_code_builds_an_exception_of_its_kind(code: int, mutating: bool) -> None:
    kind = CODE_TABLE[code][0]
    error = venue_error(
        message="x", http_status=400, code=code, endpoint="/api/v3/order", mutating=mutating
    )
    expected = {
        K.TRANSIENT: TransientError,
        K.RATE_LIMITED: RateLimitedError,
        K.CLOCK_SKEW: ClockSkewError,
        K.REJECTED: RejectedError,
        K.NOT_FOUND: NotFoundError,
        K.AMBIGUOUS: StatusUnknownError if mutating else TransientError,
        K.FATAL: FatalVenueError,
    }[kind]
    assert type(error) is expected
    assert error.code == code


# --- classify -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "mutating", "expected"),
    [
        (429, True, K.RATE_LIMITED),
        (418, False, K.RATE_LIMITED),
        (403, True, K.FATAL),
        (409, True, K.REJECTED),
        (400, True, K.REJECTED),
        (401, False, K.REJECTED),
        (404, False, K.REJECTED),
        (500, True, K.AMBIGUOUS),
        (502, True, K.AMBIGUOUS),
        (503, True, K.AMBIGUOUS),
        (504, True, K.AMBIGUOUS),
        (500, False, K.TRANSIENT),
        (503, False, K.TRANSIENT),
        (None, True, K.AMBIGUOUS),
        (None, False, K.TRANSIENT),
    ],
)
def test_http_status_without_a_code(
    status: int | None, mutating: bool, expected: ErrorKind
) -> None:
    assert classify(http_status=status, code=None, mutating=mutating) is expected


def test_timeout_code_is_ambiguous_for_writes_and_transient_for_reads() -> None:
    assert classify(http_status=408, code=-1007, mutating=True) is K.AMBIGUOUS
    assert classify(http_status=408, code=-1007, mutating=False) is K.TRANSIENT


def test_code_wins_over_status() -> None:
    assert classify(http_status=503, code=-2010, mutating=True) is K.REJECTED
    assert classify(http_status=400, code=-1021, mutating=True) is K.CLOCK_SKEW
    assert classify(http_status=503, code=-1008, mutating=True) is K.TRANSIENT
    assert classify(http_status=401, code=-2015, mutating=False) is K.FATAL


def test_unknown_codes_fall_back_to_the_status() -> None:
    assert classify(http_status=400, code=-9999, mutating=True) is K.REJECTED
    assert classify(http_status=500, code=-9999, mutating=True) is K.AMBIGUOUS
    assert classify(http_status=500, code=-9999, mutating=False) is K.TRANSIENT
    assert classify(http_status=429, code=-9999, mutating=True) is K.RATE_LIMITED


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (-2011, "Unknown order sent.", K.NOT_FOUND),
        (-2011, "Order was not canceled due to cancel restrictions.", K.REJECTED),
        (-1010, "Unknown order sent.", K.NOT_FOUND),
        (-2038, "Unknown order sent.", K.NOT_FOUND),
        (-2026, "Order was canceled or expired with no executed qty over 90 days ago and has "
         "been archived.", K.NOT_FOUND),
        (-2026, "This OrderType is not supported when reduceOnly.", K.REJECTED),
        (-2010, "Duplicate order sent.", K.REJECTED),
        (-2010, "Unknown order sent.", K.REJECTED),  # only cancels/amends/queries can miss
    ],
)  # fmt: skip
def test_order_gone_messages_refine_generic_codes(
    code: int, message: str, expected: ErrorKind
) -> None:
    assert classify(http_status=400, code=code, mutating=True, message=message) is expected


# --- venue_error ----------------------------------------------------------------------------


def test_rate_limit_defaults() -> None:
    plain = venue_error(
        message="slow down", http_status=429, code=None, endpoint="/x", mutating=True
    )
    assert isinstance(plain, RateLimitedError)
    assert plain.retry_after_s == 1.0
    assert not plain.banned
    banned = venue_error(message="", http_status=418, code=-1003, endpoint="/x", mutating=False)
    assert isinstance(banned, RateLimitedError)
    assert banned.banned
    assert banned.retry_after_s == 120.0
    given = venue_error(
        message="", http_status=429, code=-1003, endpoint="/x", mutating=False, retry_after_s=7.5
    )
    assert isinstance(given, RateLimitedError)
    assert given.retry_after_s == 7.5


def test_ban_is_recognised_from_the_message() -> None:
    error = venue_error(
        message="Way too much request weight used; IP banned until 1659146400000.",
        http_status=429,
        code=-1003,
        endpoint="/api/v3/depth",
        mutating=False,
    )
    assert isinstance(error, RateLimitedError)
    assert error.banned


def test_venue_error_carries_code_status_and_endpoint() -> None:
    error = venue_error(
        message="Invalid symbol.",
        http_status=400,
        code=-1121,
        endpoint="/api/v3/order",
        mutating=True,
    )
    assert isinstance(error, RejectedError)
    assert (error.code, error.http_status, error.endpoint) == (-1121, 400, "/api/v3/order")
    assert str(error) == "/api/v3/order http 400 code -1121: Invalid symbol."


# --- error_from_http ------------------------------------------------------------------------


def _http(
    status: int, body: bytes, headers: dict[str, str] | None = None, **kw: bool
) -> VenueError:
    return error_from_http(
        status, body, headers or {}, endpoint="/api/v3/order", mutating=kw.get("mutating", True)
    )


def test_json_error_body() -> None:
    error = _http(400, b'{"code":-1121,"msg":"Invalid symbol."}')
    assert isinstance(error, RejectedError)
    assert error.code == -1121
    assert error.venue_message == "Invalid symbol."


def test_clock_skew_body() -> None:
    body = b'{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}'
    assert isinstance(_http(400, body), ClockSkewError)


def test_timeout_body_depends_on_mutating() -> None:
    body = json.dumps({"code": -1007, "msg": "Timeout waiting for response from backend server."})
    assert isinstance(_http(408, body.encode(), mutating=True), StatusUnknownError)
    read = _http(408, body.encode(), mutating=False)
    assert isinstance(read, TransientError)
    assert not isinstance(read, StatusUnknownError)


def test_5xx_without_body() -> None:
    write = _http(503, b"", mutating=True)
    assert isinstance(write, StatusUnknownError)
    assert write.venue_message == "status 503 without an error message"
    assert type(_http(502, b"", mutating=False)) is TransientError


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"RETRY-AFTER": " 0 "}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1.0),  # HTTP-date: not Binance's
        ({"Retry-After": "-5"}, 1.0),
        ({"Retry-After": "nan"}, 1.0),
        ({}, 1.0),
    ],
)
def test_retry_after_header_on_429(headers: dict[str, str], expected: float) -> None:
    error = _http(429, b'{"code":-1003,"msg":"Too much request weight used"}', headers)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == expected


def test_418_reads_retry_after_and_is_a_ban() -> None:
    error = _http(418, b'{"code":-1003,"msg":"IP banned"}', {"Retry-After": "3600"})
    assert isinstance(error, RateLimitedError)
    assert error.banned
    assert error.retry_after_s == 3600.0


def test_retry_after_is_ignored_on_other_statuses() -> None:
    error = _http(400, b'{"code":-1015,"msg":"Too many new orders."}', {"Retry-After": "9"})
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 1.0  # the order-count 429 has no header; a 400 never counts


def test_waf_html_page_is_fatal_and_shortened() -> None:
    html = (
        b"<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>"
        + b"<p>" + b"blocked " * 2000 + b"</p></body></html>"
    )  # fmt: skip
    error = _http(403, html)
    assert isinstance(error, FatalVenueError)
    assert error.code is None
    assert error.venue_message.startswith("403 Forbidden 403 Forbidden blocked")
    assert "<" not in error.venue_message
    assert len(error.venue_message) <= MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    "body",
    [
        b'{"code":-1121,"msg":"Invalid sym',  # truncated
        b"\xff\xfe\x00garbage\x00\x1b[31m",  # not UTF-8, control characters
        b"[1, 2, 3]",
        b'{"code": "abc", "msg": 42}',
        b'{"code": true}',
        b"{" * 100_000,  # deep nesting
        b"null",
        b"x" * 10_000_000,
    ],
)
@pytest.mark.parametrize("status", [400, 418, 429, 500])
def test_garbage_bodies_never_raise(body: bytes, status: int) -> None:
    error = _http(status, body)
    assert isinstance(error, VenueError)
    assert error.code is None
    assert 0 < len(error.venue_message) <= MAX_MESSAGE_CHARS
    assert error.venue_message.isprintable()


def test_code_given_as_a_string_is_accepted() -> None:
    error = _http(400, b'{"code":"-2013","msg":"Order does not exist."}')
    assert isinstance(error, NotFoundError)
    assert error.code == -2013


def test_json_body_without_msg_keeps_the_text() -> None:
    error = _http(400, b'{"code":-1102}')
    assert isinstance(error, RejectedError)
    assert error.venue_message == '{"code":-1102}'


# --- error_from_ws_api ----------------------------------------------------------------------


def test_ws_api_error_response_from_the_docs() -> None:
    error = error_from_ws_api(
        400,
        {"code": -1102, "msg": "Mandatory parameter 'quantity' was not sent, was empty/null, "
         "or malformed."},
        method="order.place",
        mutating=True,
    )  # fmt: skip
    assert isinstance(error, RejectedError)
    assert (error.code, error.http_status, error.endpoint) == (-1102, 400, "order.place")


def test_ws_api_ban_uses_retry_after_against_server_time() -> None:
    # web-socket-api.md rate limits: banned until epoch 1659146400000.
    error = error_from_ws_api(
        418,
        {
            "code": -1003,
            "msg": "Way too much request weight used; IP banned until 1659146400000. Please use "
            "WebSocket Streams for live updates to avoid bans.",
            "data": {"serverTime": 1659142907531, "retryAfter": 1659146400000},
        },
        method="depth",
        mutating=False,
    )
    assert isinstance(error, RateLimitedError)
    assert error.banned
    assert error.retry_after_s == pytest.approx(3492.469)


def test_ws_api_retry_after_against_now_ms_or_explicit() -> None:
    error = {"code": -1015, "msg": "Too many new orders.", "data": {"retryAfter": 1_000_500}}
    from_now = error_from_ws_api(429, error, method="order.place", mutating=True, now_ms=1_000_000)
    assert isinstance(from_now, RateLimitedError)
    assert from_now.retry_after_s == 0.5
    past = error_from_ws_api(429, error, method="order.place", mutating=True, now_ms=2_000_000)
    assert isinstance(past, RateLimitedError)
    assert past.retry_after_s == 0.0
    explicit = error_from_ws_api(
        429, error, method="order.place", mutating=True, now_ms=1_000_000, retry_after_s=9.0
    )
    assert isinstance(explicit, RateLimitedError)
    assert explicit.retry_after_s == 9.0
    unknown = error_from_ws_api(429, error, method="order.place", mutating=True)
    assert isinstance(unknown, RateLimitedError)
    assert unknown.retry_after_s == 1.0


@pytest.mark.parametrize(
    "error",
    [{}, {"code": None, "msg": None}, {"code": "x", "data": "nope"}, {"data": {"retryAfter": "x"}}],
)
def test_ws_api_malformed_errors_never_raise(error: dict[str, object]) -> None:
    built = error_from_ws_api(429, error, method="order.place", mutating=True, now_ms=5)
    assert isinstance(built, RateLimitedError)
    assert built.retry_after_s == 1.0


def test_ws_api_revoked_key_is_fatal() -> None:
    error = error_from_ws_api(
        401,
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
        method="order.place",
        mutating=True,
    )
    assert isinstance(error, FatalVenueError)
