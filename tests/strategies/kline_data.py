"""Kline series for the indicator tests: the recorded Binance files and a synthetic generator.

Recorded files (under the `kline_fixtures` folder) are Binance's public kline CSVs: columns
open_time, open, high, low, close, volume, close_time, quote_volume, count, ... The USD-M
files have a header row, the Spot and the nautilus ADABTC ones don't; the header is detected
from the first line. Files of one symbol, market and interval are concatenated in time order,
so a series crosses UTC midnight where the recording spans two days.

`synthetic_bars` is a seeded random walk with regimes (trend, chop, volatility bursts, flat
stretches with identical prices), zero-volume bars and time gaps that cross UTC midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Bars:
    name: str
    open_time_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64

    def __len__(self) -> int:
        return len(self.close)


def _read_csv(path: Path) -> npt.NDArray[np.float64]:
    first = path.read_text().split("\n", 1)[0]
    skip = 0 if first[:1].isdigit() else 1
    # Only the first six columns matter; open_time (ms since 1970) is exact in a float64.
    return np.loadtxt(path, delimiter=",", skiprows=skip, usecols=range(6), ndmin=2)


def _bars_from_rows(name: str, rows: npt.NDArray[np.float64]) -> Bars:
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    return Bars(
        name=name,
        open_time_ms=rows[:, 0].astype(np.int64),
        open=rows[:, 1].copy(),
        high=rows[:, 2].copy(),
        low=rows[:, 3].copy(),
        close=rows[:, 4].copy(),
        volume=rows[:, 5].copy(),
    )


def recorded_kline_files(kline_fixtures: Path) -> list[Path]:
    files = sorted((kline_fixtures / "live_trading_indicators" / "extracted").glob("*/*.csv"))
    return files + sorted((kline_fixtures / "nautilus").glob("ADABTC-1m-*.csv"))


def load_recorded_series(kline_fixtures: Path) -> list[Bars]:
    """One `Bars` per market/symbol/interval, its day files concatenated in time order."""
    groups: dict[str, list[npt.NDArray[np.float64]]] = {}
    for path in recorded_kline_files(kline_fixtures):
        series = re.sub(r"-\d{4}-\d{2}-\d{2}$", "", path.stem)  # drop the date
        groups.setdefault(f"{path.parent.name}/{series}", []).append(_read_csv(path))
    return [_bars_from_rows(name, np.concatenate(parts)) for name, parts in groups.items()]


def synthetic_bars(
    seed: int,
    n: int = 1500,
    *,
    price0: float = 100.0,
    interval_ms: int = _MINUTE_MS,
    start_ms: int = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000 + 22 * _HOUR_MS,
) -> Bars:
    """A seeded OHLCV walk around `price0` starting two hours before a UTC midnight."""
    rng = np.random.default_rng(seed)
    tick = price0 * 1e-4  # prices sit on a tick grid so equal values and zero moves occur
    closes = np.empty(n)
    opens = np.empty(n)
    highs = np.empty(n)
    lows = np.empty(n)
    volumes = np.empty(n)
    times = np.empty(n, dtype=np.int64)
    t = start_ms
    log_p = 0.0
    i = 0
    while i < n:
        length = int(rng.integers(5, 120))
        regime = rng.choice(["trend", "chop", "burst", "flat", "quiet"])
        drift = rng.normal(0.0, 5e-4) if regime == "trend" else 0.0
        sigma = {"trend": 1e-3, "chop": 2e-3, "burst": 1e-2, "flat": 0.0, "quiet": 1e-4}[regime]
        for _ in range(min(length, n - i)):
            prev = float(np.exp(log_p))
            log_p += drift + sigma * rng.normal()
            log_p = float(np.clip(log_p, -2.0, 2.0))  # stay within the chosen price scale
            o = round(prev * price0 / tick) * tick
            c = round(float(np.exp(log_p)) * price0 / tick) * tick
            wick = abs(rng.normal(0.0, sigma)) * price0
            hi = round((max(o, c) + wick) / tick) * tick
            lo = round((min(o, c) - wick * rng.random()) / tick) * tick
            lo = max(lo, tick)
            if regime == "flat":
                o = hi = lo = c
            vol = float(rng.lognormal(3.0, 1.0))
            if (regime == "flat" and rng.random() < 0.5) or rng.random() < 0.05:
                vol = 0.0
            opens[i], highs[i], lows[i], closes[i], volumes[i] = o, hi, lo, c, vol
            times[i] = t
            t += interval_ms
            if rng.random() < 0.01:  # an outage: skip up to ten hours, often across midnight
                t += int(rng.integers(1, 600)) * _MINUTE_MS
            i += 1
    return Bars(f"synthetic-{seed}-{price0:g}", times, opens, highs, lows, closes, volumes)


def constant_bars(n: int, price: float, volume: float = 1.0) -> Bars:
    """Identical bars, one per minute, crossing a UTC midnight."""
    times = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * _MINUTE_MS
    full = np.full(n, price)
    return Bars(
        f"constant-{price:g}",
        times,
        full,
        full.copy(),
        full.copy(),
        full.copy(),
        np.full(n, volume),
    )
