"""The futures engine's order store: ids, client-id lookup, open orders and trades per symbol.

Order ids and trade ids increase per symbol from a start derived from the seed (as on
Binance, where each symbol has its own id sequence); generated client order ids are
deterministic too (a hash of seed, symbol and a counter), so two runs with the same seed and
the same calls produce identical answers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, Final

from exchange.sim.errors import SimError
from exchange.sim.futures_positions import OpenOrderLoad
from exchange.sim.futures_records import (
    SimOrder,
    SimTrade,
    order_from_json,
    order_to_json,
    trade_from_json,
    trade_to_json,
)

__all__ = ["OrderBook"]

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CLIENT_ID_LEN: Final = 22


def _start(seed: int, symbol: str, kind: str, low: int, high: int) -> int:
    return random.Random(f"futures-{kind}:{seed}:{symbol}").randrange(low, high)


class OrderBook:
    def __init__(self, symbols: list[str], seed: int) -> None:
        self.seed = seed
        self.next_order_id = {s: _start(seed, s, "order", 10**9, 9 * 10**9) for s in symbols}
        self.next_trade_id = {s: _start(seed, s, "trade", 10**8, 9 * 10**8) for s in symbols}
        self.orders: dict[str, dict[int, SimOrder]] = {s: {} for s in symbols}
        self.trades: dict[str, list[SimTrade]] = {s: [] for s in symbols}
        self.client_ids_made = 0

    def new_order_id(self, symbol: str) -> int:
        value = self.next_order_id[symbol]
        self.next_order_id[symbol] = value + 1
        return value

    def new_trade_id(self, symbol: str) -> int:
        value = self.next_trade_id[symbol]
        self.next_trade_id[symbol] = value + 1
        return value

    def new_client_id(self, symbol: str) -> str:
        self.client_ids_made += 1
        digest = hashlib.sha256(f"{self.seed}:{symbol}:{self.client_ids_made}".encode()).digest()
        number = int.from_bytes(digest, "big")
        chars = []
        for _ in range(_CLIENT_ID_LEN):
            number, index = divmod(number, len(_ALPHABET))
            chars.append(_ALPHABET[index])
        return "".join(chars)

    def add(self, order: SimOrder) -> None:
        self.orders[order.symbol][order.order_id] = order

    def open_orders(self, symbol: str) -> Iterator[SimOrder]:
        for order_id in sorted(self.orders[symbol]):
            order = self.orders[symbol][order_id]
            if order.is_open:
                yield order

    def has_open(self, symbol: str | None = None) -> bool:
        names = [symbol] if symbol is not None else list(self.orders)
        return any(True for s in names for _ in self.open_orders(s))

    def open_client_id_taken(self, symbol: str, client_id: str) -> bool:
        return any(o.client_order_id == client_id for o in self.open_orders(symbol))

    def find(self, symbol: str, params: Mapping[str, str], missing_code: int) -> SimOrder:
        """The order named by orderId or origClientOrderId (``missing_code`` when unknown)."""
        raw_id = params.get("orderId") or ""
        client_id = params.get("origClientOrderId") or ""
        if not raw_id and not client_id:
            raise SimError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        found: SimOrder | None = None
        if raw_id:
            if not (raw_id.isascii() and raw_id.isdigit()):
                raise SimError(
                    -1102,
                    "Mandatory parameter 'orderId' was not sent, was empty/null, or malformed.",
                )
            found = self.orders[symbol].get(int(raw_id))
            if found is not None and client_id and found.client_order_id != client_id:
                found = None
        else:
            # The newest order with that client id (ids may be reused once an order is done).
            matches = [o for o in self.orders[symbol].values() if o.client_order_id == client_id]
            found = max(matches, key=lambda o: o.order_id) if matches else None
        if found is None:
            message = "Unknown order sent." if missing_code == -2011 else "Order does not exist."
            raise SimError(missing_code, message)
        return found

    def loads(self) -> dict[str, list[OpenOrderLoad]]:
        """Open orders as margin loads, per symbol (symbols without open orders left out)."""
        out: dict[str, list[OpenOrderLoad]] = {}
        for symbol in self.orders:
            rows = [
                OpenOrderLoad(o.side, o.remaining, o.price, o.reduce_only)
                for o in self.open_orders(symbol)
            ]
            if rows:
                out[symbol] = rows
        return out

    def side_notionals(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(bids, asks) notional of the symbol's open orders: ORDER_TRADE_UPDATE ``b``/``a``."""
        bids = asks = Decimal(0)
        for o in self.open_orders(symbol):
            if o.side == "BUY":
                bids += o.remaining * o.price
            else:
                asks += o.remaining * o.price
        return bids, asks

    # --- snapshot

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "next_order_id": dict(self.next_order_id),
            "next_trade_id": dict(self.next_trade_id),
            "orders": {
                s: [order_to_json(o) for _, o in sorted(orders.items())]
                for s, orders in self.orders.items()
            },
            "trades": {s: [trade_to_json(t) for t in rows] for s, rows in self.trades.items()},
            "client_ids_made": self.client_ids_made,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], symbols: list[str]) -> OrderBook:
        book = cls(symbols, int(data["seed"]))
        book.next_order_id.update({s: int(v) for s, v in data["next_order_id"].items()})
        book.next_trade_id.update({s: int(v) for s, v in data["next_trade_id"].items()})
        for s, rows in data["orders"].items():
            book.orders[s] = {int(r["order_id"]): order_from_json(r) for r in rows}
        for s, rows in data["trades"].items():
            book.trades[s] = [trade_from_json(r) for r in rows]
        book.client_ids_made = int(data["client_ids_made"])
        return book
