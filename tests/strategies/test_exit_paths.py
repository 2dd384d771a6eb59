"""Every exit rule run bar by bar over hand-built price paths (trending up, trending down, choppy,
a gap down, a gap up) for a long and a short: the exact exit bar and price, or that it never
exits. Each position enters at 100 at the close of bar 0; bars 1, 2, ... follow, each carrying
the ATR known before it. A gap down is a gap through a long's stop and a short's target; a gap up
the reverse.

Expected values are worked out by hand in the comments ("b4" is bar 4, "peak" and "trough" the
extreme a trailing stop has seen before the bar it judges).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

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
from strategies.exits.base import PositionSide

NAN = math.nan
STEP = 60_000
ENTRY_PRICE = 100.0
ENTRY_MS = STEP - 1  # the entry fills at the close of bar 0


@dataclass(frozen=True)
class Path:
    bars: tuple[Bar, ...]
    atrs: tuple[float, ...]  # atrs[i]: the ATR known before bars[i]
    entry_atr: float


def path(*rows: tuple[float, float, float, float, float], entry_atr: float = 2.0) -> Path:
    """Bars 1, 2, ... from rows of (open, high, low, close, ATR known before the bar)."""
    bars = tuple(
        Bar(number * STEP, (number + 1) * STEP - 1, o, h, low, c)
        for number, (o, h, low, c, _) in enumerate(rows, start=1)
    )
    return Path(bars, tuple(row[4] for row in rows), entry_atr)


def new_position(side: PositionSide, metadata: dict[str, object] | None = None) -> TrackedPosition:
    return TrackedPosition(
        "p1", "BTCUSDT", side, ENTRY_PRICE, ENTRY_MS, Decimal(1), dict(metadata or {})
    )


def run(
    make_rule: Callable[[PositionSide], ExitRule],
    side: PositionSide,
    price_path: Path,
    *,
    restore_each_bar: bool = False,
) -> tuple[int, ExitDecision] | None:
    """(bar number, decision) of the first exit, or None. With `restore_each_bar` the position's
    metadata goes through strict JSON between bars into a fresh position judged by a fresh rule,
    as after a restart."""
    rule = make_rule(side)
    position = new_position(side)
    rule.on_entry(position, price_path.entry_atr)
    for number, (bar, atr) in enumerate(zip(price_path.bars, price_path.atrs, strict=True), 1):
        if restore_each_bar:
            saved = json.dumps(position.metadata, allow_nan=False)
            position = new_position(side, json.loads(saved))
            rule = make_rule(side)
        decision = rule.check(position, bar, atr)
        if decision is not None:
            return number, decision
    return None


# -- the price paths ------------------------------------------------------------------------------
UP = path(
    (100.0, 101.0, 99.5, 100.5, 2.0),
    (100.5, 102.5, 100.0, 102.0, 2.0),
    (102.0, 104.5, 101.5, 104.0, 2.5),
    (104.0, 107.0, 103.5, 106.5, 2.5),
    (106.5, 107.5, 102.0, 102.5, 3.0),  # the trend ends with a pullback
)
DOWN = path(
    (100.0, 100.5, 99.0, 99.5, 2.0),
    (99.5, 100.0, 97.5, 98.0, 2.0),
    (98.0, 98.5, 95.5, 96.0, 2.5),
    (96.0, 96.5, 93.0, 93.5, 2.5),
    (93.5, 98.0, 93.0, 97.5, 3.0),  # the trend ends with a bounce
)
CHOPPY = path(
    (100.0, 101.2, 99.0, 100.8, 2.0),
    (100.8, 101.4, 98.8, 99.2, 2.0),
    (99.2, 101.0, 98.6, 100.6, 1.5),
    (100.6, 101.6, 99.1, 99.6, 1.5),
    (99.6, 100.9, 98.4, 100.2, 1.5),
)
GAP_DOWN = path(
    (100.0, 100.8, 99.4, 100.4, 2.0),
    (93.0, 94.0, 92.0, 93.5, 2.0),  # opens 7.4 below the last close
    (93.5, 95.0, 93.0, 94.5, 2.5),
    (94.5, 95.5, 94.0, 95.0, 2.5),
)
GAP_UP = path(
    (100.0, 100.6, 99.2, 99.6, 2.0),
    (107.0, 108.0, 106.0, 107.5, 2.0),  # opens 7.4 above the last close
    (107.5, 108.5, 106.5, 106.8, 2.5),
    (106.8, 107.0, 104.0, 104.5, 2.5),
)
PATHS = {"up": UP, "down": DOWN, "choppy": CHOPPY, "gap_down": GAP_DOWN, "gap_up": GAP_UP}


# -- the rules ------------------------------------------------------------------------------------
def fixed_prices(side: PositionSide) -> ExitRule:
    if side == "long":
        return FixedExit(take_profit_price=104, stop_loss_price=98)
    return FixedExit(take_profit_price=96, stop_loss_price=102)


def composite(combine: Combine) -> Callable[[PositionSide], ExitRule]:
    def make(side: PositionSide) -> ExitRule:
        rules: list[ExitRule] = [
            TimeExit(max_bars=4),
            FixedExit(take_profit_pct=5, stop_loss_pct=3),
            TrailingStop(trail_pct=2),
        ]
        # Priorities matter only to HIGHEST_PRIORITY: trailing over fixed over time.
        return CompositeExit(rules, combine=combine, priorities=[0, 1, 2])

    return make


RULES: dict[str, Callable[[PositionSide], ExitRule]] = {
    "fixed_pct": lambda side: FixedExit(take_profit_pct=5, stop_loss_pct=3),
    "fixed_price": fixed_prices,
    "trail_pct": lambda side: TrailingStop(trail_pct=2),
    "trail_pct_activated": lambda side: TrailingStop(trail_pct=2, activation_pct=3),
    "trail_atr": lambda side: TrailingStop(atr_mult=1.5),
    "trail_atr_activated": lambda side: TrailingStop(atr_mult=1.5, activation_pct=3),
    "vol_fixed": lambda side: VolatilityExit(tp_atr=3, sl_atr=1, mode="fixed"),
    "vol_dynamic": lambda side: VolatilityExit(tp_atr=3, sl_atr=1, mode="dynamic"),
    "time_bars": lambda side: TimeExit(max_bars=3),
    "time_duration": lambda side: TimeExit(max_hold_ms=3 * STEP + STEP // 2),
    "composite_first": composite(Combine.FIRST_TRIGGERED),
    "composite_priority": composite(Combine.HIGHEST_PRIORITY),
}


class Exit(NamedTuple):
    bar: int
    price: float
    by: str | None = None  # for a composite: the component that decided


L: PositionSide = "long"
S: PositionSide = "short"

# (rule, path, side, expected exit or None for "never exits")
MATRIX: list[tuple[str, str, PositionSide, Exit | None]] = [
    # FixedExit 5 % / 3 %: long target 105 stop 97; short target 95 stop 103
    ("fixed_pct", "up", L, Exit(4, 105.0)),  # b4 high 107 >= 105 (b3 high 104.5 short of it)
    ("fixed_pct", "up", S, Exit(3, 103.0)),  # b3 high 104.5 >= 103, open 102 below it
    ("fixed_pct", "down", L, Exit(3, 97.0)),  # b3 low 95.5 <= 97 (b2 low 97.5 above it)
    ("fixed_pct", "down", S, Exit(4, 95.0)),  # b4 low 93 <= 95 (b3 low 95.5 above it)
    ("fixed_pct", "choppy", L, None),  # range 98.4..101.6 stays inside 97..105
    ("fixed_pct", "choppy", S, None),  # range 98.4..101.6 stays inside 95..103
    ("fixed_pct", "gap_down", L, Exit(2, 93.0)),  # b2 opens 93 <= 97: the open, worse than 97
    ("fixed_pct", "gap_down", S, Exit(2, 93.0)),  # b2 opens 93 <= 95: the open, better than 95
    ("fixed_pct", "gap_up", L, Exit(2, 107.0)),  # b2 opens 107 >= 105: the open, better
    ("fixed_pct", "gap_up", S, Exit(2, 107.0)),  # b2 opens 107 >= 103: the open, worse
    # FixedExit prices: long target 104 stop 98; short target 96 stop 102
    ("fixed_price", "up", L, Exit(3, 104.0)),  # b3 high 104.5 >= 104
    ("fixed_price", "up", S, Exit(2, 102.0)),  # b2 high 102.5 >= 102
    ("fixed_price", "down", L, Exit(2, 98.0)),  # b2 low 97.5 <= 98
    ("fixed_price", "down", S, Exit(3, 96.0)),  # b3 low 95.5 <= 96
    ("fixed_price", "choppy", L, None),  # lowest low 98.4 > 98, highest high 101.6 < 104
    ("fixed_price", "choppy", S, None),  # highest high 101.6 < 102, lowest low 98.4 > 96
    ("fixed_price", "gap_down", L, Exit(2, 93.0)),  # b2 opens 93 <= stop 98
    ("fixed_price", "gap_down", S, Exit(2, 93.0)),  # b2 opens 93 <= target 96
    ("fixed_price", "gap_up", L, Exit(2, 107.0)),  # b2 opens 107 >= target 104
    ("fixed_price", "gap_up", S, Exit(2, 107.0)),  # b2 opens 107 >= stop 102
    # TrailingStop 2 %: long stop = peak * 0.98, short stop = trough * 1.02
    ("trail_pct", "up", L, Exit(5, 104.86)),  # peak 107 before b5: 104.86; b5 low 102
    ("trail_pct", "up", S, Exit(2, 101.49)),  # trough 99.5 (b1) -> 101.49; b2 high 102.5
    ("trail_pct", "down", L, Exit(2, 98.49)),  # peak 100.5 (b1) -> 98.49; b2 low 97.5
    ("trail_pct", "down", S, Exit(5, 94.86)),  # trough 93 before b5: 94.86; b5 high 98
    ("trail_pct", "choppy", L, Exit(2, 99.176)),  # peak 101.2 (b1) -> 99.176; b2 low 98.8
    ("trail_pct", "choppy", S, Exit(2, 100.98)),  # trough 99 (b1) -> 100.98; b2 high 101.4
    ("trail_pct", "gap_down", L, Exit(2, 93.0)),  # stop 100.8 * 0.98 = 98.784; b2 opens 93
    ("trail_pct", "gap_down", S, Exit(3, 93.84)),  # trough 92 (b2) -> 93.84; b3 high 95
    ("trail_pct", "gap_up", L, Exit(4, 106.33)),  # peak 108.5 (b3) -> 106.33; b4 low 104
    ("trail_pct", "gap_up", S, Exit(2, 107.0)),  # stop 99.2 * 1.02 = 101.184; b2 opens 107
    # TrailingStop 2 % once 3 % in profit (peak >= 103 for a long, trough <= 97 for a short);
    # the bar that activates it is not judged by it
    ("trail_pct_activated", "up", L, Exit(5, 104.86)),  # active after b3 (peak 104.5); as above
    ("trail_pct_activated", "up", S, None),  # lowest trough 99.5: never 3 % in profit
    ("trail_pct_activated", "down", L, None),  # highest peak 100.5: never active
    ("trail_pct_activated", "down", S, Exit(5, 94.86)),  # active after b3 (95.5); 93 * 1.02
    ("trail_pct_activated", "choppy", L, None),  # highest peak 101.6: never active
    ("trail_pct_activated", "choppy", S, None),  # lowest trough 98.4: never active
    ("trail_pct_activated", "gap_down", L, None),  # inactive, so the gap is not stopped
    ("trail_pct_activated", "gap_down", S, Exit(3, 93.84)),  # active after b2 (92); 92 * 1.02
    ("trail_pct_activated", "gap_up", L, Exit(4, 106.33)),  # active after b2 (108); 108.5*0.98
    ("trail_pct_activated", "gap_up", S, None),  # inactive, so the gap is not stopped
    # TrailingStop 1.5 ATR: long stop = peak - 1.5 * ATR, short stop = trough + 1.5 * ATR
    ("trail_atr", "up", L, Exit(5, 102.5)),  # 107 - 1.5 * 3 = 102.5; b5 low 102
    ("trail_atr", "up", S, Exit(2, 102.5)),  # 99.5 + 1.5 * 2 = 102.5; b2 high 102.5 touches
    ("trail_atr", "down", L, Exit(2, 97.5)),  # 100.5 - 1.5 * 2 = 97.5; b2 low 97.5 touches
    ("trail_atr", "down", S, Exit(5, 97.5)),  # 93 + 1.5 * 3 = 97.5; b5 high 98
    ("trail_atr", "choppy", L, Exit(3, 99.15)),  # 101.4 - 1.5 * 1.5 = 99.15; b3 low 98.6
    ("trail_atr", "choppy", S, Exit(4, 100.85)),  # 98.6 + 1.5 * 1.5 = 100.85; b4 high 101.6
    ("trail_atr", "gap_down", L, Exit(2, 93.0)),  # stop 100.8 - 3 = 97.8; b2 opens 93
    ("trail_atr", "gap_down", S, None),  # 92 + 1.5 * 2.5 = 95.75; b3, b4 highs 95, 95.5
    ("trail_atr", "gap_up", L, Exit(4, 104.75)),  # 108.5 - 1.5 * 2.5 = 104.75; b4 low 104
    ("trail_atr", "gap_up", S, Exit(2, 107.0)),  # stop 99.2 + 3 = 102.2; b2 opens 107
    # TrailingStop 1.5 ATR once 3 % in profit
    ("trail_atr_activated", "up", L, Exit(5, 102.5)),  # active after b3; 107 - 4.5
    ("trail_atr_activated", "up", S, None),  # never active
    ("trail_atr_activated", "down", L, None),  # never active
    ("trail_atr_activated", "down", S, Exit(5, 97.5)),  # active after b3; 93 + 4.5
    ("trail_atr_activated", "choppy", L, None),  # never active
    ("trail_atr_activated", "choppy", S, None),  # never active
    ("trail_atr_activated", "gap_down", L, None),  # never active
    ("trail_atr_activated", "gap_down", S, None),  # active after b2, but 95.75 never reached
    ("trail_atr_activated", "gap_up", L, Exit(4, 104.75)),  # active after b2; 108.5 - 3.75
    ("trail_atr_activated", "gap_up", S, None),  # never active
    # VolatilityExit 3 ATR target, 1 ATR stop, ATR 2 at entry: long 106 / 98, short 94 / 102
    ("vol_fixed", "up", L, Exit(4, 106.0)),  # b4 high 107 >= 106
    ("vol_fixed", "up", S, Exit(2, 102.0)),  # b2 high 102.5 >= 102
    ("vol_fixed", "down", L, Exit(2, 98.0)),  # b2 low 97.5 <= 98
    ("vol_fixed", "down", S, Exit(4, 94.0)),  # b4 low 93 <= 94 (b3 low 95.5 above it)
    ("vol_fixed", "choppy", L, None),  # 98.4..101.6 inside 98..106
    ("vol_fixed", "choppy", S, None),  # 98.4..101.6 inside 94..102
    ("vol_fixed", "gap_down", L, Exit(2, 93.0)),  # b2 opens 93 <= stop 98
    ("vol_fixed", "gap_down", S, Exit(2, 93.0)),  # b2 opens 93 <= target 94
    ("vol_fixed", "gap_up", L, Exit(2, 107.0)),  # b2 opens 107 >= target 106
    ("vol_fixed", "gap_up", S, Exit(2, 107.0)),  # b2 opens 107 >= stop 102
    # VolatilityExit on the latest ATR a: long 100 + 3a / 100 - a, short 100 - 3a / 100 + a
    ("vol_dynamic", "up", L, None),  # b4 target 107.5 > high 107; b5 target 109, stop 97
    ("vol_dynamic", "up", S, Exit(2, 102.0)),  # b2 a = 2: stop 102, high 102.5
    ("vol_dynamic", "down", L, Exit(2, 98.0)),  # b2 a = 2: stop 98, low 97.5
    ("vol_dynamic", "down", S, None),  # b4 target 92.5 < low 93; b5 target 91, stop 103
    ("vol_dynamic", "choppy", L, Exit(5, 98.5)),  # b5 a = 1.5: stop 98.5, low 98.4
    ("vol_dynamic", "choppy", S, Exit(4, 101.5)),  # b4 a = 1.5: stop 101.5, high 101.6
    ("vol_dynamic", "gap_down", L, Exit(2, 93.0)),  # b2 a = 2: opens 93 <= stop 98
    ("vol_dynamic", "gap_down", S, Exit(2, 93.0)),  # b2 a = 2: opens 93 <= target 94
    ("vol_dynamic", "gap_up", L, Exit(2, 107.0)),  # b2 a = 2: opens 107 >= target 106
    ("vol_dynamic", "gap_up", S, Exit(2, 107.0)),  # b2 a = 2: opens 107 >= stop 102
    # TimeExit after 3 bars: the close of b3, whatever the side
    ("time_bars", "up", L, Exit(3, 104.0)),
    ("time_bars", "up", S, Exit(3, 104.0)),
    ("time_bars", "down", L, Exit(3, 96.0)),
    ("time_bars", "down", S, Exit(3, 96.0)),
    ("time_bars", "choppy", L, Exit(3, 100.6)),
    ("time_bars", "choppy", S, Exit(3, 100.6)),
    ("time_bars", "gap_down", L, Exit(3, 94.5)),
    ("time_bars", "gap_down", S, Exit(3, 94.5)),
    ("time_bars", "gap_up", L, Exit(3, 106.8)),
    ("time_bars", "gap_up", S, Exit(3, 106.8)),
    # TimeExit after 3.5 minutes: bar n closes n minutes after the entry, so the close of b4
    ("time_duration", "up", L, Exit(4, 106.5)),
    ("time_duration", "up", S, Exit(4, 106.5)),
    ("time_duration", "down", L, Exit(4, 93.5)),
    ("time_duration", "down", S, Exit(4, 93.5)),
    ("time_duration", "choppy", L, Exit(4, 99.6)),
    ("time_duration", "choppy", S, Exit(4, 99.6)),
    ("time_duration", "gap_down", L, Exit(4, 95.0)),
    ("time_duration", "gap_down", S, Exit(4, 95.0)),
    ("time_duration", "gap_up", L, Exit(4, 104.5)),
    ("time_duration", "gap_up", S, Exit(4, 104.5)),
    # Composite of [time 4 bars, fixed 5 % / 3 %, trailing 2 %], each alone as in the rows above;
    # the earliest bar wins, a same-bar tie goes to the first listed
    ("composite_first", "up", L, Exit(4, 106.5, "time")),  # b4: time (close) and fixed (105)
    ("composite_first", "up", S, Exit(2, 101.49, "trailing")),  # trailing b2 before fixed b3
    ("composite_first", "down", L, Exit(2, 98.49, "trailing")),  # trailing b2 before fixed b3
    ("composite_first", "down", S, Exit(4, 93.5, "time")),  # b4: time (close) and fixed (95)
    ("composite_first", "choppy", L, Exit(2, 99.176, "trailing")),  # only trailing before b4
    ("composite_first", "choppy", S, Exit(2, 100.98, "trailing")),  # only trailing before b4
    ("composite_first", "gap_down", L, Exit(2, 93.0, "fixed")),  # b2: fixed and trailing gap
    ("composite_first", "gap_down", S, Exit(2, 93.0, "fixed")),  # b2: only fixed (target)
    ("composite_first", "gap_up", L, Exit(2, 107.0, "fixed")),  # b2: only fixed (target)
    ("composite_first", "gap_up", S, Exit(2, 107.0, "fixed")),  # b2: fixed and trailing gap
    # The same composite, a same-bar tie going to the highest priority: trailing > fixed > time
    ("composite_priority", "up", L, Exit(4, 105.0, "fixed")),  # b4: fixed outranks time
    ("composite_priority", "up", S, Exit(2, 101.49, "trailing")),
    ("composite_priority", "down", L, Exit(2, 98.49, "trailing")),
    ("composite_priority", "down", S, Exit(4, 95.0, "fixed")),  # b4: fixed outranks time
    ("composite_priority", "choppy", L, Exit(2, 99.176, "trailing")),
    ("composite_priority", "choppy", S, Exit(2, 100.98, "trailing")),
    ("composite_priority", "gap_down", L, Exit(2, 93.0, "trailing")),  # b2: trailing > fixed
    ("composite_priority", "gap_down", S, Exit(2, 93.0, "fixed")),
    ("composite_priority", "gap_up", L, Exit(2, 107.0, "fixed")),
    ("composite_priority", "gap_up", S, Exit(2, 107.0, "trailing")),  # b2: trailing > fixed
]


def assert_exit(
    got: tuple[int, ExitDecision] | None, expected: Exit | None, price_path: Path
) -> None:
    if expected is None:
        assert got is None
        return
    assert got is not None, f"expected an exit on bar {expected.bar}, got none"
    number, decision = got
    assert number == expected.bar
    assert decision.price == pytest.approx(expected.price, abs=1e-9)
    assert decision.bar_open_ms == price_path.bars[number - 1].open_ms
    if expected.by is not None:
        assert decision.rule == expected.by


def test_the_matrix_covers_every_rule_path_and_side() -> None:
    cells = {(rule, path_name, side) for rule, path_name, side, _ in MATRIX}
    assert len(cells) == len(MATRIX) == len(RULES) * len(PATHS) * 2


@pytest.mark.parametrize("restore_each_bar", [False, True], ids=["uninterrupted", "restored"])
@pytest.mark.parametrize(
    ("rule", "path_name", "side", "expected"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}-{row[2]}") for row in MATRIX],
)
def test_exit_bar_and_price_on_a_hand_built_path(
    rule: str, path_name: str, side: PositionSide, expected: Exit | None, restore_each_bar: bool
) -> None:
    price_path = PATHS[path_name]
    got = run(RULES[rule], side, price_path, restore_each_bar=restore_each_bar)
    assert_exit(got, expected, price_path)


# -- the conservative reading of a bar ------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "side", "bar", "stop"),
    [
        ("fixed_pct", L, (100.0, 106.0, 96.0, 101.0), 97.0),  # target 105 also inside the bar
        ("fixed_pct", S, (100.0, 104.0, 94.0, 99.0), 103.0),  # target 95 also inside
        ("fixed_price", L, (100.0, 104.5, 97.5, 100.0), 98.0),  # target 104 also inside
        ("fixed_price", S, (100.0, 102.5, 95.5, 100.0), 102.0),  # target 96 also inside
        ("vol_fixed", L, (100.0, 107.0, 97.0, 100.0), 98.0),  # 100 -+ ATR 2: target 106 inside
        ("vol_fixed", S, (100.0, 103.0, 93.0, 100.0), 102.0),  # target 94 inside
        ("vol_dynamic", L, (100.0, 107.0, 97.0, 100.0), 98.0),
        ("vol_dynamic", S, (100.0, 103.0, 93.0, 100.0), 102.0),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bar_reaching_both_stop_and_target_exits_at_the_stop(
    rule: str, side: PositionSide, bar: tuple[float, float, float, float], stop: float
) -> None:
    one_bar = path((*bar, 2.0))
    got = run(RULES[rule], side, one_bar)
    assert got is not None
    assert (got[0], got[1].price) == (1, stop)
    assert "stop" in got[1].reason


@pytest.mark.parametrize(
    ("rule", "side", "stop"),
    [
        ("fixed_pct", L, 97.0),
        ("fixed_pct", S, 103.0),
        ("fixed_price", L, 98.0),
        ("fixed_price", S, 102.0),
        ("trail_pct", L, 98.784),  # peak 100.8 * 0.98
        ("trail_pct", S, 101.184),  # trough 99.2 * 1.02
        ("trail_atr", L, 97.8),  # peak 100.8 - 1.5 * 2
        ("trail_atr", S, 102.2),  # trough 99.2 + 1.5 * 2
        ("vol_fixed", L, 98.0),
        ("vol_dynamic", S, 102.0),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_gap_through_the_stop_fills_at_the_open_worse_than_the_stop(
    rule: str, side: PositionSide, stop: float
) -> None:
    gap_path, gap_open = (GAP_DOWN, 93.0) if side == "long" else (GAP_UP, 107.0)
    got = run(RULES[rule], side, gap_path)
    assert got is not None
    number, decision = got
    assert (number, decision.price) == (2, gap_open)
    assert decision.reason.endswith("(gapped through)")
    assert decision.price < stop if side == "long" else decision.price > stop
    assert f"{stop:.8g}" in decision.reason  # the stop it gapped through is named


# -- state that must survive a restart ------------------------------------------------------------
def test_an_activated_trailing_peak_survives_json_between_bars() -> None:
    rule = TrailingStop(trail_pct=2, activation_pct=3)
    before = new_position("long")
    rule.on_entry(before, UP.entry_atr)
    for bar, atr in zip(UP.bars[:4], UP.atrs[:4], strict=True):
        assert rule.check(before, bar, atr) is None
    saved = json.dumps(before.metadata, allow_nan=False)
    assert json.loads(saved) == {"trailing": {"extreme": 107.0, "active": True}}  # b4 high 107

    after = new_position("long", json.loads(saved))
    decision = TrailingStop(trail_pct=2, activation_pct=3).check(after, UP.bars[4], UP.atrs[4])
    uninterrupted = rule.check(before, UP.bars[4], UP.atrs[4])
    assert decision == uninterrupted
    assert decision is not None
    assert decision.price == pytest.approx(104.86, abs=1e-9)  # 107 * 0.98


# -- ATR not known yet ----------------------------------------------------------------------------
UNKNOWN_ATR = path(
    (100.0, 103.0, 96.0, 97.0, NAN),  # the peak and the trough, before any ATR is known
    (97.0, 102.0, 96.5, 101.5, NAN),
    (102.0, 102.8, 100.5, 101.0, 1.0),  # the first ATR known
    (101.0, 101.5, 98.2, 98.5, 2.0),
    entry_atr=NAN,
)


@pytest.mark.parametrize(
    ("rule", "side", "expected"),
    [
        # the peak 103 of b1 is kept through the NaN bars: 103 - 1.5 * 1 = 101.5; b3 low 100.5
        ("trail_atr", L, Exit(3, 101.5)),
        # the trough 96 of b1 is kept: 96 + 1.5 * 1 = 97.5; b3 opens 102 beyond it
        ("trail_atr", S, Exit(3, 102.0)),
        # active after b1 (peak 103 is 3 % up), no stop until b3: as trail_atr long
        ("trail_atr_activated", L, Exit(3, 101.5)),
        # the first known ATR (1, b3) is the entry ATR for good: b3 99..103 not reached;
        # b4 stop still 99, low 98.2
        ("vol_fixed", L, Exit(4, 99.0)),
        # b3: ATR 1 gives stop 101; b3 opens 102 beyond it
        ("vol_fixed", S, Exit(3, 102.0)),
        # b3 ATR 1: 99..103 not reached; b4 ATR 2: stop 98 below the low 98.2
        ("vol_dynamic", L, None),
        ("vol_dynamic", S, Exit(3, 102.0)),  # b3 ATR 1: stop 101, opens 102
        ("trail_pct", L, Exit(1, 98.0)),  # ATR is irrelevant: 100 * 0.98; b1 low 96
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bars_with_an_unknown_atr(rule: str, side: PositionSide, expected: Exit | None) -> None:
    for restore_each_bar in (False, True):
        got = run(RULES[rule], side, UNKNOWN_ATR, restore_each_bar=restore_each_bar)
        assert_exit(got, expected, UNKNOWN_ATR)


# -- composite property ---------------------------------------------------------------------------
MOVES = st.lists(
    st.tuples(
        st.floats(-0.05, 0.05),  # gap from the last close to the open
        st.floats(-0.04, 0.04),  # open to close
        st.floats(0, 0.03),  # wick above
        st.floats(0, 0.03),  # wick below
        st.one_of(st.just(NAN), st.floats(0.5, 4.0)),  # ATR known before the bar
    ),
    min_size=1,
    max_size=30,
)


def always(rule: ExitRule) -> Callable[[PositionSide], ExitRule]:
    return lambda side: rule


def components_for_property() -> Sequence[ExitRule]:
    return (
        FixedExit(take_profit_pct=6, stop_loss_pct=4),
        TrailingStop(trail_pct=3, activation_pct=1, name="trail_pct"),
        TrailingStop(atr_mult=2, name="trail_atr"),
        VolatilityExit(tp_atr=4, sl_atr=3, mode="dynamic"),
        TimeExit(max_bars=20),
    )


@settings(derandomize=True, max_examples=150, deadline=None)
@given(moves=MOVES, side=st.sampled_from(["long", "short"]))
def test_a_first_triggered_composite_takes_the_earliest_components_exit(
    moves: list[tuple[float, float, float, float, float]], side: PositionSide
) -> None:
    close = ENTRY_PRICE
    rows = []
    for gap, change, up, down, atr in moves:
        open_ = close * (1 + gap)
        close = open_ * (1 + change)
        rows.append(
            (open_, max(open_, close) * (1 + up), min(open_, close) * (1 - down), close, atr)
        )
    price_path = path(*rows, entry_atr=2.0)

    alone = [run(always(rule), side, price_path) for rule in components_for_property()]
    exits = [got for got in alone if got is not None]
    combined = run(lambda _side: CompositeExit(components_for_property()), side, price_path)
    if not exits:
        assert combined is None
        return
    earliest_bar = min(number for number, _ in exits)
    # Components run in the configured order, so the first one exiting on the earliest bar wins.
    first_on_that_bar = next(got for got in exits if got[0] == earliest_bar)
    assert combined == first_on_that_bar


# -- defects found while writing these tests (fixed) ----------------------------------------------
def test_a_zero_activation_threshold_is_active_from_entry() -> None:
    def zero(side: PositionSide) -> ExitRule:
        return TrailingStop(trail_pct=2, activation_pct=0)

    # active from entry, the stop is 100 * 0.98 = 98 and b1 opens 93 below it
    gap_at_once = path((93.0, 94.0, 92.0, 93.5, 2.0))
    assert_exit(run(zero, "long", gap_at_once), Exit(1, 93.0), gap_at_once)


def test_a_price_exactly_on_a_percentage_level_reaches_it() -> None:
    entry = 1.1  # take-profit 10 %: 1.21; float gives 1.2100000000000002
    position = TrackedPosition("p1", "BTCUSDT", "long", entry, ENTRY_MS, Decimal(1))
    FixedExit(take_profit_pct=10).on_entry(position, NAN)
    touch = Bar(STEP, 2 * STEP - 1, 1.2, 1.21, 1.19, 1.2)
    decision = FixedExit(take_profit_pct=10).check(position, touch, NAN)
    assert decision is not None
    assert decision.price == pytest.approx(1.21)
