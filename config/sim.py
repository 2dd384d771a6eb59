"""The ``[sim]`` section: the built-in Binance-compatible simulator (``exchange.sim``).

Used when ``exchange.venue = "sim"`` (the default: ``tradebus run`` with no config trades
against it, offline) and by ``tradebus sim``. It always listens on a loopback address: the
simulator is a test venue with a public test key, never a service for other machines.
Symbols default to ``exchange.symbols``; prices come from ``klines_files`` where given, else
from the seeded synthetic generator.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, field_validator
from pydantic_settings import NoDecode

from config.exchange import KlineInterval, Symbol
from config.fields import SECTION_CONFIG, OptionalPath, split_list

__all__ = ["SimSettings"]

Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
FeeRate = Annotated[Decimal, Field(ge=0, le=Decimal("0.01"), allow_inf_nan=False)]
Asset = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,12}$")]
Price = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


def _default_balances() -> dict[str, Decimal]:
    return {"USDT": Decimal(10_000)}


class SimSettings(BaseModel):
    """The simulator (``sim``)."""

    model_config = SECTION_CONFIG

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)  # 0: any free port (tests)
    seed: int = Field(default=42, ge=0)
    # Empty: the daemon's exchange.symbols on both markets.
    spot_symbols: Annotated[tuple[Symbol, ...], NoDecode, BeforeValidator(split_list)] = ()
    futures_symbols: Annotated[tuple[Symbol, ...], NoDecode, BeforeValidator(split_list)] = ()
    interval: KlineInterval = "1m"
    # Simulated seconds per real second; "max": as fast as the connected clients read.
    speed: float | Literal["max"] = 1.0
    updates_per_bar: int = Field(default=60, ge=1, le=3600)
    history_bars: int = Field(default=2000, ge=0, le=100_000)
    klines_files: dict[Symbol, Path] = Field(default_factory=dict)
    start_prices: dict[Symbol, Price] = Field(default_factory=dict)
    spot_balances: dict[Asset, Amount] = Field(default_factory=_default_balances)
    futures_wallet_usdt: Amount = Decimal(10_000)
    spot_maker_fee: FeeRate = Decimal("0.001")
    spot_taker_fee: FeeRate = Decimal("0.001")
    futures_maker_fee: FeeRate = Decimal("0.0002")
    futures_taker_fee: FeeRate = Decimal("0.0005")
    slippage_bps: Annotated[Decimal, Field(ge=0, le=1000, allow_inf_nan=False)] = Decimal(2)
    # Share of the market's traded volume a resting order may fill when price only touches it.
    participation: Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)] = Decimal("0.25")
    default_leverage: int = Field(default=20, ge=1, le=125)
    # Ed25519 test keys besides the built-in HMAC one: API key -> PEM public key file, so a
    # client configured with key_type "ed25519" can be tried against the simulator.
    ed25519_keys: dict[Annotated[str, StringConstraints(min_length=8, max_length=128)], Path] = (
        Field(default_factory=dict)
    )
    # Where the simulator keeps its market position and accounts between runs (none: forget).
    state_file: OptionalPath = Path("status/sim_state.json")
    state_save_interval_s: float = Field(default=1.0, gt=0, le=3600)

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if value == "localhost":
            return value
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be a loopback IP address (e.g. 127.0.0.1)") from None
        if not address.is_loopback:
            raise ValueError("the simulator only listens on loopback (127.0.0.0/8 or ::1)")
        return value

    @field_validator("speed")
    @classmethod
    def _positive_speed(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and not 0 < value <= 10_000:
            raise ValueError('must be above 0 and at most 10000, or "max"')
        return value

    @field_validator("klines_files", "ed25519_keys")
    @classmethod
    def _files_exist(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name, path in value.items():
            if not path.is_file():
                raise ValueError(f"{name}: no such file {path}")
        return value
