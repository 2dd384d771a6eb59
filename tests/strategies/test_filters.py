"""Entry filters on hand-built accounts and markets: the exact verdict and reason text, the
boundaries, the unknown-data paths, the drawdown pause's expiry and re-basing across a
restart, and correlation checked against numpy."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import Signal, SignalAction
from strategies.exits.base import TrackedPosition
from strategies.filters import (
    CorrelationFilter,
    DrawdownPause,
    RegimeFilter,
    TimeWindow,
    VolatilityBand,
    aligned_returns,
    parse_days,
    parse_hours,
    pearson,
)
from strategies.trade.state import EntryFilter, SymbolMarket, TradeState, Verdict

NAN = math.nan
HOUR_MS = 3_600_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch milliseconds of a UTC moment."""
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def signal(
    symbol: str = "BTCUSDT", ts_ms: int = 0, action: SignalAction = SignalAction.ENTER_LONG
) -> Signal:
    return Signal(
        strategy="test", symbol=symbol, action=action, ts_ms=ts_ms, signal_id=f"s-{ts_ms}"
    )


def market(
    symbol: str = "BTCUSDT",
    *,
    close: float = 100.0,
    atr: float = NAN,
    adx: float = NAN,
    volatility: float = NAN,
    bars_per_year: float = 10_000.0,
    returns: tuple[float, ...] = (),
    times: tuple[int, ...] = (),
) -> SymbolMarket:
    return SymbolMarket(symbol, close, 0, atr, adx, volatility, bars_per_year, returns, times)


def account(
    equity: float = 1000.0, peak: float = 1000.0, positions: tuple[TrackedPosition, ...] = ()
) -> TradeState:
    return TradeState(0, equity, peak, positions)


def held(symbol: str, side: str = "long") -> TrackedPosition:
    return TrackedPosition(f"p-{symbol}-{side}", symbol, side, 100.0, 0, Decimal(1))  # type: ignore[arg-type]


def test_every_filter_meets_the_entry_filter_contract() -> None:
    filters: list[EntryFilter] = [
        RegimeFilter("trend"),
        VolatilityBand("atr_pct", maximum=5),
        DrawdownPause(10, HOUR_MS),
        CorrelationFilter(),
        TimeWindow(),
    ]
    assert [f.name for f in filters] == [
        "regime",
        "volatility",
        "drawdown",
        "correlation",
        "time_window",
    ]


@pytest.mark.parametrize(
    "stateless",
    [
        RegimeFilter("trend"),
        VolatilityBand("atr_pct", maximum=5),
        CorrelationFilter(),
        TimeWindow(),
    ],
)
def test_stateless_filters_snapshot_nothing_and_refuse_foreign_state(
    stateless: EntryFilter,
) -> None:
    assert stateless.snapshot() == {}
    stateless.restore({})
    with pytest.raises(ValueError, match="stateless"):
        stateless.restore({"paused_until_ms": 5})


# --- regime -------------------------------------------------------------------------------


def test_regime_allows_the_wanted_regime_and_names_the_other() -> None:
    trending = {"BTCUSDT": market(adx=31.0)}
    ranging = {"BTCUSDT": market(adx=18.2)}
    assert RegimeFilter("trend").allow_entry(signal(), account(), trending) == Verdict(True)
    assert RegimeFilter("range").allow_entry(signal(), account(), ranging)
    assert RegimeFilter("trend").allow_entry(signal(), account(), ranging) == Verdict(
        False, "regime: range (ADX 18.2 < 25), needs trend"
    )
    assert RegimeFilter("range", adx_threshold=30).allow_entry(
        signal(), account(), trending
    ) == Verdict(False, "regime: trend (ADX 31.0 >= 30), needs range")


def test_adx_exactly_at_the_threshold_is_a_trend() -> None:
    at_threshold = {"BTCUSDT": market(adx=25.0)}
    assert RegimeFilter("trend").allow_entry(signal(), account(), at_threshold)
    verdict = RegimeFilter("range").allow_entry(signal(), account(), at_threshold)
    assert verdict.reason == "regime: trend (ADX 25.0 >= 25), needs range"


