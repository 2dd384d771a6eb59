"""The simulator's market catalogue: which symbols it lists and its exchangeInfo answers.

``SimSymbol`` holds one market's trading rules; ``default_symbol`` gives realistic rules for
common symbols (BTCUSDT, ETHUSDT) and derives plausible ones for any other stablecoin-quoted
symbol from its start price. ``spot_exchange_info``, ``futures_exchange_info`` and
``funding_info`` render a catalogue in today's Binance shapes (GET /api/v3/exchangeInfo,
/fapi/v1/exchangeInfo and /fapi/v1/fundingInfo), so the real client reads them unchanged.

Numbers are written as Binance writes them: spot pads every price, quantity and notional to 8
decimals ("0.01000000"); futures writes them at the grid's own precision ("0.10", "1000").
Price multipliers are short on both ("5", "0.2"; futures "1.0500"), as served today.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from app.domain.enums import MarketType

__all__ = [
    "FUTURES_ORDER_TYPES",
    "FUTURES_TIME_IN_FORCE",
    "SPOT_ORDER_TYPES",
    "SimSymbol",
    "default_symbol",
    "funding_info",
    "futures_exchange_info",
    "spot_exchange_info",
]

_SPOT_DECIMALS: Final = 8
_SPOT_QUANTUM: Final = Decimal(1).scaleb(-_SPOT_DECIMALS)
_QUOTE_ASSETS: Final = ("FDUSD", "USDT", "USDC")
_DEFAULT_START_PRICE: Final = Decimal(1)
# A perpetual's deliveryDate is this fixed far-future date on the live exchange (2100-12-25).
_PERPETUAL_DELIVERY_MS: Final = 4_133_404_800_000
_ONBOARD_MS: Final = 1_569_398_400_000


@dataclass(frozen=True, slots=True)
class SimSymbol:
    """One listed market and the rules the simulator enforces (and advertises) for it."""

    symbol: str
    market: MarketType
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    price_precision: int
    quantity_precision: int
    start_price: Decimal
    min_price: Decimal
    max_price: Decimal
    market_max_qty: Decimal
    status: str = "TRADING"
    # futures only
    contract_type: str | None = None
    funding_interval_hours: int | None = None
    max_leverage: int | None = None
    liquidation_fee: Decimal | None = None
    market_take_bound: Decimal | None = None


@dataclass(frozen=True, slots=True)
class _Preset:
    tick: Decimal
    step: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_price: Decimal
    start_price: Decimal


def _preset(tick: str, step: str, *whole_numbers: int) -> _Preset:
    max_qty, market_max_qty, notional, max_price, start = (Decimal(n) for n in whole_numbers)
    return _Preset(
        Decimal(tick), Decimal(step), max_qty, market_max_qty, notional, max_price, start
    )


# Spot and USD-M grids as Binance serves them for its two largest markets (tick, step, max qty,
# market max qty, min notional, max price, start price).
_PRESETS: Final[dict[tuple[str, MarketType], _Preset]] = {
    ("BTCUSDT", MarketType.SPOT): _preset("0.01", "0.00001", 9000, 100, 5, 1_000_000, 60_000),
    ("ETHUSDT", MarketType.SPOT): _preset("0.01", "0.0001", 9000, 2000, 5, 1_000_000, 3_000),
    ("BTCUSDT", MarketType.USDM): _preset("0.10", "0.001", 1000, 120, 100, 4_529_764, 60_000),
    ("ETHUSDT", MarketType.USDM): _preset("0.01", "0.001", 10_000, 2000, 20, 306_177, 3_000),
}
_MAX_LEVERAGE: Final = {"BTCUSDT": 125, "ETHUSDT": 100}


def default_symbol(
    symbol: str, market: MarketType, *, start_price: Decimal | None = None
) -> SimSymbol:
    """Realistic rules for ``symbol``: presets for BTCUSDT/ETHUSDT, else derived from the price.

    The derived grid keeps about five significant digits of price and makes one quantity step
    worth roughly 0.1 quote units, like most Binance USDT markets. Raises ``ValueError`` for a
    symbol not quoted in USDT, USDC or FDUSD, or for a start price that is not positive.
    """
    quote = next((q for q in _QUOTE_ASSETS if symbol.endswith(q) and symbol != q), None)
    if quote is None or not symbol.isalnum() or not symbol.isupper():
        raise ValueError(f"no default rules for {symbol!r}: expected <BASE>USDT/USDC/FDUSD")
    if start_price is not None and not (start_price.is_finite() and start_price > 0):
        raise ValueError(f"start price must be positive, not {start_price}")
    preset = _PRESETS.get((symbol, market)) or _derived_preset(
        market, start_price or _DEFAULT_START_PRICE
    )
    futures = market is MarketType.USDM
    return SimSymbol(
        symbol=symbol,
        market=market,
        base_asset=symbol[: -len(quote)],
        quote_asset=quote,
        tick_size=preset.tick,
        step_size=preset.step,
        min_qty=preset.step,
        max_qty=preset.max_qty,
        min_notional=preset.min_notional,
        price_precision=_decimals(preset.tick),
        quantity_precision=_decimals(preset.step),
        start_price=start_price or preset.start_price,
        min_price=preset.tick,
        max_price=preset.max_price,
        market_max_qty=preset.market_max_qty,
        contract_type="PERPETUAL" if futures else None,
        funding_interval_hours=8 if futures else None,
        max_leverage=_MAX_LEVERAGE.get(symbol, 50) if futures else None,
        liquidation_fee=Decimal("0.012500") if futures else None,
        market_take_bound=Decimal("0.05") if futures else None,
    )


def _derived_preset(market: MarketType, price: Decimal) -> _Preset:
    magnitude = price.adjusted()  # floor(log10(price))
    futures = market is MarketType.USDM
    # Futures grids are coarser than spot's: at most 7 price decimals, at least 0.001 per step.
    tick = _clamp(Decimal(1).scaleb(magnitude - 4), Decimal("1e-7" if futures else "1e-8"))
    step = _clamp(Decimal(1).scaleb(-(magnitude + 1)), Decimal("0.001" if futures else "1e-8"))
    tick = min(tick, Decimal("0.01"))
    step = min(step, Decimal(1))
    max_qty = Decimal(1).scaleb(7 - magnitude) * (1 if futures else 9)
    return _Preset(
        tick=tick,
        step=step,
        max_qty=max(max_qty, Decimal(1)),
        market_max_qty=max(max_qty / 10, Decimal(1)),
        min_notional=Decimal(5),
        max_price=max(Decimal(1).scaleb(magnitude + 3), Decimal(1000)),
        start_price=price,
    )


def _clamp(value: Decimal, minimum: Decimal) -> Decimal:
    return max(value, minimum)


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


# --- exchangeInfo rendering


def _spot_number(value: Decimal) -> str:
    """Binance spot's fixed 8-decimal spelling; a value finer than that cannot be listed."""
    if value != value.quantize(_SPOT_QUANTUM):
        raise ValueError(f"{value} has more than {_SPOT_DECIMALS} decimals")
    return f"{value:.{_SPOT_DECIMALS}f}"


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _rate_limit(kind: str, interval: str, num: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


_SPOT_RATE_LIMITS: Final = (
    _rate_limit("REQUEST_WEIGHT", "MINUTE", 1, 6000),
    _rate_limit("ORDERS", "SECOND", 10, 100),
    _rate_limit("ORDERS", "DAY", 1, 200_000),
    _rate_limit("RAW_REQUESTS", "MINUTE", 5, 61_000),
)
_FUTURES_RATE_LIMITS: Final = (
    _rate_limit("REQUEST_WEIGHT", "MINUTE", 1, 2400),
    _rate_limit("ORDERS", "MINUTE", 1, 1200),
    _rate_limit("ORDERS", "SECOND", 10, 300),
)
SPOT_ORDER_TYPES: Final = (
    "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)  # fmt: skip
FUTURES_ORDER_TYPES: Final = (
    "LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)  # fmt: skip
FUTURES_TIME_IN_FORCE: Final = ("GTC", "IOC", "FOK", "GTX", "GTD")
_STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
_SPOT_AVG_PRICE_MINS: Final = 5


def _only(symbols: Iterable[SimSymbol], market: MarketType) -> list[SimSymbol]:
    chosen = list(symbols)
    for entry in chosen:
        if entry.market is not market:
            raise ValueError(f"{entry.symbol} is a {entry.market} symbol, not {market}")
    return chosen


def spot_exchange_info(symbols: Iterable[SimSymbol], *, server_time_ms: int) -> dict[str, Any]:
    """GET /api/v3/exchangeInfo for these spot symbols (post-2023 filters)."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [dict(r) for r in _SPOT_RATE_LIMITS],
        "exchangeFilters": [],
        "symbols": [_spot_entry(s) for s in _only(symbols, MarketType.SPOT)],
    }


def _spot_entry(s: SimSymbol) -> dict[str, Any]:
    n = _spot_number
    return {
        "symbol": s.symbol,
        "status": s.status,
        "baseAsset": s.base_asset,
        "baseAssetPrecision": _SPOT_DECIMALS,
        "quoteAsset": s.quote_asset,
        "quotePrecision": _SPOT_DECIMALS,
        "quoteAssetPrecision": _SPOT_DECIMALS,
        "baseCommissionPrecision": _SPOT_DECIMALS,
        "quoteCommissionPrecision": _SPOT_DECIMALS,
        "orderTypes": list(SPOT_ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            _price_filter(s, n),
            _lot("LOT_SIZE", n(s.min_qty), n(s.max_qty), n(s.step_size)),
            # Spot's market lot has no grid of its own (zeros): LOT_SIZE's step applies.
            _lot("MARKET_LOT_SIZE", n(Decimal(0)), n(s.market_max_qty), n(Decimal(0))),
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": _SPOT_AVG_PRICE_MINS,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": n(s.min_notional),
                "applyMinToMarket": True,
                "maxNotional": n(Decimal(9_000_000)),
                "applyMaxToMarket": False,
                "avgPriceMins": _SPOT_AVG_PRICE_MINS,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": list(_STP_MODES),
    }


def _price_filter(s: SimSymbol, spell: Any) -> dict[str, Any]:
    return {
        "filterType": "PRICE_FILTER",
        "minPrice": spell(s.min_price),
        "maxPrice": spell(s.max_price),
        "tickSize": spell(s.tick_size),
    }


def _lot(kind: str, min_qty: str, max_qty: str, step: str) -> dict[str, Any]:
    return {"filterType": kind, "minQty": min_qty, "maxQty": max_qty, "stepSize": step}


def futures_exchange_info(symbols: Iterable[SimSymbol], *, server_time_ms: int) -> dict[str, Any]:
    """GET /fapi/v1/exchangeInfo for these USD-M perpetual symbols."""
    chosen = _only(symbols, MarketType.USDM)
    assets = sorted({s.quote_asset for s in chosen} | {"USDT"})
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [dict(r) for r in _FUTURES_RATE_LIMITS],
        "exchangeFilters": [],
        "assets": [
            {"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets
        ],
        "symbols": [_futures_entry(s) for s in chosen],
    }


def _futures_entry(s: SimSymbol) -> dict[str, Any]:
    p = _plain
    return {
        "symbol": s.symbol,
        "pair": s.symbol,
        "contractType": s.contract_type or "PERPETUAL",
        "deliveryDate": _PERPETUAL_DELIVERY_MS,
        "onboardDate": _ONBOARD_MS,
        "status": s.status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": s.base_asset,
        "quoteAsset": s.quote_asset,
        "marginAsset": s.quote_asset,
        "pricePrecision": s.price_precision,
        "quantityPrecision": s.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": p(s.liquidation_fee or Decimal("0.012500")),
        "marketTakeBound": p(s.market_take_bound or Decimal("0.05")),
        "maxMoveOrderLimit": 10000,
        "filters": [
            _price_filter(s, p),
            _lot("LOT_SIZE", p(s.min_qty), p(s.max_qty), p(s.step_size)),
            _lot("MARKET_LOT_SIZE", p(s.min_qty), p(s.market_max_qty), p(s.step_size)),
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": p(s.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": list(FUTURES_ORDER_TYPES),
        "timeInForce": list(FUTURES_TIME_IN_FORCE),
    }


def funding_info(symbols: Sequence[SimSymbol]) -> list[dict[str, Any]]:
    """GET /fapi/v1/fundingInfo: one entry per futures symbol (spot ones are left out).

    Binance lists only symbols whose funding settings were adjusted; the simulator lists all of
    its perpetuals so a client never has to guess the interval.
    """
    return [
        {
            "symbol": s.symbol,
            "adjustedFundingRateCap": "0.02000000",
            "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": s.funding_interval_hours or 8,
            "disclaimer": False,
        }
        for s in symbols
        if s.market is MarketType.USDM
    ]
