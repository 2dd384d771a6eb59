"""Virtual balances and positions of the paper venue: pure bookkeeping, no bus, no clock.

- `SpotAccount`: free and locked balance per asset. A working buy locks quote (its worst-case
  cost), a sell locks base; a fill settles the lock, a cancel or expiry releases it. Fees are
  paid in the quote asset on both sides (see `executor.paper_fills.FillModel.fee`).
- `FuturesAccount` (USDⓈ-M, one-way mode): a wallet per margin asset and one signed position per
  symbol with its average entry price. Closing trades book realised PnL into the wallet, fees
  come out of it. Working orders reserve initial margin (notional / leverage of the part that
  opens or grows a position) against what is available: wallet + unrealised PnL - the margin
  of open positions - the margin reserved by other orders. Reduce-only orders may only shrink
  a position, never open, grow or flip it.

The reasons are Binance's own wording, so logs and alerts read the same in paper and live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.domain import Balance, PositionSnapshot, Side

__all__ = [
    "INSUFFICIENT_BALANCE",
    "MARGIN_INSUFFICIENT",
    "NO_PRICE",
    "REDUCE_ONLY_REJECTED",
    "FuturesAccount",
    "Position",
    "Reservation",
    "SpotAccount",
]

INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."  # -2010
MARGIN_INSUFFICIENT = "Margin is insufficient."  # -2019
REDUCE_ONLY_REJECTED = "ReduceOnly Order is rejected."  # -2022
NO_PRICE = "no market price yet to check the order against"

ZERO = Decimal(0)


def _signed(side: Side, quantity: Decimal) -> Decimal:
    return quantity if side is Side.BUY else -quantity


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a working order holds: locked balance (spot) or initial margin (futures)."""

    asset: str
    amount: Decimal


class SpotAccount:
    def __init__(self, balances: Mapping[str, Decimal]) -> None:
        self._free: dict[str, Decimal] = {asset: Decimal(v) for asset, v in balances.items()}
        self._locked: dict[str, Decimal] = {}

    def free(self, asset: str) -> Decimal:
        return self._free.get(asset, ZERO)

    def locked(self, asset: str) -> Decimal:
        return self._locked.get(asset, ZERO)

    def reserve(self, asset: str, amount: Decimal) -> bool:
        """Lock `amount` of `asset` for a working order; False (nothing changes) if not free."""
        if amount > self.free(asset):
            return False
        self._free[asset] = self.free(asset) - amount
        self._locked[asset] = self.locked(asset) + amount
        return True

    def release(self, asset: str, amount: Decimal) -> None:
        self._locked[asset] = self.locked(asset) - amount
        self._free[asset] = self.free(asset) + amount

    def reserve_order(
        self,
        *,
        base: str,
        quote: str,
        side: Side,
        quantity: Decimal,
        price: Decimal | None,
        fee_rate: Decimal,
    ) -> Reservation | str:
        """Lock what a new order needs (a sell its base; a buy its cost at `price`, the limit or
        an estimate, plus the fee at `fee_rate`), or say why not."""
        if side is Side.SELL:
            asset, amount = base, quantity
        elif price is None:
            return NO_PRICE
        else:
            asset, amount = quote, price * quantity * (1 + fee_rate)
        return Reservation(asset, amount) if self.reserve(asset, amount) else INSUFFICIENT_BALANCE

    def settle(
        self,
        *,
        base: str,
        quote: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        reserved: Decimal,
    ) -> bool:
        """Book one fill whose order locked `reserved` (quote for a buy, base for a sell).

        A buy costing more than its lock (a market buy whose price rose during the latency)
        takes the difference from free quote; False, with nothing changed, if that is short.
        """
        notional = price * quantity
        if side is Side.BUY:
            cost = notional + fee
            if cost - reserved > self.free(quote):
                return False
            self._locked[quote] = self.locked(quote) - reserved
            self._free[quote] = self.free(quote) + reserved - cost
            self._free[base] = self.free(base) + quantity
        else:
            self._locked[base] = self.locked(base) - reserved
            self._free[base] = self.free(base) + reserved - quantity
            self._free[quote] = self.free(quote) + notional - fee
        return True

    def balances(self) -> tuple[Balance, ...]:
        assets = sorted(set(self._free) | set(self._locked))
        return tuple(Balance(a, self.free(a), self.locked(a)) for a in assets)


