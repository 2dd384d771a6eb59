"""A bounded memory of recently seen exchange trade ids, so a repeated order event (exchanges
and reconnecting streams resend recent ones) books its fill once."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["RecentIds"]


class RecentIds:
    __slots__ = ("_limit", "_order", "_seen")

    def __init__(self, limit: int, ids: Iterable[int] = ()) -> None:
        self._limit = limit
        self._order: deque[int] = deque()
        self._seen: set[int] = set()
        for trade_id in ids:
            self.first_sight(trade_id)

    def first_sight(self, trade_id: int) -> bool:
        """True the first time `trade_id` is offered (within the last `limit` ids)."""
        if trade_id in self._seen:
            return False
        self._seen.add(trade_id)
        self._order.append(trade_id)
        if len(self._order) > self._limit:
            self._seen.discard(self._order.popleft())
        return True

    def as_list(self) -> list[int]:
        return list(self._order)
