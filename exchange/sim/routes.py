"""Which request reaches which engine call: the operation tables of both markets.

An ``Operation`` is named once and reached two ways: a REST path (``SPOT_REST``,
``FUTURES_REST``) and, where Binance offers one, a WebSocket-API method (``SPOT_WS_API``,
``FUTURES_WS_API``). Weights and order counts are Binance's published ones (spot: order 1,
query order 4, openOrders 6 or 80, allOrders 20, myTrades 20, account 20; USD-M: order 0 on
the IP budget and 1 on the order count, userTrades/account/balance/positionRisk 5,
positionSide 30; algo orders like orders, algo query/cancel 1, openAlgoOrders 1 or 40).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from exchange.sim.gateway import Access, Kind, Operation
from exchange.sim.market_api import MarketData
from exchange.sim.user_hub import ListenKeys

__all__ = [
    "FUTURES_REST",
    "FUTURES_WS_API",
    "SPOT_REST",
    "SPOT_WS_API",
    "futures_operations",
    "spot_operations",
]

Params = Mapping[str, str]


class SpotCalls(Protocol):
    def new_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def query_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def cancel_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def cancel_replace(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def open_orders(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...
    def all_orders(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...
    def my_trades(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...
    def account(self, params: Params, now_ms: int) -> dict[str, Any]: ...


class FuturesCalls(Protocol):
    def new_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def query_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def cancel_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def modify_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def open_orders(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...
    def user_trades(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...
    def account(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def balance(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...
    def position_risk(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...
    def set_leverage(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def set_margin_type(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def position_mode(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def set_position_mode(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def new_algo_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def query_algo_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def cancel_algo_order(self, params: Params, now_ms: int) -> dict[str, Any]: ...
    def open_algo_orders(self, params: Params, now_ms: int) -> list[dict[str, Any]]: ...


def _signed(
    name: str, weight: Any, call: Any, *, orders: int = 0, kind: Kind = Kind.OTHER
) -> Operation:
    return Operation(
        name, Access.SIGNED, weight, lambda p, now, key: call(p, now), orders=orders, kind=kind
    )


def _with_symbol(one: int, every: int) -> Any:
    return lambda params: one if "symbol" in params else every


def spot_operations(engine: SpotCalls, market: MarketData) -> dict[str, Operation]:
    return market.operations() | {
        "order.place": _signed("order.place", 1, engine.new_order, orders=1, kind=Kind.PLACE),
        "order.status": _signed("order.status", 4, engine.query_order, kind=Kind.QUERY),
        "order.cancel": _signed("order.cancel", 1, engine.cancel_order),
        "order.cancelReplace": _signed(
            "order.cancelReplace", 1, engine.cancel_replace, orders=1, kind=Kind.PLACE
        ),
        "openOrders.status": _signed("openOrders.status", _with_symbol(6, 80), engine.open_orders),
        "allOrders": _signed("allOrders", 20, engine.all_orders),
        "myTrades": _signed("myTrades", 20, engine.my_trades),
        "account.status": _signed("account.status", 20, engine.account),
    }


def futures_operations(
    engine: FuturesCalls, market: MarketData, listen_keys: ListenKeys
) -> dict[str, Operation]:
    def listen_key(action: str) -> Operation:
        def handle(params: Params, now_ms: int, api_key: str | None) -> Any:
            assert api_key is not None  # Access.API_KEY guarantees it
            if action == "start":
                return {"listenKey": listen_keys.create(api_key, now_ms)}
            if action == "keepalive":
                return {"listenKey": listen_keys.keepalive(api_key, now_ms)}
            listen_keys.close(api_key)
            return {}

        return Operation(f"userDataStream.{action}", Access.API_KEY, 1, handle)

    return market.operations() | {
        "order.place": _signed("order.place", 0, engine.new_order, orders=1, kind=Kind.PLACE),
        "order.status": _signed("order.status", 1, engine.query_order, kind=Kind.QUERY),
        "order.cancel": _signed("order.cancel", 1, engine.cancel_order),
        "order.modify": _signed("order.modify", 1, engine.modify_order, orders=1),
        "openOrders.status": _signed("openOrders.status", _with_symbol(1, 40), engine.open_orders),
        "userTrades": _signed("userTrades", 5, engine.user_trades),
        "account.status": _signed("account.status", 5, engine.account),
        "account.balance": _signed("account.balance", 5, engine.balance),
        "account.position": _signed("account.position", 5, engine.position_risk),
        "leverage": _signed("leverage", 1, engine.set_leverage),
        "marginType": _signed("marginType", 1, engine.set_margin_type),
        "positionSide.get": _signed("positionSide.get", 30, engine.position_mode),
        "positionSide.set": _signed("positionSide.set", 1, engine.set_position_mode),
        "algoOrder.place": _signed(
            "algoOrder.place", 0, engine.new_algo_order, orders=1, kind=Kind.PLACE
        ),
        "algoOrder.status": _signed("algoOrder.status", 1, engine.query_algo_order),
        "algoOrder.cancel": _signed("algoOrder.cancel", 1, engine.cancel_algo_order),
        "openAlgoOrders.status": _signed(
            "openAlgoOrders.status", _with_symbol(1, 40), engine.open_algo_orders
        ),
        "userDataStream.start": listen_key("start"),
        "userDataStream.ping": listen_key("keepalive"),
        "userDataStream.stop": listen_key("stop"),
    }


# (HTTP method, path, operation name)
SPOT_REST: Final = (
    ("GET", "/api/v3/ping", "ping"),
    ("GET", "/api/v3/time", "time"),
    ("GET", "/api/v3/exchangeInfo", "exchangeInfo"),
    ("GET", "/api/v3/klines", "klines"),
    ("GET", "/api/v3/ticker/bookTicker", "ticker.book"),
    ("POST", "/api/v3/order", "order.place"),
    ("GET", "/api/v3/order", "order.status"),
    ("DELETE", "/api/v3/order", "order.cancel"),
    ("POST", "/api/v3/order/cancelReplace", "order.cancelReplace"),
    ("GET", "/api/v3/openOrders", "openOrders.status"),
    ("GET", "/api/v3/allOrders", "allOrders"),
    ("GET", "/api/v3/myTrades", "myTrades"),
    ("GET", "/api/v3/account", "account.status"),
)
FUTURES_REST: Final = (
    ("GET", "/fapi/v1/ping", "ping"),
    ("GET", "/fapi/v1/time", "time"),
    ("GET", "/fapi/v1/exchangeInfo", "exchangeInfo"),
    ("GET", "/fapi/v1/klines", "klines"),
    ("GET", "/fapi/v1/ticker/bookTicker", "ticker.book"),
    ("GET", "/fapi/v1/premiumIndex", "premiumIndex"),
    ("GET", "/fapi/v1/fundingInfo", "fundingInfo"),
    ("POST", "/fapi/v1/order", "order.place"),
    ("GET", "/fapi/v1/order", "order.status"),
    ("DELETE", "/fapi/v1/order", "order.cancel"),
    ("PUT", "/fapi/v1/order", "order.modify"),
    ("GET", "/fapi/v1/openOrders", "openOrders.status"),
    ("GET", "/fapi/v1/userTrades", "userTrades"),
    ("GET", "/fapi/v3/account", "account.status"),
    ("GET", "/fapi/v3/balance", "account.balance"),
    ("GET", "/fapi/v3/positionRisk", "account.position"),
    ("POST", "/fapi/v1/leverage", "leverage"),
    ("POST", "/fapi/v1/marginType", "marginType"),
    ("GET", "/fapi/v1/positionSide/dual", "positionSide.get"),
    ("POST", "/fapi/v1/positionSide/dual", "positionSide.set"),
    ("POST", "/fapi/v1/algoOrder", "algoOrder.place"),
    ("GET", "/fapi/v1/algoOrder", "algoOrder.status"),
    ("DELETE", "/fapi/v1/algoOrder", "algoOrder.cancel"),
    ("GET", "/fapi/v1/openAlgoOrders", "openAlgoOrders.status"),
    ("POST", "/fapi/v1/listenKey", "userDataStream.start"),
    ("PUT", "/fapi/v1/listenKey", "userDataStream.ping"),
    ("DELETE", "/fapi/v1/listenKey", "userDataStream.stop"),
)
# WebSocket-API method -> operation name (the same names where Binance uses them).
SPOT_WS_API: Final = {
    name: name
    for name in (
        "exchangeInfo",
        "klines",
        "ticker.book",
        "order.place",
        "order.status",
        "order.cancel",
        "order.cancelReplace",
        "openOrders.status",
        "allOrders",
        "myTrades",
        "account.status",
    )
}
FUTURES_WS_API: Final = {
    "ticker.book": "ticker.book",
    "order.place": "order.place",
    "order.status": "order.status",
    "order.cancel": "order.cancel",
    "order.modify": "order.modify",
    "algoOrder.place": "algoOrder.place",
    "algoOrder.cancel": "algoOrder.cancel",
    "account.status": "account.status",
    "account.balance": "account.balance",
    "account.position": "account.position",
}
