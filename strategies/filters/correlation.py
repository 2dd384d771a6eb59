"""Correlation entry filter: refuses an entry that would mostly repeat the risk of an open
position, judged by the rolling correlation of the two symbols' returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from app.domain import Signal
from strategies.exits.base import TrackedPosition
from strategies.filters.base import Stateless, check_name, shown
from strategies.trade.state import ALLOW, Prices, SymbolMarket, TradeState, Verdict, entry_side

__all__ = ["CorrelationFilter", "aligned_returns", "pearson"]


def aligned_returns(first: SymbolMarket, second: SymbolMarket) -> tuple[list[float], list[float]]:
    """The returns of both symbols at the times both have a finite one, oldest first.

    Raises ValueError when a market's `returns` and `return_times` differ in length, since
    pairing them would then be a guess.
    """
    first_by_time = _by_time(first)
    second_by_time = _by_time(second)
    xs: list[float] = []
    ys: list[float] = []
    for time in sorted(first_by_time.keys() & second_by_time.keys()):
        x, y = first_by_time[time], second_by_time[time]
        if math.isfinite(x) and math.isfinite(y):
            xs.append(x)
            ys.append(y)
    return xs, ys


def _by_time(market: SymbolMarket) -> dict[int, float]:
    if len(market.returns) != len(market.return_times):
        raise ValueError(
            f"{market.symbol} has {len(market.returns)} returns "
            f"but {len(market.return_times)} return times"
        )
    return dict(zip(market.return_times, market.returns, strict=True))


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's correlation of two equally long series; None when either is constant."""
    if len(xs) != len(ys):
        raise ValueError(f"series differ in length: {len(xs)} and {len(ys)}")
    # Judged on the values, not on a computed variance, which rounding makes nonzero for
    # some constant series.
    if len(xs) < 2 or min(xs) == max(xs) or min(ys) == max(ys):
        return None
    dx = _unit_deviations(xs)
    dy = _unit_deviations(ys)
    sxx = math.fsum(d * d for d in dx)
    syy = math.fsum(d * d for d in dy)
    sxy = math.fsum(a * b for a, b in zip(dx, dy, strict=True))
    # Rounding can push |r| a hair past 1.
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _unit_deviations(values: Sequence[float]) -> list[float]:
    """Deviations from the mean scaled so the largest is 1: r does not change, and squaring
    tiny returns cannot underflow to a zero variance."""
    mean = math.fsum(values) / len(values)
    deviations = [value - mean for value in values]
    largest = max(abs(d) for d in deviations)
    return [d / largest for d in deviations]


@dataclass(frozen=True, slots=True)
class _Judgement:
    position: TrackedPosition
    correlation: float | None  # of the returns; None when unknown
    why_unknown: str = ""


@dataclass(slots=True)
class CorrelationFilter(Stateless):
    """Refuses an entry whose effective correlation with an open position exceeds
    `max_correlation`.

    The correlation is Pearson's r of the two symbols' returns at the times both have one
    (at least `min_overlap` of them). It is effective as is when the entry and the position
    are on the same side and negated otherwise: a long entry against an open short of a
    correlated symbol hedges rather than doubles. The reason names the open position with
    the highest effective correlation; when none is too high but some correlation cannot be
    computed, `when_unknown` decides.
    """

    max_correlation: float = 0.7
    min_overlap: int = 30
    when_unknown: Literal["refuse", "allow"] = "refuse"
    name: str = field(default="correlation", kw_only=True)

    def __post_init__(self) -> None:
        check_name(self.name)
        if not -1 < self.max_correlation < 1:
            raise ValueError(f"max_correlation must be in (-1, 1), got {self.max_correlation}")
        if (
            isinstance(self.min_overlap, bool)
            or not isinstance(self.min_overlap, int)
            or self.min_overlap < 3
        ):
            raise ValueError(f"min_overlap must be an integer >= 3, got {self.min_overlap!r}")
        if self.when_unknown not in ("refuse", "allow"):
            raise ValueError(f"when_unknown must be 'refuse' or 'allow', got {self.when_unknown!r}")

    def allow_entry(self, signal: Signal, state: TradeState, prices: Prices) -> Verdict:
        side = entry_side(signal)
        worst: tuple[float, bool, _Judgement] | None = None
        first_unknown: _Judgement | None = None
        # Positions often share a symbol: one correlation per symbol, not per position.
        by_symbol: dict[str, _Judgement] = {}
        for position in state.positions:
            known = by_symbol.get(position.symbol)
            if known is None:
                known = by_symbol[position.symbol] = self._judge(signal.symbol, position, prices)
            judgement = replace(known, position=position)
            if judgement.correlation is None:
                first_unknown = first_unknown or judgement
                continue
            same_side = position.side == side
            effective = judgement.correlation if same_side else -judgement.correlation
            if worst is None or effective > worst[0]:
                worst = (effective, same_side, judgement)
        limit = self.max_correlation
        if worst is not None and worst[0] > limit:
            effective, same_side, judgement = worst
            held = f"open {judgement.position.side} {judgement.position.symbol}"
            if same_side:
                return Verdict.refuse(
                    f"{self.name}: {shown(effective, limit, 2)} with {held} > {limit:g}"
                )
            return Verdict.refuse(
                f"{self.name}: {shown(-effective, -limit, 2)} with {held} for a {side} entry "
                f"(effective {shown(effective, limit, 2)}) > {limit:g}"
            )
        if first_unknown is not None and self.when_unknown == "refuse":
            position = first_unknown.position
            return Verdict.refuse(
                f"{self.name}: unknown with open {position.side} {position.symbol} "
                f"({first_unknown.why_unknown})"
            )
        return ALLOW

    def _judge(self, symbol: str, position: TrackedPosition, prices: Prices) -> _Judgement:
        entry_market = prices.get(symbol)
        if entry_market is None:
            return _Judgement(position, None, f"no market for {symbol}")
        held_market = prices.get(position.symbol)
        if held_market is None:
            return _Judgement(position, None, f"no market for {position.symbol}")
        try:
            xs, ys = aligned_returns(entry_market, held_market)
        except ValueError as error:
            return _Judgement(position, None, str(error))
        if len(xs) < self.min_overlap:
            return _Judgement(
                position, None, f"{len(xs)} aligned returns, needs {self.min_overlap}"
            )
        correlation = pearson(xs, ys)
        if correlation is None:
            return _Judgement(position, None, "returns do not vary")
        return _Judgement(position, correlation)
