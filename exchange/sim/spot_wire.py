"""Binance Spot JSON shapes for the simulator's orders, trades, account and user events.

One function per shape Binance documents (POST/GET/DELETE /api/v3/order, myTrades, account,
executionReport, outboundAccountPosition), with the keys in Binance's order and every amount
written as spot writes it: padded to 8 decimals ("0.01000000"). Values stay ``Decimal``; the
server renders them as JSON strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from exchange.sim.spot_orders import Balances, SpotOrder, SpotTrade

__all__ = [
    "account_position",
    "ack_response",
    "cancel_response",
    "execution_report",
    "fee_bips",
    "full_response",
    "n8",
    "query_response",
    "result_response",
    "trade_row",
]

_QUANTUM: Final = Decimal("1e-8")
_ZERO8: Final = "0.00000000"


def n8(value: Decimal) -> str:
    """An amount as spot spells it: exactly 8 decimals."""
    return format(value.quantize(_QUANTUM, rounding=ROUND_HALF_UP), "f")


def fee_bips(rate: Decimal) -> int:
    """A commission rate as the legacy integer basis points of ``makerCommission`` (0.001 → 10)."""
    return int((rate * 10_000).to_integral_value(rounding=ROUND_HALF_UP))


def ack_response(order: SpotOrder, transact_ms: int) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": transact_ms,
    }


def _has_stop(order: SpotOrder) -> bool:
    return order.order_type not in ("LIMIT", "LIMIT_MAKER", "MARKET")


def _state_fields(order: SpotOrder) -> dict[str, Any]:
    """Price, quantities, status and type, as the RESULT and cancel answers both carry them."""
    return {
        "price": n8(order.price),
        "origQty": n8(order.orig_qty),
        "executedQty": n8(order.executed_qty),
        "origQuoteOrderQty": n8(order.quote_order_qty),
        "cummulativeQuoteQty": n8(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.order_type,
        "side": order.side,
    }


def result_response(order: SpotOrder, transact_ms: int) -> dict[str, Any]:
    body = ack_response(order, transact_ms) | _state_fields(order)
    if _has_stop(order):
        body["stopPrice"] = n8(order.stop_price)
    if order.working_ms >= 0:
        body["workingTime"] = order.working_ms
    body["selfTradePreventionMode"] = order.stp_mode
    return body


def full_response(
    order: SpotOrder, transact_ms: int, trades: Sequence[SpotTrade]
) -> dict[str, Any]:
    return result_response(order, transact_ms) | {
        "fills": [
            {
                "price": n8(t.price),
                "qty": n8(t.qty),
                "commission": n8(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in trades
        ]
    }


def query_response(order: SpotOrder) -> dict[str, Any]:
    """GET /api/v3/order (and each openOrders entry)."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": n8(order.price),
        "origQty": n8(order.orig_qty),
        "executedQty": n8(order.executed_qty),
        "cummulativeQuoteQty": n8(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.order_type,
        "side": order.side,
        "stopPrice": n8(order.stop_price),
        "icebergQty": _ZERO8,
        "time": order.time_ms,
        "updateTime": order.update_ms,
        "isWorking": order.working_ms >= 0,
        "workingTime": order.working_ms,
        "origQuoteOrderQty": n8(order.quote_order_qty),
        "selfTradePreventionMode": order.stp_mode,
    }


def cancel_response(order: SpotOrder, cancel_client_id: str, transact_ms: int) -> dict[str, Any]:
    """DELETE /api/v3/order: ``clientOrderId`` is the cancel's own id, the order's is ``orig``."""
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": transact_ms,
    } | _state_fields(order)
    if _has_stop(order):
        body["stopPrice"] = n8(order.stop_price)
    body["selfTradePreventionMode"] = order.stp_mode
    return body


def trade_row(trade: SpotTrade) -> dict[str, Any]:
    """One GET /api/v3/myTrades entry."""
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": n8(trade.price),
        "qty": n8(trade.qty),
        "quoteQty": n8(trade.quote_qty),
        "commission": n8(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time_ms,
        "isBuyer": trade.is_buyer,
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def execution_report(
    order: SpotOrder,
    *,
    execution: str,
    now_ms: int,
    ignore_id: int,
    trade: SpotTrade | None = None,
    cancel_client_id: str | None = None,
) -> dict[str, Any]:
    """The executionReport event object (without the WS-API subscription wrapper)."""
    return {
        "e": "executionReport",
        "E": now_ms,
        "s": order.symbol,
        # On a cancel `c` is the cancel request's id and `C` the order's own.
        "c": cancel_client_id if cancel_client_id is not None else order.client_order_id,
        "S": order.side,
        "o": order.order_type,
        "f": order.time_in_force,
        "q": n8(order.orig_qty),
        "p": n8(order.price),
        "P": n8(order.stop_price),
        "F": _ZERO8,
        "g": -1,
        "C": order.client_order_id if cancel_client_id is not None else "",
        "x": execution,
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": n8(trade.qty) if trade else _ZERO8,
        "z": n8(order.executed_qty),
        "L": n8(trade.price) if trade else _ZERO8,
        "n": n8(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": trade.time_ms if trade else now_ms,
        "t": trade.trade_id if trade else -1,
        "I": ignore_id,
        "w": order.is_open and order.working_ms >= 0,
        "m": trade.is_maker if trade else False,
        "M": trade is not None,
        "O": order.time_ms,
        "Z": n8(order.cum_quote),
        "Y": n8(trade.quote_qty) if trade else _ZERO8,
        "Q": n8(order.quote_order_qty),
        "W": order.working_ms if order.working_ms >= 0 else order.time_ms,
        "V": order.stp_mode,
    }


def account_position(balances: Balances, assets: Iterable[str], now_ms: int) -> dict[str, Any]:
    """outboundAccountPosition for the assets whose balance changed."""
    return {
        "e": "outboundAccountPosition",
        "E": now_ms,
        "u": now_ms,
        "B": [
            {
                "a": a,
                "f": n8(balances.free.get(a, Decimal(0))),
                "l": n8(balances.locked.get(a, Decimal(0))),
            }
            for a in assets
        ],
    }
