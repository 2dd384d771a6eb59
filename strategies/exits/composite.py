"""Several exit rules as one: every component judges every bar (so each keeps its state, e.g.
a trailing stop's peak, current), and the position leaves on the first bar any of them
triggers. When several trigger on the same bar, FIRST_TRIGGERED takes the first in the
configured order, HIGHEST_PRIORITY the one with the highest priority (ties: configured order).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from strategies.exits.base import Bar, ExitDecision, ExitRule, TrackedPosition

__all__ = ["Combine", "CompositeExit"]


class Combine(StrEnum):
    FIRST_TRIGGERED = "first_triggered"
    HIGHEST_PRIORITY = "highest_priority"


class CompositeExit:
    def __init__(
        self,
        rules: Sequence[ExitRule],
        *,
        combine: Combine = Combine.FIRST_TRIGGERED,
        priorities: Sequence[int] | None = None,
        name: str = "composite",
    ) -> None:
        if not rules:
            raise ValueError("a composite exit needs at least one rule")
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique within a composite: {names}")
        if priorities is not None and len(priorities) != len(rules):
            raise ValueError("give one priority per rule")
        self.name = name
        self.rules = tuple(rules)
        self.combine = combine
        self.priorities = tuple(priorities) if priorities is not None else (0,) * len(rules)
        self._ranked = tuple(zip(self.rules, self.priorities, strict=True))

    def on_entry(self, position: TrackedPosition, atr: float) -> None:
        for rule in self.rules:
            rule.on_entry(position, atr)

    def check(self, position: TrackedPosition, bar: Bar, atr: float) -> ExitDecision | None:
        chosen: ExitDecision | None = None
        chosen_priority = 0
        first_triggered = self.combine is Combine.FIRST_TRIGGERED
        for rule, priority in self._ranked:
            # Every rule judges every bar, even after one has triggered, so its state stays
            # current; a tie on priority keeps the earlier rule.
            decision = rule.check(position, bar, atr)
            if decision is None:
                continue
            if chosen is None or (not first_triggered and priority > chosen_priority):
                chosen, chosen_priority = decision, priority
        return chosen
