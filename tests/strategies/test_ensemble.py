"""`ensemble` driven through the real `StrategyRunner` on hand-built bars: which bar enters or
exits, with which reason, for each vote method, window, exit mode, risk denial and restart.

The detectors are the built-ins with tiny periods, so every expected value below is a short
sum written out by hand:
- `sma_cross` with fast = 1 compares the close with the mean of the last `slow` closes; with
  slow = 2 that is the sign of the last change, so it crosses up on the first rise after a
  fall or a flat bar.
- `rsi_reversion` with period 2 on flat closes reads 50 and never crosses 30 or 70.
- `momentum` without the breakout condition enters on every bar whose EMA(2) is above EMA(4)
  while it believes it is flat, which makes a missing denial visible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.domain import (
    Fill,
    Kline,
    OrderDenied,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    Signal,
    SignalAction,
)
from strategies.ensemble import Ensemble, EnsembleParams
from strategies.runner import StrategyRunner
from strategies.stance import FLAT, LONG, SHORT
from tests.strategies.bars import SESSION_START_MS, synthetic_klines
from tests.strategies.test_registry import install_plugin, site, unique_package  # noqa: F401
from tests.strategies.test_strategy_config import load, resolve_problems, run_table

SYMBOL = "BTCUSDT"
INSTANCE = "ens"
MINUTE_MS = 60_000
ENTER_LONG = SignalAction.ENTER_LONG
ENTER_SHORT = SignalAction.ENTER_SHORT
EXIT_LONG = SignalAction.EXIT_LONG

F2: dict[str, Any] = {"name": "f2", "strategy": "sma_cross", "params": {"fast": 1, "slow": 2}}
F4: dict[str, Any] = {"name": "f4", "strategy": "sma_cross", "params": {"fast": 1, "slow": 4}}
RSI: dict[str, Any] = {"name": "rsi", "strategy": "rsi_reversion", "params": {"period": 2}}
LONG_ONLY = {"allow_short": False}
# Breakout momentum: needs a close above the 3 previous highs, which the dip path never makes.
BREAKOUT: dict[str, Any] = {
    "name": "bo",
    "strategy": "momentum",
    "params": {"fast": 2, "slow": 4, "breakout_bars": 3, "exit_bars": 2, "allow_short": False},
}
M4: dict[str, Any] = {
    "name": "m4",
    "strategy": "momentum",
    "params": {
        "fast": 2,
        "slow": 4,
        "breakout_bars": 1,
        "exit_bars": 3,
        "require_breakout": False,
        "allow_short": False,
    },
}


def long_only(detector: dict[str, Any]) -> dict[str, Any]:
    return {**detector, "params": {**detector["params"], **LONG_ONLY}}


def weighted(detector: dict[str, Any], weight: float) -> dict[str, Any]:
    return {**detector, "weight": weight}


def bar(minute: int, close: float) -> Kline:
    open_ms = SESSION_START_MS + minute * MINUTE_MS
    price = Decimal(repr(close))
    return Kline(
        SYMBOL, "1m", open_ms, open_ms + MINUTE_MS - 1, price, price, price, price,
        Decimal(1), Decimal(0), 1, True,
    )  # fmt: skip


def make_runner(detectors: Sequence[dict[str, Any]], **params: Any) -> StrategyRunner:
    model = EnsembleParams.model_validate({"detectors": list(detectors), **params})
    return StrategyRunner(Ensemble, model, instance=INSTANCE, symbol=SYMBOL, interval="1m")


def feed(
    runner: StrategyRunner, closes: Sequence[float], start: int = 0
) -> list[tuple[int, Signal]]:
    """Feed closes as the bars from minute `start`; return (minute, signal) pairs."""
    return [
        (minute, signal)
        for minute, close in enumerate(closes, start)
        for signal in runner.on_kline(bar(minute, close))
    ]


def ensemble(runner: StrategyRunner) -> Ensemble:
    strategy = runner.strategy
    assert isinstance(strategy, Ensemble)
    return strategy


def stance_of(runner: StrategyRunner, name: str) -> int:
    detector = next(d for d in ensemble(runner).detectors if d.name == name)
    side = detector.strategy.stance.side  # type: ignore[attr-defined]
    assert isinstance(side, int)
    return side


def crossed_above(close: float, window: Sequence[float]) -> str:
    """sma_cross's reason with fast = 1: the close against the mean of its slow window."""
    return f"SMA1 {close:.8g} crossed above {sum(window) / len(window):.8g}"


