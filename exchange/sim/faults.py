"""The injector that decides, request by request, which simulator fault to apply.

The fault kinds and ``FaultRule`` (validation, JSON) live in ``exchange.sim.fault_rules``;
the public names are re-exported here so importers need not care where they are defined.

Pure: no I/O and no wall clock. The REST, WebSocket-API and stream servers ask the injector at
fixed points and apply what it answers, so their code stays a few lines per fault:

- ``before_request``: added latency, 429 windows, 418 IP bans, ``-2010``/``-1013`` rejects of
  order placements;
- ``after_order_accepted``: the engine accepted the order but the answer is a 5xx, a ``-1007``
  or no answer at all (hold, then drop the connection) — execution status unknown;
- ``hide_new_order`` / ``is_hidden``: ``-2013`` for queries of an order just created;
- ``clock_skew_ms``, ``partial_fill_fraction``, ``latency_ms``: standing conditions;
- one-shot actions on streams (drop, stall, ``serverShutdown``, ``listenKeyExpired``) run at arm
  time through the callbacks the stream servers register with ``on_action``.

Deterministic: every random draw comes from ``random.Random(seed)``, one draw per eligible rule
per decision, rules in arming order; the same seed and the same sequence of calls give the
same decisions. Time (ban ends, 429 windows, hidden orders) is read from the injected ``Clock``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

from app.domain.clock import Clock
from exchange.sim.fault_rules import ACTION_KINDS, FaultKind, FaultRule, FaultRuleError
from exchange.sim.replies import DEFAULT_MESSAGES, Reply, error_reply, rate_limited_reply

__all__ = [
    "ACTION_KINDS",
    "ActiveRule",
    "FaultError",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "FaultRuleError",
    "FaultUnavailableError",
    "PostAcceptFault",
    "RequestFault",
]

# Which kinds each injector decision looks at.
_POST_ACCEPT_KINDS: Final = (
    FaultKind.ORDER_ERROR_5XX,
    FaultKind.ORDER_ERROR_1007,
    FaultKind.ORDER_TIMEOUT,
)
_REJECT_CODES: Final = {FaultKind.REJECT_2010: -2010, FaultKind.REJECT_1013: -1013}


class FaultUnavailableError(RuntimeError):
    """An action fault was armed but no server registered a way to carry it out."""


@dataclass(frozen=True, slots=True)
class FaultError:
    """An error answer chosen by the injector, for REST and the WebSocket API alike.

    ``retry_after_s`` (whole seconds, rounded up) and ``until_ms`` are set for 429/418.
    """

    status: int
    code: int
    msg: str
    retry_after_s: int | None = None
    until_ms: int | None = None

    def rest_reply(self) -> Reply:
        """The REST answer, with ``Retry-After`` on 429/418."""
        if self.retry_after_s is not None:
            return rate_limited_reply(
                self.retry_after_s, banned=self.status == 418, banned_until_ms=self.until_ms
            )
        return error_reply(self.code, self.msg, status=self.status)

    def body(self) -> dict[str, Any]:
        """``{"code", "msg"}`` as in the REST answer."""
        decoded: dict[str, Any] = json.loads(self.rest_reply().body)
        return decoded

    def ws_error(self, server_time_ms: int, skew_ms: int = 0) -> dict[str, Any]:
        """The WebSocket API's ``error`` object (the response's ``status`` is ``status``).
        A rate-limit error carries ``data: {"serverTime", "retryAfter"}``, both epoch ms on
        the server's clock: ``skew_ms`` is the clock skew the server applies to its time,
        since ``until_ms`` is on the unskewed clock."""
        error = self.body()
        if self.until_ms is not None:
            error["data"] = {"serverTime": server_time_ms, "retryAfter": self.until_ms + skew_ms}
        return error


@dataclass(frozen=True, slots=True)
class RequestFault:
    """What to do to a request before the engine sees it: wait ``latency_ms`` (on the
    server's clock), then answer ``error`` instead of handling it when set."""

    latency_ms: int = 0
    error: FaultError | None = None


@dataclass(frozen=True, slots=True)
class PostAcceptFault:
    """The order was accepted by the engine; instead of its answer send ``error``, or when
    ``error`` is None hold the request ``timeout_s`` seconds and close the connection without
    answering."""

    kind: FaultKind
    error: FaultError | None
    timeout_s: float = 0.0


@dataclass(slots=True)
class ActiveRule:
    """An armed rule with its counters, as listed by the admin endpoint."""

    id: int
    rule: FaultRule
    armed_at_ms: int
    fired: int = 0
    remaining: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule.to_json(),
            "armed_at_ms": self.armed_at_ms,
            "fired": self.fired,
            "remaining": self.remaining,
        }


ActionCallback = Callable[[FaultRule], Awaitable[None]]
ChangeCallback = Callable[[], None]


@dataclass(slots=True)
class _Hidden:
    market: str
    symbol: str
    order_id: int | None
    client_order_id: str | None
    until_ms: int


