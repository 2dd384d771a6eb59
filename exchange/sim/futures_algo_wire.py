"""The simulated futures algo (conditional) orders: the record and its Binance JSON shapes.

``SimAlgoOrder`` is one order of the algo service (``POST /fapi/v1/algoOrder``). Its REST form
follows the USD-M docs' New/Query Algo Order answers (``algoId``, ``clientAlgoId``,
``orderType``, ``algoStatus``, ``triggerPrice``, ``actualOrderId``...); its ``ALGO_UPDATE``
form follows the docs and the recorded events (``caid``, ``aid``, ``X``, ``ai``, ``tp``, ``tt``,
with ``ap``/``aq``/``act`` only once the order was placed in the matching engine and ``rm``
when the service refused or expired it). ``T`` comes before ``E`` as in the recordings.

Unverified against the live exchange: the ``quantity`` shown for a closePosition order ("0"
here), ``actualPrice`` (the child order's average fill price here), and whether ``rm`` is
sent with an empty value on other statuses (left out here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.futures_wire import plain, price_str, qty_str

__all__ = [
    "ALGO_FINAL",
    "SimAlgoOrder",
    "algo_event",
    "algo_from_json",
    "algo_json",
    "algo_to_json",
]

# Statuses that never change again (TRIGGERED still becomes FINISHED).
ALGO_FINAL: Final = frozenset({"CANCELED", "FINISHED", "REJECTED", "EXPIRED"})
_STP: Final = "EXPIRE_MAKER"  # what the docs' and the recorded algo answers show
_ZERO: Final = Decimal(0)


@dataclass(slots=True)
class SimAlgoOrder:
    symbol: str
    algo_id: int
    client_algo_id: str
    order_type: str  # STOP_MARKET / TAKE_PROFIT_MARKET / STOP / TAKE_PROFIT
    side: str
    quantity: Decimal  # 0 for closePosition
    trigger_price: Decimal
    price: Decimal  # 0 for the *_MARKET types
    time_in_force: str
    working_type: str  # MARK_PRICE / CONTRACT_PRICE
    reduce_only: bool
    close_position: bool
    price_protect: bool
    create_time_ms: int
    update_time_ms: int
    status: str = "NEW"
    trigger_time_ms: int = 0
    actual_order_id: int | None = None
    executed_qty: Decimal = _ZERO
    avg_price: Decimal = _ZERO
    reason: str = ""

    @property
    def is_open(self) -> bool:
        """Waiting for its trigger (NEW): the only state a cancel may end."""
        return self.status == "NEW"

    @property
    def child_type(self) -> str:
        return "MARKET" if self.order_type.endswith("_MARKET") else "LIMIT"


def _price_or_zero(symbol: SimSymbol, value: Decimal) -> str:
    return price_str(symbol, value) if value > 0 else "0"


def algo_json(symbol: SimSymbol, algo: SimAlgoOrder, *, query: bool = False) -> dict[str, Any]:
    """POST ``/fapi/v1/algoOrder`` (``query=False``), GET algoOrder / openAlgoOrders (True)."""
    body: dict[str, Any] = {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": "BOTH",
        "timeInForce": algo.time_in_force,
        "quantity": qty_str(symbol, algo.quantity),
        "algoStatus": algo.status,
    }
    if query:
        body["actualOrderId"] = "" if algo.actual_order_id is None else str(algo.actual_order_id)
        body["actualPrice"] = price_str(symbol, algo.avg_price)
    body |= {
        "triggerPrice": price_str(symbol, algo.trigger_price),
        "price": price_str(symbol, algo.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": _STP,
        "workingType": algo.working_type,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": algo.price_protect,
        "reduceOnly": algo.reduce_only,
        "activatePrice": "",
        "callbackRate": "",
        "createTime": algo.create_time_ms,
        "updateTime": algo.update_time_ms,
        "triggerTime": algo.trigger_time_ms,
        "goodTillDate": 0,
    }
    return body


def algo_event(symbol: SimSymbol, algo: SimAlgoOrder, now_ms: int) -> dict[str, Any]:
    """``ALGO_UPDATE`` for the algo order's current state."""
    o: dict[str, Any] = {
        "caid": algo.client_algo_id,
        "aid": algo.algo_id,
        "at": "CONDITIONAL",
        "o": algo.order_type,
        "s": algo.symbol,
        "S": algo.side,
        "ps": "BOTH",
        "f": algo.time_in_force,
        "q": qty_str(symbol, algo.quantity),
        "X": algo.status,
        "ai": "" if algo.actual_order_id is None else str(algo.actual_order_id),
    }
    if algo.actual_order_id is not None:
        # Shown only once the order sits in the matching engine (docs, recordings).
        o["ap"] = plain(algo.avg_price)
        o["aq"] = qty_str(symbol, algo.executed_qty)
        o["act"] = algo.child_type
    o |= {
        "tp": price_str(symbol, algo.trigger_price),
        "p": _price_or_zero(symbol, algo.price),
        "V": _STP,
        "wt": algo.working_type,
        "pm": "NONE",
        "cp": algo.close_position,
        "pP": algo.price_protect,
        "R": algo.reduce_only,
        "tt": algo.trigger_time_ms,
        "gtd": 0,
    }
    if algo.reason:
        o["rm"] = algo.reason
    return {"e": "ALGO_UPDATE", "T": now_ms, "E": now_ms, "o": o}


_DECIMALS: Final = frozenset(f.name for f in fields(SimAlgoOrder) if f.type in ("Decimal", Decimal))


def algo_to_json(algo: SimAlgoOrder) -> dict[str, Any]:
    return {
        f.name: str(getattr(algo, f.name)) if f.name in _DECIMALS else getattr(algo, f.name)
        for f in fields(algo)
    }


def algo_from_json(data: Mapping[str, Any]) -> SimAlgoOrder:
    revived: dict[str, Any] = {k: Decimal(v) if k in _DECIMALS else v for k, v in data.items()}
    return SimAlgoOrder(**revived)
