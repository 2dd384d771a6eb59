"""Write-ahead for orders: no order reaches the exchange before its intent is durably recorded.

`IntentJournal` is what the live executor awaits before the first send of a client order id:
`record_intent(order)` returns once the intent (client order id, symbol, side, quantity,
price, strategy, signal, purpose) is committed, and raises if it cannot be. The database
recorder provides the real one (the executor never imports `database`; the wiring passes it
in); `NoJournal` is for paper, backtest and tests that need none.

`WriteAhead` is the executor's side: it records each client order id once (a retry of the
same intent is not recorded again), turns a failure into a reason starting with
"not recorded:" (the caller rejects the order locally and sends nothing), and keeps the
recent journal waits for the heartbeat (p50/p99 in ms). `JournaledPort` wraps the venue port
so that no other path (a spot cancel-replace's new order) can send an unrecorded id either.
Consumes and produces no channel.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, Protocol

import structlog

from app.domain import Clock, MarketType
from app.domain.account import Balance, PositionSnapshot
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from executor.venue_port import Placed, Replaced, UnsupportedOrder, VenuePort

__all__ = ["NOT_RECORDED", "IntentJournal", "JournaledPort", "NoJournal", "WriteAhead"]

log = structlog.get_logger("executor.journal")

NOT_RECORDED: Final = "not recorded"
# Enough recent waits for a stable p99, small enough to sort on every heartbeat.
_WAITS_KEPT: Final = 4096


class IntentJournal(Protocol):
    async def record_intent(self, order: SubmitOrder) -> None:
        """Return once the intent is durably recorded; raise if it cannot be."""
        ...


class NoJournal:
    """Records nothing (paper, backtest): every intent counts as recorded at once."""

    async def record_intent(self, order: SubmitOrder) -> None:
        return None


class WriteAhead:
    def __init__(self, journal: IntentJournal, clock: Clock) -> None:
        self.journal = journal
        self.clock = clock
        self.recorded = 0
        self.failed = 0
        # Client ids already recorded: as long-lived as the executor's own order book.
        self._done: set[str] = set()
        self._waits_ms: deque[float] = deque(maxlen=_WAITS_KEPT)

    def is_recorded(self, client_order_id: str) -> bool:
        return client_order_id in self._done

    async def record(self, order: SubmitOrder) -> str | None:
        """Record the intent unless it already was. None when recorded; else the reason the
        order must not be sent ("not recorded: ...")."""
        cid = order.client_order_id
        if cid in self._done:
            return None
        started = self.clock.monotonic()
        try:
            await self.journal.record_intent(order)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failed += 1
            log.exception(
                "order_intent_not_recorded",
                client_order_id=cid,
                error=f"{type(error).__name__}: {error}",
            )
            return f"{NOT_RECORDED}: {type(error).__name__}: {error}"
        self._waits_ms.append((self.clock.monotonic() - started) * 1000.0)
        self._done.add(cid)
        self.recorded += 1
        return None

    def status(self) -> dict[str, object]:
        waits = sorted(self._waits_ms)
        return {
            "recorded": self.recorded,
            "failed": self.failed,
            "wait_p50_ms": _percentile(waits, 0.50),
            "wait_p99_ms": _percentile(waits, 0.99),
        }


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, int(q * len(ordered)))
    return round(ordered[index], 3)


class JournaledPort:
    """The venue port the executor's tasks use: every new client order id that goes out —
    a placement, or the new order of a spot cancel-replace — is recorded first. `Placement`
    records before its first attempt already (and rejects the order cleanly); this guard
    covers every other path, so the rule holds by construction. An intent that cannot be
    recorded raises `UnsupportedOrder` ("not recorded: ...") before anything is sent."""

    def __init__(self, inner: VenuePort, write_ahead: WriteAhead) -> None:
        self.inner = inner
        self.write_ahead = write_ahead

    @property
    def market(self) -> MarketType:
        return self.inner.market

    async def _recorded(self, order: SubmitOrder) -> None:
        failure = await self.write_ahead.record(order)
        if failure is not None:
            raise UnsupportedOrder(failure)

    async def place(self, order: SubmitOrder) -> Placed:
        await self._recorded(order)
        return await self.inner.place(order)

    async def replace(self, cancel_client_order_id: str, new_order: SubmitOrder) -> Replaced:
        if self.inner.market is MarketType.SPOT:  # futures modify keeps the recorded id
            await self._recorded(new_order)
        return await self.inner.replace(cancel_client_order_id, new_order)

    async def query(self, symbol: str, client_order_id: str) -> OrderUpdated:
        return await self.inner.query(symbol, client_order_id)

    async def cancel(self, symbol: str, client_order_id: str) -> OrderUpdated:
        return await self.inner.cancel(symbol, client_order_id)

    async def trades(self, symbol: str, exchange_order_id: int) -> list[Fill]:
        return await self.inner.trades(symbol, exchange_order_id)

    async def open_orders(self, symbol: str) -> list[OrderUpdated]:
        return await self.inner.open_orders(symbol)

    async def trades_since(self, symbol: str, from_trade_id: int) -> list[Fill]:
        return await self.inner.trades_since(symbol, from_trade_id)

    async def balances(self) -> tuple[Balance, ...]:
        return await self.inner.balances()

    async def positions(self) -> tuple[PositionSnapshot, ...]:
        return await self.inner.positions()