def ema_path(closes: Sequence[float], period: int) -> list[float]:
    """TA-Lib EMA: seeded with the mean of the first `period` closes, then alpha 2/(n+1)."""
    alpha = 2 / (period + 1)
    value = sum(closes[:period]) / period
    path = [value]
    for close in closes[period:]:
        value = value + alpha * (close - value)
        path.append(value)
    return [float("nan")] * (period - 1) + path


def fill_event(signal: Signal, trade_id: int, side: Side, quantity: str = "1") -> OrderUpdated:
    qty = Decimal(quantity)
    order_id = f"o{trade_id}"
    return OrderUpdated(
        client_order_id=order_id,
        symbol=SYMBOL,
        side=side,
        order_type=OrderType.MARKET,
        status=OrderStatus.FILLED,
        quantity=qty,
        filled_quantity=qty,
        ts_ms=signal.ts_ms,
        fill=Fill(
            trade_id,
            order_id,
            SYMBOL,
            side,
            Decimal(100),
            qty,
            Decimal(0),
            "USDT",
            False,
            signal.ts_ms,
        ),
        strategy=INSTANCE,
    )


def denial_of(signal: Signal, reason: str = "max_exposure") -> OrderDenied:
    return OrderDenied(
        strategy=INSTANCE, symbol=SYMBOL, reason=reason, ts_ms=signal.ts_ms,
        signal_id=signal.signal_id,
    )  # fmt: skip


# Five flat bars complete the warm-up of f2 (3 bars), f4 (5 bars) and rsi (4 bars).
WARM = [100.0] * 5


# -- majority ---------------------------------------------------------------------------------
def test_majority_two_of_three_enters_on_the_bar_both_cross() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI], vote="majority")
    signals = feed(runner, [*WARM, 101.0])
    expected = (
        f"majority 2/3: f2: {crossed_above(101.0, [100.0, 101.0])}; "
        f"f4: {crossed_above(101.0, [100.0, 100.0, 100.0, 101.0])}"
    )
    assert [(m, s.action, s.reason) for m, s in signals] == [(5, ENTER_LONG, expected)]
    (_, entry), = signals  # fmt: skip
    assert entry.tags == ("ensemble", "f2", "f4")
    assert entry.confidence == 1.0
    assert entry.strategy == INSTANCE
    assert entry.signal_id == f"{INSTANCE}:{SYMBOL}:{bar(5, 101.0).close_time_ms}:0"


# After a dip to 99, f2 (sign of the last change) turns up on 99.5 while f4's mean of
# 100, 100, 99, 99.5 = 99.625 is still above; on 99.8 f4's mean is 99.575 and it turns up too.
DIP = [*WARM, 99.0, 99.5, 99.8]


def test_a_lone_vote_does_not_enter_and_its_voter_is_told() -> None:
    runner = make_runner([long_only(F2), long_only(F4), BREAKOUT], vote="majority")
    assert feed(runner, DIP[:7]) == []
    assert stance_of(runner, "f2") == LONG  # its vote still counts on its own bar
    assert feed(runner, DIP[7:], start=7) == []  # f4 alone now: f2's vote expired
    assert stance_of(runner, "f2") == FLAT  # denied, so it can vote again on its next cross
    assert stance_of(runner, "f4") == LONG


def test_window_of_two_bars_combines_votes_one_bar_apart() -> None:
    runner = make_runner([long_only(F2), long_only(F4), BREAKOUT], vote="majority", window_bars=2)
    signals = feed(runner, DIP)
    expected = (
        f"majority 2/3: f2: {crossed_above(99.5, [99.0, 99.5])}; "
        f"f4: {crossed_above(99.8, [99.0, 99.5, 99.8, 100.0])}"
    )
    assert [(m, s.action, s.reason) for m, s in signals] == [(7, ENTER_LONG, expected)]


