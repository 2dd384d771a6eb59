"""A logistic entry model with hand-set weights read from JSON: the shipped `StrategyModel`.

It is both the model hook's working example and the meta-labelling validator: `probability`
is the chance it gives a detector's signal of being worth taking, and `decide` turns that
probability into an action by three thresholds.

File format (every key but `weights` and `thresholds` may be left out)::

    {
      "name": "entry_logistic",             # the model's name in decisions; default "logistic"
      "description": "what it favours",     # free text
      "intercept": -0.2,                    # default 0
      "weights": {"confidence": 1.5, "adx": 0.02},
      "missing": {"adx": 20.0},             # value used for an unknown (NaN) input; default 0
      "thresholds": {"enter": 0.6, "reduce": 0.5, "wait": 0.45},
      "max_wait_bars": 3                    # WAITs per candidate before it is skipped; default 0
    }

Feature names are those of `metrics.SIGNAL_METRICS` and `metrics.STRATEGY_METRICS`. Unknown
keys anywhere, unknown feature names, a `missing` entry for a feature without a weight,
non-finite numbers, thresholds outside 0..1 or not ordered enter >= reduce >= wait, and an
unreadable or invalid file are `ModelLoadError`s naming the file and the key: a typo must stop
the daemon, not quietly trade a different model.

Decision bands, for p = probability of the first signal (the entry rule passes one candidate):
- p >= enter: ENTER at full size.
- reduce <= p < enter: REDUCE_SIZE with multiplier p / enter, which runs continuously from
  reduce / enter at the lower edge to 1 at the enter threshold (so size never jumps).
- wait <= p < reduce: WAIT, or SKIP once the candidate has waited `max_wait_bars` bars.
- p < wait: SKIP.
A decision's confidence is p when it enters and 1 - p when it does not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from app.domain import Signal
from strategies.models.base import ModelAction, ModelState, StrategyDecision
from strategies.models.metrics import SIGNAL_METRICS, STRATEGY_METRICS

__all__ = ["LogisticModel", "ModelLoadError", "Thresholds", "sigmoid"]

FEATURES = frozenset(SIGNAL_METRICS) | frozenset(STRATEGY_METRICS)
_SIGNAL_FEATURES = frozenset(SIGNAL_METRICS)
_TOP_LEVEL_KEYS = frozenset(
    {"name", "description", "intercept", "weights", "missing", "thresholds", "max_wait_bars"}
)
_THRESHOLD_KEYS = ("enter", "reduce", "wait")

# Builds the error for (key, problem); the source is bound in.
_Fail = Callable[[str, str], "ModelLoadError"]


class ModelLoadError(ValueError):
    """A model file or mapping that cannot be used; the message names the source and key."""


def sigmoid(z: float) -> float:
    """1 / (1 + e^-z), computed so that e^x never overflows for any z."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class Thresholds:
    enter: float
    reduce: float
    wait: float


