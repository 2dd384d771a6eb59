"""Composable exit rules for open positions (trade management)."""

from strategies.exits.base import Bar, ExitDecision, ExitRule, TrackedPosition, cross_levels
from strategies.exits.composite import Combine, CompositeExit
from strategies.exits.rules import FixedExit, TimeExit, TrailingStop, VolatilityExit

__all__ = [
    "Bar",
    "Combine",
    "CompositeExit",
    "ExitDecision",
    "ExitRule",
    "FixedExit",
    "TimeExit",
    "TrackedPosition",
    "TrailingStop",
    "VolatilityExit",
    "cross_levels",
]
