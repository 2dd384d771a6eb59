"""The paper fill model, one order against one market event, with hand-computed prices.

Model used throughout: maker 0.1 %, taker 0.2 %, slippage 10 bps (0.001). 1m bars: bar N opens
at 0 and closes at 59_999; the signal comes from bar N, closed.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain import BookTicker, Kline, OrderType, Side, TimeInForce
from executor.paper_fills import (
    NOT_CROSSED,
    WOULD_TAKE,
    Behaviour,
    Expire,
    FillAt,
    FillModel,
    OrderTerms,
    Rest,
    behaviour_of,
    match_book,
    match_kline,
)

D = Decimal
MODEL = FillModel(maker_fee=D("0.001"), taker_fee=D("0.002"), slippage_bps=D(10))
MINUTE = 60_000


def terms(
    side: Side = Side.BUY,
    behaviour: Behaviour = Behaviour.RESTING,
    price: str | None = "100",
    *,
    received: int = 59_999,
    latency: int = 50,
    arrival: dict[str, int] | None = None,
    expires: int | None = None,
) -> OrderTerms:
    return OrderTerms(
        side=side,
        behaviour=behaviour,
        quantity=D(2),
        price=None if price is None else D(price),
        received_ms=received,
        live_at_ms=received + latency,
        arrival_bars={"1m": 0} if arrival is None else arrival,
        expires_at_ms=expires,
    )


def book(bid: str, ask: str, ts: int = 0) -> BookTicker:
    return BookTicker("BTCUSDT", D(bid), D(1), D(ask), D(1), ts)


def bar(n: int, o: str, h: str, low: str, c: str, *, closed: bool = True) -> Kline:
    start = n * MINUTE
    return Kline(
        "BTCUSDT", "1m", start, start + MINUTE - 1, D(o), D(h), D(low), D(c), D(1), D(1), 1, closed
    )


# -- market orders ------------------------------------------------------------------------------


def test_market_buy_takes_the_ask_plus_slippage() -> None:
    outcome = match_book(
        MODEL, terms(behaviour=Behaviour.MARKET, price=None), book("100", "101", 60_049),
        60_049, first_look=True,
    )  # fmt: skip
    assert outcome == FillAt(D("101.101"), is_maker=False)  # 101 x 1.001


def test_market_sell_takes_the_bid_minus_slippage() -> None:
    t = terms(Side.SELL, Behaviour.MARKET, None)
    outcome = match_book(MODEL, t, book("100", "101"), 70_000, first_look=True)
    assert outcome == FillAt(D("99.900"), is_maker=False)  # 100 x 0.999


def test_a_book_ticker_before_the_live_time_is_not_used() -> None:
    t = terms(behaviour=Behaviour.MARKET, price=None, received=1_000, latency=50)
    assert match_book(MODEL, t, book("100", "101"), 1_049, first_look=True) is None
    assert match_book(MODEL, t, book("200", "201"), 1_050, first_look=True) == FillAt(
        D("201.201"), is_maker=False
    )


def test_market_on_klines_fills_at_the_next_bars_open_with_slippage() -> None:
    t = terms(Side.BUY, Behaviour.MARKET, None)
    assert match_kline(MODEL, t, bar(0, "90", "95", "80", "94"), first_look=True) is None
    first_update = bar(1, "96", "96", "96", "96", closed=False)
    assert match_kline(MODEL, t, first_update, first_look=True) == FillAt(
        D("96.096"), is_maker=False
    )
    sell = terms(Side.SELL, Behaviour.MARKET, None)
    assert match_kline(MODEL, sell, first_update, first_look=True) == FillAt(
        D("95.904"), is_maker=False
    )


# -- limit orders on klines ---------------------------------------------------------------------


def test_limit_never_fills_in_the_signal_bar_even_when_its_range_crosses() -> None:
    t = terms(price="100")
    signal_bar = bar(0, "105", "106", "90", "101")  # its low went far through 100
    assert match_kline(MODEL, t, signal_bar, first_look=True) is None


def test_limit_fills_at_the_limit_on_the_next_bar_that_crosses_it() -> None:
    t = terms(price="100")
    assert match_kline(MODEL, t, bar(1, "103", "104", "101", "102"), first_look=True) == Rest()
    assert match_kline(MODEL, t, bar(2, "102", "103", "99", "101"), first_look=False) == FillAt(
        D(100), is_maker=True
    )


def test_limit_gapped_through_fills_at_the_open() -> None:
    buy = terms(Side.BUY, price="100")
    assert match_kline(MODEL, buy, bar(1, "97", "99", "96", "98"), first_look=True) == FillAt(
        D(97), is_maker=True
    )
    sell = terms(Side.SELL, price="100")
    assert match_kline(MODEL, sell, bar(1, "104", "105", "103", "104"), first_look=True) == FillAt(
        D(104), is_maker=True
    )
    # A sell whose limit is only reached inside the bar gets the limit, not the high.
    assert match_kline(MODEL, sell, bar(1, "98", "103", "97", "99"), first_look=True) == FillAt(
        D(100), is_maker=True
    )


def test_an_order_that_arrived_during_a_bar_waits_for_the_next_one() -> None:
    # The bar in progress (open 60_000) was the latest seen when the order arrived at 90_000.
    t = terms(price="100", received=90_000, arrival={"1m": MINUTE})
    assert match_kline(MODEL, t, bar(1, "101", "101", "95", "99"), first_look=True) is None
    assert match_kline(MODEL, t, bar(2, "101", "101", "95", "99"), first_look=True) == FillAt(
        D(100), is_maker=True
    )


def test_without_any_bar_seen_only_bars_opening_after_the_order_count() -> None:
    t = terms(price="100", received=30_000, arrival={})
    assert match_kline(MODEL, t, bar(0, "101", "101", "95", "99"), first_look=True) is None
    assert match_kline(MODEL, t, bar(1, "101", "101", "95", "99"), first_look=True) == FillAt(
        D(100), is_maker=True
    )


def test_a_bar_that_ended_before_the_order_was_live_is_skipped() -> None:
    t = terms(price="100", latency=2 * MINUTE)  # live at 179_999: bar 1 ends at 119_999
    assert match_kline(MODEL, t, bar(1, "99", "99", "95", "99"), first_look=True) is None
    assert match_kline(MODEL, t, bar(2, "99", "99", "95", "99"), first_look=True) is not None


# -- limit orders on book tickers ---------------------------------------------------------------


def test_limit_on_book_fills_only_on_a_later_tick_at_the_limit_as_maker() -> None:
    t = terms(price="100", received=1_000, latency=50)
    crossing = book("98", "99")
    assert match_book(MODEL, t, crossing, 1_049, first_look=True) is None  # not live yet
    assert match_book(MODEL, t, crossing, 1_050, first_look=True) == Rest()  # the live instant
    assert match_book(MODEL, t, book("100.5", "101"), 1_051, first_look=False) == Rest()
    assert match_book(MODEL, t, crossing, 1_051, first_look=False) == FillAt(D(100), True)
    sell = terms(Side.SELL, price="100", received=1_000, latency=50)
    assert match_book(MODEL, sell, book("100", "100.5"), 1_051, first_look=False) == FillAt(
        D(100), True
    )


def test_ioc_fills_at_once_when_the_touch_crosses_never_beyond_its_limit() -> None:
    t = terms(behaviour=Behaviour.IMMEDIATE, price="100", received=1_000, latency=0)
    assert match_book(MODEL, t, book("98", "99"), 1_000, first_look=True) == FillAt(
        D("99.099"), is_maker=False
    )
    # ask 100 x 1.001 = 100.1 is beyond the 100.05 limit: capped at the limit.
    capped = terms(behaviour=Behaviour.IMMEDIATE, price="100.05", received=1_000, latency=0)
    assert match_book(MODEL, capped, book("99", "100"), 1_000, first_look=True) == FillAt(
        D("100.05"), is_maker=False
    )


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_ioc_and_fok_expire_without_an_immediate_cross(tif: TimeInForce) -> None:
    behaviour = behaviour_of(OrderType.LIMIT, tif)
    assert behaviour is Behaviour.IMMEDIATE
    t = terms(behaviour=behaviour, price="100", received=1_000, latency=0)
    assert match_book(MODEL, t, book("100.5", "101"), 1_000, first_look=True) == Expire(NOT_CROSSED)
    bar_t = terms(behaviour=behaviour, price="100")
    assert match_kline(MODEL, bar_t, bar(1, "101", "101", "95", "99"), first_look=True) == Expire(
        NOT_CROSSED
    )


def test_post_only_expires_when_it_would_take_and_otherwise_rests_as_maker() -> None:
    t = terms(behaviour=Behaviour.POST_ONLY, price="100", received=1_000, latency=0)
    assert match_book(MODEL, t, book("98", "99"), 1_000, first_look=True) == Expire(WOULD_TAKE)
    assert match_book(MODEL, t, book("99", "100.5"), 1_000, first_look=True) == Rest()
    assert match_book(MODEL, t, book("98", "99"), 1_001, first_look=False) == FillAt(D(100), True)
    bar_t = terms(behaviour=Behaviour.POST_ONLY, price="100")
    assert match_kline(MODEL, bar_t, bar(1, "99", "99", "98", "99"), first_look=True) == Expire(
        WOULD_TAKE
    )
    assert match_kline(MODEL, bar_t, bar(1, "101", "102", "99", "101"), first_look=True) == FillAt(
        D(100), True
    )


def test_an_expired_ttl_stops_matching() -> None:
    t = terms(price="100", received=1_000, latency=0, expires=2_000)
    assert match_book(MODEL, t, book("98", "99"), 1_999, first_look=False) == FillAt(D(100), True)
    assert match_book(MODEL, t, book("98", "99"), 2_000, first_look=False) is None
    late = terms(price="100", expires=2 * MINUTE)
    assert match_kline(MODEL, late, bar(2, "99", "99", "95", "99"), first_look=True) is None


# -- fees and behaviours ------------------------------------------------------------------------


def test_fees_maker_and_taker_in_quote() -> None:
    assert MODEL.fee(D("100"), D("2"), is_maker=True) == D("0.2")
    assert MODEL.fee(D("100"), D("2"), is_maker=False) == D("0.4")
    assert MODEL.slippage == D("0.001")


@pytest.mark.parametrize(
    ("order_type", "tif", "expected"),
    [
        (OrderType.MARKET, None, Behaviour.MARKET),
        (OrderType.LIMIT, None, Behaviour.RESTING),
        (OrderType.LIMIT, TimeInForce.GTC, Behaviour.RESTING),
        (OrderType.LIMIT, TimeInForce.GTD, Behaviour.RESTING),
        (OrderType.LIMIT, TimeInForce.GTX, Behaviour.POST_ONLY),
        (OrderType.LIMIT_MAKER, None, Behaviour.POST_ONLY),
        (OrderType.STOP_MARKET, None, None),
        (OrderType.TAKE_PROFIT_LIMIT, TimeInForce.GTC, None),
    ],
)
def test_behaviour_of(
    order_type: OrderType, tif: TimeInForce | None, expected: Behaviour | None
) -> None:
    assert behaviour_of(order_type, tif) is expected
