"""The shared average-cost rule: one position, fill by fill (`app.domain.position_after_fill`)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import Fill, PositionChange, PositionState, Side, position_after_fill


def _fill(side: Side, price: str, quantity: str, fee: str = "0", asset: str = "USDT") -> Fill:
    return Fill(
        1, "c1", "BTCUSDT", side, Decimal(price), Decimal(quantity), Decimal(fee), asset, False, 1
    )


def _book(*fills: Fill) -> PositionChange:
    """The change made by the last fill, after booking all of them from flat."""
    position = PositionState()
    change = PositionChange(position, position)
    for fill in fills:
        change = position_after_fill(position, fill)
        position = change.after
    return change


def _flags(change: PositionChange) -> tuple[bool, bool, bool]:
    return change.opened, change.reduced, change.closed_out


def test_opening_takes_the_fill_price() -> None:
    change = _book(_fill(Side.BUY, "100.5", "2"))
    assert change.after == PositionState(Decimal(2), Decimal("100.5"), Decimal(0))
    assert _flags(change) == (True, False, False)
    assert (change.closed_quantity, change.closed_pnl) == (Decimal(0), Decimal(0))


def test_growing_moves_the_average_to_the_weighted_cost() -> None:
    change = _book(_fill(Side.BUY, "100", "1"), _fill(Side.BUY, "110", "3"))
    # (1 x 100 + 3 x 110) / 4
    assert change.after == PositionState(Decimal(4), Decimal("107.5"), Decimal(0))
    assert _flags(change) == (False, False, False)
    short = _book(_fill(Side.SELL, "50", "2"), _fill(Side.SELL, "47", "1"))
    assert short.after == PositionState(Decimal(-3), Decimal(49), Decimal(0))


def test_reducing_realizes_at_the_average_and_keeps_it() -> None:
    change = _book(
        _fill(Side.BUY, "100", "1"), _fill(Side.BUY, "110", "3"), _fill(Side.SELL, "120", "1.5")
    )
    # 1.5 x (120 - 107.5)
    assert change.after == PositionState(Decimal("2.5"), Decimal("107.5"), Decimal("18.75"))
    assert _flags(change) == (False, True, False)
    assert (change.closed_quantity, change.closed_pnl) == (Decimal("1.5"), Decimal("18.75"))
    short = _book(_fill(Side.SELL, "50", "2"), _fill(Side.BUY, "45", "0.5"))
    # A short gains when the price falls: 0.5 x (50 - 45).
    assert short.after == PositionState(Decimal("-1.5"), Decimal(50), Decimal("2.5"))


def test_closing_to_flat_clears_the_average() -> None:
    change = _book(_fill(Side.BUY, "100", "2"), _fill(Side.SELL, "90", "2"))
    assert change.after == PositionState(Decimal(0), Decimal(0), Decimal(-20))
    assert _flags(change) == (False, True, True)
    short = _book(_fill(Side.SELL, "50", "2"), _fill(Side.BUY, "40", "2"))
    assert short.after == PositionState(Decimal(0), Decimal(0), Decimal(20))
    assert _flags(short) == (False, True, True)


def test_flipping_long_to_short_opens_the_rest_at_the_fill_price() -> None:
    change = _book(_fill(Side.BUY, "100", "1"), _fill(Side.SELL, "130", "3"))
    assert change.after == PositionState(Decimal(-2), Decimal(130), Decimal(30))
    assert _flags(change) == (True, True, True)
    assert (change.closed_quantity, change.closed_pnl) == (Decimal(1), Decimal(30))


def test_flipping_short_to_long_opens_the_rest_at_the_fill_price() -> None:
    change = _book(_fill(Side.SELL, "50", "2"), _fill(Side.BUY, "40", "3"))
    assert change.after == PositionState(Decimal(1), Decimal(40), Decimal(20))
    assert _flags(change) == (True, True, True)
    assert (change.closed_quantity, change.closed_pnl) == (Decimal(2), Decimal(20))


def test_results_are_exact_decimals() -> None:
    position = position_after_fill(PositionState(), _fill(Side.BUY, "0.1", "0.3")).after
    position = position_after_fill(position, _fill(Side.BUY, "0.2", "0.3")).after
    assert position.average_price == Decimal("0.15")
    closed = position_after_fill(position, _fill(Side.SELL, "0.3", "0.6")).after
    assert closed == PositionState(Decimal("0.0"), Decimal(0), Decimal("0.090"))


def test_a_quote_fee_is_charged_to_pnl_and_leaves_the_quantity() -> None:
    opened = position_after_fill(
        PositionState(), _fill(Side.BUY, "100", "1", "0.1", "USDT"), fee=Decimal("0.1")
    )
    assert opened.after == PositionState(Decimal(1), Decimal(100), Decimal("-0.1"))
    # A flipping fill's fee is charged whole; the gross PnL of the closed part is apart.
    flipped = position_after_fill(
        opened.after, _fill(Side.SELL, "110", "3", "0.33", "USDT"), fee=Decimal("0.33")
    )
    assert flipped.after == PositionState(Decimal(-2), Decimal(110), Decimal("9.57"))
    assert flipped.closed_pnl == Decimal(10)


def test_a_base_fee_shrinks_the_held_quantity_at_the_same_cost_price() -> None:
    # Spot takes a buyer's fee in BTC: 0.999 held. The caller values the fee (0.001 BTC at
    # the fill price) and it is charged to PnL; the average is the fill's price per held unit.
    change = position_after_fill(
        PositionState(), _fill(Side.BUY, "100", "1", "0.001", "BTC"), fee=Decimal("0.1")
    )
    assert change.after == PositionState(Decimal("0.999"), Decimal(100), Decimal("-0.1"))
    grown = position_after_fill(change.after, _fill(Side.BUY, "110", "1", "0.001", "BTC"))
    assert grown.after.quantity == Decimal("1.998")
    assert grown.after.average_price == Decimal(105)
    # Selling it all (the seller's fee is in USDT): 1.998 x (120 - 105), less both fees.
    sold = position_after_fill(
        grown.after, _fill(Side.SELL, "120", "1.998", "0.2", "USDT"), fee=Decimal("0.2")
    )
    assert sold.after == PositionState(Decimal("0.000"), Decimal(0), Decimal("29.670"))


def test_no_fee_is_charged_unless_given() -> None:
    change = position_after_fill(PositionState(), _fill(Side.BUY, "100", "1", "0.05", "BNB"))
    assert change.after.realized_pnl == 0


_prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2)
_quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100), places=3)


@given(st.lists(st.tuples(st.sampled_from(Side), _prices, _quantities), max_size=12), _prices)
@settings(max_examples=300)
def test_realized_plus_open_pnl_equals_the_cash_flow(
    trades: list[tuple[Side, Decimal, Decimal]], mark: Decimal
) -> None:
    """What was realized plus what the open position is worth over its cost equals the cash
    paid and received plus the holding at the mark (no fees): no PnL appears or vanishes."""
    position = PositionState()
    cash = Decimal(0)
    for side, price, quantity in trades:
        fill = _fill(side, str(price), str(quantity))
        change = position_after_fill(position, fill)
        assert change.after.quantity == position.quantity + fill.position_change
        assert (change.after.average_price == 0) == (change.after.quantity == 0)
        position = change.after
        cash -= fill.position_change * price
    booked = position.realized_pnl + position.quantity * (mark - position.average_price)
    assert abs(booked - (cash + position.quantity * mark)) < Decimal("1e-18")