@dataclass(frozen=True, slots=True)
class Position:
    quantity: Decimal  # signed: short < 0
    entry_price: Decimal
    asset: str  # the margin asset

    def unrealized(self, mark: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.quantity


class FuturesAccount:
    def __init__(
        self,
        balances: Mapping[str, Decimal],
        *,
        leverage: int = 1,
        symbol_leverage: Mapping[str, int] | None = None,
    ) -> None:
        self._wallet: dict[str, Decimal] = {asset: Decimal(v) for asset, v in balances.items()}
        self._reserved: dict[str, Decimal] = {}
        self._positions: dict[str, Position] = {}
        self._leverage = leverage
        self._symbol_leverage = dict(symbol_leverage or {})

    def wallet(self, asset: str) -> Decimal:
        return self._wallet.get(asset, ZERO)

    def leverage(self, symbol: str) -> int:
        return self._symbol_leverage.get(symbol, self._leverage)

    def position(self, symbol: str) -> Position | None:
        return self._positions.get(symbol)

    def signed_quantity(self, symbol: str) -> Decimal:
        position = self._positions.get(symbol)
        return position.quantity if position is not None else ZERO

    def reduce_only_allowed(self, symbol: str, side: Side, quantity: Decimal) -> bool:
        """Only a trade against the position, no larger than it: never open, grow or flip."""
        held = self.signed_quantity(symbol)
        delta = _signed(side, quantity)
        return held != 0 and (held > 0) != (delta > 0) and quantity <= abs(held)

    def opening_quantity(self, symbol: str, side: Side, quantity: Decimal) -> Decimal:
        """The part of a trade that opens or grows a position (what needs new margin)."""
        held = self.signed_quantity(symbol)
        if held == 0 or (held > 0) == (side is Side.BUY):
            return quantity
        return max(ZERO, quantity - abs(held))

    def available(self, asset: str, marks: Mapping[str, Decimal]) -> Decimal:
        """Wallet + unrealised PnL - position margin - margin reserved by working orders."""
        total = self.wallet(asset) - self._reserved.get(asset, ZERO)
        for symbol, position in self._positions.items():
            if position.asset != asset:
                continue
            mark = marks.get(symbol, position.entry_price)
            total += position.unrealized(mark)
            total -= abs(position.quantity) * mark / self.leverage(symbol)
        return total

    def reserve(self, asset: str, amount: Decimal, marks: Mapping[str, Decimal]) -> bool:
        """Reserve margin for a working order; False (nothing changes) if not available."""
        if amount > ZERO and amount > self.available(asset, marks):
            return False
        self.hold(asset, amount)
        return True

    def hold(self, asset: str, amount: Decimal) -> None:
        """Reserve without a check: to put back a reservation just released."""
        self._reserved[asset] = self._reserved.get(asset, ZERO) + amount

    def release(self, asset: str, amount: Decimal) -> None:
        self._reserved[asset] = self._reserved.get(asset, ZERO) - amount

    def reserve_order(
        self,
        *,
        symbol: str,
        asset: str,
        side: Side,
        quantity: Decimal,
        price: Decimal | None,
        reduce_only: bool,
        marks: Mapping[str, Decimal],
    ) -> Reservation | str:
        """Reserve the initial margin of what the order would open or grow (at `price`, the
        limit or an estimate), or say why not; reduce-only orders need none."""
        if reduce_only:
            if not self.reduce_only_allowed(symbol, side, quantity):
                return REDUCE_ONLY_REJECTED
            return Reservation(asset, ZERO)
        opening = self.opening_quantity(symbol, side, quantity)
        if opening == 0:
            return Reservation(asset, ZERO)
        if price is None:
            return NO_PRICE
        amount = opening * price / self.leverage(symbol)
        if not self.reserve(asset, amount, marks):
            return MARGIN_INSUFFICIENT
        return Reservation(asset, amount)

    def settle(
        self,
        *,
        symbol: str,
        asset: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> Decimal:
        """Book one fill into the position and the wallet; returns the realised PnL."""
        position = self._positions.get(symbol)
        held = position.quantity if position is not None else ZERO
        entry = position.entry_price if position is not None else ZERO
        delta = _signed(side, quantity)
        after = held + delta
        realized = ZERO
        if held == 0 or (held > 0) == (delta > 0):
            entry = (abs(held) * entry + quantity * price) / abs(after)
        else:
            closing = min(quantity, abs(held))
            realized = closing * (price - entry) * (1 if held > 0 else -1)
            if after == 0:
                entry = ZERO
            elif (after > 0) != (held > 0):  # flipped: the remainder opens at this price
                entry = price
        if after == 0:
            self._positions.pop(symbol, None)
        else:
            self._positions[symbol] = Position(after, entry, asset)
        self._wallet[asset] = self.wallet(asset) + realized - fee
        return realized

    def balances(self, marks: Mapping[str, Decimal]) -> tuple[Balance, ...]:
        return tuple(
            Balance(
                asset,
                self.wallet(asset),
                ZERO,
                cross_wallet=self.wallet(asset),
                available=self.available(asset, marks),
            )
            for asset in sorted(self._wallet)
        )

    def snapshots(
        self, marks: Mapping[str, Decimal], also: Iterable[str] = ()
    ) -> tuple[PositionSnapshot, ...]:
        """Every open position, plus a flat snapshot for each symbol in `also` without one
        (so a fill that closed a position reports it closed)."""
        symbols = sorted(set(self._positions) | set(also))
        snapshots: list[PositionSnapshot] = []
        for symbol in symbols:
            position = self._positions.get(symbol)
            if position is None:
                snapshots.append(PositionSnapshot(symbol, ZERO, ZERO, ZERO, leverage=None))
                continue
            mark = marks.get(symbol, position.entry_price)
            snapshots.append(
                PositionSnapshot(
                    symbol,
                    position.quantity,
                    position.entry_price,
                    position.unrealized(mark),
                    leverage=self.leverage(symbol),
                    mark_price=mark,
                )
            )
        return tuple(snapshots)
