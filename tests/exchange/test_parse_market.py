"""Binance market frames and REST bodies (shapes from the Binance docs) into domain types."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest

from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance import parse_market, wire_market
from exchange.binance.parse_market import (
    ControlReply,
    FundingInfo,
    MalformedFrame,
    MarketFrame,
    ServerShutdown,
    UnknownEvent,
    decode_market_frame,
    parse_funding_info,
    parse_premium_index,
    parse_rest_book_ticker,
    parse_rest_klines,
    parse_server_time,
    stream_names,
)

SPOT_KLINE = {
    "e": "kline",
    "E": 1672515782136,
    "s": "BNBBTC",
    "k": {
        "t": 1672515780000,
        "T": 1672515839999,
        "s": "BNBBTC",
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "0.0010",
        "c": "0.0020",
        "h": "0.0025",
        "l": "0.0015",
        "v": "1000",
        "n": 100,
        "x": False,
        "q": "1.0000",
        "V": "500",
        "Q": "0.500",
        "B": "123456",
    },
}
SPOT_KLINE_EXPECTED = Kline(
    symbol="BNBBTC",
    interval="1m",
    open_time_ms=1672515780000,
    close_time_ms=1672515839999,
    open=Decimal("0.0010"),
    high=Decimal("0.0025"),
    low=Decimal("0.0015"),
    close=Decimal("0.0020"),
    volume=Decimal("1000"),
    quote_volume=Decimal("1.0000"),
    trades=100,
    closed=False,
)
SPOT_BOOK_TICKER = {
    "u": 400900217,
    "s": "BNBUSDT",
    "b": "25.35190000",
    "B": "31.21000000",
    "a": "25.36520000",
    "A": "40.66000000",
}
FUTURES_BOOK_TICKER = {
    "e": "bookTicker",
    "u": 400900217,
    "E": 1568014460893,
    "T": 1568014460891,
    "s": "BNBUSDT",
    "b": "25.35190000",
    "B": "31.21000000",
    "a": "25.36520000",
    "A": "40.66000000",
}
MARK_PRICE = {
    "e": "markPriceUpdate",
    "E": 1562305380000,
    "s": "BTCUSDT",
    "p": "11794.15000000",
    "i": "11784.62659091",
    "P": "11784.25641265",
    "r": "0.00038167",
    "T": 1562306400000,
}


def raw(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def combined(stream: str, data: object) -> bytes:
    return raw({"stream": stream, "data": data})


def with_kline(**changes: object) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(SPOT_KLINE))
    event["k"].update(changes)
    return event


def kline(
    symbol: str, interval: str, open_ms: int, close_ms: int, prices: str, trades: int, closed: bool
) -> Kline:
    """``prices``: open high low close volume quote-volume, space-separated, as Binance sends."""
    o, h, low, c, v, q = (Decimal(text) for text in prices.split())
    return Kline(symbol, interval, open_ms, close_ms, o, h, low, c, v, q, trades, closed)


def assert_same_decimal(value: Decimal, text: str) -> None:
    assert isinstance(value, Decimal)
    assert str(value) == text  # the exponent is kept: "0.0010" stays "0.0010"


# --- klines --------------------------------------------------------------------------------


def test_spot_kline_raw_open_bar_every_field() -> None:
    frame = decode_market_frame(raw(SPOT_KLINE))

    assert frame == MarketFrame("bnbbtc@kline_1m", SPOT_KLINE_EXPECTED)
    kline = frame.message
    assert type(kline) is Kline
    assert_same_decimal(kline.open, "0.0010")
    assert_same_decimal(kline.high, "0.0025")
    assert_same_decimal(kline.low, "0.0015")
    assert_same_decimal(kline.close, "0.0020")
    assert_same_decimal(kline.volume, "1000")
    assert_same_decimal(kline.quote_volume, "1.0000")


def test_spot_kline_combined_closed_bar_keeps_the_stream_name() -> None:
    frame = decode_market_frame(combined("bnbbtc@kline_1m", with_kline(x=True)))

    assert frame == MarketFrame(
        "bnbbtc@kline_1m", dataclasses.replace(SPOT_KLINE_EXPECTED, closed=True)
    )


@pytest.mark.parametrize("closed", [False, True])
def test_futures_kline_combined(closed: bool) -> None:
    # fmt: off
    k = {
        "t": 1638747660000, "T": 1638747719999, "s": "BTCUSDT", "i": "5m", "f": 100, "L": 200,
        "o": "41000.10", "c": "41010.00", "h": "41020.50", "l": "40990.00", "v": "12.345",
        "n": 77, "x": closed, "q": "506172.12345", "V": "6", "Q": "246000.5", "B": "0",
    }
    # fmt: on
    event = {"e": "kline", "E": 1638747660000, "s": "BTCUSDT", "k": k}

    frame = decode_market_frame(combined("btcusdt@kline_5m", event))

    prices = "41000.10 41020.50 40990.00 41010.00 12.345 506172.12345"
    expected = kline("BTCUSDT", "5m", 1638747660000, 1638747719999, prices, 77, closed)
    assert frame == MarketFrame("btcusdt@kline_5m", expected)
    assert isinstance(frame.message, Kline)
    assert_same_decimal(frame.message.close, "41010.00")


def test_str_and_bytes_input_decode_alike() -> None:
    frame = combined("bnbbtc@kline_1m", SPOT_KLINE)

    assert decode_market_frame(frame.decode()) == decode_market_frame(frame)
    assert decode_market_frame(raw(SPOT_KLINE).decode()) == decode_market_frame(raw(SPOT_KLINE))


def general_only(stream: str, data: object) -> bytes:
    """The same combined frame, with the stream name moved out of the fast path's view."""
    return raw({"padding": "x" * 64, "data": data, "stream": stream})


