"""The entry pipeline: what happens to a strategy's entry signal before it leaves as an order
intent.

In order — each step may stop the entry, with the reason:
1. meta-labelling (optional): the detector's confidence times a validator's probability that
   the signal is right; too low a product refuses the entry, otherwise it is the new confidence;
2. the entry filters, in configured order (the first refusal wins);
3. the model (optional, `ModelEntryRule`): ENTER, REDUCE_SIZE (a size multiplier), WAIT (decide
   again on a later bar) or SKIP;
4. the sizer: the quantity, times the model's multiplier; zero refuses.

Without a model `ModelEntryRule` is exactly the base entry (`SizedEntry`). Without a sizer the
strategy's own `size_hint` stands (the risk gate then applies its default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal, Protocol

from app.domain import Signal
from strategies.models import (
    ModelAction,
    StrategyModel,
    model_state,
    signal_metrics,
    strategy_metrics,
)
from strategies.models.logistic import LogisticModel
from strategies.trade.state import EntryFilter, PositionSizer, Prices, TradeState

__all__ = ["EntryOutcome", "EntryRule", "MetaLabel", "ModelEntryRule", "SizedEntry"]


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """`signal` is the entry to send (sized) for "enter", the original otherwise; `stage`
    names the part that refused or deferred it (a filter's name, the sizer's, "model", ...)."""

    kind: Literal["enter", "refuse", "wait"]
    signal: Signal
    stage: str = ""
    reason: str = ""

    @classmethod
    def refuse(cls, signal: Signal, stage: str, reason: str) -> EntryOutcome:
        return cls("refuse", signal, stage, reason)


class EntryRule(Protocol):
    def decide(
        self, signal: Signal, state: TradeState, prices: Prices, *, waited_bars: int = 0
    ) -> EntryOutcome:
        """`waited_bars`: bars this entry has already been deferred by a WAIT."""
        ...


@dataclass(frozen=True)
class MetaLabel:
    validator: LogisticModel
    min_probability: float = 0.5
    window: int = 50

    def apply(self, signal: Signal, state: TradeState, prices: Prices) -> EntryOutcome:
        probability = self.validator.probability(
            signal_metrics(signal, prices.get(signal.symbol)),
            strategy_metrics(state, self.window),
        )
        labelled = signal.confidence * probability
        detail = f"confidence {signal.confidence:.3g} x p {probability:.3f} = {labelled:.3f}"
        if labelled < self.min_probability:
            return EntryOutcome.refuse(signal, "meta_label", f"{detail} < {self.min_probability:g}")
        labelled_signal = replace(
            signal, confidence=labelled, tags=(*signal.tags, f"meta_label:{probability:.3f}")
        )
        return EntryOutcome("enter", labelled_signal, "meta_label", detail)


@dataclass(frozen=True)
class SizedEntry:
    """The base entry: meta-label, filters, sizer."""

    filters: Sequence[EntryFilter] = ()
    sizer: PositionSizer | None = None
    meta_label: MetaLabel | None = None

    def decide(
        self, signal: Signal, state: TradeState, prices: Prices, *, waited_bars: int = 0
    ) -> EntryOutcome:
        screened = self.screen(signal, state, prices)
        if screened.kind != "enter":
            return screened
        return self.size(screened.signal, state, prices)

    def screen(self, signal: Signal, state: TradeState, prices: Prices) -> EntryOutcome:
        if self.meta_label is not None:
            labelled = self.meta_label.apply(signal, state, prices)
            if labelled.kind != "enter":
                return labelled
            signal = labelled.signal
        for entry_filter in self.filters:
            verdict = entry_filter.allow_entry(signal, state, prices)
            if not verdict:
                return EntryOutcome.refuse(signal, entry_filter.name, verdict.reason)
        return EntryOutcome("enter", signal)

    def size(
        self, signal: Signal, state: TradeState, prices: Prices, multiplier: float = 1.0
    ) -> EntryOutcome:
        if self.sizer is None:
            return EntryOutcome("enter", signal)
        sized = self.sizer.compute_size(signal, state, prices)
        quantity = sized.quantity
        if multiplier < 1.0 and quantity > 0:
            quantity = Decimal(f"{float(quantity) * multiplier:.12g}")
        if not quantity > 0:
            return EntryOutcome.refuse(signal, self.sizer.name, sized.reason)
        tags = (*signal.tags, f"sizer:{self.sizer.name}")
        return EntryOutcome(
            "enter", replace(signal, size_hint=quantity, tags=tags), self.sizer.name, sized.reason
        )


@dataclass(frozen=True)
class ModelEntryRule:
    """Consults `model` between the filters and the sizer; no model: the base entry."""

    base: SizedEntry
    model: StrategyModel | None = None
    metrics_window: int = 50

    def decide(
        self, signal: Signal, state: TradeState, prices: Prices, *, waited_bars: int = 0
    ) -> EntryOutcome:
        if self.model is None:
            return self.base.decide(signal, state, prices)
        screened = self.base.screen(signal, state, prices)
        if screened.kind != "enter":
            return screened
        signal = screened.signal
        decision = self.model.decide(
            (signal,),
            (signal_metrics(signal, prices.get(signal.symbol)),),
            strategy_metrics(state, self.metrics_window),
            model_state(state, signal.symbol, waited_bars=waited_bars),
        )
        if decision.action is ModelAction.SKIP:
            return EntryOutcome.refuse(signal, "model", decision.reason)
        if decision.action is ModelAction.WAIT:
            return EntryOutcome("wait", signal, "model", decision.reason)
        decided = replace(
            signal,
            confidence=decision.confidence,
            tags=(*signal.tags, f"model:{self.model.name}:{decision.action.value}"),
        )
        return self.base.size(decided, state, prices, decision.size_multiplier)
