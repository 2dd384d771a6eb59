"""Read-only spot answers built from the engine's state: myTrades and allOrders selection, and
the account.

``select_trades`` applies GET /api/v3/myTrades' parameters (orderId, fromId, startTime,
endTime, limit default 500 / max 1000) with Binance's refusals for bad combinations;
``select_orders`` applies GET /api/v3/allOrders' (orderId, startTime, endTime, limit);
``account_response`` renders GET /api/v3/account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from exchange.sim.errors import SimError
from exchange.sim.matching import Fees
from exchange.sim.order_params_check import int_param
from exchange.sim.spot_orders import Balances, SpotOrder, SpotTrade
from exchange.sim.spot_wire import fee_bips, n8

__all__ = ["account_response", "select_orders", "select_trades"]

_DAY_MS: Final = 24 * 3600 * 1000
_DEFAULT_LIMIT: Final = 500
_MAX_LIMIT: Final = 1000


def _limit(params: Mapping[str, str]) -> int:
    asked = int_param(params, "limit")
    if asked is None:
        return _DEFAULT_LIMIT
    if asked <= 0:
        raise SimError(-1100, "Illegal characters found in parameter 'limit'.")
    return min(asked, _MAX_LIMIT)


def select_trades(trades: Sequence[SpotTrade], params: Mapping[str, str]) -> list[SpotTrade]:
    order_id = int_param(params, "orderId")
    start = int_param(params, "startTime")
    end = int_param(params, "endTime")
    from_id = int_param(params, "fromId")
    limit = _limit(params)
    if from_id is not None and (start is not None or end is not None):
        raise SimError(-1128, "Combination of optional parameters invalid.")
    if start is not None and end is not None and end - start > _DAY_MS:
        raise SimError(-1127, "More than 24 hours between startTime and endTime.")
    chosen = [
        t
        for t in trades
        if (order_id is None or t.order_id == order_id)
        and (from_id is None or t.trade_id >= from_id)
        and (start is None or t.time_ms >= start)
        and (end is None or t.time_ms <= end)
    ]
    # fromId / startTime read forwards from there; otherwise the most recent ones.
    return chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]


def select_orders(orders: Sequence[SpotOrder], params: Mapping[str, str]) -> list[SpotOrder]:
    """``orders`` in id order; open and final alike, as allOrders returns them."""
    order_id = int_param(params, "orderId")
    start = int_param(params, "startTime")
    end = int_param(params, "endTime")
    limit = _limit(params)
    if start is not None and end is not None and end - start > _DAY_MS:
        raise SimError(-1127, "More than 24 hours between startTime and endTime.")
    chosen = [
        o
        for o in orders
        if (order_id is None or o.order_id >= order_id)
        and (start is None or o.time_ms >= start)
        and (end is None or o.time_ms <= end)
    ]
    # orderId / startTime read forwards from there; otherwise the most recent ones.
    return chosen[:limit] if order_id is not None or start is not None else chosen[-limit:]


def account_response(
    balances: Balances, fees: Fees, *, update_ms: int, uid: int, omit_zero: bool
) -> dict[str, Any]:
    rows = []
    for asset in balances.assets():
        free = balances.free.get(asset, Decimal(0))
        locked = balances.locked.get(asset, Decimal(0))
        if omit_zero and free == 0 and locked == 0:
            continue
        rows.append({"asset": asset, "free": n8(free), "locked": n8(locked)})
    return {
        "makerCommission": fee_bips(fees.maker),
        "takerCommission": fee_bips(fees.taker),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": n8(fees.maker),
            "taker": n8(fees.taker),
            "buyer": n8(Decimal(0)),
            "seller": n8(Decimal(0)),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": update_ms,
        "accountType": "SPOT",
        "balances": rows,
        "permissions": ["SPOT"],
        "uid": uid,
    }