def test_fast_path_and_general_path_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(raw: bytes | str) -> MarketFrame:
        raise AssertionError("the fast path was not taken")

    for stream, data in (
        ("bnbbtc@kline_1m", SPOT_KLINE),
        ("bnbusdt@bookTicker", SPOT_BOOK_TICKER),
        ("bnbusdt@bookTicker", FUTURES_BOOK_TICKER),
        ("btcusdt@markPrice@1s", MARK_PRICE),
    ):
        general = decode_market_frame(general_only(stream, data))
        with monkeypatch.context() as patched:
            patched.setattr(parse_market, "_decode_general", refuse)
            fast = decode_market_frame(combined(stream, data))
            assert decode_market_frame(combined(stream, data).decode()) == fast
        assert fast == general
        assert fast.stream == stream


def test_kline_stream_name_with_a_non_kline_event_falls_back_to_the_event() -> None:
    frame = decode_market_frame(combined("bnbbtc@kline_1m", {"e": "aggTrade", "s": "BNBBTC"}))

    assert frame == MarketFrame("bnbbtc@kline_1m", UnknownEvent("aggTrade"))


def test_unknown_fields_are_ignored() -> None:
    event = with_kline(zz={"nested": [1, 2]}, extra="x")
    event["new_top_level"] = [None, True]

    assert decode_market_frame(combined("bnbbtc@kline_1m", event)).message == SPOT_KLINE_EXPECTED


# --- bookTicker and markPrice --------------------------------------------------------------

SPOT_TICKER_EXPECTED = BookTicker(
    "BNBUSDT",
    Decimal("25.35190000"),
    Decimal("31.21000000"),
    Decimal("25.36520000"),
    Decimal("40.66000000"),
    0,
    400900217,
)


def test_spot_book_ticker_without_event_type_raw_and_combined() -> None:
    assert decode_market_frame(raw(SPOT_BOOK_TICKER)) == MarketFrame(
        "bnbusdt@bookTicker", SPOT_TICKER_EXPECTED
    )
    assert decode_market_frame(combined("bnbusdt@bookTicker", SPOT_BOOK_TICKER)) == MarketFrame(
        "bnbusdt@bookTicker", SPOT_TICKER_EXPECTED
    )


def test_futures_book_ticker_takes_transaction_time() -> None:
    expected = dataclasses.replace(SPOT_TICKER_EXPECTED, ts_ms=1568014460891)

    assert decode_market_frame(raw(FUTURES_BOOK_TICKER)) == MarketFrame(
        "bnbusdt@bookTicker", expected
    )
    assert decode_market_frame(combined("bnbusdt@bookTicker", FUTURES_BOOK_TICKER)).message == (
        expected
    )


def test_book_ticker_with_only_event_time_uses_it() -> None:
    event = {k: v for k, v in FUTURES_BOOK_TICKER.items() if k != "T"}

    message = decode_market_frame(combined("bnbusdt@bookTicker", event)).message

    assert message == dataclasses.replace(SPOT_TICKER_EXPECTED, ts_ms=1568014460893)


