"""`momentum` on hand-built bar paths: which bar enters or exits, and why.

Parameters are tiny (EMA 2/4, a 3-bar entry channel, a 2-bar exit channel), so the warm-up
is four bars and every path is a handful of 1m bars. Bars are dojis at their close unless a
path gives a wick; wicks move the channels without moving the EMAs.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from app.domain import Kline, Signal, SignalAction
from strategies.momentum import Momentum, MomentumParams
from strategies.runner import StrategyRunner
from tests.strategies.bars import (
    INTERVAL_NAMES,
    SESSION_START_MS,
    assert_alternates,
    klines_from,
    synthetic_klines,
)
from tests.strategies.kline_data import Bars

SYMBOL = "BTCUSDT"
INSTANCE = "mo1"
MINUTE_MS = 60_000

ENTER_LONG = SignalAction.ENTER_LONG
ENTER_SHORT = SignalAction.ENTER_SHORT
EXIT_LONG = SignalAction.EXIT_LONG
EXIT_SHORT = SignalAction.EXIT_SHORT

BASE_PARAMS: dict[str, Any] = {"fast": 2, "slow": 4, "breakout_bars": 3, "exit_bars": 2}
FLAT = ["100"] * 4  # seeds both EMAs at 100 and completes the warm-up of four bars

# A bar is a close, or (close, high, low) with wicks.
BarSpec = str | tuple[str, str, str]


def bar(minute: int, spec: BarSpec) -> Kline:
    close, high, low = (spec, spec, spec) if isinstance(spec, str) else spec
    open_ms = SESSION_START_MS + minute * MINUTE_MS
    return Kline(
        SYMBOL, "1m", open_ms, open_ms + MINUTE_MS - 1, Decimal(close), Decimal(high),
        Decimal(low), Decimal(close), Decimal(1), Decimal(0), 1, True,
    )  # fmt: skip


def make_runner(**params: Any) -> StrategyRunner:
    return StrategyRunner(
        Momentum,
        MomentumParams(**{**BASE_PARAMS, **params}),
        instance=INSTANCE,
        symbol=SYMBOL,
        interval="1m",
    )


def feed(runner: StrategyRunner, specs: Sequence[BarSpec]) -> list[tuple[int, Signal]]:
    """Feed the bars from minute 0; return (minute, signal) pairs."""
    return [
        (minute, signal)
        for minute, spec in enumerate(specs)
        for signal in runner.on_kline(bar(minute, spec))
    ]


def actions(signals: Sequence[tuple[int, Signal]]) -> list[tuple[int, SignalAction]]:
    return [(minute, signal.action) for minute, signal in signals]


def momentum(runner: StrategyRunner) -> Momentum:
    strategy = runner.strategy
    assert isinstance(strategy, Momentum)
    return strategy


# -- entries ----------------------------------------------------------------------------------
# Minute 4 has an upper wick to 101; at minute 5 the close of 100.5 lifts the fast EMA above the
# slow one but stays inside the 3-bar channel; minute 6 closes above the wick.
UP_WICK_PATH: list[BarSpec] = [*FLAT, ("100", "101", "100"), "100.5", "101.5"]
DOWN_WICK_PATH: list[BarSpec] = [*FLAT, ("100", "100", "99"), "99.5", "98.5"]


def test_a_breakout_in_an_uptrend_enters_long_on_the_breakout_bar() -> None:
    runner = make_runner()
    ((minute, signal),) = feed(runner, UP_WICK_PATH)
    assert (minute, signal.action) == (6, ENTER_LONG)
    strategy = momentum(runner)
    fast, slow = strategy.fast.value, strategy.slow.value
    assert signal.reason == f"uptrend: EMA {fast:.8g} > {slow:.8g}, close above 101"
    assert signal.tags == ("momentum",)
    assert signal.ts_ms == bar(6, "1").close_time_ms


def test_a_breakdown_in_a_downtrend_enters_short_on_the_breakdown_bar() -> None:
    runner = make_runner()
    ((minute, signal),) = feed(runner, DOWN_WICK_PATH)
    assert (minute, signal.action) == (6, ENTER_SHORT)
    assert signal.reason.endswith(", close below 99")
    assert signal.reason.startswith("downtrend: EMA ")


def test_without_require_breakout_the_ema_alignment_alone_enters() -> None:
    runner = make_runner(require_breakout=False)
    ((minute, signal),) = feed(runner, UP_WICK_PATH[:6])
    assert (minute, signal.action) == (5, ENTER_LONG)  # a bar before the breakout
    strategy = momentum(runner)
    assert strategy.fast.value > strategy.slow.value
    assert strategy.entry_channel.upper == 101  # the channel it did not need to break
    assert signal.reason == f"uptrend: EMA {100 + 1 / 3:.8g} > {100.2:.8g}"


def test_without_allow_short_a_breakdown_does_nothing() -> None:
    assert feed(make_runner(allow_short=False), DOWN_WICK_PATH) == []
    assert actions(feed(make_runner(allow_short=False), UP_WICK_PATH)) == [(6, ENTER_LONG)]


def test_nothing_before_the_slow_ema_is_seeded() -> None:
    # A rise from the first bar: the fast EMA (2) is up at minute 2, the slow one (4) only
    # exists from minute 3, the warm-up's last bar, which is the first that may signal.
    signals = feed(make_runner(), ["100", "101", "102", "103"])
    assert actions(signals) == [(3, ENTER_LONG)]


# -- exits ------------------------------------------------------------------------------------
def test_a_long_exits_when_the_fast_ema_falls_below_the_slow_one() -> None:
    # Lower wicks to 90 keep the 2-bar exit channel far away: only the EMAs can end it.
    path: list[BarSpec] = [*FLAT, "102", ("101", "101", "90"), ("100", "100", "90")]
    signals = feed(make_runner(), path)
    assert actions(signals) == [(4, ENTER_LONG), (6, EXIT_LONG)]
    assert signals[1][1].reason == "fast EMA below slow"


def test_a_long_exits_when_the_close_breaks_the_exit_channel() -> None:
    # Up three bars, then 105.5 (inside the channel) and 104.5 below the 2-bar low of 105.5,
    # while the fast EMA is still above the slow one.
    runner = make_runner()
    signals = feed(runner, [*FLAT, "102", "104", "106", "105.5", "104.5"])
    assert actions(signals) == [(4, ENTER_LONG), (8, EXIT_LONG)]
    assert signals[1][1].reason == "close below 2-bar low 105.5"
    assert momentum(runner).fast.value > momentum(runner).slow.value


def test_a_short_exits_when_the_fast_ema_rises_above_the_slow_one() -> None:
    path: list[BarSpec] = [*FLAT, "98", ("99", "110", "99"), ("100", "110", "100")]
    signals = feed(make_runner(), path)
    assert actions(signals) == [(4, ENTER_SHORT), (6, EXIT_SHORT)]
    assert signals[1][1].reason == "fast EMA above slow"


def test_a_short_exits_when_the_close_breaks_the_exit_channel() -> None:
    runner = make_runner()
    signals = feed(runner, [*FLAT, "98", "96", "94", "94.5", "95.5"])
    assert actions(signals) == [(4, ENTER_SHORT), (8, EXIT_SHORT)]
    assert signals[1][1].reason == "close above 2-bar high 94.5"
    assert momentum(runner).fast.value < momentum(runner).slow.value


# -- confidence -------------------------------------------------------------------------------
@pytest.mark.parametrize("full_confidence_pct", [1.0, 0.5, 0.1])
def test_confidence_is_the_ema_spread_relative_to_full_confidence_pct(
    full_confidence_pct: float,
) -> None:
    runner = make_runner(full_confidence_pct=full_confidence_pct)
    ((_, signal),) = feed(runner, [*FLAT, "102"])
    strategy = momentum(runner)
    fast, slow = strategy.fast.value, strategy.slow.value
    expected = min(1.0, abs(fast - slow) / slow / (full_confidence_pct / 100))
    assert signal.confidence == expected
    # A spread of 0.53%: about half confidence at 1%, full at 0.5% and below.
    assert (expected < 1.0) is (full_confidence_pct == 1.0)


# -- construction -----------------------------------------------------------------------------
@pytest.mark.parametrize(("fast", "slow"), [(4, 4), (5, 4)])
def test_a_fast_ema_not_shorter_than_the_slow_one_is_refused(fast: int, slow: int) -> None:
    with pytest.raises(ValueError, match="fast must be shorter than slow"):
        make_runner(fast=fast, slow=slow)


# -- whole series -----------------------------------------------------------------------------
ACTIVE_PARAMS = MomentumParams(fast=3, slow=8, breakout_bars=5, exit_bars=3)


def run_series(klines: Sequence[Kline], params: MomentumParams, interval: str) -> list[Signal]:
    runner = StrategyRunner(Momentum, params, instance=INSTANCE, symbol=SYMBOL, interval=interval)
    signals = [signal for kline in klines for signal in runner.on_kline(kline)]
    assert runner.failure is None
    return signals


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_market_signals_alternate(seed: int) -> None:
    klines = synthetic_klines(3600, seed=seed)
    assert_alternates(run_series(klines, MomentumParams(), "1m"))
    active = run_series(klines, ACTIVE_PARAMS, "1m")
    assert_alternates(active)
    assert len(active) >= 10


def test_recorded_klines_signals_alternate(recorded_series: list[Bars]) -> None:
    total = 0
    for bars in recorded_series:
        if len(bars) < 2:
            continue
        interval = INTERVAL_NAMES[int(bars.open_time_ms[1] - bars.open_time_ms[0])]
        klines = klines_from(bars, interval=interval)
        for params in (MomentumParams(), ACTIVE_PARAMS):
            signals = run_series(klines, params, interval)
            assert_alternates(signals)
            total += len(signals)
    assert total > 0  # the check above was not vacuous
