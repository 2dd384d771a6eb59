"""Tests for ``SimMarketFeed``: Binance frame shapes, decoding by the real client's parser,
closed flags, timing, funding times and determinism."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance.parse_market import decode_market_frame
from exchange.sim.market_feed import (
    SimMarketFeed,
    SymbolMarket,
    book_quantity_unit,
    next_funding_time_ms,
)
from exchange.sim.price_sources import ReplayMarket
from exchange.sim.synthetic import SyntheticMarket

MINUTE = 60_000
HOUR = 3_600_000
T0 = 1_700_000_040_000  # a whole minute
TICK = Decimal("0.1")
KLINE_KEYS = ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
BTC_1M, BTC_BOOK, BTC_MARK = "btcusdt@kline_1m", "btcusdt@bookTicker", "btcusdt@markPrice@1s"


def synthetic(symbol: str = "BTCUSDT", *, start_ms: int = T0, seed: int = 5) -> SyntheticMarket:
    return SyntheticMarket(
        symbol, seed=seed, start_price=Decimal(30_000), tick_size=TICK, start_ms=start_ms
    )


def make_feed(
    *, futures: bool = False, seed: int = 1, updates: int = 4, start_ms: int = T0, **market: Any
) -> SimMarketFeed:
    return SimMarketFeed(
        {"BTCUSDT": synthetic(start_ms=start_ms)},
        {"BTCUSDT": SymbolMarket(TICK, futures=futures, **market)},
        seed=seed,
        updates_per_bar=updates,
    )


def data(frames: list[tuple[str, bytes]], stream: str) -> list[dict[str, Any]]:
    return [json.loads(frame) for name, frame in frames if name == stream]


def test_kline_frames_have_binances_shape_and_decode_to_the_bars() -> None:
    feed = make_feed(updates=4)
    frames = feed.frames_until(T0 + 2 * MINUTE)
    klines = data(frames, BTC_1M)
    assert len(klines) == 8
    reference = synthetic()
    bars = [reference.next_bar(), reference.next_bar()]
    for index, event in enumerate(klines):
        assert list(event) == ["e", "E", "s", "k"]
        assert (event["e"], event["s"]) == ("kline", "BTCUSDT")
        body = event["k"]
        assert list(body) == KLINE_KEYS
        bar = bars[index // 4]
        assert (body["t"], body["T"], body["s"], body["i"]) == (
            bar.open_time_ms, bar.close_time_ms, "BTCUSDT", "1m"
        )  # fmt: skip
        assert event["E"] == bar.open_time_ms + MINUTE * (index % 4 + 1) // 4
        for key in ("o", "c", "h", "l", "v", "q", "V", "Q", "B"):
            assert isinstance(body[key], str), key
            assert "E" not in body[key]
            assert Decimal(body[key]).is_finite()
        assert isinstance(body["n"], int)
        assert body["L"] - body["f"] + 1 == body["n"]
        assert Decimal(body["V"]) <= Decimal(body["v"])
    closed = [event["k"] for event in klines if event["k"]["x"]]
    assert [k["x"] for k in (e["k"] for e in klines)] == [False, False, False, True] * 2
    assert [
        (Decimal(k["o"]), Decimal(k["c"]), Decimal(k["h"]), Decimal(k["l"])) for k in closed
    ] == [(bar.open, bar.close, bar.high, bar.low) for bar in bars]
    decoded = [decode_market_frame(frame) for name, frame in frames if name == BTC_1M]
    assert [f.message for f in decoded if isinstance(f.message, Kline) and f.message.closed] == bars
    assert klines[-1]["E"] == bars[-1].close_time_ms + 1  # the closed update ends the bar


def test_each_bar_is_closed_exactly_once_over_many_calls() -> None:
    feed = make_feed(updates=3)
    closed: list[int] = []
    for second in range(1, 10 * 60 + 1):
        for name, frame in feed.frames_until(T0 + second * 1_000):
            message = decode_market_frame(frame).message
            if name == BTC_1M and isinstance(message, Kline) and message.closed:
                closed.append(message.open_time_ms)
    assert closed == [T0 + index * MINUTE for index in range(10)]


def test_spot_book_ticker_has_no_event_fields_and_decodes() -> None:
    frames = make_feed(spread_ticks=3).frames_until(T0 + MINUTE)
    books = data(frames, BTC_BOOK)
    assert len(books) == 4
    update_ids = []
    for book in books:
        assert list(book) == ["u", "s", "b", "B", "a", "A"]
        assert Decimal(book["a"]) - Decimal(book["b"]) == 3 * TICK
        assert Decimal(book["B"]) > 0
        assert Decimal(book["A"]) > 0
        update_ids.append(book["u"])
    assert update_ids == sorted(set(update_ids))
    decoded = [decode_market_frame(frame) for name, frame in frames if name == BTC_BOOK]
    assert all(isinstance(f.message, BookTicker) for f in decoded)
    assert [f.stream for f in decoded] == [BTC_BOOK] * 4
    closes = [Decimal(e["k"]["c"]) for e in data(frames, BTC_1M)]
    assert [f.message.bid_price for f in decoded if isinstance(f.message, BookTicker)] == closes


def test_futures_book_ticker_carries_event_and_transaction_times() -> None:
    frames = make_feed(futures=True).frames_until(T0 + MINUTE)
    books = data(frames, BTC_BOOK)
    kline_times = [event["E"] for event in data(frames, BTC_1M)]
    assert [list(book) for book in books] == [["e", "u", "E", "T", "s", "b", "B", "a", "A"]] * 4
    assert [book["E"] for book in books] == [book["T"] for book in books] == kline_times
    message = decode_market_frame(dict(frames)[BTC_BOOK]).message
    assert isinstance(message, BookTicker)
    assert message.ts_ms == books[-1]["T"]


def test_mark_price_every_second_near_the_last_close() -> None:
    frames = make_feed(futures=True, basis_ticks=2).frames_until(T0 + 2 * MINUTE)
    marks = data(frames, BTC_MARK)
    assert [mark["E"] for mark in marks] == list(range(T0, T0 + 2 * MINUTE + 1, 1_000))
    last_close = Decimal(30_000)
    for name, frame in frames:
        event = json.loads(frame)
        if name == BTC_1M:
            last_close = Decimal(event["k"]["c"])
        elif name == BTC_MARK:
            assert list(event) == ["e", "E", "s", "p", "i", "P", "r", "T"]
            assert event["e"] == "markPriceUpdate"
            assert Decimal(event["i"]) == last_close
            assert abs(Decimal(event["p"]) - last_close) <= 2 * TICK
            assert abs(Decimal(event["r"])) < Decimal("0.001")
    decoded = decode_market_frame(dict(frames)[BTC_MARK])
    assert isinstance(decoded.message, MarkPrice)
    assert decoded.message.next_funding_time_ms == marks[-1]["T"]
    assert decoded.message.funding_rate == Decimal(marks[-1]["r"])


def test_spot_symbols_have_no_mark_price() -> None:
    feed = make_feed()
    assert BTC_MARK not in feed.streams
    assert {name for name, _ in feed.frames_until(T0 + MINUTE)} == {BTC_1M, BTC_BOOK}


@pytest.mark.parametrize(
    ("now_ms", "hours", "expected"),
    [
        (0, 8, 8 * HOUR),
        (8 * HOUR - 1, 8, 8 * HOUR),
        (8 * HOUR, 8, 16 * HOUR),
        (5 * HOUR, 4, 8 * HOUR),
        (T0, 8, 1_700_006_400_000),  # 2023-11-15 00:00 UTC
    ],
)
def test_next_funding_time_is_the_next_interval_boundary(
    now_ms: int, hours: int, expected: int
) -> None:
    assert next_funding_time_ms(now_ms, hours) == expected


def test_funding_time_moves_on_once_it_passes_and_the_rate_is_redrawn() -> None:
    boundary = 1_700_006_400_000  # a multiple of 8 h
    feed = make_feed(futures=True, start_ms=boundary - 2 * MINUTE)
    marks = data(feed.frames_until(boundary + 2 * MINUTE), BTC_MARK)
    before = [mark for mark in marks if mark["E"] < boundary]
    after = [mark for mark in marks if mark["E"] >= boundary]
    assert {mark["T"] for mark in before} == {boundary}
    assert {mark["T"] for mark in after} == {boundary + 8 * HOUR}
    assert len({mark["r"] for mark in before}) == len({mark["r"] for mark in after}) == 1
    assert before[-1]["r"] != after[0]["r"]


def test_funding_interval_is_per_symbol() -> None:
    feed = make_feed(futures=True, funding_interval_hours=4)
    marks = data(feed.frames_until(T0 + 1_000), BTC_MARK)
    assert {mark["T"] for mark in marks} == {next_funding_time_ms(T0, 4)}


def test_same_seed_same_frames_whatever_the_call_pattern() -> None:
    whole = make_feed(futures=True, seed=9).frames_until(T0 + 5 * MINUTE)
    stepped = make_feed(futures=True, seed=9)
    pieces = [f for t in range(T0, T0 + 5 * MINUTE + 1, 7_777) for f in stepped.frames_until(t)]
    pieces += stepped.frames_until(T0 + 5 * MINUTE)
    assert pieces == whole
    assert make_feed(futures=True, seed=10).frames_until(T0 + 5 * MINUTE) != whole


def test_frames_are_in_time_order_across_symbols() -> None:
    feed = SimMarketFeed(
        {"BTCUSDT": synthetic(), "ETHUSDT": synthetic("ETHUSDT", seed=6)},
        {"BTCUSDT": SymbolMarket(TICK, futures=True), "ETHUSDT": SymbolMarket(TICK, futures=True)},
        seed=2,
        updates_per_bar=5,
    )
    frames = feed.frames_until(T0 + 3 * MINUTE)
    times = [json.loads(frame)["E"] for _, frame in frames]
    assert times == sorted(times)
    assert {name.split("@")[0] for name, _ in frames} == {"btcusdt", "ethusdt"}
    assert feed.frames_until(T0 + 3 * MINUTE) == []
    with pytest.raises(ValueError, match="cannot go back"):
        feed.frames_until(T0)


def test_an_exhausted_source_stops_its_streams() -> None:
    bar = synthetic().next_bar()
    feed = SimMarketFeed({"BTCUSDT": ReplayMarket([bar])}, {"BTCUSDT": SymbolMarket(TICK)}, seed=1)
    assert len(feed.frames_until(T0 + MINUTE)) == 8
    assert feed.frames_until(T0 + 60 * MINUTE) == []


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="no SymbolMarket"):
        SimMarketFeed({"BTCUSDT": synthetic()}, {}, seed=1)
    with pytest.raises(ValueError, match="updates_per_bar"):
        make_feed(updates=0)
    with pytest.raises(ValueError, match="invalid market"):
        SymbolMarket(TICK, spread_ticks=0)


@pytest.mark.parametrize(
    ("price", "step", "unit"),
    [
        ("60000", "0.00001", "0.001"),  # BTCUSDT: the unit it always had
        ("3000", "0.0001", "0.0200"),
        ("1", "0.1", "60.0"),  # a coin worth 1: 60 coins, not 0.001
        ("2000000", "0.001", "0.001"),  # under one step: one step
    ],
)
def test_book_quantity_unit_is_worth_about_60_quote(price: str, step: str, unit: str) -> None:
    assert book_quantity_unit(Decimal(price), Decimal(step)) == Decimal(unit)


def test_top_of_book_depth_is_realistic_for_a_cheap_coin() -> None:
    """With a fixed 0.001 unit a coin at 1 quoted at most 5 units: a 50 USDT market order
    then walked twenty levels. Depth scaled to the price quotes 60 to 300,000 quote units."""
    price = Decimal(1)
    source = SyntheticMarket(
        "XAAUSDT", seed=3, start_price=price, tick_size=Decimal("0.0001"), start_ms=T0
    )
    unit = book_quantity_unit(price, Decimal("0.1"))
    feed = SimMarketFeed(
        {"XAAUSDT": source},
        {"XAAUSDT": SymbolMarket(Decimal("0.0001"), book_quantity_unit=unit)},
        seed=2,
    )
    books = [
        decode_market_frame(frame).message
        for name, frame in feed.frames_until(T0 + 60 * MINUTE)
        if name.endswith("@bookTicker")
    ]
    notionals = sorted(b.ask_price * b.ask_quantity for b in books if isinstance(b, BookTicker))
    assert len(notionals) >= 200
    assert notionals[0] >= 50  # one unit (~60 quote) at a price that drifted a little
    assert notionals[len(notionals) // 2] > 10_000


def test_book_quantity_unit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="book_quantity_unit"):
        SymbolMarket(TICK, book_quantity_unit=Decimal(0))
