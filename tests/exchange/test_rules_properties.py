"""Properties of rounding and checking: a rounded order that is not too small always passes."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.enums import MarketType, OrderType, Side
from exchange.binance.rules import (
    LotSize,
    MinNotional,
    Notional,
    PriceFilter,
    SymbolRules,
    check_order,
    format_decimal,
    round_order,
    round_price,
    round_quantity,
)

D = Decimal
MODEST = settings(max_examples=200, deadline=None)


def padded(value: Decimal, pad: bool) -> Decimal:
    """Binance writes steps with eight places ("0.00100000"); the value must not care."""
    return value.quantize(D("1E-8")) if pad and exponent(value) >= -8 else value


# 10^-k, or k * 10^-m (which covers 0.5, 0.25, 5, 10, 50, 250...).
grid_steps = st.one_of(
    st.integers(0, 8).map(lambda k: D(1).scaleb(-k)),
    st.tuples(st.sampled_from([1, 2, 5, 25]), st.integers(-2, 8)).map(
        lambda km: D(km[0]).scaleb(-km[1])
    ),
)

# Positive amounts spread over many magnitudes, with up to 12 decimal places.
amounts = st.tuples(st.integers(1, 10**12), st.integers(0, 12)).map(
    lambda nk: D(nk[0]).scaleb(-nk[1])
)


@st.composite
def symbol_rules(draw: st.DrawFn, market: MarketType) -> SymbolRules:
    step, tick = draw(grid_steps), draw(grid_steps)
    min_qty = step * draw(st.integers(0, 5))
    min_price = tick * draw(st.integers(0, 5))
    # Maxima sit on the grid (as Binance's do), or are 0 = disabled for prices.
    max_qty = min_qty + step * draw(st.integers(1, 10**9))
    max_price = draw(st.sampled_from([D(0), min_price + tick * draw(st.integers(1, 10**9))]))
    pad = draw(st.booleans())
    lot = LotSize(padded(min_qty, pad), padded(max_qty, pad), padded(step, pad))
    if market is MarketType.SPOT:
        market_lot = LotSize(D(0), max_qty, D(0))  # spot's usual "step 0: use LOT_SIZE"
    else:
        # Usually the same step as LOT_SIZE; coarser or finer ones test which step governs.
        factor = draw(st.sampled_from([D(1), D(1), D(10), D("0.5")]))
        market_lot = LotSize(min_qty, max_qty, step * factor)
    minimum = draw(st.sampled_from([D(0), D("0.0001"), D(1), D(5), D(10), D(100)]))
    use_new_notional = market is MarketType.SPOT and draw(st.booleans())
    return SymbolRules(
        symbol="XUSDT",
        market=market,
        status="TRADING",
        base_asset="X",
        quote_asset="USDT",
        order_types=frozenset({"LIMIT", "MARKET"}),
        price_filter=PriceFilter(padded(min_price, pad), padded(max_price, pad), padded(tick, pad)),
        lot_size=lot,
        market_lot_size=market_lot,
        min_notional=None if use_new_notional else MinNotional(minimum),
        notional=Notional(minimum, True, D(0), False, 5) if use_new_notional else None,
    )


any_rules = st.sampled_from(list(MarketType)).flatmap(symbol_rules)


def min_notional_of(rules: SymbolRules) -> Decimal:
    chosen = rules.notional or rules.min_notional
    assert chosen is not None
    return chosen.min_notional


def exponent(value: Decimal) -> int:
    """Decimal places the value carries (negative), or 0 for zero and integers."""
    if value.is_zero():
        return 0
    places = value.normalize().as_tuple().exponent
    assert isinstance(places, int)
    return min(0, places)


def on_grid(value: Decimal, minimum: Decimal, step: Decimal) -> bool:
    anchor = minimum if value >= minimum else D(0)
    return (value - anchor) % step == 0


def too_small(violation_reason: str) -> bool:
    return " below " in violation_reason or "must be positive" in violation_reason


@MODEST
@given(rules=any_rules, quantity=amounts, market_order=st.booleans())
def test_quantity_rounds_down_onto_the_grid(
    rules: SymbolRules, quantity: Decimal, market_order: bool
) -> None:
    rounded = round_quantity(rules, quantity, market_order=market_order)
    lot = rules.lot_size
    market_lot = rules.market_lot_size
    assert lot is not None
    assert market_lot is not None
    chosen = market_lot if market_order and market_lot.step_size > 0 else lot
    step = chosen.step_size
    assert D(0) <= rounded <= quantity
    assert quantity - rounded < step  # the nearest grid point below, not any
    assert on_grid(rounded, chosen.min_qty, step)
    if quantity >= chosen.min_qty:
        assert (rounded - chosen.min_qty) % step == 0
        assert rounded >= chosen.min_qty
    # No more decimals than the grid itself needs.
    needed = min(0, exponent(step), exponent(chosen.min_qty))
    assert exponent(rounded) >= needed


@MODEST
@given(rules=any_rules, price=amounts, side=st.sampled_from(list(Side)))
def test_price_moves_only_to_the_passive_side(
    rules: SymbolRules, price: Decimal, side: Side
) -> None:
    rounded = round_price(rules, price, side)
    price_filter = rules.price_filter
    assert price_filter is not None
    tick = price_filter.tick_size
    if side is Side.BUY:
        assert price - tick < rounded <= price
    else:
        assert price <= rounded < price + tick
    assert on_grid(rounded, price_filter.min_price, tick)
    if rounded >= price_filter.min_price:
        assert (rounded - price_filter.min_price) % tick == 0


@MODEST
@given(rules=any_rules, quantity=amounts, price=amounts, side=st.sampled_from(list(Side)))
def test_rounded_limit_order_passes_unless_simply_too_small(
    rules: SymbolRules, quantity: Decimal, price: Decimal, side: Side
) -> None:
    lot, price_filter = rules.lot_size, rules.price_filter
    assert lot is not None
    assert price_filter is not None
    quantity = min(quantity, lot.max_qty)
    if price_filter.max_price > 0:
        price = min(price, price_filter.max_price)
    rounded_qty, rounded_price = round_order(
        rules, side=side, order_type=OrderType.LIMIT, quantity=quantity, price=price
    )
    assert rounded_price is not None
    violation = check_order(
        rules, side=side, order_type=OrderType.LIMIT, quantity=rounded_qty, price=rounded_price
    )
    is_small = (
        rounded_qty == 0
        or rounded_qty < lot.min_qty
        or rounded_price == 0
        or rounded_price < price_filter.min_price
        or rounded_qty * rounded_price < min_notional_of(rules)
    )
    if is_small:
        assert violation is not None
        assert too_small(violation.reason), violation
    else:
        assert violation is None, violation


@MODEST
@given(rules=any_rules, quantity=amounts, reference=amounts, side=st.sampled_from(list(Side)))
def test_rounded_market_order_passes_unless_simply_too_small(
    rules: SymbolRules, quantity: Decimal, reference: Decimal, side: Side
) -> None:
    lot, market_lot = rules.lot_size, rules.market_lot_size
    assert lot is not None
    assert market_lot is not None
    quantity = min(quantity, lot.max_qty, market_lot.max_qty)
    rounded_qty, no_price = round_order(
        rules, side=side, order_type=OrderType.MARKET, quantity=quantity, price=None
    )
    assert no_price is None
    violation = check_order(
        rules,
        side=side,
        order_type=OrderType.MARKET,
        quantity=rounded_qty,
        price=None,
        reference_price=reference,
    )
    is_small = (
        rounded_qty == 0
        or rounded_qty < max(lot.min_qty, market_lot.min_qty)
        or rounded_qty * reference < min_notional_of(rules)
    )
    if is_small:
        assert violation is not None
        assert too_small(violation.reason), violation
    else:
        assert violation is None, violation


finite_decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30),
    st.tuples(st.integers(-(10**20), 10**20), st.integers(-40, 40)).map(
        lambda ne: D(ne[0]).scaleb(ne[1])
    ),
)


@MODEST
@given(value=finite_decimals)
def test_format_decimal_has_no_exponent_and_round_trips(value: Decimal) -> None:
    text = format_decimal(value)
    assert "E" not in text
    assert "e" not in text
    assert D(text) == value
