"""Donchian channel: the highest high and lowest low of the last `period` bars, in one update.

Breakout strategies need both sides every bar; one object with two monotonic deques costs one
call instead of two `RollingMax`/`RollingMin` calls and skips their sign trick. Same results.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from strategies.indicators.base import NAN, check_period, check_state, dec, enc, new_state

__all__ = ["Donchian"]


class Donchian:
    """`upper` = max of the last `period` highs, `lower` = min of the last `period` lows;
    both NaN until the `period`-th bar (`ready`). `value` is the channel mid-point.

    Each deque holds window positions whose values are strictly monotonic from the front, so
    the front is the extreme; every bar is pushed and popped at most once (amortised O(1)).
    """

    __slots__ = (
        "_count",
        "_high_idx",
        "_highs",
        "_low_idx",
        "_lows",
        "_n",
        "lower",
        "ready",
        "upper",
        "value",
    )

    def __init__(self, period: int) -> None:
        self._n = check_period(period)
        self._highs: deque[float] = deque()
        self._high_idx: deque[int] = deque()
        self._lows: deque[float] = deque()
        self._low_idx: deque[int] = deque()
        self._count = 0
        self.ready = False
        self.upper = NAN
        self.lower = NAN
        self.value = NAN

    def update(self, high: float, low: float) -> float:
        highs = self._highs
        high_idx = self._high_idx
        lows = self._lows
        low_idx = self._low_idx
        count = self._count
        # Equal values are dropped too: the newer one outlives the older one in the window.
        while highs and highs[-1] <= high:
            highs.pop()
            high_idx.pop()
        highs.append(high)
        high_idx.append(count)
        while lows and lows[-1] >= low:
            lows.pop()
            low_idx.pop()
        lows.append(low)
        low_idx.append(count)
        expired = count - self._n
        if high_idx[0] <= expired:
            high_idx.popleft()
            highs.popleft()
        if low_idx[0] <= expired:
            low_idx.popleft()
            lows.popleft()
        count += 1
        self._count = count
        if count < self._n:
            return NAN
        self.ready = True
        upper = highs[0]
        lower = lows[0]
        self.upper = upper
        self.lower = lower
        mid = (upper + lower) * 0.5
        self.value = mid
        return mid

    def update_many(self, highs: Sequence[float], lows: Sequence[float]) -> list[float]:
        if len(highs) != len(lows):
            raise ValueError("highs and lows differ in length")
        update = self.update
        return [update(high, low) for high, low in zip(highs, lows, strict=True)]

    def snapshot(self) -> dict[str, Any]:
        state = new_state("Donchian", {"period": self._n})
        state.update(
            highs=list(self._highs),
            high_idx=list(self._high_idx),
            lows=list(self._lows),
            low_idx=list(self._low_idx),
            count=self._count,
            ready=self.ready,
            upper=enc(self.upper),
            lower=enc(self.lower),
            value=enc(self.value),
        )
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "Donchian", {"period": self._n})
        self._highs = deque(float(x) for x in state["highs"])
        self._high_idx = deque(int(i) for i in state["high_idx"])
        self._lows = deque(float(x) for x in state["lows"])
        self._low_idx = deque(int(i) for i in state["low_idx"])
        self._count = int(state["count"])
        self.ready = bool(state["ready"])
        self.upper = dec(state["upper"])
        self.lower = dec(state["lower"])
        self.value = dec(state["value"])
