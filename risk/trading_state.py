"""The trading state machine: ACTIVE / REDUCING / HALTED, why, since when, and until when.

Pure: the gate component applies guard trips and operator commands through `set`, polls `due`
for a guard's cooldown end, publishes the `TradingStateChanged` these return on `risk.state`
and persists `snapshot()`. Only entries need ACTIVE: exits, flattening and protective stops
always pass, so a halt never traps a position.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.domain import OrderPurpose, TradingState, TradingStateChanged

__all__ = ["TradingStateMachine"]


class TradingStateMachine:
    def __init__(
        self, *, state: TradingState = TradingState.ACTIVE, reason: str = "start", since_ms: int = 0
    ) -> None:
        self._state = state
        self._reason = reason
        self._since_ms = since_ms
        self._resume_at_ms: int | None = None

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def since_ms(self) -> int:
        return self._since_ms

    @property
    def resume_at_ms(self) -> int | None:
        """When a guard's halt ends by itself (None: only an operator resumes)."""
        return self._resume_at_ms

    def allows(self, purpose: OrderPurpose) -> bool:
        """ACTIVE lets everything out; REDUCING and HALTED everything except entries."""
        return self._state is TradingState.ACTIVE or purpose is not OrderPurpose.ENTRY

    def set(
        self, state: TradingState, reason: str, now_ms: int, *, resume_at_ms: int | None = None
    ) -> TradingStateChanged | None:
        """Move to `state`; the change to publish, or None when the state stays the same (the
        reason and resume time are then updated silently)."""
        self._reason = reason
        self._resume_at_ms = resume_at_ms
        if state is self._state:
            return None
        previous = self._state
        self._state = state
        self._since_ms = now_ms
        return TradingStateChanged(state, previous, reason, now_ms)

    def due(self, now_ms: int) -> TradingStateChanged | None:
        """A HALTED whose cooldown has ended goes back to ACTIVE."""
        if (
            self._state is TradingState.HALTED
            and self._resume_at_ms is not None
            and now_ms >= self._resume_at_ms
        ):
            return self.set(TradingState.ACTIVE, f"cooldown over: {self._reason}", now_ms)
        return None

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self._state.value,
            "reason": self._reason,
            "since_ms": self._since_ms,
            "resume_at_ms": self._resume_at_ms,
        }

    @classmethod
    def restore(cls, data: Mapping[str, object]) -> TradingStateMachine:
        """ValueError when `data` is not a `snapshot()`."""
        try:
            state, reason = data["state"], data["reason"]
            since, resume = data["since_ms"], data["resume_at_ms"]
        except KeyError as exc:
            raise ValueError(f"bad trading state snapshot: missing {exc}") from exc
        if not isinstance(state, str) or state not in set(TradingState):
            raise ValueError(f"bad trading state snapshot: state {state!r}")
        if not isinstance(reason, str):
            raise ValueError(f"bad trading state snapshot: reason {reason!r}")
        if not isinstance(since, int) or isinstance(since, bool):
            raise ValueError(f"bad trading state snapshot: since_ms {since!r}")
        if resume is not None and (not isinstance(resume, int) or isinstance(resume, bool)):
            raise ValueError(f"bad trading state snapshot: resume_at_ms {resume!r}")
        machine = cls(state=TradingState(state), reason=reason, since_ms=since)
        machine._resume_at_ms = resume
        return machine
