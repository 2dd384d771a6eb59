"""``[strategies.run.trade]``: trade management for one strategy instance — how its entries are
screened and sized, and how its positions are closed.

Every part is optional; without the table the strategy's signals go out as they are::

    [strategies.run.trade]
    capital = "10000"            # quote-asset equity allocated to this instance

    [strategies.run.trade.exits]
    combine = "first_triggered"  # or "highest_priority" (each rule's `priority`)
    [[strategies.run.trade.exits.rules]]
    type = "fixed"               # fixed | trailing | volatility | time
    stop_loss_pct = 1.0
    take_profit_pct = 2.0

    [strategies.run.trade.sizer]
    type = "fixed_fraction"      # fixed_fraction | kelly | volatility_target | risk_parity
    fraction = 0.1               #   | signal_strength

    [[strategies.run.trade.filters]]
    type = "regime"              # regime | volatility_band | drawdown_pause | correlation
    allow = "trend"              #   | time_window

    [strategies.run.trade.model]  # consulted before sizing; see strategies/models
    file = "config/models/entry_logistic.json"

    [strategies.run.trade.meta_label]  # detector confidence x validator probability
    validator_file = "config/models/entry_logistic.json"
    min_probability = 0.5

The shapes and ranges are checked here; that a model file loads and that the parts accept
their parameters together is checked when the daemon is assembled (and by ``config check``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from config.fields import SECTION_CONFIG, SettingsIssues

__all__ = [
    "ExitRuleSettings",
    "ExitsSettings",
    "FilterSettings",
    "MetaLabelSettings",
    "ModelSettings",
    "SizerSettings",
    "TradeSettings",
]

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
RuleName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


class _Part(BaseModel):
    model_config = SECTION_CONFIG


# -- exits -------------------------------------------------------------------------------------
class FixedExitSettings(_Part):
    type: Literal["fixed"]
    name: RuleName | None = None
    priority: int = 0
    take_profit_pct: Positive | None = None
    stop_loss_pct: Positive | None = None
    take_profit_price: Positive | None = None
    stop_loss_price: Positive | None = None

    @model_validator(mode="after")
    def _one_form_each(self) -> FixedExitSettings:
        issues = []
        if self.take_profit_pct is not None and self.take_profit_price is not None:
            issues.append(("take_profit_price", "give take_profit_pct or take_profit_price"))
        if self.stop_loss_pct is not None and self.stop_loss_price is not None:
            issues.append(("stop_loss_price", "give stop_loss_pct or stop_loss_price"))
        if all(
            v is None
            for v in (
                self.take_profit_pct,
                self.stop_loss_pct,
                self.take_profit_price,
                self.stop_loss_price,
            )
        ):
            issues.append(("stop_loss_pct", "a fixed exit needs a take-profit or a stop-loss"))
        if issues:
            raise SettingsIssues(tuple(issues))
        return self


class TrailingExitSettings(_Part):
    type: Literal["trailing"]
    name: RuleName | None = None
    priority: int = 0
    trail_pct: Positive | None = None
    atr_mult: Positive | None = None
    activation_pct: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_distance(self) -> TrailingExitSettings:
        if (self.trail_pct is None) == (self.atr_mult is None):
            raise SettingsIssues((("trail_pct", "give exactly one of trail_pct and atr_mult"),))
        return self


class VolatilityExitSettings(_Part):
    type: Literal["volatility"]
    name: RuleName | None = None
    priority: int = 0
    tp_atr: Positive = 3.0
    sl_atr: Positive = 2.0
    # fixed: the ATR at entry for the whole trade; dynamic: the latest ATR on every bar
    mode: Literal["fixed", "dynamic"] = "fixed"


class TimeExitSettings(_Part):
    type: Literal["time"]
    name: RuleName | None = None
    priority: int = 0
    max_bars: Annotated[int, Field(ge=1)] | None = None
    max_hold_minutes: Positive | None = None

    @model_validator(mode="after")
    def _a_limit(self) -> TimeExitSettings:
        if self.max_bars is None and self.max_hold_minutes is None:
            raise SettingsIssues((("max_bars", "give max_bars or max_hold_minutes"),))
        return self


ExitRuleSettings = Annotated[
    FixedExitSettings | TrailingExitSettings | VolatilityExitSettings | TimeExitSettings,
    Field(discriminator="type"),
]


class ExitsSettings(_Part):
    combine: Literal["first_triggered", "highest_priority"] = "first_triggered"
    rules: Annotated[tuple[ExitRuleSettings, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> ExitsSettings:
        names = [rule.name or rule.type for rule in self.rules]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise SettingsIssues(
                    ((f"rules.{index}.name", f"{name!r} is used twice: give each a `name`"),)
                )
        return self


# -- sizers ------------------------------------------------------------------------------------
class FixedFractionSettings(_Part):
    type: Literal["fixed_fraction"]
    fraction: Fraction


class KellySettings(_Part):
    type: Literal["kelly"]
    fraction: Fraction = 0.5  # fractional Kelly: this share of the full Kelly bet
    cap: Fraction = 0.25  # never more than this share of equity
    window: Annotated[int, Field(ge=2)] = 50  # closed trades the win rate and payoff use
    min_trades: Annotated[int, Field(ge=1)] = 20
    fallback_fraction: Annotated[float, Field(ge=0, le=1)] = 0.01  # until min_trades exist

    @model_validator(mode="after")
    def _window_holds_min(self) -> KellySettings:
        if self.min_trades > self.window:
            raise SettingsIssues((("min_trades", "must not exceed window"),))
        return self


class VolatilityTargetSettings(_Part):
    type: Literal["volatility_target"]
    target_vol: Positive = 0.20  # annualised
    max_leverage: Positive = 1.0


class RiskParitySettings(_Part):
    type: Literal["risk_parity"]
    gross_fraction: Fraction = 1.0


class SignalStrengthSettings(_Part):
    type: Literal["signal_strength"]
    base_fraction: Fraction
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.0


SizerSettings = Annotated[
    FixedFractionSettings
    | KellySettings
    | VolatilityTargetSettings
    | RiskParitySettings
    | SignalStrengthSettings,
    Field(discriminator="type"),
]


# -- entry filters -------------------------------------------------------------------------------
class _FilterPart(_Part):
    # Names the filter in refusal reasons, counters and saved state; default: its type.
    name: RuleName | None = None


class RegimeFilterSettings(_FilterPart):
    type: Literal["regime"]
    allow: Literal["trend", "range"]
    adx_threshold: Positive = 25.0


class VolatilityBandSettings(_FilterPart):
    type: Literal["volatility_band"]
    metric: Literal["atr_pct", "annualised_vol"] = "atr_pct"
    minimum: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    maximum: Positive | None = None

    @model_validator(mode="after")
    def _a_band(self) -> VolatilityBandSettings:
        if self.minimum is None and self.maximum is None:
            raise SettingsIssues((("minimum", "give minimum, maximum or both"),))
        if self.minimum is not None and self.maximum is not None and self.minimum >= self.maximum:
            raise SettingsIssues((("maximum", "must be above minimum"),))
        return self


class DrawdownPauseSettings(_FilterPart):
    type: Literal["drawdown_pause"]
    max_drawdown_pct: Annotated[float, Field(gt=0, lt=100)]
    pause_minutes: Positive = 1440.0


class CorrelationFilterSettings(_FilterPart):
    type: Literal["correlation"]
    max_correlation: Annotated[float, Field(gt=-1, lt=1)] = 0.7
    min_overlap: Annotated[int, Field(ge=3)] = 30
    when_unknown: Literal["refuse", "allow"] = "refuse"


class TimeWindowSettings(_FilterPart):
    type: Literal["time_window"]
    days: tuple[str, ...] | None = None  # "mon".."sun"; unset: every day
    hours: tuple[str, ...] = ()  # "08:00-16:30" in UTC, end exclusive, may wrap midnight


FilterSettings = Annotated[
    RegimeFilterSettings
    | VolatilityBandSettings
    | DrawdownPauseSettings
    | CorrelationFilterSettings
    | TimeWindowSettings,
    Field(discriminator="type"),
]


# -- model hook and meta-labelling -----------------------------------------------------------------
class ModelSettings(_Part):
    file: Path
    # A WAIT decision keeps the entry for re-decision on the symbol's next bars, this many.
    max_wait_bars: Annotated[int, Field(ge=1, le=1000)] = 3


class MetaLabelSettings(_Part):
    validator_file: Path
    min_probability: Annotated[float, Field(ge=0, le=1)] = 0.5


class TradeSettings(_Part):
    capital: Annotated[Decimal, Field(gt=0)]
    atr_period: Annotated[int, Field(ge=1, le=10_000)] = 14
    adx_period: Annotated[int, Field(ge=2, le=10_000)] = 14
    # Log returns kept per symbol: volatility, correlation.
    returns_lookback: Annotated[int, Field(ge=3, le=100_000)] = 100
    # Closed trades remembered (Kelly's window must fit).
    trade_history: Annotated[int, Field(ge=1, le=100_000)] = 500
    exits: ExitsSettings | None = None
    sizer: SizerSettings | None = None
    filters: tuple[FilterSettings, ...] = ()
    model: ModelSettings | None = None
    meta_label: MetaLabelSettings | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TradeSettings:
        issues: list[tuple[str, str]] = []
        if self.model is not None and self.sizer is None:
            issues.append(("sizer", "the model's REDUCE_SIZE needs a sizer to reduce"))
        if isinstance(self.sizer, KellySettings) and self.sizer.window > self.trade_history:
            issues.append(("sizer.window", "must not exceed trade_history"))
        names: list[str] = []
        for index, item in enumerate(self.filters):
            name = item.name or item.type
            if name in names:
                issues.append((f"filters.{index}.name", f"{name!r} is used twice"))
            names.append(name)
            if (
                isinstance(item, CorrelationFilterSettings)
                and item.min_overlap > self.returns_lookback
            ):
                issues.append((f"filters.{index}.min_overlap", "must not exceed returns_lookback"))
        if issues:
            raise SettingsIssues(tuple(issues))
        return self
