"""Net positions from the executor's own booked fills, for the protective-stop hook.

Signed quantity per symbol (BUY adds, SELL subtracts) and the average entry price: a fill
that grows the position moves the average, one that reduces it leaves it, one that crosses
zero starts a new position at its own price. Fed one booked fill at a time (each trade id
once, by the order book), so duplicates cannot double a position. `seed` takes the
exchange's position at start (reconciliation), before any fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.orders import Fill

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
        signed = fill.position_change  # net of a spot fee taken in the base asset
        quantity = current.quantity + signed
        average = current.average_price
        if quantity == 0:
            average = None
        elif current.quantity == 0 or (quantity > 0) != (current.quantity > 0):
            average = fill.price  # a new position (or one that crossed zero)
        elif abs(quantity) > abs(current.quantity) and average is not None:
            average = (average * abs(current.quantity) + fill.price * abs(signed)) / abs(quantity)
        position = NetPosition(quantity, average)
        self._positions[fill.symbol] = position
        return position

    def snapshot(self) -> dict[str, str]:
        return {s: str(p.quantity) for s, p in sorted(self._positions.items()) if p.quantity}
