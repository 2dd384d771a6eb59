"""Net positions from the executor's own booked fills, for the protective-stop hook.

Signed quantity per symbol (BUY adds, SELL subtracts) and the average entry price, by the
shared rule (`app.domain.position_after_fill`, no fees: no PnL is kept here). The average is
None when flat, and stays None after `seed` without an entry price until a fill starts a new
position. Fed one booked fill at a time (each trade id once, by the order book), so
duplicates cannot double a position. `seed` takes the exchange's position at start
(reconciliation), before any fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain import Fill, PositionState, position_after_fill

__all__ = ["NetPosition", "NetPositions"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class NetPosition:
    quantity: Decimal = _ZERO
    average_price: Decimal | None = None


class NetPositions:
    def __init__(self) -> None:
        self._positions: dict[str, NetPosition] = {}

    def get(self, symbol: str) -> NetPosition:
        return self._positions.get(symbol, NetPosition())

    def seed(self, symbol: str, quantity: Decimal, average_price: Decimal | None) -> None:
        self._positions[symbol] = NetPosition(quantity, average_price if quantity else None)

    def add(self, fill: Fill) -> NetPosition:
        current = self.get(fill.symbol)
        entry = current.average_price  # None: flat, or seeded without an entry price
        booked = PositionState(current.quantity, _ZERO if entry is None else entry)
        change = position_after_fill(booked, fill)  # no fee: no PnL is kept here
        quantity = change.after.quantity
        average: Decimal | None
        if quantity == 0:
            average = None
        elif change.opened:
            average = fill.price  # to the digit: the shared formula may round past 28 digits
        elif abs(quantity) > abs(current.quantity) and entry is not None:
            average = change.after.average_price
        else:
            # Reduced (the average stays), not moved at all, or of unknown cost: kept as it was.
            average = entry
        position = NetPosition(quantity, average)
        self._positions[fill.symbol] = position
        return position

    def snapshot(self) -> dict[str, str]:
        return {s: str(p.quantity) for s, p in sorted(self._positions.items()) if p.quantity}
