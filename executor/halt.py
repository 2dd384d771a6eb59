"""When entries may leave the executor, and when a HALT/FLATTEN may be acknowledged.

Consumed state: operator commands from `system.control` (HALT, FLATTEN set the halt; RESUME
lifts it) and the risk gate's trading state from `risk.state` (REDUCING and HALTED refuse
entries too; ACTIVE allows them again). Produces `ControlAcknowledged` on `system.ack`.

An acknowledgement means "no new entry leaves the executor from now on", so it waits until
no entry placement is in flight: an entry whose request is on the wire completes first
(whatever its answer), and every entry not yet sent — new, or waiting between retries — is
refused when its turn comes. Orders whose answer was lost (UNKNOWN) are not waited for:
they are never sent again.
"""

from __future__ import annotations

from app.bus import SYSTEM_ACK, Bus
from app.domain import Clock, ControlAcknowledged, ControlAction, ControlCommand, TradingState

__all__ = ["HALTED_REASON", "HaltGate"]

HALTED_REASON = "trading halted before the order was sent"


class HaltGate:
    def __init__(self, *, bus: Bus, clock: Clock, component: str) -> None:
        self._acks = bus.sender(SYSTEM_ACK.channel())
        self._clock = clock
        self._component = component
        self.halted_by: ControlAction | None = None
        self.risk_state = TradingState.ACTIVE
        self.entries_in_flight = 0
        self.acks_sent = 0
        self._waiting: list[ControlCommand] = []

    def blocked_reason(self) -> str | None:
        """Why an entry may not be sent now (None: it may)."""
        if self.halted_by is not None:
            return HALTED_REASON
        if self.risk_state is not TradingState.ACTIVE:
            return f"trading state {self.risk_state.value}: entry refused before it was sent"
        return None

    def entry_sending(self) -> None:
        self.entries_in_flight += 1

    async def entry_done(self) -> None:
        self.entries_in_flight -= 1
        if self.entries_in_flight == 0:
            await self._flush()

    async def command(self, command: ControlCommand, detail: str = "") -> None:
        if command.action in (ControlAction.HALT, ControlAction.FLATTEN):
            self.halted_by = command.action
            self._waiting.append(command)
            if self.entries_in_flight == 0:
                await self._flush(detail)
        elif command.action is ControlAction.RESUME:
            self.halted_by = None
            await self._ack(command, detail or "entries allowed")

    @property
    def pending_acks(self) -> int:
        return len(self._waiting)

    async def _flush(self, detail: str = "") -> None:
        waiting, self._waiting = self._waiting, []
        for command in waiting:
            await self._ack(command, detail or "no entry in flight; entries refused")

    async def _ack(self, command: ControlCommand, detail: str) -> None:
        self.acks_sent += 1
        await self._acks.send(
            ControlAcknowledged(
                command_id=command.command_id,
                action=command.action,
                component=self._component,
                ts_ms=self._clock.now_ms(),
                detail=detail,
            )
        )
