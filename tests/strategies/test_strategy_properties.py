"""Properties of the reference strategies that must hold however their events are delivered.

A strategy fed the same events must decide the same, whether one runner sees them one by one
or the feed is cut into chunks and, at every cut, the runner is snapshotted, sent through JSON
and restored into a fresh runner (what a restart does). Hypothesis picks the series, the
warm-up prefix replayed with `warm_up` and the cuts; the comparison is exact: the `Signal`s
(ids included), the strategy's indicator values after every event, and the whole runner
snapshot at every cut. A restore that forgets any piece of state shows up as a difference.

The parameters are small so that both strategies trade often on the synthetic market.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import BookTicker, Kline, Signal
from strategies.base import Strategy, StrategyParams
from strategies.momentum import Momentum, MomentumParams
from strategies.runner import StrategyRunner
from strategies.vwap_reversion import VwapReversion, VwapReversionParams
from tests.strategies.bars import synthetic_klines

SYMBOL = "BTCUSDT"
INSTANCE = "p1"
SEEDS = (1, 2, 3)
SERIES_BARS = 3600  # generated once per seed (shared with the other strategy tests)

MOMENTUM_PARAMS = MomentumParams(fast=3, slow=8, breakout_bars=5, exit_bars=3)
VWAP_PARAMS = VwapReversionParams(
    band_mult=1.0, adx_max=60, adx_exit=80, min_session_bars=3, min_band_bps=0, adx_period=5
)

Event = Kline | BookTicker
Probe = tuple[float | int | None, ...]

# Deterministic and quick: the same examples on every run.
PROPERTY_SETTINGS = settings(derandomize=True, max_examples=25, deadline=None, database=None)


def _plain(x: float) -> float | None:
    return None if math.isnan(x) else x  # NaN != NaN would fail an equal comparison


def momentum_probe(strategy: Strategy[Any]) -> Probe:
    assert isinstance(strategy, Momentum)
    entry, leave = strategy.entry_channel, strategy.exit_channel
    values = (
        strategy.fast.value,
        strategy.slow.value,
        entry.upper,
        entry.lower,
        leave.upper,
        leave.lower,
    )
    return (*map(_plain, values), strategy.stance.side)


def vwap_probe(strategy: Strategy[Any]) -> Probe:
    assert isinstance(strategy, VwapReversion)
    vwap, adx = strategy.vwap, strategy.adx
    values = (vwap.vwap, vwap.std, adx.value, adx.plus_di, adx.minus_di, strategy.guard.value)
    return (*map(_plain, values), strategy.stance.side)


@dataclass(frozen=True)
class Scenario:
    name: str
    strategy: type[Strategy[Any]]
    params: StrategyParams
    bars: int  # of the series, from its start (a UTC midnight)
    books: bool  # interleave book tickers with the bars
    prefix: tuple[int, int]  # bars replayed with warm_up: at least, at most
    probe: Callable[[Strategy[Any]], Probe]


# vwap_reversion needs 1450 bars of warm-up (a session plus 2 * adx_period): its prefixes
# end on either side of that, and its series are long enough for a thousand live bars.
SCENARIOS = [
    Scenario("momentum", Momentum, MOMENTUM_PARAMS, 1200, False, (0, 300), momentum_probe),
    Scenario("vwap_reversion", VwapReversion, VWAP_PARAMS, 2600, False, (1000, 2000), vwap_probe),
    Scenario(
        "vwap_reversion_books", VwapReversion, VWAP_PARAMS, 2400, True, (1200, 1800), vwap_probe
    ),
]


# -- the event streams ------------------------------------------------------------------------
def quote(ts_ms: int, mid: float) -> BookTicker:
    bid = Decimal(f"{mid:.2f}")
    return BookTicker(SYMBOL, bid, Decimal(1), bid + Decimal("0.02"), Decimal(1), ts_ms)


@cache
def stream(seed: int, bar_count: int, books: bool) -> tuple[tuple[Event, ...], tuple[int, ...]]:
    """The events of one synthetic series, and the position of each bar among them.

    With books, two quotes fall in the 8 s before each bar's close, near the close price;
    one quote in eight is a 1% jump (enough to trip the 5-second guard). A quarter of the bars
    are followed by a late quote stamped before their close: the streams of books and bars
    are not ordered with each other."""
    bars = synthetic_klines(SERIES_BARS, seed=seed)[:bar_count]
    if not books:
        return bars, tuple(range(len(bars)))
    rng = random.Random(seed)
    events: list[Event] = []
    positions: list[int] = []
    for bar in bars:
        close = float(bar.close)
        end = bar.close_time_ms
        for offset in sorted(rng.sample(range(1, 8_000), 2), reverse=True):
            jump = rng.random() < 0.125
            move = rng.choice((-0.01, 0.01)) if jump else rng.gauss(0.0, 0.0005)
            events.append(quote(end - offset, close * (1.0 + move)))
        positions.append(len(events))
        events.append(bar)
        if rng.random() < 0.25:
            events.append(quote(end - rng.randint(1, 500), close))
    return tuple(events), tuple(positions)


@dataclass(frozen=True)
class Plan:
    seed: int
    prefix: int  # bars replayed with warm_up before the live events
    cuts: tuple[int, ...]  # positions in the live events where the runner is restarted

    def warm_up_bars(self, scenario: Scenario) -> list[Kline]:
        events, positions = stream(self.seed, scenario.bars, scenario.books)
        bars = [events[i] for i in positions[: self.prefix]]
        return [bar for bar in bars if isinstance(bar, Kline)]

    def live(self, scenario: Scenario) -> Sequence[Event]:
        events, positions = stream(self.seed, scenario.bars, scenario.books)
        # The quotes between prefix bars are left out: warm_up replays bars only.
        return events[positions[self.prefix - 1] + 1 :] if self.prefix else events


@st.composite
def plans(draw: st.DrawFn, scenario: Scenario) -> Plan:
    seed = draw(st.sampled_from(SEEDS))
    prefix = draw(st.integers(*scenario.prefix))
    live = len(Plan(seed, prefix, ()).live(scenario))
    cuts = draw(st.lists(st.integers(1, live - 1), max_size=60, unique=True))
    return Plan(seed, prefix, tuple(sorted(cuts)))


# -- the two ways of feeding ------------------------------------------------------------------
@dataclass
class Run:
    signals: list[Signal]
    probes: list[Probe]  # the strategy's indicators and stance after every live event
    saved: list[str]  # the runner's JSON snapshot at the start and at every cut
    runner: StrategyRunner


def new_runner(scenario: Scenario) -> StrategyRunner:
    return StrategyRunner(
        scenario.strategy, scenario.params, instance=INSTANCE, symbol=SYMBOL, interval="1m"
    )


def save(runner: StrategyRunner) -> str:
    return json.dumps(runner.snapshot(), sort_keys=True, allow_nan=False)


def deliver(runner: StrategyRunner, event: Event) -> Sequence[Signal]:
    return runner.on_kline(event) if isinstance(event, Kline) else runner.on_book(event)


def one_by_one(scenario: Scenario, plan: Plan) -> Run:
    runner = new_runner(scenario)
    runner.warm_up(plan.warm_up_bars(scenario))
    run = Run([], [], [], runner)
    checkpoints = {0, *plan.cuts}
    for i, event in enumerate(plan.live(scenario)):
        if i in checkpoints:
            run.saved.append(save(runner))
        run.signals.extend(deliver(runner, event))
        run.probes.append(scenario.probe(runner.strategy))
    return run


def chunked(scenario: Scenario, plan: Plan) -> Run:
    """Warm up on the prefix, then feed chunk by chunk; before each chunk the runner is
    replaced by a fresh one restored from the previous one's snapshot."""
    runner = new_runner(scenario)
    runner.warm_up(plan.warm_up_bars(scenario))
    run = Run([], [], [], runner)
    live = plan.live(scenario)
    for start, stop in pairwise((0, *plan.cuts, len(live))):
        text = save(runner)
        run.saved.append(text)
        runner = new_runner(scenario)
        runner.restore(json.loads(text))
        for event in live[start:stop]:
            run.signals.extend(deliver(runner, event))
            run.probes.append(scenario.probe(runner.strategy))
    run.runner = runner
    return run


