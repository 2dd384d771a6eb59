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


@dataclass(frozen=True, slots=True)
class StrategyPosition:
    """One strategy instance's net position in a symbol: signed (short < 0), with its average
    entry price (0 when flat)."""

    strategy: str
    symbol: str
    quantity: Decimal
    average_price: Decimal


@dataclass(frozen=True, slots=True)
class PositionsReconciled:
    """Every strategy position once start-up reconciliation is done: what the database held,
    the fills it had missed, and the corrections the position-mismatch policy made to agree
    with the exchange. Absolute, not a delta: a (strategy, symbol) not listed is flat.
    The risk book and the positions table replace their own view with it."""

    ts_ms: int
    positions: tuple[StrategyPosition, ...]
    #: what the policy changed, for people ("BTCUSDT: alpha 0.5 -> 0.3 (exchange)")
    corrections: tuple[str, ...] = ()
    #: (symbol, trade id) of the missed fills already counted in `positions`: their own
    #: order.update may be handled after this message (another channel) and must not count
    #: twice
    folded_trades: tuple[tuple[str, int], ...] = ()


AccountEvent = AccountUpdated | BalanceChanged | PositionsReconciled
