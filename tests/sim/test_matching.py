"""The simulator's fill arithmetic: crossing, taker slippage, resting participation, faults."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.sim.matching import FillModel, Quote, crosses, resting_fill_quantity, taker_fills

D = Decimal
TICK = D("0.01")
STEP = D("0.001")


def quote(
    bid: str = "100.00",
    ask: str = "100.10",
    *,
    bid_qty: str = "1",
    ask_qty: str = "1",
    last: str = "100.05",
    volume: str = "10",
) -> Quote:
    return Quote("BTCUSDT", 1_000, D(bid), D(ask), D(bid_qty), D(ask_qty), D(last), D(volume))


def test_crosses_compares_against_the_opposite_side() -> None:
    q = quote()
    assert crosses("BUY", D("100.10"), q)
    assert not crosses("BUY", D("100.09"), q)
    assert crosses("SELL", D("100.00"), q)
    assert not crosses("SELL", D("100.01"), q)
    with pytest.raises(ValueError, match="BUY or SELL"):
        crosses("buy", D(1), q)


def test_market_buy_within_top_of_book_fills_at_the_ask() -> None:
    fills = taker_fills(
        side="BUY",
        quantity=D("0.5"),
        limit_price=None,
        quote=quote(),
        model=FillModel(),
        tick_size=TICK,
        step_size=STEP,
    )
    assert fills == [(D("100.10"), D("0.5"))]


def test_market_buy_beyond_top_of_book_slips_in_chunks_rounded_up() -> None:
    fills = taker_fills(
        side="BUY",
        quantity=D("2.5"),
        limit_price=None,
        quote=quote(),
        model=FillModel(slippage_bps=D("10")),
        tick_size=TICK,
        step_size=STEP,
    )
    # 100.10 * 1.001 = 100.2001 -> 100.21 ; * 1.002 = 100.3002 -> 100.31
    assert fills == [(D("100.10"), D(1)), (D("100.21"), D(1)), (D("100.31"), D("0.5"))]


def test_market_sell_slips_downwards_rounded_down() -> None:
    fills = taker_fills(
        side="SELL",
        quantity=D("1.5"),
        limit_price=None,
        quote=quote(),
        model=FillModel(slippage_bps=D("10")),
        tick_size=TICK,
        step_size=STEP,
    )
    assert fills == [(D("100.00"), D(1)), (D("99.90"), D("0.5"))]


def test_limit_stops_slippage_at_the_limit_price() -> None:
    fills = taker_fills(
        side="BUY",
        quantity=D("3"),
        limit_price=D("100.25"),
        quote=quote(),
        model=FillModel(slippage_bps=D("10")),
        tick_size=TICK,
        step_size=STEP,
    )
    assert fills == [(D("100.10"), D(1)), (D("100.21"), D(1))]


def test_non_crossing_limit_takes_nothing() -> None:
    assert (
        taker_fills(
            side="SELL",
            quantity=D(1),
            limit_price=D("100.01"),
            quote=quote(),
            model=FillModel(),
            tick_size=TICK,
            step_size=STEP,
        )
        == []
    )


def test_zero_slippage_takes_everything_at_best() -> None:
    fills = taker_fills(
        side="BUY",
        quantity=D("5.0004"),
        limit_price=None,
        quote=quote(),
        model=FillModel(slippage_bps=D(0)),
        tick_size=TICK,
        step_size=STEP,
    )
    assert fills == [(D("100.10"), D("5.000"))]


def test_partial_fraction_splits_every_fill() -> None:
    fills = taker_fills(
        side="BUY",
        quantity=D(1),
        limit_price=None,
        quote=quote(ask_qty="5"),
        model=FillModel(partial_fraction=D("0.3")),
        tick_size=TICK,
        step_size=STEP,
    )
    assert fills == [(D("100.10"), D("0.3"))] * 3 + [(D("100.10"), D("0.1"))]


def test_resting_buy_fills_fully_when_traded_through() -> None:
    got = resting_fill_quantity(
        side="BUY",
        limit_price=D("100.20"),
        remaining=D(3),
        original=D(3),
        quote=quote(),
        model=FillModel(),
        step_size=STEP,
    )
    assert got == D(3)


def test_resting_sell_not_reached_fills_nothing() -> None:
    got = resting_fill_quantity(
        side="SELL",
        limit_price=D("100.11"),
        remaining=D(3),
        original=D(3),
        quote=quote(),
        model=FillModel(),
        step_size=STEP,
    )
    assert got == 0


def test_resting_touch_is_capped_by_participation() -> None:
    q = quote(bid="99.90", ask="100.00", last="100.00", volume="2.0009")
    got = resting_fill_quantity(
        side="BUY",
        limit_price=D("100.00"),
        remaining=D(3),
        original=D(3),
        quote=q,
        model=FillModel(participation=D("0.25")),
        step_size=STEP,
    )
    assert got == D("0.500")
    uncapped = resting_fill_quantity(
        side="BUY",
        limit_price=D("100.00"),
        remaining=D(3),
        original=D(3),
        quote=q,
        model=FillModel(participation=D(0)),
        step_size=STEP,
    )
    assert uncapped == D(3)


def test_resting_fill_capped_by_partial_fraction_of_original() -> None:
    got = resting_fill_quantity(
        side="SELL",
        limit_price=D("99.00"),
        remaining=D("0.8"),
        original=D(1),
        quote=quote(),
        model=FillModel(partial_fraction=D("0.0001")),
        step_size=STEP,
    )
    assert got == STEP  # at least one step
