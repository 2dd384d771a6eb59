"""One-way USD-M position and margin arithmetic for the simulated futures account.

Pure functions over a small mutable ``Position`` record: how a fill changes the position
(entry price averaging, realised PnL on reduce/close/flip), unrealised PnL and initial margin
at a mark price, and the initial margin that open orders reserve. Kept apart from the engine so
the money rules can be tested number by number.

Rules (Binance USD-M, one-way mode, linear USDT contracts):

* Increasing a position averages the entry price by quantity; reducing keeps it and realises
  ``closed_qty * (fill_price - entry) * direction``; a fill larger than the position closes it
  (realising PnL) and opens the rest on the other side at the fill price.
* Unrealised PnL = ``positionAmt * (mark - entry)``; position initial margin =
  ``|positionAmt| * mark / leverage``.
* Open-order margin per symbol reserves, for each side, the notional of the order quantity that
  would *open* exposure (what exceeds the opposite position), divided by leverage; the account
  reserves the larger of the two sides, since only one side can end up filled against the
  position (Binance's one-way rule, simplified: it does not net orders against each other).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

__all__ = [
    "MONEY",
    "FillEffect",
    "OpenOrderLoad",
    "Position",
    "apply_fill",
    "initial_margin",
    "isolated_wallet",
    "money",
    "open_order_margin",
    "unrealized_pnl",
]

MONEY: Final = Decimal("0.00000001")
_ZERO: Final = Decimal(0)


def money(value: Decimal) -> Decimal:
    """Round an amount of USDT to Binance's 8 decimals (half up)."""
    return value.quantize(MONEY, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class Position:
    """One symbol's one-way (``BOTH``) position and its settings."""

    symbol: str
    leverage: int
    isolated: bool = False
    amount: Decimal = _ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = _ZERO
    # Realised PnL accumulated over the position's life, before fees (ACCOUNT_UPDATE "cr").
    accumulated_realized: Decimal = _ZERO
    update_time_ms: int = 0


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill did to a position."""

    realized_pnl: Decimal  # rounded to 8 decimals
    closed_qty: Decimal  # part of the fill that reduced the previous position
    opened_qty: Decimal  # part that increased or newly opened exposure


def apply_fill(position: Position, side: str, qty: Decimal, price: Decimal) -> FillEffect:
    """Book a fill of ``qty`` at ``price`` on ``position`` (mutated) and say what it did."""
    if qty <= 0:
        raise ValueError(f"fill quantity must be positive, not {qty}")
    signed = qty if side == "BUY" else -qty
    amount = position.amount
    if amount == 0 or (amount > 0) == (signed > 0):
        total = abs(amount) + qty
        position.entry_price = (abs(amount) * position.entry_price + qty * price) / total
        position.amount = amount + signed
        return FillEffect(_ZERO, _ZERO, qty)
    closed = min(qty, abs(amount))
    direction = 1 if amount > 0 else -1
    realized = money(closed * (price - position.entry_price) * direction)
    position.accumulated_realized += realized
    position.amount = amount + signed
    opened = qty - closed
    if position.amount == 0:
        position.entry_price = _ZERO
    elif opened > 0:  # flipped: the rest opens the other side at the fill price
        position.entry_price = price
    return FillEffect(realized, closed, opened)


def unrealized_pnl(position: Position, mark: Decimal) -> Decimal:
    if position.amount == 0:
        return _ZERO
    return position.amount * (mark - position.entry_price)


def initial_margin(position: Position, mark: Decimal) -> Decimal:
    return abs(position.amount) * mark / position.leverage


def isolated_wallet(position: Position) -> Decimal:
    """Margin an isolated position holds apart from the cross wallet.

    Simplified: the entry notional over leverage (Binance also keeps fees and margin the user
    added or removed there; the simulator has no add/remove-margin endpoint).
    """
    if not position.isolated or position.amount == 0:
        return _ZERO
    return abs(position.amount) * position.entry_price / position.leverage


@dataclass(frozen=True, slots=True)
class OpenOrderLoad:
    """An open order's remaining quantity and the price its margin is valued at."""

    side: str
    remaining: Decimal
    price: Decimal
    reduce_only: bool = False


def open_order_margin(position: Position, orders: Iterable[OpenOrderLoad]) -> Decimal:
    """Initial margin reserved by one symbol's open orders (see the module rules)."""
    qty = {"BUY": _ZERO, "SELL": _ZERO}
    notional = {"BUY": _ZERO, "SELL": _ZERO}
    for order in orders:
        if order.reduce_only or order.remaining <= 0:
            continue  # a reduce-only order can never open exposure
        qty[order.side] += order.remaining
        notional[order.side] += order.remaining * order.price
    short = max(-position.amount, _ZERO)
    long = max(position.amount, _ZERO)
    reserved = _ZERO
    for side, offset in (("BUY", short), ("SELL", long)):
        if qty[side] <= 0:
            continue
        opening_share = max(qty[side] - offset, _ZERO) / qty[side]
        reserved = max(reserved, notional[side] * opening_share / position.leverage)
    return reserved
