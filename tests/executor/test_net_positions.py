"""`NetPositions` on top of the shared position rule: what it keeps of its own (an unknown
entry price after `seed`, the fill's price to the digit for a new position)."""

from __future__ import annotations

from decimal import Decimal

from app.domain import Fill, Side
from executor.positions import NetPosition, NetPositions


def _fill(n: int, side: Side, price: str, quantity: str) -> Fill:
    return Fill(
        n, f"c{n}", "BTCUSDT", side, Decimal(price), Decimal(quantity), Decimal(0), "USDT",
        False, n,
    )  # fmt: skip


def test_a_seeded_position_of_unknown_cost_keeps_no_average_until_a_new_one_opens() -> None:
    positions = NetPositions()
    positions.seed("BTCUSDT", Decimal(2), None)
    assert positions.add(_fill(1, Side.BUY, "100", "1")) == NetPosition(Decimal(3), None)
    assert positions.add(_fill(2, Side.SELL, "110", "1")) == NetPosition(Decimal(2), None)
    flipped = positions.add(_fill(3, Side.SELL, "90", "3"))
    assert flipped == NetPosition(Decimal(-1), Decimal(90))
    assert positions.add(_fill(4, Side.SELL, "80", "1")) == NetPosition(Decimal(-2), Decimal(85))


def test_a_new_position_takes_the_fill_price_to_the_digit() -> None:
    # Price x quantity has 30 significant digits: a weighted average would round it.
    price, quantity = "1.54916485057753", "0.077458242528292"
    opened = NetPositions().add(_fill(1, Side.BUY, price, quantity))
    assert str(opened.average_price) == price
