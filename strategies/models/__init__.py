"""The model hook: a `StrategyModel` judges candidate entries from price-free metrics; the
shipped `LogisticModel` reads its weights from JSON."""

from strategies.models.base import ModelAction, ModelState, StrategyDecision, StrategyModel
from strategies.models.logistic import LogisticModel, ModelLoadError, Thresholds, sigmoid
from strategies.models.metrics import (
    SIGNAL_METRICS,
    STRATEGY_METRICS,
    model_state,
    signal_metrics,
    strategy_metrics,
)

__all__ = [
    "SIGNAL_METRICS",
    "STRATEGY_METRICS",
    "LogisticModel",
    "ModelAction",
    "ModelLoadError",
    "ModelState",
    "StrategyDecision",
    "StrategyModel",
    "Thresholds",
    "model_state",
    "sigmoid",
    "signal_metrics",
    "strategy_metrics",
]
