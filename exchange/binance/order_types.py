"""Binance order-type names for domain order types, per market, and which types are market-like.

Re-exported by ``exchange.binance.rules``. Domain order types map to Binance type names as
follows (``None``: the market has no such type):

==================== ================= ======================
domain               spot              USD-M futures
==================== ================= ======================
market               MARKET            MARKET
limit                LIMIT             LIMIT
limit_maker          LIMIT_MAKER       LIMIT (post-only is ``timeInForce=GTX``)
stop_market          STOP_LOSS         STOP_MARKET
stop_limit           STOP_LOSS_LIMIT   STOP
take_profit_market   TAKE_PROFIT       TAKE_PROFIT_MARKET
take_profit_limit    TAKE_PROFIT_LIMIT TAKE_PROFIT
trailing_stop_market None              TRAILING_STOP_MARKET
==================== ================= ======================

"Market-like" types (market, stop_market, take_profit_market, trailing_stop_market) execute at
the market: they use MARKET_LOT_SIZE and, for notional checks, the caller's ``reference_price``.
"""

from __future__ import annotations

from app.domain.enums import MarketType, OrderType

__all__ = ["binance_order_type", "is_market_like"]

_SPOT_TYPES: dict[OrderType, str] = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.LIMIT_MAKER: "LIMIT_MAKER",
    OrderType.STOP_MARKET: "STOP_LOSS",
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
    OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
}
_FUTURES_TYPES: dict[OrderType, str] = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.LIMIT_MAKER: "LIMIT",
    OrderType.STOP_MARKET: "STOP_MARKET",
    OrderType.STOP_LIMIT: "STOP",
    OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT_MARKET",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT",
    OrderType.TRAILING_STOP_MARKET: "TRAILING_STOP_MARKET",
}
# market, stop_market, take_profit_market, trailing_stop_market
_MARKET_LIKE = frozenset(t for t in OrderType if t.value.endswith("market"))


def binance_order_type(market: MarketType, order_type: OrderType) -> str | None:
    """The Binance ``type`` for a domain order type, or ``None`` when the market has none."""
    table = _SPOT_TYPES if market is MarketType.SPOT else _FUTURES_TYPES
    return table.get(order_type)


def is_market_like(order_type: OrderType) -> bool:
    """True for types that execute at the market and so carry no limit price."""
    return order_type in _MARKET_LIKE
