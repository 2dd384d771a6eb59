"""The spot engine's state: orders, trades and the account's free/locked balances.

Plain mutable records with a JSON-safe round trip (``to_json``/``from_json``), so the engine
can snapshot and restore everything it knows. Kept apart from the matching logic and from
the wire rendering so each stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Final

__all__ = ["OPEN_STATUSES", "Balances", "SpotOrder", "SpotTrade"]

OPEN_STATUSES: Final = ("NEW", "PARTIALLY_FILLED")
_ZERO: Final = Decimal(0)


def _dump(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = format(value, "f") if isinstance(value, Decimal) else value
    return out


def _load(cls: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        value = data[f.name]
        kwargs[f.name] = Decimal(value) if f.type == "Decimal" else value
    return kwargs


@dataclass(slots=True)
class SpotOrder:
    """One order as the exchange tracks it (open or finished)."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    price: Decimal  # 0 for MARKET
    orig_qty: Decimal
    quote_order_qty: Decimal  # origQuoteOrderQty; 0 unless a quoteOrderQty MARKET order
    stop_price: Decimal
    stp_mode: str
    time_ms: int
    update_ms: int
    working_ms: int = -1
    status: str = "NEW"
    executed_qty: Decimal = _ZERO
    cum_quote: Decimal = _ZERO
    # What this order still holds locked (quote for BUY, base for SELL) and in which asset.
    locked: Decimal = _ZERO
    lock_asset: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> dict[str, Any]:
        return _dump(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpotOrder:
        return cls(**_load(cls, data))


@dataclass(frozen=True, slots=True)
class SpotTrade:
    """One of the account's own fills, as GET /api/v3/myTrades lists it."""

    symbol: str
    trade_id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool

    def to_json(self) -> dict[str, Any]:
        return _dump(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpotTrade:
        return cls(**_load(cls, data))


@dataclass(slots=True)
class Balances:
    """Free and locked amount per asset; remembers which assets changed since last asked."""

    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, amounts: Mapping[str, Decimal]) -> Balances:
        return cls(free={a: Decimal(v) for a, v in amounts.items()})

    def _touch(self, asset: str) -> None:
        self.free.setdefault(asset, _ZERO)
        self.locked.setdefault(asset, _ZERO)
        if asset not in self.changed:
            self.changed.append(asset)

    def available(self, asset: str) -> Decimal:
        return self.free.get(asset, _ZERO)

    def lock(self, asset: str, amount: Decimal) -> None:
        self._touch(asset)
        self.free[asset] -= amount
        self.locked[asset] += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        self._touch(asset)
        self.locked[asset] -= amount
        self.free[asset] += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self._touch(asset)
        self.locked[asset] -= amount

    def add(self, asset: str, amount: Decimal) -> None:
        """Credit (or, negative, debit) the free balance."""
        self._touch(asset)
        self.free[asset] += amount

    def take_changed(self) -> list[str]:
        changed, self.changed = self.changed, []
        return changed

    def assets(self) -> Iterable[str]:
        return sorted(set(self.free) | set(self.locked))

    def to_json(self) -> dict[str, Any]:
        return {
            a: [format(self.free.get(a, _ZERO), "f"), format(self.locked.get(a, _ZERO), "f")]
            for a in self.assets()
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Balances:
        return cls(
            free={a: Decimal(v[0]) for a, v in data.items()},
            locked={a: Decimal(v[1]) for a, v in data.items()},
        )
