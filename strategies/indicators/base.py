"""Shared protocol and snapshot helpers for the incremental indicators.

Every indicator is fed one bar (or tick) at a time through its own `update(...)`, whose
arguments differ per indicator, so the protocol only covers what callers share: the latest
`value` (``math.nan`` until `ready`), and a JSON-safe `snapshot()` / `restore()` pair that
lets a strategy persist its warm indicators and resume bit-identically after a restart.

JSON has no NaN, so snapshots encode NaN as ``None``; inputs are expected to be finite, so
infinities never reach a snapshot in normal use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

NAN = math.nan


@runtime_checkable
class Indicator(Protocol):
    """What every incremental indicator offers besides its own `update` signature."""

    value: float
    ready: bool

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


def check_period(period: int, name: str = "period") -> int:
    # bool is an int subclass; True as a period is always a caller mistake.
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {period!r}")
    return period


def enc(x: float) -> float | None:
    """A float for JSON: NaN becomes None."""
    return None if x != x else x


def dec(x: float | None) -> float:
    """Inverse of `enc`."""
    return NAN if x is None else float(x)


def enc_list(xs: Iterable[float]) -> list[float | None]:
    return [None if x != x else x for x in xs]


def dec_list(xs: Iterable[float | None]) -> list[float]:
    return [NAN if x is None else float(x) for x in xs]


def new_state(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The head of a snapshot: which indicator and with which parameters."""
    return {"kind": kind, "params": params}


def check_state(state: Mapping[str, Any], kind: str, params: dict[str, Any]) -> None:
    """Reject a snapshot taken from another indicator or with other parameters."""
    if state.get("kind") != kind:
        raise ValueError(f"snapshot is of {state.get('kind')!r}, not {kind!r}")
    if state.get("params") != params:
        raise ValueError(f"snapshot parameters {state.get('params')!r} differ from {params!r}")
