"""Builds an instance's trade management from its `[strategies.run.trade]` settings.

The settings have checked shapes and ranges; what only the parts themselves know (a model
file that does not load, a window the filter rejects) surfaces here as `ValueError` naming
the field, which the daemon's assembly reports like any other configuration error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

from config.trade import (
    CorrelationFilterSettings,
    DrawdownPauseSettings,
    ExitRuleSettings,
    ExitsSettings,
    FilterSettings,
    FixedExitSettings,
    FixedFractionSettings,
    KellySettings,
    RegimeFilterSettings,
    RiskParitySettings,
    SignalStrengthSettings,
    SizerSettings,
    TimeExitSettings,
    TimeWindowSettings,
    TradeSettings,
    TrailingExitSettings,
    VolatilityBandSettings,
    VolatilityTargetSettings,
)
from strategies.exits import (
    Combine,
    CompositeExit,
    ExitRule,
    FixedExit,
    TimeExit,
    TrailingStop,
    VolatilityExit,
)
from strategies.filters import (
    CorrelationFilter,
    DrawdownPause,
    RegimeFilter,
    TimeWindow,
    VolatilityBand,
)
from strategies.models.logistic import LogisticModel
from strategies.sizing import FixedFraction, Kelly, RiskParity, SignalStrength, VolatilityTarget
from strategies.trade.entry import MetaLabel, ModelEntryRule, SizedEntry
from strategies.trade.manager import MarketSettings, TradeManager
from strategies.trade.state import EntryFilter, PositionSizer

__all__ = ["TradeConfigError", "build_trade_manager", "trade_manager_factory"]

T = TypeVar("T")


class TradeConfigError(ValueError):
    """A trade-management part refused its settings; `field` is relative to the trade table."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _built(field: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except ValueError as exc:  # ModelLoadError included
        raise TradeConfigError(field, str(exc)) from exc


def build_exit_rule(settings: ExitRuleSettings) -> ExitRule:
    name = settings.name or settings.type
    if isinstance(settings, FixedExitSettings):
        return FixedExit(
            name=name,
            take_profit_pct=settings.take_profit_pct,
            stop_loss_pct=settings.stop_loss_pct,
            take_profit_price=settings.take_profit_price,
            stop_loss_price=settings.stop_loss_price,
        )
    if isinstance(settings, TrailingExitSettings):
        return TrailingStop(
            name=name,
            trail_pct=settings.trail_pct,
            atr_mult=settings.atr_mult,
            activation_pct=settings.activation_pct,
        )
    if isinstance(settings, TimeExitSettings):
        hold_ms = settings.max_hold_minutes
        return TimeExit(
            name=name,
            max_bars=settings.max_bars,
            max_hold_ms=None if hold_ms is None else round(hold_ms * 60_000),
        )
    return VolatilityExit(
        name=name, tp_atr=settings.tp_atr, sl_atr=settings.sl_atr, mode=settings.mode
    )


def build_exits(settings: ExitsSettings) -> ExitRule:
    rules = []
    for index, rule_settings in enumerate(settings.rules):
        try:
            rules.append(build_exit_rule(rule_settings))
        except ValueError as exc:
            raise TradeConfigError(f"exits.rules.{index}", str(exc)) from exc
    return CompositeExit(
        rules,
        combine=Combine(settings.combine),
        priorities=[rule.priority for rule in settings.rules],
        name="exits",
    )


def build_sizer(settings: SizerSettings) -> PositionSizer:
    if isinstance(settings, FixedFractionSettings):
        return FixedFraction(settings.fraction)
    if isinstance(settings, KellySettings):
        return Kelly(
            fraction=settings.fraction,
            cap=settings.cap,
            window=settings.window,
            min_trades=settings.min_trades,
            fallback_fraction=settings.fallback_fraction,
        )
    if isinstance(settings, VolatilityTargetSettings):
        return VolatilityTarget(target_vol=settings.target_vol, max_leverage=settings.max_leverage)
    if isinstance(settings, RiskParitySettings):
        return RiskParity(gross_fraction=settings.gross_fraction)
    assert isinstance(settings, SignalStrengthSettings)
    return SignalStrength(settings.base_fraction, min_confidence=settings.min_confidence)


def build_filter(settings: FilterSettings) -> EntryFilter:
    name = settings.name or settings.type
    if isinstance(settings, RegimeFilterSettings):
        return RegimeFilter(settings.allow, settings.adx_threshold, name=name)
    if isinstance(settings, VolatilityBandSettings):
        return VolatilityBand(settings.metric, settings.minimum, settings.maximum, name=name)
    if isinstance(settings, DrawdownPauseSettings):
        return DrawdownPause(
            settings.max_drawdown_pct, round(settings.pause_minutes * 60_000), name=name
        )
    if isinstance(settings, CorrelationFilterSettings):
        return CorrelationFilter(
            settings.max_correlation, settings.min_overlap, settings.when_unknown, name=name
        )
    assert isinstance(settings, TimeWindowSettings)
    return TimeWindow.of(settings.days, settings.hours, name=name)


def build_trade_manager(
    settings: TradeSettings, *, instance: str, symbols: Sequence[str], interval_ms: int
) -> TradeManager:
    exits = None
    if settings.exits is not None:
        exits = build_exits(settings.exits)
    sizer = None
    if settings.sizer is not None:
        sizer = _built("sizer", partial(build_sizer, settings.sizer))
    filters = [
        _built(f"filters.{index}", partial(build_filter, item))
        for index, item in enumerate(settings.filters)
    ]
    meta_label = None
    if settings.meta_label is not None:
        labelling = settings.meta_label
        validator = _built(
            "meta_label.validator_file", partial(LogisticModel.from_file, labelling.validator_file)
        )
        meta_label = MetaLabel(validator, labelling.min_probability)
    model = None
    max_wait_bars = 3
    if settings.model is not None:
        model_settings = settings.model
        model = _built("model.file", partial(LogisticModel.from_file, model_settings.file))
        max_wait_bars = model_settings.max_wait_bars
    entry = ModelEntryRule(SizedEntry(filters, sizer, meta_label), model)
    return TradeManager(
        instance=instance,
        symbols=symbols,
        capital=float(settings.capital),
        entry=entry,
        exits=exits,
        filters=filters,
        market=MarketSettings(
            interval_ms=interval_ms,
            atr_period=settings.atr_period,
            adx_period=settings.adx_period,
            returns_lookback=settings.returns_lookback,
        ),
        trade_history=settings.trade_history,
        max_wait_bars=max_wait_bars,
    )


def trade_manager_factory(
    settings: TradeSettings, *, instance: str, symbols: Sequence[str], interval_ms: int
) -> Callable[[], TradeManager]:
    """Validates by building once, then hands out fresh managers (one per start or reset)."""
    build_trade_manager(settings, instance=instance, symbols=symbols, interval_ms=interval_ms)
    return lambda: build_trade_manager(
        settings, instance=instance, symbols=symbols, interval_ms=interval_ms
    )
