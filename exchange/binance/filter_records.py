"""The frozen records of Binance symbol rules: one dataclass per exchangeInfo filter, the rules
of one symbol and a whole parsed exchangeInfo answer.

Built by the parser in ``exchange.binance.filters``; both modules' public names are re-exported
by ``exchange.binance.rules``, where callers import them from. Every number is a ``Decimal``
read from the JSON string exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.domain.enums import MarketType

__all__ = [
    "ExchangeInfo",
    "LotSize",
    "MinNotional",
    "Notional",
    "PercentPrice",
    "PercentPriceBySide",
    "PriceFilter",
    "SymbolRules",
    "TrailingDelta",
]


@dataclass(frozen=True, slots=True)
class PriceFilter:
    """PRICE_FILTER. A zero in any field disables that rule (Binance docs)."""

    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal


@dataclass(frozen=True, slots=True)
class LotSize:
    """LOT_SIZE or MARKET_LOT_SIZE. Spot MARKET_LOT_SIZE often has step 0: use LOT_SIZE's."""

    min_qty: Decimal
    max_qty: Decimal
    step_size: Decimal


@dataclass(frozen=True, slots=True)
class MinNotional:
    """MIN_NOTIONAL: spot's legacy filter, or futures' (whose field is ``notional``).

    Futures has no ``applyToMarket``: its minimum always applies, with the mark price standing
    in for market orders, and never to reduce-only orders. ``avg_price_mins`` is spot only.
    """

    min_notional: Decimal
    apply_to_market: bool = True
    avg_price_mins: int | None = None


@dataclass(frozen=True, slots=True)
class Notional:
    """Spot NOTIONAL (replaced MIN_NOTIONAL in 2023): a notional range, each end optional."""

    min_notional: Decimal
    apply_min_to_market: bool
    max_notional: Decimal
    apply_max_to_market: bool
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class PercentPrice:
    """PERCENT_PRICE. Spot measures against an average price, futures against the mark price."""

    multiplier_up: Decimal
    multiplier_down: Decimal
    avg_price_mins: int | None = None  # spot only
    multiplier_decimal: int | None = None  # futures only


@dataclass(frozen=True, slots=True)
class PercentPriceBySide:
    """PERCENT_PRICE_BY_SIDE (spot): bid multipliers bound BUY prices, ask multipliers SELL."""

    bid_multiplier_up: Decimal
    bid_multiplier_down: Decimal
    ask_multiplier_up: Decimal
    ask_multiplier_down: Decimal
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class TrailingDelta:
    """TRAILING_DELTA (spot): allowed ``trailingDelta`` range in basis points."""

    min_trailing_above_delta: int
    max_trailing_above_delta: int
    min_trailing_below_delta: int
    max_trailing_below_delta: int


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Everything needed to shape and pre-check an order for one symbol.

    A filter the symbol does not carry is ``None``. ``filter_types`` lists every filter type
    the exchange sent, in order; ``unknown_filters`` the ones this module does not interpret.
    """

    symbol: str
    market: MarketType
    status: str
    base_asset: str
    quote_asset: str
    order_types: frozenset[str] = frozenset()
    price_filter: PriceFilter | None = None
    lot_size: LotSize | None = None
    market_lot_size: LotSize | None = None
    min_notional: MinNotional | None = None
    notional: Notional | None = None
    percent_price: PercentPrice | None = None
    percent_price_by_side: PercentPriceBySide | None = None
    max_num_orders: int | None = None
    max_num_algo_orders: int | None = None
    max_num_iceberg_orders: int | None = None
    iceberg_parts: int | None = None
    max_position: Decimal | None = None
    trailing_delta: TrailingDelta | None = None
    # futures only
    contract_type: str | None = None
    price_precision: int | None = None
    quantity_precision: int | None = None
    trigger_protect: Decimal | None = None
    liquidation_fee: Decimal | None = None
    market_take_bound: Decimal | None = None
    filter_types: tuple[str, ...] = ()
    unknown_filters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """A parsed exchangeInfo answer.

    ``skipped`` holds ``(symbol, reason)`` for every entry that could not be read (an entry
    without a readable name is called ``#<index>``). ``rate_limits_raw`` is the ``rateLimits``
    list untouched, for the rate limiter to interpret.
    """

    market: MarketType
    symbols: dict[str, SymbolRules]
    rate_limits_raw: tuple[Mapping[str, Any], ...] = ()
    server_time_ms: int | None = None
    skipped: tuple[tuple[str, str], ...] = field(default=())
