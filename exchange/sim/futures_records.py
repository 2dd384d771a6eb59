"""The simulated futures account's order and trade records, and their snapshot form.

``SimOrder`` is one order the engine accepted (open or finished); ``SimTrade`` one of the
account's fills as GET /fapi/v1/userTrades lists it. Both are mutable/plain records owned by the
engine; ``*_to_json``/``*_from_json`` give their JSON-safe snapshot form (Decimals as strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "FINAL_STATUSES",
    "SimOrder",
    "SimTrade",
    "order_from_json",
    "order_to_json",
    "trade_from_json",
    "trade_to_json",
]

FINAL_STATUSES: Final = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED"})
_ZERO: Final = Decimal(0)


@dataclass(slots=True)
class SimOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str  # BUY / SELL
    order_type: str  # LIMIT / MARKET
    time_in_force: str  # GTC / IOC / FOK / GTX
    orig_qty: Decimal
    price: Decimal  # 0 for MARKET
    reduce_only: bool
    time_ms: int
    update_time_ms: int
    status: str = "NEW"
    executed_qty: Decimal = _ZERO
    cum_quote: Decimal = _ZERO

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL_STATUSES

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty > 0 else _ZERO


@dataclass(frozen=True, slots=True)
class SimTrade:
    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time_ms: int


def _to_json(record: SimOrder | SimTrade) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        out[f.name] = str(value) if isinstance(value, Decimal) else value
    return out


def _decimal_fields(kind: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in fields(kind) if f.type in ("Decimal", Decimal))


_ORDER_DECIMALS: Final = _decimal_fields(SimOrder)
_TRADE_DECIMALS: Final = _decimal_fields(SimTrade)


def order_to_json(order: SimOrder) -> dict[str, Any]:
    return _to_json(order)


def trade_to_json(trade: SimTrade) -> dict[str, Any]:
    return _to_json(trade)


def _revive(data: Mapping[str, Any], decimals: frozenset[str]) -> dict[str, Any]:
    return {k: Decimal(v) if k in decimals else v for k, v in data.items()}


def order_from_json(data: Mapping[str, Any]) -> SimOrder:
    revived: dict[str, Any] = _revive(data, _ORDER_DECIMALS)
    return SimOrder(**revived)


def trade_from_json(data: Mapping[str, Any]) -> SimTrade:
    revived: dict[str, Any] = _revive(data, _TRADE_DECIMALS)
    return SimTrade(**revived)
