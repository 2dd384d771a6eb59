"""Hostile input: a market frame or REST body either parses or raises ``MalformedFrame``.

Random bytes, every truncation of valid frames, random JSON documents (bare and inside the
combined envelope, so the fast paths see them too), and valid frames with one field replaced
by random JSON. Also: the fast path and the general path always agree.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.binance.parse_market import (
    MalformedFrame,
    MarketFrame,
    decode_market_frame,
    parse_rest_klines,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KLINE = {
    "e": "kline",
    "E": 1638747660000,
    "s": "BTCUSDT",
    "k": {
        "t": 1638747660000,
        "T": 1638747719999,
        "s": "BTCUSDT",
        "i": "1m",
        "o": "41000.10",
        "c": "41010.00",
        "h": "41020.50",
        "l": "40990.00",
        "v": "12.345",
        "n": 77,
        "x": False,
        "q": "506172.12345",
    },
}
BOOK_TICKER = {
    "u": 400900217,
    "s": "BNBUSDT",
    "b": "25.3519",
    "B": "31.21",
    "a": "25.3652",
    "A": "40.66",
}
FUTURES_BOOK_TICKER = {"e": "bookTicker", "E": 1568014460893, "T": 1568014460891, **BOOK_TICKER}
MARK_PRICE = {
    "e": "markPriceUpdate",
    "E": 1562305380000,
    "s": "BTCUSDT",
    "p": "11794.15000000",
    "i": "11784.62659091",
    "r": "0.00038167",
    "T": 1562306400000,
}
FRAMES = [
    ("btcusdt@kline_1m", KLINE),
    ("bnbusdt@bookTicker", BOOK_TICKER),
    ("bnbusdt@bookTicker", FUTURES_BOOK_TICKER),
    ("btcusdt@markPrice@1s", MARK_PRICE),
    ("", {"e": "serverShutdown", "E": 1}),
]
STREAMS = sorted({stream for stream, _ in FRAMES} | {"btcusdt@depth@100ms"})
REST_ROW = [
    1499040000000,
    "0.0163",
    "0.8",
    "0.0157",
    "0.0157",
    "148976.1",
    1499644799999,
    "2434.1",
    308,
    "1756.8",
    "28.4",
    "0",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "NaN", "-Infinity", "1e999999", "0.1", "1_000", " 1 ", "kline"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["e", "k", "s", "u", "b", "a", "stream", "data", "id", "x"])
            | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def combined(stream: str, data: object) -> bytes:
    return dumps({"stream": stream, "data": data})


def decodes_or_refuses(frame: bytes | str) -> MarketFrame | None:
    try:
        result = decode_market_frame(frame)
    except MalformedFrame as error:
        message = str(error)
    else:
        assert isinstance(result, MarketFrame)
        return result
    assert len(message) < 500
    return None


def replace_at(event: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(event))
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def paths(event: dict[str, Any]) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [(key,) for key in event]
    found += [("k", key) for key in event.get("k", {})]
    return found


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(frame: bytes) -> None:
    decodes_or_refuses(frame)
    decodes_or_refuses(b'{"stream":"btcusdt@kline_1m","data":' + frame)


@FUZZ
@given(st.text(max_size=200))
def test_random_text(frame: str) -> None:
    decodes_or_refuses(frame)
    decodes_or_refuses('{"stream":"x@bookTicker",' + frame)


@pytest.mark.parametrize(("stream", "event"), FRAMES)
def test_every_truncation_of_valid_frames(stream: str, event: dict[str, Any]) -> None:
    for frame in (combined(stream, event), dumps(event)):
        assert decodes_or_refuses(frame) is not None
        for end in range(len(frame)):
            with pytest.raises(MalformedFrame):
                decode_market_frame(frame[:end])
            with pytest.raises(MalformedFrame):
                decode_market_frame(frame[:end].decode())


@FUZZ
@given(json_values, st.sampled_from(STREAMS))
def test_random_json_documents(document: object, stream: str) -> None:
    decodes_or_refuses(dumps(document))
    decodes_or_refuses(combined(stream, document))


@FUZZ
@given(st.data(), json_values)
def test_valid_frames_with_one_field_replaced(data: st.DataObject, value: object) -> None:
    stream, event = data.draw(st.sampled_from(FRAMES))
    path = data.draw(st.sampled_from(paths(event)))
    broken = replace_at(event, path, value)

    fast = decodes_or_refuses(combined(stream, broken))
    decodes_or_refuses(dumps(broken))
    # The stream name pushed out of the fast path's view: the general path decides alone.
    general = decodes_or_refuses(dumps({"padding": "x" * 64, "data": broken, "stream": stream}))
    assert fast == general


@FUZZ
@given(st.binary(max_size=200) | json_values.map(dumps))
def test_rest_klines_random_payloads(payload: bytes) -> None:
    try:
        klines = parse_rest_klines(payload, symbol="BTCUSDT", interval="1m", now_ms=0)
    except MalformedFrame:
        return
    assert isinstance(klines, list)


@FUZZ
@given(st.integers(min_value=0, max_value=len(REST_ROW)), json_values)
def test_rest_klines_with_one_cell_replaced(column: int, value: object) -> None:
    row = list(REST_ROW)
    if column < len(row):
        row[column] = value
    else:
        row.append(value)
    try:
        parse_rest_klines(dumps([REST_ROW, row]), symbol="BTCUSDT", interval="1m", now_ms=0)
    except MalformedFrame:
        assert column < 9  # only the columns we read can make a row invalid


def test_every_truncation_of_rest_klines() -> None:
    payload = dumps([REST_ROW, REST_ROW])
    assert len(parse_rest_klines(payload, symbol="A", interval="1m", now_ms=0)) == 2
    for end in range(len(payload)):
        with pytest.raises(MalformedFrame):
            parse_rest_klines(payload[:end], symbol="A", interval="1m", now_ms=0)
