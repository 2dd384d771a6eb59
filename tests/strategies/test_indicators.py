"""The incremental indicators against independent batch computations, and their edge cases.

Each indicator is fed bar by bar and every output (including side outputs such as ADX's
+DI/-DI and the VWAP bands) is compared with `indicator_reference` on every recorded kline
series and on synthetic series at price scales 1e-8, 1 and 1e5 (flat stretches, zero-volume
bars, gaps across UTC midnight).

Tolerance: relative 1e-9 everywhere. Standard deviations (RollingStd, the VWAP std and
bands) also get an absolute 1e-12 times the series' largest price: they are computed from values
of the size of the price, so their rounding error scales with the price, not with the std —
a flat window is 0.0 in the indicator but a few ulps of the price in the two-pass reference.
The 0..100 oscillators get an absolute 1e-9 (1e-11 of full scale) for the same reason near 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, partial
from typing import Any

import numpy as np
import pytest

from strategies.indicators import (
    ADX,
    ATR,
    EMA,
    RSI,
    SMA,
    Donchian,
    Indicator,
    RealizedVol,
    RollingMax,
    RollingMin,
    RollingStd,
    SessionVWAP,
    WindowedMove,
)
from tests.strategies import indicator_reference as ref
from tests.strategies.kline_data import Bars, constant_bars, synthetic_bars

Outputs = dict[str, np.ndarray]


def _closes(bars: Bars) -> list[list[Any]]:
    return [bars.close.tolist()]


def _hl(bars: Bars) -> list[list[Any]]:
    return [list(bars.high), list(bars.low)]


def _hlc(bars: Bars) -> list[list[Any]]:
    return [bars.high.tolist(), bars.low.tolist(), bars.close.tolist()]


def _ohlcv(bars: Bars) -> list[list[Any]]:
    return [bars.open_time_ms.tolist(), *_hlc(bars), bars.volume.tolist()]


def _ticks(bars: Bars) -> list[list[Any]]:
    return [bars.open_time_ms.tolist(), bars.close.tolist()]


def _no_abs_tol(bars: Bars) -> float:
    return 0.0


def _price_scale(bars: Bars) -> float:
    return 1e-12 * float(np.max(bars.high))


def _oscillator_scale(bars: Bars) -> float:
    return 1e-9


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Any]
    reference: Callable[[Bars], Outputs]
    columns: Callable[[Bars], list[list[Any]]] = _closes
    attrs: tuple[str, ...] = ()  # side outputs compared besides `value`
    abs_tol: Callable[[Bars], float] = _no_abs_tol

    def run(self, bars: Bars) -> Outputs:
        """Feed the incremental indicator bar by bar, recording every output."""
        indicator = self.make()
        got: dict[str, list[float]] = {a: [] for a in ("value", *self.attrs)}
        for row in zip(*self.columns(bars), strict=True):
            got["value"].append(indicator.update(*row))
            for a in self.attrs:
                got[a].append(getattr(indicator, a))
        return {k: np.array(v) for k, v in got.items()}


def _close_reference(func: Callable[..., np.ndarray], args: tuple[Any, ...], bars: Bars) -> Outputs:
    return {"value": func(bars.close, *args)}


def _on_close(func: Callable[..., np.ndarray], *args: Any) -> Callable[[Bars], Outputs]:
    return partial(_close_reference, func, args)


def _atr_reference(n: int, bars: Bars) -> Outputs:
    return {"value": ref.atr(bars.high, bars.low, bars.close, n)}


def _donchian_reference(n: int, bars: Bars) -> Outputs:
    upper = ref.rolling_max(bars.high, n)
    lower = ref.rolling_min(bars.low, n)
    return {"value": (upper + lower) * 0.5, "upper": upper, "lower": lower}


def _adx_reference(n: int, bars: Bars) -> Outputs:
    out = ref.adx(bars.high, bars.low, bars.close, n)
    out["value"] = out.pop("adx")
    return out


def _vwap_reference(band_mult: float, bars: Bars) -> Outputs:
    out = ref.session_vwap(
        bars.open_time_ms, bars.high, bars.low, bars.close, bars.volume, band_mult
    )
    out["value"] = out.pop("vwap")
    return out


def _move_reference(window_ms: int, bars: Bars) -> Outputs:
    return {"value": ref.windowed_move(bars.open_time_ms, bars.close, window_ms)}


def _cases() -> list[Case]:
    cases: list[Case] = []
    for n in (1, 5, 20):
        cases += [
            Case(f"SMA({n})", partial(SMA, n), _on_close(ref.sma, n)),
            Case(f"EMA({n})", partial(EMA, n), _on_close(ref.ema, n)),
            Case(f"RollingMax({n})", partial(RollingMax, n), _on_close(ref.rolling_max, n)),
            Case(f"RollingMin({n})", partial(RollingMin, n), _on_close(ref.rolling_min, n)),
            Case(
                f"Donchian({n})",
                partial(Donchian, n),
                partial(_donchian_reference, n),
                _hl,
                ("upper", "lower"),
            ),
        ]
    for n, ddof in ((1, 0), (2, 1), (20, 0), (20, 1)):
        reference = _on_close(ref.rolling_std, n, ddof)
        std = Case(f"RollingStd({n}, {ddof})", partial(RollingStd, n, ddof), reference)
        cases.append(replace(std, abs_tol=_price_scale))
    for n in (1, 14):
        cases += [
            Case(f"RSI({n})", partial(RSI, n), _on_close(ref.rsi, n), abs_tol=_oscillator_scale),
            Case(f"ATR({n})", partial(ATR, n), partial(_atr_reference, n), _hlc),
            Case(
                f"ADX({n})",
                partial(ADX, n),
                partial(_adx_reference, n),
                _hlc,
                ("plus_di", "minus_di", "atr"),
                _oscillator_scale,
            ),
        ]
    for n, ppy in ((1, None), (20, 365.0 * 24 * 60)):
        cases.append(
            Case(
                f"RealizedVol({n}, {ppy})",
                partial(RealizedVol, n, ppy),
                _on_close(ref.realized_vol, n, ppy),
            )
        )
    for mult in (0.0, 2.0):
        cases.append(
            Case(
                f"SessionVWAP({mult})",
                partial(SessionVWAP, mult),
                partial(_vwap_reference, mult),
                _ohlcv,
                ("std", "upper", "lower"),
                _price_scale,
            )
        )
    for window_ms in (60_000, 900_000):
        cases.append(
            Case(
                f"WindowedMove({window_ms})",
                partial(WindowedMove, window_ms),
                partial(_move_reference, window_ms),
                _ticks,
            )
        )
    return cases


CASES = _cases()


@cache
def synthetic_series() -> list[Bars]:
    series = [
        synthetic_bars(seed, 1500, price0=price0)
        for seed in (1, 2, 3)
        for price0 in (1e-8, 1.0, 1e5)
    ]
    return [*series, constant_bars(300, 0.1), constant_bars(300, 3e-5, volume=0.0)]


def _assert_close(case: Case, bars: Bars) -> None:
    got = case.run(bars)
    expected = case.reference(bars)
    abs_tol = case.abs_tol(bars)
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        act = got[key]
        where = f"{case.name}.{key} on {bars.name}"
        nan_mismatch = np.flatnonzero(np.isnan(act) != np.isnan(exp))
        assert nan_mismatch.size == 0, f"{where}: readiness differs at bar {nan_mismatch[0]}"
        ok = np.isnan(exp) | (np.abs(act - exp) <= 1e-9 * np.abs(exp) + abs_tol)
        bad = np.flatnonzero(~ok)
        assert bad.size == 0, f"{where}: bar {bad[0]} got {act[bad[0]]!r} want {exp[bad[0]]!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matches_batch_reference_on_recorded_klines(
    case: Case, recorded_series: list[Bars]
) -> None:
    for bars in recorded_series:
        _assert_close(case, bars)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matches_batch_reference_on_synthetic_bars(case: Case) -> None:
    for bars in synthetic_series():
        _assert_close(case, bars)


def test_synthetic_bars_exercise_the_edge_cases() -> None:
    # The comparisons above only mean something if the generator produces these.
    bars = synthetic_bars(1, 1500)
    assert (bars.volume == 0.0).sum() > 20
    assert len(np.unique(bars.open_time_ms // ref.DAY_MS)) >= 2
    flat = (bars.high == bars.low) & (np.diff(bars.close, prepend=np.nan) == 0.0)
    assert flat.sum() > 20
    assert math.isclose(synthetic_bars(1, 10, price0=1e-8).close[0], 1e-8, rel_tol=0.5)


# --- edge cases -------------------------------------------------------------------------------

NAN = math.nan
BAR = (101.0, 99.0, 100.0)  # high, low, close


@pytest.mark.parametrize(
    ("make", "feed", "ready_at"),
    [
        (lambda: SMA(4), lambda ind, i: ind.update(1.0 + i), 4),
        (lambda: EMA(4), lambda ind, i: ind.update(1.0 + i), 4),
        (lambda: RollingStd(4), lambda ind, i: ind.update(1.0 + i), 4),
        (lambda: RollingMax(4), lambda ind, i: ind.update(1.0 + i), 4),
        (lambda: RollingMin(4), lambda ind, i: ind.update(1.0 + i), 4),
        (lambda: RealizedVol(4), lambda ind, i: ind.update(1.0 + i), 5),
        (lambda: RSI(4), lambda ind, i: ind.update(1.0 + i), 5),
        (lambda: ATR(4), lambda ind, i: ind.update(*BAR), 4),
        (lambda: ADX(4), lambda ind, i: ind.update(100.0 + i, 99.0 + i, 99.5 + i), 8),
        (lambda: SessionVWAP(), lambda ind, i: ind.update(i, *BAR, 0.0 if i < 2 else 1.0), 3),
        (lambda: WindowedMove(4), lambda ind, i: ind.update(i, 100.0 + i), 5),
    ],
    ids=[
        "SMA",
        "EMA",
        "RollingStd",
        "RollingMax",
        "RollingMin",
        "RealizedVol",
        "RSI",
        "ATR",
        "ADX",
        "SessionVWAP",
        "WindowedMove",
    ],
)
def test_nan_until_ready_exactly_at_the_documented_bar(
    make: Callable[[], Any], feed: Callable[[Any, int], float], ready_at: int
) -> None:
    indicator = make()
    assert math.isnan(indicator.value)
    assert not indicator.ready
    for i in range(ready_at - 1):
        assert math.isnan(feed(indicator, i))
        assert not indicator.ready
        assert math.isnan(indicator.value)
    value = feed(indicator, ready_at - 1)
    assert indicator.ready
    assert not math.isnan(value)
    assert indicator.value == value


def test_adx_side_outputs_arrive_at_bar_period_plus_one() -> None:
    adx = ADX(3)
    for i in range(4):
        adx.update(100.0 + i, 99.0 + i, 99.5 + i)
        assert math.isnan(adx.plus_di) == (i < 3)
    assert adx.plus_di > 0.0
    assert adx.minus_di == 0.0
    assert adx.atr > 0.0
    assert not adx.ready


@pytest.mark.parametrize(
    "make",
    [
        lambda: SMA(0),
        lambda: EMA(-1),
        lambda: RollingStd(0),
        lambda: RollingStd(1, ddof=1),
        lambda: RollingStd(5, ddof=2),
        lambda: RollingMax(0),
        lambda: RollingMin(0),
        lambda: RSI(0),
        lambda: ATR(0),
        lambda: ADX(0),
        lambda: SMA(2.5),  # type: ignore[arg-type]
        lambda: SMA(True),
        lambda: RealizedVol(0),
        lambda: RealizedVol(5, periods_per_year=0.0),
        lambda: SessionVWAP(-0.1),
        lambda: SessionVWAP(NAN),
        lambda: WindowedMove(0),
        lambda: WindowedMove(-5000),
    ],
)
def test_bad_parameters_are_rejected(make: Callable[[], Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        make()


def test_windowed_move_rejects_a_decreasing_timestamp_and_keeps_its_state() -> None:
    move = WindowedMove(5000)
    move.update_many([0, 1000, 1000], [100.0, 101.0, 99.0])
    before = move.snapshot()
    with pytest.raises(ValueError, match="older"):
        move.update(999, 100.0)
    with pytest.raises(ValueError, match="older"):
        move.update_many([1001, 998], [100.0, 100.0])
    with pytest.raises(ValueError, match="price"):
        move.update(2000, 0.0)
    after_first_good_tick = WindowedMove(5000)
    after_first_good_tick.restore(before)
    after_first_good_tick.update(1001, 100.0)
    assert move.snapshot() == after_first_good_tick.snapshot()


def test_windowed_move_measures_the_trailing_window_only() -> None:
    move = WindowedMove(5000)
    assert math.isnan(move.update(0, 100.0))
    assert math.isnan(move.update(1000, 110.0))
    assert move.update(5000, 100.0) == (110.0 - 100.0) / 100.0  # tick at 0 has left
    assert move.update(6000, 100.0) == 0.0  # only ts > 1000 remain
    assert move.update(6000, 105.0) == 5.0 / 105.0  # equal timestamps are fine
    assert move.update(11_000, 104.0) == 0.0  # only ts > 6000 remain


@pytest.mark.parametrize(
    "make",
    [
        lambda p: SMA(p),
        lambda p: EMA(p),
        lambda p: RollingStd(p + 1),
        lambda p: RollingMax(p),
        lambda p: RollingMin(p),
        lambda p: RSI(p),
        lambda p: ATR(p),
        lambda p: ADX(p),
        lambda p: RealizedVol(p),
        lambda p: SessionVWAP(float(p)),
        lambda p: WindowedMove(p),
    ],
)
def test_restore_rejects_other_parameters_or_another_indicator(
    make: Callable[[int], Any],
) -> None:
    indicator = make(3)
    assert isinstance(indicator, Indicator)
    state = indicator.snapshot()
    with pytest.raises(ValueError, match="parameters"):
        make(4).restore(state)
    other = SMA(3) if state["kind"] != "SMA" else EMA(3)
    with pytest.raises(ValueError, match="snapshot is of"):
        other.restore(state)


def test_rolling_std_of_a_constant_is_exactly_zero() -> None:
    std = RollingStd(5)
    values = std.update_many([1.5, 2.5, 0.1, 7.0, 3.0] + [0.1] * 20)
    assert values[9:] == [0.0] * 16
    assert RollingStd(3, ddof=0).update_many([1e5 + 0.1] * 10)[2:] == [0.0] * 8


def test_rsi_extremes() -> None:
    assert RSI(3).update_many([1.0, 2.0, 3.0, 4.0, 5.0])[-1] == 100.0
    assert RSI(3).update_many([5.0, 4.0, 3.0, 2.0])[-1] == 0.0
    assert RSI(3).update_many([5.0] * 6)[-2:] == [50.0, 50.0]


def test_session_vwap_resets_on_a_new_utc_day_and_ignores_zero_volume() -> None:
    day = 86_400_000
    vwap = SessionVWAP(band_mult=1.0)
    assert vwap.update(day - 60_000, 12.0, 12.0, 12.0, 2.0) == 12.0
    assert vwap.std == 0.0
    assert vwap.update(day - 30_000, 9.0, 9.0, 9.0, 1.0) == 11.0
    assert vwap.std == math.sqrt(2.0)
    assert vwap.upper == 11.0 + math.sqrt(2.0)
    vwap.update(day - 1, 1e9, 1e9, 1e9, 0.0)  # zero volume: no change
    assert (vwap.value, vwap.std) == (11.0, math.sqrt(2.0))
    assert math.isnan(vwap.update(day, 50.0, 50.0, 50.0, 0.0))  # new day, no volume yet
    assert not vwap.ready
    assert math.isnan(vwap.lower)
    assert vwap.update(day + 60_000, 30.0, 30.0, 30.0, 5.0) == 30.0
    with pytest.raises(ValueError, match="volume"):
        vwap.update(day + 120_000, 30.0, 30.0, 30.0, -1.0)
    with pytest.raises(ValueError, match="volume"):
        vwap.update(day + 120_000, 30.0, 30.0, 30.0, NAN)


def test_update_many_applies_the_bars_before_a_rejected_one() -> None:
    vol = RealizedVol(2)
    with pytest.raises(ValueError, match="prices > 0"):
        vol.update_many([1.0, 1.1, 1.2, 0.0, 1.3])
    sequential = RealizedVol(2)
    sequential.update_many([1.0, 1.1, 1.2])
    assert vol.snapshot() == sequential.snapshot()
    vwap = SessionVWAP()
    with pytest.raises(ValueError, match="volume"):
        vwap.update_many([0, 1, 2], [2.0, 3.0, 4.0], [1.0] * 3, [1.5] * 3, [1.0, 2.0, -1.0])
    assert vwap.ready
    assert vwap.std > 0.0


def test_update_many_rejects_sequences_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        ATR(3).update_many([1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="length"):
        ADX(3).update_many([1.0], [1.0], [])
    with pytest.raises(ValueError, match="length"):
        SessionVWAP().update_many([0], [1.0], [1.0], [1.0], [])
    with pytest.raises(ValueError, match="length"):
        WindowedMove(5).update_many([0, 1], [1.0])
