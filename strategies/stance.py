"""What a strategy believes it holds — flat, long or short — from what it signalled.

Signals are intents: the risk gate may deny an entry and an entry order may end unfilled. The
stance follows the strategy's own signals and falls back to flat on exactly those two events,
so the strategy neither waits forever to exit a position it never got nor re-enters one it has.
A fill on the other side that leaves it flat (an exit rule or a flatten closed the position)
makes it flat too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain import OrderDenied, OrderUpdated, Side, Signal
from strategies.context import StrategyContext

__all__ = ["FLAT", "LONG", "SHORT", "Stance"]

FLAT, LONG, SHORT = 0, 1, -1


class Stance:
    __slots__ = ("entry_signal_id", "side")

    def __init__(self) -> None:
        self.side = FLAT
        self.entry_signal_id = ""

    def entered(self, signal: Signal, side: int) -> None:
        self.side = side
        self.entry_signal_id = signal.signal_id

    def exit(self, ctx: StrategyContext, reason: str) -> None:
        if self.side == LONG:
            ctx.exit_long(reason)
        elif self.side == SHORT:
            ctx.exit_short(reason)
        self.side = FLAT
        self.entry_signal_id = ""

    def on_order(self, event: OrderUpdated | OrderDenied, position: Any) -> None:
        if self.side == FLAT:
            return
        if isinstance(event, OrderDenied):
            if event.signal_id == self.entry_signal_id:
                self.side = FLAT
            return
        entry_side = Side.BUY if self.side == LONG else Side.SELL
        if (
            event.side is entry_side
            and event.status.is_final
            and event.filled_quantity == 0
            and position == 0
        ):
            self.side = FLAT
        elif event.side is not entry_side and event.fill is not None and position == 0:
            # Closed by someone else: an exit rule of trade management, or a flatten.
            self.side = FLAT
            self.entry_signal_id = ""

    def snapshot(self) -> dict[str, Any]:
        return {"side": self.side, "entry_signal_id": self.entry_signal_id}

    def restore(self, state: Mapping[str, Any]) -> None:
        side = int(state["side"])
        if side not in (FLAT, LONG, SHORT):
            raise ValueError(f"unknown stance {side}")
        self.side = side
        self.entry_signal_id = str(state["entry_signal_id"])