MARK_EXPECTED = MarkPrice(
    "BTCUSDT",
    Decimal("11794.15000000"),
    Decimal("11784.62659091"),
    Decimal("0.00038167"),
    1562306400000,
    1562305380000,
)


def test_mark_price_combined_and_raw() -> None:
    assert decode_market_frame(combined("btcusdt@markPrice@1s", MARK_PRICE)) == MarketFrame(
        "btcusdt@markPrice@1s", MARK_EXPECTED
    )
    # Raw mode cannot know the subscribed update speed: the suffix is left off.
    assert decode_market_frame(raw(MARK_PRICE)) == MarketFrame("btcusdt@markPrice", MARK_EXPECTED)


def test_mark_price_with_empty_funding_rate_reads_zero() -> None:
    event = {**MARK_PRICE, "r": "", "T": 0}

    message = decode_market_frame(combined("btcusdt_240628@markPrice", event)).message

    assert message == dataclasses.replace(
        MARK_EXPECTED, funding_rate=Decimal(0), next_funding_time_ms=0
    )


# --- serverShutdown, control replies, unknown events ---------------------------------------


def test_server_shutdown_raw_combined_and_ws_api_envelope() -> None:
    event = {"e": "serverShutdown", "E": 1770123456789}

    assert decode_market_frame(raw(event)) == MarketFrame("", ServerShutdown(1770123456789))
    assert decode_market_frame(raw({"event": event})) == MarketFrame(
        "", ServerShutdown(1770123456789)
    )
    assert decode_market_frame(combined("x", event)).message == ServerShutdown(1770123456789)
    assert decode_market_frame(b'{"e":"serverShutdown"}').message == ServerShutdown(0)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"result": None, "id": 1}, ControlReply(1, None, None, None)),
        (
            {"result": ["btcusdt@aggTrade"], "id": 3},
            ControlReply(3, ["btcusdt@aggTrade"], None, None),
        ),
        ({"result": True, "id": "abc-1"}, ControlReply("abc-1", True, None, None)),
        ({"result": None, "id": None}, ControlReply(None, None, None, None)),
        (
            {"error": {"code": 2, "msg": "Invalid request: unknown variant"}, "id": 7},
            ControlReply(7, None, 2, "Invalid request: unknown variant"),
        ),
        (
            {"code": 0, "msg": "Unknown property", "id": 5},
            ControlReply(5, None, 0, "Unknown property"),
        ),
        (
            {"code": 1, "msg": "Invalid value type"},
            ControlReply(None, None, 1, "Invalid value type"),
        ),
    ],
)
def test_control_replies(payload: dict[str, object], expected: ControlReply) -> None:
    assert decode_market_frame(raw(payload)) == MarketFrame("", expected)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            raw({"e": "aggTrade", "E": 1, "s": "BTCUSDT", "p": "1"}),
            MarketFrame("", UnknownEvent("aggTrade")),
        ),
        (
            combined(
                "btcusdt@depth@100ms",
                {"e": "depthUpdate", "u": 1, "s": "BTCUSDT", "b": [], "a": []},
            ),
            MarketFrame("btcusdt@depth@100ms", UnknownEvent("depthUpdate")),
        ),
        (
            combined("btcusdt@depth5@100ms", {"lastUpdateId": 1, "bids": [], "asks": []}),
            MarketFrame("btcusdt@depth5@100ms", UnknownEvent("depth5@100ms")),
        ),
        (
            raw({"e": "forceOrder", "o": {"s": "BTCUSDT"}}),
            MarketFrame("", UnknownEvent("forceOrder")),
        ),
        (raw({"e": "24hrTicker", "c": "1"}), MarketFrame("", UnknownEvent("24hrTicker"))),
        (b"{}", MarketFrame("", UnknownEvent(""))),
    ],
)
def test_unknown_events(frame: bytes, expected: MarketFrame) -> None:
    assert decode_market_frame(frame) == expected


