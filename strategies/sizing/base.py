"""What every position sizer shares: the checks made before any formula (equity, the entry's
price), parameter validation, and the one way a notional becomes a `PositionSize`.

A sizer never raises on the account or the market it is given: anything it cannot size is a
zero quantity whose reason starts with the sizer's name, so the manager can log why an entry
was skipped.
"""

from __future__ import annotations

import math
from decimal import Decimal

from app.domain import Signal
from strategies.trade.state import PositionSize, Prices, SymbolMarket, TradeState, quantity_for

__all__ = [
    "check_in_range",
    "check_positive",
    "entry_market",
    "fmt",
    "has_price",
    "size_for",
    "zero_size",
]


def fmt(value: float) -> str:
    """A number as reasons show it: six significant digits, no binary noise."""
    return f"{value:.6g}"


def check_in_range(name: str, value: float, low: float, high: float, *, low_open: bool) -> None:
    """Raise ValueError unless `value` lies in (low, high] (`low_open`) or [low, high]."""
    above_low = value > low if low_open else value >= low
    if not (above_low and value <= high):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{fmt(low)}, {fmt(high)}], got {value}")


def check_positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value}")


def has_price(market: SymbolMarket) -> bool:
    """Whether a quantity can be priced at `market`'s last close (positive and finite)."""
    return market.close > 0 and math.isfinite(market.close)


def zero_size(sizer: str, why: str) -> PositionSize:
    return PositionSize(Decimal(0), f"{sizer}: {why}")


def entry_market(
    sizer: str, signal: Signal, state: TradeState, prices: Prices
) -> SymbolMarket | PositionSize:
    """The market of `signal`'s symbol, or the zero size when the entry cannot be sized at all
    (equity not positive or not finite, or no positive price for the symbol)."""
    equity = state.equity
    if equity <= 0:
        return zero_size(sizer, f"equity <= 0 ({fmt(equity)})")
    if not math.isfinite(equity):
        return zero_size(sizer, f"equity not finite ({fmt(equity)})")
    market = prices.get(signal.symbol)
    if market is None or not has_price(market):
        return zero_size(sizer, f"no price for {signal.symbol}")
    return market


def size_for(sizer: str, notional: float, market: SymbolMarket, why: str) -> PositionSize:
    """The quantity worth `notional` at the last close; `why` explains how it was reached."""
    if not math.isfinite(notional):
        return zero_size(sizer, f"notional not finite: {why}")
    if notional <= 0:
        return zero_size(sizer, f"notional {fmt(notional)} <= 0: {why}")
    return PositionSize(quantity_for(notional, market.close), f"{sizer}: {why}")
