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
    action: ControlAction
    requested_by: str
    ts_ms: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    state: TradingState
    previous: TradingState | None
    reason: str
    ts_ms: int