# --- malformed frames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "mentions"),
    [
        (b"", "frame"),
        (b"not json", "frame"),
        (b'{"stream":"btcusdt@kline_1m","data":', "frame"),
        (b"[1,2]", "frame"),
        (b'"text"', "frame"),
        (b"\xff\xfe", "frame"),
        (combined("bnbbtc@kline_1m", with_kline(o=1.5)), "bnbbtc@kline_1m: kline"),
        (combined("bnbbtc@kline_1m", with_kline(o="NaN")), "bnbbtc@kline_1m: kline"),
        (combined("bnbbtc@kline_1m", with_kline(h="1.2.3")), "bnbbtc@kline_1m: kline"),
        (combined("bnbbtc@kline_1m", with_kline(t="1672515780000")), "bnbbtc@kline_1m: kline"),
        (combined("bnbbtc@kline_1m", with_kline(x="false")), "bnbbtc@kline_1m: kline"),
        (raw(with_kline(o="Infinity")), "BNBBTC: kline"),
        (raw({"e": "kline", "s": "BNBBTC"}), "BNBBTC: kline"),
        (combined("bnbusdt@bookTicker", {**SPOT_BOOK_TICKER, "b": ""}), "bookTicker"),
        (combined("bnbusdt@bookTicker", {**FUTURES_BOOK_TICKER, "u": None}), "bookTicker"),
        (combined("btcusdt@markPrice", {**MARK_PRICE, "p": ""}), "markPriceUpdate"),
        (raw({"e": 5}), "`e`"),
        (raw({"stream": 5, "data": {}}), "stream"),
        (raw({"stream": "x"}), "stream"),
        (combined("x@kline_1m", [1, 2]), "x@kline_1m: data: Expected `object`"),
        (raw({"result": None, "id": True}), "control reply"),
        (raw({"result": None, "id": 1.5}), "control reply"),
        (raw({"error": "boom", "id": 1}), "control reply"),
        (raw({"error": {"code": "2", "msg": "x"}, "id": 1}), "control reply"),
        (raw({"code": 2, "msg": 3, "id": 1}), "control reply"),
        (raw({"e": "serverShutdown", "E": "soon"}), "serverShutdown"),
    ],
)
def test_malformed_frames_raise_malformed_frame_naming_the_place(
    frame: bytes, mentions: str
) -> None:
    with pytest.raises(MalformedFrame) as caught:
        decode_market_frame(frame)

    assert mentions in str(caught.value)


def test_error_message_truncates_the_payload() -> None:
    event = with_kline(o="bad", padding="p" * 5000)

    with pytest.raises(MalformedFrame) as caught:
        decode_market_frame(combined("bnbbtc@kline_1m", event))

    message = str(caught.value)
    assert len(message) < 400
    assert "p" * 200 not in message
    assert message.startswith("bnbbtc@kline_1m: kline: ")
    assert '{"e":"kline","E":1672515782136' in message  # the excerpt shows the payload


def test_non_text_input_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        decode_market_frame(None)  # type: ignore[arg-type]


# --- decimal cache and fast construction ---------------------------------------------------


def test_decimal_cache_shares_values_and_stays_bounded() -> None:
    cache = wire_market.DecimalCache()

    first = cache["60741.67000000"]
    assert cache["60741.67000000"] is first
    assert str(first) == "60741.67000000"
    for i in range(wire_market.DECIMAL_CACHE_LIMIT + 10):
        assert cache[f"{i}.5"] == Decimal(f"{i}.5")
    assert len(cache) <= wire_market.DECIMAL_CACHE_LIMIT
    with pytest.raises(ValueError, match="finite"):
        cache["-Infinity"]
    assert "-Infinity" not in cache


