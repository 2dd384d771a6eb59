"""The model hook's contract: what a `StrategyModel` is shown and what it answers.

A model judges a candidate entry from numbers derived from the market and the account — the
signal's metrics, the strategy's recent record and a price-free view of its positions — and
never from raw prices: `strategies.models.metrics` is the only place prices become model
inputs. It answers with a `StrategyDecision`: enter, enter smaller, wait, or skip.

Decisions are values that cannot be built inconsistent: a multiplier and a confidence outside
0..1 are errors, an entering action (ENTER, REDUCE_SIZE) needs a multiplier above zero, and the
actions that enter nothing (SKIP, WAIT) always carry a multiplier of 0, whatever was passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from app.domain import Signal

__all__ = ["ModelAction", "ModelState", "StrategyDecision", "StrategyModel"]


class ModelAction(StrEnum):
    """What the model wants done with the candidate entry.

    WAIT asks to be consulted again on the next bar with fresh metrics (the caller counts the
    bars waited in `ModelState.waited_bars`); SKIP drops the candidate for good.
    """

    ENTER = "enter"
    SKIP = "skip"
    REDUCE_SIZE = "reduce_size"
    WAIT = "wait"

    @property
    def enters(self) -> bool:
        return self in (ModelAction.ENTER, ModelAction.REDUCE_SIZE)


@dataclass(frozen=True, slots=True)
class StrategyDecision:
    """A model's answer. `size_multiplier` scales the sizer's quantity; `confidence` is how
    sure the model is of `action` (both within 0..1)."""

    action: ModelAction
    size_multiplier: float = 1.0
    confidence: float = 1.0
    reason: str = ""

    def __post_init__(self) -> None:
        # `not 0 <= x <= 1` is also true for NaN, which must not pass as a size.
        if not 0.0 <= self.size_multiplier <= 1.0:
            raise ValueError(f"size_multiplier must be within 0..1, got {self.size_multiplier}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {self.confidence}")
        if self.action.enters:
            if self.size_multiplier == 0.0:
                raise ValueError(f"{self.action.value} with size_multiplier 0 is a skip")
        else:
            # The default multiplier is 1.0, so `StrategyDecision(ModelAction.SKIP)` must not
            # read as "full size": an action that enters nothing has nothing to size.
            object.__setattr__(self, "size_multiplier", 0.0)


@dataclass(frozen=True, slots=True)
class ModelState:
    """The account as a model sees it: counts and percentages, no prices and no money.

    `same_symbol_positions` counts the open positions in the candidate's symbol;
    `waited_bars` is how many bars this candidate has already been answered WAIT;
    `drawdown_pct` is NaN when the equity is not known.
    """

    now_ms: int
    open_positions: int
    open_long: int
    open_short: int
    same_symbol_positions: int
    drawdown_pct: float
    waited_bars: int = 0

    def __post_init__(self) -> None:
        counts = (self.open_positions, self.open_long, self.open_short, self.waited_bars)
        if min(counts) < 0 or self.same_symbol_positions < 0:
            raise ValueError(f"negative count in {self}")
        if self.open_long + self.open_short != self.open_positions:
            raise ValueError(f"open_long + open_short != open_positions in {self}")
        if self.same_symbol_positions > self.open_positions:
            raise ValueError(f"same_symbol_positions > open_positions in {self}")


class StrategyModel(Protocol):
    @property
    def name(self) -> str: ...

    def decide(
        self,
        signals: Sequence[Signal],
        signal_metrics: Sequence[Mapping[str, float]],
        strategy_metrics: Mapping[str, float],
        state: ModelState,
    ) -> StrategyDecision:
        """Judge a candidate entry. The entry rule passes one signal; `signal_metrics[i]`
        belongs to `signals[i]`.

        Metrics are keyed by the names in `metrics.SIGNAL_METRICS` / `STRATEGY_METRICS`; an
        unknown value is NaN.
        """
        ...
