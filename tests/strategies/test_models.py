"""The model hook: metrics on hand-built markets and accounts, the logistic model's
probability against its formula, each decision band at its edges, load errors, the shipped
model, and the guarantee that no raw price reaches a model."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import Signal, SignalAction
from strategies.exits.base import TrackedPosition
from strategies.models import (
    SIGNAL_METRICS,
    STRATEGY_METRICS,
    LogisticModel,
    ModelAction,
    ModelLoadError,
    ModelState,
    StrategyDecision,
    model_state,
    signal_metrics,
    strategy_metrics,
)
from strategies.models.logistic import sigmoid
from strategies.trade.state import ClosedTrade, SymbolMarket, TradeState

NAN = math.nan
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "models" / "entry_logistic.json"


def logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def signal(
    action: SignalAction = SignalAction.ENTER_LONG,
    *,
    confidence: float = 0.8,
    symbol: str = "BTCUSDT",
) -> Signal:
    return Signal("momentum", symbol, action, 1_000, "sig-1", confidence=confidence)


def market(**changes: Any) -> SymbolMarket:
    base = SymbolMarket(
        symbol="BTCUSDT",
        close=200.0,
        close_ms=999,
        atr=3.0,
        adx=31.0,
        volatility=0.01,
        bars_per_year=10_000.0,
        returns=(0.002, -0.005),
        return_times=(1, 2),
    )
    return dataclasses.replace(base, **changes)


def trade(pnl: float, *, entry_price: float = 100.0, quantity: str = "1") -> ClosedTrade:
    """A trade whose return_pct is pnl / (entry_price x quantity) x 100."""
    return ClosedTrade("BTCUSDT", "long", entry_price, entry_price, Decimal(quantity), pnl, 0, 1)


def account(*pnls: float, equity: float = 90.0, peak: float = 120.0) -> TradeState:
    return TradeState(now_ms=5_000, equity=equity, peak_equity=peak, trades=tuple(map(trade, pnls)))


def held(position_id: str, symbol: str, side: str) -> TrackedPosition:
    return TrackedPosition(position_id, symbol, side, 100.0, 0, Decimal(1))  # type: ignore[arg-type]


# --- signal metrics ----------------------------------------------------------------------


def test_signal_metrics_of_a_known_market() -> None:
    metrics = signal_metrics(signal(confidence=0.8), market())

    assert list(metrics) == list(SIGNAL_METRICS)
    assert metrics["confidence"] == 0.8
    assert metrics["direction"] == 1.0
    assert metrics["atr_pct"] == pytest.approx(3.0 / 200.0 * 100, rel=1e-15)  # 1.5
    assert metrics["annualised_vol"] == pytest.approx(0.01 * 100.0, rel=1e-15)  # sqrt(10000)
    assert metrics["adx"] == 31.0
    assert metrics["last_return_pct"] == pytest.approx(-0.5, rel=1e-15)
    assert metrics["return_z"] == pytest.approx(-0.005 / 0.01, rel=1e-15)


def test_direction_is_minus_one_for_a_short_entry_and_unknown_for_an_exit() -> None:
    assert signal_metrics(signal(SignalAction.ENTER_SHORT), market())["direction"] == -1.0
    assert math.isnan(signal_metrics(signal(SignalAction.EXIT_LONG), market())["direction"])


def test_no_market_leaves_every_market_metric_unknown() -> None:
    metrics = signal_metrics(signal(confidence=0.3), None)

    assert metrics["confidence"] == 0.3
    assert metrics["direction"] == 1.0
    for name in ("atr_pct", "annualised_vol", "adx", "last_return_pct", "return_z"):
        assert math.isnan(metrics[name]), name


@pytest.mark.parametrize(
    ("changes", "unknown"),
    [
        ({"returns": (), "return_times": ()}, {"last_return_pct", "return_z"}),
        ({"volatility": 0.0}, {"return_z"}),
        ({"volatility": NAN}, {"return_z", "annualised_vol"}),
        ({"close": 0.0}, {"atr_pct"}),
        ({"atr": NAN}, {"atr_pct"}),
        ({"adx": NAN}, {"adx"}),
        ({"bars_per_year": -1.0}, {"annualised_vol"}),
        ({"returns": (math.inf,), "return_times": (1,)}, {"last_return_pct", "return_z"}),
    ],
)
def test_unknown_market_statistics_give_nan_and_leave_the_rest(
    changes: dict[str, Any], unknown: set[str]
) -> None:
    metrics = signal_metrics(signal(), market(**changes))

    assert {name for name, value in metrics.items() if math.isnan(value)} == unknown


def test_zero_volatility_keeps_the_annualised_volatility_at_zero() -> None:
    assert signal_metrics(signal(), market(volatility=0.0))["annualised_vol"] == 0.0


def test_a_market_of_another_symbol_is_refused() -> None:
    with pytest.raises(ValueError, match="ETHUSDT"):
        signal_metrics(signal(), market(symbol="ETHUSDT"))


# --- strategy metrics --------------------------------------------------------------------


def test_strategy_metrics_over_every_trade() -> None:
    metrics = strategy_metrics(account(4.0, -2.0, 2.0, -1.0, -3.0))

    assert list(metrics) == list(STRATEGY_METRICS)
    assert metrics["trades"] == 5.0
    assert metrics["win_rate"] == 2 / 5
    # wins 4% and 2% (mean 3), losses 2%, 1%, 3% (mean 2)
    assert metrics["payoff"] == pytest.approx(3.0 / 2.0, rel=1e-12)
    assert metrics["consecutive_losses"] == 2.0
    assert metrics["drawdown_pct"] == pytest.approx((120 - 90) / 120 * 100, rel=1e-12)
    assert metrics["open_positions"] == 0.0


def test_the_window_limits_win_rate_and_payoff_but_not_the_losing_streak() -> None:
    state = account(4.0, -2.0, 2.0, -1.0, -3.0)

    last_three = strategy_metrics(state, window=3)  # +2, -1, -3
    assert last_three["trades"] == 3.0
    assert last_three["win_rate"] == 1 / 3
    assert last_three["payoff"] == pytest.approx(2.0 / ((1.0 + 3.0) / 2), rel=1e-12)
    assert last_three["consecutive_losses"] == 2.0

    last_one = strategy_metrics(state, window=1)  # -3: no win, so no payoff
    assert last_one["win_rate"] == 0.0
    assert math.isnan(last_one["payoff"])
    assert strategy_metrics(account(1.0, -1.0, -1.0, -1.0), window=2)["consecutive_losses"] == 3


def test_return_pct_not_pnl_makes_the_payoff() -> None:
    # A 10 quote win on 1000 notional (1%) against a 5 loss on 100 notional (5%).
    state = TradeState(
        0, 100.0, 100.0, trades=(trade(10.0, entry_price=1000.0), trade(-5.0, entry_price=100.0))
    )
    assert strategy_metrics(state)["payoff"] == pytest.approx(1.0 / 5.0, rel=1e-12)


def test_no_trades_leaves_win_rate_and_payoff_unknown() -> None:
    metrics = strategy_metrics(account(equity=100.0, peak=100.0))

    assert metrics["trades"] == 0.0
    assert math.isnan(metrics["win_rate"])
    assert math.isnan(metrics["payoff"])
    assert metrics["consecutive_losses"] == 0.0
    assert metrics["drawdown_pct"] == 0.0


def test_only_wins_leave_the_payoff_unknown() -> None:
    metrics = strategy_metrics(account(1.0, 2.0))
    assert metrics["win_rate"] == 1.0
    assert math.isnan(metrics["payoff"])


def test_a_break_even_trade_is_no_win_and_ends_the_losing_streak() -> None:
    metrics = strategy_metrics(account(-1.0, -1.0, 0.0))

    assert metrics["win_rate"] == 0.0
    assert metrics["consecutive_losses"] == 0.0


def test_unknown_equity_gives_an_unknown_drawdown() -> None:
    state = account(equity=NAN, peak=100.0)
    assert math.isnan(strategy_metrics(state)["drawdown_pct"])
    assert math.isnan(model_state(state, "BTCUSDT").drawdown_pct)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        strategy_metrics(account(), window=0)


def test_model_state_counts_positions_by_side_and_symbol() -> None:
    positions = (
        held("a", "BTCUSDT", "long"),
        held("b", "BTCUSDT", "short"),
        held("c", "ETHUSDT", "long"),
    )
    state = TradeState(7_000, 90.0, 120.0, positions=positions)

    assert model_state(state, "BTCUSDT", waited_bars=2) == ModelState(
        now_ms=7_000,
        open_positions=3,
        open_long=2,
        open_short=1,
        same_symbol_positions=2,
        drawdown_pct=(120 - 90) / 120 * 100,
        waited_bars=2,
    )
    assert model_state(state, "XRPUSDT").same_symbol_positions == 0
    assert strategy_metrics(state)["open_positions"] == 3.0


@pytest.mark.parametrize(
    "counts",
    [
        {"open_positions": 2, "open_long": 1, "open_short": 0, "same_symbol_positions": 0},
        {"open_positions": 1, "open_long": 1, "open_short": 0, "same_symbol_positions": 2},
        {"open_positions": 0, "open_long": 0, "open_short": 0, "same_symbol_positions": -1},
    ],
)
def test_model_state_refuses_inconsistent_counts(counts: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"open|negative"):
        ModelState(now_ms=0, drawdown_pct=0.0, **counts)


# --- no raw prices -----------------------------------------------------------------------

# "open" in these counts is the positions' state, not the open price.
_PRICE_WORD = re.compile(r"(^|_)(close|open|high|low|price)(_|$)")
_NOT_A_PRICE = {"open_positions", "open_long", "open_short"}


def test_no_metric_or_state_field_names_a_raw_price() -> None:
    names = (
        set(signal_metrics(signal(), market()))
        | set(signal_metrics(signal(), None))
        | set(strategy_metrics(account(1.0, -1.0)))
        | {field.name for field in dataclasses.fields(ModelState)}
    )
    offending = {name for name in names - _NOT_A_PRICE if _PRICE_WORD.search(name)}
    assert not offending
    # the check itself must catch a price-named key
    assert _PRICE_WORD.search("last_close")
    assert _PRICE_WORD.search("price")


@given(
    scale_exponent=st.integers(min_value=-30, max_value=30),
    close=st.floats(min_value=1e-3, max_value=1e6),
    # no subnormal ATRs: below 2**-1022 a float loses precision and scaling is not exact
    atr_fraction=st.just(0.0) | st.floats(min_value=1e-6, max_value=0.5),
)
def test_signal_metrics_do_not_change_when_every_price_is_scaled(
    scale_exponent: int, close: float, atr_fraction: float
) -> None:
    # A power of two scales a float exactly, so a metric that is a true ratio stays bit-equal:
    # what does not move with the price level cannot carry the price to a model.
    scale = 2.0**scale_exponent
    base = market(close=close, atr=close * atr_fraction)
    scaled = market(close=close * scale, atr=close * atr_fraction * scale)

    assert signal_metrics(signal(), scaled) == signal_metrics(signal(), base)


# --- decisions ---------------------------------------------------------------------------


def test_decision_values_out_of_range_are_refused() -> None:
    for bad in (-0.1, 1.5, NAN):
        with pytest.raises(ValueError, match="size_multiplier"):
            StrategyDecision(ModelAction.ENTER, size_multiplier=bad)
        with pytest.raises(ValueError, match="confidence"):
            StrategyDecision(ModelAction.ENTER, confidence=bad)


def test_an_entering_decision_needs_a_size_and_a_non_entering_one_has_none() -> None:
    with pytest.raises(ValueError, match="skip"):
        StrategyDecision(ModelAction.REDUCE_SIZE, size_multiplier=0.0)
    with pytest.raises(ValueError, match="skip"):
        StrategyDecision(ModelAction.ENTER, size_multiplier=0.0)

    assert StrategyDecision(ModelAction.SKIP).size_multiplier == 0.0
    assert StrategyDecision(ModelAction.WAIT, size_multiplier=0.7).size_multiplier == 0.0
    assert StrategyDecision(ModelAction.REDUCE_SIZE, 0.4).size_multiplier == 0.4
    assert [action.value for action in ModelAction] == ["enter", "skip", "reduce_size", "wait"]
    assert [action.enters for action in ModelAction] == [True, False, True, False]


# --- the logistic model ------------------------------------------------------------------


def model_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "test_model",
        "intercept": -0.2,
        "weights": {"confidence": 1.5, "adx": 0.02, "win_rate": -0.7},
        "missing": {"adx": 20.0},
        "thresholds": {"enter": 0.6, "reduce": 0.5, "wait": 0.45},
        "max_wait_bars": 2,
    }
    data.update(changes)
    return data


def test_probability_is_the_logistic_of_the_weighted_sum() -> None:
    model = LogisticModel.from_mapping(model_data())

    p = model.probability({"confidence": 0.8, "adx": 30.0}, {"win_rate": 0.25})

    assert p == pytest.approx(logistic(-0.2 + 1.5 * 0.8 + 0.02 * 30.0 - 0.7 * 0.25), rel=1e-14)


@pytest.mark.parametrize("unknown", [NAN, math.inf, None])
def test_an_unknown_input_takes_its_missing_default_or_zero(unknown: float | None) -> None:
    model = LogisticModel.from_mapping(model_data())
    signal_values = {"confidence": 0.8}
    strategy_values: dict[str, float] = {}
    if unknown is not None:  # None: the key is absent altogether
        signal_values["adx"] = unknown
        strategy_values["win_rate"] = unknown

    p = model.probability(signal_values, strategy_values)

    # adx falls back to its default 20, win_rate (no default) to 0
    assert p == pytest.approx(logistic(-0.2 + 1.5 * 0.8 + 0.02 * 20.0 - 0.7 * 0.0), rel=1e-14)


def test_sigmoid_is_stable_far_out() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(-1000.0) == 0.0
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-3.0) == pytest.approx(math.exp(-3.0) / (1 + math.exp(-3.0)), rel=1e-15)
    assert sigmoid(2.5) == pytest.approx(1 - sigmoid(-2.5), rel=1e-15)


def band_model(enter: float, reduce: float, wait: float, max_wait_bars: int = 2) -> LogisticModel:
    """p = logistic(z) where z is the `confidence` metric passed in."""
    return LogisticModel.from_mapping(
        {
            "name": "m",
            "weights": {"confidence": 1.0},
            "thresholds": {"enter": enter, "reduce": reduce, "wait": wait},
            "max_wait_bars": max_wait_bars,
        }
    )


def decide_at(model: LogisticModel, z: float, waited_bars: int = 0) -> StrategyDecision:
    state = ModelState(0, 0, 0, 0, 0, 0.0, waited_bars=waited_bars)
    return model.decide([signal()], [{"confidence": z}], {}, state)


# z = 0 gives p = 0.5 exactly, so each threshold set to 0.5 is hit on its edge.
@pytest.mark.parametrize(
    ("thresholds", "at_edge", "just_below"),
    [
        ((0.5, 0.4, 0.3), ModelAction.ENTER, ModelAction.REDUCE_SIZE),
        ((0.7, 0.5, 0.3), ModelAction.REDUCE_SIZE, ModelAction.WAIT),
        ((0.8, 0.7, 0.5), ModelAction.WAIT, ModelAction.SKIP),
    ],
)
def test_each_threshold_belongs_to_the_band_above_it(
    thresholds: tuple[float, float, float], at_edge: ModelAction, just_below: ModelAction
) -> None:
    model = band_model(*thresholds)

    assert decide_at(model, 0.0).action is at_edge
    assert decide_at(model, -1e-9).action is just_below


def test_enter_is_full_size_with_confidence_p() -> None:
    decision = decide_at(band_model(0.6, 0.5, 0.45), 1.0)

    assert decision.action is ModelAction.ENTER
    assert decision.size_multiplier == 1.0
    assert decision.confidence == pytest.approx(logistic(1.0), rel=1e-15)


def test_reduce_scales_the_size_by_p_over_enter() -> None:
    decision = decide_at(band_model(0.6, 0.5, 0.45), 0.0)  # p = 0.5

    assert decision == StrategyDecision(
        ModelAction.REDUCE_SIZE,
        size_multiplier=0.5 / 0.6,
        confidence=0.5,
        reason="m p=0.500 < enter 0.600: reduce size to 0.833",
    )


def test_wait_until_max_wait_bars_then_skip() -> None:
    model = band_model(0.8, 0.7, 0.3, max_wait_bars=2)
    z = -0.2
    p = logistic(z)  # 0.450, inside the wait band

    first, second, third = (decide_at(model, z, waited_bars=n) for n in (0, 1, 2))

    assert first.action is ModelAction.WAIT
    assert first.reason == "m p=0.450 < reduce 0.700: wait (1 of 2 bars)"
    assert second.action is ModelAction.WAIT
    assert third.action is ModelAction.SKIP
    assert third.reason == "m p=0.450 < reduce 0.700 after waiting 2 bars: skip"
    for decision in (first, second, third):
        assert decision.size_multiplier == 0.0
        assert decision.confidence == pytest.approx(1 - p, rel=1e-14)


def test_no_waiting_allowed_skips_the_wait_band() -> None:
    assert decide_at(band_model(0.8, 0.7, 0.3, max_wait_bars=0), -0.2).action is ModelAction.SKIP


def test_below_wait_skips_with_the_reason() -> None:
    decision = decide_at(band_model(0.6, 0.5, 0.45), -2.0)
    assert decision.action is ModelAction.SKIP
    assert decision.reason == f"m p={logistic(-2.0):.3f} < wait 0.450: skip"


def test_decide_judges_the_first_signal() -> None:
    model = band_model(0.6, 0.5, 0.45)
    state = ModelState(0, 0, 0, 0, 0, 0.0)

    decision = model.decide(
        [signal(), signal()], [{"confidence": 3.0}, {"confidence": -3.0}], {}, state
    )

    assert decision.action is ModelAction.ENTER
    with pytest.raises(ValueError, match="candidate"):
        model.decide([], [], {}, state)
    with pytest.raises(ValueError, match="metric sets"):
        model.decide([signal()], [], {}, state)


@given(
    weights=st.dictionaries(
        st.sampled_from(sorted(set(SIGNAL_METRICS) | set(STRATEGY_METRICS))),
        st.floats(min_value=-1.0, max_value=1.0),
    ),
    feature=st.sampled_from(sorted(set(SIGNAL_METRICS) | set(STRATEGY_METRICS))),
    weight=st.floats(min_value=1e-3, max_value=1.0),
    intercept=st.floats(min_value=-2.0, max_value=2.0),
    values=st.lists(st.floats(min_value=-2.0, max_value=2.0), min_size=13, max_size=13),
    low=st.floats(min_value=-2.0, max_value=2.0),
    high=st.floats(min_value=-2.0, max_value=2.0),
)
def test_probability_rises_with_a_positively_weighted_feature_and_stays_inside_0_1(
    weights: dict[str, float],
    feature: str,
    weight: float,
    intercept: float,
    values: list[float],
    low: float,
    high: float,
) -> None:
    # |z| <= 2 + 13 x 1 x 2 = 28, where the logistic is still strictly between 0 and 1 in floats
    model = LogisticModel.from_mapping(
        {
            "intercept": intercept,
            "weights": {**weights, feature: weight},
            "thresholds": {"enter": 0.6, "reduce": 0.5, "wait": 0.4},
        }
    )
    low, high = min(low, high), max(low, high)
    inputs = dict(zip(list(SIGNAL_METRICS) + list(STRATEGY_METRICS), values, strict=True))

    p_low = model.probability({**inputs, feature: low}, {**inputs, feature: low})
    p_high = model.probability({**inputs, feature: high}, {**inputs, feature: high})

    assert 0.0 < p_low <= p_high < 1.0


# --- loading -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weights": {"close": 1.0}}, "test: weights.close: unknown feature"),
        ({"weights": {}}, "test: weights: no features"),
        ({"weights": None}, "test: weights: expected an object"),
        ({"weights": {"adx": NAN}}, "test: weights.adx: expected a finite number"),
        ({"weights": {"adx": True}}, "test: weights.adx: expected a number"),
        ({"weights": {"adx": "1"}}, "test: weights.adx: expected a number"),
        ({"intercept": math.inf}, "test: intercept: expected a finite number"),
        ({"missing": {"trades": 1.0}}, "test: missing.trades: a default for a feature with no"),
        ({"missing": {"volume": 1.0}}, "test: missing.volume: unknown feature"),
        (
            {"thresholds": {"enter": 0.5, "reduce": 0.6, "wait": 0.4}},
            "test: thresholds: must be ordered enter >= reduce >= wait",
        ),
        (
            {"thresholds": {"enter": 0.6, "reduce": 0.5, "wait": 0.55}},
            "test: thresholds: must be ordered",
        ),
        (
            {"thresholds": {"enter": 1.2, "reduce": 0.5, "wait": 0.4}},
            "test: thresholds.enter: must be within 0..1",
        ),
        ({"thresholds": {"enter": 0.6, "reduce": 0.5}}, "test: thresholds.wait: required"),
        (
            {"thresholds": {"enter": 0.6, "reduce": 0.5, "wait": 0.4, "exit": 0.1}},
            "test: thresholds.exit: unknown key",
        ),
        ({"max_wait_bars": -1}, "test: max_wait_bars: must not be negative"),
        ({"max_wait_bars": 1.5}, "test: max_wait_bars: expected an integer"),
        ({"name": ""}, "test: name: expected a non-empty string"),
        ({"wieghts": {"adx": 1.0}}, "test: wieghts: unknown key"),
    ],
)
def test_bad_models_are_refused_naming_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelLoadError) as error:
        LogisticModel.from_mapping(model_data(**changes), source="test")
    assert str(error.value).startswith(message)


def test_required_keys_and_a_top_level_object() -> None:
    data = model_data()
    del data["thresholds"]
    with pytest.raises(ModelLoadError, match=r"^test: thresholds: required$"):
        LogisticModel.from_mapping(data, source="test")
    with pytest.raises(ModelLoadError, match=r"^test: \(top level\): expected an object"):
        LogisticModel.from_mapping([1, 2], source="test")


def test_a_model_error_is_a_value_error() -> None:
    assert issubclass(ModelLoadError, ValueError)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ModelLoadError, match=f"^{re.escape(str(path))}: cannot read"):
        LogisticModel.from_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"weights": {"adx": 1.0', ": not valid JSON"),
        ('{"weights": {"adx": 1, "adx": 2}}', ": adx: given twice"),
        (json.dumps(model_data(weights={"adx": NAN})), ": weights.adx: expected a finite"),
        ("[]", r": \(top level\): expected an object"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelLoadError, match=f"^{re.escape(str(path))}{message}"):
        LogisticModel.from_file(path)


def test_a_file_round_trips_the_model(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model_data()), encoding="utf-8")

    model = LogisticModel.from_file(path)

    assert model.name == "test_model"
    assert model.intercept == -0.2
    assert dict(model.weights) == {"confidence": 1.5, "adx": 0.02, "win_rate": -0.7}
    assert dict(model.missing) == {"adx": 20.0}
    assert (model.thresholds.enter, model.thresholds.reduce, model.thresholds.wait) == (
        0.6,
        0.5,
        0.45,
    )
    assert model.max_wait_bars == 2


# --- the shipped model, end to end -------------------------------------------------------


def shipped_decision(adx: float, *pnls: float) -> tuple[float, StrategyDecision]:
    model = LogisticModel.from_file(SHIPPED)
    candidate = signal(confidence=0.7)
    # per-bar volatility 0.006 over 10,000 bars a year: 0.006 x 100 = 60% a year
    known = market(adx=adx, volatility=0.006)
    state = account(*pnls, equity=100.0, peak=100.0)
    metrics = signal_metrics(candidate, known)
    record = strategy_metrics(state)
    decision = model.decide([candidate], [metrics], record, model_state(state, "BTCUSDT"))
    return model.probability(metrics, record), decision


def test_the_shipped_model_enters_a_typical_signal() -> None:
    p, decision = shipped_decision(25.0, -1.0, 1.0)  # win rate 50%, no losing streak

    # intercept + confidence + adx + annualised_vol + win_rate (+ no losses, no drawdown)
    assert p == pytest.approx(logistic(-1.8 + 2.0 * 0.7 + 0.04 * 25 - 1.0 * 0.6 + 1.0 * 0.5))
    assert round(p, 2) == 0.62  # as its description says
    assert decision.action is ModelAction.ENTER
    assert decision.reason.startswith("entry_logistic p=0.622")


def test_the_shipped_model_reduces_in_a_weak_trend_and_skips_after_losses() -> None:
    p, weak_trend = shipped_decision(15.0, -1.0, 1.0)
    assert round(p, 2) == 0.52
    assert weak_trend.action is ModelAction.REDUCE_SIZE
    assert weak_trend.size_multiplier == pytest.approx(p / 0.6)
    assert round(weak_trend.size_multiplier, 2) == 0.87  # as its description says

    p, after_losses = shipped_decision(25.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0)
    assert p == pytest.approx(logistic(0.5 - 0.3 * 3))
    assert after_losses.action is ModelAction.SKIP


def test_the_shipped_model_describes_itself() -> None:
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    model = LogisticModel.from_file(SHIPPED)
    assert model.name == data["name"] == "entry_logistic"
    assert model.description == data["description"] != ""
