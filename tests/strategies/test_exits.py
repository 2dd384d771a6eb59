"""Exit rules on hand-built price paths: the exact exit bar and price, for longs and shorts."""

from __future__ import annotations

import copy
import json
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.exits import (
    Bar,
    Combine,
    CompositeExit,
    ExitDecision,
    ExitRule,
    FixedExit,
    TimeExit,
    TrackedPosition,
    TrailingStop,
    VolatilityExit,
)

NAN = math.nan
STEP = 60_000


def bars(*ohlc: tuple[float, float, float, float]) -> list[Bar]:
    """Bars 1, 2, ... after the entry bar (bar 0), one minute each."""
    return [
        Bar((n + 1) * STEP, (n + 2) * STEP - 1, o, h, low, c)
        for n, (o, h, low, c) in enumerate(ohlc)
    ]


def position(side: str = "long", entry: float = 100.0) -> TrackedPosition:
    return TrackedPosition("p1", "BTCUSDT", side, entry, STEP - 1, Decimal(1))  # type: ignore[arg-type]


def run(
    rule: ExitRule, path: list[Bar], pos: TrackedPosition | None = None, atr: float = NAN
) -> tuple[int, ExitDecision] | None:
    """(bar number, decision) of the first exit, or None."""
    pos = pos or position()
    rule.on_entry(pos, atr)
    for number, bar in enumerate(path, start=1):
        decision = rule.check(pos, bar, atr)
        if decision is not None:
            return number, decision
    return None


TRENDING_UP = bars((100, 101, 99.5, 101), (101, 103, 100.5, 103), (103, 106, 102, 105.5))
TRENDING_DOWN = bars((100, 100.5, 98, 98.5), (98.5, 99, 96, 96.5), (96.5, 97, 94, 94.5))
CHOPPY = bars((100, 101.5, 98.5, 100.5), (100.5, 101.8, 98.6, 99), (99, 101.9, 98.7, 100))
GAP_DOWN = bars((100, 100.5, 99.5, 100), (94, 95, 93, 94.5))


# -- fixed take-profit / stop-loss ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (TRENDING_UP, (3, 105.0, "take-profit 105")),
        (TRENDING_DOWN, (2, 97.0, "stop-loss 97")),
        (CHOPPY, None),
        (GAP_DOWN, (2, 94.0, "stop-loss 97 (gapped through)")),  # filled at the open, not 97
    ],
    ids=["up", "down", "choppy", "gap"],
)
def test_fixed_percentages_on_a_long(
    path: list[Bar], expected: tuple[int, float, str] | None
) -> None:
    got = run(FixedExit(take_profit_pct=5, stop_loss_pct=3), path)
    assert (None if got is None else (got[0], got[1].price, got[1].reason)) == expected


def test_fixed_prices_on_a_short_and_the_stop_wins_a_bar_that_touches_both() -> None:
    rule = FixedExit(take_profit_price=95, stop_loss_price=102)
    assert run(rule, TRENDING_DOWN, position("short")) == (
        3,
        ExitDecision("fixed", "take-profit 95", 95.0, 3 * STEP),
    )
    wide_bar = bars((100, 102.5, 94, 99))  # both levels inside one bar: assume the worse
    assert run(rule, wide_bar, position("short")) == (
        1,
        ExitDecision("fixed", "stop-loss 102", 102.0, STEP),
    )


def test_fixed_exit_refuses_contradictions() -> None:
    with pytest.raises(ValueError, match="not both"):
        FixedExit(take_profit_pct=1, take_profit_price=110)
    with pytest.raises(ValueError, match="must be positive"):
        FixedExit(stop_loss_pct=0)


# -- trailing stop --------------------------------------------------------------------------------
def test_trailing_stop_follows_the_peak_and_exits_on_the_pullback() -> None:
    path = [*TRENDING_UP, Bar(4 * STEP, 5 * STEP - 1, 105.5, 105.8, 102.9, 103.5)]
    # peak 106 after bar 3 -> stop 106 * 0.97 = 102.82; bar 4 low 102.9 stays above: no exit
    assert run(TrailingStop(trail_pct=3), path) is None
    deeper = [*TRENDING_UP, Bar(4 * STEP, 5 * STEP - 1, 105.5, 105.8, 102.5, 103)]
    got = run(TrailingStop(trail_pct=3), deeper)
    assert got is not None
    assert (got[0], got[1].price) == (4, pytest.approx(102.82))
    assert "peak 106" in got[1].reason


def test_trailing_stop_on_a_short_tracks_the_trough() -> None:
    path = [*TRENDING_DOWN, Bar(4 * STEP, 5 * STEP - 1, 94.5, 97.5, 94.2, 97)]
    got = run(TrailingStop(trail_pct=3), path, position("short"))
    assert got is not None
    assert (got[0], got[1].price) == (4, pytest.approx(94 * 1.03))


def test_activation_waits_for_the_profit_and_the_atr_variant_uses_the_atr() -> None:
    rule = TrailingStop(atr_mult=2, activation_pct=5)
    pos = position()
    # ATR 1: stop = peak - 2. Inactive until the peak is 5 % above entry (105, bar 3).
    path = [*TRENDING_UP, Bar(4 * STEP, 5 * STEP - 1, 105, 105.2, 103.9, 104)]
    got = run(rule, path, pos, atr=1.0)
    assert got is not None
    assert (got[0], got[1].price) == (4, 104.0)  # peak 106 - 2 ATR
    early = bars((100, 104, 99, 103), (103, 103.5, 101.5, 102))  # pullback before activation
    assert run(TrailingStop(atr_mult=2, activation_pct=5), early, atr=1.0) is None


