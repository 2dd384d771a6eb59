"""Trade management for one strategy instance across its symbols: entries are screened and
sized on their way out, fills become positions, and exit rules close those positions.

The worker feeds it every closed bar (history too: the statistics must be ready and a stop
crossed while the daemon was down must still be honoured), every signal its strategy emits and
every order event of the instance. It returns the signals to publish and the denials to hand
back to the strategy, so the strategy's idea of its position stays true.

Positions are atomic: one per filled entry signal, with a fixed size, closed whole. Fills are
tied to positions by the signal id the executor stamps on order updates, by client order id
once known, and, when neither is known (a flatten, a hand-made order), by side: a closing fill
goes to the position already exiting, then the oldest; an opening fill nobody expected is
adopted as a new position. Exit-rule state lives in each position's metadata, so the whole
book is one JSON snapshot.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

import structlog

from app.domain import Fill, Kline, OrderDenied, OrderUpdated, Side, Signal, SignalAction
from strategies.context import StrategyContext
from strategies.exits.base import Bar, ExitDecision, ExitRule, PositionSide, TrackedPosition
from strategies.recent_ids import RecentIds
from strategies.trade.entry import EntryRule
from strategies.trade.market import MarketTracker
from strategies.trade.state import ClosedTrade, EntryFilter, SymbolMarket, TradeState, entry_side

__all__ = ["MarketSettings", "TradeManager"]

log = structlog.get_logger("strategies.trade")

_BOOK = "__trade__"  # the manager's own bookkeeping inside a position's metadata
_SNAPSHOT_VERSION = 1
_ZERO = Decimal(0)
# Exchange trade ids remembered so a repeated order event does not book its fill twice.
_REMEMBERED_TRADES = 4096


@dataclass(frozen=True)
class MarketSettings:
    interval_ms: int
    atr_period: int = 14
    adx_period: int = 14
    returns_lookback: int = 100


@dataclass
class _Counters:
    entries: int = 0  # entry signals judged
    entries_sent: int = 0
    refused: int = 0
    waits: int = 0
    exits: int = 0  # exit signals sent for positions (rules and strategy)
    adopted: int = 0  # opening fills no signal expected
    unmatched_fills: int = 0  # closing fills with no position to close
    refusals: dict[str, int] = field(default_factory=dict)  # by stage
    exit_rules: dict[str, int] = field(default_factory=dict)


class TradeManager:
    def __init__(
        self,
        *,
        instance: str,
        symbols: Sequence[str],
        capital: float,
        entry: EntryRule,
        exits: ExitRule | None,
        filters: Sequence[EntryFilter] = (),
        market: MarketSettings,
        trade_history: int = 500,
        max_wait_bars: int = 3,
    ) -> None:
        self.instance = instance
        self.capital = capital
        self.entry = entry
        self.exits = exits
        self.filters = tuple(filters)
        self.max_wait_bars = max_wait_bars
        self.markets = {
            symbol: MarketTracker(
                symbol,
                interval_ms=market.interval_ms,
                atr_period=market.atr_period,
                adx_period=market.adx_period,
                returns_lookback=market.returns_lookback,
            )
            for symbol in symbols
        }
        self.positions: dict[str, TrackedPosition] = {}
        self.pending_entries: dict[str, Signal] = {}  # sent, order not final yet
        self.order_positions: dict[str, str] = {}  # client order id -> position id
        self.waiting: dict[str, tuple[Signal, int]] = {}  # model said WAIT: (signal, bars)
        self.due_exits: dict[str, ExitDecision] = {}  # triggered while replaying history
        self.trades: deque[ClosedTrade] = deque(maxlen=trade_history)
        self.realized_pnl = 0.0
        self.peak_equity = capital
        self.counters = _Counters()
        #: denials produced while handling a bar (deferred entries given up); see take_denials
        self.late_denials: list[OrderDenied] = []
        self._seen_trades = RecentIds(_REMEMBERED_TRADES)

    # -- views ---------------------------------------------------------------------------------
    @property
    def equity(self) -> float:
        return self.capital + self.realized_pnl + self._unrealized()

    def state(self, now_ms: int) -> TradeState:
        equity = self.equity
        return TradeState(
            now_ms=now_ms,
            equity=equity,
            peak_equity=max(self.peak_equity, equity),
            positions=tuple(self.positions.values()),
            trades=tuple(self.trades),
        )

    def prices(self) -> dict[str, SymbolMarket]:
        return {symbol: tracker.view() for symbol, tracker in self.markets.items()}

    def _unrealized(self) -> float:
        total = 0.0
        for position in self.positions.values():
            close = self.markets[position.symbol].close
            if math.isfinite(close):
                move = close - position.entry_price
                total += (move if position.is_long else -move) * float(position.quantity)
        return total

    # -- bars ----------------------------------------------------------------------------------
    def on_history(self, bars: Iterable[Kline]) -> None:
        """Bars replayed before live data: statistics advance, and exits they trigger are
        remembered and sent with the symbol's first live bar."""
        for bar in bars:
            if bar.closed:
                self._judge_bar(bar, None)

    def on_bar(self, bar: Kline, ctx: StrategyContext) -> list[Signal]:
        """A live closed bar: due exits, then exit rules, then entries the model deferred."""
        if ctx.now_ms < bar.close_time_ms:
            ctx.now_ms = bar.close_time_ms  # the strategy may be disabled; exits still stamp
        out: list[Signal] = []
        for position_id, decision in list(self.due_exits.items()):
            position = self.positions.get(position_id)
            if position is not None and position.symbol == bar.symbol:
                del self.due_exits[position_id]
                out.append(self._exit_signal(position, decision, ctx, "(while replaying history)"))
        out.extend(self._judge_bar(bar, ctx))
        return out

    def _judge_bar(self, kline: Kline, ctx: StrategyContext | None) -> list[Signal]:
        tracker = self.markets[kline.symbol]
        if kline.open_time_ms <= tracker.last_open_ms:
            return []
        tracker.update(kline)
        out: list[Signal] = []
        exits = self.exits
        if exits is not None:
            bar = Bar.of(kline)
            for position in list(self.positions.values()):
                book = position.metadata[_BOOK]
                if (
                    position.symbol != kline.symbol
                    or book["exit_signal_id"]
                    or position.position_id in self.due_exits
                    or position.entry_ms >= kline.close_time_ms
                ):
                    continue
                book["bars_judged"] += 1
                decision = exits.check(position, bar, tracker.atr_before)
                if decision is None:
                    continue
                if ctx is None:
                    self.due_exits[position.position_id] = decision
                else:
                    out.append(self._exit_signal(position, decision, ctx, ""))
        self.peak_equity = max(self.peak_equity, self.equity)
        if ctx is not None and self.waiting:
            out.extend(self._retry_waiting(kline.symbol, kline.close_time_ms))
        return out

    def _exit_signal(
        self, position: TrackedPosition, decision: ExitDecision, ctx: StrategyContext, note: str
    ) -> Signal:
        action = SignalAction.EXIT_LONG if position.is_long else SignalAction.EXIT_SHORT
        reason = f"{decision.rule}: {decision.reason}" + (f" {note}" if note else "")
        signal = ctx.make_signal(
            action,
            reason,
            size_hint=position.quantity,
            tags=(
                f"exit_rule:{decision.rule}",
                f"position:{position.position_id}",
                f"exit_price:{decision.price:.10g}",
            ),
        )
        position.metadata[_BOOK]["exit_signal_id"] = signal.signal_id
        self._count_exit(decision.rule)
        log.info(
            "exit_triggered",
            instance=self.instance,
            symbol=position.symbol,
            position_id=position.position_id,
            rule=decision.rule,
            reason=reason,
            signal_id=signal.signal_id,
        )
        return signal

    def _count_exit(self, rule: str) -> None:
        self.counters.exits += 1
        self.counters.exit_rules[rule] = self.counters.exit_rules.get(rule, 0) + 1

    # -- strategy signals ------------------------------------------------------------------------
    def on_signals(
        self, signals: Sequence[Signal], ctx: StrategyContext
    ) -> tuple[list[Signal], list[OrderDenied]]:
        out: list[Signal] = []
        denials: list[OrderDenied] = []
        for signal in signals:
            if signal.is_exit:
                out.extend(self._strategy_exit(signal, ctx))
            else:
                self.counters.entries += 1
                self._decide_entry(signal, 0, out, denials)
        return out, denials

    def _decide_entry(
        self, signal: Signal, bars_waited: int, out: list[Signal], denials: list[OrderDenied]
    ) -> None:
        outcome = self.entry.decide(
            signal, self.state(signal.ts_ms), self.prices(), waited_bars=bars_waited
        )
        if outcome.kind == "enter":
            self.pending_entries[signal.signal_id] = outcome.signal
            self.counters.entries_sent += 1
            out.append(outcome.signal)
        elif outcome.kind == "wait" and bars_waited < self.max_wait_bars:
            if bars_waited == 0:
                self.counters.waits += 1
            self.waiting[signal.signal_id] = (signal, bars_waited)
        else:
            reason = outcome.reason
            if outcome.kind == "wait":
                reason = f"still waiting after {bars_waited} bars: {reason}"
            self._refuse(signal, outcome.stage, reason, denials)

    def _refuse(self, signal: Signal, stage: str, reason: str, denials: list[OrderDenied]) -> None:
        counters = self.counters
        counters.refused += 1
        counters.refusals[stage] = counters.refusals.get(stage, 0) + 1
        log.info(
            "entry_refused",
            instance=self.instance,
            symbol=signal.symbol,
            signal_id=signal.signal_id,
            stage=stage,
            reason=reason,
        )
        denials.append(
            OrderDenied(
                strategy=self.instance,
                symbol=signal.symbol,
                reason=f"{stage}: {reason}",
                ts_ms=signal.ts_ms,
                signal_id=signal.signal_id,
            )
        )

    def _retry_waiting(self, symbol: str, now_ms: int) -> list[Signal]:
        out: list[Signal] = []
        denials: list[OrderDenied] = []
        for signal_id, (signal, bars) in list(self.waiting.items()):
            if signal.symbol != symbol:
                continue
            del self.waiting[signal_id]
            self._decide_entry(replace(signal, ts_ms=now_ms), bars + 1, out, denials)
        self.late_denials.extend(denials)
        return out

    def take_denials(self) -> list[OrderDenied]:
        taken, self.late_denials = self.late_denials, []
        return taken

    def _strategy_exit(self, signal: Signal, ctx: StrategyContext) -> list[Signal]:
        side = "long" if signal.action is SignalAction.EXIT_LONG else "short"
        for signal_id, (waiting, _) in list(self.waiting.items()):
            if waiting.symbol == signal.symbol and entry_side(waiting) == side:
                del self.waiting[signal_id]  # the strategy changed its mind before entering
        held = [p for p in self.positions.values() if p.symbol == signal.symbol and p.side == side]
        if not held:
            # Nothing filled to close; downstream may still have to cancel a resting entry.
            return [signal]
        open_positions = [p for p in held if not p.metadata[_BOOK]["exit_signal_id"]]
        if not open_positions:
            log.info(
                "strategy_exit_superseded",
                instance=self.instance,
                symbol=signal.symbol,
                signal_id=signal.signal_id,
                reason="an exit rule is already closing every position",
            )
            return []
        out = []
        for index, position in enumerate(open_positions):
            tags = (*signal.tags, "exit_rule:strategy", f"position:{position.position_id}")
            if index == 0:
                exit_signal = replace(signal, size_hint=position.quantity, tags=tags)
            else:
                exit_signal = ctx.make_signal(
                    signal.action, signal.reason, size_hint=position.quantity, tags=tags
                )
            position.metadata[_BOOK]["exit_signal_id"] = exit_signal.signal_id
            self._count_exit("strategy")
            out.append(exit_signal)
        return out

    # -- order events ------------------------------------------------------------------------------
    def on_order(self, event: OrderUpdated | OrderDenied) -> None:
        if isinstance(event, OrderDenied):
            self._denied(event.signal_id)
            return
        fill = event.fill
        if fill is not None and not self._seen_trades.first_sight(fill.trade_id):
            fill = None  # a repeated event: its fill is already booked
        position_id = self._route(event, fill)
        if fill is not None and position_id is not None:
            self._apply_fill(position_id, event, fill)
        if event.status.is_final:
            signal_id = event.signal_id or self._entry_signal_of(event.client_order_id)
            if signal_id is None and position_id is None:
                signal_id = self._unfilled_entry_of(event)
            if signal_id is not None and self.pending_entries.pop(signal_id, None) is not None:
                return
            self._exit_order_ended(event)

    def _denied(self, signal_id: str | None) -> None:
        if signal_id is None:
            return
        self.pending_entries.pop(signal_id, None)
        for position in self.positions.values():
            book = position.metadata[_BOOK]
            if book["exit_signal_id"] == signal_id:
                book["exit_signal_id"] = ""  # the rules judge it again on the next bar

    def _exit_order_ended(self, event: OrderUpdated) -> None:
        """An exit order ended without closing its position (cancelled, expired): the position
        is open again for the rules to judge."""
        position_id = self.order_positions.get(event.client_order_id)
        position = self.positions.get(position_id) if position_id else None
        if position is None or _opens(position, event.side):
            return
        position.metadata[_BOOK]["exit_signal_id"] = ""

    def _unfilled_entry_of(self, event: OrderUpdated) -> str | None:
        """The pending entry an order that ended without a fill (and without ids) was for: the
        oldest on its symbol and side, unless it could be an exit of a position on that side."""
        if any(
            p.symbol == event.symbol
            and not _opens(p, event.side)
            and p.metadata[_BOOK]["exit_signal_id"]
            for p in self.positions.values()
        ):
            return None
        opening_side = "long" if event.side is Side.BUY else "short"
        return next(
            (
                signal_id
                for signal_id, signal in self.pending_entries.items()
                if signal.symbol == event.symbol and entry_side(signal) == opening_side
            ),
            None,
        )

    def _entry_signal_of(self, client_order_id: str) -> str | None:
        position_id = self.order_positions.get(client_order_id)
        if position_id is None:
            return None
        position = self.positions.get(position_id)
        if position is None:
            return position_id
        return str(position.metadata[_BOOK]["entry_signal_id"])

    def _route(self, event: OrderUpdated, fill: Fill | None) -> str | None:
        """The position an order event belongs to (None: no position to touch)."""
        known = self.order_positions.get(event.client_order_id)
        if known is not None:
            return known
        signal_id = event.signal_id
        position_id: str | None = None
        if signal_id is not None and signal_id in self.pending_entries:
            position_id = signal_id
        elif signal_id is not None:
            position_id = next(
                (
                    p.position_id
                    for p in self.positions.values()
                    if p.metadata[_BOOK]["exit_signal_id"] == signal_id
                ),
                None,
            )
        if position_id is None and fill is not None:
            position_id = self._route_by_side(event)
        if position_id is not None:
            self.order_positions[event.client_order_id] = position_id
        return position_id

    def _route_by_side(self, event: OrderUpdated) -> str | None:
        same_symbol = [p for p in self.positions.values() if p.symbol == event.symbol]
        closing = [p for p in same_symbol if not _opens(p, event.side)]
        exiting = [p for p in closing if p.metadata[_BOOK]["exit_signal_id"]]
        if exiting:
            return exiting[0].position_id
        opening_side = "long" if event.side is Side.BUY else "short"
        for signal_id, signal in self.pending_entries.items():
            if signal.symbol == event.symbol and entry_side(signal) == opening_side:
                return signal_id
        if closing:
            return closing[0].position_id
        # An opening fill nobody expected (a restart lost the entry, an order placed by hand
        # under this instance): managed from here on rather than left without exits.
        self.counters.adopted += 1
        log.warning(
            "position_adopted",
            instance=self.instance,
            symbol=event.symbol,
            client_order_id=event.client_order_id,
        )
        return event.client_order_id

    def _apply_fill(self, position_id: str, event: OrderUpdated, fill: Fill) -> None:
        position = self.positions.get(position_id)
        price = float(fill.price)
        fee = _fee_in_quote(fill)
        if position is None:
            side: PositionSide = "long" if fill.side is Side.BUY else "short"
            position = TrackedPosition(
                position_id=position_id,
                symbol=fill.symbol,
                side=side,
                entry_price=price,
                entry_ms=fill.ts_ms,
                quantity=abs(fill.position_change),
                metadata={
                    _BOOK: {
                        "entry_signal_id": position_id,
                        "exit_signal_id": "",
                        "bars_judged": 0,
                        "fees": fee,
                        "exit_quantity": "0",
                        "exit_notional": 0.0,
                        "opened_quantity": str(abs(fill.position_change)),
                    }
                },
            )
            self.positions[position_id] = position
            self._start_exits(position)
            return
        book = position.metadata[_BOOK]
        book["fees"] += fee
        if _opens(position, fill.side):
            # A spot fee taken in the base asset is not held: exits must not try to sell it.
            held = abs(fill.position_change)
            total = position.quantity + held
            position.entry_price = (
                position.entry_price * float(position.quantity) + price * float(held)
            ) / float(total)
            position.quantity = total
            book["opened_quantity"] = str(Decimal(book["opened_quantity"]) + held)
            if book["bars_judged"] == 0:
                self._start_exits(position)  # levels from the average of all entry fills
            return
        closed = min(fill.quantity, position.quantity)
        if closed < fill.quantity:
            self.counters.unmatched_fills += 1
        position.quantity -= closed
        book["exit_quantity"] = str(Decimal(book["exit_quantity"]) + closed)
        book["exit_notional"] += price * float(closed)
        if position.quantity == _ZERO:
            self._close(position, fill.ts_ms, event.reason or event.status.value)

    def _start_exits(self, position: TrackedPosition) -> None:
        if self.exits is not None:
            self.exits.on_entry(position, self.markets[position.symbol].atr)

    def _close(self, position: TrackedPosition, ts_ms: int, note: str) -> None:
        book = position.metadata[_BOOK]
        quantity = Decimal(book["exit_quantity"])
        exit_price = book["exit_notional"] / float(quantity)
        move = exit_price - position.entry_price
        gross = (move if position.is_long else -move) * float(quantity)
        trade = ClosedTrade(
            symbol=position.symbol,
            side=position.side,
            entry_price=position.entry_price,
            exit_price=exit_price,
            quantity=quantity,
            pnl=gross - book["fees"],
            entry_ms=position.entry_ms,
            exit_ms=ts_ms,
            exit_reason=note,
            position_id=position.position_id,
        )
        self.trades.append(trade)
        self.realized_pnl += trade.pnl
        del self.positions[position.position_id]
        self.due_exits.pop(position.position_id, None)
        for order_id in [o for o, p in self.order_positions.items() if p == position.position_id]:
            del self.order_positions[order_id]
        log.info(
            "position_closed",
            instance=self.instance,
            symbol=trade.symbol,
            position_id=position.position_id,
            side=trade.side,
            pnl=round(trade.pnl, 8),
            return_pct=round(trade.return_pct, 4),
        )

    # -- persistence and status ------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "version": _SNAPSHOT_VERSION,
            "instance": self.instance,
            "realized_pnl": self.realized_pnl,
            "peak_equity": self.peak_equity,
            "positions": [_position_to_json(p) for p in self.positions.values()],
            "pending_entries": [_signal_to_json(s) for s in self.pending_entries.values()],
            "order_positions": dict(self.order_positions),
            "waiting": [[_signal_to_json(s), bars] for s, bars in self.waiting.values()],
            "due_exits": {pid: asdict(d) for pid, d in self.due_exits.items()},
            "trades": [_trade_to_json(t) for t in self.trades],
            "markets": {symbol: m.snapshot() for symbol, m in self.markets.items()},
            "filters": {f.name: f.snapshot() for f in self.filters},
            "seen_trades": self._seen_trades.as_list(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a snapshot; raises ValueError/KeyError on one that does not fit, after
        which the manager must be rebuilt."""
        if state.get("version") != _SNAPSHOT_VERSION or state.get("instance") != self.instance:
            raise ValueError("trade state of another instance or layout")
        self.realized_pnl = float(state["realized_pnl"])
        self.peak_equity = float(state["peak_equity"])
        self.positions = {p["position_id"]: _position_from_json(p) for p in state["positions"]}
        for position in self.positions.values():
            if position.symbol not in self.markets:
                raise ValueError(f"saved position in {position.symbol}, no longer configured")
        self.pending_entries = {
            s["signal_id"]: _signal_from_json(s) for s in state["pending_entries"]
        }
        self.order_positions = {str(k): str(v) for k, v in state["order_positions"].items()}
        self.waiting = {
            s["signal_id"]: (_signal_from_json(s), int(bars)) for s, bars in state["waiting"]
        }
        self.due_exits = {pid: ExitDecision(**d) for pid, d in state["due_exits"].items()}
        self.trades.clear()
        self.trades.extend(_trade_from_json(t) for t in state["trades"])
        for symbol, tracker in self.markets.items():
            if symbol in state["markets"]:
                tracker.restore(state["markets"][symbol])
        self._seen_trades = RecentIds(_REMEMBERED_TRADES, (int(t) for t in state["seen_trades"]))
        saved_filters = state["filters"]
        for entry_filter in self.filters:
            if entry_filter.name in saved_filters:
                entry_filter.restore(saved_filters[entry_filter.name])

    def status(self) -> dict[str, Any]:
        counters = self.counters
        trades = list(self.trades)
        wins = sum(1 for t in trades if t.won)
        equity = self.equity
        peak = max(self.peak_equity, equity)
        return {
            "equity": round(equity, 8),
            "realized_pnl": round(self.realized_pnl, 8),
            "drawdown_pct": round((peak - equity) / peak * 100, 4) if peak > 0 else 0.0,
            "open_positions": [
                {
                    "position_id": p.position_id,
                    "symbol": p.symbol,
                    "side": p.side,
                    "quantity": str(p.quantity),
                    "entry_price": p.entry_price,
                    "exiting": bool(p.metadata[_BOOK]["exit_signal_id"]),
                }
                for p in self.positions.values()
            ],
            "pending_entries": len(self.pending_entries),
            "waiting_entries": len(self.waiting),
            "closed_trades": len(trades),
            "win_rate": round(wins / len(trades), 4) if trades else None,
            "entries": counters.entries,
            "entries_sent": counters.entries_sent,
            "entries_refused": counters.refused,
            "entries_deferred": counters.waits,
            "refusals": dict(counters.refusals),
            "exits": dict(counters.exit_rules),
            "adopted_positions": counters.adopted,
            "unmatched_fills": counters.unmatched_fills,
        }


def _opens(position: TrackedPosition, side: Side) -> bool:
    return (side is Side.BUY) == position.is_long


def _fee_in_quote(fill: Fill) -> float:
    """The fee in the quote asset when it was paid in the quote or the base asset; a fee in a
    third asset (BNB) is not priced here."""
    asset = fill.fee_asset
    if not asset or fill.fee == 0:
        return 0.0
    if fill.symbol.endswith(asset):
        return float(fill.fee)
    if fill.fee_in_base:
        return float(fill.fee * fill.price)
    return 0.0


def _position_to_json(position: TrackedPosition) -> dict[str, Any]:
    return {
        "position_id": position.position_id,
        "symbol": position.symbol,
        "side": position.side,
        "entry_price": position.entry_price,
        "entry_ms": position.entry_ms,
        "quantity": str(position.quantity),
        "metadata": position.metadata,
    }


def _position_from_json(data: Mapping[str, Any]) -> TrackedPosition:
    side = data["side"]
    if side not in ("long", "short"):
        raise ValueError(f"unknown position side {side!r}")
    return TrackedPosition(
        position_id=str(data["position_id"]),
        symbol=str(data["symbol"]),
        side=side,
        entry_price=float(data["entry_price"]),
        entry_ms=int(data["entry_ms"]),
        quantity=Decimal(data["quantity"]),
        metadata=dict(data["metadata"]),
    )


def _signal_to_json(signal: Signal) -> dict[str, Any]:
    data = asdict(signal)
    data["action"] = signal.action.value
    data["size_hint"] = None if signal.size_hint is None else str(signal.size_hint)
    data["tags"] = list(signal.tags)
    return data


def _signal_from_json(data: Mapping[str, Any]) -> Signal:
    size_hint = data["size_hint"]
    return Signal(
        strategy=str(data["strategy"]),
        symbol=str(data["symbol"]),
        action=SignalAction(data["action"]),
        ts_ms=int(data["ts_ms"]),
        signal_id=str(data["signal_id"]),
        size_hint=None if size_hint is None else Decimal(size_hint),
        confidence=float(data["confidence"]),
        reason=str(data["reason"]),
        tags=tuple(str(t) for t in data["tags"]),
    )


def _trade_to_json(trade: ClosedTrade) -> dict[str, Any]:
    data = asdict(trade)
    data["quantity"] = str(trade.quantity)
    return data


def _trade_from_json(data: Mapping[str, Any]) -> ClosedTrade:
    fields = dict(data)
    fields["quantity"] = Decimal(fields["quantity"])
    return ClosedTrade(**fields)
