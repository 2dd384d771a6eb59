"""The risk gate component: every signal becomes one approved order or one named denial.

Consumes `signal.*`, `order.update` (stamped fills and order states), `account.update`,
`market.kline.*` (closed bars), `market.book.*`, `market.mark.*` and `system.control`.
Produces `order.request` (SubmitOrder), `order.update` (OrderDenied), `risk.state`,
`system.alert` and `system.ack`.

Per signal: shape the order (`risk.orders`: size, type, price, rounding, exchange filters),
then for entries the trading state and the pre-trade checks (`risk.checks`); exits are clipped
to what the instance holds less what its closes in flight already take, and pass in every
trading state. Fills feed the `RiskBook`; round trips and equity feed the `Guards`, whose trips
move the `TradingStateMachine` (never to a looser state). Operator HALT/RESUME/FLATTEN are
acknowledged on `system.ack` once in force. Every state change is published, alerted, logged and
persisted at once (`risk.state_store`); the book at most 5 s after a fill.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import structlog

from app.bus import (
    ACCOUNT_UPDATE,
    MARKET_BOOK,
    MARKET_KLINE,
    MARKET_MARK,
    ORDER_REQUEST,
    ORDER_UPDATE,
    RISK_STATE,
    SIGNAL,
    SYSTEM_ACK,
    SYSTEM_ALERT,
    SYSTEM_CONTROL,
    Bus,
)
from app.domain import (
    AccountUpdated,
    Alert,
    AlertSeverity,
    Balance,
    BookTicker,
    Clock,
    ControlAcknowledged,
    ControlAction,
    ControlCommand,
    Kline,
    MarketType,
    MarkPrice,
    OrderDenied,
    OrderPurpose,
    OrderUpdated,
    PositionSnapshot,
    PositionsReconciled,
    Side,
    Signal,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)
from app.domain.account import AccountEvent
from app.domain.orders import OrderEvent
from config.risk import RiskSettings
from exchange.binance.rules import SymbolRules
from risk.book import DEFAULT_QUOTE_ASSETS, RiskBook
from risk.checks import ProposedEntry, entry_denial, fmt_quantity
from risk.client_ids import client_order_id, flatten_client_order_id
from risk.funding import FundingClock
from risk.guards import Guards, GuardTrip
from risk.order_rate import OrderRateLimit
from risk.orders import (
    ClosingOrders,
    Denial,
    PriceBoard,
    close_order,
    closing_side,
    exit_side,
    shape_entry,
)
from risk.state_store import (
    FileStateDocuments,
    SavedState,
    StateDocuments,
    StateFileError,
    decode_state,
    encode_state,
)
from risk.trading_state import TradingStateMachine

__all__ = ["FOREIGN", "RiskGate"]

log = structlog.get_logger("risk.gate")

#: the strategy stamped on flatten orders for exchange positions no instance accounts for
FOREIGN = "risk"
_TICK_S = 1.0
_PERSIST_EVERY_S = 5.0
_REMEMBERED_SIGNALS = 10_000  # answered signal ids: a re-sent signal is answered only once
_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_ALERT = {
    TradingState.ACTIVE: AlertSeverity.INFO,
    TradingState.REDUCING: AlertSeverity.WARNING,
    TradingState.HALTED: AlertSeverity.CRITICAL,
}
_RESTORE_ERRORS = (StateFileError, ValueError, KeyError, TypeError, ArithmeticError)


class RiskGate:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        settings: RiskSettings,
        market: MarketType,
        rules: Mapping[str, SymbolRules],
        order_limits: Sequence[tuple[int, int]],
        name: str = "risk",
        documents: StateDocuments | None = None,
    ) -> None:
        """`documents`: where the state is kept (the daemon: its database); a file at
        `settings.state_file` when not given."""
        self.name = name
        self.documents = documents or FileStateDocuments(settings.state_file)
        self.clock = clock
        self.settings = settings
        self.market = market
        self.rules = rules  # live: the venue fills it at start-up
        self.book = RiskBook(capital=settings.capital)
        self.state = TradingStateMachine(since_ms=clock.now_ms())
        self.guards = Guards(settings.guards)
        self.closing = ClosingOrders()
        self.order_rate = OrderRateLimit(order_limits, share=settings.limits.order_rate_share)
        self.funding = FundingClock() if market is MarketType.USDM else None
        self.prices = PriceBoard()
        #: the latest futures positions the exchange reported, per symbol (one-way mode)
        self.exchange_positions: dict[str, PositionSnapshot] = {}
        self.balances: dict[str, Balance] = {}
        self.approved = 0
        self.denied = 0
        self.denials: Counter[str] = Counter()
        self.progress = 0  # messages handled: the supervisor's sign of life
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._dirty = False
        self._last_persist = clock.monotonic()
        self._orders = bus.sender(ORDER_REQUEST.channel())
        self._updates = bus.sender(ORDER_UPDATE.channel())
        self._states = bus.sender(RISK_STATE.channel())
        self._alerts = bus.sender(SYSTEM_ALERT.channel())
        self._acks = bus.sender(SYSTEM_ACK.channel())
        bus.subscribe(SIGNAL.any(), self.on_signal, subscriber=name)
        bus.subscribe(ORDER_UPDATE.channel(), self.on_order_event, subscriber=name)
        bus.subscribe(ACCOUNT_UPDATE.channel(), self.on_account, subscriber=name)
        bus.subscribe(MARKET_KLINE.any(), self.on_kline, subscriber=name)
        bus.subscribe(MARKET_BOOK.any(), self.on_book, subscriber=name)
        bus.subscribe(MARKET_MARK.any(), self.on_mark, subscriber=name)
        bus.subscribe(SYSTEM_CONTROL.channel(), self.on_control, subscriber=name)

    # -- signals --------------------------------------------------------------------------------
    async def on_signal(self, signal: Signal) -> None:
        self.progress += 1
        if signal.signal_id in self._answered:
            log.warning("signal_duplicate_ignored", signal_id=signal.signal_id)
            return
        self._answered[signal.signal_id] = None
        if len(self._answered) > _REMEMBERED_SIGNALS:
            self._answered.popitem(last=False)
        now = self.clock.now_ms()
        cid = client_order_id(self.settings.orders.client_id_prefix, signal.signal_id)
        try:
            result = (
                self._exit(signal, cid, now) if signal.is_exit else self._entry(signal, cid, now)
            )
        except Exception as exc:  # one bad signal is denied; the gate goes on
            log.exception("signal_failed", strategy=signal.strategy, signal_id=signal.signal_id)
            result = Denial(f"error: {type(exc).__name__}: {exc}")
        if isinstance(result, Denial):
            await self._deny(signal, cid, result, now)
        else:
            await self._send(result, now)

    def _entry(self, signal: Signal, cid: str, now: int) -> SubmitOrder | Denial:
        rules = self.rules.get(signal.symbol)
        shaped = shape_entry(
            signal,
            market=self.market,
            rules=rules,
            settings=self.settings.orders,
            board=self.prices,
            client_order_id=cid,
            now_ms=now,
        )
        if isinstance(shaped, Denial):
            return shaped
        if not self.state.allows(OrderPurpose.ENTRY):
            return Denial(f"trading_state: {self.state.state.value} ({self.state.reason})")
        order = shaped.order
        reason = entry_denial(
            ProposedEntry(signal.strategy, signal.symbol, order.side, order.quantity, shaped.price),
            book=self.book,
            limits=self.settings.limits,
            now_ms=now,
            symbol_status=None if rules is None else rules.status,
            order_rate=self.order_rate,
            funding=self.funding,
        )
        if reason is not None or shaped.status_violation is not None:
            return Denial(reason or str(shaped.status_violation))
        self.book.add_pending(
            client_order_id=cid,
            strategy=order.strategy,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            is_entry=True,
        )
        self.book.record_entry_sent(symbol=order.symbol, quantity=order.quantity, now_ms=now)
        return order

    def _exit(self, signal: Signal, cid: str, now: int) -> SubmitOrder | Denial:
        side = exit_side(signal.action)
        position = self.book.position(signal.strategy, signal.symbol)
        held = self.closing.closable(position, side, signal.strategy, signal.symbol)
        if held <= 0:
            direction = "long" if side is Side.SELL else "short"
            return Denial(
                f"no_position: {signal.strategy} holds no {direction} position on "
                f"{signal.symbol} that is not already being closed"
            )
        quantity = held if signal.size_hint is None else min(abs(signal.size_hint), held)
        return self._close(
            signal.strategy,
            signal.symbol,
            side,
            quantity,
            OrderPurpose.EXIT,
            cid,
            now,
            signal.signal_id,
        )

    def _close(
        self,
        strategy: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        purpose: OrderPurpose,
        cid: str,
        now: int,
        signal_id: str | None = None,
    ) -> SubmitOrder | Denial:
        """A MARKET close of `quantity` (already clipped to what may be closed)."""
        order = close_order(
            strategy=strategy,
            symbol=symbol,
            side=side,
            quantity=quantity,
            purpose=purpose,
            market=self.market,
            rules=self.rules.get(symbol),
            reference_price=self.prices.price(symbol) or self.book.price(symbol),
            client_order_id=cid,
            now_ms=now,
            signal_id=signal_id,
        )
        if isinstance(order, SubmitOrder):
            # Closes in flight are the closing ledger's; the book's pending orders are entries.
            self.closing.add(cid, strategy, symbol, order.quantity)
        return order

    async def _send(self, order: SubmitOrder, now: int) -> None:
        self.order_rate.record(now)  # every order counts; only entries are refused for it
        self.approved += 1
        self._dirty = True
        log.info(
            "order_approved",
            strategy=order.strategy,
            symbol=order.symbol,
            side=order.side.value,
            order_type=order.order_type.value,
            quantity=str(order.quantity),
            price=None if order.price is None else str(order.price),
            purpose=order.purpose.value,
            reduce_only=order.reduce_only,
            client_order_id=order.client_order_id,
            signal_id=order.signal_id,
        )
        await self._orders.send(order)

    async def _deny(self, signal: Signal, cid: str, denial: Denial, now: int) -> None:
        self.denied += 1
        self.denials[denial.check] += 1
        log.info(
            "order_denied",
            strategy=signal.strategy,
            symbol=signal.symbol,
            action=signal.action.value,
            signal_id=signal.signal_id,
            client_order_id=cid,
            reason=denial.reason,
        )
        await self._updates.send(
            OrderDenied(signal.strategy, signal.symbol, denial.reason, now, signal.signal_id, cid)
        )

    # -- orders, account, market data -------------------------------------------------------------
    async def on_order_event(self, event: OrderEvent) -> None:
        if not isinstance(event, OrderUpdated):
            return
        self.progress += 1
        # The gate's own closes of foreign positions are not booked: no instance holds them.
        if event.fill is not None and event.strategy and event.strategy != FOREIGN:
            now = self.clock.now_ms()
            round_trip = self.book.on_fill(strategy=event.strategy, fill=event.fill)
            self._dirty = True
            if round_trip is not None:
                await self._guard(self.guards.on_round_trip(round_trip, now), now)
            await self._guard(self.guards.on_equity(self.book.equity(), now), now)
        final = event.status.is_final
        cid, filled = event.client_order_id, event.filled_quantity
        self.book.update_pending(cid, filled_quantity=filled, final=final)
        self.closing.update(cid, filled_quantity=filled, final=final)

    async def on_account(self, event: AccountEvent) -> None:
        if isinstance(event, PositionsReconciled):
            await self._take_reconciled(event)
            return
        if not isinstance(event, AccountUpdated):
            return
        for balance in event.balances:
            if balance.asset in DEFAULT_QUOTE_ASSETS:
                self.balances[balance.asset] = balance
        for position in event.positions:  # futures events carry only what changed
            if position.position_side != "BOTH":
                continue  # hedge mode is refused at start-up (config.executor)
            if position.quantity == 0:
                self.exchange_positions.pop(position.symbol, None)
            else:
                self.exchange_positions[position.symbol] = position

    async def _take_reconciled(self, event: PositionsReconciled) -> None:
        """The book's positions come from a snapshot saved every few seconds; after a crash the
        database (which recorded every fill) and the exchange are the truth."""
        changed = self.book.replace_positions(
            {(p.strategy, p.symbol): (p.quantity, p.average_price) for p in event.positions},
            event.folded_trades,
        )
        if changed:
            log.warning("risk_book_reconciled", changed=changed, corrections=event.corrections)
            await self.persist()

    async def on_kline(self, kline: Kline) -> None:
        if not kline.closed:
            return
        self.prices.on_close(kline.symbol, kline.close)
        self.book.on_price(kline.symbol, kline.close)
        now = self.clock.now_ms()
        await self._guard(self.guards.on_equity(self.book.equity(), now), now)

    async def on_book(self, book: BookTicker) -> None:
        mid = self.prices.on_book(book)
        if mid is not None:
            self.book.on_price(book.symbol, mid)

    async def on_mark(self, mark: MarkPrice) -> None:
        self.prices.on_mark(mark.symbol, mark.mark_price)
        self.book.on_price(mark.symbol, mark.mark_price)
        if self.funding is not None:
            self.funding.on_mark(mark)

    # -- trading state ----------------------------------------------------------------------------
    async def _guard(self, trip: GuardTrip | None, now: int) -> None:
        """Apply a guard trip unless it would loosen the state: a guard never lifts an
        operator's halt nor shortens a longer cooldown."""
        if trip is None:
            return
        current, resume = self.state.state, self.state.resume_at_ms
        if _SEVERITY[trip.state] < _SEVERITY[current]:
            return
        if trip.state is current and (
            resume is None or (trip.resume_at_ms is not None and trip.resume_at_ms <= resume)
        ):
            return
        resume_at, reason = trip.resume_at_ms, trip.reason
        if current is TradingState.REDUCING and resume_at is not None:
            # The breaker that reduced waits for an operator: a cooldown ending in ACTIVE would
            # lift it, so this halt waits for the operator too.
            resume_at, reason = None, f"{reason}; was reducing: until an operator resumes"
        log.warning("risk_guard_tripped", state=trip.state.value, reason=reason)
        await self._apply(self.state.set(trip.state, reason, now, resume_at_ms=resume_at))

    async def _apply(self, change: TradingStateChanged | None) -> None:
        """Publish, alert, log and persist a state change (None: the state stayed, but its
        reason may have changed: persisted all the same)."""
        if change is not None:
            previous = None if change.previous is None else change.previous.value
            log.warning(
                "trading_state_changed",
                state=change.state.value,
                previous=previous,
                reason=change.reason,
            )
            await self._states.send(change)
            await self._alert(_ALERT[change.state], f"trading {change.state.value}", change.reason)
        await self.persist()

    async def _alert(self, severity: AlertSeverity, title: str, detail: str) -> None:
        await self._alerts.send(Alert(severity, self.name, title, self.clock.now_ms(), detail))

    async def on_control(self, command: ControlCommand) -> None:
        action = command.action
        if action is ControlAction.SHUTDOWN:
            return  # the supervisor's business
        self.progress += 1
        now = self.clock.now_ms()
        log.info(
            "control_received", action=action.value, by=command.requested_by, reason=command.reason
        )
        detail = ""
        if action is ControlAction.HALT:
            reason = f"operator: {command.reason or 'halt'}"
            await self._apply(self.state.set(TradingState.HALTED, reason, now))
        elif action is ControlAction.RESUME:
            self.guards.reset(self.book.equity())
            reason = f"operator: {command.reason or 'resume'}"
            await self._apply(self.state.set(TradingState.ACTIVE, reason, now))
        elif action is ControlAction.FLATTEN:
            reason = "operator: flatten" + (f": {command.reason}" if command.reason else "")
            await self._apply(self.state.set(TradingState.HALTED, reason, now))
            # Without an id, the time keeps a second flatten's client ids new.
            command_id = command.command_id or f"t{now}"
            detail = "; " + await self._flatten(command_id, now)
        detail = f"{self.state.state.value}: {self.state.reason}{detail}"
        await self._acks.send(
            ControlAcknowledged(command.command_id, action, self.name, self.clock.now_ms(), detail)
        )

    def _flatten_targets(self) -> list[tuple[str, str, Side, Decimal]]:
        """(strategy, symbol, side, quantity) to close: every instance position (stamped with
        the instance, so its trade management books the fill), then on futures what the
        exchange reports beyond what the instances account for, as FOREIGN."""
        targets = []
        for (strategy, symbol), position in sorted(self.book.positions().items()):
            side = closing_side(position)
            targets.append(
                (strategy, symbol, side, self.closing.closable(position, side, strategy, symbol))
            )
        if self.market is MarketType.USDM:
            for symbol, snapshot in sorted(self.exchange_positions.items()):
                foreign = snapshot.quantity - self.book.net_position(symbol)
                side = closing_side(foreign)
                left = self.closing.closable(foreign, side, FOREIGN, symbol)
                targets.append((FOREIGN, symbol, side, left))
        return [target for target in targets if target[3] > 0]

    async def _flatten(self, command_id: str, now: int) -> str:
        prefix = self.settings.orders.client_id_prefix
        sent, skipped = 0, []
        for strategy, symbol, side, quantity in self._flatten_targets():
            cid = flatten_client_order_id(prefix, command_id, strategy, symbol)
            order = self._close(strategy, symbol, side, quantity, OrderPurpose.FLATTEN, cid, now)
            if isinstance(order, Denial):
                skipped.append(f"{strategy}/{symbol}: {order.reason}")
                log.error(
                    "flatten_order_skipped", strategy=strategy, symbol=symbol, reason=order.reason
                )
                continue
            await self._send(order, now)
            sent += 1
        if skipped:
            await self._alert(
                AlertSeverity.CRITICAL, "flatten left positions open", "; ".join(skipped)
            )
        return f"{sent} flatten orders" + (f"; skipped: {'; '.join(skipped)}" if skipped else "")

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Restore the saved state, then publish the state once. An unusable document halts (it
        may have held a halt): it is moved aside and the halt is written at once."""
        documents, now = self.documents, self.clock.now_ms()
        try:
            data = await documents.read()
            if data is not None:
                self._restore(decode_state(data))
        except _RESTORE_ERRORS as exc:
            reason = f"state file unreadable: {exc}"
            moved = await documents.quarantine(now)
            where = documents.location
            log.error("risk_state_unreadable", location=where, error=str(exc), moved_to=moved)
            self.state = TradingStateMachine(state=TradingState.HALTED, reason=reason, since_ms=now)
            await self._alert(
                AlertSeverity.CRITICAL, "trading halted", f"{reason} ({where}; moved to {moved})"
            )
            await self.persist()
        self.book.roll_day(now)
        await self._states.send(TradingStateChanged(self.state.state, None, self.state.reason, now))

    def _restore(self, saved: SavedState) -> None:
        state = TradingStateMachine.restore(saved.trading_state)
        book = RiskBook.restore(saved.book, capital=self.settings.capital)
        guards = Guards(self.settings.guards)
        guards.restore(saved.guards)
        closing = ClosingOrders()
        closing.restore(saved.closing)
        self.state, self.book, self.guards, self.closing = state, book, guards, closing
        log.info(
            "risk_state_restored",
            state=state.state.value,
            reason=state.reason,
            positions=len(book.positions()),
            closing=len(closing),
        )

    async def run(self) -> None:
        try:
            while True:
                await self.clock.sleep(_TICK_S)
                await self.tick()
        finally:
            # Synchronous: a second cancellation cannot interrupt the last write.
            try:
                self.documents.write_now(encode_state(self._saved_state()))
            except OSError as exc:
                where = self.documents.location
                log.error("risk_state_save_failed", location=where, error=str(exc))

    async def tick(self) -> None:
        """Once a second: a guard cooldown's end, the UTC day roll, the periodic save."""
        self.progress += 1
        now = self.clock.now_ms()
        change = self.state.due(now)
        if change is not None:
            await self._apply(change)
        day = self.book.day
        self.book.roll_day(now)
        # A new UTC day must be saved even when its opening equity equals yesterday's.
        self._dirty = self._dirty or self.book.day != day
        if self._dirty and self.clock.monotonic() - self._last_persist >= _PERSIST_EVERY_S:
            await self.persist()

    def _saved_state(self) -> SavedState:
        return SavedState(
            trading_state=dict(self.state.snapshot()),
            guards=dict(self.guards.snapshot()),
            book=dict(self.book.snapshot()),
            closing=list(self.closing.snapshot()),
            saved_ms=self.clock.now_ms(),
        )

    async def persist(self) -> None:
        self._dirty, self._last_persist = False, self.clock.monotonic()
        try:
            await self.documents.write(encode_state(self._saved_state()))
        except OSError as exc:
            self._dirty = True
            log.error("risk_state_save_failed", location=self.documents.location, error=str(exc))
            await self._alert(AlertSeverity.CRITICAL, "risk state not saved", str(exc))

    # -- heartbeat --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        book, guards = self.book, self.guards
        peak = guards.peak_equity
        return {
            "state": self.state.state.value,
            "reason": self.state.reason,
            "since_ms": self.state.since_ms,
            "resume_at_ms": self.state.resume_at_ms,
            "equity": _money(book.equity()),
            "peak_equity": None if peak is None else _money(peak),
            "drawdown_pct": _money(guards.drawdown_pct),
            "day_pnl": _money(book.day_pnl()),
            "realised_pnl": _money(book.realised_pnl),
            "exposure": _money(book.exposure()),
            "open_positions": {
                f"{strategy}/{symbol}": fmt_quantity(quantity)
                for (strategy, symbol), quantity in sorted(book.positions().items())
            },
            "approved": self.approved,
            "denied": self.denied,
            "denials": dict(self.denials),
            "losing_streak": guards.losing_streak,
            "order_rate": self.order_rate.status(),
            "balances": {asset: _money(b.total) for asset, b in sorted(self.balances.items())},
        }


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"
