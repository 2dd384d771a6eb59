"""Moving-window indicators: SMA, EMA, rolling standard deviation, rolling max and min.

All are O(1) per value (amortised for the max/min deques and for the periodic exact
recomputations that bound float drift), pure Python floats, and fed one value at a time.
Inputs must be finite: a NaN or infinity poisons a window until it has left it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from strategies.indicators.base import (
    NAN,
    check_period,
    check_state,
    dec,
    dec_list,
    enc,
    enc_list,
    new_state,
)

_fsum = math.fsum
_sqrt = math.sqrt


class SMA:
    """Simple moving average of the last `period` values; ready at the `period`-th value.

    A running sum is updated with ``sum += x - oldest``. To bound float drift, the sum is
    recomputed exactly (`math.fsum` of the window) every time the ring buffer wraps, i.e. every
    `period` updates: amortised O(1), and the error never accumulates over more than `period`
    steps.
    """

    __slots__ = ("_buf", "_i", "_n", "_sum", "ready", "value")

    def __init__(self, period: int) -> None:
        self._n = check_period(period)
        self._buf = [0.0] * period
        self._i = 0
        self._sum = 0.0
        self.ready = False
        self.value = NAN

    def update(self, x: float) -> float:
        buf = self._buf
        i = self._i
        s = self._sum + (x - buf[i])
        buf[i] = x
        i += 1
        if i == self._n:
            i = 0
            s = _fsum(buf)
            self.ready = True
        self._i = i
        self._sum = s
        if self.ready:
            v = s / self._n
            self.value = v
            return v
        return NAN

    def update_many(self, xs: Sequence[float]) -> list[float]:
        buf = self._buf
        n = self._n
        i = self._i
        s = self._sum
        ready = self.ready
        out: list[float] = []
        append = out.append
        for x in xs:
            s = s + (x - buf[i])
            buf[i] = x
            i += 1
            if i == n:
                i = 0
                s = _fsum(buf)
                ready = True
            append(s / n if ready else NAN)
        self._i = i
        self._sum = s
        self.ready = ready
        if out:
            self.value = out[-1]
        return out

    def _params(self) -> dict[str, Any]:
        return {"period": self._n}

    def snapshot(self) -> dict[str, Any]:
        state = new_state("SMA", self._params())
        state.update(buf=enc_list(self._buf), i=self._i, sum=enc(self._sum))
        state.update(ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "SMA", self._params())
        self._buf = dec_list(state["buf"])
        self._i = int(state["i"])
        self._sum = dec(state["sum"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])


class EMA:
    """Exponential moving average, alpha = 2/(period+1), TA-Lib seeding.

    The first `period` values are averaged (simple mean) to seed the EMA, which is therefore
    ready at the `period`-th value; after that ``ema += alpha * (x - ema)``.
    """

    __slots__ = ("_alpha", "_count", "_n", "_sum", "ready", "value")

    def __init__(self, period: int) -> None:
        self._n = check_period(period)
        self._alpha = 2.0 / (period + 1)
        self._count = 0
        self._sum = 0.0
        self.ready = False
        self.value = NAN

    def update(self, x: float) -> float:
        if self.ready:
            v = self.value
            v += self._alpha * (x - v)
            self.value = v
            return v
        self._sum += x
        self._count += 1
        if self._count == self._n:
            self.ready = True
            self.value = v = self._sum / self._n
            return v
        return NAN

    def update_many(self, xs: Sequence[float]) -> list[float]:
        n = self._n
        alpha = self._alpha
        v = self.value
        s = self._sum
        count = self._count
        ready = self.ready
        out: list[float] = []
        append = out.append
        for x in xs:
            if ready:
                v += alpha * (x - v)
                append(v)
            else:
                s += x
                count += 1
                if count == n:
                    ready = True
                    v = s / n
                    append(v)
                else:
                    append(NAN)
        self._sum = s
        self._count = count
        self.ready = ready
        self.value = v
        return out

    def _params(self) -> dict[str, Any]:
        return {"period": self._n}

    def snapshot(self) -> dict[str, Any]:
        state = new_state("EMA", self._params())
        state.update(count=self._count, sum=enc(self._sum))
        state.update(ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "EMA", self._params())
        self._count = int(state["count"])
        self._sum = dec(state["sum"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])


class RollingStd:
    """Standard deviation of the last `period` values, ``ddof`` 0 (population) or 1 (sample).

    Ready at the `period`-th value. O(1): Welford's update while the window fills, then the
    add/remove form ``M2 += (x - old) * (x - mean_new + old - mean_old)`` once it is full.
    Drift is bounded by an exact two-pass recomputation (`math.fsum`) each time the ring
    buffer wraps (every `period` updates). A window of identical values (tracked by the length
    of the current run of equal inputs) gives exactly 0.0, and a tiny negative variance from
    rounding is clamped to 0.0.
    """

    __slots__ = (
        "_buf",
        "_i",
        "_inv",
        "_last",
        "_m2",
        "_mean",
        "_n",
        "_run",
        "ddof",
        "ready",
        "value",
    )

    def __init__(self, period: int, ddof: int = 1) -> None:
        self._n = check_period(period)
        if ddof not in (0, 1) or isinstance(ddof, bool):
            raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
        if period <= ddof:
            raise ValueError(f"period must exceed ddof, got period={period} ddof={ddof}")
        self.ddof = ddof
        self._inv = 1.0 / (period - ddof)
        self._buf = [0.0] * period
        self._i = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._last = NAN
        self._run = 0
        self.ready = False
        self.value = NAN

    def update(self, x: float) -> float:
        buf = self._buf
        n = self._n
        i = self._i
        mean = self._mean
        m2 = self._m2
        if self.ready:
            old = buf[i]
            new_mean = mean + (x - old) / n
            m2 += (x - old) * (x - new_mean + old - mean)
            mean = new_mean
        else:
            d = x - mean
            mean += d / (i + 1)
            m2 += d * (x - mean)
        buf[i] = x
        i += 1
        if i == n:
            i = 0
            self.ready = True
            mean = _fsum(buf) / n
            m2 = _fsum([(b - mean) * (b - mean) for b in buf])
        self._i = i
        if x == self._last:
            self._run = run = self._run + 1
            if run >= n:
                mean = x
                m2 = 0.0
        else:
            self._run = 1
            self._last = x
            if n == 1:
                mean = x
                m2 = 0.0
        self._mean = mean
        self._m2 = m2
        if self.ready:
            var = m2 * self._inv
            v = _sqrt(var) if var > 0.0 else 0.0
            self.value = v
            return v
        return NAN

    def update_many(self, xs: Sequence[float]) -> list[float]:
        buf = self._buf
        n = self._n
        inv = self._inv
        i = self._i
        mean = self._mean
        m2 = self._m2
        last = self._last
        run = self._run
        ready = self.ready
        out: list[float] = []
        append = out.append
        for x in xs:
            if ready:
                old = buf[i]
                new_mean = mean + (x - old) / n
                m2 += (x - old) * (x - new_mean + old - mean)
                mean = new_mean
            else:
                d = x - mean
                mean += d / (i + 1)
                m2 += d * (x - mean)
            buf[i] = x
            i += 1
            if i == n:
                i = 0
                ready = True
                mean = _fsum(buf) / n
                m2 = _fsum([(b - mean) * (b - mean) for b in buf])
            if x == last:
                run += 1
            else:
                run = 1
                last = x
            if run >= n:
                mean = x
                m2 = 0.0
            if ready:
                var = m2 * inv
                append(_sqrt(var) if var > 0.0 else 0.0)
            else:
                append(NAN)
        self._i = i
        self._mean = mean
        self._m2 = m2
        self._last = last
        self._run = run
        self.ready = ready
        if out:
            self.value = out[-1]
        return out

    def _params(self) -> dict[str, Any]:
        return {"period": self._n, "ddof": self.ddof}

    def snapshot(self) -> dict[str, Any]:
        state = new_state("RollingStd", self._params())
        state.update(buf=enc_list(self._buf), i=self._i, mean=enc(self._mean), m2=enc(self._m2))
        state.update(last=enc(self._last), run=self._run, ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "RollingStd", self._params())
        self._buf = dec_list(state["buf"])
        self._i = int(state["i"])
        self._mean = dec(state["mean"])
        self._m2 = dec(state["m2"])
        self._last = dec(state["last"])
        self._run = int(state["run"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])


class _RollingExtreme:
    """Rolling max of ``sign * x`` over the last `period` values, with a monotonic deque.

    The deque holds window positions whose values are strictly decreasing from the front, so
    the front is the maximum; each value is pushed and popped at most once (amortised O(1)).
    A minimum is the maximum of the negated values: negation is exact, so nothing is lost.
    """

    __slots__ = ("_count", "_idx", "_n", "_sign", "_vals", "ready", "value")
    _KIND = ""

    def __init__(self, period: int, sign: float) -> None:
        self._n = check_period(period)
        self._sign = sign
        self._vals: deque[float] = deque()
        self._idx: deque[int] = deque()
        self._count = 0
        self.ready = False
        self.value = NAN

    def update(self, x: float) -> float:
        y = self._sign * x
        vals = self._vals
        idx = self._idx
        # Equal values are dropped too: the newer one outlives the older one in the window.
        while vals and vals[-1] <= y:
            vals.pop()
            idx.pop()
        count = self._count
        vals.append(y)
        idx.append(count)
        if idx[0] <= count - self._n:
            idx.popleft()
            vals.popleft()
        count += 1
        self._count = count
        if count >= self._n:
            self.ready = True
            v = self._sign * vals[0]
            self.value = v
            return v
        return NAN

    def update_many(self, xs: Sequence[float]) -> list[float]:
        sign = self._sign
        n = self._n
        vals = self._vals
        idx = self._idx
        count = self._count
        out: list[float] = []
        append = out.append
        for x in xs:
            y = sign * x
            while vals and vals[-1] <= y:
                vals.pop()
                idx.pop()
            vals.append(y)
            idx.append(count)
            if idx[0] <= count - n:
                idx.popleft()
                vals.popleft()
            count += 1
            append(sign * vals[0] if count >= n else NAN)
        self._count = count
        if count >= n:
            self.ready = True
        if out:
            self.value = out[-1]
        return out

    def snapshot(self) -> dict[str, Any]:
        state = new_state(self._KIND, {"period": self._n})
        state.update(vals=enc_list(self._vals), idx=list(self._idx), count=self._count)
        state.update(ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, self._KIND, {"period": self._n})
        self._vals = deque(dec_list(state["vals"]))
        self._idx = deque(int(i) for i in state["idx"])
        self._count = int(state["count"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])


class RollingMax(_RollingExtreme):
    """Maximum of the last `period` values (Donchian upper band); ready at the `period`-th."""

    __slots__ = ()
    _KIND = "RollingMax"

    def __init__(self, period: int) -> None:
        super().__init__(period, 1.0)


class RollingMin(_RollingExtreme):
    """Minimum of the last `period` values (Donchian lower band); ready at the `period`-th."""

    __slots__ = ()
    _KIND = "RollingMin"

    def __init__(self, period: int) -> None:
        super().__init__(period, -1.0)
