"""One-way position arithmetic: averaging, realised PnL on reduce/close/flip, margins."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.sim.futures_positions import (
    OpenOrderLoad,
    Position,
    apply_fill,
    initial_margin,
    isolated_wallet,
    money,
    open_order_margin,
    unrealized_pnl,
)

D = Decimal


def test_increasing_averages_the_entry_price_by_quantity() -> None:
    p = Position("BTCUSDT", 10)
    apply_fill(p, "BUY", D("1"), D("100"))
    effect = apply_fill(p, "BUY", D("3"), D("200"))
    assert p.amount == D("4")
    assert p.entry_price == D("175")
    assert effect.realized_pnl == 0
    assert effect.opened_qty == D("3")


def test_reducing_a_long_realises_pnl_and_keeps_the_entry() -> None:
    p = Position("BTCUSDT", 10, amount=D("2"), entry_price=D("100"))
    effect = apply_fill(p, "SELL", D("0.5"), D("110"))
    assert effect.realized_pnl == D("5.00000000")
    assert effect.closed_qty == D("0.5")
    assert p.amount == D("1.5")
    assert p.entry_price == D("100")
    assert p.accumulated_realized == D("5")


def test_closing_a_short_at_a_loss_and_resetting_entry() -> None:
    p = Position("BTCUSDT", 10, amount=D("-1"), entry_price=D("100"))
    effect = apply_fill(p, "BUY", D("1"), D("104"))
    assert effect.realized_pnl == D("-4")
    assert p.amount == 0
    assert p.entry_price == 0


def test_flip_closes_then_opens_the_rest_at_the_fill_price() -> None:
    p = Position("BTCUSDT", 10, amount=D("1"), entry_price=D("100"))
    effect = apply_fill(p, "SELL", D("3"), D("90"))
    assert effect.realized_pnl == D("-10")
    assert effect.closed_qty == D("1")
    assert effect.opened_qty == D("2")
    assert p.amount == D("-2")
    assert p.entry_price == D("90")


def test_fill_quantity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        apply_fill(Position("BTCUSDT", 10), "BUY", D(0), D(1))


def test_unrealised_pnl_and_initial_margin_at_mark() -> None:
    p = Position("BTCUSDT", 20, amount=D("-2"), entry_price=D("100"))
    assert unrealized_pnl(p, D("95")) == D("10")
    assert initial_margin(p, D("95")) == D("9.5")
    assert isolated_wallet(p) == 0  # cross
    p.isolated = True
    assert isolated_wallet(p) == D("10")


def test_open_order_margin_ignores_the_part_that_closes_and_reduce_only() -> None:
    p = Position("BTCUSDT", 10, amount=D("1"), entry_price=D("100"))
    sells = [OpenOrderLoad("SELL", D("3"), D("100"))]
    # 1 of the 3 closes the long: 2 * 100 / 10 open new exposure
    assert open_order_margin(p, sells) == D("20")
    assert open_order_margin(p, [OpenOrderLoad("SELL", D("3"), D("100"), True)]) == 0
    both = [*sells, OpenOrderLoad("BUY", D("5"), D("100"))]
    assert open_order_margin(p, both) == D("50")  # the larger side


def test_money_rounds_half_up_to_8_decimals() -> None:
    assert money(D("0.000000005")) == D("0.00000001")
    assert money(D("-1.234567894")) == D("-1.23456789")