def test_the_denied_lone_voter_votes_again_and_is_counted() -> None:
    # A gentle climb through the warm-up: m4 (EMA 2 above EMA 4) votes on every bar it
    # believes itself flat; f2 crosses up again only after the dip at minute 5.
    closes = [100.0, 101.0, 102.0, 103.0, 104.0, 103.5, 104.5]
    runner = make_runner([M4, long_only(F2), long_only(F4)], vote="majority", window_bars=1)
    signals = feed(runner, closes)
    fast = ema_path(closes, 2)[6]
    slow = ema_path(closes, 4)[6]
    expected = (
        f"majority 2/3: m4: uptrend: EMA {fast:.8g} > {slow:.8g}; "
        f"f2: {crossed_above(104.5, [103.5, 104.5])}"
    )
    # Without the denial of its expired minute-5 vote m4 would still believe itself long.
    assert [(m, s.action, s.reason) for m, s in signals] == [(6, ENTER_LONG, expected)]


# -- unanimous --------------------------------------------------------------------------------
# 99 and 98 drive RSI(2) to 0 (losses only); 101 gives average gain (0 + 3) / 2 = 1.5 and
# average loss (0.75 + 0) / 2 = 0.375, RSI 100 - 100 / (1 + 4) = 80: up through 30. On the
# same bar f2 (98 -> 101) and f4 (101 above the mean of 100, 99, 98, 101 = 99.5) cross up.
BOUNCE = [*WARM, 99.0, 98.0, 101.0]


def test_unanimous_needs_every_detector() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI], vote="unanimous")
    assert feed(runner, [*WARM, 101.0, 101.0]) == []  # f2 and f4 only


def test_unanimous_enters_when_all_three_agree() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI], vote="unanimous")
    signals = feed(runner, BOUNCE)
    rsi = 100 - 100 / (1 + (3 / 2) / ((0.5 + 1) / 2 / 2))
    expected = (
        f"unanimous 3/3: f2: {crossed_above(101.0, [98.0, 101.0])}; "
        f"f4: {crossed_above(101.0, [100.0, 99.0, 98.0, 101.0])}; "
        f"rsi: RSI 0 -> {rsi:.4g} up through 30"
    )
    assert rsi == 80.0
    assert [(m, s.action, s.reason) for m, s in signals] == [(7, ENTER_LONG, expected)]
    assert signals[0][1].tags == ("ensemble", "f2", "f4", "rsi")


# -- weighted ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("weights", "threshold"),
    [
        ((1.0, 1.0, 2.0), 0.5),  # f2 + f4 = 2 of 4 = 0.5: exactly the threshold
        ((1.0, 1.0, 2.0), 0.5000001),
        ((1.0, 2.0, 1.0), 0.75),  # 3 of 4
        ((1.0, 2.0, 1.0), 0.7500001),
    ],
)
def test_weighted_share_against_the_threshold(
    weights: tuple[float, float, float], threshold: float
) -> None:
    detectors = [
        weighted(long_only(F2), weights[0]),
        weighted(long_only(F4), weights[1]),
        weighted(RSI, weights[2]),
    ]
    runner = make_runner(detectors, vote="weighted", threshold=threshold)
    signals = feed(runner, [*WARM, 101.0])
    voted = (weights[0] + weights[1]) / sum(weights)
    if voted >= threshold:
        expected = (
            f"weighted {voted:.4g} >= {threshold:g}: "
            f"f2: {crossed_above(101.0, [100.0, 101.0])}; "
            f"f4: {crossed_above(101.0, [100.0, 100.0, 100.0, 101.0])}"
        )
        assert [(m, s.action, s.reason) for m, s in signals] == [(5, ENTER_LONG, expected)]
        assert signals[0][1].confidence == voted
    else:
        assert signals == []


def feed_denying(runner: StrategyRunner, closes: Sequence[float]) -> list[tuple[int, Signal]]:
    """Feed closes from minute 0; the risk gate denies every entry right after its bar."""
    signals: list[tuple[int, Signal]] = []
    for minute, close in enumerate(closes):
        for signal in runner.on_kline(bar(minute, close)):
            signals.append((minute, signal))
            assert not runner.on_order(denial_of(signal))
    return signals


