"""Read-only order and trade requests of the futures engine.

GET /fapi/v1/order (-2013 for an unknown order), GET /fapi/v1/openOrders (one symbol or all)
and GET /fapi/v1/userTrades with Binance's selection rules: ``orderId`` narrows to one order;
``fromId`` lists trades from that id up (and cannot be combined with a time range, -1128);
``startTime``/``endTime`` select a window of at most 7 days (-1127); with neither, the latest
trades of the last 7 days; ``limit`` defaults to 500, at most 1000.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from exchange.sim.errors import SimError
from exchange.sim.futures_params import int_param, mandatory
from exchange.sim.futures_state import EngineState
from exchange.sim.futures_wire import order_json, trade_json

__all__ = ["OrderQueries"]

_WEEK_MS: Final = 7 * 24 * 3600 * 1000
_DEFAULT_LIMIT: Final = 500
_MAX_LIMIT: Final = 1000


class OrderQueries(EngineState):
    def query_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """GET /fapi/v1/order (WS order.status)."""
        symbol = self.rules(mandatory(params, "symbol"))
        order = self.book.find(symbol.symbol, params, -2013)
        return order_json(symbol, order, query=True)

    def open_orders(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v1/openOrders: one symbol, or every symbol when none is given."""
        name = params.get("symbol") or None
        names = [self.rules(name).symbol] if name is not None else sorted(self.symbols)
        return [
            order_json(self.symbols[s], o, query=True)
            for s in names
            for o in self.book.open_orders(s)
        ]

    def user_trades(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v1/userTrades."""
        symbol = self.rules(mandatory(params, "symbol"))
        order_id = int_param(params, "orderId")
        start = int_param(params, "startTime")
        end = int_param(params, "endTime")
        from_id = int_param(params, "fromId")
        limit = int_param(params, "limit") or _DEFAULT_LIMIT
        if limit <= 0 or limit > _MAX_LIMIT:
            raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
        if from_id is not None and (start is not None or end is not None):
            raise SimError(-1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None:
            if end < start:
                raise SimError(-1023, "Start time is greater than end time.")
            if end - start > _WEEK_MS:
                raise SimError(-1127, "More than 7 days between startTime and endTime.")
        trades = self.book.trades[symbol.symbol]
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        if from_id is not None:
            chosen = [t for t in trades if t.trade_id >= from_id][:limit]
        elif start is not None or end is not None:
            low = start if start is not None else (end or 0) - _WEEK_MS
            high = end if end is not None else low + _WEEK_MS
            chosen = [t for t in trades if low <= t.time_ms <= high][:limit]
        elif order_id is not None:
            chosen = trades[-limit:]
        else:
            recent = [t for t in trades if t.time_ms >= now_ms - _WEEK_MS]
            chosen = recent[-limit:]
        return [trade_json(symbol, t) for t in chosen]