def by_name(scenario: Scenario) -> str:
    return scenario.name


# -- the properties ---------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS, ids=by_name)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_chunked_and_restored_feeding_gives_the_same_signals(
    scenario: Scenario, data: st.DataObject
) -> None:
    plan = data.draw(plans(scenario))
    expected = one_by_one(scenario, plan)
    got = chunked(scenario, plan)
    assert expected.signals, "no signals: the comparison would prove nothing"
    assert got.signals == expected.signals
    assert got.runner.failure is None
    assert expected.runner.failure is None


@pytest.mark.parametrize("scenario", SCENARIOS, ids=by_name)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_chunked_and_restored_feeding_leaves_the_same_indicator_values(
    scenario: Scenario, data: st.DataObject
) -> None:
    plan = data.draw(plans(scenario))
    expected = one_by_one(scenario, plan)
    got = chunked(scenario, plan)
    # After every event, not only at the end: some state (the 5-second guard) heals by itself
    # within seconds, so a lost piece shows only right after a restart.
    assert len(got.probes) == len(expected.probes)
    for i, (mine, theirs) in enumerate(zip(got.probes, expected.probes, strict=True)):
        assert mine == theirs, f"live event {i}"
    assert got.saved == expected.saved
    assert save(got.runner) == save(expected.runner)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=by_name)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_signal_ids_are_unique_and_signal_times_never_go_back(
    scenario: Scenario, data: st.DataObject
) -> None:
    plan = data.draw(plans(scenario))
    for run in (one_by_one(scenario, plan), chunked(scenario, plan)):
        ids = [signal.signal_id for signal in run.signals]
        assert len(set(ids)) == len(ids)
        times = [signal.ts_ms for signal in run.signals]
        assert times == sorted(times)
        assert all(signal.strategy == INSTANCE for signal in run.signals)
