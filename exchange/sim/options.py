"""``SimOptions``: everything the simulator is built from, as plain values.

The ``[sim]`` config section (``config.sim``) and ``tradebus sim``'s flags map onto this; the
simulator itself depends on no config machinery. Defaults give the embedded venue of
``tradebus run``: BTCUSDT and ETHUSDT on both markets, a seeded synthetic market in real time
with 500 bars of history, a kline update every second, 10,000 USDT on each account, and one
HMAC test key that is public knowledge (``TEST_API_KEY``/``TEST_API_SECRET``) — this is a
simulator, the key guards nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final

from exchange.sim.auth import ApiCredential
from exchange.sim.matching import Fees, FillModel

__all__ = [
    "DEFAULT_PORT",
    "TEST_API_KEY",
    "TEST_API_SECRET",
    "SimOptions",
    "SymbolFeedOptions",
]

DEFAULT_PORT: Final = 8765
TEST_API_KEY: Final = "tradebus-sim-test-key-0000000000000000000000000000000000000000000000"
TEST_API_SECRET: Final = "tradebus-sim-test-secret-00000000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class SymbolFeedOptions:
    """Where one symbol's prices come from: a kline file (CSV, zip or Parquet) or, without
    one, the synthetic generator starting at ``start_price`` (the symbol's preset if None)."""

    klines_file: Path | None = None
    start_price: Decimal | None = None
    loop: bool = True


def _test_keys() -> tuple[ApiCredential, ...]:
    return (ApiCredential(TEST_API_KEY, "hmac", secret=TEST_API_SECRET),)


@dataclass(frozen=True, slots=True)
class SimOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: any free port
    seed: int = 42
    spot_symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    futures_symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    feeds: Mapping[str, SymbolFeedOptions] = field(default_factory=dict)
    interval: str = "1m"
    speed: float | None = 1.0  # None: as fast as the clients consume
    updates_per_bar: int = 60
    history_bars: int = 2000
    start_ms: int | None = None  # first bar of the synthetic market; None: history before now
    spot_balances: Mapping[str, Decimal] = field(
        default_factory=lambda: {"USDT": Decimal(10_000), "BNB": Decimal(0)}
    )
    futures_wallet: Mapping[str, Decimal] = field(default_factory=lambda: {"USDT": Decimal(10_000)})
    spot_fees: Fees = field(default_factory=lambda: Fees(Decimal("0.001"), Decimal("0.001")))
    futures_fees: Fees = field(default_factory=lambda: Fees(Decimal("0.0002"), Decimal("0.0005")))
    fill_model: FillModel = field(default_factory=FillModel)
    default_leverage: int = 20
    spread_ticks: int = 1
    api_keys: tuple[ApiCredential, ...] = field(default_factory=_test_keys)
    state_file: Path | None = None
    state_save_interval_s: float = 1.0
    fault_seed: int | None = None  # None: the market seed
