"""Binance-shaped HTTP answers for the simulator, independent of any web framework.

The simulator's HTTP layer turns a ``Reply`` into its framework's response. Errors carry the
``{"code": ..., "msg": ...}`` body, the message Binance sends for that code and the HTTP status
it comes with; rate-limit answers add ``Retry-After``; successful answers carry the
``X-MBX-USED-WEIGHT-<n><L>`` / ``X-MBX-ORDER-COUNT-<n><L>`` usage headers the client's limiter
reads. Every ``Decimal`` in a body is written as a JSON string; a float is refused, since
Binance never sends one and a float would already have lost digits.

Unverified against the live exchange (no machine here reaches it): the HTTP statuses of most
codes (-1007 as 408; -1000/-1001/-1006 as 500; -2014/-2015/-1002 as 401; -1015 as 429; the rest
400 — only -1008 as 503 is backed by a report), the 418 message (older wording), the default
-2010 text (Binance fills in the engine's reason) and -2019's text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = [
    "DEFAULT_MESSAGES",
    "DEFAULT_STATUS",
    "Reply",
    "encode_json",
    "error_reply",
    "json_reply",
    "rate_limited_reply",
]

_CONTENT_TYPE: Final = ("Content-Type", "application/json;charset=UTF-8")

# Messages as the spot errors.md (and, for 4xxx/-2019, the USD-M error page) spell them. -2010
# and -2011 carry the matching engine's reason; the most common one is the default here.
DEFAULT_MESSAGES: Final[Mapping[int, str]] = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1002: "You are not authorized to execute this request.",
    -1003: "Too many requests queued.",
    -1006: "An unexpected response was received from the message bus. Execution status unknown.",
    -1007: (
        "Timeout waiting for response from backend server. "
        "Send status unknown; execution status unknown."
    ),
    -1008: "Server is currently overloaded with other requests. Please try again in a few minutes.",
    -1013: "The request is rejected by the API.",
    -1015: "Too many new orders.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1100: "Illegal characters found in a parameter.",
    -1102: "A mandatory parameter was not sent, was empty/null, or malformed.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -2010: "Account has insufficient balance for requested action.",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
}

# 5xx when the failure is on the exchange's side (the outcome may be unknown), 401 for
# credentials, 429 for limits, 400 for everything the request itself got wrong.
DEFAULT_STATUS: Final[Mapping[int, int]] = {
    -1000: 500,
    -1001: 500,
    -1006: 500,
    -1007: 408,
    -1008: 503,
    -1002: 401,
    -2014: 401,
    -2015: 401,
    -1003: 429,
    -1015: 429,
}
_REQUEST_ERROR_STATUS: Final = 400


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: status, body bytes and headers (name, value) in sending order."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (_CONTENT_TYPE,)

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


def error_reply(code: int, msg: str | None = None, *, status: int | None = None) -> Reply:
    """Binance's error answer for ``code``; the message and status default per code."""
    message = msg if msg is not None else DEFAULT_MESSAGES.get(code, "Unknown error.")
    http_status = status if status is not None else DEFAULT_STATUS.get(code, _REQUEST_ERROR_STATUS)
    return Reply(http_status, _encode({"code": code, "msg": message}))


def rate_limited_reply(
    retry_after_s: float,
    *,
    banned: bool,
    banned_until_ms: int | None = None,
    ip: str = "127.0.0.1",
    weight_limit: int = 6000,
) -> Reply:
    """A -1003 answer: 429 when over the weight limit, 418 once the IP is banned.

    ``Retry-After`` is whole seconds, rounded up so a client never comes back too early. A ban
    message names its end (``banned_until_ms``, required with ``banned``), as Binance's does.
    """
    if not (math.isfinite(retry_after_s) and retry_after_s >= 0):
        raise ValueError(f"retry_after_s must be a non-negative number, not {retry_after_s}")
    if banned:
        if banned_until_ms is None:
            raise ValueError("a ban needs banned_until_ms for its message")
        status = 418
        message = (
            f"Way too many requests; IP({ip}) banned until {banned_until_ms}. "
            "Please use the websocket for live updates to avoid bans."
        )
    else:
        status = 429
        message = (
            f"Too much request weight used; current limit is {weight_limit} request weight "
            "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
        )
    headers = (_CONTENT_TYPE, ("Retry-After", str(math.ceil(retry_after_s))))
    return Reply(status, _encode({"code": -1003, "msg": message}), headers)


def json_reply(
    obj: object,
    *,
    weight_headers: Mapping[str, int],
    order_count_headers: Mapping[str, int] | None = None,
    status: int = 200,
) -> Reply:
    """A successful JSON answer with usage headers.

    Keys of ``weight_headers`` and ``order_count_headers`` are window suffixes such as ``"1M"``
    or ``"10S"``: ``{"1M": 42}`` becomes ``X-MBX-USED-WEIGHT-1M: 42``.
    """
    headers = [_CONTENT_TYPE]
    headers += [(f"X-MBX-USED-WEIGHT-{w.upper()}", str(n)) for w, n in weight_headers.items()]
    counts = order_count_headers or {}
    headers += [(f"X-MBX-ORDER-COUNT-{w.upper()}", str(n)) for w, n in counts.items()]
    return Reply(status, _encode(obj), tuple(headers))


def encode_json(obj: object) -> str:
    """Compact JSON with every Decimal as its plain string (floats refused): the text of
    every answer, WebSocket frame and event the simulator sends."""
    return json.dumps(_jsonable(obj), separators=(",", ":"), ensure_ascii=False)


def _encode(obj: object) -> bytes:
    return encode_json(obj).encode()


def _jsonable(value: object) -> object:
    """The value with every Decimal as its plain string; floats refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send a non-finite decimal: {value}")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError(f"float {value!r} in a reply body: use Decimal")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
