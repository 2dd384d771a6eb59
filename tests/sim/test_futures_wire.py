"""Futures engine answers and events have the field sets of recorded Binance payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exchange.sim.futures_engine import FuturesEngine
from tests.recorded_data import binance_fixtures
from tests.sim.test_futures_helpers import engine, params, quote

__all__ = ["binance_fixtures"]

NOW = 1_700_000_000_000


def _load(folder: Path, name: str) -> Any:
    body = json.loads((folder / name).read_text())
    return body["data"] if isinstance(body, dict) and "data" in body else body


def _traded() -> FuturesEngine:
    e = engine()
    e.on_quote(quote(), NOW)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010", reduceOnly="false"), NOW)
    return e


def test_order_trade_update_has_the_recorded_keys(binance_fixtures: Path) -> None:
    recorded = _load(binance_fixtures, "ws/ws_futures_order_update_trade_reduce_only_qty.json")
    events = _traded().drain_events()
    trade = next(ev for ev in events if ev["e"] == "ORDER_TRADE_UPDATE" and ev["o"]["x"] == "TRADE")
    assert set(trade) == set(recorded)
    # "pm" (price match) is in the USD-M docs but not in that recording
    assert set(trade["o"]) == set(recorded["o"]) | {"pm"}


def test_user_trades_rows_have_the_recorded_keys(binance_fixtures: Path) -> None:
    recorded = _load(binance_fixtures, "rest/http_futures_account_trades.json")
    rows = _traded().user_trades(params(), NOW)
    assert set(rows[0]) == set(recorded[0])


def test_open_order_rows_have_the_recorded_keys(binance_fixtures: Path) -> None:
    recorded = _load(binance_fixtures, "rest/http_futures_account_orders.json")
    e = engine()
    e.on_quote(quote(), NOW)
    e.new_order(
        params(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="59000.00"),
        NOW,
    )
    (row,) = e.open_orders({}, NOW)
    trailing_only = {"activatePrice", "priceRate"}
    newer = {"priceMatch", "selfTradePreventionMode", "goodTillDate"}
    assert set(row) == (set(recorded[0]) - trailing_only) | newer


def test_account_update_has_the_documented_keys() -> None:
    events = _traded().drain_events()
    update = next(ev for ev in events if ev["e"] == "ACCOUNT_UPDATE")
    assert set(update) == {"e", "E", "T", "a"}
    assert set(update["a"]) == {"m", "B", "P"}
    assert set(update["a"]["B"][0]) == {"a", "wb", "cw", "bc"}
    assert set(update["a"]["P"][0]) == {"s", "pa", "ep", "bep", "cr", "up", "mt", "iw", "ps"}
    assert update["a"]["P"][0]["pa"] == "0.010"
    assert update["a"]["B"][0]["wb"] == "9999.69999950"


def test_numbers_are_strings_in_binance_spelling() -> None:
    e = _traded()
    (order_event,) = [ev for ev in e.drain_events() if ev["e"] == "ORDER_TRADE_UPDATE"][1:]
    o = order_event["o"]
    assert (o["q"], o["L"], o["n"], o["rp"]) == ("0.010", "60000.10", "0.30000050", "0.00000000")
    risk = e.position_risk(params(), NOW)[0]
    assert risk["entryPrice"] == "60000.1"
    assert risk["positionAmt"] == "0.010"
