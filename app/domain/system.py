"""Daemon-level messages: alerts (`system.alert`), operator commands (`system.control`) and the
risk gate's trading state (`risk.state`)."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.enums import AlertSeverity, ControlAction, TradingState


@dataclass(frozen=True, slots=True)
class Alert:
    severity: AlertSeverity
    source: str
    title: str
    ts_ms: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """An operator command. `command_id` ties the acknowledgements on `system.ack` to it."""

    action: ControlAction
    requested_by: str
    ts_ms: int
    reason: str = ""
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class ControlAcknowledged:
    """A component has carried out a control command (for HALT: nothing new leaves it from now
    on). The control server answers the operator once every component that must act has."""

    command_id: str
    action: ControlAction
    component: str
    ts_ms: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    state: TradingState
    previous: TradingState | None
    reason: str
    ts_ms: int
