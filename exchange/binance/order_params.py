"""Domain order commands → Binance request parameters, for Spot and USDⓈ-M.

The two venues disagree: a domain ``stop_market`` is ``STOP_LOSS`` on Spot but ``STOP_MARKET``
on Futures (the type tables live in ``rules``, shared with the filter check), post-only is
``LIMIT_MAKER`` on Spot but ``LIMIT`` with ``timeInForce=GTX`` on Futures, and Futures
conditional orders no longer go to ``/fapi/v1/order`` at all but to the algo-order endpoint.
Quantities and prices are sent exactly as given (already rounded by the risk gate); they are
Decimals formatted without exponent by the signing module, never floats.
"""

from __future__ import annotations

from decimal import Decimal

from app.domain.enums import MarketType, OrderType, Side, TimeInForce
from app.domain.orders import SubmitOrder
from exchange.binance.rules import binance_order_type

__all__ = [
    "FUTURES_ALGO_TYPES",
    "UnsupportedOrder",
    "futures_algo_order_params",
    "futures_order_params",
    "is_futures_algo",
    "spot_order_params",
]

Pairs = list[tuple[str, object]]


class UnsupportedOrder(ValueError):
    """The order cannot be expressed on this venue; nothing was sent."""


_SPOT_NEEDS_TIF = {OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT}

FUTURES_ALGO_TYPES = frozenset(
    {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP_MARKET,
    }
)
_FUTURES_LIMIT_PRICED = {OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT}


