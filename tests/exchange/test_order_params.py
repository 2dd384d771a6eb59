"""Domain order commands → Binance request parameters, for every order type and time in force.

The expected lists are exact, order included: the parameters are signed in the order they are
sent, and a missing or extra key is what Binance would reject (or worse, accept differently).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from app.domain import OrderType, Side, SubmitOrder, TimeInForce
from exchange.binance.order_params import (
    FUTURES_ALGO_TYPES,
    UnsupportedOrder,
    futures_algo_order_params,
    futures_order_params,
    is_futures_algo,
    spot_order_params,
)
from exchange.binance.signing import encode_query

CID = "tb-s1-000042"
QTY = Decimal("0.00100000")
PRICE = Decimal("30000.01")
STOP = Decimal("29500.50")


def submit(
    order_type: OrderType,
    *,
    side: Side = Side.BUY,
    quantity: Decimal = QTY,
    price: Decimal | None = PRICE,
    stop_price: Decimal | None = STOP,
    tif: TimeInForce | None = None,
    reduce_only: bool = False,
) -> SubmitOrder:
    # Price and stop price are set on every order by default, so each case also proves that
    # a type which takes neither does not send them.
    return SubmitOrder(
        CID, "s1", "BTCUSDT", side, order_type, quantity, 1_700_000_000_000,
        price=price, stop_price=stop_price, time_in_force=tif, reduce_only=reduce_only,
    )  # fmt: skip


HEAD = [("symbol", "BTCUSDT"), ("side", "BUY")]
SPOT_TAIL = [("newClientOrderId", CID), ("newOrderRespType", "FULL")]
FUTURES_TAIL = [("newClientOrderId", CID), ("newOrderRespType", "RESULT")]


# -- spot --------------------------------------------------------------------------------------


# What each type adds between the head (symbol, side) and the tail (ids, response type).
SPOT_BODY: dict[OrderType, list[tuple[str, object]]] = {
    OrderType.MARKET: [("type", "MARKET"), ("quantity", QTY)],
    OrderType.LIMIT: [
        ("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", QTY), ("price", PRICE),
    ],
    OrderType.LIMIT_MAKER: [("type", "LIMIT_MAKER"), ("quantity", QTY), ("price", PRICE)],
    OrderType.STOP_MARKET: [("type", "STOP_LOSS"), ("quantity", QTY), ("stopPrice", STOP)],
    OrderType.STOP_LIMIT: [
        ("type", "STOP_LOSS_LIMIT"), ("timeInForce", "GTC"), ("quantity", QTY),
        ("price", PRICE), ("stopPrice", STOP),
    ],
    OrderType.TAKE_PROFIT_MARKET: [("type", "TAKE_PROFIT"), ("quantity", QTY), ("stopPrice", STOP)],
    OrderType.TAKE_PROFIT_LIMIT: [
        ("type", "TAKE_PROFIT_LIMIT"), ("timeInForce", "GTC"), ("quantity", QTY),
        ("price", PRICE), ("stopPrice", STOP),
    ],
}  # fmt: skip


@pytest.mark.parametrize("order_type", list(SPOT_BODY))
def test_spot_params_per_order_type(order_type: OrderType) -> None:
    assert spot_order_params(submit(order_type)) == [*HEAD, *SPOT_BODY[order_type], *SPOT_TAIL]


def test_spot_has_every_type_but_trailing_stop() -> None:
    assert set(SPOT_BODY) == set(OrderType) - {OrderType.TRAILING_STOP_MARKET}
    with pytest.raises(UnsupportedOrder, match="spot has no trailing_stop_market"):
        spot_order_params(submit(OrderType.TRAILING_STOP_MARKET))


def test_spot_sell_side() -> None:
    params = dict(spot_order_params(submit(OrderType.MARKET, side=Side.SELL)))
    assert params["side"] == "SELL"


@pytest.mark.parametrize(
    ("tif", "wire"),
    [(None, "GTC"), (TimeInForce.GTC, "GTC"), (TimeInForce.IOC, "IOC"), (TimeInForce.FOK, "FOK")],
)
@pytest.mark.parametrize(
    "order_type", [OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT]
)
def test_spot_time_in_force_on_limit_types(
    order_type: OrderType, tif: TimeInForce | None, wire: str
) -> None:
    assert dict(spot_order_params(submit(order_type, tif=tif)))["timeInForce"] == wire


@pytest.mark.parametrize(
    "order_type",
    [
        OrderType.MARKET,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_MARKET,
        OrderType.TAKE_PROFIT_MARKET,
    ],
)
def test_spot_types_without_time_in_force_never_send_it(order_type: OrderType) -> None:
    # Binance rejects timeInForce on these types (-1106 "parameter sent when not required").
    params = dict(spot_order_params(submit(order_type, tif=TimeInForce.IOC)))
    assert "timeInForce" not in params


@pytest.mark.parametrize("order_type", [OrderType.LIMIT, OrderType.LIMIT_MAKER])
def test_spot_refuses_gtx(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match="limit_maker"):
        spot_order_params(submit(order_type, tif=TimeInForce.GTX))


@pytest.mark.parametrize("order_type", [OrderType.LIMIT, OrderType.STOP_LIMIT])
def test_spot_refuses_gtd(order_type: OrderType) -> None:
    # Spot knows GTC, IOC and FOK only; GTD would be refused by the venue after the trip.
    with pytest.raises(UnsupportedOrder, match="spot has no gtd"):
        spot_order_params(submit(order_type, tif=TimeInForce.GTD))


def test_spot_refuses_reduce_only() -> None:
    with pytest.raises(UnsupportedOrder, match="reduce-only"):
        spot_order_params(submit(OrderType.MARKET, reduce_only=True))


@pytest.mark.parametrize(
    "order_type",
    [
        OrderType.LIMIT,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
    ],
)
def test_spot_priced_types_need_a_price(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match=f"{order_type.value} order {CID} needs a price"):
        spot_order_params(submit(order_type, price=None))


@pytest.mark.parametrize(
    "order_type",
    [
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
    ],
)
def test_spot_stop_types_need_a_stop_price(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match="needs a stop price"):
        spot_order_params(submit(order_type, stop_price=None))


def test_spot_market_needs_neither_price() -> None:
    params = spot_order_params(submit(OrderType.MARKET, price=None, stop_price=None))
    assert params == [*HEAD, ("type", "MARKET"), ("quantity", QTY), *SPOT_TAIL]


# -- futures: /fapi/v1/order -------------------------------------------------------------------


def test_futures_market() -> None:
    params = futures_order_params(submit(OrderType.MARKET))
    assert params == [*HEAD, ("type", "MARKET"), ("quantity", QTY), *FUTURES_TAIL]


def test_futures_limit() -> None:
    params = futures_order_params(submit(OrderType.LIMIT))
    assert params == [
        *HEAD, ("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", QTY), ("price", PRICE),
        *FUTURES_TAIL,
    ]  # fmt: skip


@pytest.mark.parametrize("order_type", [OrderType.MARKET, OrderType.LIMIT])
def test_futures_reduce_only_comes_before_the_ids(order_type: OrderType) -> None:
    params = futures_order_params(submit(order_type, side=Side.SELL, reduce_only=True))
    assert params[-3:] == [("reduceOnly", True), *FUTURES_TAIL]
    assert dict(params)["side"] == "SELL"
    assert "reduceOnly" not in dict(futures_order_params(submit(order_type)))


@pytest.mark.parametrize(
    ("tif", "wire"),
    [
        (None, "GTC"),
        (TimeInForce.GTC, "GTC"),
        (TimeInForce.IOC, "IOC"),
        (TimeInForce.FOK, "FOK"),
        (TimeInForce.GTX, "GTX"),  # post-only on futures
    ],
)
def test_futures_limit_time_in_force(tif: TimeInForce | None, wire: str) -> None:
    assert dict(futures_order_params(submit(OrderType.LIMIT, tif=tif)))["timeInForce"] == wire


def test_futures_market_ignores_time_in_force() -> None:
    assert "timeInForce" not in dict(
        futures_order_params(submit(OrderType.MARKET, tif=TimeInForce.IOC))
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: futures_order_params(submit(OrderType.LIMIT, tif=TimeInForce.GTD)),
        lambda: futures_algo_order_params(submit(OrderType.STOP_LIMIT, tif=TimeInForce.GTD)),
    ],
    ids=["order", "algo_order"],
)
def test_futures_refuses_gtd_without_an_expiry(build: Callable[[], object]) -> None:
    # Binance requires goodTillDate with GTD, and SubmitOrder carries no expiry.
    with pytest.raises(UnsupportedOrder, match="gtd orders need an expiry time"):
        build()


def test_futures_limit_maker_is_a_post_only_limit() -> None:
    params = futures_order_params(submit(OrderType.LIMIT_MAKER, tif=TimeInForce.GTC))
    assert params[:6] == [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTX"),
        ("quantity", QTY),
        ("price", PRICE),
    ]


@pytest.mark.parametrize("order_type", sorted(FUTURES_ALGO_TYPES))
def test_futures_conditional_types_are_sent_elsewhere(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match="use the algo-order endpoint"):
        futures_order_params(submit(order_type))


def test_futures_limit_needs_a_price() -> None:
    with pytest.raises(UnsupportedOrder, match="needs a price"):
        futures_order_params(submit(OrderType.LIMIT, price=None))


# -- futures: /fapi/v1/algoOrder ---------------------------------------------------------------


def test_conditional_types_are_exactly_the_algo_ones() -> None:
    conditional = {t for t in OrderType if is_futures_algo(submit(t))}
    assert (
        conditional
        == set(FUTURES_ALGO_TYPES)
        == {
            OrderType.STOP_MARKET,
            OrderType.STOP_LIMIT,
            OrderType.TAKE_PROFIT_MARKET,
            OrderType.TAKE_PROFIT_LIMIT,
            OrderType.TRAILING_STOP_MARKET,
        }
    )


ALGO_HEAD = [("algoType", "CONDITIONAL"), *HEAD]


ALGO_BODY: dict[OrderType, list[tuple[str, object]]] = {
    OrderType.STOP_MARKET: [("type", "STOP_MARKET"), ("quantity", QTY), ("triggerPrice", STOP)],
    OrderType.STOP_LIMIT: [
        ("type", "STOP"), ("quantity", QTY), ("triggerPrice", STOP), ("timeInForce", "GTC"),
        ("price", PRICE),
    ],
    OrderType.TAKE_PROFIT_MARKET: [
        ("type", "TAKE_PROFIT_MARKET"), ("quantity", QTY), ("triggerPrice", STOP),
    ],
    OrderType.TAKE_PROFIT_LIMIT: [
        ("type", "TAKE_PROFIT"), ("quantity", QTY), ("triggerPrice", STOP),
        ("timeInForce", "GTC"), ("price", PRICE),
    ],
}  # fmt: skip


@pytest.mark.parametrize("order_type", list(ALGO_BODY))
def test_futures_algo_params_per_order_type(order_type: OrderType) -> None:
    params = futures_algo_order_params(submit(order_type))
    assert params == [*ALGO_HEAD, *ALGO_BODY[order_type], ("clientAlgoId", CID)]


def test_futures_algo_reduce_only_and_time_in_force() -> None:
    params = futures_algo_order_params(
        submit(OrderType.STOP_LIMIT, tif=TimeInForce.IOC, reduce_only=True)
    )
    assert params[-4:] == [
        ("timeInForce", "IOC"),
        ("price", PRICE),
        ("reduceOnly", True),
        ("clientAlgoId", CID),
    ]
    market_like = dict(
        futures_algo_order_params(submit(OrderType.STOP_MARKET, tif=TimeInForce.IOC))
    )
    assert "timeInForce" not in market_like
    assert "price" not in market_like


def test_futures_algo_refuses_trailing_stop() -> None:
    with pytest.raises(UnsupportedOrder, match="callback rate"):
        futures_algo_order_params(submit(OrderType.TRAILING_STOP_MARKET))


@pytest.mark.parametrize(
    "order_type", sorted(FUTURES_ALGO_TYPES - {OrderType.TRAILING_STOP_MARKET})
)
def test_futures_algo_needs_a_trigger_price(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match="needs a trigger price"):
        futures_algo_order_params(submit(order_type, stop_price=None))


@pytest.mark.parametrize("order_type", [OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT])
def test_futures_algo_limit_types_need_a_price(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match="needs a price"):
        futures_algo_order_params(submit(order_type, price=None))


@pytest.mark.parametrize("order_type", [OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT_MAKER])
def test_futures_algo_refuses_plain_orders(order_type: OrderType) -> None:
    with pytest.raises(UnsupportedOrder, match="is not a conditional order"):
        futures_algo_order_params(submit(order_type))


# -- values ------------------------------------------------------------------------------------


def test_decimals_pass_through_unchanged_and_render_without_exponent() -> None:
    tiny, wide, trailing = Decimal("1E-8"), Decimal("6.5E+4"), Decimal("2.50")
    order = submit(OrderType.STOP_LIMIT, quantity=tiny, price=wide, stop_price=trailing)
    for params, stop_key in [
        (spot_order_params(order), "stopPrice"),
        (futures_algo_order_params(order), "triggerPrice"),
    ]:
        values = dict(params)
        # The same objects: no rounding, no normalising, no float on the way.
        assert values["quantity"] is tiny
        assert values["price"] is wide
        assert values[stop_key] is trailing
        wire = dict(parse_qsl(encode_query(params)))
        assert (wire["quantity"], wire["price"], wire[stop_key]) == ("0.00000001", "65000", "2.50")
    futures = dict(futures_order_params(submit(OrderType.LIMIT, quantity=tiny, price=trailing)))
    assert futures["quantity"] is tiny
    assert futures["price"] is trailing


def test_unsupported_order_is_a_value_error() -> None:
    assert issubclass(UnsupportedOrder, ValueError)
