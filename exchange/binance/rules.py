"""Binance symbol rules: rounding orders onto the exchange's grid and checking them before sending.

The records and the exchangeInfo parser live in ``exchange.binance.filters`` and are re-exported
here, so callers import everything from this module::

    info = parse_exchange_info(body, MarketType.SPOT)
    rules = info.symbols["BTCUSDT"]
    qty, price = round_order(rules, side=Side.BUY, order_type=OrderType.LIMIT, ...)
    violation = check_order(rules, side=Side.BUY, order_type=OrderType.LIMIT, ...)

Grid rule: Binance accepts a value when ``(value - min) % step == 0`` (USD-M docs; the spot docs
write ``value % step``, the same thing whenever ``min`` is a multiple of ``step``, as it is for
every symbol in the recorded payloads). Rounding therefore anchors the grid at ``min`` for values
at or above it, and at zero below it (such an order fails the minimum anyway).

The mapping of domain order types to Binance type names (``binance_order_type``) and the
"market-like" test (``is_market_like``) live in ``exchange.binance.order_types`` and are
re-exported here as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow

from app.domain.enums import MarketType, OrderType, Side
from exchange.binance.filters import (
    ExchangeInfo,
    ExchangeInfoError,
    LotSize,
    MinNotional,
    Notional,
    PercentPrice,
    PercentPriceBySide,
    PriceFilter,
    SymbolRules,
    TrailingDelta,
    parse_exchange_info,
)
from exchange.binance.order_types import binance_order_type, is_market_like

__all__ = [
    "ExchangeInfo",
    "ExchangeInfoError",
    "FilterViolation",
    "LotSize",
    "MinNotional",
    "Notional",
    "PercentPrice",
    "PercentPriceBySide",
    "PriceFilter",
    "SymbolRules",
    "TrailingDelta",
    "binance_order_type",
    "check_order",
    "format_decimal",
    "is_market_like",
    "parse_exchange_info",
    "round_order",
    "round_price",
    "round_quantity",
]

# Wide enough that products of exchange numbers are exact; Inexact is trapped so a result that
# would need rounding raises instead of silently passing a filter it should fail.
_EXACT = Context(prec=200, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])

# Conditional orders, which Binance counts against MAX_NUM_ALGO_ORDERS.
_ALGO = frozenset(OrderType) - {OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT_MAKER}


@dataclass(frozen=True)
class FilterViolation:
    """Why an order would be refused. ``filter`` is the Binance filter name, or one of ours:
    STATUS, ORDER_TYPE, QUANTITY, PRICE."""

    filter: str
    reason: str


def format_decimal(value: Decimal) -> str:
    """Plain positional notation for a request parameter: never an exponent, never a float."""
    if not value.is_finite():
        raise ValueError(f"cannot send a non-finite number: {value}")
    if value.is_zero():
        value = abs(value)  # "-0" is valid Decimal but not a sensible request value
    return f"{value:f}"


def round_quantity(rules: SymbolRules, quantity: Decimal, *, market_order: bool = False) -> Decimal:
    """Round down onto the quantity grid; never up, so an order never grows.

    Market orders use MARKET_LOT_SIZE's step when it is non-zero (spot often sends 0, meaning
    LOT_SIZE's step applies). Without a usable step the quantity is returned unchanged.
    """
    _require_non_negative("quantity", quantity)
    lot = _step_source(rules, market_order=market_order)
    if lot is None:
        return quantity
    return _snap(quantity, lot.min_qty, lot.step_size, up=False)


def round_price(rules: SymbolRules, price: Decimal, side: Side) -> Decimal:
    """Round onto the tick grid on the passive side: BUY down, SELL up, never more aggressive."""
    _require_non_negative("price", price)
    price_filter = rules.price_filter
    if price_filter is None or price_filter.tick_size <= 0:
        return price
    return _snap(price, price_filter.min_price, price_filter.tick_size, up=side is Side.SELL)


def round_order(
    rules: SymbolRules,
    *,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    price: Decimal | None,
) -> tuple[Decimal, Decimal | None]:
    """Apply ``round_quantity`` (market step for market-like types) and ``round_price``."""
    rounded_quantity = round_quantity(rules, quantity, market_order=is_market_like(order_type))
    rounded_price = None if price is None else round_price(rules, price, side)
    return rounded_quantity, rounded_price


def check_order(
    rules: SymbolRules,
    *,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    price: Decimal | None,
    reference_price: Decimal | None = None,
    open_orders: int | None = None,
    open_algo_orders: int | None = None,
    stop_price: Decimal | None = None,
    reduce_only: bool = False,
) -> FilterViolation | None:
    """The first rule the order breaks, or ``None`` when every check that could run passes.

    ``reference_price`` is the price Binance would use for what has no order price: the
    ``avgPriceMins`` average or last price on spot, the mark price on futures. It prices
    market-like orders for the notional filters and is the base of the percent-price filters;
    a check that needs it is skipped when it is ``None``. Percent-price filters bound an order's
    own price, so market-like orders skip them. ``open_orders``/``open_algo_orders`` are the
    symbol's current open counts, checked against MAX_NUM_ORDERS/MAX_NUM_ALGO_ORDERS when given.
    ``reduce_only`` exempts futures orders from MIN_NOTIONAL, as Binance does. ``stop_price``,
    when given, is held to PRICE_FILTER like the price. A ``price`` sent with a market-like type
    is ignored. TRAILING_DELTA, MAX_POSITION and ICEBERG_PARTS are parsed but not checked.
    """
    if reference_price is not None:
        _require_positive("reference_price", reference_price)
    market_like = is_market_like(order_type)
    checks = (
        _check_status(rules),
        _check_order_type(rules, order_type),
        _check_inputs(order_type, quantity, price),
    )
    for violation in checks:
        if violation is not None:
            return violation
    order_price = None if market_like else price
    notional_price = reference_price if market_like else order_price
    return (
        _check_price_filter(rules.price_filter, "price", order_price)
        or _check_price_filter(rules.price_filter, "stopPrice", stop_price)
        or _check_lot_sizes(rules, quantity, market_like=market_like)
        or _check_notional(rules, quantity, notional_price, market_like, reduce_only)
        or _check_percent_price(rules, side, order_price, reference_price)
        or _check_counts(rules, order_type, open_orders, open_algo_orders)
    )


# --- rounding helpers


def _step_source(rules: SymbolRules, *, market_order: bool) -> LotSize | None:
    """The lot filter whose step governs: MARKET_LOT_SIZE for market orders when it has one."""
    market_lot = rules.market_lot_size
    if market_order and market_lot is not None and market_lot.step_size > 0:
        return market_lot
    lot = rules.lot_size
    if lot is None or lot.step_size <= 0:
        return None
    return lot


def _snap(value: Decimal, minimum: Decimal, step: Decimal, *, up: bool) -> Decimal:
    anchor = minimum if value >= minimum else Decimal(0)
    offset = _EXACT.subtract(value, anchor)
    steps = _EXACT.divide_int(offset, step)
    if up and _EXACT.remainder(offset, step) != 0:
        steps = _EXACT.add(steps, 1)
    snapped = _EXACT.add(anchor, _EXACT.multiply(steps, step))
    # Keep the grid's own precision (step 0.01000000 -> 2 places) so the value prints cleanly.
    exponent = min(0, _exponent(step), _exponent(anchor))
    return snapped.quantize(Decimal(1).scaleb(exponent), context=_EXACT)


def _exponent(value: Decimal) -> int:
    if value.is_zero():
        return 0
    exponent = value.normalize(_EXACT).as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only reach here
    return exponent


def _on_grid(value: Decimal, minimum: Decimal, step: Decimal) -> bool:
    return _EXACT.remainder(_EXACT.subtract(value, minimum), step) == 0


def _require_non_negative(name: str, value: Decimal) -> None:
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value}")


def _require_positive(name: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value}")


def _show(value: Decimal) -> str:
    return format_decimal(value.normalize(_EXACT))


# --- checks, each returning the first violation it finds


def _violation(name: str, reason: str) -> FilterViolation:
    return FilterViolation(name, f"{name}: {reason}")


def _check_status(rules: SymbolRules) -> FilterViolation | None:
    if rules.status == "TRADING":
        return None
    return _violation("STATUS", f"symbol {rules.symbol} is {rules.status}, not TRADING")


def _check_order_type(rules: SymbolRules, order_type: OrderType) -> FilterViolation | None:
    name = binance_order_type(rules.market, order_type)
    if name is None:
        return _violation(
            "ORDER_TYPE", f"{order_type.value} does not exist on {rules.market.value}"
        )
    # An empty list means exchangeInfo did not say; the exchange will judge.
    if rules.order_types and name not in rules.order_types:
        allowed = ", ".join(sorted(rules.order_types))
        return _violation(
            "ORDER_TYPE", f"{name} is not allowed on {rules.symbol} (allowed: {allowed})"
        )
    return None


def _check_inputs(
    order_type: OrderType, quantity: Decimal, price: Decimal | None
) -> FilterViolation | None:
    if not quantity.is_finite() or quantity <= 0:
        return _violation("QUANTITY", f"quantity {quantity} must be positive")
    if is_market_like(order_type):
        return None
    if price is None:
        return _violation("PRICE", f"a {order_type.value} order needs a price")
    if not price.is_finite() or price <= 0:
        return _violation("PRICE", f"price {price} must be positive")
    return None


def _check_price_filter(
    price_filter: PriceFilter | None, label: str, price: Decimal | None
) -> FilterViolation | None:
    if price_filter is None or price is None:
        return None
    minimum, maximum, tick = price_filter.min_price, price_filter.max_price, price_filter.tick_size
    shown = f"{label} {_show(price)}"
    if minimum > 0 and price < minimum:
        return _violation("PRICE_FILTER", f"{shown} below minPrice {_show(minimum)}")
    if maximum > 0 and price > maximum:
        return _violation("PRICE_FILTER", f"{shown} above maxPrice {_show(maximum)}")
    if tick > 0 and not _on_grid(price, minimum, tick):
        return _violation("PRICE_FILTER", f"{shown} is not a multiple of tickSize {_show(tick)}")
    return None


def _check_lot(
    name: str, lot: LotSize | None, quantity: Decimal, *, check_step: bool
) -> FilterViolation | None:
    if lot is None:
        return None
    shown = f"quantity {_show(quantity)}"
    if lot.min_qty > 0 and quantity < lot.min_qty:
        return _violation(name, f"{shown} below minQty {_show(lot.min_qty)}")
    if lot.max_qty > 0 and quantity > lot.max_qty:
        return _violation(name, f"{shown} above maxQty {_show(lot.max_qty)}")
    if check_step and lot.step_size > 0 and not _on_grid(quantity, lot.min_qty, lot.step_size):
        return _violation(name, f"{shown} is not a multiple of stepSize {_show(lot.step_size)}")
    return None


def _check_lot_sizes(
    rules: SymbolRules, quantity: Decimal, *, market_like: bool
) -> FilterViolation | None:
    market_lot = rules.market_lot_size if market_like else None
    # A market order rounded to MARKET_LOT_SIZE's own step is judged on that step alone.
    market_step_governs = market_lot is not None and market_lot.step_size > 0
    return _check_lot(
        "LOT_SIZE", rules.lot_size, quantity, check_step=not market_step_governs
    ) or _check_lot("MARKET_LOT_SIZE", market_lot, quantity, check_step=True)


def _check_notional(
    rules: SymbolRules,
    quantity: Decimal,
    price: Decimal | None,
    market_like: bool,
    reduce_only: bool,
) -> FilterViolation | None:
    if price is None:
        return None
    notional = _EXACT.multiply(quantity, price)
    shown = f"notional {_show(notional)}"
    legacy = rules.min_notional
    if (
        legacy is not None
        and (legacy.apply_to_market or not market_like)
        and not (reduce_only and rules.market is MarketType.USDM)
        and notional < legacy.min_notional
    ):
        return _violation("MIN_NOTIONAL", f"{shown} below minNotional {_show(legacy.min_notional)}")
    current = rules.notional
    if current is None:
        return None
    if (current.apply_min_to_market or not market_like) and notional < current.min_notional:
        return _violation("NOTIONAL", f"{shown} below minNotional {_show(current.min_notional)}")
    # maxNotional 0 is read as "no maximum", like the zeros of PRICE_FILTER.
    max_applies = current.apply_max_to_market or not market_like
    if max_applies and current.max_notional > 0 and notional > current.max_notional:
        return _violation("NOTIONAL", f"{shown} above maxNotional {_show(current.max_notional)}")
    return None


def _check_percent_price(
    rules: SymbolRules, side: Side, price: Decimal | None, reference: Decimal | None
) -> FilterViolation | None:
    if price is None or reference is None:
        return None
    # (filter, what is bounded, (name, multiplier) above, (name, multiplier) below)
    bands: list[tuple[str, str, tuple[str, Decimal], tuple[str, Decimal]]] = []
    if (band := rules.percent_price) is not None:
        up, down = ("multiplierUp", band.multiplier_up), ("multiplierDown", band.multiplier_down)
        bands.append(("PERCENT_PRICE", "price", up, down))
    if (by_side := rules.percent_price_by_side) is not None:
        if side is Side.BUY:
            up = ("bidMultiplierUp", by_side.bid_multiplier_up)
            down = ("bidMultiplierDown", by_side.bid_multiplier_down)
        else:
            up = ("askMultiplierUp", by_side.ask_multiplier_up)
            down = ("askMultiplierDown", by_side.ask_multiplier_down)
        bands.append(("PERCENT_PRICE_BY_SIDE", f"{side.value} price", up, down))
    for name, label, (up_name, up_factor), (down_name, down_factor) in bands:
        shown = f"{label} {_show(price)}"
        high = _EXACT.multiply(reference, up_factor)
        low = _EXACT.multiply(reference, down_factor)
        # A zero multiplierUp would forbid every price: read it as disabled, like PRICE_FILTER's.
        if up_factor > 0 and price > high:
            basis = f"reference {_show(reference)} * {up_name} {_show(up_factor)}"
            return _violation(name, f"{shown} above {_show(high)} ({basis})")
        if price < low:
            basis = f"reference {_show(reference)} * {down_name} {_show(down_factor)}"
            return _violation(name, f"{shown} below {_show(low)} ({basis})")
    return None


def _check_counts(
    rules: SymbolRules,
    order_type: OrderType,
    open_orders: int | None,
    open_algo_orders: int | None,
) -> FilterViolation | None:
    limit = rules.max_num_orders
    if limit is not None and open_orders is not None and open_orders >= limit:
        return _violation("MAX_NUM_ORDERS", f"{open_orders} orders already open, limit {limit}")
    limit = rules.max_num_algo_orders if order_type in _ALGO else None
    if limit is not None and open_algo_orders is not None and open_algo_orders >= limit:
        reason = f"{open_algo_orders} algo orders already open, limit {limit}"
        return _violation("MAX_NUM_ALGO_ORDERS", reason)
    return None
