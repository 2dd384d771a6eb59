"""The translation of failed Binance responses into ``app.errors`` exceptions.

Principle: every failure is sorted by *what the caller must do next*, not by what went wrong.

* TRANSIENT     nothing happened; the same request may be sent again (after a pause).
* RATE_LIMITED  nothing happened; nothing may be sent before ``retry_after_s``.
* CLOCK_SKEW    the timestamp was refused; resync the clock, re-sign and retry once.
* REJECTED      understood and refused; the same request gets the same answer.
* NOT_FOUND     the order or key referred to does not exist (a special refusal).
* AMBIGUOUS     the request may or may not have taken effect. A read is simply retried
                (TRANSIENT); a request that changes state must be followed by a query (by
                client order id), never by a blind resubmission. :func:`classify` resolves it.
* FATAL         credentials, signature, permissions or a ban on the account: stop trading.

A documented code always wins over the HTTP status. Without a known code the status decides:
429/418 rate limit (418 is an IP ban), 403 the WAF (fatal), 409 a partially failed
cancel-replace (rejected, inspect the body), 5xx unknown outcome (Binance: "do NOT treat this
as a failure"), any other 4xx rejected.

The codes themselves, with their kinds, are in ``error_codes`` (re-exported here).

Messages are cleaned (HTML tags, control characters) and cut to ~200 characters: a proxy's
error page must not flood the log. Builders here never raise.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

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
from exchange.binance.error_codes import ALREADY_IN_STATE_CODES, CODE_TABLE, ErrorKind

__all__ = [
    "ALREADY_IN_STATE_CODES",
    "CODE_TABLE",
    "ErrorKind",
    "classify",
    "clean_message",
    "error_from_http",
    "error_from_ws_api",
    "venue_error",
]

MAX_MESSAGE_CHARS = 200
DEFAULT_RETRY_AFTER_S = 1.0
# With no Retry-After a ban is assumed to last its documented minimum (2 minutes to 3 days).
DEFAULT_BAN_S = 120.0

# The matching engine reports an order that is gone under generic codes; only the message
# tells "no such order" apart from other refusals (spot -2026 is an archived order).
_ORDER_GONE_CODES = frozenset({-1010, -2011, -2026, -2038})
_ORDER_GONE_MESSAGES = ("unknown order sent", "order does not exist", "archived")


def classify(
    *, http_status: int | None, code: int | None, mutating: bool, message: str = ""
) -> ErrorKind:
    """What the caller must do about a failed request. Never returns AMBIGUOUS for a read."""
    kind = _classify_unresolved(http_status, code, message)
    if kind is ErrorKind.AMBIGUOUS and not mutating:
        return ErrorKind.TRANSIENT
    return kind


def _classify_unresolved(http_status: int | None, code: int | None, message: str) -> ErrorKind:
    entry = CODE_TABLE.get(code) if code is not None else None
    if entry is not None:
        kind = entry[0]
        if code in _ORDER_GONE_CODES and any(m in message.lower() for m in _ORDER_GONE_MESSAGES):
            return ErrorKind.NOT_FOUND
        return kind
    if http_status in (418, 429):
        return ErrorKind.RATE_LIMITED
    if http_status == 403:
        return ErrorKind.FATAL
    if http_status == 409:
        return ErrorKind.REJECTED
    if http_status is not None and 400 <= http_status < 500:
        return ErrorKind.REJECTED
    # 5xx, or a code without any status: the outcome is unknown, so assume it may have happened.
    return ErrorKind.AMBIGUOUS


def venue_error(
    *,
    message: str,
    http_status: int | None,
    code: int | None,
    endpoint: str,
    mutating: bool,
    retry_after_s: float | None = None,
) -> VenueError:
    """The ``app.errors`` exception for one failed request (returned, not raised)."""
    text = clean_message(message) or _fallback_message(http_status)
    kind = classify(http_status=http_status, code=code, mutating=mutating, message=text)
    if kind is ErrorKind.RATE_LIMITED:
        banned = http_status == 418 or "banned" in text.lower()
        if retry_after_s is None:
            retry_after_s = DEFAULT_BAN_S if banned else DEFAULT_RETRY_AFTER_S
        return RateLimitedError(
            text,
            retry_after_s=retry_after_s,
            banned=banned,
            code=code,
            http_status=http_status,
            endpoint=endpoint,
        )
    exception_class: type[VenueError] = {
        ErrorKind.TRANSIENT: TransientError,
        ErrorKind.CLOCK_SKEW: ClockSkewError,
        ErrorKind.REJECTED: RejectedError,
        ErrorKind.NOT_FOUND: NotFoundError,
        ErrorKind.AMBIGUOUS: StatusUnknownError,
        ErrorKind.FATAL: FatalVenueError,
    }[kind]
    return exception_class(text, code=code, http_status=http_status, endpoint=endpoint)


def error_from_http(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    endpoint: str,
    mutating: bool,
) -> VenueError:
    """Build the error for a failed REST response.

    ``body`` is normally ``{"code": -1121, "msg": "..."}`` but may be empty, HTML from a proxy
    or the WAF, or truncated; ``Retry-After`` (seconds) is read for 429 and 418. ``endpoint``
    is the path only: a signed query string must never reach an exception message.
    """
    code, message = _parse_error_body(body)
    retry_after_s = _retry_after_seconds(headers) if status in (418, 429) else None
    return venue_error(
        message=message,
        http_status=status,
        code=code,
        endpoint=endpoint,
        mutating=mutating,
        retry_after_s=retry_after_s,
    )


def error_from_ws_api(
    status: int,
    error: Mapping[str, object],
    *,
    method: str,
    mutating: bool,
    retry_after_s: float | None = None,
    now_ms: int | None = None,
) -> VenueError:
    """Build the error for a failed WebSocket API response (``status`` and its ``error``).

    Rate-limit errors there carry ``error.data.retryAfter``, the epoch ms when sending may
    resume. The wait is measured against ``error.data.serverTime`` when present (both clocks
    are the server's), else against ``now_ms``, which should be server time (``ServerTime.
    timestamp_ms()``). An explicit ``retry_after_s`` overrides both.
    """
    raw_code = error.get("code") if isinstance(error, Mapping) else None
    raw_message = error.get("msg") if isinstance(error, Mapping) else None
    if retry_after_s is None and status in (418, 429) and isinstance(error, Mapping):
        retry_after_s = _ws_retry_after_seconds(error.get("data"), now_ms)
    return venue_error(
        message=raw_message if isinstance(raw_message, str) else "",
        http_status=status,
        code=_as_code(raw_code),
        endpoint=method,
        mutating=mutating,
        retry_after_s=retry_after_s,
    )


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def clean_message(text: str) -> str:
    """One line of printable text, HTML tags removed, at most ~200 characters."""
    text = _TAG.sub(" ", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1].rstrip() + "…"
    return text


def _fallback_message(http_status: int | None) -> str:
    return f"status {http_status} without an error message" if http_status else "no error message"


def _parse_error_body(body: bytes) -> tuple[int | None, str]:
    text = body[:65536].decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            raw_message = document.get("msg")
            message = raw_message if isinstance(raw_message, str) else ""
            return _as_code(document.get("code")), message or text
    return None, text


def _as_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
        return int(value)
    return None


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    # A plain dict from a test or another client is case-sensitive; aiohttp's is not.
    for name, value in headers.items():
        if name.lower() == "retry-after":
            return _non_negative_seconds(value)
    return None


def _non_negative_seconds(value: object) -> float | None:
    try:
        seconds = float(value) if isinstance(value, str | int | float) else math.nan
    except ValueError:
        return None
    if math.isfinite(seconds) and seconds >= 0 and not isinstance(value, bool):
        return seconds
    return None


def _ws_retry_after_seconds(data: object, now_ms: int | None) -> float | None:
    if not isinstance(data, Mapping):
        return None
    resume_at = _as_int(data.get("retryAfter"))
    reference = _as_int(data.get("serverTime"))
    if reference is None:
        reference = now_ms
    if resume_at is None or reference is None:
        return None
    return max(0.0, (resume_at - reference) / 1000)


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