def test_the_peak_survives_a_snapshot_and_restore() -> None:
    rule = TrailingStop(trail_pct=3)
    pos = position()
    rule.on_entry(pos, NAN)
    for bar in TRENDING_UP:
        assert rule.check(pos, bar, NAN) is None
    saved = json.loads(json.dumps(pos.metadata))
    restored = TrackedPosition("p1", "BTCUSDT", "long", 100.0, STEP - 1, Decimal(1), saved)
    assert restored.metadata["trailing"]["extreme"] == 106
    pullback = Bar(4 * STEP, 5 * STEP - 1, 105.5, 105.8, 102.5, 103)
    decision = TrailingStop(trail_pct=3).check(restored, pullback, NAN)
    assert decision is not None
    assert decision.price == pytest.approx(102.82)


def test_trailing_stop_needs_one_distance() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TrailingStop()
    with pytest.raises(ValueError, match="exactly one"):
        TrailingStop(trail_pct=1, atr_mult=2)


# -- volatility exit ------------------------------------------------------------------------------
def test_volatility_exit_fixed_at_entry_versus_recalculated() -> None:
    path = bars((100, 101, 99.2, 100.5), (100.5, 102.6, 100, 102))
    fixed = run(VolatilityExit(tp_atr=2, sl_atr=1, mode="fixed"), path, atr=1.0)
    assert fixed is not None
    assert (fixed[0], fixed[1].price) == (2, 102.0)  # 100 + 2 * 1.0
    # Recalculated each bar with a wider ATR (1.5): target 103 is not reached.
    dynamic = VolatilityExit(tp_atr=2, sl_atr=1, mode="dynamic")
    pos = position()
    dynamic.on_entry(pos, 1.0)
    assert [dynamic.check(pos, bar, 1.5) for bar in path] == [None, None]


def test_volatility_exit_waits_for_an_atr_and_stops_a_short() -> None:
    rule = VolatilityExit(tp_atr=3, sl_atr=2)
    pos = position("short")
    rule.on_entry(pos, NAN)
    first, second = bars((100, 101, 99, 100), (100, 102.5, 99.5, 102))
    assert rule.check(pos, first, NAN) is None  # no ATR yet: nothing to judge
    decision = rule.check(pos, second, 1.2)  # the first ATR seen becomes the entry ATR
    assert decision == ExitDecision("volatility", "stop 2 ATR (102.4)", 102.4, 2 * STEP)


# -- time exit ------------------------------------------------------------------------------------
def test_time_exit_by_bars_and_by_duration() -> None:
    by_bars = run(TimeExit(max_bars=2), CHOPPY)
    assert by_bars == (2, ExitDecision("time", "held 2 bars", 99.0, 2 * STEP))
    by_time = run(TimeExit(max_hold_ms=3 * STEP), CHOPPY)
    assert by_time == (3, ExitDecision("time", "held 0.05 h", 100.0, 3 * STEP))
    with pytest.raises(ValueError, match="max_bars or max_hold_ms"):
        TimeExit()


# -- composite ------------------------------------------------------------------------------------
def test_composite_leaves_on_the_first_bar_any_rule_triggers() -> None:
    composite = CompositeExit([TimeExit(max_bars=3), FixedExit(stop_loss_pct=3)])
    assert run(composite, TRENDING_DOWN) == (
        2,
        ExitDecision("fixed", "stop-loss 97", 97.0, 2 * STEP),
    )


def test_same_bar_ties_follow_order_or_priority() -> None:
    rules = [TimeExit(max_bars=2), FixedExit(stop_loss_pct=3)]
    first = CompositeExit(rules, combine=Combine.FIRST_TRIGGERED)
    assert run(first, TRENDING_DOWN) is not None
    assert run(first, TRENDING_DOWN)[1].rule == "time"  # type: ignore[index]
    ranked = CompositeExit(rules, combine=Combine.HIGHEST_PRIORITY, priorities=[1, 5])
    assert run(ranked, TRENDING_DOWN)[1].rule == "fixed"  # type: ignore[index]
    with pytest.raises(ValueError, match="unique"):
        CompositeExit([TimeExit(max_bars=1), TimeExit(max_bars=2)])


PRICE_PATHS = st.lists(
    st.tuples(st.floats(-0.04, 0.04), st.floats(0, 0.03), st.floats(0, 0.03)),
    min_size=1,
    max_size=40,
)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(moves=PRICE_PATHS, side=st.sampled_from(["long", "short"]))
def test_a_first_triggered_composite_never_exits_later_than_its_earliest_component(
    moves: list[tuple[float, float, float]], side: str
) -> None:
    price = 100.0
    path = []
    for n, (change, up, down) in enumerate(moves):
        close = price * (1 + change)
        high = max(price, close) * (1 + up)
        low = min(price, close) * (1 - down)
        path.append(Bar((n + 1) * STEP, (n + 2) * STEP - 1, price, high, low, close))
        price = close
    components = [
        FixedExit(take_profit_pct=6, stop_loss_pct=4, name="fixed"),
        TrailingStop(trail_pct=3, activation_pct=1, name="trail"),
        VolatilityExit(tp_atr=4, sl_atr=3, name="vol"),
        TimeExit(max_bars=25, name="time"),
    ]
    alone = [run(copy.deepcopy(rule), path, position(side), atr=1.5) for rule in components]
    earliest = min((got[0] for got in alone if got is not None), default=None)
    combined = run(CompositeExit(components), path, position(side), atr=1.5)
    assert (None if combined is None else combined[0]) == earliest
