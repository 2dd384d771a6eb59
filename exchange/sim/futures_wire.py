"""Binance USD-M JSON shapes of the simulated futures account's orders, trades and events.

Numbers are written as Binance writes them: prices and quantities at the symbol's precision
("2500.00", "1.000"), money (commission, PnL, balances) with 8 decimals ("0.50000000"),
cumulative quote amounts plain ("13.89175"). Field sets follow the USD-M docs and the
recorded ORDER_TRADE_UPDATE payloads (which add ``W`` and ``pm``-less variants; both ``W``
and ``pm`` are sent here).

Unverified against the live exchange: whether ``N``/``n`` are ``null`` or ``"USDT"``/``"0"``
on events without a fill (docs say the latter, one recording the former); the ``avgPrice``
precision of REST answers; ``V``/``selfTradePreventionMode`` default (``NONE`` here).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.futures_positions import MONEY, Position, isolated_wallet
from exchange.sim.futures_records import SimOrder, SimTrade

__all__ = [
    "account_update_event",
    "money_str",
    "order_event",
    "order_json",
    "plain",
    "price_str",
    "qty_str",
    "trade_json",
]

_STP: Final = "NONE"


def price_str(symbol: SimSymbol, value: Decimal) -> str:
    return f"{value:.{symbol.price_precision}f}"


def qty_str(symbol: SimSymbol, value: Decimal) -> str:
    return f"{value:.{symbol.quantity_precision}f}"


def money_str(value: Decimal) -> str:
    return f"{value.quantize(MONEY):f}"


def plain(value: Decimal) -> str:
    """Up to 8 decimals without trailing zeros ("13.89175", "0")."""
    text = f"{value.quantize(MONEY):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _avg_str(symbol: SimSymbol, order: SimOrder) -> str:
    avg = order.avg_price
    if avg == avg.quantize(Decimal(1).scaleb(-symbol.price_precision)):
        return price_str(symbol, avg)
    return plain(avg)


def order_json(
    symbol: SimSymbol, order: SimOrder, *, query: bool = False, status: str | None = None
) -> dict[str, Any]:
    """POST/PUT/DELETE /fapi/v1/order (``query=False``) or GET order/openOrders (``True``)."""
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": status or order.status,
        "clientOrderId": order.client_order_id,
        "price": price_str(symbol, order.price),
        "avgPrice": _avg_str(symbol, order),
        "origQty": qty_str(symbol, order.orig_qty),
        "executedQty": qty_str(symbol, order.executed_qty),
        "cumQuote": plain(order.cum_quote),
        "timeInForce": order.time_in_force,
        "type": order.order_type,
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": order.order_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": _STP,
        "goodTillDate": 0,
    }
    if query:
        body["time"] = order.time_ms
    else:
        body["cumQty"] = body["executedQty"]
    body["updateTime"] = order.update_time_ms
    return body


def order_event(
    symbol: SimSymbol,
    order: SimOrder,
    *,
    execution: str,
    now_ms: int,
    bids_notional: Decimal,
    asks_notional: Decimal,
    trade: SimTrade | None = None,
) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE for one change of ``order`` (``trade`` when it is a fill)."""
    o: dict[str, Any] = {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.order_type,
        "f": order.time_in_force,
        "q": qty_str(symbol, order.orig_qty),
        "p": price_str(symbol, order.price),
        "ap": _avg_str(symbol, order),
        "sp": "0",
        "x": execution,
        "X": order.status,
        "i": order.order_id,
        "l": qty_str(symbol, trade.qty if trade else Decimal(0)),
        "z": qty_str(symbol, order.executed_qty),
        "L": price_str(symbol, trade.price if trade else Decimal(0)),
        "N": "USDT",
        "n": money_str(trade.commission) if trade else "0",
        "T": now_ms,
        "t": trade.trade_id if trade else 0,
        "b": plain(bids_notional),
        "a": plain(asks_notional),
        "m": trade.maker if trade else False,
        "R": order.reduce_only,
        "wt": "CONTRACT_PRICE",
        "ot": order.order_type,
        "ps": "BOTH",
        "cp": False,
        "AP": None,
        "cr": None,
        "pP": False,
        "si": 0,
        "ss": 0,
        "rp": money_str(trade.realized_pnl) if trade else "0",
        "V": _STP,
        "pm": "NONE",
        "gtd": 0,
        "W": order.time_ms,
    }
    return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": now_ms, "o": o}


def account_update_event(
    *,
    reason: str,
    now_ms: int,
    asset: str,
    wallet: Decimal,
    cross_wallet: Decimal,
    balance_change: Decimal,
    positions: list[tuple[SimSymbol, Position, Decimal]],
) -> dict[str, Any]:
    """ACCOUNT_UPDATE: ``positions`` are (symbol, position, unrealised PnL) to report."""
    rows = []
    for symbol, position, upnl in positions:
        rows.append(
            {
                "s": position.symbol,
                "pa": qty_str(symbol, position.amount),
                "ep": plain(position.entry_price),
                "bep": plain(position.entry_price),
                "cr": money_str(position.accumulated_realized),
                "up": money_str(upnl),
                "mt": "isolated" if position.isolated else "cross",
                "iw": money_str(isolated_wallet(position)),
                "ps": "BOTH",
            }
        )
    balance = {
        "a": asset,
        "wb": money_str(wallet),
        "cw": money_str(cross_wallet),
        "bc": money_str(balance_change),
    }
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "a": {"m": reason, "B": [balance], "P": rows},
    }


def trade_json(symbol: SimSymbol, trade: SimTrade) -> dict[str, Any]:
    """One row of GET /fapi/v1/userTrades."""
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "side": trade.side,
        "price": price_str(symbol, trade.price),
        "qty": qty_str(symbol, trade.qty),
        "realizedPnl": money_str(trade.realized_pnl),
        "marginAsset": "USDT",
        "quoteQty": plain(trade.quote_qty),
        "commission": money_str(trade.commission),
        "commissionAsset": "USDT",
        "time": trade.time_ms,
        "positionSide": "BOTH",
        "buyer": trade.side == "BUY",
        "maker": trade.maker,
    }