def test_regime_reason_never_prints_a_value_on_the_wrong_side_of_the_threshold() -> None:
    just_below = {"BTCUSDT": market(adx=24.951)}
    verdict = RegimeFilter("trend").allow_entry(signal(), account(), just_below)
    assert verdict.reason == "regime: range (ADX 24.95 < 25), needs trend"


def test_unknown_regime_refuses_either_way() -> None:
    for wanted in ("trend", "range"):
        regime = RegimeFilter(wanted, name="regime_1h")
        no_adx = regime.allow_entry(signal(), account(), {"BTCUSDT": market(adx=NAN)})
        assert no_adx == Verdict(
            False, f"regime_1h: regime unknown (ADX of BTCUSDT not known yet), needs {wanted}"
        )
        missing = regime.allow_entry(signal(), account(), {"ETHUSDT": market("ETHUSDT")})
        assert missing.reason == (
            f"regime_1h: regime unknown (no market for BTCUSDT), needs {wanted}"
        )


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"allow": "sideways"}, "allow"),
        ({"allow": "trend", "adx_threshold": 0}, "adx_threshold"),
        ({"allow": "trend", "adx_threshold": 100}, "adx_threshold"),
        ({"allow": "trend", "adx_threshold": NAN}, "adx_threshold"),
        ({"allow": "trend", "name": ""}, "name"),
    ],
)
def test_regime_parameters_are_validated(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        RegimeFilter(**kwargs)  # type: ignore[arg-type]


# --- volatility band ----------------------------------------------------------------------


def test_atr_band_is_inclusive_at_both_bounds() -> None:
    band = VolatilityBand("atr_pct", minimum=1.0, maximum=2.0)
    # ATR percent = atr / close * 100
    for atr in (1.0, 1.5, 2.0):
        assert band.allow_entry(signal(), account(), {"BTCUSDT": market(atr=atr)})
    quiet = band.allow_entry(signal(), account(), {"BTCUSDT": market(atr=0.5)})
    assert quiet == Verdict(False, "volatility: atr_pct 0.50 < minimum 1")
    wild = band.allow_entry(signal(), account(), {"BTCUSDT": market(close=50, atr=1.3)})
    assert wild == Verdict(False, "volatility: atr_pct 2.60 > maximum 2")


def test_annualised_volatility_band_with_one_bound() -> None:
    # 0.01 per bar * sqrt(10_000 bars a year) = 1.0 a year
    one_a_year = {"BTCUSDT": market(volatility=0.01, bars_per_year=10_000)}
    capped = VolatilityBand("annualised_vol", maximum=0.8)
    assert capped.allow_entry(signal(), account(), one_a_year) == Verdict(
        False, "volatility: annualised_vol 1.00 > maximum 0.8"
    )
    floored = VolatilityBand("annualised_vol", minimum=0.8, name="vol_floor")
    assert floored.allow_entry(signal(), account(), one_a_year)
    calm = {"BTCUSDT": market(volatility=0.005, bars_per_year=10_000)}
    assert floored.allow_entry(signal(), account(), calm).reason == (
        "vol_floor: annualised_vol 0.50 < minimum 0.8"
    )


def test_unknown_volatility_refuses() -> None:
    band = VolatilityBand("atr_pct", maximum=5)
    for unknown in (market(atr=NAN), market(close=0.0, atr=1.0), market(atr=math.inf)):
        verdict = band.allow_entry(signal(), account(), {"BTCUSDT": unknown})
        assert verdict == Verdict(False, "volatility: atr_pct of BTCUSDT not known yet")
    missing = band.allow_entry(signal(), account(), {})
    assert missing.reason == "volatility: atr_pct unknown (no market for BTCUSDT)"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"metric": "atr"}, "metric"),
        ({"metric": "atr_pct"}, "minimum or a maximum"),
        ({"metric": "atr_pct", "minimum": 2.0, "maximum": 2.0}, "minimum must be below"),
        ({"metric": "atr_pct", "minimum": 3.0, "maximum": 2.0}, "minimum must be below"),
        ({"metric": "atr_pct", "minimum": -1.0}, "minimum"),
        ({"metric": "atr_pct", "maximum": NAN}, "maximum"),
    ],
)
def test_volatility_parameters_are_validated(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        VolatilityBand(**kwargs)  # type: ignore[arg-type]


# --- drawdown pause -----------------------------------------------------------------------

BREACH_MS = ms(2024, 3, 1, 11, 0)
PAUSE_END_MS = ms(2024, 3, 1, 12, 0)  # BREACH_MS + one hour
PAUSED_10 = "drawdown: 10.0% >= 10%, paused until 2024-03-01T12:00Z"


def test_drawdown_follows_the_account_peak_and_pauses_at_exactly_the_maximum() -> None:
    pause = DrawdownPause(10, HOUR_MS)
    assert pause.allow_entry(signal(ts_ms=BREACH_MS - 1), account(950, 1000), {})  # 5 %
    verdict = pause.allow_entry(signal(ts_ms=BREACH_MS), account(900, 1000), {})  # 10 %
    assert verdict == Verdict(False, PAUSED_10)
    assert pause.paused_until_ms == PAUSE_END_MS


def test_the_pause_holds_until_it_expires_even_after_a_recovery() -> None:
    pause = DrawdownPause(10, HOUR_MS)
    pause.allow_entry(signal(ts_ms=BREACH_MS), account(880, 1000), {})  # 12 %
    recovered = pause.allow_entry(signal(ts_ms=PAUSE_END_MS - 1), account(1000, 1000), {})
    assert recovered.reason == "drawdown: 12.0% >= 10%, paused until 2024-03-01T12:00Z"
    assert pause.allow_entry(signal(ts_ms=PAUSE_END_MS), account(1000, 1000), {})


def test_after_the_pause_a_flat_account_is_measured_from_where_it_stands() -> None:
    pause = DrawdownPause(10, HOUR_MS)
    pause.allow_entry(signal(ts_ms=BREACH_MS), account(900, 1000), {})
    # Still 10 % below the account's peak, but the pause re-based to 900.
    assert pause.allow_entry(signal(ts_ms=PAUSE_END_MS), account(900, 1000), {})
    assert pause.high_water == 900
    # 850 is (900 - 850) / 900 = 5.6 % down from the re-based mark; 810 is 10 %.
    assert pause.allow_entry(signal(ts_ms=PAUSE_END_MS + 1), account(850, 1000), {})
    again = pause.allow_entry(signal(ts_ms=PAUSE_END_MS + 2), account(810, 1000), {})
    assert again.reason == "drawdown: 10.0% >= 10%, paused until 2024-03-01T13:00:00.002Z"


def test_after_re_basing_the_account_peak_counts_again_once_it_is_exceeded() -> None:
    pause = DrawdownPause(10, HOUR_MS)
    pause.allow_entry(signal(ts_ms=BREACH_MS), account(900, 1000), {})
    later = PAUSE_END_MS
    assert pause.allow_entry(signal(ts_ms=later), account(900, 1000), {})
    # Equity climbs to 950: folded in (the account peak, still 1000, is ignored).
    assert pause.allow_entry(signal(ts_ms=later + 1), account(950, 1000), {})
    assert pause.high_water == 950
    # The account peak passes 1000 between calls: 1200 is followed again, 1080 is 10 % below.
    verdict = pause.allow_entry(signal(ts_ms=later + 2), account(1080, 1200), {})
    assert pause.high_water == 1200
    assert verdict.reason.startswith("drawdown: 10.0% >= 10%, paused until")


def test_equity_above_a_stale_peak_raises_the_high_water_mark() -> None:
    pause = DrawdownPause(10, HOUR_MS)
    assert pause.allow_entry(signal(ts_ms=1), account(1100, 1000), {})
    # (1100 - 990) / 1100 = 10 %, though only 1 % below the stated peak.
    assert not pause.allow_entry(signal(ts_ms=2), account(990, 1000), {})


@pytest.mark.parametrize(
    ("equity", "reason"),
    [
        (0.0, "drawdown: equity 0 <= 0"),
        (-5.0, "drawdown: equity -5 <= 0"),
        (NAN, "drawdown: equity unknown"),
    ],
)
def test_no_equity_always_refuses_without_pausing(equity: float, reason: str) -> None:
    pause = DrawdownPause(10, HOUR_MS)
    assert pause.allow_entry(signal(ts_ms=1), account(equity, 1000), {}) == Verdict(False, reason)
    assert pause.paused_until_ms is None
    assert pause.allow_entry(signal(ts_ms=2), account(1000, 1000), {})


def test_a_restored_pause_refuses_until_the_same_time() -> None:
    original = DrawdownPause(10, HOUR_MS)
    original.allow_entry(signal(ts_ms=BREACH_MS), account(900, 1000), {})
    saved = json.loads(json.dumps(original.snapshot()))

    restored = DrawdownPause(10, HOUR_MS)
    restored.restore(saved)
    mid_pause = restored.allow_entry(signal(ts_ms=PAUSE_END_MS - 1), account(1000, 1000), {})
    assert mid_pause == Verdict(False, PAUSED_10)
    assert restored.allow_entry(signal(ts_ms=PAUSE_END_MS), account(900, 1000), {})
    # Both re-based the same way: the next call judges identically.
    original.allow_entry(signal(ts_ms=PAUSE_END_MS), account(900, 1000), {})
    assert restored.snapshot() == original.snapshot()


def test_a_restored_re_based_pause_still_ignores_the_old_peak() -> None:
    original = DrawdownPause(10, HOUR_MS)
    original.allow_entry(signal(ts_ms=BREACH_MS), account(900, 1000), {})
    original.allow_entry(signal(ts_ms=PAUSE_END_MS), account(900, 1000), {})
    restored = DrawdownPause(10, HOUR_MS)
    restored.restore(json.loads(json.dumps(original.snapshot())))
    assert restored.allow_entry(signal(ts_ms=PAUSE_END_MS + 1), account(900, 1000), {})
    assert not restored.allow_entry(signal(ts_ms=PAUSE_END_MS + 2), account(810, 1000), {})


def test_restoring_an_empty_snapshot_starts_afresh() -> None:
    pause = DrawdownPause(10, HOUR_MS)
    pause.allow_entry(signal(ts_ms=BREACH_MS), account(900, 1000), {})
    pause.restore({})
    assert pause.paused_until_ms is None
    assert pause.allow_entry(signal(ts_ms=BREACH_MS + 1), account(950, 1000), {})


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        ({"paused": 5}, "unknown snapshot keys"),
        ({"paused_until_ms": 1.5}, "paused_until_ms"),
        ({"paused_until_ms": True}, "paused_until_ms"),
        ({"high_water": "900"}, "high_water"),
        ({"rebase_peak": math.inf}, "rebase_peak"),
    ],
)
def test_bad_drawdown_snapshots_are_rejected(snapshot: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DrawdownPause(10, HOUR_MS).restore(snapshot)


@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        ((0, HOUR_MS), "max_drawdown_pct"),
        ((100, HOUR_MS), "max_drawdown_pct"),
        ((10, 0), "pause_ms"),
        ((10, 1.5), "pause_ms"),
        ((10, True), "pause_ms"),
    ],
)
def test_drawdown_parameters_are_validated(args: tuple[float, int], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        DrawdownPause(*args)


# --- correlation --------------------------------------------------------------------------

MINUTE_MS = 60_000


def correlated_pair(rho: float, count: int = 200, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.01, count)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(0, 0.01, count)
    return x, y


def markets_of(
    x: np.ndarray, y: np.ndarray, x_times: list[int] | None = None, y_times: list[int] | None = None
) -> dict[str, SymbolMarket]:
    x_times = x_times or [n * MINUTE_MS for n in range(len(x))]
    y_times = y_times or [n * MINUTE_MS for n in range(len(y))]
    return {
        "BTCUSDT": market("BTCUSDT", returns=tuple(x.tolist()), times=tuple(x_times)),
        "ETHUSDT": market("ETHUSDT", returns=tuple(y.tolist()), times=tuple(y_times)),
    }


def test_no_open_positions_allows_any_entry() -> None:
    assert CorrelationFilter().allow_entry(signal(), account(), {})


def test_correlation_matches_numpy_on_aligned_returns() -> None:
    x, y = correlated_pair(0.8)
    expected = float(np.corrcoef(x, y)[0, 1])
    prices = markets_of(x, y)
    xs, ys = aligned_returns(prices["BTCUSDT"], prices["ETHUSDT"])
    assert pearson(xs, ys) == pytest.approx(expected, abs=1e-12)

    same_side = account(positions=(held("ETHUSDT", "long"),))
    refused = CorrelationFilter(max_correlation=0.5).allow_entry(signal(), same_side, prices)
    assert refused == Verdict(False, f"correlation: {expected:.2f} with open long ETHUSDT > 0.5")
    assert CorrelationFilter(max_correlation=0.95).allow_entry(signal(), same_side, prices)


def test_correlation_aligns_misaligned_times_by_their_intersection() -> None:
    x, y = correlated_pair(0.6, count=300, seed=11)
    # BTC has every other minute missing before minute 100; ETH starts 40 minutes late and
    # is listed with its own gaps.
    x_times = [n * MINUTE_MS for n in range(300) if n >= 100 or n % 2 == 0]
    y_times = [(n + 40) * MINUTE_MS for n in range(300) if n % 7 != 3]
    x = x[: len(x_times)]
    y = y[: len(y_times)]
    common, x_at, y_at = np.intersect1d(x_times, y_times, return_indices=True)
    expected = float(np.corrcoef(x[x_at], y[y_at])[0, 1])
    prices = markets_of(x, y, x_times, y_times)
    xs, ys = aligned_returns(prices["BTCUSDT"], prices["ETHUSDT"])
    assert len(xs) == len(common)
    assert pearson(xs, ys) == pytest.approx(expected, abs=1e-12)


def test_an_opposite_side_position_negates_the_correlation() -> None:
    x, y = correlated_pair(0.9)
    prices = markets_of(x, y)
    expected = float(np.corrcoef(x, y)[0, 1])
    short_eth = account(positions=(held("ETHUSDT", "short"),))
    # A long entry against a short of a positively correlated symbol is a hedge.
    assert CorrelationFilter().allow_entry(signal(), short_eth, prices)
    # A short entry against the same short doubles the bet.
    shorting = signal(action=SignalAction.ENTER_SHORT)
    assert CorrelationFilter().allow_entry(shorting, short_eth, prices).reason == (
        f"correlation: {expected:.2f} with open short ETHUSDT > 0.7"
    )
    # Negatively correlated returns, opposite sides: effective = -r.
    anti = markets_of(x, -y)
    verdict = CorrelationFilter().allow_entry(signal(), short_eth, anti)
    assert verdict.reason == (
        f"correlation: {-expected:.2f} with open short ETHUSDT for a long entry "
        f"(effective {expected:.2f}) > 0.7"
    )


def test_a_position_in_the_same_symbol_correlates_fully_with_itself() -> None:
    x, y = correlated_pair(0.0)
    prices = markets_of(x, y)
    xs, ys = aligned_returns(prices["BTCUSDT"], prices["BTCUSDT"])
    assert pearson(xs, ys) == pytest.approx(1.0, abs=1e-15)
    long_btc = account(positions=(held("BTCUSDT", "long"),))
    assert CorrelationFilter(max_correlation=0.99).allow_entry(
        signal(), long_btc, prices
    ) == Verdict(False, "correlation: 1.00 with open long BTCUSDT > 0.99")
    short_btc = account(positions=(held("BTCUSDT", "short"),))
    assert CorrelationFilter().allow_entry(signal(), short_btc, prices)


def test_the_reason_names_the_most_correlated_position() -> None:
    x, mild = correlated_pair(0.75, seed=3)
    _, strong = correlated_pair(0.95, seed=3)
    r_mild = float(np.corrcoef(x, mild)[0, 1])
    r_strong = float(np.corrcoef(x, strong)[0, 1])
    assert 0.7 < r_mild < r_strong
    prices = markets_of(x, mild)
    prices["SOLUSDT"] = market(
        "SOLUSDT", returns=tuple(strong.tolist()), times=prices["BTCUSDT"].return_times
    )
    both = account(positions=(held("ETHUSDT"), held("SOLUSDT")))
    assert CorrelationFilter().allow_entry(signal(), both, prices).reason == (
        f"correlation: {r_strong:.2f} with open long SOLUSDT > 0.7"
    )


def test_too_little_overlap_is_unknown_and_when_unknown_decides() -> None:
    x, y = correlated_pair(0.0, count=29)
    prices = markets_of(x, y)
    long_eth = account(positions=(held("ETHUSDT"),))
    assert CorrelationFilter().allow_entry(signal(), long_eth, prices) == Verdict(
        False, "correlation: unknown with open long ETHUSDT (29 aligned returns, needs 30)"
    )
    assert CorrelationFilter(when_unknown="allow").allow_entry(signal(), long_eth, prices)
    assert CorrelationFilter(min_overlap=29).allow_entry(signal(), long_eth, prices)


def test_flat_returns_missing_markets_and_ragged_series_are_unknown() -> None:
    flat = np.zeros(40)
    x, _ = correlated_pair(0.0, count=40)
    long_eth = account(positions=(held("ETHUSDT"),))
    cases = {
        "returns do not vary": markets_of(x, flat),
        "no market for ETHUSDT": {"BTCUSDT": markets_of(x, x)["BTCUSDT"]},
        "no market for BTCUSDT": {"ETHUSDT": markets_of(x, x)["ETHUSDT"]},
        "ETHUSDT has 40 returns but 39 return times": markets_of(
            x, x, y_times=[n * MINUTE_MS for n in range(39)]
        ),
    }
    for why, prices in cases.items():
        verdict = CorrelationFilter().allow_entry(signal(), long_eth, prices)
        assert verdict == Verdict(False, f"correlation: unknown with open long ETHUSDT ({why})")


def test_non_finite_returns_are_left_out_of_the_overlap() -> None:
    x, y = correlated_pair(0.5, count=31)
    y[5] = np.nan
    prices = markets_of(x, y)
    long_eth = account(positions=(held("ETHUSDT"),))
    assert CorrelationFilter(min_overlap=31).allow_entry(signal(), long_eth, prices).reason == (
        "correlation: unknown with open long ETHUSDT (30 aligned returns, needs 31)"
    )
    finite = ~np.isnan(y)
    expected = float(np.corrcoef(x[finite], y[finite])[0, 1])
    xs, ys = aligned_returns(prices["BTCUSDT"], prices["ETHUSDT"])
    assert pearson(xs, ys) == pytest.approx(expected, abs=1e-12)


def test_a_known_excess_outranks_an_unknown_position() -> None:
    x, y = correlated_pair(0.95)
    prices = markets_of(x, y)
    both = account(positions=(held("XRPUSDT"), held("ETHUSDT")))
    expected = float(np.corrcoef(x, y)[0, 1])
    assert CorrelationFilter().allow_entry(signal(), both, prices).reason == (
        f"correlation: {expected:.2f} with open long ETHUSDT > 0.7"
    )


def test_correlation_judges_only_entries() -> None:
    exit_signal = signal(action=SignalAction.EXIT_LONG)
    with pytest.raises(ValueError, match="not an entry"):
        CorrelationFilter().allow_entry(exit_signal, account(), {})


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"max_correlation": 1.0}, "max_correlation"),
        ({"max_correlation": -1.0}, "max_correlation"),
        ({"min_overlap": 2}, "min_overlap"),
        ({"min_overlap": 30.0}, "min_overlap"),
        ({"when_unknown": "skip"}, "when_unknown"),
    ],
)
def test_correlation_parameters_are_validated(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        CorrelationFilter(**kwargs)  # type: ignore[arg-type]


def test_pearson_survives_returns_too_small_to_square() -> None:
    tiny = [0.0, 1e-169, 0.3e-169]  # squared deviations underflow to zero
    expected = float(np.corrcoef([0.0, 0.5, 0.25], [0.0, 1.0, 0.3])[0, 1])
    assert pearson([0.0, 0.5, 0.25], tiny) == pytest.approx(expected, abs=1e-12)
    assert pearson([0.1, 0.1, 0.1], [0.0, 1.0, 2.0]) is None


finite_returns = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_subnormal=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite_returns, finite_returns), min_size=2, max_size=60))
def test_pearson_is_symmetric_bounded_and_agrees_with_numpy(
    pairs: list[tuple[float, float]],
) -> None:
    xs = [x for x, _ in pairs]
    ys = [y for _, y in pairs]
    r = pearson(xs, ys)
    assert r == pearson(ys, xs)
    constant = min(xs) == max(xs) or min(ys) == max(ys)
    assert (r is None) == constant
    if r is None:
        return
    assert -1.0 <= r <= 1.0
    with np.errstate(all="ignore"):
        expected = float(np.corrcoef(xs, ys)[0, 1])
    if math.isfinite(expected) and np.std(xs) > 1e-9 and np.std(ys) > 1e-9:
        assert r == pytest.approx(expected, abs=1e-6)