def _side(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


def _tif(value: TimeInForce) -> str:
    return value.value.upper()


def _require(value: Decimal | None, what: str, order: SubmitOrder) -> Decimal:
    if value is None:
        raise UnsupportedOrder(
            f"{order.order_type.value} order {order.client_order_id} needs {what}"
        )
    return value


_WORKING_TYPES = ("MARK_PRICE", "CONTRACT_PRICE")
_CLOSE_TYPES = {OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET}


def _refuse_algo_only(order: SubmitOrder, where: str) -> None:
    # workingType and closePosition exist only on futures conditional orders.
    if order.working_type is not None:
        raise UnsupportedOrder(f"{where} orders take no working type")
    if order.close_position:
        raise UnsupportedOrder(f"{where} orders cannot close the position")


def spot_order_params(order: SubmitOrder) -> Pairs:
    """Parameters for ``POST /api/v3/order`` (``newOrderRespType=FULL`` returns the fills)."""
    _refuse_algo_only(order, "spot")
    binance_type = binance_order_type(MarketType.SPOT, order.order_type)
    if binance_type is None:
        raise UnsupportedOrder(f"spot has no {order.order_type.value} orders")
    if order.reduce_only:
        raise UnsupportedOrder("spot orders cannot be reduce-only")
    if order.time_in_force is TimeInForce.GTX:
        raise UnsupportedOrder("spot post-only is order type limit_maker, not time in force gtx")
    if order.time_in_force is TimeInForce.GTD:
        raise UnsupportedOrder("spot has no gtd time in force (only gtc, ioc, fok)")
    pairs: Pairs = [
        ("symbol", order.symbol),
        ("side", _side(order.side)),
        ("type", binance_type),
    ]
    if order.order_type in _SPOT_NEEDS_TIF:
        pairs.append(("timeInForce", _tif(order.time_in_force or TimeInForce.GTC)))
    pairs.append(("quantity", order.quantity))
    if order.order_type in _SPOT_NEEDS_TIF or order.order_type is OrderType.LIMIT_MAKER:
        pairs.append(("price", _require(order.price, "a price", order)))
    if order.order_type in {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
    }:
        pairs.append(("stopPrice", _require(order.stop_price, "a stop price", order)))
    pairs.append(("newClientOrderId", order.client_order_id))
    pairs.append(("newOrderRespType", "FULL"))
    return pairs


def _refuse_gtd(order: SubmitOrder) -> None:
    # Binance needs goodTillDate with GTD, and SubmitOrder carries no expiry yet.
    if order.time_in_force is TimeInForce.GTD:
        raise UnsupportedOrder("gtd orders need an expiry time, which orders cannot carry yet")


def is_futures_algo(order: SubmitOrder) -> bool:
    return order.order_type in FUTURES_ALGO_TYPES


def futures_order_params(order: SubmitOrder) -> Pairs:
    """Parameters for ``POST /fapi/v1/order`` (MARKET and LIMIT only; see the algo variant)."""
    if is_futures_algo(order):
        raise UnsupportedOrder(
            f"{order.order_type.value} is a conditional order: use the algo-order endpoint"
        )
    binance_type = binance_order_type(MarketType.USDM, order.order_type)
    if binance_type is None:
        raise UnsupportedOrder(f"futures has no {order.order_type.value} orders")
    _refuse_gtd(order)
    _refuse_algo_only(order, f"futures {order.order_type.value}")
    pairs: Pairs = [
        ("symbol", order.symbol),
        ("side", _side(order.side)),
        ("type", binance_type),
    ]
    if order.order_type is OrderType.LIMIT_MAKER:
        # Futures has no LIMIT_MAKER type: post-only is a LIMIT with time in force GTX.
        pairs.append(("timeInForce", "GTX"))
        pairs.append(("quantity", order.quantity))
        pairs.append(("price", _require(order.price, "a price", order)))
    elif order.order_type is OrderType.LIMIT:
        pairs.append(("timeInForce", _tif(order.time_in_force or TimeInForce.GTC)))
        pairs.append(("quantity", order.quantity))
        pairs.append(("price", _require(order.price, "a price", order)))
    else:
        pairs.append(("quantity", order.quantity))
    if order.reduce_only:
        pairs.append(("reduceOnly", True))
    pairs.append(("newClientOrderId", order.client_order_id))
    pairs.append(("newOrderRespType", "RESULT"))
    return pairs


def futures_algo_order_params(order: SubmitOrder) -> Pairs:
    """Parameters for ``POST /fapi/v1/algoOrder`` (``algoType=CONDITIONAL``).

    The client order id travels as ``clientAlgoId``; when the trigger fires Binance creates a
    regular order whose id is reported in ``ALGO_UPDATE``. ``working_type`` is sent as
    ``workingType`` when set; ``close_position`` sends ``closePosition=true`` instead of the
    quantity and reduce-only flag (Binance refuses them together).
    """
    if not is_futures_algo(order):
        raise UnsupportedOrder(f"{order.order_type.value} is not a conditional order")
    if order.order_type is OrderType.TRAILING_STOP_MARKET:
        # Binance needs a callbackRate, which SubmitOrder does not carry yet.
        raise UnsupportedOrder("trailing_stop_market needs a callback rate: not supported yet")
    _refuse_gtd(order)
    if order.working_type is not None and order.working_type not in _WORKING_TYPES:
        raise UnsupportedOrder(
            f"working type {order.working_type!r} is not one of {_WORKING_TYPES}"
        )
    if order.close_position and order.order_type not in _CLOSE_TYPES:
        raise UnsupportedOrder(f"{order.order_type.value} orders cannot close the position")
    pairs: Pairs = [
        ("algoType", "CONDITIONAL"),
        ("symbol", order.symbol),
        ("side", _side(order.side)),
        ("type", binance_order_type(MarketType.USDM, order.order_type)),
    ]
    if not order.close_position:
        pairs.append(("quantity", order.quantity))
    pairs.append(("triggerPrice", _require(order.stop_price, "a trigger price", order)))
    if order.order_type in _FUTURES_LIMIT_PRICED:
        pairs.append(("timeInForce", _tif(order.time_in_force or TimeInForce.GTC)))
        pairs.append(("price", _require(order.price, "a price", order)))
    if order.working_type is not None:
        pairs.append(("workingType", order.working_type))
    if order.close_position:
        pairs.append(("closePosition", True))
    elif order.reduce_only:
        pairs.append(("reduceOnly", True))
    pairs.append(("clientAlgoId", order.client_order_id))
    return pairs