class LogisticModel:
    """p = sigmoid(intercept + sum of weight x feature); see the module docstring."""

    __slots__ = (
        "_missing",
        "_weights",
        "description",
        "intercept",
        "max_wait_bars",
        "name",
        "thresholds",
    )

    def __init__(
        self,
        *,
        name: str,
        intercept: float,
        weights: Mapping[str, float],
        thresholds: Thresholds,
        missing: Mapping[str, float] | None = None,
        max_wait_bars: int = 0,
        description: str = "",
    ) -> None:
        self.name = name
        self.description = description
        self.intercept = intercept
        self._weights = dict(weights)
        self._missing = dict(missing or {})
        self.thresholds = thresholds
        self.max_wait_bars = max_wait_bars

    @property
    def weights(self) -> Mapping[str, float]:
        return MappingProxyType(self._weights)

    @property
    def missing(self) -> Mapping[str, float]:
        return MappingProxyType(self._missing)

    @classmethod
    def from_file(cls, path: str | Path) -> LogisticModel:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{path}: cannot read the model file: {exc}") from exc
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{path}: not valid JSON: {exc}") from exc
        except _DuplicateKey as exc:
            raise ModelLoadError(f"{path}: {exc.key}: given twice") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "<mapping>") -> LogisticModel:
        def fail(key: str, problem: str) -> ModelLoadError:
            return ModelLoadError(f"{source}: {key}: {problem}")

        if not isinstance(data, Mapping):
            raise fail("(top level)", f"expected an object, got {type(data).__name__}")
        for key in data:
            if key not in _TOP_LEVEL_KEYS:
                raise fail(str(key), f"unknown key (known: {', '.join(sorted(_TOP_LEVEL_KEYS))})")

        name = data.get("name", "logistic")
        if not isinstance(name, str) or not name:
            raise fail("name", "expected a non-empty string")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise fail("description", "expected a string")
        intercept = _number(data.get("intercept", 0.0), "intercept", fail)

        if "weights" not in data:
            raise fail("weights", "required")
        weights = _number_table(data["weights"], "weights", fail)
        if not weights:
            raise fail("weights", "no features: the model would be a constant")
        missing = _number_table(data.get("missing", {}), "missing", fail)
        for feature in missing:
            if feature not in weights:
                raise fail(f"missing.{feature}", "a default for a feature with no weight")

        if "thresholds" not in data:
            raise fail("thresholds", "required")
        table = data["thresholds"]
        if not isinstance(table, Mapping):
            raise fail("thresholds", "expected an object")
        for key in table:
            if key not in _THRESHOLD_KEYS:
                raise fail(f"thresholds.{key}", "unknown key (known: enter, reduce, wait)")
        levels: dict[str, float] = {}
        for key in _THRESHOLD_KEYS:
            if key not in table:
                raise fail(f"thresholds.{key}", "required")
            levels[key] = _number(table[key], f"thresholds.{key}", fail)
            if not 0.0 <= levels[key] <= 1.0:
                raise fail(f"thresholds.{key}", f"must be within 0..1, got {levels[key]}")
        thresholds = Thresholds(**levels)
        if not thresholds.enter >= thresholds.reduce >= thresholds.wait:
            raise fail(
                "thresholds",
                f"must be ordered enter >= reduce >= wait, got {thresholds.enter} / "
                f"{thresholds.reduce} / {thresholds.wait}",
            )

        max_wait_bars = data.get("max_wait_bars", 0)
        if not isinstance(max_wait_bars, int) or isinstance(max_wait_bars, bool):
            raise fail("max_wait_bars", f"expected an integer, got {max_wait_bars!r}")
        if max_wait_bars < 0:
            raise fail("max_wait_bars", f"must not be negative, got {max_wait_bars}")

        return cls(
            name=name,
            description=description,
            intercept=intercept,
            weights=weights,
            missing=missing,
            thresholds=thresholds,
            max_wait_bars=max_wait_bars,
        )

    def probability(
        self, signal_metrics: Mapping[str, float], strategy_metrics: Mapping[str, float]
    ) -> float:
        """sigmoid(intercept + sum of w x x); an absent or non-finite x takes its `missing`
        default (0 when none is given)."""
        z = self.intercept
        for feature, weight in self._weights.items():
            source = signal_metrics if feature in _SIGNAL_FEATURES else strategy_metrics
            value = source.get(feature, math.nan)
            if not math.isfinite(value):
                value = self._missing.get(feature, 0.0)
            z += weight * value
        return sigmoid(z)

    def decide(
        self,
        signals: Sequence[Signal],
        signal_metrics: Sequence[Mapping[str, float]],
        strategy_metrics: Mapping[str, float],
        state: ModelState,
    ) -> StrategyDecision:
        if not signals:
            raise ValueError("decide needs a candidate signal")
        if len(signal_metrics) != len(signals):
            raise ValueError(f"{len(signals)} signals but {len(signal_metrics)} metric sets")
        p = self.probability(signal_metrics[0], strategy_metrics)
        enter, reduce, wait = self.thresholds.enter, self.thresholds.reduce, self.thresholds.wait
        said = f"{self.name} p={p:.3f}"
        if p >= enter:
            return StrategyDecision(ModelAction.ENTER, 1.0, p, f"{said} >= enter {enter:.3f}")
        # p == 0 only when reduce is 0 and the sum underflows: nothing left to enter with.
        if p >= reduce and p > 0:
            multiplier = p / enter
            return StrategyDecision(
                ModelAction.REDUCE_SIZE,
                multiplier,
                p,
                f"{said} < enter {enter:.3f}: reduce size to {multiplier:.3f}",
            )
        if p >= wait and state.waited_bars < self.max_wait_bars:
            return StrategyDecision(
                ModelAction.WAIT,
                confidence=1.0 - p,
                reason=f"{said} < reduce {reduce:.3f}: wait "
                f"({state.waited_bars + 1} of {self.max_wait_bars} bars)",
            )
        if p >= wait:
            why = f"< reduce {reduce:.3f} after waiting {state.waited_bars} bars"
        else:
            why = f"< wait {wait:.3f}"
        return StrategyDecision(ModelAction.SKIP, confidence=1.0 - p, reason=f"{said} {why}: skip")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; in a model file that hides a typo'd edit.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _number(value: Any, key: str, fail: _Fail) -> float:
    # bool is an int in Python; `true` as a weight is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(key, f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise fail(key, f"expected a finite number, got {value!r}")
    return number


def _number_table(table: Any, key: str, fail: _Fail) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise fail(key, "expected an object of feature: number")
    numbers: dict[str, float] = {}
    for feature, value in table.items():
        if feature not in FEATURES:
            known = ", ".join(sorted(FEATURES))
            raise fail(f"{key}.{feature}", f"unknown feature (known: {known})")
        numbers[feature] = _number(value, f"{key}.{feature}", fail)
    return numbers
