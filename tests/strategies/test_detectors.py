"""The two small detectors, `sma_cross` and `rsi_reversion`, through the real runner: which bar
enters or exits and why on hand-built closes, the same against the batch reference indicators
on the synthetic market, parameter checks and a mid-run restart."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from app.domain import Kline, Signal, SignalAction
from strategies.base import Strategy
from strategies.rsi_reversion import RsiReversion, RsiReversionParams
from strategies.runner import StrategyRunner
from strategies.sma_cross import SmaCross, SmaCrossParams
from tests.strategies import indicator_reference as ref
from tests.strategies.bars import SESSION_START_MS, assert_alternates, synthetic_klines

SYMBOL = "BTCUSDT"
MINUTE_MS = 60_000
ENTER_LONG = SignalAction.ENTER_LONG
ENTER_SHORT = SignalAction.ENTER_SHORT
EXIT_LONG = SignalAction.EXIT_LONG
EXIT_SHORT = SignalAction.EXIT_SHORT


def bar(minute: int, close: float) -> Kline:
    open_ms = SESSION_START_MS + minute * MINUTE_MS
    price = Decimal(repr(close))
    return Kline(
        SYMBOL, "1m", open_ms, open_ms + MINUTE_MS - 1, price, price, price, price,
        Decimal(1), Decimal(0), 1, True,
    )  # fmt: skip


def sma_runner(**params: Any) -> StrategyRunner:
    model = SmaCrossParams(**params)
    return StrategyRunner(SmaCross, model, instance="sc", symbol=SYMBOL, interval="1m")


def rsi_runner(**params: Any) -> StrategyRunner:
    model = RsiReversionParams(**params)
    return StrategyRunner(RsiReversion, model, instance="rr", symbol=SYMBOL, interval="1m")


def feed(runner: StrategyRunner, closes: Sequence[float]) -> list[tuple[int, SignalAction, str]]:
    return [
        (minute, signal.action, signal.reason)
        for minute, close in enumerate(closes)
        for signal in runner.on_kline(bar(minute, close))
    ]


def wilder_rsi(closes: Sequence[float], period: int) -> list[float]:
    """RSI by its definition: the first averages are plain means of `period` changes, then
    avg = (avg * (period - 1) + x) / period; NaN until `period` changes are seen."""
    out = [math.nan] * len(closes)
    gains = [max(b - a, 0.0) for a, b in itertools.pairwise(closes)]
    losses = [max(a - b, 0.0) for a, b in itertools.pairwise(closes)]
    if len(gains) < period:
        return out
    gain = sum(gains[:period]) / period
    loss = sum(losses[:period]) / period
    for i in range(period, len(closes)):
        if i > period:
            gain = (gain * (period - 1) + gains[i - 1]) / period
            loss = (loss * (period - 1) + losses[i - 1]) / period
        out[i] = (
            50.0 if gain == loss == 0 else 100.0 if loss == 0 else 100 - 100 / (1 + gain / loss)
        )
    return out


# -- sma_cross ----------------------------------------------------------------------------------
def test_sma_cross_enters_long_on_the_cross_above() -> None:
    # fast 1, slow 2: the close against the mean of the last two closes.
    signals = feed(sma_runner(fast=1, slow=2), [100.0, 100.0, 100.0, 101.0])
    assert signals == [(3, ENTER_LONG, f"SMA1 101 crossed above {(100 + 101) / 2:g}")]


def test_sma_cross_reverses_on_the_opposite_cross() -> None:
    signals = feed(sma_runner(fast=1, slow=2), [100.0, 100.0, 100.0, 101.0, 100.0, 101.0])
    down = f"SMA1 100 crossed below {(101 + 100) / 2:g}"
    up = f"SMA1 101 crossed above {(100 + 101) / 2:g}"
    assert signals == [
        (3, ENTER_LONG, up),
        (4, EXIT_LONG, down),
        (4, ENTER_SHORT, down),
        (5, EXIT_SHORT, up),
        (5, ENTER_LONG, up),
    ]


def test_sma_cross_long_only_just_exits_on_the_cross_below() -> None:
    signals = feed(sma_runner(fast=1, slow=2, allow_short=False), [100.0] * 3 + [101.0, 100.0])
    assert [(m, a) for m, a, _ in signals] == [(3, ENTER_LONG), (4, EXIT_LONG)]


def test_sma_cross_touching_is_not_crossing() -> None:
    # 101 after 101: fast equals slow; 102 then comes from "at", which is a cross, but the
    # detector already holds its long.
    signals = feed(sma_runner(fast=1, slow=2), [100.0] * 3 + [101.0, 101.0, 102.0])
    assert [(m, a) for m, a, _ in signals] == [(3, ENTER_LONG)]


def test_sma_cross_needs_one_bar_beyond_the_slow_window() -> None:
    # fast 2, slow 3: the first difference exists on minute 2, the first cross on minute 3.
    runner = sma_runner(fast=2, slow=3)
    assert runner.strategy.warmup_bars == 4
    assert feed(runner, [100.0, 100.0, 101.0]) == []
    runner = sma_runner(fast=2, slow=3)
    signals = feed(runner, [100.0, 100.0, 100.0, 103.0])
    fast, slow = (100 + 103) / 2, (100 + 100 + 103) / 3
    assert signals == [(3, ENTER_LONG, f"SMA2 {fast:.8g} crossed above {slow:.8g}")]


@pytest.mark.parametrize(("fast", "slow"), [(3, 3), (5, 3)])
def test_sma_cross_refuses_fast_not_below_slow(fast: int, slow: int) -> None:
    with pytest.raises(ValidationError, match="fast must be shorter than slow"):
        SmaCrossParams(fast=fast, slow=slow)


@pytest.mark.parametrize("seed", [3, 8])
def test_sma_cross_signals_where_the_reference_smas_cross(seed: int) -> None:
    klines = synthetic_klines(400, seed=seed)
    closes = np.array([float(k.close) for k in klines])
    diff = ref.sma(closes, 3) - ref.sma(closes, 9)
    # Exact ties would make the comparison depend on float rounding; this path has none.
    assert np.nanmin(np.abs(diff)) > 1e-6
    expected: list[tuple[int, SignalAction]] = []
    for i in range(9, len(closes)):
        if diff[i] > 0 >= diff[i - 1]:
            expected += [(i, EXIT_SHORT)] if expected else []
            expected.append((i, ENTER_LONG))
        elif diff[i] < 0 <= diff[i - 1]:
            expected += [(i, EXIT_LONG)] if expected else []
            expected.append((i, ENTER_SHORT))
    runner = sma_runner(fast=3, slow=9)
    signals = [(i, s) for i, k in enumerate(klines) for s in runner.on_kline(k)]
    assert [(i, s.action) for i, s in signals] == expected
    assert len(expected) > 10
    assert_alternates([s for _, s in signals if s.action in (ENTER_LONG, EXIT_LONG)])


# -- rsi_reversion ------------------------------------------------------------------------------
# RSI(2): flat closes read 50; 99 and 98 are losses only (RSI 0); 101 then gives average gain
# 3 / 2 = 1.5 and average loss 0.75 / 2 = 0.375, RSI 80.
BOUNCE = [100.0, 100.0, 100.0, 99.0, 98.0, 101.0, 101.0]
SPIKE = [100.0, 100.0, 100.0, 101.0, 102.0, 99.0, 99.0]


def test_rsi_reversion_enters_long_on_the_turn_up_and_exits_at_the_level() -> None:
    rsi = wilder_rsi(BOUNCE, 2)
    assert rsi[3:] == [0.0, 0.0, 80.0, 80.0]
    signals = feed(rsi_runner(period=2), BOUNCE)
    assert signals == [
        (5, ENTER_LONG, f"RSI {rsi[4]:.4g} -> {rsi[5]:.4g} up through 30"),
        (6, EXIT_LONG, f"RSI {rsi[6]:.4g} reached 50"),
    ]


def test_rsi_reversion_enters_short_on_the_turn_down_and_exits_at_the_level() -> None:
    rsi = wilder_rsi(SPIKE, 2)
    assert rsi[3:] == [100.0, 100.0, 20.0, 20.0]
    signals = feed(rsi_runner(period=2), SPIKE)
    assert signals == [
        (5, ENTER_SHORT, f"RSI {rsi[4]:.4g} -> {rsi[5]:.4g} down through 70"),
        (6, EXIT_SHORT, f"RSI {rsi[6]:.4g} reached 50"),
    ]


def test_rsi_reversion_exit_level_and_long_only() -> None:
    # With exit_level 90 the long of minute 5 (RSI 80) is still held on minute 6.
    assert [
        (m, a) for m, a, _ in feed(rsi_runner(period=2, exit_level=90, overbought=95), BOUNCE)
    ] == [(5, ENTER_LONG)]
    assert feed(rsi_runner(period=2, allow_short=False), SPIKE) == []


def test_rsi_reversion_a_turn_that_stays_below_oversold_is_no_entry() -> None:
    # 98.1 after 99, 98: gain 0.1, RSI 100 - 100 / (1 + 0.05 / 0.375) = 11.8 < 30.
    closes = [*BOUNCE[:5], 98.1]
    assert wilder_rsi(closes, 2)[5] < 30
    assert feed(rsi_runner(period=2), closes) == []


@pytest.mark.parametrize(
    "levels",
    [
        {"oversold": 50.0},
        {"exit_level": 70.0},
        {"oversold": 60.0, "overbought": 40.0},
    ],
)
def test_rsi_reversion_refuses_levels_out_of_order(levels: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="oversold < exit_level < overbought"):
        RsiReversionParams(**levels)


@pytest.mark.parametrize("seed", [3, 8])
def test_rsi_reversion_matches_the_reference_rsi(seed: int) -> None:
    klines = synthetic_klines(400, seed=seed)
    closes = np.array([float(k.close) for k in klines])
    rsi = ref.rsi(closes, 5)
    levels = (35.0, 50.0, 65.0)
    ready = rsi[~np.isnan(rsi)]
    # Values right at a level would make the comparison depend on float rounding.
    assert min(np.abs(ready - level).min() for level in levels) > 1e-6
    expected: list[tuple[int, SignalAction]] = []
    side = 0
    for i in range(7, len(closes)):
        if side == 1 and rsi[i] >= 50:
            expected.append((i, EXIT_LONG))
            side = 0
        elif side == -1 and rsi[i] <= 50:
            expected.append((i, EXIT_SHORT))
            side = 0
        elif side == 0 and rsi[i - 1] < 35 <= rsi[i]:
            expected.append((i, ENTER_LONG))
            side = 1
        elif side == 0 and rsi[i - 1] > 65 >= rsi[i]:
            expected.append((i, ENTER_SHORT))
            side = -1
    runner = rsi_runner(period=5, oversold=35, overbought=65)
    signals = [(i, s.action) for i, k in enumerate(klines) for s in runner.on_kline(k)]
    assert signals == expected
    assert len(expected) >= 6


# -- restart ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (SmaCross, SmaCrossParams(fast=3, slow=9)),
        (RsiReversion, RsiReversionParams(period=5, oversold=35, overbought=65)),
    ],
)
@pytest.mark.parametrize("cut", [5, 9, 10, 57, 200])
def test_a_detector_restored_mid_run_continues_identically(
    cls: type[Strategy[Any]], params: Any, cut: int
) -> None:
    klines = synthetic_klines(300, seed=3)

    def run(runner: StrategyRunner, part: Sequence[Kline]) -> list[Signal]:
        return [s for k in part for s in runner.on_kline(k)]

    whole = run(StrategyRunner(cls, params, instance="d", symbol=SYMBOL, interval="1m"), klines)
    first = StrategyRunner(cls, params, instance="d", symbol=SYMBOL, interval="1m")
    before = run(first, klines[:cut])
    second = StrategyRunner(cls, params, instance="d", symbol=SYMBOL, interval="1m")
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert before + run(second, klines[cut:]) == whole
