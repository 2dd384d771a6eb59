"""Session VWAP anchored to the UTC day, with volume-weighted standard-deviation bands."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from strategies.indicators.base import NAN, check_state, dec, enc, new_state

_DAY_MS = 86_400_000
_NO_DAY = -(1 << 62)  # before any representable open time
_sqrt = math.sqrt


class SessionVWAP:
    """Volume-weighted average price since the start of the current UTC day, with bands.

    Each bar contributes its typical price ``tp = (high + low + close) / 3`` with weight
    `volume`. ``vwap = Σ v·tp / Σ v`` and ``std = sqrt(Σ v·(tp - vwap)² / Σ v)`` over the bars of
    the session so far; ``upper``/``lower = vwap ± band_mult · std``. `value` is the vwap.

    The session is the UTC date of the bar's open time: a bar whose open time falls on another
    date than the previous bar's resets everything before it is added (whatever its volume).
    Bars with zero volume change nothing else; negative or NaN volume raises ValueError. Until
    the session has positive volume every output is NaN and `ready` is False.

    The mean and the weighted sum of squares use West's weighted incremental algorithm
    (weighted Welford), which is stable for large prices with small dispersion; a tiny
    negative variance from rounding is clamped to 0.
    """

    __slots__ = (
        "_day",
        "_m2",
        "_w",
        "band_mult",
        "lower",
        "ready",
        "std",
        "upper",
        "value",
        "vwap",
    )

    def __init__(self, band_mult: float = 2.0) -> None:
        if not band_mult >= 0.0 or math.isinf(band_mult):
            raise ValueError(f"band_mult must be a finite number >= 0, got {band_mult!r}")
        self.band_mult = float(band_mult)
        self._day = _NO_DAY
        self._w = 0.0
        self._m2 = 0.0
        self.ready = False
        self.value = NAN
        self.vwap = NAN
        self.std = NAN
        self.upper = NAN
        self.lower = NAN

    def _reset(self, day: int) -> None:
        self._day = day
        self._w = 0.0
        self._m2 = 0.0
        self.ready = False
        self.value = self.vwap = self.std = self.upper = self.lower = NAN

    def update(
        self, open_time_ms: int, high: float, low: float, close: float, volume: float
    ) -> float:
        if not volume >= 0.0:
            raise ValueError(f"volume must be >= 0, got {volume!r}")
        day = open_time_ms // _DAY_MS
        if day != self._day:
            self._reset(day)
        if volume > 0.0:
            tp = (high + low + close) / 3.0
            w = self._w + volume
            mean = self.vwap if self.ready else 0.0
            d = tp - mean
            mean += (volume / w) * d
            m2 = self._m2 + volume * d * (tp - mean)
            self._w = w
            self._m2 = m2
            var = m2 / w
            std = _sqrt(var) if var > 0.0 else 0.0
            band = self.band_mult * std
            self.ready = True
            self.value = self.vwap = mean
            self.std = std
            self.upper = mean + band
            self.lower = mean - band
        return self.value

    def update_many(
        self,
        open_times_ms: Sequence[int],
        highs: Sequence[float],
        lows: Sequence[float],
        closes: Sequence[float],
        volumes: Sequence[float],
    ) -> list[float]:
        lengths = {len(open_times_ms), len(highs), len(lows), len(closes), len(volumes)}
        if len(lengths) > 1:
            raise ValueError("input sequences differ in length")
        k = self.band_mult
        cur_day = self._day
        w = self._w
        m2 = self._m2
        mean = self.vwap if self.ready else 0.0
        std = self.std
        out: list[float] = []
        append = out.append
        try:
            for t, high, low, close, volume in zip(
                open_times_ms, highs, lows, closes, volumes, strict=True
            ):
                if not volume >= 0.0:
                    raise ValueError(f"volume must be >= 0, got {volume!r}")
                day = t // _DAY_MS
                if day != cur_day:
                    cur_day = day
                    w = m2 = 0.0
                    mean = 0.0
                    std = NAN
                if volume > 0.0:
                    tp = (high + low + close) / 3.0
                    w += volume
                    d = tp - mean
                    mean += (volume / w) * d
                    m2 += volume * d * (tp - mean)
                    var = m2 / w
                    std = _sqrt(var) if var > 0.0 else 0.0
                append(mean if w > 0.0 else NAN)
        finally:
            # Leave the state as sequential updates would, even if a bar was rejected.
            self._day = cur_day
            self._w = w
            self._m2 = m2
            if w > 0.0:
                band = k * std
                self.ready = True
                self.value = self.vwap = mean
                self.std = std
                self.upper = mean + band
                self.lower = mean - band
            else:
                self.ready = False
                self.value = self.vwap = self.std = self.upper = self.lower = NAN
        return out

    def snapshot(self) -> dict[str, Any]:
        state = new_state("SessionVWAP", {"band_mult": self.band_mult})
        state.update(day=self._day, w=enc(self._w), m2=enc(self._m2), ready=self.ready)
        state.update(vwap=enc(self.vwap), std=enc(self.std))
        state.update(upper=enc(self.upper), lower=enc(self.lower))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, "SessionVWAP", {"band_mult": self.band_mult})
        self._day = int(state["day"])
        self._w = dec(state["w"])
        self._m2 = dec(state["m2"])
        self.ready = bool(state["ready"])
        self.value = self.vwap = dec(state["vwap"])
        self.std = dec(state["std"])
        self.upper = dec(state["upper"])
        self.lower = dec(state["lower"])
