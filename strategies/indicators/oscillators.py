"""Wilder-smoothed indicators: RSI, ATR and ADX (with +DI, -DI and its own ATR).

Wilder smoothing is ``avg = (avg * (n - 1) + x) / n`` after a seed that is the simple mean of
the first `n` inputs. Everything is O(1) per bar in plain floats; inputs must be finite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strategies.indicators.base import NAN, check_period, check_state, dec, enc, new_state


def _check_lengths(*seqs: Sequence[float]) -> None:
    if len({len(s) for s in seqs}) > 1:
        raise ValueError(f"input sequences differ in length: {[len(s) for s in seqs]}")


class RSI:
    """Wilder's Relative Strength Index of a value series.

    Gains and losses are the positive and negative parts of consecutive changes. The first
    average gain/loss is the simple mean of the first `period` changes, then Wilder smoothing.
    ``RSI = 100 - 100 / (1 + avg_gain / avg_loss)``; when avg_loss is 0 the RSI is 100, or 50
    when avg_gain is 0 too. Ready after `period` changes, i.e. at the ``period + 1``-th value.
    """

    __slots__ = ("_avg_gain", "_avg_loss", "_count", "_n", "_nm1", "_prev", "ready", "value")

    def __init__(self, period: int = 14) -> None:
        self._n = check_period(period)
        self._nm1 = float(period - 1)
        self._prev = NAN
        self._count = 0  # values seen, until ready
        self._avg_gain = 0.0  # a plain sum of gains while seeding
        self._avg_loss = 0.0
        self.ready = False
        self.value = NAN

    def update(self, x: float) -> float:
        d = x - self._prev
        self._prev = x
        gain = d if d > 0.0 else 0.0
        loss = -d if d < 0.0 else 0.0
        if self.ready:
            n = self._n
            nm1 = self._nm1
            ag = (self._avg_gain * nm1 + gain) / n
            al = (self._avg_loss * nm1 + loss) / n
        else:
            count = self._count + 1
            self._count = count
            if count == 1:
                return NAN
            ag = self._avg_gain + gain
            al = self._avg_loss + loss
            if count <= self._n:
                self._avg_gain = ag
                self._avg_loss = al
                return NAN
            ag /= self._n
            al /= self._n
            self.ready = True
        self._avg_gain = ag
        self._avg_loss = al
        v = (100.0 if ag > 0.0 else 50.0) if al == 0.0 else 100.0 - 100.0 / (1.0 + ag / al)
        self.value = v
        return v

    def update_many(self, xs: Sequence[float]) -> list[float]:
        n = self._n
        nm1 = self._nm1
        prev = self._prev
        count = self._count
        ag = self._avg_gain
        al = self._avg_loss
        ready = self.ready
        v = self.value
        out: list[float] = []
        append = out.append
        for x in xs:
            d = x - prev
            prev = x
            gain = d if d > 0.0 else 0.0
            loss = -d if d < 0.0 else 0.0
            if ready:
                ag = (ag * nm1 + gain) / n
                al = (al * nm1 + loss) / n
            else:
                count += 1
                if count == 1:
                    append(NAN)
                    continue
                ag += gain
                al += loss
                if count <= n:
                    append(NAN)
                    continue
                ag /= n
                al /= n
                ready = True
            v = (100.0 if ag > 0.0 else 50.0) if al == 0.0 else 100.0 - 100.0 / (1.0 + ag / al)
            append(v)
        self._prev = prev
        self._count = count
        self._avg_gain = ag
        self._avg_loss = al
        self.ready = ready
        self.value = v
        return out

    def snapshot(self) -> dict[str, Any]:
        state = new_state("RSI", {"period": self._n})
        state.update(prev=enc(self._prev), count=self._count)
        state.update(avg_gain=enc(self._avg_gain), avg_loss=enc(self._avg_loss))
        state.update(ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "RSI", {"period": self._n})
        self._prev = dec(state["prev"])
        self._count = int(state["count"])
        self._avg_gain = dec(state["avg_gain"])
        self._avg_loss = dec(state["avg_loss"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])


class ATR:
    """Wilder's Average True Range of OHLC bars.

    ``TR = max(high - low, |high - prev_close|, |low - prev_close|)``, and ``high - low`` on the
    very first bar. ATR is the mean of the first `period` TRs (ready at bar `period`), then
    Wilder smoothing.
    """

    __slots__ = ("_count", "_n", "_nm1", "_prev_close", "_sum", "ready", "value")

    def __init__(self, period: int = 14) -> None:
        self._n = check_period(period)
        self._nm1 = float(period - 1)
        self._prev_close = NAN
        self._count = 0
        self._sum = 0.0
        self.ready = False
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        pc = self._prev_close
        self._prev_close = close
        tr = high - low
        if pc == pc:  # not the first bar
            a = high - pc
            if a < 0.0:
                a = -a
            if a > tr:
                tr = a
            b = low - pc
            if b < 0.0:
                b = -b
            if b > tr:
                tr = b
        if self.ready:
            v = (self.value * self._nm1 + tr) / self._n
            self.value = v
            return v
        self._sum += tr
        self._count += 1
        if self._count == self._n:
            self.ready = True
            self.value = v = self._sum / self._n
            return v
        return NAN

    def update_many(
        self, highs: Sequence[float], lows: Sequence[float], closes: Sequence[float]
    ) -> list[float]:
        _check_lengths(highs, lows, closes)
        n = self._n
        nm1 = self._nm1
        pc = self._prev_close
        count = self._count
        s = self._sum
        ready = self.ready
        v = self.value
        out: list[float] = []
        append = out.append
        for high, low, close in zip(highs, lows, closes, strict=True):
            tr = high - low
            if pc == pc:
                a = high - pc
                if a < 0.0:
                    a = -a
                if a > tr:
                    tr = a
                b = low - pc
                if b < 0.0:
                    b = -b
                if b > tr:
                    tr = b
            pc = close
            if ready:
                v = (v * nm1 + tr) / n
                append(v)
            else:
                s += tr
                count += 1
                if count == n:
                    ready = True
                    v = s / n
                    append(v)
                else:
                    append(NAN)
        self._prev_close = pc
        self._count = count
        self._sum = s
        self.ready = ready
        self.value = v
        return out

    def snapshot(self) -> dict[str, Any]:
        state = new_state("ATR", {"period": self._n})
        state.update(prev_close=enc(self._prev_close), count=self._count, sum=enc(self._sum))
        state.update(ready=self.ready, value=enc(self.value))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "ATR", {"period": self._n})
        self._prev_close = dec(state["prev_close"])
        self._count = int(state["count"])
        self._sum = dec(state["sum"])
        self.ready = bool(state["ready"])
        self.value = dec(state["value"])


class ADX:
    """Wilder's Average Directional Index, with ``plus_di``, ``minus_di`` and ``atr``.

    From the 2nd bar on: ``up = high - prev_high``, ``down = prev_low - low``;
    ``+DM = up if up > down and up > 0 else 0``, ``-DM = down if down > up and down > 0 else 0``;
    TR as in `ATR`. TR, +DM and -DM are kept as Wilder sums ``S = S - S / n + x``, seeded with
    the plain sum of their first `period` values (bars 2 .. n+1). Then
    ``+DI = 100 * S(+DM) / S(TR)`` and likewise -DI (both 0 when S(TR) is 0, i.e. flat prices),
    ``DX = 100 * |+DI - -DI| / (+DI + -DI)`` (0 when the sum is 0). ADX is the mean of the
    first `period` DX values, then Wilder smoothing: ready at bar ``2 * period``.

    ``plus_di``, ``minus_di`` and ``atr = S(TR) / n`` are available from bar ``period + 1``.
    That ATR has no first-bar ``high - low`` term, so it is Wilder's ATR delayed by one bar and
    differs from `ATR` (TA-Lib's ADX does the same).
    """

    __slots__ = (
        "_count",
        "_dx_sum",
        "_n",
        "_nm1",
        "_prev_close",
        "_prev_high",
        "_prev_low",
        "_s_mdm",
        "_s_pdm",
        "_s_tr",
        "atr",
        "minus_di",
        "plus_di",
        "ready",
        "value",
    )

    def __init__(self, period: int = 14) -> None:
        self._n = check_period(period)
        self._nm1 = float(period - 1)
        self._count = 0
        self._prev_high = NAN
        self._prev_low = NAN
        self._prev_close = NAN
        self._s_tr = 0.0
        self._s_pdm = 0.0
        self._s_mdm = 0.0
        self._dx_sum = 0.0
        self.plus_di = NAN
        self.minus_di = NAN
        self.atr = NAN
        self.ready = False
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        count = self._count + 1
        self._count = count
        ph = self._prev_high
        pl = self._prev_low
        pc = self._prev_close
        self._prev_high = high
        self._prev_low = low
        self._prev_close = close
        if count == 1:
            return NAN
        tr = high - low
        a = high - pc
        if a < 0.0:
            a = -a
        if a > tr:
            tr = a
        b = low - pc
        if b < 0.0:
            b = -b
        if b > tr:
            tr = b
        up = high - ph
        down = pl - low
        pdm = up if up > down and up > 0.0 else 0.0
        mdm = down if down > up and down > 0.0 else 0.0
        n = self._n
        s_tr = self._s_tr
        s_pdm = self._s_pdm
        s_mdm = self._s_mdm
        if count > n + 1:
            s_tr = s_tr - s_tr / n + tr
            s_pdm = s_pdm - s_pdm / n + pdm
            s_mdm = s_mdm - s_mdm / n + mdm
        else:
            s_tr += tr
            s_pdm += pdm
            s_mdm += mdm
        self._s_tr = s_tr
        self._s_pdm = s_pdm
        self._s_mdm = s_mdm
        if count <= n:
            return NAN
        if s_tr > 0.0:
            pdi = 100.0 * s_pdm / s_tr
            mdi = 100.0 * s_mdm / s_tr
        else:
            pdi = mdi = 0.0
        self.plus_di = pdi
        self.minus_di = mdi
        self.atr = s_tr / n
        di_sum = pdi + mdi
        if di_sum > 0.0:
            d = pdi - mdi
            dx = 100.0 * (d if d >= 0.0 else -d) / di_sum
        else:
            dx = 0.0
        if self.ready:
            v = (self.value * self._nm1 + dx) / n
        else:
            dx_sum = self._dx_sum + dx
            self._dx_sum = dx_sum
            if count < 2 * n:
                return NAN
            v = dx_sum / n
            self.ready = True
        self.value = v
        return v

    def update_many(
        self, highs: Sequence[float], lows: Sequence[float], closes: Sequence[float]
    ) -> list[float]:
        # ADX's per-bar arithmetic is long; calling `update` keeps one copy of it, and the
        # call overhead is small next to the arithmetic.
        _check_lengths(highs, lows, closes)
        update = self.update
        return [update(h, lo, c) for h, lo, c in zip(highs, lows, closes, strict=True)]

    _FLOATS = (
        "_prev_high",
        "_prev_low",
        "_prev_close",
        "_s_tr",
        "_s_pdm",
        "_s_mdm",
        "_dx_sum",
        "plus_di",
        "minus_di",
        "atr",
        "value",
    )

    def snapshot(self) -> dict[str, Any]:
        state = new_state("ADX", {"period": self._n})
        state.update({name: enc(getattr(self, name)) for name in self._FLOATS})
        state.update(count=self._count, ready=self.ready)
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "ADX", {"period": self._n})
        for name in self._FLOATS:
            setattr(self, name, dec(state[name]))
        self._count = int(state["count"])
        self.ready = bool(state["ready"])
