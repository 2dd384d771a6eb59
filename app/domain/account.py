"""Account state messages on `account.update`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    """Spot: `free` and `locked` as Binance reports them.

    Futures: `free` is the wallet balance (deposits + realized PnL - fees, no unrealized PnL)
    and `locked` is 0; `cross_wallet` is the part backing cross-margin positions and
    `available` what new orders may still use (REST only; it includes unrealized PnL).
    """

    asset: str
    free: Decimal
    locked: Decimal
    cross_wallet: Decimal | None = None
    available: Decimal | None = None

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """A futures position as the exchange reports it; `quantity` is signed (short < 0).

    `position_side` is BOTH in one-way mode, LONG or SHORT in hedge mode; `margin_type` is
    "cross" or "isolated". Fields the source does not carry are None.
    """

    symbol: str
    quantity: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal
    position_side: str = "BOTH"
    margin_type: str | None = None
    leverage: int | None = None
    mark_price: Decimal | None = None
    liquidation_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AccountUpdated:
    ts_ms: int
    reason: str
    balances: tuple[Balance, ...] = ()
    positions: tuple[PositionSnapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class BalanceChanged:
    """A balance delta from outside trading (deposit, withdrawal, transfer): not a snapshot.

    The next `AccountUpdated` carries the resulting balance; `clear_time_ms` is when the
    exchange settled the change.
    """

    asset: str
    delta: Decimal
    ts_ms: int
    clear_time_ms: int


AccountEvent = AccountUpdated | BalanceChanged
