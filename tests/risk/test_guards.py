"""Runtime guards: consecutive losses, the drawdown breaker, minimum equity."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from app.domain import TradingState
from config.risk import RiskGuardSettings
from risk.book import RoundTrip
from risk.guards import Guards, GuardTrip

D = Decimal
MIN = 60_000


def trip(pnl: str, strategy: str = "s1") -> RoundTrip:
    return RoundTrip(strategy, "BTCUSDT", D(pnl), 0)


def test_consecutive_losses_trip_exactly_at_n_across_instances() -> None:
    guards = Guards(RiskGuardSettings(consecutive_losses=3, consecutive_loss_cooldown_min=60))
    assert guards.on_round_trip(trip("-1", "s1"), 0) is None
    assert guards.on_round_trip(trip("-2", "s2"), 0) is None
    assert guards.losing_streak == 2
    result = guards.on_round_trip(trip("-0.5", "s3"), 1_000)
    assert result == GuardTrip(
        TradingState.HALTED,
        "consecutive_losses: 3 losing trades in a row (limit 3); halted for 60 min",
        1_000 + 60 * MIN,
    )
    # The streak that halted starts over: the next loss alone does not halt again.
    assert guards.losing_streak == 0
    assert guards.on_round_trip(trip("-1"), 2_000) is None


def test_a_win_resets_the_streak_and_break_even_does_not() -> None:
    guards = Guards(RiskGuardSettings(consecutive_losses=3, consecutive_loss_cooldown_min=0.5))
    guards.on_round_trip(trip("-1"), 0)
    guards.on_round_trip(trip("-1"), 0)
    assert guards.on_round_trip(trip("0.01"), 0) is None
    assert guards.losing_streak == 0
    guards.on_round_trip(trip("-1"), 0)
    guards.on_round_trip(trip("-1"), 0)
    assert guards.on_round_trip(trip("0"), 0) is None
    assert guards.losing_streak == 2
    result = guards.on_round_trip(trip("-1"), 10)
    assert result is not None
    assert result.reason.endswith("halted for 0.5 min")
    assert result.resume_at_ms == 10 + 30_000


def test_losses_are_only_counted_without_a_limit() -> None:
    guards = Guards(RiskGuardSettings())
    for _ in range(10):
        assert guards.on_round_trip(trip("-1"), 0) is None
    assert guards.losing_streak == 10


@pytest.mark.parametrize(
    ("action", "state"),
    [("halted", TradingState.HALTED), ("reducing", TradingState.REDUCING)],
)
def test_drawdown_breaker_trips_once_with_its_action(action: str, state: TradingState) -> None:
    guards = Guards(RiskGuardSettings(max_drawdown_pct=D(8), drawdown_action=action))
    assert guards.on_equity(D(10_000), 0) is None
    assert guards.on_equity(D(9_300), 0) is None  # 7%
    assert guards.drawdown_pct == D(7)
    assert guards.peak_equity == D(10_000)
    result = guards.on_equity(D(9_200), 5)  # exactly 8%
    assert result == GuardTrip(
        state, "max_drawdown: equity 9,200 is 8% below its peak 10,000 (limit 8%)", None
    )
    # Latched: deeper drawdowns and recoveries do not trip again...
    assert guards.on_equity(D(9_010), 6) is None
    assert guards.drawdown_pct == D("9.9")
    assert guards.on_equity(D(10_500), 7) is None  # a new peak
    assert guards.peak_equity == D(10_500)
    assert guards.on_equity(D(9_000), 8) is None
    # ...until the operator resumes: the peak is re-based at the current equity.
    guards.reset(D(9_000))
    assert guards.peak_equity == D(9_000)
    assert guards.drawdown_pct == 0
    assert guards.on_equity(D(8_400), 9) is None  # 6.67% of 9,000
    result = guards.on_equity(D(8_280), 10)  # 8% of 9,000
    assert result is not None
    assert result.reason == "max_drawdown: equity 8,280 is 8% below its peak 9,000 (limit 8%)"


def test_drawdown_reason_numbers() -> None:
    guards = Guards(RiskGuardSettings(max_drawdown_pct=D(8)))
    guards.on_equity(D(10_000), 0)
    result = guards.on_equity(D(9_010), 0)
    assert result is not None
    assert result.reason == "max_drawdown: equity 9,010 is 9.9% below its peak 10,000 (limit 8%)"


def test_min_equity_halts_while_below() -> None:
    guards = Guards(RiskGuardSettings(min_equity=D(5_000)))
    assert guards.on_equity(D(5_000), 0) is None
    assert guards.on_equity(D("4999.5"), 1) == GuardTrip(
        TradingState.HALTED, "min_equity: equity 4,999.5 is below the minimum 5,000", None
    )
    assert guards.on_equity(D(4_000), 2) is None  # latched while below
    assert guards.on_equity(D(5_100), 3) is None  # back above: unlatched
    assert guards.on_equity(D(4_900), 4) is not None
    guards.reset(D(4_900))  # a resume below the minimum is halted again at the next update
    assert guards.on_equity(D(4_900), 5) is not None


def test_min_equity_outranks_a_reducing_drawdown() -> None:
    settings = RiskGuardSettings(
        max_drawdown_pct=D(10), drawdown_action="reducing", min_equity=D(9_000)
    )
    guards = Guards(settings)
    guards.on_equity(D(10_000), 0)
    result = guards.on_equity(D(8_000), 1)
    assert result is not None
    assert result.state is TradingState.HALTED
    assert result.reason.startswith("min_equity:")
    assert guards.on_equity(D(7_000), 2) is None  # both latched


def test_snapshot_restore() -> None:
    settings = RiskGuardSettings(consecutive_losses=3, max_drawdown_pct=D(8))
    guards = Guards(settings)
    guards.on_equity(D(10_000), 0)
    guards.on_equity(D(9_000), 0)  # tripped, latched
    guards.on_round_trip(trip("-1"), 0)
    guards.on_round_trip(trip("-1"), 0)
    copy = Guards(settings)
    copy.restore(json.loads(json.dumps(guards.snapshot())))
    assert copy.snapshot() == guards.snapshot()
    assert (copy.peak_equity, copy.losing_streak, copy.drawdown_pct) == (D(10_000), 2, D(10))
    assert copy.on_equity(D(8_000), 0) is None  # still latched
    assert copy.on_round_trip(trip("-1"), 0) is not None  # the third loss in a row
    fresh = Guards(settings)
    fresh.restore(Guards(settings).snapshot())
    assert fresh.peak_equity is None


@pytest.mark.parametrize(
    "change",
    [
        {"peak_equity": 10},
        {"peak_equity": "x"},
        {"drawdown_pct": "NaN"},
        {"losing_streak": -1},
        {"losing_streak": "2"},
        {"drawdown_latched": 1},
    ],
)
def test_restore_rejects_bad_data(change: dict[str, object]) -> None:
    guards = Guards(RiskGuardSettings())
    guards.on_equity(D(10_000), 0)
    data = {**guards.snapshot(), **change}
    with pytest.raises(ValueError, match="guards snapshot"):
        guards.restore(data)
    with pytest.raises(ValueError, match="guards snapshot"):
        guards.restore({})
    assert guards.peak_equity == D(10_000)  # unchanged
