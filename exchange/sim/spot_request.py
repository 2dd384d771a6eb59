"""A spot new-order request read and checked as Binance checks it, before any state changes.

``parse_new_order`` turns the request's string parameters into a ``SpotRequest`` or raises the
gateway's error (-1102 missing, -1100 malformed, -1111 too precise, -1106 not required,
-1115/-1116/-1117 bad enum, -1121 unknown symbol). ``check_filters`` then applies the
symbol's filters as the simulator advertises them in exchangeInfo (PRICE_FILTER,
PERCENT_PRICE_BY_SIDE, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL, MAX_NUM_ORDERS) and raises
``-1013 "Filter failure: <NAME>"``. The order of the filter checks is the simulator's
choice (Binance does not document it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.errors import SimError
from exchange.sim.matching import Quote
from exchange.sim.order_params_check import (
    both_missing,
    client_id_param,
    decimal_param,
    enum_param,
    mandatory,
    not_required,
    optional,
)

__all__ = ["SpotRequest", "check_filters", "lookup_symbol", "parse_new_order"]

_DECIMALS: Final = 8  # spot's base/quote asset precision
_SIDES: Final = ("BUY", "SELL")
_TYPES: Final = (
    "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)  # fmt: skip
_TIFS: Final = ("GTC", "IOC", "FOK")
_RESP_TYPES: Final = ("ACK", "RESULT", "FULL")
_STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
# Conditional orders are advertised but not simulated: refused with Binance's own -2010 text.
_UNSUPPORTED: Final = {
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
}
# PERCENT_PRICE_BY_SIDE multipliers and NOTIONAL max as catalog.py advertises them.
_MULT_UP: Final = Decimal(5)
_MULT_DOWN: Final = Decimal("0.2")
_MAX_NOTIONAL: Final = Decimal(9_000_000)
_MAX_NUM_ORDERS: Final = 200


@dataclass(frozen=True, slots=True)
class SpotRequest:
    symbol: SimSymbol
    side: str
    order_type: str
    time_in_force: str  # "GTC" for MARKET/LIMIT_MAKER, as Binance reports them
    quantity: Decimal | None
    quote_order_qty: Decimal | None
    price: Decimal | None
    client_order_id: str | None
    resp_type: str
    stp_mode: str


def lookup_symbol(params: Mapping[str, str], symbols: Mapping[str, SimSymbol]) -> SimSymbol:
    """The request's ``symbol``: -1102 when missing, -1121 when not listed."""
    name = mandatory(params, "symbol")
    found = symbols.get(name)
    if found is None:
        raise SimError(-1121, "Invalid symbol.")
    return found


def parse_new_order(params: Mapping[str, str], symbols: Mapping[str, SimSymbol]) -> SpotRequest:
    symbol = lookup_symbol(params, symbols)
    side = enum_param(params, "side", _SIDES)
    order_type = enum_param(params, "type", _TYPES)
    if order_type in _UNSUPPORTED:
        raise SimError(-2010, _UNSUPPORTED[order_type])
    default_resp = "FULL" if order_type in ("MARKET", "LIMIT") else "ACK"
    resp_type = enum_param(params, "newOrderRespType", _RESP_TYPES, default=default_resp)
    stp_mode = enum_param(params, "selfTradePreventionMode", _STP_MODES, default="EXPIRE_MAKER")
    client_id = client_id_param(params, "newClientOrderId")
    quantity: Decimal | None = None
    quote_qty: Decimal | None = None
    price: Decimal | None = None
    tif = "GTC"
    if order_type == "MARKET":
        not_required(params, "timeInForce", "price")
        has_qty = optional(params, "quantity") is not None
        has_quote = optional(params, "quoteOrderQty") is not None
        if not has_qty and not has_quote:
            raise both_missing("quantity", "quoteOrderQty")
        if has_qty and has_quote:
            raise SimError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        if has_qty:
            quantity = decimal_param(params, "quantity", max_decimals=_DECIMALS)
        else:
            quote_qty = decimal_param(params, "quoteOrderQty", max_decimals=_DECIMALS)
    else:
        if order_type == "LIMIT":
            tif = enum_param(params, "timeInForce", _TIFS)
        else:
            not_required(params, "timeInForce")
        not_required(params, "quoteOrderQty")
        quantity = decimal_param(params, "quantity", max_decimals=_DECIMALS)
        price = decimal_param(params, "price", max_decimals=_DECIMALS)
    return SpotRequest(
        symbol, side, order_type, tif, quantity, quote_qty, price, client_id, resp_type, stp_mode
    )


def _filter_failure(name: str) -> SimError:
    return SimError(-1013, f"Filter failure: {name}")


def _on_grid(value: Decimal, start: Decimal, step: Decimal) -> bool:
    return step == 0 or (value - start) % step == 0


def check_filters(request: SpotRequest, quote: Quote | None, open_orders: int) -> None:
    """Raise -1013 for the first filter the request breaks."""
    s = request.symbol
    reference = quote.last if quote is not None and quote.last > 0 else None
    price, qty = request.price, request.quantity
    if request.order_type != "MARKET":
        assert price is not None  # parse_new_order guarantees it
        if price <= 0:
            raise SimError(-1013, "Invalid price.")
        if (
            price < s.min_price
            or price > s.max_price
            or not _on_grid(price, s.min_price, s.tick_size)
        ):
            raise _filter_failure("PRICE_FILTER")
        if reference is not None and not (reference * _MULT_DOWN <= price <= reference * _MULT_UP):
            raise _filter_failure("PERCENT_PRICE_BY_SIDE")
    if qty is not None:
        if qty <= 0:
            raise SimError(-1013, "Invalid quantity.")
        if qty < s.min_qty or qty > s.max_qty or not _on_grid(qty, s.min_qty, s.step_size):
            raise _filter_failure("LOT_SIZE")
        if request.order_type == "MARKET" and qty > s.market_max_qty:
            raise _filter_failure("MARKET_LOT_SIZE")
    if request.quote_order_qty is not None and request.quote_order_qty <= 0:
        raise SimError(-1013, "Invalid quantity.")
    notional: Decimal | None
    if request.order_type == "MARKET":
        # applyMinToMarket: market orders are measured at the reference (average) price.
        notional = request.quote_order_qty
        if notional is None and qty is not None and reference is not None:
            notional = qty * reference
        if notional is not None and notional < s.min_notional:
            raise _filter_failure("NOTIONAL")
    else:
        assert price is not None
        assert qty is not None
        notional = price * qty
        if notional < s.min_notional or notional > _MAX_NOTIONAL:
            raise _filter_failure("NOTIONAL")
    if open_orders >= _MAX_NUM_ORDERS and request.order_type != "MARKET":
        raise _filter_failure("MAX_NUM_ORDERS")
