"""The `ensemble` strategy's parameters: its detectors (each a registered strategy with its own
parameters, validated by that strategy's model, errors named by path) and how they vote."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from strategies.base import StrategyParams

__all__ = ["DetectorSpec", "EnsembleParams"]


class DetectorSpec(StrategyParams):
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="unique name within the ensemble (default: the strategy name)",
    )
    strategy: str = Field(description="a registered strategy used as detector")
    params: dict[str, Any] = Field(default_factory=dict, description="the detector's parameters")
    weight: float = Field(default=1.0, gt=0, description="its weight in a weighted vote")

    @property
    def label(self) -> str:
        return self.name or self.strategy


class EnsembleParams(StrategyParams):
    detectors: list[DetectorSpec] = Field(
        min_length=2, description="at least 2 voters, each {name, strategy, params, weight}"
    )
    vote: Literal["majority", "weighted", "unanimous"] = Field(
        default="majority", description="how the votes combine"
    )
    threshold: float = Field(
        default=0.5, gt=0, le=1, description="weighted: share of the total weight needed"
    )
    window_bars: int = Field(
        default=1, ge=1, description="closed bars an entry vote counts, its own bar included"
    )
    exits: Literal["any", "vote"] = Field(
        default="any", description="any: the first detector exit closes; vote: exits are voted"
    )

    @model_validator(mode="after")
    def _detectors_resolve(self) -> EnsembleParams:
        # Lazily: the registry lists the ensemble itself.
        from strategies.ensemble import Ensemble
        from strategies.registry import UnknownStrategy, load_registry

        registry = load_registry()
        problems: list[str] = []
        first_use: dict[str, int] = {}
        for index, spec in enumerate(self.detectors):
            path = f"detectors.{index}"
            if spec.label in first_use:
                problems.append(
                    f"{path}.name: {spec.label!r} is already used by "
                    f"detectors.{first_use[spec.label]}"
                )
            first_use.setdefault(spec.label, index)
            try:
                cls = registry.get(spec.strategy)
            except UnknownStrategy as exc:
                problems.append(f"{path}.strategy: {exc}")
                continue
            if issubclass(cls, Ensemble):
                problems.append(f"{path}.strategy: an ensemble cannot be a detector")
                continue
            try:
                cls.params_model.model_validate(spec.params)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    location = "".join(f".{part}" for part in error["loc"])
                    reason = error["msg"]
                    if error["type"] == "extra_forbidden":
                        reason = "unknown parameter"
                    elif error["type"] == "value_error":  # without pydantic's "Value error, "
                        reason = str(error.get("ctx", {}).get("error", reason))
                    problems.append(f"{path}.params{location}: {reason}")
        if problems:
            # A custom error type, so the message reads as the paths without "Value error, ".
            raise PydanticCustomError("detectors", "{problems}", {"problems": "; ".join(problems)})
        return self
