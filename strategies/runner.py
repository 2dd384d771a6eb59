"""Runs one strategy object for one symbol: every event goes through its context, is timed and
counted, and a strategy that raises is disabled instead of taking anything else down.

The runner is synchronous and owns no task: the live worker, a backtest driver, the benchmark
and the parity tests all drive the same object the same way, which is what makes a strategy's
signals identical in every mode. It returns the signals each event produced; publishing them
is the caller's business.

Rules it enforces, so that strategies need not:
- data for another symbol raises `ForeignSymbol` (before the strategy sees it);
- closed bars must be of the bound interval and are delivered once, in open-time order —
  a repeated or older bar is counted as stale and dropped;
- intrabar updates reach only strategies that asked for them, and never for a bar already
  closed;
- signals produced while history is replayed, or before the declared warm-up is complete, are
  discarded and counted (a strategy never acts on a half-initialised indicator), and each
  discarded entry is answered with an `OrderDenied` (reason `warm_up: ...`) so the strategy's
  idea of its position stays true;
- due timers fire before the event that moved time past them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain import BookTicker, Kline, MarkPrice, OrderDenied, OrderUpdated, Signal
from strategies.base import Strategy, StrategyParams, Timer
from strategies.context import StrategyContext

__all__ = ["RunnerStats", "SnapshotMismatch", "StrategyFailure", "StrategyRunner"]

_NO_SIGNALS: Sequence[Signal] = ()
_WARMUP_DENIAL = "warm_up: signal from history or before the declared warm-up"
# A strategy answering a denial with another entry, again and again, is cut off here.
_MAX_DENIAL_ROUNDS = 8
_perf_ns = time.perf_counter_ns


class SnapshotMismatch(ValueError):
    """A saved state belongs to other parameters, another interval or an older state layout."""


@dataclass(frozen=True, slots=True)
class StrategyFailure:
    """Why an instance was disabled: the event it failed on and the exception."""

    event: str
    event_ts_ms: int
    error: str


@dataclass(slots=True)
class RunnerStats:
    bars: int = 0  # live closed bars handled
    warmup_bars: int = 0  # history bars replayed before live data
    intrabar: int = 0
    books: int = 0
    marks: int = 0
    orders: int = 0
    timers: int = 0
    signals: int = 0  # signals handed out for publishing
    suppressed: int = 0  # signals discarded: history replay or warm-up incomplete
    stale_bars: int = 0  # repeated or out-of-order closed bars, dropped
    errors: int = 0
    busy_ns: int = 0  # time spent inside the strategy's handlers
    max_ns: int = 0  # the slowest single handler call

    def as_dict(self) -> dict[str, Any]:
        handled = self.bars + self.warmup_bars + self.intrabar + self.books + self.marks
        handled += self.orders + self.timers
        return {
            "bars": self.bars,
            "warmup_bars": self.warmup_bars,
            "intrabar": self.intrabar,
            "books": self.books,
            "marks": self.marks,
            "orders": self.orders,
            "timers": self.timers,
            "signals": self.signals,
            "suppressed_signals": self.suppressed,
            "stale_bars": self.stale_bars,
            "errors": self.errors,
            "processing_ms": round(self.busy_ns / 1e6, 3),
            "mean_us": round(self.busy_ns / handled / 1e3, 3) if handled else 0.0,
            "max_us": round(self.max_ns / 1e3, 3),
        }


class StrategyRunner:
    def __init__(
        self,
        strategy_cls: type[Strategy[Any]],
        params: StrategyParams,
        *,
        instance: str,
        symbol: str,
        interval: str,
    ) -> None:
        self.instance = instance
        self.symbol = symbol
        self.interval = interval
        self.params = params
        self.ctx = StrategyContext(strategy=instance, symbol=symbol, interval=interval)
        self.strategy: Strategy[Any] = strategy_cls(params, self.ctx)
        self.stats = RunnerStats()
        self.failure: StrategyFailure | None = None
        self.last_bar_open_ms = -1
        self.bars_seen = 0  # closed bars the strategy has digested, history included

    @property
    def disabled(self) -> bool:
        return self.failure is not None

    @property
    def warmed_up(self) -> bool:
        return self.bars_seen >= self.strategy.warmup_bars

    # -- events -----------------------------------------------------------------------------
    def on_kline(self, kline: Kline) -> Sequence[Signal]:
        if kline.symbol != self.symbol:
            self.ctx.admit(kline.symbol)
        if kline.interval != self.interval:
            raise ValueError(
                f"{self.instance}/{self.symbol}: runs on {self.interval} bars, "
                f"was given a {kline.interval} bar"
            )
        if self.failure is not None:
            return _NO_SIGNALS
        open_ms = kline.open_time_ms
        stats = self.stats
        if open_ms <= self.last_bar_open_ms:
            if kline.closed:
                stats.stale_bars += 1
            return _NO_SIGNALS
        strategy = self.strategy
        ctx = self.ctx
        if not kline.closed:
            if not strategy.intrabar:
                return _NO_SIGNALS
            stats.intrabar += 1
            # Intrabar updates carry no event time of their own; the bar's open stands in.
            return self._call(strategy.on_intrabar, kline, open_ms, "intrabar")
        self.last_bar_open_ms = open_ms
        close_ms = kline.close_time_ms
        fired = self.fire_timers(close_ms) if ctx.has_timers else _NO_SIGNALS
        if ctx.warming:
            stats.warmup_bars += 1
        else:
            stats.bars += 1
        # Counted first: the bar that completes the warm-up may already signal.
        self.bars_seen += 1
        # The hot path: `_call` inlined, since it runs once per bar per symbol per strategy.
        ctx.now_ms = close_ms
        started = _perf_ns()
        try:
            strategy.on_bar(kline)
        except Exception as exc:  # noqa: BLE001 - isolation is the point: one instance fails alone
            self._fail("bar", close_ms, exc, started)
            return fired
        spent = _perf_ns() - started
        stats.busy_ns += spent
        if spent > stats.max_ns:
            stats.max_ns = spent
        if not ctx.pending:
            return fired
        signals = self._take_signals()
        return signals if not fired else (*fired, *signals)

    def on_book(self, book: BookTicker) -> Sequence[Signal]:
        if book.symbol != self.symbol:
            self.ctx.admit(book.symbol)
        if self.failure is not None or not self.strategy.book_tickers:
            return _NO_SIGNALS
        self.stats.books += 1
        return self._call(self.strategy.on_book, book, book.ts_ms, "book")

    def on_mark(self, mark: MarkPrice) -> Sequence[Signal]:
        if mark.symbol != self.symbol:
            self.ctx.admit(mark.symbol)
        if self.failure is not None or not self.strategy.mark_prices:
            return _NO_SIGNALS
        self.stats.marks += 1
        return self._call(self.strategy.on_mark, mark, mark.ts_ms, "mark")

    def on_order(self, event: OrderUpdated | OrderDenied) -> Sequence[Signal]:
        if event.symbol != self.symbol:
            self.ctx.admit(event.symbol)
        if event.strategy != self.instance:
            raise ValueError(f"{self.instance}: refused an order event of {event.strategy!r}")
        if isinstance(event, OrderUpdated):
            # The position stays true even when the strategy itself is disabled.
            self.ctx.book_fill(event)
        if self.failure is not None:
            return _NO_SIGNALS
        self.stats.orders += 1
        return self._call(self.strategy.on_order, event, event.ts_ms, "order")

    def fire_timers(self, until_ms: int) -> Sequence[Signal]:
        if self.failure is not None:
            return _NO_SIGNALS
        emitted: list[Signal] = []
        for due_ms, name in self.ctx.due_timers(until_ms):
            self.stats.timers += 1
            emitted.extend(
                self._call(
                    self.strategy.on_timer, Timer(name, self.symbol, due_ms), due_ms, "timer"
                )
            )
            if self.failure is not None:
                break
        return emitted

    def warm_up(self, bars: Iterable[Kline]) -> int:
        """Replay closed history bars; whatever they would have signalled is discarded."""
        ctx = self.ctx
        ctx.warming = True
        fed = 0
        try:
            for bar in bars:
                if bar.closed:
                    self.on_kline(bar)
                    fed += 1
        finally:
            ctx.warming = False
        return fed

    def _call(self, handler: Any, event: Any, event_ms: int, kind: str) -> Sequence[Signal]:
        ctx = self.ctx
        ctx.now_ms = event_ms
        started = _perf_ns()
        try:
            handler(event)
        except Exception as exc:  # noqa: BLE001 - isolation is the point: one instance fails alone
            self._fail(kind, event_ms, exc, started)
            return _NO_SIGNALS
        spent = _perf_ns() - started
        stats = self.stats
        stats.busy_ns += spent
        if spent > stats.max_ns:
            stats.max_ns = spent
        return self._take_signals() if ctx.pending else _NO_SIGNALS

    def _fail(self, kind: str, event_ms: int, exc: Exception, started_ns: int) -> None:
        self.stats.busy_ns += _perf_ns() - started_ns
        self.ctx.pending = []
        self.stats.errors += 1
        self.failure = StrategyFailure(kind, event_ms, f"{type(exc).__name__}: {exc}")

    def _take_signals(self) -> Sequence[Signal]:
        ctx = self.ctx
        pending = ctx.pending
        ctx.pending = []
        if ctx.warming or self.bars_seen < self.strategy.warmup_bars:
            self._deny_all(pending)
            return _NO_SIGNALS
        self.stats.signals += len(pending)
        return pending

    def _deny_all(self, signals: list[Signal]) -> None:
        """Discard signals from history or an incomplete warm-up, and tell the strategy its
        entries were denied — exactly as the risk gate would — so it does not believe it holds
        a position that was never opened."""
        ctx = self.ctx
        for _ in range(_MAX_DENIAL_ROUNDS):
            self.stats.suppressed += len(signals)
            for signal in signals:
                if signal.is_exit:
                    continue
                denial = OrderDenied(
                    strategy=self.instance,
                    symbol=self.symbol,
                    reason=_WARMUP_DENIAL,
                    ts_ms=signal.ts_ms,
                    signal_id=signal.signal_id,
                )
                try:
                    self.strategy.on_order(denial)
                except Exception as exc:  # noqa: BLE001 - same isolation as any other handler
                    self._fail("order", signal.ts_ms, exc, _perf_ns())
                    return
            signals, ctx.pending = ctx.pending, []
            if not signals:
                return
        ctx.pending = []

    # -- persistence --------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        strategy = self.strategy
        return {
            "strategy": strategy.name,
            "state_version": strategy.state_version,
            "params": self.params.model_dump(mode="json"),
            "symbol": self.symbol,
            "interval": self.interval,
            "last_bar_open_ms": self.last_bar_open_ms,
            "bars_seen": self.bars_seen,
            "context": self.ctx.snapshot(),
            "state": strategy.snapshot(),
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Continue from a snapshot of an identical configuration; anything else is refused
        (`SnapshotMismatch`) so the caller warms up from history instead. After any error
        here the runner is half-restored: the caller must build a fresh one."""
        strategy = self.strategy
        expected = {
            "strategy": strategy.name,
            "state_version": strategy.state_version,
            "params": self.params.model_dump(mode="json"),
            "symbol": self.symbol,
            "interval": self.interval,
        }
        for key, value in expected.items():
            if snapshot.get(key) != value:
                raise SnapshotMismatch(f"saved {key} differs from the configured one")
        self.ctx.restore(snapshot["context"])
        strategy.restore(snapshot["state"])
        self.last_bar_open_ms = int(snapshot["last_bar_open_ms"])
        self.bars_seen = int(snapshot["bars_seen"])
