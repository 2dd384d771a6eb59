"""The fault catalogue and the rule definition: the fault kinds, what each kind accepts, and
``FaultRule`` with its validation and JSON form.

Kept apart from the injector (``exchange.sim.faults``) because a rule is plain data: the
admin endpoint parses and prints it without touching injector state, and its validation and
parsing are as long as the decision logic itself. ``exchange.sim.faults`` re-exports the
public names, so importers may use either module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, Literal

from exchange.sim.replies import DEFAULT_MESSAGES

__all__ = [
    "ACTION_KINDS",
    "CHANNELS",
    "MARKETS",
    "Channel",
    "FaultKind",
    "FaultRule",
    "FaultRuleError",
    "Market",
]

Market = Literal["spot", "futures"]
Channel = Literal["rest", "ws_api", "streams"]
MARKETS: Final = ("spot", "futures")
CHANNELS: Final = ("rest", "ws_api", "streams")


class FaultKind(StrEnum):
    DROP_STREAMS = "drop_streams"
    STALL_STREAMS = "stall_streams"
    SERVER_SHUTDOWN = "server_shutdown"
    LISTEN_KEY_EXPIRED = "listen_key_expired"
    ORDER_ERROR_5XX = "order_error_5xx"
    ORDER_ERROR_1007 = "order_error_1007"
    ORDER_TIMEOUT = "order_timeout"
    RATE_LIMIT_429 = "rate_limit_429"
    IP_BAN_418 = "ip_ban_418"
    LATENCY = "latency"
    REJECT_2010 = "reject_2010"
    REJECT_1013 = "reject_1013"
    ORDER_NOT_FOUND_AFTER_CREATE = "order_not_found_after_create"
    CLOCK_SKEW = "clock_skew"
    PARTIAL_FILLS = "partial_fills"


# Executed once when armed (through on_action callbacks), never kept as active rules.
ACTION_KINDS: Final = frozenset(
    {
        FaultKind.DROP_STREAMS,
        FaultKind.STALL_STREAMS,
        FaultKind.SERVER_SHUTDOWN,
        FaultKind.LISTEN_KEY_EXPIRED,
    }
)
# Standing conditions: in force while armed; a probability or a count means nothing for them.
_STATE_KINDS: Final = frozenset({FaultKind.CLOCK_SKEW, FaultKind.PARTIAL_FILLS})
_5XX_CODES: Final = (-1000, -1001, -1006)
_5XX_STATUSES: Final = (500, 503)

# The parameters each kind takes; any other parameter given for that kind is an error, so a
# typo such as ban_s on a 429 rule is refused instead of silently ignored.
_PARAMS: Final[Mapping[FaultKind, tuple[str, ...]]] = {
    FaultKind.DROP_STREAMS: (),
    FaultKind.STALL_STREAMS: ("stall_s",),
    FaultKind.SERVER_SHUTDOWN: (),
    FaultKind.LISTEN_KEY_EXPIRED: (),
    FaultKind.ORDER_ERROR_5XX: ("error_code", "http_status"),
    FaultKind.ORDER_ERROR_1007: (),
    FaultKind.ORDER_TIMEOUT: ("timeout_s",),
    FaultKind.RATE_LIMIT_429: ("retry_after_s",),
    FaultKind.IP_BAN_418: ("ban_s",),
    FaultKind.LATENCY: ("latency_ms",),
    FaultKind.REJECT_2010: ("message",),
    FaultKind.REJECT_1013: ("message",),
    FaultKind.ORDER_NOT_FOUND_AFTER_CREATE: ("grace_ms",),
    FaultKind.CLOCK_SKEW: ("skew_ms",),
    FaultKind.PARTIAL_FILLS: ("fraction",),
}
_DEFAULT_REJECT_MESSAGES: Final = {
    FaultKind.REJECT_2010: DEFAULT_MESSAGES[-2010],
    FaultKind.REJECT_1013: "Filter failure: LOT_SIZE",
}


class FaultRuleError(ValueError):
    """An invalid fault rule; ``field`` names the offending field."""

    def __init__(self, field_name: str, reason: str) -> None:
        self.field = field_name
        self.reason = reason
        super().__init__(f"{field_name}: {reason}")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault to inject.

    ``probability`` is the chance an eligible request triggers it; ``count`` how many times it
    may fire before it is used up (None: until cleared). ``market``/``channel``/``symbol``
    narrow where it applies (None: everywhere). The remaining fields are the parameters of the
    kinds that take them (``_PARAMS``); the others must stay at their defaults.
    """

    kind: FaultKind
    probability: float = 1.0
    count: int | None = None
    market: Market | None = None
    channel: Channel | None = None
    symbol: str | None = None
    retry_after_s: int = 10
    ban_s: int = 60
    latency_ms: int = 500
    stall_s: float = 30.0
    skew_ms: int = 5_000
    grace_ms: int = 1_000
    fraction: Decimal = Decimal("0.5")
    timeout_s: float = 10.0
    error_code: int = -1001
    http_status: int = 500
    message: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            raise FaultRuleError("kind", f"unknown fault kind {self.kind!r}")
        self._check_scope()
        self._check_params()

    def _check_scope(self) -> None:
        if not 0.0 <= self.probability <= 1.0 or math.isnan(self.probability):
            raise FaultRuleError("probability", f"must be within 0..1, not {self.probability}")
        if self.count is not None and self.count < 1:
            raise FaultRuleError("count", f"must be at least 1 (or absent), not {self.count}")
        if self.market is not None and self.market not in MARKETS:
            raise FaultRuleError("market", f"must be one of {MARKETS}, not {self.market!r}")
        if self.channel is not None and self.channel not in CHANNELS:
            raise FaultRuleError("channel", f"must be one of {CHANNELS}, not {self.channel!r}")
        if self.symbol is not None and not (self.symbol.isalnum() and self.symbol.isupper()):
            raise FaultRuleError("symbol", f"must be an upper-case symbol, not {self.symbol!r}")
        if self.kind in ACTION_KINDS or self.kind in _STATE_KINDS:
            what = "an action runs once when armed" if self.kind in ACTION_KINDS else "it stands"
            if self.probability != 1.0:
                raise FaultRuleError("probability", f"not allowed for {self.kind}: {what}")
            if self.count is not None:
                raise FaultRuleError("count", f"not allowed for {self.kind}: {what}")
        if self.kind in ACTION_KINDS and self.channel is not None:
            raise FaultRuleError("channel", f"not allowed for {self.kind}: it acts on streams")
        if self.kind is FaultKind.LISTEN_KEY_EXPIRED and self.market == "spot":
            raise FaultRuleError("market", "spot has no listenKey streams; use futures")
        if self.kind in _STATE_KINDS and self.channel is not None:
            raise FaultRuleError("channel", f"not allowed for {self.kind}: it is not per request")
        if self.kind in _STATE_KINDS and self.symbol is not None:
            # One clock per server and one fill model per engine: a symbol scope could not
            # be honoured.
            raise FaultRuleError("symbol", f"not allowed for {self.kind}: it covers a market")
        if self.channel == "streams" and self.kind is not FaultKind.LATENCY:
            raise FaultRuleError("channel", f"'streams' applies to latency only, not {self.kind}")

    def _check_params(self) -> None:
        allowed = _PARAMS[self.kind]
        defaults = _DEFAULTS
        for name in _PARAM_NAMES:
            if name not in allowed and getattr(self, name) != defaults[name]:
                raise FaultRuleError(name, f"not a parameter of {self.kind}")
        _require(self.retry_after_s >= 1, "retry_after_s", "must be at least 1 second")
        _require(self.ban_s >= 1, "ban_s", "must be at least 1 second")
        _require(self.latency_ms >= 0, "latency_ms", "must not be negative")
        _require(self.stall_s > 0 and math.isfinite(self.stall_s), "stall_s", "must be > 0")
        _require(self.skew_ms != 0 or "skew_ms" not in allowed, "skew_ms", "must not be 0")
        _require(self.grace_ms > 0, "grace_ms", "must be > 0")
        _require(
            self.fraction.is_finite() and Decimal(0) < self.fraction < Decimal(1),
            "fraction",
            "must be strictly between 0 and 1",
        )
        _require(self.timeout_s > 0 and math.isfinite(self.timeout_s), "timeout_s", "must be > 0")
        _require(self.error_code in _5XX_CODES, "error_code", f"must be one of {_5XX_CODES}")
        _require(self.http_status in _5XX_STATUSES, "http_status", f"one of {_5XX_STATUSES}")

    @property
    def reject_message(self) -> str:
        """The ``msg`` of a -2010/-1013 reject."""
        return self.message or _DEFAULT_REJECT_MESSAGES.get(self.kind, "")

    def matches(self, market: str, channel: str | None, symbol: str | None) -> bool:
        """Does the rule's scope include this request? A symbol-scoped rule never matches a
        request without a symbol (account queries)."""
        return (
            (self.market is None or self.market == market)
            and (self.channel is None or self.channel == channel)
            and (self.symbol is None or self.symbol == symbol)
        )

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON: scope fields that are set, and the parameters of its kind."""
        out: dict[str, Any] = {"kind": str(self.kind), "probability": self.probability}
        for name in ("count", "market", "channel", "symbol"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in _PARAMS[self.kind]:
            value = getattr(self, name)
            out[name] = str(value) if isinstance(value, Decimal) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Parse a rule; numbers may come as JSON numbers or strings (the CLI sends strings)."""
        if not isinstance(data, Mapping):
            raise FaultRuleError("rule", "must be a JSON object")
        if "kind" not in data:
            raise FaultRuleError("kind", "is required")
        try:
            kind = FaultKind(str(data["kind"]))
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise FaultRuleError("kind", f"unknown {data['kind']!r}; known: {known}") from None
        values: dict[str, Any] = {"kind": kind}
        for name, raw in data.items():
            if name == "kind":
                continue
            if name not in _CONVERTERS:
                raise FaultRuleError(name, "unknown field")
            if name in _PARAM_NAMES and name not in _PARAMS[kind]:
                raise FaultRuleError(name, f"not a parameter of {kind}")
            if raw is None and name in ("count", "market", "channel", "symbol"):
                continue
            values[name] = _CONVERTERS[name](name, raw)
        return cls(**values)