@dataclass(slots=True)
class _State:
    banned_until_ms: int = 0
    limited_until_ms: dict[str, int] = field(default_factory=dict)  # per market
    hidden: list[_Hidden] = field(default_factory=list)


class FaultInjector:
    """Holds the armed rules and answers the servers' questions about them."""

    def __init__(self, *, seed: int, clock: Clock) -> None:
        self._random = random.Random(seed)
        self._clock = clock
        self._rules: dict[int, ActiveRule] = {}
        self._next_id = 1
        self._actions: dict[FaultKind, list[ActionCallback]] = {}
        self._listeners: list[ChangeCallback] = []
        self._state = _State()
        self._fired_total: dict[str, int] = {}

    # -- registration and arming ----------------------------------------------------------

    def on_action(self, kind: FaultKind, callback: ActionCallback) -> None:
        """Register how a server carries out an action kind (several servers may register).

        ``arm`` awaits the callback, and the admin request waits with it: a callback starts
        the action (a stall of ``rule.stall_s``, a drop, a ``serverShutdown``) and returns
        without waiting for it to end. It checks ``rule.market`` against its own market.
        """
        if kind not in ACTION_KINDS:
            raise ValueError(f"{kind} is not an action; servers ask the injector instead")
        self._actions.setdefault(kind, []).append(callback)

    def on_change(self, callback: ChangeCallback) -> None:
        """Called after every arm/clear, e.g. to re-apply ``partial_fill_fraction`` to an
        engine's ``fill_model``."""
        self._listeners.append(callback)

    async def arm(self, rule: FaultRule) -> int:
        """Arm ``rule`` and return its id. An action kind runs now: every callback registered
        for it is awaited with the rule (FaultUnavailableError when none is), and the rule is
        not kept. Async for every kind so callers need not tell them apart."""
        rule_id = self._next_id
        self._next_id += 1
        if rule.kind in ACTION_KINDS:
            callbacks = self._actions.get(rule.kind, [])
            if not callbacks:
                raise FaultUnavailableError(f"no server carries out {rule.kind} here")
            for callback in callbacks:
                await callback(rule)
            self._count(rule.kind)
            return rule_id
        self._rules[rule_id] = ActiveRule(rule_id, rule, self._clock.now_ms(), 0, rule.count)
        self._changed()
        return rule_id

    def clear(self, kind: FaultKind | None = None) -> int:
        """Disarm every rule (of ``kind``); returns how many. Clearing 418/429/-2013 rules also
        lifts the ban, the rate-limit windows and the hidden orders they caused."""
        doomed = [i for i, a in self._rules.items() if kind is None or a.rule.kind is kind]
        for rule_id in doomed:
            del self._rules[rule_id]
        if kind in (None, FaultKind.IP_BAN_418):
            self._state.banned_until_ms = 0
        if kind in (None, FaultKind.RATE_LIMIT_429):
            self._state.limited_until_ms.clear()
        if kind in (None, FaultKind.ORDER_NOT_FOUND_AFTER_CREATE):
            self._state.hidden.clear()
        self._changed()
        return len(doomed)

    def rules(self) -> list[ActiveRule]:
        """The armed rules in arming order (copies; changing them changes nothing here)."""
        return [replace(a) for a in self._rules.values()]

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe view for the admin listing and the heartbeat."""
        now = self._clock.now_ms()
        state = self._state
        return {
            "rules": [a.to_json() for a in self._rules.values()],
            "banned_until_ms": state.banned_until_ms if state.banned_until_ms > now else None,
            "rate_limited_until_ms": {
                m: until for m, until in sorted(state.limited_until_ms.items()) if until > now
            },
            "hidden_orders": sum(1 for h in state.hidden if h.until_ms > now),
            "fired_total": dict(sorted(self._fired_total.items())),
        }

    # -- decisions --------------------------------------------------------------------------

    def before_request(
        self, *, market: str, channel: str, is_order_placement: bool, symbol: str | None = None
    ) -> RequestFault | None:
        """Called for every REST / WS-API request before it is handled. None: no fault."""
        now = self._clock.now_ms()
        standing = self._standing_limit(market, now)
        if standing is not None:
            return RequestFault(0, standing)
        latency = 0
        error: FaultError | None = None
        for active in list(self._rules.values()):
            kind = active.rule.kind
            if kind is FaultKind.LATENCY:
                if self._fires(active, market, channel, symbol):
                    latency += active.rule.latency_ms
                continue
            if error is not None:
                continue  # one error per request; later rules keep their count
            if kind in _REJECT_CODES and not is_order_placement:
                continue
            if kind not in _REJECT_CODES and kind not in (
                FaultKind.RATE_LIMIT_429,
                FaultKind.IP_BAN_418,
            ):
                continue
            if self._fires(active, market, channel, symbol):
                error = self._request_error(active.rule, market, now)
        if latency == 0 and error is None:
            return None
        return RequestFault(latency, error)

    def after_order_accepted(
        self, *, market: str, channel: str, symbol: str | None = None
    ) -> PostAcceptFault | None:
        """Called once the engine accepted an order, before answering. None: answer normally."""
        for active in list(self._rules.values()):
            rule = active.rule
            if rule.kind not in _POST_ACCEPT_KINDS:
                continue
            if not self._fires(active, market, channel, symbol):
                continue
            if rule.kind is FaultKind.ORDER_TIMEOUT:
                return PostAcceptFault(rule.kind, None, rule.timeout_s)
            if rule.kind is FaultKind.ORDER_ERROR_1007:
                error = FaultError(408, -1007, DEFAULT_MESSAGES[-1007])
            else:
                error = FaultError(
                    rule.http_status, rule.error_code, DEFAULT_MESSAGES[rule.error_code]
                )
            return PostAcceptFault(rule.kind, error)
        return None

    def hide_new_order(
        self,
        *,
        market: str,
        channel: str,
        symbol: str,
        order_id: int | None,
        client_order_id: str | None,
    ) -> bool:
        """Called once per created order; True when queries of it will answer -2013 for the
        rule's grace_ms."""
        now = self._clock.now_ms()
        for active in list(self._rules.values()):
            if active.rule.kind is not FaultKind.ORDER_NOT_FOUND_AFTER_CREATE:
                continue
            if self._fires(active, market, channel, symbol):
                until = now + active.rule.grace_ms
                self._state.hidden.append(_Hidden(market, symbol, order_id, client_order_id, until))
                return True
        return False

    def is_hidden(
        self,
        *,
        market: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> bool:
        """Should a query of this order (by id or client id) answer -2013 now?"""
        now = self._clock.now_ms()
        self._state.hidden = [h for h in self._state.hidden if h.until_ms > now]
        for hidden in self._state.hidden:
            if hidden.market != market or hidden.symbol != symbol:
                continue
            if order_id is not None and hidden.order_id == order_id:
                return True
            if client_order_id is not None and hidden.client_order_id == client_order_id:
                return True
        return False

    def clock_skew_ms(self, market: str) -> int:
        """Milliseconds to add to that market's server clock (what /time, transactTime and
        event times read): the sum of the armed clock_skew rules."""
        return sum(
            a.rule.skew_ms
            for a in self._rules.values()
            if a.rule.kind is FaultKind.CLOCK_SKEW and a.rule.market in (None, market)
        )

    def partial_fill_fraction(self, market: str) -> Decimal | None:
        """``FillModel.partial_fraction`` for that market's engine (the smallest armed), or
        None. Re-read it from an ``on_change`` callback."""
        fractions = [
            a.rule.fraction
            for a in self._rules.values()
            if a.rule.kind is FaultKind.PARTIAL_FILLS and a.rule.market in (None, market)
        ]
        return min(fractions) if fractions else None

    def latency_ms(self, *, market: str, channel: str, symbol: str | None = None) -> int:
        """Latency alone, for servers that have no other request faults (streams)."""
        return sum(
            a.rule.latency_ms
            for a in list(self._rules.values())
            if a.rule.kind is FaultKind.LATENCY and self._fires(a, market, channel, symbol)
        )

    # -- internals --------------------------------------------------------------------------

    def _standing_limit(self, market: str, now: int) -> FaultError | None:
        state = self._state
        if state.banned_until_ms > now:
            return _limit_error(418, state.banned_until_ms, now)
        until = state.limited_until_ms.get(market, 0)
        if until > now:
            return _limit_error(429, until, now)
        return None

    def _request_error(self, rule: FaultRule, market: str, now: int) -> FaultError:
        if rule.kind is FaultKind.IP_BAN_418:
            # Binance bans the IP: every later request, whatever its market, until the end.
            self._state.banned_until_ms = now + rule.ban_s * 1000
            return _limit_error(418, self._state.banned_until_ms, now)
        if rule.kind is FaultKind.RATE_LIMIT_429:
            until = now + rule.retry_after_s * 1000
            self._state.limited_until_ms[market] = until
            return _limit_error(429, until, now)
        return FaultError(400, _REJECT_CODES[rule.kind], rule.reject_message)

    def _fires(self, active: ActiveRule, market: str, channel: str, symbol: str | None) -> bool:
        """One draw for an eligible rule; counts and retires it when it fires."""
        rule = active.rule
        if not rule.matches(market, channel, symbol):
            return False
        if self._random.random() >= rule.probability:
            return False
        active.fired += 1
        self._count(rule.kind)
        if active.remaining is not None:
            active.remaining -= 1
            if active.remaining == 0:
                del self._rules[active.id]
                self._changed()
        return True

    def _count(self, kind: FaultKind) -> None:
        self._fired_total[kind.value] = self._fired_total.get(kind.value, 0) + 1

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()


def _limit_error(status: int, until_ms: int, now_ms: int) -> FaultError:
    retry_after_s = max(1, math.ceil((until_ms - now_ms) / 1000))
    reply = rate_limited_reply(retry_after_s, banned=status == 418, banned_until_ms=until_ms)
    msg = json.loads(reply.body)["msg"]
    return FaultError(status, -1003, msg, retry_after_s, until_ms)