@pytest.mark.parametrize("g_weight", [1.0, 1.5])
def test_weighted_needs_more_than_the_other_side(g_weight: float) -> None:
    # f2 (shorts allowed) and g = sma_cross 2/3 (long only) on 102 x 4, 100, 103, 101; the
    # warm-up is g's four bars. Minute 4: f2 crosses down alone; minute 5: f2 crosses up
    # alone (g's fast mean (100 + 103) / 2 = 101.5 is still below (102 + 100 + 103) / 3);
    # minute 6: f2 crosses down while g crosses up, (101 + 103) / 2 = 102 above
    # (100 + 103 + 101) / 3. Each lone vote carries 1 / (1 + g_weight) >= 0.4 and enters.
    g23 = {"name": "g", "strategy": "sma_cross", "params": {"fast": 2, "slow": 3}}
    detectors = [weighted(F2, 1.0), weighted(long_only(g23), g_weight)]
    runner = make_runner(detectors, vote="weighted", threshold=0.4)
    signals = feed_denying(runner, [102.0] * 4 + [100.0, 103.0, 101.0])
    # When g's long wins, f2's short vote of minute 6 is refused at once; else it stands.
    assert stance_of(runner, "f2") == (FLAT if g_weight > 1.0 else SHORT)
    lone = 1.0 / (1.0 + g_weight)
    expected = [
        (4, ENTER_SHORT, f"weighted {lone:.4g} >= 0.4: f2: SMA1 100 crossed below 101"),
        (5, ENTER_LONG, f"weighted {lone:.4g} >= 0.4: f2: SMA1 103 crossed above 101.5"),
    ]
    if g_weight > 1.0:  # minute 6: g's share beats f2's; at equal weights neither side wins
        share = g_weight / (1.0 + g_weight)
        reason = f"SMA2 {(101 + 103) / 2:.8g} crossed above {(100 + 103 + 101) / 3:.8g}"
        expected.append((6, ENTER_LONG, f"weighted {share:.4g} >= 0.4: g: {reason}"))
    assert [(m, s.action, s.reason) for m, s in signals] == expected


# -- the risk gate ----------------------------------------------------------------------------
M3: dict[str, Any] = {**M4, "name": "m3", "params": {**M4["params"], "slow": 3}}


def test_a_denied_combined_entry_resets_its_voters() -> None:
    runner = make_runner([M4, M3, long_only(F2)], vote="majority")
    closes = [*WARM, 101.0, 101.0]
    signals = feed(runner, closes[:6])
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG)]
    assert signals[0][1].reason.startswith("majority 3/3: m4: uptrend")
    assert not runner.on_order(denial_of(signals[0][1]))
    assert [stance_of(runner, name) for name in ("m4", "m3", "f2")] == [FLAT, FLAT, FLAT]
    # Both momentum detectors still see EMA 2 above their slow EMA and enter again; f2's
    # close-to-close change is 0, no cross. Had they not been told, neither would vote.
    signals = feed(runner, closes[6:], start=6)
    m4 = (ema_path(closes, 2)[6], ema_path(closes, 4)[6])
    m3 = (ema_path(closes, 2)[6], ema_path(closes, 3)[6])
    expected = (
        f"majority 2/3: m4: uptrend: EMA {m4[0]:.8g} > {m4[1]:.8g}; "
        f"m3: uptrend: EMA {m3[0]:.8g} > {m3[1]:.8g}"
    )
    assert [(m, s.action, s.reason) for m, s in signals] == [(6, ENTER_LONG, expected)]


# -- exits ------------------------------------------------------------------------------------
# Entry on 101 (f2 and f4), then 100.5: f2 turns down (100.5 below (101 + 100.5) / 2) while
# f4's mean of 100, 100, 101, 100.5 = 100.375 is still below the close; 100: f4 turns down
# (mean 100.375 again); 101: both turn up (f4's mean 100.625).
ROUND_TRIP = [*WARM, 101.0, 100.5, 100.0, 101.0]
# RSI(2) reads 50, 100, 50, 25, 75 from minute 4: with oversold 20 it never votes.
RSI_Q: dict[str, Any] = {**RSI, "params": {"period": 2, "oversold": 20, "allow_short": False}}
F2_DOWN = "f2: SMA1 100.5 crossed below 100.75"
F4_DOWN = f"f4: SMA1 100 crossed below {(101 + 100.5 + 100 + 100) / 4:.8g}"


