"""Volatility measures: realized volatility of log returns and the largest move in a time window.

`WindowedMove` backs the "5-second volatility guard": it is fed trade or quote ticks, not
bars, and measures how far the price ranged in the trailing window relative to the last price.
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
_log = math.log
_sqrt = math.sqrt
_NO_TS = -(1 << 62)  # "no tick yet": older than any real timestamp


class RealizedVol:
    """Root mean square of the last `period` log returns, annualised when asked.

    ``value = sqrt(mean(r²)) * sqrt(periods_per_year)`` (the factor is 1 when
    `periods_per_year` is None), with ``r = log(x / prev_x)``. Ready once `period` returns have
    been seen, i.e. at the ``period + 1``-th value. Values must be > 0 (ValueError otherwise).

    The sum of squares is kept like `SMA`'s sum (running, recomputed exactly with `math.fsum`
    each time the ring buffer wraps), and a run of `period` zero returns gives exactly 0.0.
    """

    __slots__ = (
        "_buf",
        "_factor",
        "_i",
        "_n",
        "_ppy",
        "_prev",
        "_sum",
        "_zero_run",
        "ready",
        "value",
    )

    def __init__(self, period: int, periods_per_year: float | None = None) -> None:
        self._n = check_period(period)
        if periods_per_year is not None and not periods_per_year > 0.0:
            raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
        self._ppy = periods_per_year
        self._factor = 1.0 if periods_per_year is None else _sqrt(periods_per_year)
        self._buf = [0.0] * period
        self._i = 0
        self._sum = 0.0
        self._prev = NAN
        self._zero_run = 0
        self.ready = False
        self.value = NAN

    def update(self, x: float) -> float:
        if not x > 0.0:
            raise ValueError(f"RealizedVol needs prices > 0, got {x!r}")
        prev = self._prev
        self._prev = x
        if prev != prev:  # the first value has no return
            return NAN
        r = _log(x / prev)
        r2 = r * r
        buf = self._buf
        i = self._i
        s = self._sum + (r2 - buf[i])
        buf[i] = r2
        i += 1
        if i == self._n:
            i = 0
            s = _fsum(buf)
            self.ready = True
        self._i = i
        if r2 == 0.0:
            self._zero_run += 1
            if self._zero_run >= self._n:
                s = 0.0
        else:
            self._zero_run = 0
        self._sum = s
        if self.ready:
            v = _sqrt(s / self._n) * self._factor if s > 0.0 else 0.0
            self.value = v
            return v
        return NAN

    def update_many(self, xs: Sequence[float]) -> list[float]:
        n = self._n
        factor = self._factor
        buf = self._buf
        i = self._i
        s = self._sum
        prev = self._prev
        zero_run = self._zero_run
        ready = self.ready
        out: list[float] = []
        append = out.append
        try:
            for x in xs:
                if not x > 0.0:
                    raise ValueError(f"RealizedVol needs prices > 0, got {x!r}")
                if prev != prev:
                    prev = x
                    append(NAN)
                    continue
                r = _log(x / prev)
                prev = x
                r2 = r * r
                s = s + (r2 - buf[i])
                buf[i] = r2
                i += 1
                if i == n:
                    i = 0
                    s = _fsum(buf)
                    ready = True
                if r2 == 0.0:
                    zero_run += 1
                    if zero_run >= n:
                        s = 0.0
                else:
                    zero_run = 0
                if ready:
                    append(_sqrt(s / n) * factor if s > 0.0 else 0.0)
                else:
                    append(NAN)
        finally:
            self._i = i
            self._sum = s
            self._prev = prev
            self._zero_run = zero_run
            self.ready = ready
            if out and ready:
                self.value = out[-1]
        return out

    def _params(self) -> dict[str, Any]:
        return {"period": self._n, "periods_per_year": self._ppy}

    def snapshot(self) -> dict[str, Any]:
        state = new_state("RealizedVol", self._params())
        state.update(buf=enc_list(self._buf), i=self._i, sum=enc(self._sum))
        state.update(prev=enc(self._prev), zero_run=self._zero_run)
        state.update(ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "RealizedVol", self._params())
        self._buf = dec_list(state["buf"])
        self._i = int(state["i"])
        self._sum = dec(state["sum"])
        self._prev = dec(state["prev"])
        self._zero_run = int(state["zero_run"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])


class WindowedMove:
    """Largest relative price move within the trailing `window_ms` milliseconds of ticks.

    Fed ``(ts_ms, price)`` ticks; the window holds the ticks with ``ts > newest_ts -
    window_ms`` and ``value = (max - min) / newest_price`` over them. Two monotonic deques keep
    the window's max and min in amortised O(1).

    Ready (and non-NaN) once the ticks seen span the whole window, i.e. once
    ``newest_ts - first_ts >= window_ms``: before that a quiet-looking value could only mean
    "no history yet", which a volatility guard must not read as calm. Ticks may share a
    timestamp; a timestamp older than the newest raises ValueError, as does a price <= 0.
    """

    __slots__ = (
        "_first_ts",
        "_last_ts",
        "_max_p",
        "_max_t",
        "_min_p",
        "_min_t",
        "_window",
        "ready",
        "value",
    )

    def __init__(self, window_ms: int) -> None:
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms <= 0:
            raise ValueError(f"window_ms must be an integer > 0, got {window_ms!r}")
        self._window = window_ms
        self._max_t: deque[int] = deque()
        self._max_p: deque[float] = deque()
        self._min_t: deque[int] = deque()
        self._min_p: deque[float] = deque()
        self._first_ts = _NO_TS
        self._last_ts = _NO_TS
        self.ready = False
        self.value = NAN

    def update(self, ts_ms: int, price: float) -> float:
        last_ts = self._last_ts
        if ts_ms < last_ts:
            raise ValueError(f"tick at {ts_ms} is older than the previous tick at {last_ts}")
        if not price > 0.0:
            raise ValueError(f"price must be > 0, got {price!r}")
        if last_ts == _NO_TS:
            self._first_ts = ts_ms
        self._last_ts = ts_ms
        max_t = self._max_t
        max_p = self._max_p
        min_t = self._min_t
        min_p = self._min_p
        while max_p and max_p[-1] <= price:
            max_p.pop()
            max_t.pop()
        max_p.append(price)
        max_t.append(ts_ms)
        while min_p and min_p[-1] >= price:
            min_p.pop()
            min_t.pop()
        min_p.append(price)
        min_t.append(ts_ms)
        cutoff = ts_ms - self._window
        # The newest tick is never evicted (window_ms > 0), so the deques stay non-empty.
        while max_t[0] <= cutoff:
            max_t.popleft()
            max_p.popleft()
        while min_t[0] <= cutoff:
            min_t.popleft()
            min_p.popleft()
        if self.ready or cutoff >= self._first_ts:
            self.ready = True
            v = (max_p[0] - min_p[0]) / price
            self.value = v
            return v
        return NAN

    def update_many(self, ts_ms: Sequence[int], prices: Sequence[float]) -> list[float]:
        if len(ts_ms) != len(prices):
            raise ValueError(f"input sequences differ in length: {len(ts_ms)} != {len(prices)}")
        # The deques and the timestamps already carry all the state: calling `update` keeps a
        # single copy of the eviction logic at a small call overhead (ticks come in bursts).
        update = self.update
        return [update(t, p) for t, p in zip(ts_ms, prices, strict=True)]

    def snapshot(self) -> dict[str, Any]:
        state = new_state("WindowedMove", {"window_ms": self._window})
        state.update(max_t=list(self._max_t), max_p=enc_list(self._max_p))
        state.update(min_t=list(self._min_t), min_p=enc_list(self._min_p))
        state.update(first_ts=self._first_ts, last_ts=self._last_ts)
        state.update(ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "WindowedMove", {"window_ms": self._window})
        self._max_t = deque(int(t) for t in state["max_t"])
        self._max_p = deque(dec_list(state["max_p"]))
        self._min_t = deque(int(t) for t in state["min_t"])
        self._min_p = deque(dec_list(state["min_p"]))
        self._first_ts = int(state["first_ts"])
        self._last_ts = int(state["last_ts"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])
