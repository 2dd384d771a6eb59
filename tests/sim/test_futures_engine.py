"""FuturesEngine orders and fills, read back by the real Binance client parsers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.account import AccountUpdated
from app.domain.enums import ExecutionType, MarketType, OrderStatus
from app.domain.orders import OrderUpdated
from exchange.binance.parse_account import (
    parse_futures_account,
    parse_futures_balance,
    parse_futures_order,
    parse_futures_orders,
    parse_my_trades,
    parse_position_risk,
)
from exchange.binance.parse_user import decode_futures_user_event
from exchange.sim.errors import SimError
from exchange.sim.futures_engine import FuturesEngine
from exchange.sim.matching import FillModel
from tests.sim.test_futures_helpers import D, engine, params, quote, wire

NOW = 1_700_000_000_000


def decoded(e: FuturesEngine) -> list[object]:
    return [m for ev in e.drain_events() for m in decode_futures_user_event(wire(ev))]


def refused(e: FuturesEngine, code: int, **values: str) -> SimError:
    with pytest.raises(SimError) as caught:
        e.new_order(params(**values), NOW)
    assert caught.value.code == code, caught.value.msg
    return caught.value


def test_market_buy_fills_at_the_ask_with_taker_fee_and_events() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    ack = e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    assert ack["status"] == "NEW"
    assert parse_futures_order(wire(ack)).status is OrderStatus.NEW
    order = e.query_order(params(orderId=str(ack["orderId"])), NOW + 1)
    parsed = parse_futures_order(wire(order))
    assert parsed.status is OrderStatus.FILLED
    assert parsed.filled_quantity == D("0.010")
    assert parsed.average_fill_price == D("60000.10")
    commission = D("0.30000050")  # 600.001 * 0.0005
    assert e.ledger.wallet == D("10000") - commission
    messages = decoded(e)
    kinds = [m.execution_type if isinstance(m, OrderUpdated) else "ACCOUNT" for m in messages]
    assert kinds == [ExecutionType.NEW, ExecutionType.TRADE, "ACCOUNT"]
    fill = messages[1].fill  # type: ignore[attr-defined]
    assert fill.fee == commission
    assert fill.fee_asset == "USDT"
    assert not fill.is_maker
    account = messages[2]
    assert isinstance(account, AccountUpdated)
    assert account.reason == "ORDER"
    assert account.positions[0].quantity == D("0.010")
    assert account.positions[0].entry_price == D("60000.1")
    assert account.balances[0].free == D("10000") - commission


def test_result_response_flip_realises_pnl_and_trades_parse() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    e.on_quote(quote("61000.00", "61000.10"), NOW + 1)
    result = e.new_order(
        params(side="SELL", type="MARKET", quantity="0.030", newOrderRespType="RESULT"), NOW + 1
    )
    assert result["status"] == "FILLED"
    position = e.ledger.position("BTCUSDT")
    assert position.amount == D("-0.020")
    assert position.entry_price == D("61000.00")
    trades = parse_my_trades(wire(e.user_trades(params(), NOW + 2)), market=MarketType.USDM)
    assert [t.realized_pnl for t in trades] == [D("0"), D("9.999")]
    assert trades[1].fee == D("0.91500000")  # 0.03 * 61000 * 0.0005
    # wallet: -0.3000005 (first fee) + 9.999 - 0.915
    assert e.ledger.wallet == D("10000") - D("0.3000005") + D("9.999") - D("0.915")
    risk = parse_position_risk(wire(e.position_risk(params(), NOW + 2)))
    assert risk[0].quantity == D("-0.020")
    assert risk[0].entry_price == D("61000")
    balances, positions = parse_futures_account(wire(e.account({}, NOW + 2)))
    assert balances[0].free == e.ledger.wallet
    assert positions[0].quantity == D("-0.020")
    assert parse_futures_balance(wire(e.balance({}, NOW)))[0].free == e.ledger.wallet


def test_gtc_rests_then_fills_as_maker_on_a_later_quote() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    placed = e.new_order(
        params(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="59000.00"),
        NOW,
    )
    assert [o["orderId"] for o in e.open_orders(params(), NOW)] == [placed["orderId"]]
    assert len(parse_futures_orders(wire(e.open_orders({}, NOW)))) == 1
    e.on_quote(quote("58900.00", "58950.00"), NOW + 5)  # traded through the limit
    order = parse_futures_order(wire(e.query_order(params(orderId=str(placed["orderId"])), NOW)))
    assert order.status is OrderStatus.FILLED
    assert order.average_fill_price == D("59000")
    trade = e.user_trades(params(), NOW + 6)[0]
    assert trade["maker"] is True
    assert trade["commission"] == "0.11800000"  # 590 * 0.0002
    assert e.open_orders(params(), NOW) == []


def test_ioc_expires_the_remainder_and_fok_is_refused() -> None:
    e = engine()
    e.on_quote(quote(qty="0.005"), NOW)
    ioc = e.new_order(
        params(
            side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.010", price="60000.10",
            newOrderRespType="RESULT",
        ),
        NOW,
    )  # fmt: skip
    assert ioc["status"] == "EXPIRED"
    assert ioc["executedQty"] == "0.005"
    refused(
        e, -5021, side="BUY", type="LIMIT", timeInForce="FOK", quantity="0.010", price="60000.10"
    )
    fok = e.new_order(
        params(
            side="BUY", type="LIMIT", timeInForce="FOK", quantity="0.005", price="60000.10",
            newOrderRespType="RESULT",
        ),
        NOW,
    )  # fmt: skip
    assert fok["status"] == "FILLED"


def test_gtx_that_would_take_is_refused_and_one_that_rests_is_accepted() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    error = refused(
        e, -5022, side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.010", price="60000.10"
    )
    assert "Post Only" in error.msg
    assert e.drain_events() == []
    ok = e.new_order(
        params(side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.010", price="60000.00"),
        NOW,
    )
    assert ok["status"] == "NEW"
    assert ok["timeInForce"] == "GTX"


def test_reduce_only_is_refused_without_position_and_capped_with_one() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    error = refused(e, -2022, side="SELL", type="MARKET", quantity="0.010", reduceOnly="true")
    assert error.msg == "ReduceOnly Order is rejected."
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    closing = e.new_order(
        params(
            side="SELL", type="MARKET", quantity="0.050", reduceOnly="true",
            newOrderRespType="RESULT",
        ),
        NOW,
    )  # fmt: skip
    assert closing["status"] == "EXPIRED"
    assert closing["executedQty"] == "0.010"
    assert e.ledger.position("BTCUSDT").amount == 0


def test_resting_reduce_only_expires_when_the_position_is_gone() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    tp = e.new_order(
        params(
            side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.010", price="62000.00",
            reduceOnly="true",
        ),
        NOW,
    )  # fmt: skip
    e.new_order(params(side="SELL", type="MARKET", quantity="0.010"), NOW)
    status = e.query_order(params(orderId=str(tp["orderId"])), NOW)["status"]
    assert status == "EXPIRED"


def test_margin_is_checked_against_leverage() -> None:
    e = engine("100")
    e.on_quote(quote(), NOW)
    # 0.05 BTC = 3000 USDT notional; at 20x that needs 150 USDT > 100
    refused(e, -2019, side="BUY", type="MARKET", quantity="0.050")
    leverage = e.set_leverage(params(leverage="50"), NOW)
    assert leverage == {"leverage": 50, "maxNotionalValue": "12000000", "symbol": "BTCUSDT"}
    placed = e.new_order(params(side="BUY", type="MARKET", quantity="0.050"), NOW)
    assert placed["status"] == "NEW"
    with pytest.raises(SimError) as caught:
        e.set_leverage(params(leverage="126"), NOW)
    assert caught.value.code == -4028


def test_margin_type_rules() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    assert e.set_margin_type(params(marginType="ISOLATED"), NOW) == {"code": 200, "msg": "success"}
    with pytest.raises(SimError) as same:
        e.set_margin_type(params(marginType="ISOLATED"), NOW)
    assert same.value.code == -4046
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    with pytest.raises(SimError) as with_position:
        e.set_margin_type(params(marginType="CROSSED"), NOW)
    assert with_position.value.code == -4048
    row = e.position_risk(params(), NOW)[0]
    assert row["isolatedWallet"] == "30.00005000"  # 600.001 / 20
    messages = decoded(e)
    account = next(m for m in messages if isinstance(m, AccountUpdated))
    assert account.positions[0].margin_type == "isolated"


def test_position_mode_is_one_way() -> None:
    e = engine()
    assert e.position_mode({}, NOW) == {"dualSidePosition": False}
    for value, code in (("false", -4059), ("true", -1130)):
        with pytest.raises(SimError) as caught:
            e.set_position_mode({"dualSidePosition": value}, NOW)
        assert caught.value.code == code
    refused(e, -4061, side="BUY", type="MARKET", quantity="0.010", positionSide="LONG")


def test_funding_settles_when_the_announced_time_passes() -> None:
    from tests.sim.test_futures_helpers import mark

    e = engine()
    e.on_quote(quote(), NOW)
    e.new_order(params(side="SELL", type="MARKET", quantity="0.020"), NOW)
    e.drain_events()
    wallet = e.ledger.wallet
    e.on_mark(mark("61000", time_ms=1_000, next_ms=2_000, rate="0.0001"), NOW)
    e.on_mark(mark("61500", time_ms=1_999, next_ms=2_000, rate="0.0003"), NOW)
    assert e.ledger.wallet == wallet
    e.on_mark(mark("62000", time_ms=2_000, next_ms=3_000, rate="0.0002"), NOW + 1)
    # a short receives: -(-0.02) * 62000 * 0.0003 (the rate announced with that time)
    assert e.ledger.wallet == wallet + D("0.372")
    (update,) = decoded(e)
    assert isinstance(update, AccountUpdated)
    assert update.reason == "FUNDING_FEE"
    assert update.positions == ()
    assert update.balances[0].free == wallet + D("0.372")
    # unrealised PnL follows the mark: short 0.02 from 60000 at 62000
    risk = parse_position_risk(wire(e.position_risk(params(), NOW)))
    assert risk[0].unrealized_pnl == D("-40")
    assert risk[0].mark_price == D("62000")


def test_modify_amends_a_resting_order_and_can_make_it_take() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    placed = e.new_order(
        params(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="59000.00"),
        NOW,
    )
    e.drain_events()
    changed = e.modify_order(
        params(orderId=str(placed["orderId"]), side="BUY", quantity="0.020", price="59500.00"),
        NOW + 1,
    )
    parsed = parse_futures_order(wire(changed))
    assert parsed.quantity == D("0.020")
    assert parsed.price == D("59500")
    assert [m.execution_type for m in decoded(e)] == [ExecutionType.AMENDMENT]  # type: ignore[attr-defined]
    with pytest.raises(SimError) as same:
        e.modify_order(
            params(orderId=str(placed["orderId"]), side="BUY", quantity="0.020", price="59500.00"),
            NOW,
        )
    assert same.value.code == -5027
    taken = e.modify_order(
        params(orderId=str(placed["orderId"]), side="BUY", quantity="0.020", price="60000.10"),
        NOW + 2,
    )
    assert taken["status"] == "FILLED"


def test_cancel_and_unknown_orders() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    placed = e.new_order(
        params(
            side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.010", price="61000.00",
            newClientOrderId="my-order-1",
        ),
        NOW,
    )  # fmt: skip
    refused(
        e, -4116, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.010",
        price="61000.00", newClientOrderId="my-order-1",
    )  # fmt: skip
    canceled = e.cancel_order(params(origClientOrderId="my-order-1"), NOW + 1)
    assert canceled["status"] == "CANCELED"
    assert canceled["orderId"] == placed["orderId"]
    assert parse_futures_order(wire(canceled)).status is OrderStatus.CANCELED
    for call, code in ((e.cancel_order, -2011), (e.query_order, -2013)):
        with pytest.raises(SimError) as caught:
            call(params(orderId="1"), NOW)
        assert caught.value.code == code
    with pytest.raises(SimError) as again:
        e.cancel_order(params(orderId=str(placed["orderId"])), NOW)
    assert again.value.code == -2011


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"type": "MARKET", "quantity": "0.010"}, -1102),  # no side
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.010", "price": "60000"}, -1102),  # no TIF
        ({"side": "BUY", "type": "MARKET", "quantity": "0.0101"}, -1111),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.001"}, -4164),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
          "price": "60000.05"}, -4014),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
          "price": "70000.00"}, -4016),
        ({"side": "BUY", "type": "STOP_MARKET", "quantity": "0.010"}, -4120),
        ({"side": "BUY", "type": "MARKET", "quantity": "1x"}, -1100),
        ({"side": "up", "type": "MARKET", "quantity": "0.010"}, -1117),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.010", "newOrderRespType": "FULL"},
         -1136),
    ],
)  # fmt: skip
def test_parameter_errors(values: dict[str, str], code: int) -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    refused(e, code, **values)


def test_unknown_symbol_and_market_without_quote() -> None:
    e = engine()
    with pytest.raises(SimError) as caught:
        e.new_order({"symbol": "DOGEUSDT", "side": "BUY", "type": "MARKET"}, NOW)
    assert caught.value.code == -1121
    refused(e, -4131, side="BUY", type="MARKET", quantity="0.010")


def test_partial_fill_fault_splits_a_market_order() -> None:
    e = engine(fill_model=FillModel(partial_fraction=D("0.5")))
    e.on_quote(quote(), NOW)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    trades = e.user_trades(params(), NOW)
    assert [t["qty"] for t in trades] == ["0.005", "0.005"]
    assert trades[1]["id"] == trades[0]["id"] + 1


def test_user_trades_selection() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    for i in range(3):
        e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW + i * 1000)
    all_trades = e.user_trades(params(), NOW + 5000)
    ids = [t["id"] for t in all_trades]
    assert len(ids) == 3
    assert [t["id"] for t in e.user_trades(params(fromId=str(ids[1])), NOW)] == ids[1:]
    assert [t["id"] for t in e.user_trades(params(limit="1"), NOW + 5000)] == ids[2:]
    window = e.user_trades(params(startTime=str(NOW + 500), endTime=str(NOW + 1500)), NOW)
    assert [t["id"] for t in window] == [ids[1]]
    with pytest.raises(SimError) as caught:
        e.user_trades(params(fromId="1", startTime=str(NOW)), NOW)
    assert caught.value.code == -1128


def test_market_order_margin_uses_available_balance_after_losses() -> None:
    e = engine("200")
    e.on_quote(quote(), NOW)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.050"), NOW)  # 150 margin
    account = e.account({}, NOW)
    assert Decimal(account["totalPositionInitialMargin"]) == D(
        "150"
    )  # at the mark (last trade 60000.00)
    assert Decimal(account["availableBalance"]) < D("50")
    refused(e, -2019, side="BUY", type="MARKET", quantity="0.050")


def test_liquidation_price_cross_and_isolated() -> None:
    e = engine()
    e.on_quote(quote(), NOW)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    assert e.position_risk(params(), NOW)[0]["liquidationPrice"] == "0"  # wallet covers it
    e.new_order(params(side="SELL", type="MARKET", quantity="0.010"), NOW)
    e.set_margin_type(params(marginType="ISOLATED"), NOW)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), NOW)
    # isolated 20x long: (600.001 - 30.00005) / (0.010 * (1 - 0.004))
    liquidation = D(e.position_risk(params(), NOW)[0]["liquidationPrice"])
    assert liquidation == D("57229.01104418")
