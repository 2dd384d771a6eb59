"""The Binance error-code table and the translation of failed responses into ``app.errors``.

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

Codes come from the spot ``errors.md`` and the USDⓈ-M futures error-code page. Where the two
markets give one code different meanings (``-1108``, ``-2021``, ``-2022``, ``-2026``) the name
reads ``SPOT/FUTURES`` and the kind fits both. Left out, as no request of this daemon can
meet them: FIX-only codes, futures options codes (``-4063``…``-4081``) and codes about the
exchange's own symbol setup (``-4008 TICK_SIZE_LESS_THAN_ZERO`` and the like).

Messages are cleaned (HTML tags, control characters) and cut to ~200 characters: a proxy's
error page must not flood the log. Builders here never raise.
"""

from __future__ import annotations

import enum
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


class ErrorKind(enum.Enum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    CLOCK_SKEW = "clock_skew"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"


# fmt: off
_AMBIGUOUS = {
    -1000: "UNKNOWN", -1001: "DISCONNECTED", -1006: "UNEXPECTED_RESP", -1007: "TIMEOUT",
}
_TRANSIENT = {
    -1008: "SERVER_BUSY/REQUEST_THROTTLED", -1016: "SERVICE_SHUTTING_DOWN",
}
_RATE_LIMITED = {
    -1003: "TOO_MANY_REQUESTS", -1015: "TOO_MANY_ORDERS", -1034: "TOO_MANY_CONNECTIONS",
}
_CLOCK_SKEW = {
    -1021: "INVALID_TIMESTAMP",
    # Refused by the matching engine before execution because the request arrived too late.
    -5028: "ME_RECVWINDOW_REJECT",
}
_NOT_FOUND = {
    -1125: "INVALID_LISTEN_KEY", -2013: "NO_SUCH_ORDER", -2043: "NO_REFERENCE_PRICE",
}
_FATAL = {
    -1002: "UNAUTHORIZED", -1011: "NON_WHITE_LIST", -1022: "INVALID_SIGNATURE",
    -1099: "NOT_FOUND", -2014: "BAD_API_KEY_FMT", -2015: "REJECTED_MBX_KEY",
    -2017: "API_KEYS_LOCKED", -4056: "INVALID_API_KEY_TYPE", -4057: "INVALID_RSA_PUBLIC_KEY",
    -4088: "NO_PLACE_ORDER_PERMISSION", -4109: "INACTIVE_ACCOUNT", -4192: "COOLING_OFF_PERIOD",
    -4402: "COMPLIANCE_BLACK_SYMBOL_RESTRICTION",
}
_REJECTED = {
    # 10xx that are refusals, not outages
    -1004: "DUPLICATE_IP", -1005: "NO_SUCH_IP", -1010: "ERROR_MSG_RECEIVED",
    -1013: "INVALID_MESSAGE", -1014: "UNKNOWN_ORDER_COMPOSITION", -1020: "UNSUPPORTED_OPERATION",
    -1023: "START_TIME_GREATER_THAN_END_TIME",
    # 11xx request issues
    -1100: "ILLEGAL_CHARS", -1101: "TOO_MANY_PARAMETERS",
    -1102: "MANDATORY_PARAM_EMPTY_OR_MALFORMED", -1103: "UNKNOWN_PARAM", -1104: "UNREAD_PARAMETERS",
    -1105: "PARAM_EMPTY", -1106: "PARAM_NOT_REQUIRED", -1108: "PARAM_OVERFLOW/BAD_ASSET",
    -1109: "BAD_ACCOUNT", -1110: "BAD_INSTRUMENT_TYPE", -1111: "BAD_PRECISION", -1112: "NO_DEPTH",
    -1114: "TIF_NOT_REQUIRED", -1115: "INVALID_TIF", -1116: "INVALID_ORDER_TYPE",
    -1117: "INVALID_SIDE", -1118: "EMPTY_NEW_CL_ORD_ID", -1119: "EMPTY_ORG_CL_ORD_ID",
    -1120: "BAD_INTERVAL", -1121: "BAD_SYMBOL", -1122: "INVALID_SYMBOLSTATUS",
    -1126: "ASSET_NOT_SUPPORTED", -1127: "MORE_THAN_XX_HOURS", -1128: "OPTIONAL_PARAMS_BAD_COMBO",
    -1130: "INVALID_PARAMETER", -1134: "BAD_STRATEGY_TYPE", -1135: "INVALID_JSON",
    -1136: "INVALID_NEW_ORDER_RESP_TYPE", -1139: "INVALID_TICKER_TYPE",
    -1145: "INVALID_CANCEL_RESTRICTIONS", -1151: "DUPLICATE_SYMBOLS", -1152: "INVALID_SBE_HEADER",
    -1153: "UNSUPPORTED_SCHEMA_ID", -1155: "SBE_DISABLED", -1158: "OCO_ORDER_TYPE_REJECTED",
    -1160: "OCO_ICEBERGQTY_TIMEINFORCE", -1161: "DEPRECATED_SCHEMA",
    -1165: "BUY_OCO_LIMIT_MUST_BE_BELOW", -1166: "SELL_OCO_LIMIT_MUST_BE_ABOVE",
    -1168: "BOTH_OCO_ORDERS_CANNOT_BE_LIMIT", -1194: "INVALID_TIME_UNIT",
    -1196: "BUY_OCO_STOP_LOSS_MUST_BE_ABOVE", -1197: "SELL_OCO_STOP_LOSS_MUST_BE_BELOW",
    -1198: "BUY_OCO_TAKE_PROFIT_MUST_BE_BELOW", -1199: "SELL_OCO_TAKE_PROFIT_MUST_BE_ABOVE",
    -1210: "INVALID_PEG_PRICE_TYPE", -1211: "INVALID_PEG_OFFSET_TYPE",
    -1220: "SYMBOL_DOES_NOT_MATCH_STATUS", -1221: "INVALID_SBE_MESSAGE_FIELD",
    -1222: "OPO_WORKING_MUST_BE_BUY", -1223: "OPO_PENDING_MUST_BE_SELL",
    -1224: "WORKING_PARAM_REQUIRED", -1225: "PENDING_PARAM_NOT_REQUIRED",
    # 20xx processing issues. Spot documents -2021/-2022 (cancel-replace) without constant
    # names; the spot halves of those two names are descriptive, not Binance's.
    -2010: "NEW_ORDER_REJECTED", -2011: "CANCEL_REJECTED", -2012: "CANCEL_ALL_FAIL",
    -2016: "NO_TRADING_WINDOW", -2018: "BALANCE_NOT_SUFFICIENT", -2019: "MARGIN_NOT_SUFFICIEN",
    -2020: "UNABLE_TO_FILL",
    -2021: "ORDER_CANCEL_REPLACE_PARTIALLY_FAILED/ORDER_WOULD_IMMEDIATELY_TRIGGER",
    -2022: "ORDER_CANCEL_REPLACE_FAILED/REDUCE_ONLY_REJECT", -2023: "USER_IN_LIQUIDATION",
    -2024: "POSITION_NOT_SUFFICIENT", -2025: "MAX_OPEN_ORDER_EXCEEDED",
    -2026: "ORDER_ARCHIVED/REDUCE_ONLY_ORDER_TYPE_NOT_SUPPORTED", -2027: "MAX_LEVERAGE_RATIO",
    -2028: "MIN_LEVERAGE_RATIO", -2035: "SUBSCRIPTION_ACTIVE", -2036: "SUBSCRIPTION_INACTIVE",
    -2038: "ORDER_AMEND_REJECTED", -2039: "CLIENT_ORDER_ID_INVALID",
    -2042: "MAXIMUM_SUBSCRIPTION_IDS",
    # 40xx futures filters, orders and positions
    -4000: "INVALID_ORDER_STATUS", -4001: "PRICE_LESS_THAN_ZERO",
    -4002: "PRICE_GREATER_THAN_MAX_PRICE", -4003: "QTY_LESS_THAN_ZERO",
    -4004: "QTY_LESS_THAN_MIN_QTY", -4005: "QTY_GREATER_THAN_MAX_QTY",
    -4006: "STOP_PRICE_LESS_THAN_ZERO", -4007: "STOP_PRICE_GREATER_THAN_MAX_PRICE",
    -4013: "PRICE_LESS_THAN_MIN_PRICE", -4014: "PRICE_NOT_INCREASED_BY_TICK_SIZE",
    -4015: "INVALID_CL_ORD_ID_LEN", -4016: "PRICE_HIGHTER_THAN_MULTIPLIER_UP",
    -4020: "TARGET_STRATEGY_INVALID", -4021: "INVALID_DEPTH_LIMIT", -4022: "WRONG_MARKET_STATUS",
    -4023: "QTY_NOT_INCREASED_BY_STEP_SIZE", -4024: "PRICE_LOWER_THAN_MULTIPLIER_DOWN",
    -4027: "INVALID_ACCOUNT_TYPE", -4028: "INVALID_LEVERAGE", -4031: "INVALID_WORKING_TYPE",
    -4032: "EXCEED_MAX_CANCEL_ORDER_SIZE", -4045: "MAX_STOP_ORDER_EXCEEDED",
    -4046: "NO_NEED_TO_CHANGE_MARGIN_TYPE", -4047: "THERE_EXISTS_OPEN_ORDERS",
    -4048: "THERE_EXISTS_QUANTITY", -4049: "ADD_ISOLATED_MARGIN_REJECT",
    -4050: "CROSS_BALANCE_INSUFFICIENT", -4051: "ISOLATED_BALANCE_INSUFFICIENT",
    -4052: "NO_NEED_TO_CHANGE_AUTO_ADD_MARGIN", -4053: "AUTO_ADD_CROSSED_MARGIN_REJECT",
    -4054: "ADD_ISOLATED_MARGIN_NO_POSITION_REJECT", -4055: "AMOUNT_MUST_BE_POSITIVE",
    -4059: "NO_NEED_TO_CHANGE_POSITION_SIDE", -4060: "INVALID_POSITION_SIDE",
    -4061: "POSITION_SIDE_NOT_MATCH", -4062: "REDUCE_ONLY_CONFLICT",
    -4067: "POSITION_SIDE_CHANGE_EXISTS_OPEN_ORDERS", -4068: "POSITION_SIDE_CHANGE_EXISTS_QUANTITY",
    -4082: "INVALID_BATCH_PLACE_ORDER_SIZE", -4083: "PLACE_BATCH_ORDERS_FAIL",
    -4084: "UPCOMING_METHOD", -4087: "REDUCE_ONLY_ORDER_PERMISSION",
    -4116: "DUPLICATED_CLIENT_ORDER_ID", -4117: "STOP_ORDER_TRIGGERING",
    -4118: "REDUCE_ONLY_MARGIN_CHECK_FAILED", -4120: "STOP_ORDER_SWITCH_ALGO",
    -4131: "MARKET_ORDER_REJECT", -4135: "INVALID_ACTIVATION_PRICE",
    -4137: "QUANTITY_EXISTS_WITH_CLOSE_POSITION", -4138: "REDUCE_ONLY_MUST_BE_TRUE",
    -4139: "ORDER_TYPE_CANNOT_BE_MKT", -4140: "INVALID_OPENING_POSITION_STATUS",
    -4141: "SYMBOL_ALREADY_CLOSED", -4142: "STRATEGY_INVALID_TRIGGER_PRICE", -4144: "INVALID_PAIR",
    -4161: "ISOLATED_LEVERAGE_REJECT_WITH_POSITION", -4164: "MIN_NOTIONAL",
    -4165: "INVALID_TIME_INTERVAL", -4167: "ISOLATED_REJECT_WITH_JOINT_MARGIN",
    -4168: "JOINT_MARGIN_REJECT_WITH_ISOLATED", -4169: "JOINT_MARGIN_REJECT_WITH_MB",
    -4170: "JOINT_MARGIN_REJECT_WITH_OPEN_ORDER", -4171: "NO_NEED_TO_CHANGE_JOINT_MARGIN",
    -4172: "JOINT_MARGIN_REJECT_WITH_NEGATIVE_BALANCE",
    # -4183 (sic): the docs reuse -4167's name; the message is "Price is higher than stop price
    # multiplier cap."
    -4183: "ISOLATED_REJECT_WITH_JOINT_MARGIN", -4184: "PRICE_LOWER_THAN_STOP_MULTIPLIER_DOWN",
    -4202: "ADJUST_LEVERAGE_KYC_FAILED", -4203: "ADJUST_LEVERAGE_ONE_MONTH_FAILED",
    -4205: "ADJUST_LEVERAGE_X_DAYS_FAILED", -4206: "ADJUST_LEVERAGE_KYC_LIMIT",
    -4208: "ADJUST_LEVERAGE_ACCOUNT_SYMBOL_FAILED", -4209: "ADJUST_LEVERAGE_SYMBOL_FAILED",
    -4210: "STOP_PRICE_HIGHER_THAN_PRICE_MULTIPLIER_LIMIT",
    -4211: "STOP_PRICE_LOWER_THAN_PRICE_MULTIPLIER_LIMIT", -4400: "TRADING_QUANTITATIVE_RULE",
    -4401: "LARGE_POSITION_SYM_RULE", -4403: "ADJUST_LEVERAGE_COMPLIANCE_FAILED",
    # 50xx futures order execution
    -5021: "FOK_ORDER_REJECT", -5022: "GTX_ORDER_REJECT",
    -5024: "MOVE_ORDER_NOT_ALLOWED_SYMBOL_REASON", -5025: "LIMIT_ORDER_ONLY",
    -5026: "Exceed_Maximum_Modify_Order_Limit", -5027: "SAME_ORDER",
    -5029: "MODIFICATION_MIN_NOTIONAL", -5037: "INVALID_PRICE_MATCH",
    -5038: "UNSUPPORTED_ORDER_TYPE_PRICE_MATCH", -5039: "INVALID_SELF_TRADE_PREVENTION_MODE",
    -5040: "FUTURE_GOOD_TILL_DATE", -5041: "BBO_ORDER_REJECT",
    -5043: "Existing_Pending_Modification",
}
# fmt: on


def _build_table() -> dict[int, tuple[ErrorKind, str]]:
    table: dict[int, tuple[ErrorKind, str]] = {}
    groups = (
        (ErrorKind.AMBIGUOUS, _AMBIGUOUS),
        (ErrorKind.TRANSIENT, _TRANSIENT),
        (ErrorKind.RATE_LIMITED, _RATE_LIMITED),
        (ErrorKind.CLOCK_SKEW, _CLOCK_SKEW),
        (ErrorKind.NOT_FOUND, _NOT_FOUND),
        (ErrorKind.FATAL, _FATAL),
        (ErrorKind.REJECTED, _REJECTED),
    )
    for kind, names in groups:
        for code, name in names.items():
            if code in table:
                raise RuntimeError(f"Binance error code {code} is listed twice")
            table[code] = (kind, name)
    return table


CODE_TABLE: Mapping[int, tuple[ErrorKind, str]] = _build_table()

# Refusals that mean "already so": setting the margin type, position mode, auto-add margin or
# multi-assets mode to its current value, or amending an order to what it already is. Callers
# that only want the state to hold treat these as success.
ALREADY_IN_STATE_CODES: frozenset[int] = frozenset({-4046, -4052, -4059, -4171, -5027})

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
