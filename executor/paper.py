"""The paper executor: the live executor's interface, with a virtual venue behind it.

Consumes `order.request` (the one receiver: SubmitOrder, CancelOrder, ReplaceOrder),
`market.book.*` and `market.kline.*` (the prices fills are made against, see
`executor.paper_fills`), `system.control` (HALT, FLATTEN, RESUME) and `risk.state`.
Produces `order.update` (every OrderUpdated stamped with the order's strategy, signal and
purpose), `account.update` (the initial balances, then an AccountUpdated after every fill) and
`system.ack` (ControlAcknowledged, component `name`).

Everything is driven by the injected clock and by the market events' own times: nothing
sleeps but `run()`'s TTL loop, so a backtest with a replay bus and a ManualClock is
deterministic. Virtual order ids and trade ids count up from 1.

Venue behaviour, chosen to match Binance where it matters:

- An order is acknowledged (NEW) at once and becomes matchable `latency_ms` later. Cancels and
  replaces act at once (no latency). Fills are always complete, one `Fill` per order, its fee
  in the quote asset. A re-sent client order id places nothing: the order's current state is
  republished (execution type None); final orders are remembered for this up to
  `MAX_FINAL_ORDERS`.
- Refusals are REJECTED with Binance's wording: unknown symbol, unsupported type (stop and
  take-profit orders are not simulated), a filter failure (`check_order`), a reduce-only order
  that would open, grow or flip a futures position (-2022), a balance (spot, -2010) or margin
  (futures, -2019) that cannot cover it, and any ENTRY order while halted (operator HALT or
  FLATTEN until RESUME, or risk state REDUCING/HALTED).
- Market orders fill against book tickers once the symbol has any; before that, against the
  next bar's open. Limit orders fill against both.
- The balance lock of a market buy is estimated at the last price; a fill that costs more than
  the account holds EXPIRES ("insufficient balance at fill"), and so does a reduce-only order
  that the position no longer allows when it fills.
- Replace: spot is cancel-replace (old id CANCELED "replaced", then the new id is submitted
  like a new order); futures amend in place (same id, NEW with execution type AMENDMENT, the
  TTL still counts from the original order; a refused amendment republishes the unchanged
  order, execution type None, with the reason). Either way the order is matched as if it had just
  arrived, so it cannot fill on a bar or tick it has already been measured against.
- FLATTEN cancels every open order except those placed to flatten (the risk gate sends its
  closing orders on the same command; they may arrive first).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import structlog

from app.bus import (
    ACCOUNT_UPDATE,
    MARKET_BOOK,
    MARKET_KLINE,
    ORDER_REQUEST,
    ORDER_UPDATE,
    RISK_STATE,
    SYSTEM_ACK,
    SYSTEM_CONTROL,
    Bus,
)
from app.domain import (
    AccountUpdated,
    BookTicker,
    CancelOrder,
    Clock,
    ControlAcknowledged,
    ControlAction,
    ControlCommand,
    ExecutionType,
    Fill,
    Kline,
    MarketType,
    OrderPurpose,
    OrderStatus,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)
from app.domain.orders import OrderRequest
from config.executor import ExecutorSettings
from exchange.binance.rules import SymbolRules, check_order
from executor.paper_account import REDUCE_ONLY_REJECTED, FuturesAccount, Reservation, SpotAccount
from executor.paper_fills import (
    Behaviour,
    Expire,
    FillAt,
    FillModel,
    OrderTerms,
    Outcome,
    Rest,
    behaviour_of,
    match_book,
    match_kline,
)
from executor.stamping import intent_update

__all__ = ["HALTED_REASON", "PaperExecutor"]

log = structlog.get_logger(__name__)

HALTED_REASON = "trading halted before the order was sent"
# Final orders kept to answer a re-sent client order id with its state instead of a new order.
MAX_FINAL_ORDERS = 50_000
ZERO = Decimal(0)


@dataclass(slots=True, eq=False)
class _Order:
    request: SubmitOrder
    terms: OrderTerms
    status: OrderStatus = OrderStatus.PENDING_NEW
    exchange_order_id: int | None = None
    reserved: Reservation | None = None
    first_look: bool = True
    filled: Decimal = ZERO
    average: Decimal | None = None
    reason: str = ""

    @property
    def cid(self) -> str:
        return self.request.client_order_id


class PaperExecutor:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        settings: ExecutorSettings,
        market: MarketType,
        rules: Mapping[str, SymbolRules],
        name: str = "executor",
    ) -> None:
        paper = settings.paper
        self.name = name
        self.market = market
        self._clock = clock
        self._rules = rules  # filled by the venue's start-up: read at use, never copied
        self._model = FillModel(paper.maker_fee, paper.taker_fee, paper.slippage_bps)
        self._latency_ms = paper.latency_ms
        self._ttl_interval_s = settings.ttl_check_interval_s
        self.spot = SpotAccount(paper.balances) if market is MarketType.SPOT else None
        self.futures = (
            None
            if market is MarketType.SPOT
            else FuturesAccount(
                paper.balances,
                leverage=settings.futures.leverage,
                symbol_leverage=settings.futures.symbol_leverage,
            )
        )
        self._updates = bus.sender(ORDER_UPDATE.channel())
        self._accounts = bus.sender(ACCOUNT_UPDATE.channel())
        self._acks = bus.sender(SYSTEM_ACK.channel())
        bus.subscribe(ORDER_REQUEST.channel(), self.on_request, subscriber=name)
        bus.subscribe(MARKET_BOOK.any(), self.on_book, subscriber=name)
        bus.subscribe(MARKET_KLINE.any(), self.on_kline, subscriber=name)
        bus.subscribe(SYSTEM_CONTROL.channel(), self.on_control, subscriber=name)
        bus.subscribe(RISK_STATE.channel(), self.on_risk_state, subscriber=name)
        self._orders: dict[str, _Order] = {}  # open and recent final orders, by client id
        self._final: deque[str] = deque()  # final orders' ids, oldest first
        self._open: dict[str, _Order] = {}  # insertion order = matching order
        self._books: dict[str, BookTicker] = {}
        self._bars: dict[str, dict[str, int]] = {}  # symbol -> interval -> latest bar open
        self._marks: dict[str, Decimal] = {}  # last price: book mid or kline close
        self._now_ms = 0
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._operator_halt = False
        self._risk_state = TradingState.ACTIVE
        self.counts: Counter[str] = Counter()
        self.fees: dict[str, Decimal] = {}
        self.progress = 0
        # run()'s TTL sweep must not interleave with a handler half-way through the books.
        self._lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self._accounts.send(self._account("paper_start", self._clock.now_ms()))

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._ttl_interval_s)
            async with self._lock:
                await self._expire_ttl(self._advance(0))

    # -- order requests -----------------------------------------------------------------------
    async def on_request(self, request: OrderRequest) -> None:
        async with self._lock:
            self.progress += 1
            if isinstance(request, SubmitOrder):
                await self._submit(request)
            elif isinstance(request, CancelOrder):
                await self._cancel(request)
            else:
                await self._replace(request)

    async def _submit(self, request: SubmitOrder) -> None:
        known = self._orders.get(request.client_order_id)
        if known is not None:
            self.counts["duplicate_submits"] += 1
            log.warning("paper_duplicate_order_ignored", client_order_id=known.cid)
            await self._publish(known, None, self._advance(0))
            return
        order = _Order(request, self._terms(request))
        self._orders[order.cid] = order
        now = order.terms.received_ms
        refusal = self._refusal(order)
        if refusal:
            order.status, order.reason = OrderStatus.REJECTED, refusal
            self._finish(order)
            self.counts["rejected"] += 1
            log.info("paper_order_rejected", client_order_id=order.cid, reason=refusal)
            await self._publish(order, ExecutionType.REJECTED, now)
            return
        order.status = OrderStatus.NEW
        order.exchange_order_id = next(self._order_ids)
        self._open[order.cid] = order
        self.counts["accepted"] += 1
        await self._publish(order, ExecutionType.NEW, now)

    def _terms(self, request: SubmitOrder, *, expires_at_ms: int | None = None) -> OrderTerms:
        received = max(request.ts_ms, self._clock.now_ms())
        behaviour = behaviour_of(request.order_type, request.time_in_force)
        resting = behaviour is not None and behaviour is not Behaviour.MARKET
        if expires_at_ms is None and request.ttl_ms is not None and resting:
            expires_at_ms = received + request.ttl_ms
        return OrderTerms(
            side=request.side,
            behaviour=behaviour or Behaviour.RESTING,  # unsupported types are rejected anyway
            quantity=request.quantity,
            price=None if request.order_type is OrderType.MARKET else request.price,
            received_ms=received,
            live_at_ms=received + self._latency_ms,
            arrival_bars=dict(self._bars.get(request.symbol, {})),
            expires_at_ms=expires_at_ms,
        )

    def _refusal(self, order: _Order) -> str:
        """Why the venue refuses the order ("" if it takes it, with its funds reserved)."""
        request = order.request
        if request.is_entry and self.halted:
            return HALTED_REASON
        rules = self._rules.get(request.symbol)
        if rules is None:
            return "Invalid symbol."
        if behaviour_of(request.order_type, request.time_in_force) is None:
            return (
                f"Unsupported order type: the paper venue does not simulate {request.order_type}."
            )
        violation = check_order(
            rules,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            price=request.price,
            reference_price=self._marks.get(request.symbol),
            reduce_only=request.reduce_only,
        )
        if violation is not None:
            return f"Filter failure: {violation.reason}"
        return self._reserve(order, rules)

    def _reserve(self, order: _Order, rules: SymbolRules) -> str:
        request = order.request
        price = order.terms.price
        if price is None:
            price = self._market_estimate(request)
        result: Reservation | str
        if self.spot is not None:
            result = self.spot.reserve_order(
                base=rules.base_asset, quote=rules.quote_asset, side=request.side,
                quantity=request.quantity, price=price,
                fee_rate=max(self._model.maker_fee, self._model.taker_fee),
            )  # fmt: skip
        else:
            assert self.futures is not None
            result = self.futures.reserve_order(
                symbol=request.symbol, asset=rules.quote_asset, side=request.side,
                quantity=request.quantity, price=price, reduce_only=request.reduce_only,
                marks=self._marks,
            )  # fmt: skip
        if isinstance(result, str):
            return result
        order.reserved = result
        return ""

    def _market_estimate(self, request: SubmitOrder) -> Decimal | None:
        book = self._books.get(request.symbol)
        if book is not None:
            touch = book.ask_price if request.side is Side.BUY else book.bid_price
        elif (last := self._marks.get(request.symbol)) is not None:
            touch = last
        else:
            return None
        return self._model.slipped(request.side, touch)

    def _release(self, order: _Order) -> None:
        reserved, order.reserved = order.reserved, None
        if reserved is None:
            return
        if self.spot is not None:
            self.spot.release(reserved.asset, reserved.amount)
        elif self.futures is not None:
            self.futures.release(reserved.asset, reserved.amount)

    async def _cancel(self, request: CancelOrder) -> None:
        order = self._open.get(request.client_order_id)
        if order is None:
            self.counts["cancels_ignored"] += 1
            log.info("paper_cancel_ignored", client_order_id=request.client_order_id)
            return
        reason = request.reason or "canceled"
        await self._close(order, OrderStatus.CANCELED, reason, self._advance(request.ts_ms))

    async def _replace(self, request: ReplaceOrder) -> None:
        order = self._open.get(request.client_order_id)
        if order is None or order.terms.behaviour not in (Behaviour.RESTING, Behaviour.POST_ONLY):
            self.counts["replaces_ignored"] += 1
            log.info("paper_replace_ignored", client_order_id=request.client_order_id)
            return
        now = self._advance(request.ts_ms)
        changed = dataclasses.replace(
            order.request, price=request.price, quantity=request.quantity, ts_ms=request.ts_ms
        )
        if self.spot is not None:
            new_id = request.new_client_order_id
            if new_id in self._orders:
                self.counts["replaces_ignored"] += 1
                log.warning("paper_replace_duplicate_id", client_order_id=new_id)
                return
            await self._close(order, OrderStatus.CANCELED, "replaced", now)
            self.counts["replaced"] += 1
            await self._submit(dataclasses.replace(changed, client_order_id=new_id))
            return
        old_request, old_terms, old_reserved = order.request, order.terms, order.reserved
        self._release(order)
        order.request = changed
        order.terms = self._terms(changed, expires_at_ms=old_terms.expires_at_ms)
        refusal = self._refusal(order)
        if refusal:  # the order stays as it was, funds and all
            order.request, order.terms = old_request, old_terms
            if self.futures is not None and old_reserved is not None:
                self.futures.hold(old_reserved.asset, old_reserved.amount)
            order.reserved = old_reserved
            self.counts["replaces_refused"] += 1
            log.info("paper_amend_refused", client_order_id=order.cid, reason=refusal)
            order.reason = f"amendment refused: {refusal}"
            await self._publish(order, None, now)  # the unchanged state, with why
            order.reason = ""
            return
        order.first_look, order.reason = True, ""
        self.counts["replaced"] += 1
        await self._publish(order, ExecutionType.AMENDMENT, now)

    # -- market events ------------------------------------------------------------------------
    async def on_book(self, book: BookTicker) -> None:
        async with self._lock:
            self.progress += 1
            at = self._advance(book.ts_ms)
            self._books[book.symbol] = book
            self._marks[book.symbol] = (book.bid_price + book.ask_price) / 2
            for order in self._open_orders(book.symbol):
                outcome = match_book(
                    self._model, order.terms, book, at, first_look=order.first_look
                )
                await self._apply(order, outcome, at)
            await self._expire_ttl(at)

    async def on_kline(self, kline: Kline) -> None:
        async with self._lock:
            self.progress += 1
            at = self._advance(kline.close_time_ms if kline.closed else kline.open_time_ms)
            symbol = kline.symbol
            has_book = symbol in self._books
            for order in self._open_orders(symbol):
                # With book tickers, they alone price market orders and first looks.
                if has_book and (order.terms.behaviour is Behaviour.MARKET or order.first_look):
                    continue
                outcome = match_kline(self._model, order.terms, kline, first_look=order.first_look)
                await self._apply(order, outcome, at)
            bars = self._bars.setdefault(symbol, {})
            bars[kline.interval] = max(
                bars.get(kline.interval, kline.open_time_ms), kline.open_time_ms
            )
            self._marks[symbol] = kline.close
            await self._expire_ttl(at)

    def _open_orders(self, symbol: str) -> list[_Order]:
        return [o for o in self._open.values() if o.request.symbol == symbol]

    def _advance(self, event_ms: int) -> int:
        """The executor's time: never back, at least the clock, at least the event's own stamp
        (spot book tickers carry none: 0)."""
        self._now_ms = max(self._now_ms, self._clock.now_ms(), event_ms)
        return self._now_ms

    async def _apply(self, order: _Order, outcome: Outcome, at: int) -> None:
        if outcome is None or order.status is not OrderStatus.NEW:
            return
        if isinstance(outcome, Rest):
            order.first_look = False
        elif isinstance(outcome, Expire):
            await self._close(order, OrderStatus.EXPIRED, outcome.reason, at)
        else:
            await self._fill(order, outcome, at)

    async def _fill(self, order: _Order, at_price: FillAt, at: int) -> None:
        request = order.request
        symbol, side, quantity, price = (
            request.symbol,
            request.side,
            request.quantity,
            at_price.price,
        )
        rules = self._rules[symbol]
        asset = rules.quote_asset
        fee = self._model.fee(price, quantity, is_maker=at_price.is_maker)
        realized: Decimal | None = None
        if self.spot is not None:
            settled = self.spot.settle(
                base=rules.base_asset, quote=asset, side=side, quantity=quantity,
                price=price, fee=fee, reserved=order.reserved.amount if order.reserved else ZERO,
            )  # fmt: skip
            if not settled:
                await self._close(order, OrderStatus.EXPIRED, "insufficient balance at fill", at)
                return
            order.reserved = None
        else:
            assert self.futures is not None
            if request.reduce_only and not self.futures.reduce_only_allowed(symbol, side, quantity):
                await self._close(order, OrderStatus.EXPIRED, REDUCE_ONLY_REJECTED, at)
                return
            self._release(order)
            realized = self.futures.settle(
                symbol=symbol, asset=asset, side=side, quantity=quantity, price=price, fee=fee
            )
        fill = Fill(
            next(self._trade_ids), order.cid, symbol, side, price, quantity, fee, asset,
            at_price.is_maker, at, realized_pnl=realized, exchange_order_id=order.exchange_order_id,
        )  # fmt: skip
        order.status, order.filled, order.average = OrderStatus.FILLED, quantity, price
        self._finish(order)
        self.counts["filled"] += 1
        self.fees[asset] = self.fees.get(asset, ZERO) + fee
        log.info(
            "paper_order_filled", client_order_id=order.cid, symbol=symbol, side=side.value,
            price=str(price), quantity=str(quantity), fee=str(fee), maker=at_price.is_maker,
        )  # fmt: skip
        await self._publish(order, ExecutionType.TRADE, at, fill)
        await self._accounts.send(self._account("ORDER", at, touched=symbol))

    async def _close(self, order: _Order, status: OrderStatus, reason: str, at: int) -> None:
        """End a working order without a fill: CANCELED or EXPIRED, its funds released."""
        self._release(order)
        order.status, order.reason = status, reason
        self._finish(order)
        self.counts["cancelled" if status is OrderStatus.CANCELED else "expired"] += 1
        log.info(
            "paper_order_closed", client_order_id=order.cid, status=status.value, reason=reason
        )
        kind = ExecutionType.CANCELED if status is OrderStatus.CANCELED else ExecutionType.EXPIRED
        await self._publish(order, kind, at)

    def _finish(self, order: _Order) -> None:
        """The order is final: off the book, and remembered (for duplicate ids) a while."""
        self._open.pop(order.cid, None)
        self._final.append(order.cid)
        if len(self._final) > MAX_FINAL_ORDERS:
            self._orders.pop(self._final.popleft(), None)

    async def _expire_ttl(self, now: int) -> None:
        for order in list(self._open.values()):
            expires = order.terms.expires_at_ms
            if expires is not None and now >= expires and order.status is OrderStatus.NEW:
                await self._close(order, OrderStatus.CANCELED, "ttl expired", now)

    # -- control ------------------------------------------------------------------------------
    @property
    def halted(self) -> bool:
        return self._operator_halt or self._risk_state is not TradingState.ACTIVE

    async def on_control(self, command: ControlCommand) -> None:
        action = command.action
        if action is ControlAction.SHUTDOWN:
            return  # the supervisor's business
        async with self._lock:
            self.progress += 1
            detail = ""
            if action in (ControlAction.HALT, ControlAction.FLATTEN):
                self._operator_halt = True
            else:
                self._operator_halt = False
            if action is ControlAction.FLATTEN:
                now = self._advance(command.ts_ms)
                working = [
                    o for o in self._open.values() if o.request.purpose is not OrderPurpose.FLATTEN
                ]
                for order in working:
                    await self._close(order, OrderStatus.CANCELED, "flatten", now)
                detail = f"{len(working)} open orders cancelled"
            log.info("paper_control_applied", action=action.value, detail=detail)
            ack = ControlAcknowledged(
                command.command_id, action, self.name, self._clock.now_ms(), detail
            )
            await self._acks.send(ack)

    async def on_risk_state(self, change: TradingStateChanged) -> None:
        self.progress += 1
        self._risk_state = change.state

    # -- publishing ---------------------------------------------------------------------------
    async def _publish(
        self, order: _Order, kind: ExecutionType | None, at: int, fill: Fill | None = None
    ) -> None:
        """The order's state as an OrderUpdated, stamped from the original request."""
        request = order.request
        update = intent_update(
            request,
            status=order.status,
            ts_ms=at,
            quantity=request.quantity,
            price=request.price,
            filled_quantity=order.filled,
        )
        await self._updates.send(
            replace(
                update,
                client_order_id=order.cid,
                average_fill_price=order.average,
                exchange_order_id=order.exchange_order_id,
                fill=fill,
                reason=order.reason,
                execution_type=kind,
            )
        )

    def _account(self, reason: str, at: int, touched: str | None = None) -> AccountUpdated:
        if self.spot is not None:
            return AccountUpdated(at, reason, self.spot.balances())
        assert self.futures is not None
        also = () if touched is None else (touched,)
        return AccountUpdated(
            at,
            reason,
            self.futures.balances(self._marks),
            self.futures.snapshots(self._marks, also),
        )

    def status(self) -> dict[str, Any]:
        account = self._account("status", self._now_ms)
        return {
            "venue": "paper",
            "market": self.market.value,
            "halted": self.halted,
            "open_orders": len(self._open),
            "filled": self.counts["filled"],
            "cancelled": self.counts["cancelled"],
            "expired": self.counts["expired"],
            "rejected": self.counts["rejected"],
            "counts": dict(sorted(self.counts.items())),
            "fees": {asset: str(fee) for asset, fee in sorted(self.fees.items())},
            "balances": {
                b.asset: {"free": str(b.free), "locked": str(b.locked)} for b in account.balances
            },
            "positions": {
                p.symbol: {
                    "quantity": str(p.quantity),
                    "entry_price": str(p.entry_price),
                    "unrealized_pnl": str(p.unrealized_pnl),
                }
                for p in account.positions
            },
        }
