"""The trading state machine: what each state lets out, changes, timed resumes, snapshots."""

from __future__ import annotations

import json

import pytest

from app.domain import OrderPurpose, TradingState, TradingStateChanged
from risk.trading_state import TradingStateMachine

A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
ALLOWED = {
    (A, OrderPurpose.ENTRY): True,
    (A, OrderPurpose.EXIT): True,
    (A, OrderPurpose.FLATTEN): True,
    (A, OrderPurpose.PROTECTIVE_STOP): True,
    (R, OrderPurpose.ENTRY): False,
    (R, OrderPurpose.EXIT): True,
    (R, OrderPurpose.FLATTEN): True,
    (R, OrderPurpose.PROTECTIVE_STOP): True,
    (H, OrderPurpose.ENTRY): False,
    (H, OrderPurpose.EXIT): True,
    (H, OrderPurpose.FLATTEN): True,
    (H, OrderPurpose.PROTECTIVE_STOP): True,
}


def test_the_table_covers_every_state_and_purpose() -> None:
    assert set(ALLOWED) == {(s, p) for s in TradingState for p in OrderPurpose}


@pytest.mark.parametrize(("state", "purpose"), list(ALLOWED))
def test_allows(state: TradingState, purpose: OrderPurpose) -> None:
    assert TradingStateMachine(state=state).allows(purpose) is ALLOWED[(state, purpose)]


def test_set_reports_changes_only() -> None:
    machine = TradingStateMachine(since_ms=5)
    assert (machine.state, machine.reason, machine.since_ms) == (A, "start", 5)
    change = machine.set(H, "operator: halt", 100)
    assert change == TradingStateChanged(H, A, "operator: halt", 100)
    assert (machine.state, machine.reason, machine.since_ms) == (H, "operator: halt", 100)
    # Same state: no change to publish, but the newer reason and resume time are kept.
    assert machine.set(H, "min_equity: equity 4,000 is below the minimum 5,000", 200) is None
    assert machine.reason.startswith("min_equity:")
    assert machine.since_ms == 100
    assert machine.set(R, "max_drawdown: ...", 300) == TradingStateChanged(
        R, H, "max_drawdown: ...", 300
    )
    assert machine.set(A, "operator: resume", 400) == TradingStateChanged(
        A, R, "operator: resume", 400
    )


def test_due_resumes_a_timed_halt() -> None:
    machine = TradingStateMachine()
    reason = "consecutive_losses: 3 losing trades in a row (limit 3); halted for 60 min"
    machine.set(H, reason, 1_000, resume_at_ms=3_601_000)
    assert machine.resume_at_ms == 3_601_000
    assert machine.due(3_600_999) is None
    assert machine.due(3_601_000) == TradingStateChanged(
        A, H, f"cooldown over: {reason}", 3_601_000
    )
    assert machine.state is A
    assert machine.resume_at_ms is None
    assert machine.due(9_999_999) is None


def test_due_leaves_untimed_states_alone() -> None:
    machine = TradingStateMachine()
    machine.set(H, "operator: halt", 0)
    assert machine.due(10**12) is None
    # A timed halt replaced by an operator halt (same state) loses its resume time.
    machine = TradingStateMachine()
    machine.set(H, "consecutive_losses: ...", 0, resume_at_ms=10)
    machine.set(H, "operator: halt", 5)
    assert machine.due(10) is None
    machine = TradingStateMachine()
    machine.set(R, "max_drawdown: ...", 0, resume_at_ms=10)
    assert machine.due(10) is None  # only HALTED resumes by itself


def test_snapshot_restore() -> None:
    machine = TradingStateMachine()
    machine.set(H, "consecutive_losses: ...", 7, resume_at_ms=70)
    copy = TradingStateMachine.restore(json.loads(json.dumps(machine.snapshot())))
    assert copy.snapshot() == machine.snapshot()
    assert (copy.state, copy.reason, copy.since_ms, copy.resume_at_ms) == (
        H, "consecutive_losses: ...", 7, 70,
    )  # fmt: skip
    assert copy.due(70) == machine.due(70)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"state": "paused", "reason": "", "since_ms": 0, "resume_at_ms": None},
        {"state": ["active"], "reason": "", "since_ms": 0, "resume_at_ms": None},
        {"state": "active", "reason": 1, "since_ms": 0, "resume_at_ms": None},
        {"state": "active", "reason": "", "since_ms": "0", "resume_at_ms": None},
        {"state": "active", "reason": "", "since_ms": True, "resume_at_ms": None},
        {"state": "halted", "reason": "", "since_ms": 0, "resume_at_ms": 1.5},
    ],
)
def test_restore_rejects_bad_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="trading state snapshot"):
        TradingStateMachine.restore(data)
