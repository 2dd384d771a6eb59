"""Closed klines for the strategy tests: the simulator's seeded synthetic market (the same
generator the daemon trades against offline) and conversions of the recorded series."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import cache

from app.domain import Kline, Signal, SignalAction
from exchange.sim.synthetic import SyntheticMarket
from tests.strategies.kline_data import Bars

DAY_MS = 86_400_000
# A UTC midnight, so a series starts on a session boundary (VWAP is anchored to the UTC day).
SESSION_START_MS = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS


@cache
def synthetic_klines(
    count: int, *, seed: int = 3, symbol: str = "BTCUSDT", start_ms: int = SESSION_START_MS
) -> tuple[Kline, ...]:
    market = SyntheticMarket(
        symbol,
        seed=seed,
        start_price=Decimal("30000"),
        tick_size=Decimal("0.01"),
        start_ms=start_ms,
    )
    return tuple(market.next_bar() for _ in range(count))


def klines_from(bars: Bars, *, symbol: str = "BTCUSDT", interval: str = "1m") -> list[Kline]:
    step = int(bars.open_time_ms[1] - bars.open_time_ms[0]) if len(bars) > 1 else 60_000
    return [
        Kline(
            symbol,
            interval,
            int(bars.open_time_ms[i]),
            int(bars.open_time_ms[i]) + step - 1,
            Decimal(repr(float(bars.open[i]))),
            Decimal(repr(float(bars.high[i]))),
            Decimal(repr(float(bars.low[i]))),
            Decimal(repr(float(bars.close[i]))),
            Decimal(repr(float(bars.volume[i]))),
            Decimal(0),
            0,
            True,
        )
        for i in range(len(bars))
    ]


# Interval names of the recorded series, by bar length in ms.
INTERVAL_NAMES = {60_000: "1m", 300_000: "5m", 3_600_000: "1h"}
_EXIT_OF = {
    SignalAction.ENTER_LONG: SignalAction.EXIT_LONG,
    SignalAction.ENTER_SHORT: SignalAction.EXIT_SHORT,
}


def assert_alternates(signals: Sequence[Signal]) -> None:
    """Entry, exit of that side, entry, ...: never two entries without an exit between."""
    open_entry: SignalAction | None = None
    for signal in signals:
        if open_entry is None:
            assert signal.action in _EXIT_OF, f"exit without an entry: {signal}"
            open_entry = signal.action
        else:
            assert signal.action is _EXIT_OF[open_entry], f"after {open_entry}: {signal}"
            open_entry = None