def run_with_fills(runner: StrategyRunner, closes: Sequence[float]) -> list[tuple[int, Signal]]:
    """Feed closes from minute 0; every entry and exit fills in full right after its bar."""
    signals: list[tuple[int, Signal]] = []
    for minute, close in enumerate(closes):
        for signal in runner.on_kline(bar(minute, close)):
            signals.append((minute, signal))
            buy = signal.action in (ENTER_LONG, SignalAction.EXIT_SHORT)
            fill = fill_event(signal, len(signals), Side.BUY if buy else Side.SELL)
            assert not runner.on_order(fill)
    return signals


def test_exits_any_closes_on_the_first_detector_exit() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI_Q], vote="majority", exits="any")
    signals = run_with_fills(runner, ROUND_TRIP)
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG), (6, EXIT_LONG), (8, ENTER_LONG)]
    assert signals[1][1].reason == F2_DOWN
    assert signals[1][1].tags == ("ensemble",)
    # f4 still held the closed position: it was released, or it would not vote on minute 8.
    assert signals[2][1].reason.startswith("majority 2/3: f2: SMA1 101 crossed above 100.5; f4:")
    assert runner.ctx.position == Decimal(1)


def test_every_detector_sees_the_fill_that_closes_the_position() -> None:
    # m4 does not leave on 100.5 (EMA 2 stays above EMA 4, the close above the 3-bar low),
    # f2 does, which closes the position; m4 sees the closing fill in its own context, goes
    # flat and enters again on 101 with f2.
    closes = [*WARM, 101.0, 100.5, 101.0]
    runner = make_runner([M4, long_only(F2), long_only(F4)], vote="majority", exits="any")
    signals = run_with_fills(runner, closes)
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG), (6, EXIT_LONG), (7, ENTER_LONG)]
    fast, slow = ema_path(closes, 2)[7], ema_path(closes, 4)[7]
    expected = (
        f"majority 2/3: m4: uptrend: EMA {fast:.8g} > {slow:.8g}; "
        f"f2: {crossed_above(101.0, [100.5, 101.0])}"
    )
    assert signals[2][1].reason == expected


def test_half_is_not_a_majority() -> None:
    runner = make_runner([long_only(F2), long_only(F4)], vote="majority")
    assert feed(runner, DIP) == []  # f2 alone on minute 6, f4 alone on minute 7


def test_exits_vote_waits_for_a_majority_of_exits() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI_Q], vote="majority", exits="vote")
    signals = run_with_fills(runner, ROUND_TRIP)
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG), (7, EXIT_LONG), (8, ENTER_LONG)]
    assert signals[1][1].reason == f"majority 2/3 exit: {F2_DOWN}; {F4_DOWN}"


def test_unanimous_exit_vote_needs_every_detector_out() -> None:
    runner = make_runner([long_only(F2), long_only(F4)], vote="unanimous", exits="vote")
    signals = run_with_fills(runner, ROUND_TRIP)
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG), (7, EXIT_LONG), (8, ENTER_LONG)]
    assert signals[1][1].reason == f"unanimous 2/2 exit: {F2_DOWN}; {F4_DOWN}"


def test_an_exit_before_the_entry_fills_is_sent_once_it_fills() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI_Q], vote="majority", exits="any")
    signals = feed(runner, ROUND_TRIP[:7])  # the entry of minute 5 has not filled yet
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG)]
    late = runner.on_order(fill_event(signals[0][1], 1, Side.BUY))
    assert [(s.action, s.reason) for s in late] == [(EXIT_LONG, F2_DOWN)]


def test_an_entry_while_positioned_is_denied_to_its_detector() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI_Q], vote="majority", exits="vote")
    # Entered on 101 and filled; f2 leaves on 100.5 (an exit vote, 1 of 3) and comes back on
    # 101: refused, since the ensemble still holds its long, so f2 is flat again.
    signals = run_with_fills(runner, [*WARM, 101.0, 100.5, 101.0])
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG)]
    assert stance_of(runner, "f2") == FLAT
    assert stance_of(runner, "f4") == LONG


def test_an_entry_while_the_combined_entry_awaits_its_fill_is_denied() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI_Q], vote="majority", exits="vote")
    signals = feed(runner, [*WARM, 101.0, 100.5, 101.0])  # f2 leaves and returns, no fill yet
    assert [(m, s.action) for m, s in signals] == [(5, ENTER_LONG)]
    assert stance_of(runner, "f2") == FLAT
    assert stance_of(runner, "f4") == LONG


