"""``SimGateway``: one request's path through the simulated exchange, REST and WS API alike.

A transport (``exchange.sim.rest_server`` or ``exchange.sim.ws_api_server``) authenticates
the request and names the ``Operation``; the gateway does the rest in Binance's order:

1. the fault injector's say before anything is handled (added latency, a standing 429/418,
   an injected placement reject);
2. request weight and order counts (429 ``-1003``/``-1015`` past a limit);
3. the engine call (a ``SimError`` becomes Binance's error answer), then the user-data events
   it produced go to the market's hub, so the stream shows the order before the answer does;
4. for an accepted order, a fault may replace the answer (5xx, ``-1007``) or swallow it (the
   request times out), and may hide the new order from queries for a while.

The outcome is transport-neutral: status, body and usage counts; the transport renders it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from app.domain.clock import Clock
from exchange.sim.errors import SimError
from exchange.sim.faults import FaultError, FaultInjector
from exchange.sim.usage import UsageMeter, UsageVerdict
from exchange.sim.user_hub import UserEventHub

__all__ = ["Access", "Kind", "Operation", "Outcome", "SimGateway", "Venue"]


class Access(Enum):
    """What the caller must prove (Binance's security types)."""

    NONE = "NONE"
    API_KEY = "USER_STREAM"
    SIGNED = "SIGNED"


class Kind(Enum):
    OTHER = "other"
    PLACE = "place"  # creates an order: placement faults apply
    QUERY = "query"  # reads one order: the "not found just after create" fault applies


class Venue(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


Handler = Callable[[Mapping[str, str], int, str | None], Any]


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing a client can ask: its access level, cost and the handler that answers it.

    ``handler(params, server_now_ms, api_key)`` returns the JSON-able answer or raises
    ``SimError``; ``weight`` may depend on the parameters (``openOrders`` without a symbol).
    """

    name: str
    access: Access
    weight: int | Callable[[Mapping[str, str]], int]
    handler: Handler
    orders: int = 0
    kind: Kind = Kind.OTHER

    def weight_for(self, params: Mapping[str, str]) -> int:
        return self.weight(params) if callable(self.weight) else self.weight


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer: ``status`` 200 with ``result``, or an error ``body`` ({code, msg[, data]}).

    ``hold_s`` > 0 means: answer nothing, hold the request that long, then cut the connection
    (the "times out after accept" fault). ``retry_after_s``/``until_ms`` come with 429/418.
    """

    status: int
    result: Any = None
    error: Mapping[str, Any] | None = None
    usage: UsageVerdict | None = None
    hold_s: float = 0.0
    retry_after_s: float | None = None
    until_ms: int | None = None


class SimGateway:
    def __init__(
        self,
        *,
        venue: Venue,
        clock: Clock,
        faults: FaultInjector,
        usage: UsageMeter,
        hub: UserEventHub,
        drain_events: Callable[[], list[dict[str, Any]]],
        server_now_ms: Callable[[], int],
    ) -> None:
        self.venue = venue
        self._clock = clock
        self._faults = faults
        self.usage = usage
        self._hub = hub
        self._drain_events = drain_events
        self.server_now_ms = server_now_ms
        self.requests = 0
        self.errors = 0
        # Measurement probe (benchmarks, halt tests): called with the parameters of every order
        # placement as it arrives, before faults or matching.
        self.on_order_received: Callable[[Mapping[str, str]], None] | None = None

    async def execute(
        self,
        operation: Operation,
        params: Mapping[str, str],
        *,
        channel: str,
        api_key: str | None,
    ) -> Outcome:
        self.requests += 1
        if operation.kind is Kind.PLACE and self.on_order_received is not None:
            self.on_order_received(params)
        symbol = params.get("symbol")
        fault = self._faults.before_request(
            market=self.venue,
            channel=channel,
            is_order_placement=operation.kind is Kind.PLACE,
            symbol=symbol,
        )
        if fault is not None and fault.latency_ms > 0:
            await self._clock.sleep(fault.latency_ms / 1000)
        now_ms = self.server_now_ms()
        if fault is not None and fault.error is not None:
            return self._fault_outcome(fault.error)
        verdict = self.usage.charge(
            now_ms, weight=operation.weight_for(params), orders=operation.orders
        )
        if verdict.over_code is not None:
            self.errors += 1
            error = SimError(verdict.over_code, status=429)
            return Outcome(
                429, error=error.body(), usage=verdict, retry_after_s=verdict.retry_after_s
            )
        if operation.kind is Kind.QUERY and symbol is not None and self._hidden(symbol, params):
            self.errors += 1
            return Outcome(400, error=SimError(-2013).body(), usage=verdict)
        try:
            result = operation.handler(params, now_ms, api_key)
        except SimError as exc:
            self.errors += 1
            self._publish()
            return Outcome(exc.status, error=exc.body(), usage=verdict)
        self._publish()
        if operation.kind is Kind.PLACE:
            return self._after_accept(result, params, channel, verdict)
        return Outcome(200, result=result, usage=verdict)

    def _after_accept(
        self, result: Any, params: Mapping[str, str], channel: str, verdict: UsageVerdict
    ) -> Outcome:
        symbol = params.get("symbol", "")
        placed = _placed_order(result)
        if placed is not None:
            order_id, client_order_id = placed
            self._faults.hide_new_order(
                market=self.venue,
                channel=channel,
                symbol=symbol,
                order_id=order_id,
                client_order_id=client_order_id,
            )
        fault = self._faults.after_order_accepted(market=self.venue, channel=channel, symbol=symbol)
        if fault is None:
            return Outcome(200, result=result, usage=verdict)
        self.errors += 1
        if fault.error is None:
            return Outcome(0, usage=verdict, hold_s=fault.timeout_s)
        return Outcome(fault.error.status, error=fault.error.body(), usage=verdict)

    def _hidden(self, symbol: str, params: Mapping[str, str]) -> bool:
        order_id = params.get("orderId")
        return self._faults.is_hidden(
            market=self.venue,
            symbol=symbol,
            order_id=int(order_id) if order_id and order_id.isdigit() else None,
            client_order_id=params.get("origClientOrderId"),
        )

    def _fault_outcome(self, error: FaultError) -> Outcome:
        self.errors += 1
        return Outcome(
            error.status,
            error=error.body(),
            retry_after_s=error.retry_after_s,
            until_ms=error.until_ms,
        )

    def _publish(self) -> None:
        events = self._drain_events()
        if events:
            self._hub.publish(events)


def _placed_order(result: Any) -> tuple[int | None, str | None] | None:
    """The new order's id and client id from a placement answer (cancelReplace: the new half)."""
    if not isinstance(result, Mapping):
        return None
    order = result.get("newOrderResponse", result)
    if not isinstance(order, Mapping):
        return None
    order_id = order.get("orderId")
    client_order_id = order.get("clientOrderId")
    return (
        order_id if isinstance(order_id, int) else None,
        client_order_id if isinstance(client_order_id, str) else None,
    )
