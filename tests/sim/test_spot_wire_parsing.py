"""The real Binance client reads everything the simulated spot engine produces, and the key
sets match recorded Binance payloads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain.enums import MarketType, OrderStatus
from app.domain.orders import OrderUpdated
from exchange.binance.parse_account import parse_spot_account
from exchange.binance.parse_orders import (
    parse_cancel_replace,
    parse_my_trades,
    parse_spot_order,
    parse_spot_orders,
)
from exchange.binance.parse_user import decode_spot_user_event
from exchange.sim.catalog import default_symbol
from exchange.sim.errors import SimError
from exchange.sim.matching import Fees, FillModel, Quote
from exchange.sim.replies import _jsonable
from exchange.sim.spot_engine import SpotEngine
from tests.recorded_data import binance_fixtures

# tests/sim/conftest.py does not offer this fixture (yet): make it visible to this module.
__all__ = ["binance_fixtures"]

D = Decimal
BTC = default_symbol("BTCUSDT", MarketType.SPOT)


def wire(obj: object) -> str:
    """What the server sends: Decimals as strings, compact JSON."""
    return json.dumps(_jsonable(obj))


def engine() -> SpotEngine:
    e = SpotEngine(
        [BTC],
        balances={"USDT": D(100_000), "BTC": D(1)},
        fees=Fees(D("0.001"), D("0.001")),
        fill_model=FillModel(partial_fraction=D("0.5")),
    )
    e.on_quote(Quote("BTCUSDT", 1, D("60000.00"), D("60000.01"), D(1), D(1), D(60000), D(2)), 1)
    return e


def limit(side: str, qty: str, price: str, client_id: str, tif: str = "GTC") -> dict[str, str]:
    return {
        "symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": tif,
        "quantity": qty, "price": price, "newClientOrderId": client_id,
    }  # fmt: skip


def _recorded(folder: Path, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((folder / name).read_text())
    inner: dict[str, Any] = body.get("data", body)
    return inner


def test_full_answer_and_fills_parse() -> None:
    e = engine()
    body = e.new_order(limit("BUY", "0.4", "60000.02", "buy-1"), 2_000)
    update, fills = parse_spot_order(wire(body))
    assert update.client_order_id == "buy-1"
    assert update.status is OrderStatus.FILLED
    assert update.filled_quantity == D("0.4")
    assert [f.quantity for f in fills] == [D("0.2"), D("0.2")]
    assert fills[0].fee_asset == "BTC"
    assert fills[0].trade_id + 1 == fills[1].trade_id


def test_query_cancel_open_orders_and_result_answers_parse() -> None:
    e = engine()
    placed = e.new_order(
        limit("SELL", "0.1", "61000.00", "s-1") | {"newOrderRespType": "RESULT"}, 2
    )
    assert "fills" not in placed
    assert parse_spot_order(wire(placed))[0].status is OrderStatus.NEW
    listed = parse_spot_orders(wire(e.open_orders({"symbol": "BTCUSDT"}, 3)))
    assert [u.client_order_id for u in listed] == ["s-1"]
    queried, _ = parse_spot_order(
        wire(e.query_order({"symbol": "BTCUSDT", "origClientOrderId": "s-1"}, 3))
    )
    assert queried.exchange_order_id == placed["orderId"]
    canceled, _ = parse_spot_order(
        wire(e.cancel_order({"symbol": "BTCUSDT", "origClientOrderId": "s-1"}, 4))
    )
    assert (canceled.client_order_id, canceled.status) == ("s-1", OrderStatus.CANCELED)


def test_cancel_replace_bodies_parse() -> None:
    e = engine()
    e.new_order(limit("BUY", "0.1", "59000.00", "a"), 2)
    ok = e.cancel_replace(
        limit("BUY", "0.1", "59500.00", "b")
        | {"cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrigClientOrderId": "a"},
        3,
    )
    result = parse_cancel_replace(wire(ok))
    assert (result.cancel_result, result.new_order_result) == ("success", "success")
    assert result.canceled is not None
    assert result.canceled.client_order_id == "a"
    assert result.new_order is not None
    assert result.new_order.client_order_id == "b"
    with pytest.raises(SimError) as err:
        e.cancel_replace(
            limit("BUY", "0.1", "59500.00", "c")
            | {"cancelReplaceMode": "ALLOW_FAILURE", "cancelOrigClientOrderId": "zzz"},
            4,
        )
    assert err.value.code == -2021
    partial = parse_cancel_replace(wire(err.value.body()))
    assert (partial.cancel_result, partial.new_order_result) == ("failure", "success")
    assert partial.cancel_error is not None
    assert partial.cancel_error.code == -2011


def test_my_trades_and_account_parse() -> None:
    e = engine()
    e.new_order({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.2"}, 2)
    fills = parse_my_trades(wire(e.my_trades({"symbol": "BTCUSDT"}, 3)), market=MarketType.SPOT)
    assert [f.quantity for f in fills] == [D("0.1"), D("0.1")]
    assert fills[0].fee == D("6")  # 0.1 % of 6000 USDT
    balances = {b.asset: b for b in parse_spot_account(wire(e.account({}, 3)))}
    assert balances["BTC"].free == D("0.8")
    assert balances["USDT"].free == D(100_000) + D(12_000) - D(12)


def test_every_event_decodes_with_the_client() -> None:
    e = engine()
    e.new_order(limit("BUY", "0.4", "60000.02", "t-1", "IOC"), 2)
    e.new_order(limit("SELL", "0.1", "61000.00", "r-1"), 3)
    e.cancel_order({"symbol": "BTCUSDT", "origClientOrderId": "r-1", "newClientOrderId": "x"}, 4)
    e.new_order(limit("SELL", "0.1", "61000.00", "r-2"), 5)
    e.on_quote(Quote("BTCUSDT", 2, D("61100.00"), D("61100.01"), D(1), D(1), D(61100), D(2)), 6)
    decoded = [m for ev in e.drain_events() for m in decode_spot_user_event(wire(ev))]
    kinds = [type(m).__name__ for m in decoded]
    assert "AccountUpdated" in kinds
    orders = [m for m in decoded if isinstance(m, OrderUpdated)]
    assert [o.client_order_id for o in orders][-2:] == ["r-2", "r-2"]
    assert orders[-1].status is OrderStatus.PARTIALLY_FILLED  # partial_fraction 0.5
    assert orders[-1].fill is not None
    assert orders[-1].fill.is_maker
    canceled = [o for o in orders if o.status is OrderStatus.CANCELED]
    assert [o.client_order_id for o in canceled] == ["r-1"]  # C (original), not the cancel's id


def test_key_sets_match_recorded_binance_payloads(binance_fixtures: Path) -> None:
    e = engine()
    e.new_order(limit("BUY", "0.4", "60000.02", "t-1"), 2)
    report = next(ev for ev in e.drain_events() if ev.get("x") == "TRADE")
    # The live (Binance.US-recorded) executionReport carries workingTime W and STP mode V.
    live = _recorded(binance_fixtures / "ws", "ws_spot_execution_report_binance_us.json")
    assert set(report) == set(live)
    for name in ("new", "canceled", "expired", "trade"):
        synth = _recorded(binance_fixtures / "ws", f"ws_spot_execution_report_{name}.json")
        assert set(synth) <= set(report)
        assert {k: type(v) for k, v in synth.items() if v is not None} == {
            k: type(report[k]) for k, v in synth.items() if v is not None
        }
    account = _recorded(binance_fixtures / "rest", "http_spot_wallet_account.json")
    ours = e.account({}, 3)
    assert set(account) <= set(ours)
    assert set(account["balances"][0]) == set(ours["balances"][0])
    assert {k: type(v) for k, v in account.items()} == {k: type(ours[k]) for k in account}