def test_frozen_builder_makes_genuine_frozen_instances() -> None:
    build = wire_market.frozen_builder(Kline)
    args = dataclasses.astuple(SPOT_KLINE_EXPECTED)

    made = build(*args)

    assert build is not Kline
    assert type(made) is Kline
    assert made == SPOT_KLINE_EXPECTED
    assert hash(made) == hash(SPOT_KLINE_EXPECTED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.close = Decimal(1)  # type: ignore[misc]
    assert dataclasses.replace(made, closed=True).closed is True
    one = Decimal(1)
    ticker = wire_market.frozen_builder(BookTicker)("X", one, one, one, one, 5)
    assert ticker == BookTicker("X", one, one, one, one, 5, 0)


def test_frozen_builder_falls_back_to_the_constructor_when_it_must() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Validated:
        price: Decimal

        def __post_init__(self) -> None:
            if self.price < 0:
                raise ValueError("negative")

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        price: Decimal

    @dataclasses.dataclass(slots=True)
    class Mutable:
        price: Decimal

    for cls in (Validated, NoSlots, Mutable):
        assert wire_market.frozen_builder(cls) is cls


# --- REST ----------------------------------------------------------------------------------

# fmt: off
SPOT_REST_KLINES = [
    [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
     1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"],
    [1499644800000, "0.01577100", "0.01600000", "0.01500000", "0.01590000", "10.5",
     1500249599999, "0.16", 3, "1", "0.01", "0"],
]
# fmt: on


def test_rest_klines_every_field_and_closed_rule() -> None:
    klines = parse_rest_klines(
        raw(SPOT_REST_KLINES), symbol="BNBBTC", interval="1w", now_ms=1500249599999
    )

    # fmt: off
    assert klines == [
        kline("BNBBTC", "1w", 1499040000000, 1499644799999,
              "0.01634790 0.80000000 0.01575800 0.01577100 148976.11427815 2434.19055334",
              308, True),
        # close time == now: the bar's last millisecond is still running
        kline("BNBBTC", "1w", 1499644800000, 1500249599999,
              "0.01577100 0.01600000 0.01500000 0.01590000 10.5 0.16", 3, False),
    ]
    # fmt: on
    assert str(klines[0].open) == "0.01634790"
    one_ms_later = parse_rest_klines(
        raw(SPOT_REST_KLINES), symbol="BNBBTC", interval="1w", now_ms=1500249600000
    )
    assert [k.closed for k in one_ms_later] == [True, True]


def test_rest_klines_tolerate_extra_columns_and_empty_list() -> None:
    rows = [[*SPOT_REST_KLINES[0], "future-column", {"x": 1}]]

    assert len(parse_rest_klines(raw(rows), symbol="A", interval="1m", now_ms=0)) == 1
    assert parse_rest_klines(b"[]", symbol="A", interval="1m", now_ms=0) == []


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{}",
        b'{"code":-1121,"msg":"Invalid symbol."}',
        raw([SPOT_REST_KLINES[0][:8]]),
        raw([[str(SPOT_REST_KLINES[0][0]), *SPOT_REST_KLINES[0][1:]]]),
        raw([[*SPOT_REST_KLINES[0][:1], 0.0163, *SPOT_REST_KLINES[0][2:]]]),
        raw([[*SPOT_REST_KLINES[0][:2], "abc", *SPOT_REST_KLINES[0][3:]]]),
        raw([[*SPOT_REST_KLINES[0][:8], "308", *SPOT_REST_KLINES[0][9:]]]),
    ],
)
def test_rest_klines_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedFrame, match="klines BNBBTC 1m"):
        parse_rest_klines(payload, symbol="BNBBTC", interval="1m", now_ms=0)


PREMIUM_INDEX = {
    "symbol": "BTCUSDT",
    "markPrice": "11793.63104562",
    "indexPrice": "11781.80495970",
    "estimatedSettlePrice": "11781.16138815",
    "lastFundingRate": "0.00038246",
    "interestRate": "0.00010000",
    "nextFundingTime": 1597392000000,
    "time": 1597370495002,
}
PREMIUM_EXPECTED = MarkPrice(
    "BTCUSDT",
    Decimal("11793.63104562"),
    Decimal("11781.80495970"),
    Decimal("0.00038246"),
    1597392000000,
    1597370495002,
)


def test_premium_index_object_and_list() -> None:
    delivery = {
        **PREMIUM_INDEX,
        "symbol": "BTCUSDT_240628",
        "lastFundingRate": "",
        "interestRate": "",
        "nextFundingTime": 0,
    }

    assert parse_premium_index(raw(PREMIUM_INDEX)) == [PREMIUM_EXPECTED]
    assert parse_premium_index(raw([PREMIUM_INDEX, delivery])) == [
        PREMIUM_EXPECTED,
        MarkPrice(
            "BTCUSDT_240628",
            Decimal("11793.63104562"),
            Decimal("11781.80495970"),
            Decimal(0),
            0,
            1597370495002,
        ),
    ]


def test_premium_index_time_falls_back_to_now() -> None:
    without_time = {k: v for k, v in PREMIUM_INDEX.items() if k != "time"}

    assert parse_premium_index(raw(without_time), now_ms=42)[0].ts_ms == 42
    assert parse_premium_index(raw(without_time))[0].ts_ms == 0
    assert parse_premium_index(raw(PREMIUM_INDEX), now_ms=42)[0].ts_ms == 1597370495002


