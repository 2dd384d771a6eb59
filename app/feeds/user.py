"""User-data feed: decoded account events → ``venue.order`` and ``account.update``.

Produces ``venue.order`` (OrderUpdated, QuickFill, AlgoOrderUpdated, as the exchange sent them:
the executor checks and stamps them onto ``order.update``) and ``account.update``
(AccountUpdated, BalanceChanged), plus a ``system.alert`` whenever the stream had to be
re-established: events may have been missed in between, and the executor's reconciliation
(not this feed) must fetch the truth by REST. Control records (stream terminated, listenKey
expired) are handled by the stream client and counted here only if they arrive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from app.bus import ACCOUNT_UPDATE, SYSTEM_ALERT, VENUE_ORDER, Bus
from app.domain import AlertSeverity, Clock
from app.domain.account import AccountUpdated, BalanceChanged
from app.domain.orders import AlgoOrderUpdated, OrderUpdated, QuickFill, UserStreamResynced
from app.domain.system import Alert

__all__ = ["UserPublisher"]


class UserPublisher:
    def __init__(self, *, bus: Bus, clock: Clock, source: str = "user_data") -> None:
        self._orders = bus.sender(VENUE_ORDER.channel())
        self._accounts = bus.sender(ACCOUNT_UPDATE.channel())
        self._alerts = bus.sender(SYSTEM_ALERT.channel())
        self._clock = clock
        self._source = source
        self.counts: Counter[str] = Counter()
        self.published = 0

    async def on_events(self, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, OrderUpdated | QuickFill | AlgoOrderUpdated):
                await self._orders.send(event)
            elif isinstance(event, AccountUpdated | BalanceChanged):
                await self._accounts.send(event)
            else:
                self.counts["not_published"] += 1
                continue
            self.counts[type(event).__name__] += 1
            self.published += 1

    async def on_resync(self, reason: str) -> None:
        """The stream was re-established; events in the gap may be lost."""
        self.counts["resyncs"] += 1
        await self._orders.send(UserStreamResynced(reason, self._clock.now_ms()))
        await self._alerts.send(
            Alert(
                severity=AlertSeverity.WARNING,
                source=self._source,
                title="user data stream re-established; reconcile orders and balances",
                ts_ms=self._clock.now_ms(),
                detail=reason,
            )
        )

    def snapshot(self) -> dict[str, Any]:
        return {"published": self.published, **dict(self.counts)}
