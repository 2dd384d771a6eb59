"""Average-cost accounting of one net position, fill by fill: pure, no state of its own.

The one rule the database's positions table, the risk gate's book and the executor's net
positions share. A fill that opens or grows the position moves the average entry price; one
that reduces it realizes (price - average) on the closed part and keeps the average; one that
crosses zero realizes the closed part and opens the remainder at the fill's price. The held
quantity moves by `Fill.position_change`, so a spot fee taken in the base asset shrinks it.

What a fee is worth in the quote asset is the caller's to say (`fee`): the callers value fees
paid in a third asset differently (the risk book knows its quote assets and counts the rest
apart), and the executor books no PnL at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.orders import Fill

__all__ = ["PositionChange", "PositionState", "position_after_fill"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PositionState:
    """A net position: signed quantity (short < 0), average entry price (0 when flat) and the
    PnL realized so far, net of the fees charged to it."""

    quantity: Decimal = _ZERO
    average_price: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class PositionChange:
    """What one fill did: the position before and after; whether it went against the
    position (`reduced`: it did not open or add), how much of the old position it closed and
    the PnL on that part before fees (both 0 when it opened or added). A fill that moves
    nothing (`position_change` 0) counts as reduced on a long, closing 0, as it always has."""

    before: PositionState
    after: PositionState
    reduced: bool = False
    closed_quantity: Decimal = _ZERO
    closed_pnl: Decimal = _ZERO

    @property
    def closed_out(self) -> bool:
        """The fill took the position back to flat or across zero (a round trip ended)."""
        old, new = self.before.quantity, self.after.quantity
        return self.reduced and (new == 0 or (new > 0) != (old > 0))

    @property
    def opened(self) -> bool:
        """The fill started a new position, from flat or across zero: its average entry is
        the fill's price (from flat computed as cost / quantity, which can round that price
        off past 28 significant digits)."""
        return self.after.quantity != 0 and (self.before.quantity == 0 or self.closed_out)


def position_after_fill(
    position: PositionState, fill: Fill, *, fee: Decimal = _ZERO
) -> PositionChange:
    """Book one fill (the caller feeds each trade once); `fee` is the fill's fee valued in the
    quote asset, charged to `realized_pnl` whole (0: nothing charged)."""
    old = position.quantity
    delta = fill.position_change
    moved = abs(delta)
    new = old + delta
    realized = position.realized_pnl - fee
    average = position.average_price
    if old == 0 or (old > 0) == (delta > 0):
        # Opening or adding: the average cost of what is now held.
        total = abs(old) + moved
        if total:
            average = (abs(old) * average + moved * fill.price) / total
        return PositionChange(position, PositionState(new, average, realized))
    closed = min(abs(old), moved)
    direction = 1 if old > 0 else -1
    pnl = closed * (fill.price - average) * direction
    realized += pnl
    if new == 0:
        average = _ZERO
    elif (new > 0) != (old > 0):
        average = fill.price
    return PositionChange(position, PositionState(new, average, realized), True, closed, pnl)
