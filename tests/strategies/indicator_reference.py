"""Independent batch computations of every indicator, in NumPy and pandas.

Each function takes whole arrays and returns an array aligned with its input (one value per
bar or tick), NaN where the incremental indicator is documented as not ready. They follow
the definitions in the indicators' docstrings, but compute them the batch way — pandas
rolling windows and `ewm`, vectorised NumPy, groupby-day cumulative sums, brute-force windows
— so a shared implementation mistake is unlikely.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]
from numpy.lib.stride_tricks import sliding_window_view

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

DAY_MS = 86_400_000


def _nan(n: int) -> F64:
    return np.full(n, np.nan)


def _floats(column: pd.Series) -> F64:
    return np.asarray(column, dtype=np.float64)


def seeded_ewm(x: F64, n: int, alpha: float) -> F64:
    """``ewm(alpha, adjust=False)`` seeded with the mean of the first n values (at index n-1).

    Wilder smoothing ``(avg * (n - 1) + x) / n`` is this with alpha = 1/n; the TA-Lib EMA is
    this with alpha = 2/(n+1).
    """
    out = _nan(len(x))
    if len(x) < n:
        return out
    seeded = x[n - 1 :].copy()
    seeded[0] = x[:n].mean()
    out[n - 1 :] = _floats(pd.Series(seeded).ewm(alpha=alpha, adjust=False).mean())
    return out


def sma(x: F64, n: int) -> F64:
    return _floats(pd.Series(x).rolling(n).mean())


def ema(x: F64, n: int) -> F64:
    return seeded_ewm(x, n, 2.0 / (n + 1))


def rolling_std(x: F64, n: int, ddof: int) -> F64:
    """Two-pass std of every window.

    Not ``pandas.Series.rolling(n).std()``: its add/remove update never recomputes, so on
    prices of 1e5 with a few ticks of dispersion it drifts by up to 1e-7 relative (and misses
    exact zeros on flat stretches) — it would be the less accurate side of the comparison.
    """
    out = _nan(len(x))
    if len(x) >= n:
        out[n - 1 :] = sliding_window_view(x, n).std(axis=1, ddof=ddof)
    return out


def rolling_max(x: F64, n: int) -> F64:
    return _floats(pd.Series(x).rolling(n).max())


def rolling_min(x: F64, n: int) -> F64:
    return _floats(pd.Series(x).rolling(n).min())


def rsi(x: F64, n: int) -> F64:
    d = np.diff(x)
    avg_gain = seeded_ewm(np.where(d > 0, d, 0.0), n, 1.0 / n)
    avg_loss = seeded_ewm(np.where(d < 0, -d, 0.0), n, 1.0 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    value = np.where(avg_loss == 0.0, np.where(avg_gain > 0.0, 100.0, 50.0), value)
    value[np.isnan(avg_loss)] = np.nan
    out = _nan(len(x))
    out[1:] = value
    return out


def true_range(high: F64, low: F64, close: F64) -> F64:
    """TR per bar; the first bar (no previous close) is ``high - low``."""
    prev_close = np.concatenate([[np.nan], close[:-1]])
    ranges = np.stack([high - low, np.abs(high - prev_close), np.abs(low - prev_close)])
    tr = np.asarray(np.nanmax(ranges, axis=0), dtype=np.float64)
    tr[0] = high[0] - low[0]
    return tr


def atr(high: F64, low: F64, close: F64, n: int) -> F64:
    return seeded_ewm(true_range(high, low, close), n, 1.0 / n)


def adx(high: F64, low: F64, close: F64, n: int) -> dict[str, F64]:
    """ADX, +DI, -DI and the internal ATR, each aligned with the bars."""
    up = high[1:] - high[:-1]
    down = low[:-1] - low[1:]
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    tr = true_range(high, low, close)[1:]
    # Wilder sums / n are Wilder averages; the DI ratios are the same either way.
    avg_tr = seeded_ewm(tr, n, 1.0 / n)
    avg_pdm = seeded_ewm(plus_dm, n, 1.0 / n)
    avg_mdm = seeded_ewm(minus_dm, n, 1.0 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        plus_di = np.where(avg_tr > 0, 100.0 * avg_pdm / avg_tr, 0.0)
        minus_di = np.where(avg_tr > 0, 100.0 * avg_mdm / avg_tr, 0.0)
        di_sum = plus_di + minus_di
        dx = np.where(di_sum > 0, 100.0 * np.abs(plus_di - minus_di) / di_sum, 0.0)
    not_ready = np.isnan(avg_tr)
    plus_di[not_ready] = np.nan
    minus_di[not_ready] = np.nan
    adx_values = _nan(len(dx))
    if len(dx) >= n - 1:
        adx_values[n - 1 :] = seeded_ewm(dx[n - 1 :], n, 1.0 / n)

    def bars(values: F64) -> F64:
        out = _nan(len(high))
        out[1:] = values
        return out

    return {
        "adx": bars(adx_values),
        "plus_di": bars(plus_di),
        "minus_di": bars(minus_di),
        "atr": bars(avg_tr),
    }


def session_vwap(
    open_time_ms: I64, high: F64, low: F64, close: F64, volume: F64, band_mult: float
) -> dict[str, F64]:
    """VWAP by groupby-UTC-day cumulative sums; std by an exact two-pass sum per prefix."""
    typical = (high + low + close) / 3.0
    frame = pd.DataFrame({"day": open_time_ms // DAY_MS, "v": volume, "pv": volume * typical})
    cum = frame.groupby("day", sort=False)[["v", "pv"]].cumsum()
    cum_v = _floats(cum["v"])
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(cum_v > 0, _floats(cum["pv"]) / cum_v, np.nan)
    std = _nan(len(vwap))
    day = np.asarray(frame["day"], dtype=np.int64)
    session_start = 0
    for i in range(len(vwap)):
        if day[i] != day[session_start]:
            session_start = i
        if cum_v[i] > 0:
            v = volume[session_start : i + 1]
            dev = typical[session_start : i + 1] - vwap[i]
            std[i] = np.sqrt(np.sum(v * dev * dev) / np.sum(v))
    return {
        "vwap": vwap,
        "std": std,
        "upper": vwap + band_mult * std,
        "lower": vwap - band_mult * std,
    }


def realized_vol(x: F64, n: int, periods_per_year: float | None) -> F64:
    r = np.log(x[1:] / x[:-1])
    mean_square = _floats(pd.Series(r * r).rolling(n).mean())
    factor = 1.0 if periods_per_year is None else np.sqrt(periods_per_year)
    out = _nan(len(x))
    out[1:] = np.sqrt(mean_square) * factor
    return out


def windowed_move(ts_ms: I64, price: F64, window_ms: int) -> F64:
    """Brute force: every tick's trailing window sliced out with `searchsorted`."""
    out = _nan(len(price))
    for i in range(len(price)):
        if ts_ms[i] - ts_ms[0] < window_ms:
            continue
        start = np.searchsorted(ts_ms, ts_ms[i] - window_ms, side="right")
        window = price[start : i + 1]
        out[i] = (window.max() - window.min()) / price[i]
    return out
