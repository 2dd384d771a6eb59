"""Cost of trade management on the hot path: per closed bar (market statistics, equity, exit
rules over open positions) and per entry decision (meta-label, filters, model, sizer).

No target is set by an issue; the figures show what `[strategies.run.trade]` adds to a
strategy's per-bar cost (compare `bench/strategies.py`).

    python bench/trade.py [--bars N] [--positions K]
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import Fill, Kline, OrderStatus, OrderType, OrderUpdated, Side, SignalAction
from config.trade import TradeSettings
from strategies.context import StrategyContext
from strategies.trade.factory import build_trade_manager

STEP = 60_000
START_MS = 1_600_000_000_000 - 1_600_000_000_000 % STEP
MODEL = Path(__file__).resolve().parents[1] / "config" / "models" / "entry_logistic.json"

SETTINGS = {
    "capital": "10000",
    "sizer": {"type": "volatility_target", "target_vol": 0.2},
    "exits": {
        "rules": [
            {"type": "trailing", "atr_mult": 1000.0, "activation_pct": 1.0},
            {"type": "fixed", "stop_loss_pct": 50.0},
            {"type": "volatility", "tp_atr": 400.0, "sl_atr": 400.0, "mode": "dynamic"},
            {"type": "time", "max_bars": 10_000_000},
        ]
    },
    "filters": [
        {"type": "regime", "allow": "trend", "adx_threshold": 0.0001},
        {"type": "volatility_band", "metric": "atr_pct", "maximum": 100.0},
        {"type": "drawdown_pause", "max_drawdown_pct": 99.0},
        {"type": "correlation", "max_correlation": 0.9},
        {"type": "time_window"},
    ],
    "model": {"file": str(MODEL)},
}


def bars(count: int, seed: int, symbol: str) -> list[Kline]:
    rng = random.Random(seed)
    price = 100.0
    out = []
    for n in range(count):
        opened = START_MS + n * STEP
        close = max(1.0, price * (1 + rng.gauss(0.0002, 0.002)))
        high, low = max(price, close) * 1.001, min(price, close) * 0.999
        out.append(
            Kline(
                symbol,
                "1m",
                opened,
                opened + STEP - 1,
                Decimal(f"{price:.4f}"),
                Decimal(f"{high:.4f}"),
                Decimal(f"{low:.4f}"),
                Decimal(f"{close:.4f}"),
                Decimal(1),
                Decimal(close),
                1,
                True,
            )
        )
        price = close
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--positions", type=int, default=5)
    args = parser.parse_args()
    # Quiet: the figures, not one log line per refusal or exit.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = TradeSettings.model_validate(SETTINGS)
    symbols = ["BTCUSDT", "ETHUSDT"]
    trade = build_trade_manager(settings, instance="b", symbols=symbols, interval_ms=STEP)
    ctx = StrategyContext(strategy="b", symbol="BTCUSDT", interval="1m")
    paths = [bars(args.bars + 500, seed, symbol) for seed, symbol in enumerate(symbols)]
    for path in paths:
        trade.on_history(path[:500])
    # K open ETHUSDT positions (independent walk: the correlation filter lets BTC entries
    # through) so the exit rules have work on every ETHUSDT bar.
    opened_ms = paths[1][499].close_time_ms
    for k in range(args.positions):
        fill = Fill(
            k + 1,
            f"c{k}",
            "ETHUSDT",
            Side.BUY,
            Decimal(f"{paths[1][499].close}"),
            Decimal("0.01"),
            Decimal(0),
            "USDT",
            False,
            opened_ms + k,
        )
        trade.on_order(
            OrderUpdated(
                f"c{k}",
                "ETHUSDT",
                Side.BUY,
                OrderType.MARKET,
                OrderStatus.FILLED,
                Decimal("0.01"),
                Decimal("0.01"),
                fill.ts_ms,
                fill=fill,
            )
        )
    live = [bar for pair in zip(paths[0][500:], paths[1][500:], strict=True) for bar in pair]
    gc.collect()
    started = time.perf_counter_ns()
    exits = 0
    for bar in live:
        exits += len(trade.on_bar(bar, ctx))
    per_bar_us = (time.perf_counter_ns() - started) / len(live) / 1e3

    decisions = 2_000
    started = time.perf_counter_ns()
    sent = 0
    for n in range(decisions):
        ctx.now_ms = live[-1].close_time_ms + n
        signal = ctx.make_signal(SignalAction.ENTER_LONG, "bench")
        out, _ = trade.on_signals([signal], ctx)
        sent += len(out)
        trade.pending_entries.clear()  # measure the decision, not a growing book
        trade.waiting.clear()
    per_entry_us = (time.perf_counter_ns() - started) / decisions / 1e3
    print(f"bars: {len(live):,} over 2 symbols; open positions: {args.positions}; exits: {exits}")
    print(
        f"trade management per closed bar (4 exit rules, {args.positions} positions on one "
        "symbol): "
        f"{per_bar_us:.2f} us"
    )
    print(
        f"entry decision (5 filters + logistic model + volatility-target sizer): "
        f"{per_entry_us:.1f} us ({sent} of {decisions} sent)"
    )


if __name__ == "__main__":
    main()
