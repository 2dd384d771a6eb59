"""Shared state of the futures engine's parts (order flow, account control, market input).

``FuturesEngine`` is assembled from small mixins, each in its own module; this base holds what
they all use: the symbol rules, the account ledger, the order store, the last quotes, fees,
the fill model and the queue of user-data events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from exchange.sim.catalog import SimSymbol
from exchange.sim.errors import SimError
from exchange.sim.futures_account import MARGIN_ASSET, FuturesAccount
from exchange.sim.futures_book import OrderBook
from exchange.sim.futures_positions import Position
from exchange.sim.futures_wire import account_update_event
from exchange.sim.matching import Fees, FillModel, Quote

__all__ = ["EngineState"]


class EngineState:
    def __init__(
        self,
        symbols: Sequence[SimSymbol],
        *,
        wallet: Mapping[str, Decimal],
        fees: Fees,
        fill_model: FillModel,
        seed: int,
        default_leverage: int,
    ) -> None:
        self.symbols: dict[str, SimSymbol] = {s.symbol: s for s in symbols}
        self.fees = fees
        self.fill_model = fill_model
        self.seed = seed
        self.ledger = FuturesAccount(symbols, wallet=wallet, default_leverage=default_leverage)
        self.book = OrderBook(list(self.symbols), seed)
        self.quotes: dict[str, Quote] = {}
        self.mark_seen: set[str] = set()
        self.events: list[dict[str, Any]] = []

    def rules(self, symbol: str) -> SimSymbol:
        """The symbol's rules; -1121 for a symbol the simulator does not list."""
        found = self.symbols.get(symbol)
        if found is None:
            raise SimError(-1121, "Invalid symbol.")
        return found

    def emit_account_update(
        self,
        reason: str,
        now_ms: int,
        positions: list[Position],
        *,
        balance_change: Decimal = Decimal(0),
    ) -> None:
        rows = [(self.symbols[p.symbol], p, self.ledger.upnl(p.symbol)) for p in positions]
        self.events.append(
            account_update_event(
                reason=reason,
                now_ms=now_ms,
                asset=MARGIN_ASSET,
                wallet=self.ledger.wallet,
                cross_wallet=self.ledger.cross_wallet(),
                balance_change=balance_change,
                positions=rows,
            )
        )
