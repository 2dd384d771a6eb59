"""What trade management decides from: the instance's account (`TradeState`), the market of
each of its symbols (`SymbolMarket`), and the two contracts every sizer and entry filter meets.

`state` and `prices` are read-only snapshots built when an entry is judged (entries are rare;
bars are not), so a sizer or filter can neither change the manager's books nor see a value
change under it.

Money here is float: these are decisions (how much to risk, whether to trade), not accounting.
The quantity a sizer returns is a `Decimal`, rounded to the exchange's step by the risk gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from app.domain import Signal, SignalAction
from strategies.exits.base import PositionSide, TrackedPosition

__all__ = [
    "ALLOW",
    "ClosedTrade",
    "EntryFilter",
    "PositionSize",
    "PositionSizer",
    "Prices",
    "SymbolMarket",
    "TradeState",
    "Verdict",
    "entry_side",
    "quantity_for",
]


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One finished position: what Kelly sizing and the drawdown pause learn from."""

    symbol: str
    side: PositionSide
    entry_price: float
    exit_price: float
    quantity: Decimal
    pnl: float  # in the quote asset, fees paid in the quote asset deducted
    entry_ms: int
    exit_ms: int
    exit_reason: str = ""
    position_id: str = ""

    @property
    def return_pct(self) -> float:
        """PnL as a percentage of the entry notional."""
        notional = self.entry_price * float(self.quantity)
        return self.pnl / notional * 100 if notional > 0 else 0.0

    @property
    def won(self) -> bool:
        return self.pnl > 0


@dataclass(frozen=True, slots=True)
class TradeState:
    """The instance's account as trade management sees it.

    `equity` is the capital allocated to the instance plus the PnL of its closed trades plus
    the unrealised PnL of its open positions at the last close; `peak_equity` is its high-water
    mark. `trades` holds the most recent closed trades, oldest first.
    """

    now_ms: int
    equity: float
    peak_equity: float
    positions: tuple[TrackedPosition, ...] = ()
    trades: tuple[ClosedTrade, ...] = ()

    @property
    def drawdown_pct(self) -> float:
        """How far equity is below its high-water mark, in percent (100 when equity <= 0)."""
        if self.equity <= 0:
            return 100.0
        if self.peak_equity <= self.equity:
            return 0.0
        return (self.peak_equity - self.equity) / self.peak_equity * 100


@dataclass(frozen=True, slots=True)
class SymbolMarket:
    """One symbol's market as of its last closed bar. Every statistic is NaN until known.

    `returns` are the log returns of the last closes (oldest first) and `return_times` the
    open times of the bars that ended each return, so two symbols' returns can be aligned.
    `volatility` is the sample standard deviation of those returns, per bar.
    """

    symbol: str
    close: float
    close_ms: int
    atr: float
    adx: float
    volatility: float
    bars_per_year: float
    returns: tuple[float, ...] = ()
    return_times: tuple[int, ...] = ()

    @property
    def annualised_volatility(self) -> float:
        return self.volatility * math.sqrt(self.bars_per_year)

    @property
    def atr_pct(self) -> float:
        """ATR as a percentage of the last close."""
        return self.atr / self.close * 100 if self.close > 0 else math.nan


Prices = Mapping[str, SymbolMarket]


@dataclass(frozen=True, slots=True)
class Verdict:
    """An entry filter's answer; false (refused) always carries the reason."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def refuse(cls, reason: str) -> Verdict:
        return cls(False, reason)


ALLOW = Verdict(True)


@dataclass(frozen=True, slots=True)
class PositionSize:
    """A sizer's answer: the quantity (base asset) to enter, 0 to not enter, and why."""

    quantity: Decimal
    reason: str

    @property
    def zero(self) -> bool:
        return not self.quantity > 0


class PositionSizer(Protocol):
    @property
    def name(self) -> str: ...

    def compute_size(self, signal: Signal, state: TradeState, prices: Prices) -> PositionSize:
        """The quantity for `signal`'s entry; zero (with the reason) when it must not enter."""
        ...


class EntryFilter(Protocol):
    @property
    def name(self) -> str: ...

    def allow_entry(self, signal: Signal, state: TradeState, prices: Prices) -> Verdict:
        """Whether `signal`'s entry may go ahead now; refused with the reason."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state to survive a restart ({} when stateless)."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


def entry_side(signal: Signal) -> PositionSide:
    if signal.action is SignalAction.ENTER_LONG:
        return "long"
    if signal.action is SignalAction.ENTER_SHORT:
        return "short"
    raise ValueError(f"{signal.signal_id} is not an entry ({signal.action.value})")


# Quantities are rounded to the exchange's step size by the risk gate; here they only need to
# be exact decimals of the float computed, without binary noise past 12 significant digits.
def quantity_for(notional: float, price: float) -> Decimal:
    """The base quantity worth `notional` at `price` (0 when either is not positive/finite)."""
    if not (notional > 0 and price > 0 and math.isfinite(notional) and math.isfinite(price)):
        return Decimal(0)
    return Decimal(f"{notional / price:.12g}")
