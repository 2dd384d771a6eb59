"""Account state messages on `account.update`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """A futures position as the exchange reports it; `quantity` is signed (short < 0)."""

    symbol: str
    quantity: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class AccountUpdated:
    ts_ms: int
    reason: str
    balances: tuple[Balance, ...] = ()
    positions: tuple[PositionSnapshot, ...] = ()
