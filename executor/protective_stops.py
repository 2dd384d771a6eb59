"""Exchange-side protective stops: one reduce-only STOP_MARKET algo order per futures position.

The executor calls ``on_position`` after each fill with the symbol's signed position from our
orders, and forwards ``AlgoOrderUpdated`` events (``venue.order``) to ``on_algo_update``; this
module consumes and produces no channel itself. The stop sits ``stop_pct`` % from the average
entry (below for a long, above for a short), rounded onto the tick grid towards the entry so
the loss is never larger than configured. It protects the position while the daemon is down,
so it stays until the position is flat: the kill switch's FLATTEN does not cancel it.

Invariant: never two live stops for one symbol. A replacement cancels the old stop first and
places the new one only once the cancel succeeded (or the old one is known gone); a placement
whose answer was lost (status unknown) is looked up by its client algo id before anything else
is sent, and "not found" counts only after a grace period. Calls for one symbol are serialised.

Failures never raise: they are logged (rejections at error level), shown by ``status()``, and
retried on the next ``on_position`` or ``refresh`` call.

The stop carries ``workingType`` from the settings. It does not use ``closePosition``: its
quantity follows the position and the stop is replaced when the position changes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import structlog

from app.domain import AlgoOrderUpdated, Clock, OrderPurpose, OrderType, Side, SubmitOrder
from app.errors import NotFoundError, RejectedError, StatusUnknownError, VenueError
from config.executor import ProtectiveStopSettings
from exchange.binance.futures import FuturesClient
from exchange.binance.rules import SymbolRules, round_price

__all__ = ["STOP_ID_PREFIX", "ProtectiveStops", "stop_level"]

log = structlog.get_logger(__name__)

STOP_ID_PREFIX: Final = "ps-"
STRATEGY: Final = "protective_stops"
_ID_PATTERN: Final = re.compile(r"^ps-([A-Z0-9]+)-([0-9]+)$")
_MAX_ID: Final = 36
_HUNDRED: Final = Decimal(100)
# Our states before the exchange has answered; then Binance's algo statuses (lower case).
_SENDING: Final = "sending"
_UNKNOWN: Final = "unknown"
_GONE: Final = "gone"  # ours: a cancel found it no longer open (it may have triggered)
# Ended: no longer a live stop. A triggered stop became a market order and can still finish.
_FINAL: Final = frozenset({"finished", "canceled", "rejected", "expired"})
_ENDED: Final = _FINAL | {"triggered", _GONE}
_FAILED: Final = frozenset({"rejected", "expired"})
_FIRED: Final = frozenset({"triggered", "finished"})
# Updates may arrive out of order (REST answer after the stream event): never step back.
_RANK: Final = {_SENDING: 0, _UNKNOWN: 0, "new": 1, "triggering": 2, _GONE: 3, "triggered": 3}
_FINAL_RANK: Final = 4


def stop_level(
    rules: SymbolRules, quantity: Decimal, average_price: Decimal, stop_pct: Decimal
) -> tuple[Side, Decimal]:
    """The stop's side and trigger price for a signed position (non-zero).

    ``round_price`` rounds a SELL up and a BUY down: for a long's SELL stop below the entry and
    a short's BUY stop above it, both move the trigger towards the entry (the safe side).
    """
    if quantity > 0:
        return Side.SELL, round_price(rules, average_price * (1 - stop_pct / _HUNDRED), Side.SELL)
    return Side.BUY, round_price(rules, average_price * (1 + stop_pct / _HUNDRED), Side.BUY)


@dataclass(slots=True)
class _Stop:
    client_algo_id: str
    side: Side
    quantity: Decimal
    trigger_price: Decimal
    status: str
    sent_ms: int
    algo_id: int | None = None
    reason: str = ""

    @property
    def live(self) -> bool:
        return self.status not in _ENDED

    @property
    def shape(self) -> tuple[Side, Decimal, Decimal]:
        return self.side, self.quantity, self.trigger_price

    def as_dict(self) -> dict[str, object]:
        return {
            "client_algo_id": self.client_algo_id,
            "status": self.status,
            "side": self.side.value,
            "quantity": str(self.quantity),
            "trigger_price": str(self.trigger_price),
            "algo_id": self.algo_id,
            "reason": self.reason,
        }


@dataclass(slots=True)
class _Symbol:
    position: Decimal = Decimal(0)
    average_price: Decimal | None = None
    stop: _Stop | None = None  # the stop that is or may be live
    last: _Stop | None = None  # the most recent stop that ended
    sequence: int = 0
    error: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    placed: int = 0
    cancelled: int = 0
    failures: int = 0
    rejected: int = 0
    triggered: int = 0


class ProtectiveStops:
    def __init__(
        self,
        *,
        client: FuturesClient,
        settings: ProtectiveStopSettings,
        clock: Clock,
        rules: Mapping[str, SymbolRules],
        not_found_grace_s: float = 10.0,
    ) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock
        self._rules = rules
        self._grace_ms = int(not_found_grace_s * 1000)
        self._symbols: dict[str, _Symbol] = {}

    # --- executor hooks

    async def on_position(
        self, symbol: str, quantity: Decimal, average_price: Decimal | None
    ) -> None:
        """Bring the symbol's stop in line with its position (0: no stop)."""
        if not self._settings.enabled:
            return
        state = self._symbols.setdefault(symbol, _Symbol())
        state.position = quantity
        state.average_price = average_price
        async with state.lock:
            await self._converge(symbol, state)

    def on_algo_update(self, update: AlgoOrderUpdated) -> None:
        """Follow our stop's state from ALGO_UPDATE events (other algo orders are ignored)."""
        state = self._symbols.get(update.symbol)
        if state is None:
            return
        for stop in (state.stop, state.last):
            if stop is not None and stop.client_algo_id == update.client_algo_id:
                self._apply_update(update.symbol, state, stop, update)
                return

    async def refresh(self) -> None:
        """Re-apply every known position: re-places stops that ended while the position stayed
        open (cancelled by hand, expired) and settles placements whose answer was lost."""
        for symbol, state in list(self._symbols.items()):
            async with state.lock:
                await self._converge(symbol, state)

    async def reconcile(self) -> None:
        """At start, before the first ``on_position``: adopt our stops still open on the
        exchange (the newest per symbol) and cancel older duplicates, so a restart neither
        loses nor doubles a stop. The executor then reports every symbol's position (0 too),
        which cancels an adopted stop whose position is gone."""
        found: dict[str, list[tuple[int, AlgoOrderUpdated]]] = {}
        for order in await self._client.open_algo_orders():
            match = _ID_PATTERN.match(order.client_algo_id)
            if match is None or match.group(1) != order.symbol:
                continue
            found.setdefault(order.symbol, []).append((int(match.group(2)), order))
        for symbol, orders in found.items():
            orders.sort(key=lambda pair: pair[0])
            state = self._symbols.setdefault(symbol, _Symbol())
            async with state.lock:
                state.sequence = max(state.sequence, orders[-1][0])
                for _, stale in orders[:-1]:
                    await self._cancel_id(symbol, stale.client_algo_id)
                newest = orders[-1][1]
                state.stop = _Stop(
                    newest.client_algo_id,
                    newest.side,
                    newest.quantity,
                    newest.trigger_price or Decimal(0),
                    newest.status,
                    newest.ts_ms,
                    newest.algo_id,
                )
                log.info("protective_stop_adopted", symbol=symbol, **state.stop.as_dict())

    def status(self) -> dict[str, object]:
        symbols: dict[str, object] = {}
        unprotected = []
        for symbol, state in sorted(self._symbols.items()):
            live = state.stop is not None and state.stop.live
            if state.position != 0 and not live:
                unprotected.append(symbol)
            symbols[symbol] = {
                "position": str(state.position),
                "stop": state.stop.as_dict() if state.stop is not None else None,
                "last": state.last.as_dict() if state.last is not None else None,
                "error": state.error,
                "placed": state.placed,
                "cancelled": state.cancelled,
                "failures": state.failures,
                "rejected": state.rejected,
                "triggered": state.triggered,
            }
        return {
            "enabled": self._settings.enabled,
            "stop_pct": str(self._settings.stop_pct),
            "working_type": self._settings.working_type,
            "unprotected": unprotected,
            "symbols": symbols,
        }

    # --- the one place that sends

    async def _converge(self, symbol: str, state: _Symbol) -> None:
        if state.stop is not None and state.stop.status == _UNKNOWN:
            await self._resolve_unknown(symbol, state, state.stop)
            if state.stop is not None and state.stop.status == _UNKNOWN:
                return  # cannot tell whether it is live: send nothing else yet
        if state.stop is not None and not state.stop.live:
            state.last, state.stop = state.stop, None
        wanted = None
        if state.position != 0:
            wanted = self._wanted(symbol, state)
            if wanted is None:
                return  # cannot compute a level: keep the current stop, a wrong one beats none
        current = state.stop
        if current is not None:
            if current.shape == wanted:
                return
            if not await self._cancel(symbol, state, current):
                return  # the old stop may still be live: placing now could make two
        if wanted is not None:
            await self._place(symbol, state, *wanted)

    def _wanted(self, symbol: str, state: _Symbol) -> tuple[Side, Decimal, Decimal] | None:
        """The stop the open position needs; None when it cannot be computed."""
        rules = self._rules.get(symbol)
        if rules is None or state.average_price is None or state.average_price <= 0:
            state.error = "no symbol rules" if rules is None else "no average entry price"
            log.error("protective_stop_unplaceable", symbol=symbol, reason=state.error)
            return None
        side, trigger = stop_level(
            rules, state.position, state.average_price, self._settings.stop_pct
        )
        return side, abs(state.position), trigger

    async def _place(
        self, symbol: str, state: _Symbol, side: Side, qty: Decimal, trigger: Decimal
    ) -> None:
        state.sequence += 1
        now = self._clock.now_ms()
        stop = _Stop(self._stop_id(symbol, state.sequence), side, qty, trigger, _SENDING, now)
        state.stop = stop  # registered first: an ALGO_UPDATE may beat the REST answer
        order = SubmitOrder(
            client_order_id=stop.client_algo_id,
            strategy=STRATEGY,
            symbol=symbol,
            side=side,
            order_type=OrderType.STOP_MARKET,
            quantity=qty,
            ts_ms=now,
            stop_price=trigger,
            reduce_only=True,
            purpose=OrderPurpose.PROTECTIVE_STOP,
            working_type=self._settings.working_type.upper(),
        )
        try:
            answer = await self._client.place_order(order)
        except StatusUnknownError as error:
            stop.status = _UNKNOWN
            state.error = f"placement status unknown: {error}"
            log.warning("protective_stop_status_unknown", symbol=symbol, **stop.as_dict())
            return
        except RejectedError as error:
            state.stop = None
            state.failures += 1
            state.rejected += 1
            state.error = f"placement rejected: {error}"
            stop.status, stop.reason = "rejected", error.venue_message
            state.last = stop
            log.error("protective_stop_rejected", symbol=symbol, error=str(error), **stop.as_dict())
            return
        except (VenueError, ValueError) as error:  # transient, or parameters we cannot send
            state.stop = None
            state.failures += 1
            state.error = f"placement failed: {error}"
            log.warning("protective_stop_failed", symbol=symbol, error=str(error), **stop.as_dict())
            return
        state.placed += 1
        state.error = ""
        if isinstance(answer, AlgoOrderUpdated):
            self._apply_update(symbol, state, stop, answer)
        log.info("protective_stop_placed", symbol=symbol, **stop.as_dict())

    async def _cancel(self, symbol: str, state: _Symbol, stop: _Stop) -> bool:
        """True once the stop is known not to be live (cancelled or already gone)."""
        outcome = await self._cancel_id(symbol, stop.client_algo_id)
        if outcome is None:
            state.error = f"cancel of {stop.client_algo_id} failed"
            return False
        if stop.live:
            stop.status = outcome  # the ALGO_UPDATE that follows may still say what happened
        state.cancelled += outcome == "canceled"
        state.last, state.stop = stop, None
        return True

    async def _cancel_id(self, symbol: str, client_algo_id: str) -> str | None:
        """ "canceled", "gone" (not open any more), or None when the cancel failed."""
        try:
            await self._client.cancel_algo_order(client_algo_id)
        except NotFoundError:
            log.info("protective_stop_already_gone", symbol=symbol, client_algo_id=client_algo_id)
            return _GONE
        except VenueError as error:
            log.warning(
                "protective_stop_cancel_failed",
                symbol=symbol,
                client_algo_id=client_algo_id,
                error=str(error),
            )
            return None
        log.info("protective_stop_cancelled", symbol=symbol, client_algo_id=client_algo_id)
        return "canceled"

    async def _resolve_unknown(self, symbol: str, state: _Symbol, stop: _Stop) -> None:
        try:
            answer = await self._client.query_algo_order(stop.client_algo_id)
        except NotFoundError:
            if self._clock.now_ms() - stop.sent_ms < self._grace_ms:
                return  # may not be visible yet
            stop.status, stop.reason = "expired", "never reached the exchange"
            state.last, state.stop = stop, None
            log.info("protective_stop_not_placed", symbol=symbol, **stop.as_dict())
            return
        except VenueError as error:
            log.warning("protective_stop_query_failed", symbol=symbol, error=str(error))
            return
        state.placed += 1
        state.error = ""
        self._apply_update(symbol, state, stop, answer)

    # --- state

    def _apply_update(
        self, symbol: str, state: _Symbol, stop: _Stop, update: AlgoOrderUpdated
    ) -> None:
        def rank(status: str) -> int:
            return _FINAL_RANK if status in _FINAL else _RANK.get(status, 0)

        if stop.status in _FINAL or rank(update.status) < rank(stop.status):
            return  # final is final; a late "new" must not revive a stop
        fired_before = stop.status in _FIRED
        stop.status = update.status
        stop.algo_id = update.algo_id
        stop.reason = update.reason
        if stop.live:
            return
        if state.stop is stop:
            state.last, state.stop = stop, None
        if update.status in _FAILED:
            state.rejected += 1
            state.error = f"stop {update.status}: {update.reason}"
            log.error("protective_stop_rejected", symbol=symbol, **stop.as_dict())
        elif update.status in _FIRED and not fired_before:
            state.triggered += 1
            log.warning("protective_stop_triggered", symbol=symbol, **stop.as_dict())
        else:
            log.info("protective_stop_ended", symbol=symbol, **stop.as_dict())

    @staticmethod
    def _stop_id(symbol: str, sequence: int) -> str:
        suffix = f"-{sequence}"
        return f"{STOP_ID_PREFIX}{symbol[: _MAX_ID - len(STOP_ID_PREFIX) - len(suffix)]}{suffix}"