def _require(ok: bool, name: str, reason: str) -> None:
    if not ok:
        raise FaultRuleError(name, reason)


def _as_int(name: str, raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise FaultRuleError(name, f"must be an integer, not {raw!r}")
    try:
        return int(raw)
    except ValueError:
        raise FaultRuleError(name, f"must be an integer, not {raw!r}") from None


def _as_float(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise FaultRuleError(name, f"must be a number, not {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise FaultRuleError(name, f"must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise FaultRuleError(name, f"must be finite, not {raw!r}")
    return value


def _as_decimal(name: str, raw: object) -> Decimal:
    # A JSON float would have lost digits already; take its shortest repr, which is what the
    # sender typed.
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise FaultRuleError(name, f"must be a decimal, not {raw!r}")
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise FaultRuleError(name, f"must be a decimal, not {raw!r}") from None


def _as_str(name: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise FaultRuleError(name, f"must be a string, not {raw!r}")
    return raw.upper() if name == "symbol" else raw


_CONVERTERS: Final[Mapping[str, Callable[[str, object], Any]]] = {
    "probability": _as_float,
    "count": _as_int,
    "market": _as_str,
    "channel": _as_str,
    "symbol": _as_str,
    "retry_after_s": _as_int,
    "ban_s": _as_int,
    "latency_ms": _as_int,
    "stall_s": _as_float,
    "skew_ms": _as_int,
    "grace_ms": _as_int,
    "fraction": _as_decimal,
    "timeout_s": _as_float,
    "error_code": _as_int,
    "http_status": _as_int,
    "message": _as_str,
}
_PARAM_NAMES: Final = tuple(
    f.name
    for f in fields(FaultRule)
    if f.name not in ("kind", "probability", "count", "market", "channel", "symbol")
)
_DEFAULTS: Final[Mapping[str, object]] = {f.name: f.default for f in fields(FaultRule)}