# --- time window --------------------------------------------------------------------------

FRI = (2024, 3, 1)  # a Friday
SAT = (2024, 3, 2)
SUN = (2024, 3, 3)
MON = (2024, 3, 4)
WED = (2024, 3, 6)
OFFICE_HOURS = TimeWindow(days=range(5), hours=[(8 * 60, 16 * 60 + 30)])


def test_the_calendar_of_these_tests() -> None:
    assert [datetime(*day, tzinfo=UTC).weekday() for day in (FRI, SAT, SUN, MON, WED)] == [
        4,
        5,
        6,
        0,
        2,
    ]


def test_parse_hours_reads_minutes_of_the_day() -> None:
    assert parse_hours("08:00-16:30") == (480, 990)
    assert parse_hours(" 22:00 - 02:00 ") == (1320, 120)
    assert parse_hours("00:00-24:00") == (0, 1440)
    assert parse_hours("9:05-9:06") == (545, 546)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8-16", "expected HH:MM-HH:MM"),
        ("08:00", "expected HH:MM-HH:MM"),
        ("24:00-01:00", "start must be"),
        ("08:60-09:00", "start must be"),
        ("08:00-24:30", "end must be"),
        ("08:00-25:00", "end must be"),
        ("08:00-08:00", "start equals end"),
    ],
)
def test_parse_hours_rejects_malformed_windows(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hours(text)


def test_parse_days_reads_names_and_ranges() -> None:
    assert parse_days(["mon", "tue"]) == {0, 1}
    assert parse_days(["Monday", "SUN"]) == {0, 6}
    assert parse_days(["mon-fri"]) == {0, 1, 2, 3, 4}
    assert parse_days("sat-mon,wed") == {5, 6, 0, 2}
    for wrong, message in (([], "at least one day"), (["funday"], "unknown day 'funday'")):
        with pytest.raises(ValueError, match=message):
            parse_days(wrong)


def test_outside_the_window_the_reason_says_when_and_which_window() -> None:
    verdict = OFFICE_HOURS.allow_entry(signal(ts_ms=ms(*SAT, 3, 15)), account(), {})
    assert verdict == Verdict(False, "time_window: Sat 03:15 UTC outside mon-fri 08:00-16:30")
    assert TimeWindow.of("mon-fri", ["08:00-16:30"]).describe() == "mon-fri 08:00-16:30"


def test_window_start_is_inclusive_and_end_exclusive() -> None:
    def allowed(*when: int) -> bool:
        return bool(OFFICE_HOURS.allow_entry(signal(ts_ms=ms(*when)), account(), {}))

    assert allowed(*WED, 8, 0)
    assert allowed(*WED, 16, 29, 59)
    assert not allowed(*WED, 7, 59, 59)
    assert OFFICE_HOURS.allow_entry(signal(ts_ms=ms(*WED, 16, 30)), account(), {}).reason == (
        "time_window: Wed 16:30 UTC outside mon-fri 08:00-16:30"
    )


def test_a_window_may_wrap_midnight() -> None:
    nights = TimeWindow(hours=[parse_hours("22:00-02:00")], name="nights")
    for hour, minute in ((22, 0), (23, 59), (0, 0), (1, 59)):
        assert nights.contains(ms(*WED, hour, minute))
    for hour, minute in ((2, 0), (21, 59), (12, 0)):
        assert not nights.contains(ms(*WED, hour, minute))
    assert nights.allow_entry(signal(ts_ms=ms(*WED, 2, 0)), account(), {}).reason == (
        "nights: Wed 02:00 UTC outside 22:00-02:00"
    )


def test_a_wrapped_window_takes_the_weekday_of_the_moment_itself() -> None:
    weeknights = TimeWindow.of(["mon-fri"], ["22:00-02:00"])
    assert weeknights.contains(ms(*FRI, 23, 0))
    assert weeknights.contains(ms(*MON, 1, 0))  # Sunday night's tail, but Monday
    assert not weeknights.contains(ms(*SAT, 1, 0))  # Friday night's tail, but Saturday
    verdict = weeknights.allow_entry(signal(ts_ms=ms(*SUN, 23, 0)), account(), {})
    assert verdict.reason == "time_window: Sun 23:00 UTC outside mon-fri 22:00-02:00"


def test_days_alone_and_several_hour_windows() -> None:
    weekend = TimeWindow(days=parse_days("sat,sun"))
    assert weekend.contains(ms(*SUN, 23, 59))
    assert not weekend.contains(ms(*MON, 0, 0))  # Sunday -> Monday
    assert weekend.allow_entry(signal(ts_ms=ms(*MON, 12, 0)), account(), {}).reason == (
        "time_window: Mon 12:00 UTC outside sat-sun"
    )
    sessions = TimeWindow.of(["mon", "wed", "thu"], ["08:00-12:00", "13:00-24:00"])
    assert sessions.contains(ms(*WED, 23, 59))
    assert not sessions.contains(ms(*WED, 12, 30))
    assert sessions.describe() == "mon,wed-thu 08:00-12:00,13:00-24:00"
    assert TimeWindow().allow_entry(signal(ts_ms=ms(*SAT, 3, 15)), account(), {})


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"days": []}, "days"),
        ({"days": [7]}, "days"),
        ({"hours": [(0, 0)]}, "hours"),
        ({"hours": [(1440, 10)]}, "hours"),
        ({"hours": [(10, 1441)]}, "hours"),
    ],
)
def test_time_window_parameters_are_validated(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        TimeWindow(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=1439),
    st.integers(min_value=0, max_value=1439),
    st.integers(min_value=0, max_value=4_000_000_000_000),
)
def test_a_window_and_its_complement_split_every_moment(start: int, end: int, ts: int) -> None:
    if start == end:
        return
    window, complement = TimeWindow(hours=[(start, end)]), TimeWindow(hours=[(end, start)])
    assert window.contains(ts) != complement.contains(ts)
    minute = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts)
    minute_of_day = minute.hour * 60 + minute.minute
    inside = start <= minute_of_day < end if start < end else not end <= minute_of_day < start
    assert window.contains(ts) == inside
