"""Closed klines for the strategy tests: the simulator's seeded synthetic market (the same
generator the daemon trades against offline) and conversions of the recorded series."""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from app.domain import Kline
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
