"""The ``[strategies]`` section: which strategies run on which symbols, and how their state is
kept across restarts.

One ``[[strategies.run]]`` table per strategy instance::

    [[strategies.run]]
    strategy = "vwap_reversion"        # registry name (`tradebus strategies list`)
    name = "vwap_majors"               # instance name: its signals go to signal.vwap_majors
    symbols = ["BTCUSDT", "ETHUSDT"]   # one copy per symbol; default: all exchange.symbols
    interval = "1m"                    # default: the first of exchange.kline_intervals
    params = { band_mult = 2.0 }       # validated against the strategy's parameter model

    [strategies.run.trade]             # optional: exits, sizing, filters (config/trade.py)
    capital = "10000"

Parameters are checked against the strategy's own model when the daemon is assembled (and by
``tradebus config check``), because only the strategy registry knows them; that the symbols
and interval are streamed is checked here, against ``[exchange]``, by the settings root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, model_validator

from config.exchange import KlineInterval, Symbol
from config.fields import SECTION_CONFIG, OptionalPath, SettingsIssues, split_list
from config.trade import TradeSettings

__all__ = ["StrategiesSettings", "StrategyRunSettings"]

# One channel token: the instance name becomes `signal.<name>`.
InstanceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,48}$")]


class StrategyRunSettings(BaseModel):
    """One strategy instance: a registered strategy, its symbols and its parameters."""

    model_config = SECTION_CONFIG

    strategy: InstanceName
    name: InstanceName | None = None
    # Unset: every symbol of exchange.symbols.
    symbols: (
        Annotated[tuple[Symbol, ...], BeforeValidator(split_list), Field(min_length=1)] | None
    ) = None
    interval: KlineInterval | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    # Exits, sizing, entry filters and the model hook (`config/trade.py`); unset: none.
    trade: TradeSettings | None = None

    @property
    def instance(self) -> str:
        return self.name or self.strategy

    @model_validator(mode="after")
    def _unique_symbols(self) -> StrategyRunSettings:
        if self.symbols is not None and len(set(self.symbols)) != len(self.symbols):
            raise SettingsIssues((("symbols", "contains duplicates"),))
        return self


class StrategiesSettings(BaseModel):
    """Strategy workers (``strategies``)."""

    model_config = SECTION_CONFIG

    run: tuple[StrategyRunSettings, ...] = ()
    # Where warm-up history comes from before the first live bar: the exchange's klines
    # endpoint, or nowhere (strategies then warm up on live bars, signalling nothing until
    # they have seen their declared warm-up).
    history: Literal["exchange", "none"] = "exchange"
    # Save strategy state in the database, so a restart continues instead of warming up again.
    snapshots: bool = True
    # Where versions before the database kept them: read once, while the database holds no
    # snapshot of an instance (an upgrade). Empty: nothing to import.
    snapshot_file: OptionalPath = Path("status/strategy_state.json")
    snapshot_interval_s: float = Field(default=60.0, gt=0)
    # A saved state older than this many bars is discarded for a full warm-up from history.
    max_catch_up_bars: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _unique_instances(self) -> StrategiesSettings:
        seen: dict[str, int] = {}
        issues: list[tuple[str, str]] = []
        for index, run in enumerate(self.run):
            if run.instance in seen:
                issues.append(
                    (
                        f"run.{index}.name",
                        f"instance name {run.instance!r} is already used by "
                        f"run.{seen[run.instance]} (set a distinct `name`)",
                    )
                )
            else:
                seen[run.instance] = index
        if issues:
            raise SettingsIssues(tuple(issues))
        return self