@pytest.mark.parametrize(
    "payload",
    [b"null", raw({**PREMIUM_INDEX, "markPrice": 1.5}), raw([{"symbol": "X"}]), b"[1]"],
)
def test_premium_index_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedFrame, match="premiumIndex"):
        parse_premium_index(payload)


def test_funding_info() -> None:
    payload = [
        {
            "symbol": "BLZUSDT",
            "adjustedFundingRateCap": "0.02500000",
            "adjustedFundingRateFloor": "-0.02500000",
            "fundingIntervalHours": 4,
            "disclaimer": False,
        },
        {
            "symbol": "GTCUSDT",
            "adjustedFundingRateCap": "0.03000000",
            "adjustedFundingRateFloor": "-0.03000000",
            "fundingIntervalHours": 8,
            "disclaimer": False,
        },
    ]

    assert parse_funding_info(raw(payload)) == {
        "BLZUSDT": FundingInfo("BLZUSDT", 4, Decimal("0.02500000"), Decimal("-0.02500000")),
        "GTCUSDT": FundingInfo("GTCUSDT", 8, Decimal("0.03000000"), Decimal("-0.03000000")),
    }
    assert parse_funding_info(b"[]") == {}
    with pytest.raises(MalformedFrame, match="fundingInfo"):
        parse_funding_info(raw([{**payload[0], "fundingIntervalHours": 0}]))
    with pytest.raises(MalformedFrame, match="fundingInfo"):
        parse_funding_info(raw(payload[0]))


def test_server_time() -> None:
    assert parse_server_time(b'{"serverTime": 1499827319559}') == 1499827319559
    for bad in (b"{}", b'{"serverTime": "1499827319559"}', b"1499827319559", b"{"):
        with pytest.raises(MalformedFrame, match="time"):
            parse_server_time(bad)


def test_rest_book_ticker_spot_futures_and_list() -> None:
    spot = {
        "symbol": "LTCBTC",
        "bidPrice": "4.00000000",
        "bidQty": "431.00000000",
        "askPrice": "4.00000200",
        "askQty": "9.00000000",
    }
    futures = {**spot, "symbol": "BTCUSDT", "time": 1589437530011, "lastUpdateId": 1027024}
    spot_expected = BookTicker(
        "LTCBTC",
        Decimal("4.00000000"),
        Decimal("431.00000000"),
        Decimal("4.00000200"),
        Decimal("9.00000000"),
        0,
        0,
    )
    futures_expected = dataclasses.replace(
        spot_expected, symbol="BTCUSDT", ts_ms=1589437530011, update_id=1027024
    )

    assert parse_rest_book_ticker(raw(spot)) == [spot_expected]
    assert parse_rest_book_ticker(raw(futures)) == [futures_expected]
    assert parse_rest_book_ticker(raw([spot, futures])) == [spot_expected, futures_expected]
    with pytest.raises(MalformedFrame, match="bookTicker"):
        parse_rest_book_ticker(raw({**spot, "askQty": None}))


# --- stream names --------------------------------------------------------------------------


def test_stream_names() -> None:
    names = stream_names(
        ["BTCUSDT", "ethusdt", "BTCUSDT"],
        intervals=["1m", "1M", "1m"],
        book_ticker=True,
        mark_price=True,
    )

    assert names == [
        "btcusdt@kline_1m",
        "btcusdt@kline_1M",
        "btcusdt@bookTicker",
        "btcusdt@markPrice@1s",
        "ethusdt@kline_1m",
        "ethusdt@kline_1M",
        "ethusdt@bookTicker",
        "ethusdt@markPrice@1s",
    ]
    assert stream_names(["BNBBTC"], intervals=[], book_ticker=False, mark_price=False) == []
    assert stream_names(["BNBBTC"], intervals=["15m"], book_ticker=False, mark_price=False) == [
        "bnbbtc@kline_15m"
    ]


@pytest.mark.parametrize(
    ("symbols", "intervals"),
    [(["BTCUSDT"], ["1min"]), (["BTCUSDT"], ["1H"]), (["btc@usdt"], ["1m"]), ([""], ["1m"])],
)
def test_stream_names_refuse_what_binance_would_ignore(
    symbols: list[str], intervals: list[str]
) -> None:
    with pytest.raises(ValueError, match=r"unknown kline intervals|not a Binance symbol"):
        stream_names(symbols, intervals=intervals, book_ticker=True, mark_price=False)
