"""Per-bar cost of the reference strategies, including every indicator they use.

Feeds 1,000,000 closed 1m klines (a seeded random walk that alternates ranging and trending
regimes, starting at a UTC midnight) through `StrategyRunner.on_kline` — the exact path the
live worker, the backtest and the parity tests use: symbol and order checks, timing, the
strategy's `on_bar` with its indicators, and signal stamping. Bars are generated in chunks
outside the timed region.

Targets (issue 5): vwap_reversion <= 10 us/bar, momentum <= 5 us/bar.

    python bench/strategies.py [--bars N]
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import Kline
from strategies.registry import load_registry
from strategies.runner import StrategyRunner

DAY_MS = 86_400_000
START_MS = 1_600_000_000_000 - 1_600_000_000_000 % DAY_MS
CHUNK = 50_000
TARGETS_US = {"vwap_reversion": 10.0, "momentum": 5.0}


class Walk:
    """Seeded price path: regimes of 50-400 bars, ranging (mean-reverting) or trending."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.price = 30_000.0
        self.index = 0
        self.regime_left = 0
        self.drift = 0.0
        self.anchor = self.price

    def bars(self, count: int) -> list[Kline]:
        rng = self.rng
        out: list[Kline] = []
        for _ in range(count):
            if self.regime_left == 0:
                self.regime_left = rng.randint(50, 400)
                self.drift = rng.choice((0.0, 0.0, 0.0004, -0.0004))
                self.anchor = self.price
            self.regime_left -= 1
            pull = 0.05 * (self.anchor - self.price) / self.price if self.drift == 0 else 0.0
            step = self.drift + pull + rng.gauss(0.0, 0.0015)
            open_ = self.price
            close = max(open_ * math.exp(step), 1.0)
            wiggle = abs(rng.gauss(0.0, 0.0008))
            high = max(open_, close) * (1 + wiggle)
            low = min(open_, close) * (1 - wiggle)
            volume = 50 + rng.random() * 150
            open_ms = START_MS + self.index * 60_000
            out.append(
                Kline(
                    "BTCUSDT", "1m", open_ms, open_ms + 59_999,
                    Decimal(f"{open_:.2f}"), Decimal(f"{high:.2f}"), Decimal(f"{low:.2f}"),
                    Decimal(f"{close:.2f}"), Decimal(f"{volume:.4f}"), Decimal(0), 100, True,
                )
            )  # fmt: skip
            self.price = close
            self.index += 1
        return out


def measure(name: str, total: int, seed: int) -> tuple[float, int, float]:
    cls = load_registry().get(name)
    runner = StrategyRunner(cls, cls.params_model(), instance=name, symbol="BTCUSDT", interval="1m")
    walk = Walk(seed)
    on_kline = runner.on_kline
    signals = 0
    elapsed_ns = 0
    done = 0
    while done < total:
        chunk = walk.bars(min(CHUNK, total - done))
        gc.collect()
        started = time.perf_counter_ns()
        for bar in chunk:
            emitted = on_kline(bar)
            if emitted:
                signals += len(emitted)
        elapsed_ns += time.perf_counter_ns() - started
        done += len(chunk)
    assert runner.failure is None, runner.failure
    inside_us = runner.stats.busy_ns / total / 1e3
    return elapsed_ns / total / 1e3, signals, inside_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(f"{args.bars:,} closed 1m bars per strategy, Python {sys.version.split()[0]}")
    print(f"{'strategy':<16}{'us/bar':>9}{'in on_bar':>11}{'signals':>9}{'target':>9}  verdict")
    for name, target in TARGETS_US.items():
        per_bar, signals, inside = measure(name, args.bars, args.seed)
        verdict = "PASS" if per_bar <= target else "MISS"
        print(f"{name:<16}{per_bar:>9.2f}{inside:>11.2f}{signals:>9,}{target:>9.1f}  {verdict}")


if __name__ == "__main__":
    main()
