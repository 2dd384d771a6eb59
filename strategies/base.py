"""The Strategy API: what a strategy author writes.

A strategy is pure decision logic for **one symbol**. It never does I/O, never reads a clock
and never sees another symbol's data: everything reaches it through its `StrategyContext`,
which is bound to one symbol and one interval, and everything it decides leaves through the
same context as `Signal`s. That is what lets the very same object run live, on paper and in a
backtest, and be fed history in one chunk or bar by bar with identical results.

A minimal strategy::

    class Params(StrategyParams):
        period: int = Field(default=20, ge=2, description="bars in the moving average")

    class Crossing(Strategy[Params]):
        name = "crossing"
        params_model = Params
        summary = "long while the close is above its moving average"
        market = "trending markets"

        def __init__(self, params: Params, ctx: StrategyContext) -> None:
            super().__init__(params, ctx)
            self.sma = SMA(params.period)
            self.warmup_bars = params.period

        def on_bar(self, bar: Kline) -> None:
            close = float(bar.close)
            average = self.sma.update(close)
            if close > average and self.ctx.position == 0:
                self.ctx.enter_long("close above average")

Closed bars arrive in `on_bar`; intrabar updates (`on_intrabar`), book tickers (`on_book`) and
mark prices (`on_mark`) only when the strategy sets `intrabar`, `book_tickers` or
`mark_prices` to True (class attribute, or in `__init__` from its parameters). Its own order
updates and denials arrive in `on_order`, timers set with `ctx.set_timer` in `on_timer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from app.domain import BookTicker, Kline, MarkPrice, OrderDenied, OrderUpdated

if TYPE_CHECKING:
    from strategies.context import StrategyContext

__all__ = ["Strategy", "StrategyParams", "Timer"]


class StrategyParams(BaseModel):
    """Base of every strategy's parameters: frozen, and unknown keys are errors (a typo in the
    config must stop the daemon, not silently run the default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=StrategyParams)


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer the strategy set with `ctx.set_timer(name, due_ms)`, now due."""

    name: str
    symbol: str
    due_ms: int


class Strategy(Generic[P]):
    """Subclass this, name it, give it a parameter model and implement `on_bar`."""

    #: registry key, used in config (`strategy = "..."`) and in `tradebus strategies list`
    name: ClassVar[str] = ""
    params_model: ClassVar[type[StrategyParams]] = StrategyParams
    #: one line: what it does
    summary: ClassVar[str] = ""
    #: the market it is meant for (and when not to use it)
    market: ClassVar[str] = ""
    #: bump when `snapshot()`'s layout changes: older snapshots are then ignored, not misread
    state_version: ClassVar[int] = 1

    # What is delivered besides closed bars. Instances may change these in __init__.
    intrabar: bool = False
    book_tickers: bool = False
    mark_prices: bool = False

    def __init__(self, params: P, ctx: StrategyContext) -> None:
        self.params = params
        self.ctx = ctx
        #: closed bars needed before the strategy may signal; history is fed before live bars
        self.warmup_bars = 0

    def on_bar(self, bar: Kline) -> None:
        raise NotImplementedError

    def on_intrabar(self, bar: Kline) -> None:
        """An update of the bar still forming (only when `intrabar` is True)."""

    def on_book(self, book: BookTicker) -> None:
        """Best bid/ask (only when `book_tickers` is True)."""

    def on_mark(self, mark: MarkPrice) -> None:
        """Futures mark price and funding (only when `mark_prices` is True)."""

    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        """One of this strategy's own orders changed, or the risk gate denied its signal."""

    def on_timer(self, timer: Timer) -> None:
        """A timer set with `ctx.set_timer` is due."""

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state that, restored into a fresh instance with the same parameters, lets
        it continue exactly where this one stands (so a restart needs no full warm-up)."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state but was given some")
