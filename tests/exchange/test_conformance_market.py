"""Recorded and documented Binance market payloads, parsed field by field against their JSON.

Every expected value is read from the payload itself (``Decimal(raw string)``, ints as sent),
and decimals must keep Binance's exact text. Frames of kinds the daemon does not consume must
come back as ``UnknownEvent``, never as ``MalformedFrame``.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain.market import BookTicker, Kline, MarkPrice
from exchange.binance.parse_market import (
    MarketFrame,
    UnknownEvent,
    decode_market_frame,
    parse_premium_index,
    parse_rest_book_ticker,
    parse_rest_klines,
    parse_server_time,
)

HFT_LINES = 3000
CONSUMED_EVENTS = {"kline", "bookTicker", "markPriceUpdate"}


def exact(value: Decimal, text: str) -> None:
    assert value == Decimal(text)
    assert str(value) == text


def assert_kline(kline: object, k: dict[str, Any]) -> None:
    assert type(kline) is Kline
    assert (kline.symbol, kline.interval) == (k["s"], k["i"])
    assert (kline.open_time_ms, kline.close_time_ms) == (k["t"], k["T"])
    exact(kline.open, k["o"])
    exact(kline.high, k["h"])
    exact(kline.low, k["l"])
    exact(kline.close, k["c"])
    exact(kline.volume, k["v"])
    exact(kline.quote_volume, k["q"])
    assert kline.trades == k["n"]
    assert kline.closed is k["x"]


def assert_book_ticker(ticker: object, data: dict[str, Any]) -> None:
    assert type(ticker) is BookTicker
    assert ticker.symbol == data["s"]
    exact(ticker.bid_price, data["b"])
    exact(ticker.bid_quantity, data["B"])
    exact(ticker.ask_price, data["a"])
    exact(ticker.ask_quantity, data["A"])
    assert ticker.ts_ms == data.get("T", data.get("E", 0))
    assert ticker.update_id == data["u"]


def assert_frame(frame: MarketFrame, stream: str, data: dict[str, Any]) -> str:
    """Check one decoded frame against its JSON; returns the kind seen."""
    assert frame.stream == stream
    kind: str = data.get("e", "bookTicker" if {"u", "s", "b", "a"} <= data.keys() else "")
    if kind == "kline":
        assert_kline(frame.message, data["k"])
    elif kind == "bookTicker":
        assert_book_ticker(frame.message, data)
    elif kind == "markPriceUpdate":
        mark = frame.message
        assert type(mark) is MarkPrice
        assert mark.symbol == data["s"]
        exact(mark.mark_price, data["p"])
        exact(mark.index_price, data["i"])
        exact(mark.funding_rate, data["r"])
        assert (mark.next_funding_time_ms, mark.ts_ms) == (data["T"], data["E"])
    else:
        assert frame.message == UnknownEvent(kind or stream.partition("@")[2])
    return kind


def check_combined(line: str) -> str:
    envelope = json.loads(line)
    return assert_frame(decode_market_frame(line), envelope["stream"], envelope["data"])


def test_nautilus_futures_market_streams(binance_fixtures: Path) -> None:
    derived = {
        "kline": lambda d: f"{d['s'].lower()}@kline_{d['k']['i']}",
        "bookTicker": lambda d: f"{d['s'].lower()}@bookTicker",
        "markPriceUpdate": lambda d: f"{d['s'].lower()}@markPrice",
    }
    kinds: Counter[str] = Counter()
    for path in sorted(
        (binance_fixtures / "nautilus_rust/futures/market_data_json").glob("*.json")
    ):
        payload = path.read_bytes()
        data = json.loads(payload)
        stream = derived.get(data["e"], lambda _: "")(data)
        kinds[assert_frame(decode_market_frame(payload), stream, data)] += 1

    assert kinds == {
        "kline": 2,
        "bookTicker": 1,
        "markPriceUpdate": 1,
        "aggTrade": 1,
        "depthUpdate": 1,
        "forceOrder": 1,
        "24hrTicker": 1,
        "trade": 1,
    }


def test_nautilus_kline_open_and_closed_flags(binance_fixtures: Path) -> None:
    folder = binance_fixtures / "nautilus_rust/futures/market_data_json"
    opened = decode_market_frame((folder / "kline_stream_open.json").read_bytes()).message
    closed = decode_market_frame((folder / "kline_stream_closed.json").read_bytes()).message

    assert isinstance(opened, Kline)
    assert isinstance(closed, Kline)
    assert (opened.closed, closed.closed) == (False, True)


@pytest.mark.parametrize(
    "name",
    [
        "ws/ws_futures_book_ticker.json",
        "ws/ws_spot_ticker_book.json",
        "ws_legacy/ws_book_ticker.json",
    ],
)
def test_nautilus_book_ticker_messages(binance_fixtures: Path, name: str) -> None:
    payload = (binance_fixtures / name).read_bytes()
    data = json.loads(payload)
    stream, data = (
        (data["stream"], data["data"]) if "stream" in data else ("bnbusdt@bookTicker", data)
    )

    assert assert_frame(decode_market_frame(payload), stream, data) == "bookTicker"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BINANCE.ws.1.0", {"bookTicker": 84, "kline": 2, "depthUpdate": 177, "aggTrade": 2}),
        (
            "BINANCE_FUTURES.ws.1.0",
            {"bookTicker": 613, "kline": 67, "depthUpdate": 764, "aggTrade": 91},
        ),
    ],
)
def test_cryptofeed_captures_every_frame(
    binance_fixtures: Path, name: str, expected: dict[str, int]
) -> None:
    lines = (binance_fixtures / "cryptofeed_sample_data" / name).read_text().splitlines()
    assert lines[0].startswith("wss://")

    kinds = Counter(check_combined(line.split(": ", 1)[1]) for line in lines[1:] if line)

    assert kinds == expected


@pytest.mark.parametrize("name", ["spot/btcusdt", "spot/ethusdt", "usdm/btcusdt", "usdm/ethusdt"])
def test_hftbacktest_captures(binance_fixtures: Path, name: str) -> None:
    path = binance_fixtures / "hftbacktest_ws_capture" / f"{name}_20240808.gz"
    kinds: Counter[str] = Counter()
    with gzip.open(path, "rt") as capture:
        for _, line in zip(range(HFT_LINES), capture, strict=False):
            frame = line.split(" ", 1)[1]
            if frame.startswith('{"lastUpdateId"'):
                kinds["depth snapshot (REST)"] += 1
                continue
            kinds[check_combined(frame)] += 1
            kinds["bytes"] += decode_market_frame(frame.encode()) == decode_market_frame(frame)

    assert sum(kinds.values()) - kinds["bytes"] == HFT_LINES
    assert kinds["bytes"] == HFT_LINES - kinds["depth snapshot (REST)"]
    assert kinds["bookTicker"] > 1000
    assert kinds["depthUpdate"] > 0
    assert kinds["trade"] > 0


@pytest.mark.parametrize(
    "name",
    [
        "rest/http_spot_market_klines.json",
        "rest/http_futures_market_klines.json",
        "nautilus_rust/spot/http_json/klines_response.json",
    ],
)
def test_rest_klines(binance_fixtures: Path, name: str) -> None:
    payload = (binance_fixtures / name).read_bytes()
    rows = json.loads(payload)
    now_ms = rows[-1][6]  # the last bar's own close time: still open

    klines = parse_rest_klines(payload, symbol="BTCUSDT", interval="1m", now_ms=now_ms)

    assert len(klines) == len(rows)
    for kline, row in zip(klines, rows, strict=True):
        assert_kline(
            kline,
            {
                "s": "BTCUSDT",
                "i": "1m",
                "t": row[0],
                "o": row[1],
                "h": row[2],
                "l": row[3],
                "c": row[4],
                "v": row[5],
                "T": row[6],
                "q": row[7],
                "n": row[8],
                "x": row[6] < now_ms,
            },
        )
    assert klines[-1].closed is False


def test_rest_premium_index(binance_fixtures: Path) -> None:
    payload = (binance_fixtures / "rest/http_futures_market_premium_index.json").read_bytes()
    data = json.loads(payload)

    [mark] = parse_premium_index(payload)

    assert mark.symbol == data["symbol"]
    exact(mark.mark_price, data["markPrice"])
    exact(mark.index_price, data["indexPrice"])
    exact(mark.funding_rate, data["lastFundingRate"])
    assert (mark.next_funding_time_ms, mark.ts_ms) == (data["nextFundingTime"], data["time"])


@pytest.mark.parametrize(
    "name",
    ["rest/http_spot_market_time.json", "nautilus_rust/spot/http_json/server_time_response.json"],
)
def test_rest_server_time(binance_fixtures: Path, name: str) -> None:
    payload = (binance_fixtures / name).read_bytes()

    assert parse_server_time(payload) == json.loads(payload)["serverTime"]


@pytest.mark.parametrize(
    "name",
    [
        "rest/http_spot_market_book_ticker.json",
        "rest/http_futures_market_book_ticker.json",
        "nautilus_rust/spot/http_json/book_ticker_response.json",
    ],
)
def test_rest_book_ticker(binance_fixtures: Path, name: str) -> None:
    payload = (binance_fixtures / name).read_bytes()
    data = json.loads(payload)

    [ticker] = parse_rest_book_ticker(payload)

    assert ticker.symbol == data["symbol"]
    exact(ticker.bid_price, data["bidPrice"])
    exact(ticker.bid_quantity, data["bidQty"])
    exact(ticker.ask_price, data["askPrice"])
    exact(ticker.ask_quantity, data["askQty"])
    assert ticker.ts_ms == data.get("time", 0)
    assert ticker.update_id == data.get("lastUpdateId", 0)
