"""What every entry filter shares: the stateless snapshot contract and how a reason shows a
measured value next to the limit it was judged against.

Filters consume a `Signal`, the instance's `TradeState` and its `Prices` (see
`strategies.trade.state`) and produce a `Verdict`; none of them touches a channel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["Stateless", "check_name", "shown"]


class Stateless:
    """Snapshot/restore for a filter that remembers nothing between calls."""

    __slots__ = ()

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        # A non-empty snapshot means it was taken from another, stateful filter under this
        # name: silently dropping it would hide a configuration mix-up.
        if state:
            raise ValueError(
                f"{type(self).__name__} is stateless; cannot restore {sorted(state)!r}"
            )


def check_name(name: str) -> None:
    if not name:
        raise ValueError("name must not be empty")


def shown(value: float, limit: float, decimals: int) -> str:
    """`value` with `decimals` decimals, or more when fewer would print it on the wrong side
    of (or equal to) `limit`: a reason must not read "25.0 < 25"."""
    if not math.isfinite(value):
        return str(value)
    side = (value > limit) - (value < limit)
    for places in range(decimals, decimals + 8):
        text = f"{value:.{places}f}"
        printed = float(text)
        if (printed > limit) - (printed < limit) == side:
            return text
    return repr(value)