# -- parameters -------------------------------------------------------------------------------
def errors_of(params: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        EnsembleParams.model_validate(params)
    return str(info.value)


@pytest.mark.parametrize(
    ("detectors", "message"),
    [
        (
            [F2, {"strategy": "macd"}],
            "detectors.1.strategy: no strategy named 'macd' (known: ensemble, momentum, "
            "rsi_reversion, sma_cross, vwap_reversion)",
        ),
        ([F2, {"strategy": "ensemble"}], "detectors.1.strategy: an ensemble cannot be a detector"),
        (
            [F2, {"strategy": "sma_cross", "params": {"slow": "x"}}],
            "detectors.1.params.slow: Input should be a valid integer",
        ),
        ([F2, {"strategy": "sma_cross", "params": {"slo": 3}}], "detectors.1.params.slo: unknown"),
        (
            [F2, {"strategy": "sma_cross", "params": {"fast": 5, "slow": 3}}],
            "detectors.1.params: fast must be shorter than slow",
        ),
        ([F2, {**F4, "name": "f2"}], "detectors.1.name: 'f2' is already used by detectors.0"),
        (
            [{"strategy": "rsi_reversion"}, {"strategy": "rsi_reversion"}],
            "detectors.1.name: 'rsi_reversion' is already used by detectors.0",
        ),
    ],
)
def test_bad_detectors_are_reported_with_their_path(
    detectors: list[dict[str, Any]], message: str
) -> None:
    assert message in errors_of({"detectors": detectors})


def test_all_problems_are_reported_at_once() -> None:
    text = errors_of({"detectors": [{"strategy": "nope"}, {"strategy": "ensemble"}]})
    assert "detectors.0.strategy: no strategy named 'nope'" in text
    assert "detectors.1.strategy: an ensemble cannot be a detector" in text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"detectors": [F2]}, "detectors"),
        ({"detectors": [F2, F4], "vote": "plurality"}, "vote"),
        ({"detectors": [F2, F4], "threshold": 0}, "threshold"),
        ({"detectors": [F2, F4], "window_bars": 0}, "window_bars"),
        ({"detectors": [F2, F4], "exits": "all"}, "exits"),
        ({"detectors": [F2, {**F4, "weight": 0}]}, "detectors.1.weight"),
        ({"detectors": [F2, {**F4, "name": "a.b"}]}, "detectors.1.name"),
    ],
)
def test_bad_ensemble_fields(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        EnsembleParams.model_validate(params)
    assert [".".join(map(str, e["loc"])) for e in info.value.errors()] == [field]


def test_a_detector_refusing_its_parameters_names_its_index() -> None:
    params = EnsembleParams.model_validate(
        {"detectors": [F2, {**M4, "params": {**M4["params"], "fast": 4}}]}
    )
    with pytest.raises(ValueError, match=r"^detectors.1 \(momentum\): fast must be shorter"):
        StrategyRunner(Ensemble, params, instance=INSTANCE, symbol=SYMBOL, interval="1m")


def test_derived_attributes_come_from_the_detectors() -> None:
    vwap = {"strategy": "vwap_reversion"}
    runner = make_runner([F2, F4, vwap])
    strategy = ensemble(runner)
    assert strategy.warmup_bars == 1440 + 2 * 14  # vwap_reversion's, the largest
    assert strategy.book_tickers  # vwap_reversion asked for them
    assert not strategy.intrabar
    assert not strategy.mark_prices
    assert [d.ctx.strategy for d in strategy.detectors] == [
        "ens.f2", "ens.f4", "ens.vwap_reversion"
    ]  # fmt: skip


# -- snapshot and restore ---------------------------------------------------------------------
RESTART_DETECTORS: list[dict[str, Any]] = [
    {"name": "fast", "strategy": "sma_cross", "params": {"fast": 2, "slow": 5}},
    {"name": "slow", "strategy": "sma_cross", "params": {"fast": 3, "slow": 8}},
    {"name": "rsi", "strategy": "rsi_reversion", "params": {"period": 3, "oversold": 35}},
    {**M4, "params": {**M4["params"], "allow_short": True}},
]
RESTART_BARS = synthetic_klines(160, seed=5)


def broker_answers(signal: Signal, number: int) -> OrderUpdated | OrderDenied:
    """A deterministic stand-in for risk and venue: every third entry is denied, the rest
    and every exit fill in full."""
    if not signal.is_exit and number % 3 == 2:
        return denial_of(signal)
    buy = signal.action in (ENTER_LONG, SignalAction.EXIT_SHORT)
    return fill_event(signal, 1000 + number, Side.BUY if buy else Side.SELL)


Unanswered = list[tuple[int, Signal]]


def replay(
    runner: StrategyRunner, bars: Sequence[Kline], numbered: int, unanswered: Unanswered
) -> tuple[list[Signal], Unanswered]:
    """Feed bars; each signal is answered through the broker just before the next bar, so a
    restart can fall between a signal and its answer. Signals are numbered from `numbered`
    (how many came before); returns the signals and those still unanswered."""
    out: list[Signal] = []
    waiting = list(unanswered)

    def emitted(signals: Sequence[Signal]) -> None:
        for signal in signals:
            out.append(signal)
            waiting.append((numbered + len(out), signal))

    for kline in bars:
        while waiting:
            number, signal = waiting.pop(0)
            emitted(runner.on_order(broker_answers(signal, number)))
        emitted(runner.on_kline(kline))
    return out, waiting


@pytest.mark.parametrize("exits", ["any", "vote"])
def test_the_restart_path_trades(exits: str) -> None:
    runner = make_runner(RESTART_DETECTORS, vote="majority", window_bars=3, exits=exits)
    signals, _ = replay(runner, RESTART_BARS, 0, [])
    actions = {signal.action for signal in signals}
    # The path exercises entries both ways, exits and denials, or the restart test is moot.
    assert {ENTER_LONG, ENTER_SHORT, EXIT_LONG} <= actions
    assert runner.failure is None


@pytest.mark.parametrize("exits", ["any", "vote"])
def test_restored_at_every_bar_continues_identically(exits: str) -> None:
    params: dict[str, Any] = {"vote": "majority", "window_bars": 3, "exits": exits}
    uninterrupted = make_runner(RESTART_DETECTORS, **params)
    whole, _ = replay(uninterrupted, RESTART_BARS, 0, [])
    for cut in range(1, len(RESTART_BARS)):
        first = make_runner(RESTART_DETECTORS, **params)
        before, unanswered = replay(first, RESTART_BARS[:cut], 0, [])
        saved = json.loads(json.dumps(first.snapshot()))
        second = make_runner(RESTART_DETECTORS, **params)
        second.restore(saved)
        after, _ = replay(second, RESTART_BARS[cut:], len(before), unanswered)
        assert before + after == whole, f"restarted after bar {cut}"
        assert second.snapshot() == uninterrupted.snapshot(), f"restarted after bar {cut}"


def test_a_snapshot_of_other_detectors_is_refused() -> None:
    runner = make_runner(RESTART_DETECTORS)
    replay(runner, RESTART_BARS[:20], 0, [])
    state = json.loads(json.dumps(runner.snapshot()["state"]))
    renamed = make_runner([{**RESTART_DETECTORS[0], "name": "other"}, *RESTART_DETECTORS[1:]])
    with pytest.raises(ValueError, match="saved detectors differ"):
        renamed.strategy.restore(state)


def test_an_exit_that_ends_unfilled_is_sent_again() -> None:
    runner = make_runner([long_only(F2), long_only(F4), RSI_Q], vote="majority", exits="vote")
    signals = run_with_fills(runner, ROUND_TRIP[:7])
    exit_signal = feed(runner, ROUND_TRIP[7:8], start=7)[0][1]
    assert exit_signal.action is EXIT_LONG
    assert runner.on_kline(bar(8, 100.0)) == ()  # one exit outstanding: not sent twice
    expired = OrderUpdated(
        client_order_id="x1",
        symbol=SYMBOL,
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        status=OrderStatus.EXPIRED,
        quantity=Decimal(1),
        filled_quantity=Decimal(0),
        ts_ms=exit_signal.ts_ms + 1,
        strategy=INSTANCE,
    )
    again = runner.on_order(expired)  # the exit votes still stand: the exit goes out again
    assert [(s.action, s.reason) for s in again] == [(EXIT_LONG, exit_signal.reason)]
    assert again[0].signal_id != exit_signal.signal_id
    assert [s.action for _, s in signals] == [ENTER_LONG]


def test_a_detector_signal_before_its_own_warm_up_is_denied() -> None:
    # momentum's EMAs are seeded on bar 4, before its declared warm-up of 7 bars (the 6-bar
    # exit channel): it votes from minute 3 on. Those early votes are refused (it votes again
    # on each bar, being told), so the vote of the first warmed-up minute, 6, is the one used.
    early = {**M4, "params": {**M4["params"], "exit_bars": 6}}
    closes = [100.0, 101.0, 102.0, 103.0, 104.0, 103.5, 104.5]
    runner = make_runner([early, long_only(F2)], vote="majority", window_bars=4)
    signals = feed(runner, closes)
    fast, slow = ema_path(closes, 2)[6], ema_path(closes, 4)[6]
    expected = (
        f"majority 2/2: m4: uptrend: EMA {fast:.8g} > {slow:.8g}; "
        f"f2: {crossed_above(104.5, [103.5, 104.5])}"
    )
    assert [(m, s.action, s.reason) for m, s in signals] == [(6, ENTER_LONG, expected)]


# -- timers and intrabar updates, through a detector installed as a plugin --------------------
PROBE_MODULE = '''
"""A detector that enters from a timer set 30 s after each close and logs intrabar updates."""
from strategies.base import Strategy, StrategyParams


class Probe(Strategy[StrategyParams]):
    name = "demo_probe"
    params_model = StrategyParams
    intrabar = True

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        self.long = False
        self.intrabar_ms = []

    def on_bar(self, bar):
        self.ctx.set_timer("probe", bar.close_time_ms + 30_000)

    def on_intrabar(self, bar):
        self.intrabar_ms.append(self.ctx.now_ms)

    def on_timer(self, timer):
        if not self.long:
            self.long = True
            self.ctx.enter_long(f"timer {timer.name} due {timer.due_ms}")

    def on_order(self, event):
        if getattr(event, "signal_id", None) is not None:
            self.long = False
'''


def test_detector_timers_and_intrabar_updates_reach_the_detector(site: Path) -> None:  # noqa: F811
    package = unique_package("tb_ensemble_probe")
    install_plugin(
        site,
        package=package,
        modules={"probe": PROBE_MODULE},
        entry_points={"demo_probe": "probe:Probe"},
    )
    runner = make_runner([{"strategy": "demo_probe"}, F2], vote="weighted", threshold=0.5)
    strategy = ensemble(runner)
    assert strategy.intrabar
    assert strategy.warmup_bars == 3  # f2's
    # The probe's timers of minutes 0 and 1 fire during the warm-up: denied, so it re-arms.
    assert feed(runner, [100.0, 100.0, 100.0]) == []
    due = bar(2, 100.0).close_time_ms + 30_000
    signals = runner.on_kline(bar(3, 100.0))  # passes the minute-2 timer first
    assert [(s.action, s.reason, s.ts_ms) for s in signals] == [
        (ENTER_LONG, f"weighted 0.5 >= 0.5: demo_probe: timer probe due {due}", due)
    ]
    # An update of the bar still forming reaches the detector that asked for them.
    open_ms = SESSION_START_MS + 4 * MINUTE_MS
    price = Decimal(100)
    forming = Kline(
        SYMBOL, "1m", open_ms, open_ms + MINUTE_MS - 1, price, price, price, price,
        Decimal(1), Decimal(0), 1, False,
    )  # fmt: skip
    assert runner.on_kline(forming) == ()
    probe = strategy.detectors[0].strategy
    assert probe.intrabar_ms == [open_ms]  # type: ignore[attr-defined]


def test_config_errors_name_the_detector_path(tmp_path: Path) -> None:
    bad = (
        '{ detectors = [ { strategy = "sma_cross" }, '
        '{ name = "slow", strategy = "sma_cross", params = { fast = 9, slow = 5 } } ] }'
    )
    settings = load(tmp_path, run_table("ensemble", params=bad))
    assert resolve_problems(settings) == {
        "strategies.run.0.params": "detectors.1.params: fast must be shorter than slow"
    }
