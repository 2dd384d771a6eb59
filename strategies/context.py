"""The one door between a strategy and the world, bound to exactly one symbol and interval.

Inbound, `admit()` refuses anything for another symbol (`ForeignSymbol`): a wiring mistake
must fail loudly, never feed BTC bars to an ETH strategy. Outbound, the strategy can only say
what it wants (`enter_long`, `exit_short`, ...) for its own symbol; the context turns that into
`Signal`s stamped with the event time (never the wall clock) and a deterministic id, so a replay
of the same events produces the same signals, id for id.

The context also keeps what the strategy may read but must not compute itself: the time of the
event being handled, its net position from its own fills (each exchange trade counted once),
and whether history is still being replayed (signals from history are discarded by the runner).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from app.domain import OrderUpdated, Signal, SignalAction
from strategies.recent_ids import RecentIds

__all__ = ["ForeignSymbol", "StrategyContext"]

_ZERO = Decimal(0)
# Trade ids remembered to make repeated fill events idempotent; exchanges resend recent ones.
_REMEMBERED_TRADES = 1024


class ForeignSymbol(ValueError):
    """Data for another symbol was offered to a symbol-bound strategy (a wiring bug)."""


class StrategyContext:
    __slots__ = (
        "_recent_trades",
        "_signal_ms",
        "_signal_n",
        "_timers",
        "interval",
        "now_ms",
        "pending",
        "position",
        "strategy",
        "symbol",
        "warming",
    )

    def __init__(self, *, strategy: str, symbol: str, interval: str) -> None:
        self.strategy = strategy
        self.symbol = symbol
        self.interval = interval
        #: time of the event being handled (bar close, ticker time, timer due time), epoch ms
        self.now_ms = 0
        #: net filled quantity of this strategy on this symbol: > 0 long, < 0 short
        self.position = _ZERO
        #: True while history is replayed before the first live bar
        self.warming = False
        #: signals emitted while handling the current event (the runner takes them)
        self.pending: list[Signal] = []
        self._timers: dict[str, int] = {}
        # Signal times never go back, and (time, n) numbers the signals of one instant.
        self._signal_ms = -1
        self._signal_n = 0
        self._recent_trades = RecentIds(_REMEMBERED_TRADES)

    # -- inbound (the runner) --------------------------------------------------------------
    def admit(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise ForeignSymbol(
                f"{self.strategy}: bound to {self.symbol}, refused data for {symbol}"
            )

    def book_fill(self, update: OrderUpdated) -> None:
        """Apply the fill an order update carries to `position`, once per exchange trade."""
        fill = update.fill
        if fill is None or not self._recent_trades.first_sight(fill.trade_id):
            return
        self.position += fill.position_change  # net of a spot fee taken in the base asset

    def due_timers(self, until_ms: int) -> list[tuple[int, str]]:
        """Remove and return the timers due at or before `until_ms`, earliest first."""
        if not self._timers:
            return []
        due = sorted((at, name) for name, at in self._timers.items() if at <= until_ms)
        for _, name in due:
            del self._timers[name]
        return due

    @property
    def has_timers(self) -> bool:
        return bool(self._timers)

    @property
    def next_timer_ms(self) -> int | None:
        return min(self._timers.values()) if self._timers else None

    # -- outbound (the strategy) -----------------------------------------------------------
    def enter_long(self, reason: str, **details: Any) -> Signal:
        return self.signal(SignalAction.ENTER_LONG, reason, **details)

    def enter_short(self, reason: str, **details: Any) -> Signal:
        return self.signal(SignalAction.ENTER_SHORT, reason, **details)

    def exit_long(self, reason: str, **details: Any) -> Signal:
        return self.signal(SignalAction.EXIT_LONG, reason, **details)

    def exit_short(self, reason: str, **details: Any) -> Signal:
        return self.signal(SignalAction.EXIT_SHORT, reason, **details)

    def signal(
        self,
        action: SignalAction,
        reason: str,
        *,
        size_hint: Decimal | None = None,
        confidence: float = 1.0,
        tags: tuple[str, ...] = (),
    ) -> Signal:
        """Emit an intent for this context's symbol, stamped with the current event's time."""
        signal = self.make_signal(
            action, reason, size_hint=size_hint, confidence=confidence, tags=tags
        )
        self.pending.append(signal)
        return signal

    def make_signal(
        self,
        action: SignalAction,
        reason: str,
        *,
        size_hint: Decimal | None = None,
        confidence: float = 1.0,
        tags: tuple[str, ...] = (),
    ) -> Signal:
        """A signal stamped and numbered like `signal()`'s, handed back instead of emitted:
        trade management's exits share the strategy's id sequence, so ids stay unique."""
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {confidence}")
        if size_hint is not None and not size_hint > 0:
            raise ValueError(f"size_hint must be positive, got {size_hint}")
        ts_ms = self.now_ms
        if ts_ms > self._signal_ms:
            self._signal_ms = ts_ms
            self._signal_n = 0
        else:
            # Events of different streams may arrive slightly out of time order; a signal
            # is never stamped earlier than the one before, so (time, n) stays unique.
            ts_ms = self._signal_ms
            self._signal_n += 1
        return Signal(
            strategy=self.strategy,
            symbol=self.symbol,
            action=action,
            ts_ms=ts_ms,
            # Identical in every replay of the same events: no counters from outside.
            signal_id=f"{self.strategy}:{self.symbol}:{ts_ms}:{self._signal_n}",
            size_hint=size_hint,
            confidence=confidence,
            reason=reason,
            tags=tuple(tags),
        )

    def set_timer(self, name: str, due_ms: int) -> None:
        """Call `on_timer` once the event time reaches `due_ms` (replaces a timer of that name)."""
        self._timers[name] = due_ms

    def cancel_timer(self, name: str) -> None:
        self._timers.pop(name, None)

    # -- persistence -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "now_ms": self.now_ms,
            "position": str(self.position),
            "timers": dict(self._timers),
            "signal_ms": self._signal_ms,
            "signal_n": self._signal_n,
            "recent_trades": self._recent_trades.as_list(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.now_ms = int(state["now_ms"])
        self.position = Decimal(state["position"])
        self._timers = {str(k): int(v) for k, v in state["timers"].items()}
        self._signal_ms = int(state["signal_ms"])
        self._signal_n = int(state["signal_n"])
        self._recent_trades = RecentIds(
            _REMEMBERED_TRADES, (int(t) for t in state["recent_trades"])
        )
