"""The strategy component: one worker per configured strategy instance, running one
`StrategyRunner` per symbol.

Consumes `market.kline.<SYMBOL>` (plus `market.book.*` / `market.mark.*` when the strategy asks
for them) and `order.update` (its own orders and denials only); produces `signal.<instance>`
and, when a symbol's copy of the strategy raises, an alert on `system.alert` — that copy is
disabled, every other symbol and instance keeps running.

With `[strategies.run.trade]` configured, every signal passes through the instance's
`TradeManager` first: entries are screened and sized (refusals go back to the strategy as
`OrderDenied`), fills become positions, and exit rules add exit signals on each closed bar —
even for a symbol whose strategy copy is disabled.

Before the feeds start (`start()`, run by the supervisor ahead of every producer), each copy is
made ready: its saved state is restored when one exists and fits, and the bars it lacks — the
whole warm-up, or just the bars since the snapshot — are fetched from history and replayed
with their signals discarded. `run()` fires clock-driven timers and saves state periodically
and once more on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from app.bus import (
    MARKET_BOOK,
    MARKET_KLINE,
    MARKET_MARK,
    ORDER_UPDATE,
    SIGNAL,
    SYSTEM_ALERT,
    Bus,
)
from app.domain import (
    Alert,
    AlertSeverity,
    BookTicker,
    Clock,
    Kline,
    MarkPrice,
    OrderDenied,
    OrderUpdated,
    Signal,
)
from app.domain.orders import OrderEvent
from exchange.binance.kline_gaps import interval_ms
from strategies.base import Strategy, StrategyParams
from strategies.history import HistorySource, plan_catch_up
from strategies.runner import SnapshotMismatch, StrategyRunner
from strategies.snapshots import SnapshotStore
from strategies.trade.manager import TradeManager

__all__ = ["StrategyWorker", "WorkerOptions"]

log = structlog.get_logger("strategies.worker")

# Timers are checked at least this often, so one set while the worker sleeps is not late by more.
_TIMER_POLL_S = 1.0
# The snapshot-store key of the instance's trade management (never a symbol: not upper-case).
TRADE_STATE_KEY = "__trade__"
# A strategy answering each refusal with another entry, again and again, is cut off here.
_MAX_REFUSAL_ROUNDS = 8


@dataclass(frozen=True)
class WorkerOptions:
    snapshot_interval_s: float = 60.0
    max_catch_up_bars: int = 1000


class StrategyWorker:
    def __init__(
        self,
        *,
        instance: str,
        strategy_cls: type[Strategy[Any]],
        params: StrategyParams,
        symbols: Sequence[str],
        interval: str,
        bus: Bus,
        clock: Clock,
        history: HistorySource | None = None,
        store: SnapshotStore | None = None,
        options: WorkerOptions | None = None,
        trade_factory: Callable[[], TradeManager] | None = None,
    ) -> None:
        self.instance = instance
        self.component = f"strategy.{instance}"
        self.strategy_cls = strategy_cls
        self.params = params
        self.interval = interval
        self.clock = clock
        self.history = history
        self.store = store
        self.options = options or WorkerOptions()
        self._step_ms = interval_ms(interval)
        self.runners = {symbol: self._new_runner(symbol) for symbol in symbols}
        self._trade_factory = trade_factory
        #: exits, sizing and entry filters (`[strategies.run.trade]`); None: signals go out as-is
        self.trade = trade_factory() if trade_factory is not None else None
        self.recovery: dict[str, str] = {symbol: "pending" for symbol in symbols}
        self._reported: set[str] = set()
        self._signals = bus.sender(SIGNAL.channel(instance))
        self._alerts = bus.sender(SYSTEM_ALERT.channel())
        sample = next(iter(self.runners.values())).strategy
        for symbol in symbols:
            bus.subscribe(MARKET_KLINE.channel(symbol), self.on_kline, subscriber=self.component)
            if sample.book_tickers:
                bus.subscribe(MARKET_BOOK.channel(symbol), self.on_book, subscriber=self.component)
            if sample.mark_prices:
                bus.subscribe(MARKET_MARK.channel(symbol), self.on_mark, subscriber=self.component)
        bus.subscribe(ORDER_UPDATE.channel(), self.on_order_event, subscriber=self.component)

    def _new_runner(self, symbol: str) -> StrategyRunner:
        return StrategyRunner(
            self.strategy_cls,
            self.params,
            instance=self.instance,
            symbol=symbol,
            interval=self.interval,
        )

    # -- start-up -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self._recover_trade()
        for symbol in self.runners:
            await self._recover(symbol)

    async def _recover_trade(self) -> None:
        if self.trade is None or self._trade_factory is None or self.store is None:
            return
        saved = await self.store.load(self.instance, TRADE_STATE_KEY)
        if saved is None:
            return
        try:
            self.trade.restore(saved)
        except (KeyError, TypeError, ValueError) as exc:
            self.trade = self._trade_factory()
            log.error("trade_state_ignored", instance=self.instance, reason=str(exc))
            await self._alert(
                AlertSeverity.WARNING,
                f"{self.instance}: trade state not restored",
                f"{type(exc).__name__}: {exc}; positions opened before this start are not "
                "managed by its exit rules",
            )
            return
        log.info(
            "trade_state_restored",
            instance=self.instance,
            open_positions=len(self.trade.positions),
        )

    async def _recover(self, symbol: str) -> None:
        runner = self.runners[symbol]
        saved = await self.store.load(self.instance, symbol) if self.store is not None else None
        restored = False
        if saved is not None:
            try:
                runner.restore(saved)
                restored = True
            except (SnapshotMismatch, KeyError, TypeError, ValueError) as exc:
                log.warning(
                    "strategy_snapshot_ignored",
                    instance=self.instance,
                    symbol=symbol,
                    reason=str(exc),
                )
                runner = self.runners[symbol] = self._new_runner(symbol)
        step_ms = self._step_ms
        if step_ms is None or self.history is None:
            # Without history (or for monthly bars) the strategy warms up on live bars.
            self.recovery[symbol] = "restored" if restored else "live_warmup"
            return
        plan = plan_catch_up(
            now_ms=self.clock.now_ms(),
            step_ms=step_ms,
            warmup_bars=runner.strategy.warmup_bars,
            restored_last_open_ms=runner.last_bar_open_ms if restored else None,
            max_catch_up_bars=self.options.max_catch_up_bars,
        )
        if restored and not plan.resume:
            runner = self.runners[symbol] = self._new_runner(symbol)
        bars: Sequence[Kline] = ()
        if not plan.empty:
            try:
                bars = await self.history.closed_klines(
                    symbol, self.interval, start_ms=plan.start_ms, end_ms=plan.end_ms
                )
            except Exception as exc:  # noqa: BLE001 - any venue failure: warm up live instead
                log.error(
                    "strategy_history_failed",
                    instance=self.instance,
                    symbol=symbol,
                    error=f"{type(exc).__name__}: {exc}",
                )
                self.runners[symbol] = self._new_runner(symbol)
                self.recovery[symbol] = "live_warmup"
                await self._alert(
                    AlertSeverity.WARNING,
                    f"{self.instance}/{symbol}: no warm-up history",
                    f"{type(exc).__name__}: {exc}; signals wait for "
                    f"{runner.strategy.warmup_bars} live bars",
                )
                return
        fed = runner.warm_up(bars)
        if self.trade is not None:
            self.trade.on_history(bars)
        self.recovery[symbol] = "resumed" if plan.resume else "warmed_up"
        log.info(
            "strategy_ready",
            instance=self.instance,
            symbol=symbol,
            resumed=plan.resume,
            history_bars=fed,
            warmed_up=runner.warmed_up,
        )
        await self._report(runner)

    # -- events -------------------------------------------------------------------------------
    async def on_kline(self, kline: Kline) -> None:
        if kline.interval != self.interval:
            return
        runner = self.runners[kline.symbol]
        if kline.closed and self._step_ms is not None and runner.last_bar_open_ms >= 0:
            expected = runner.last_bar_open_ms + self._step_ms
            if kline.open_time_ms > expected:
                await self._fill_gap(runner, expected, kline.open_time_ms - self._step_ms)
        signals = runner.on_kline(kline)
        trade = self.trade
        if trade is None:
            await self._publish(runner, signals)
            return
        if kline.closed:
            # Exit rules judge the bar before the strategy's own decisions are sized.
            await self._publish(runner, trade.on_bar(kline, runner.ctx))
            await self._deny(runner, trade.take_denials())
        await self._manage(runner, signals)

    async def _fill_gap(self, runner: StrategyRunner, start_ms: int, end_ms: int) -> None:
        """Bars that closed between the warm-up and the first live bar: replayed as history,
        since a signal from a bar that closed minutes ago would act on a stale price."""
        if self.history is None:
            return
        try:
            bars = await self.history.closed_klines(
                runner.symbol, self.interval, start_ms=start_ms, end_ms=end_ms
            )
        except Exception as exc:  # noqa: BLE001 - the live bar is still delivered
            log.warning(
                "strategy_gap_unfilled",
                instance=self.instance,
                symbol=runner.symbol,
                from_ms=start_ms,
                to_ms=end_ms,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        runner.warm_up(bars)
        if self.trade is not None:
            self.trade.on_history(bars)

    async def on_book(self, book: BookTicker) -> None:
        runner = self.runners[book.symbol]
        await self._manage(runner, runner.on_book(book))

    async def on_mark(self, mark: MarkPrice) -> None:
        runner = self.runners[mark.symbol]
        await self._manage(runner, runner.on_mark(mark))

    async def on_order_event(self, event: OrderEvent) -> None:
        if not isinstance(event, OrderUpdated | OrderDenied) or event.strategy != self.instance:
            return
        runner = self.runners.get(event.symbol)
        if runner is None:
            return
        if self.trade is not None:
            self.trade.on_order(event)
        await self._manage(runner, runner.on_order(event))

    async def _manage(self, runner: StrategyRunner, signals: Sequence[Signal]) -> None:
        """Pass the strategy's signals through trade management (when configured): publish
        what it lets out and hand its refusals back to the strategy, whose answer is managed
        the same way."""
        trade = self.trade
        if trade is None:
            await self._publish(runner, signals)
            return
        for _ in range(_MAX_REFUSAL_ROUNDS):
            if not signals:
                return
            out, denials = trade.on_signals(signals, runner.ctx)
            await self._publish(runner, out)
            signals = self._answers(runner, denials)
        log.warning("strategy_refusal_loop_cut", instance=self.instance, symbol=runner.symbol)

    async def _deny(self, runner: StrategyRunner, denials: Sequence[OrderDenied]) -> None:
        if denials:
            await self._manage(runner, self._answers(runner, denials))

    def _answers(self, runner: StrategyRunner, denials: Sequence[OrderDenied]) -> Sequence[Signal]:
        answers: list[Signal] = []
        for denial in denials:  # refusals of a symbol's signals concern that symbol only
            answers.extend(runner.on_order(denial))
        return answers

    async def _publish(self, runner: StrategyRunner, signals: Sequence[Signal]) -> None:
        for signal in signals:
            log.info(
                "signal_emitted",
                strategy=signal.strategy,
                symbol=signal.symbol,
                action=signal.action.value,
                signal_id=signal.signal_id,
                reason=signal.reason,
            )
            await self._signals.send(signal)
        if runner.failure is not None and runner.symbol not in self._reported:
            await self._report(runner)

    async def _report(self, runner: StrategyRunner) -> None:
        failure = runner.failure
        if failure is None or runner.symbol in self._reported:
            return
        self._reported.add(runner.symbol)
        log.error(
            "strategy_disabled",
            instance=self.instance,
            symbol=runner.symbol,
            failed_on=failure.event,
            event_ts_ms=failure.event_ts_ms,
            error=failure.error,
        )
        await self._alert(
            AlertSeverity.CRITICAL,
            f"{self.instance}/{runner.symbol} disabled",
            f"raised on a {failure.event} event at {failure.event_ts_ms}: {failure.error}",
        )

    async def _alert(self, severity: AlertSeverity, title: str, detail: str) -> None:
        await self._alerts.send(
            Alert(
                severity=severity,
                source=self.component,
                title=title,
                detail=detail,
                ts_ms=self.clock.now_ms(),
            )
        )

    # -- timers and state -----------------------------------------------------------------------
    async def run(self) -> None:
        clock = self.clock
        next_save = clock.monotonic() + self.options.snapshot_interval_s
        try:
            while True:
                await clock.sleep(self._sleep_s())
                now_ms = clock.now_ms()
                for runner in self.runners.values():
                    if runner.ctx.has_timers:
                        await self._manage(runner, runner.fire_timers(now_ms))
                if clock.monotonic() >= next_save:
                    next_save = clock.monotonic() + self.options.snapshot_interval_s
                    await self.save()
        finally:
            await self.save()

    def _sleep_s(self) -> float:
        dues = [r.ctx.next_timer_ms for r in self.runners.values() if r.ctx.has_timers]
        if not dues:
            return _TIMER_POLL_S
        wait_ms = min(d for d in dues if d is not None) - self.clock.now_ms()
        return min(_TIMER_POLL_S, max(wait_ms / 1000, 0.0))

    async def save(self) -> None:
        if self.store is None:
            return
        for symbol, runner in self.runners.items():
            if runner.failure is None:
                self.store.put(self.instance, symbol, runner.snapshot())
        if self.trade is not None:
            self.store.put(self.instance, TRADE_STATE_KEY, self.trade.snapshot())
        try:
            await self.store.flush()
        except OSError as exc:
            log.error("strategy_snapshot_failed", instance=self.instance, error=str(exc))

    # -- heartbeat -----------------------------------------------------------------------------
    @property
    def bars_handled(self) -> int:
        return sum(r.stats.bars for r in self.runners.values())

    def status(self) -> dict[str, Any]:
        symbols: dict[str, Any] = {}
        for symbol, runner in self.runners.items():
            if runner.failure is not None:
                state = "disabled"
            elif not runner.warmed_up:
                state = "warming_up"
            else:
                state = "running"
            entry: dict[str, Any] = {
                "state": state,
                "recovery": self.recovery[symbol],
                "position": str(runner.ctx.position),
                **runner.stats.as_dict(),
            }
            if runner.failure is not None:
                entry["error"] = runner.failure.error
            symbols[symbol] = entry
        stats = [runner.stats for runner in self.runners.values()]
        trade = {"trade": self.trade.status()} if self.trade is not None else {}
        return {
            "strategy": self.strategy_cls.name,
            "interval": self.interval,
            "bars": sum(s.bars for s in stats),
            "signals": sum(s.signals for s in stats),
            "errors": sum(s.errors for s in stats),
            "disabled": sum(1 for r in self.runners.values() if r.failure is not None),
            "processing_ms": round(sum(s.busy_ns for s in stats) / 1e6, 3),
            "symbols": symbols,
            **trade,
        }
