"""What strategies emit on `signal.<strategy>`: an intent, not an order (the risk gate decides)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.enums import SignalAction


@dataclass(frozen=True, slots=True)
class Signal:
    strategy: str
    symbol: str
    action: SignalAction
    ts_ms: int
    signal_id: str
    size_hint: Decimal | None = None
    confidence: float = 1.0
    reason: str = ""
    tags: tuple[str, ...] = ()

    @property
    def is_exit(self) -> bool:
        return self.action in (SignalAction.EXIT_LONG, SignalAction.EXIT_SHORT)
