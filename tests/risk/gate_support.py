"""A risk gate on a replay bus with everything it produces collected, and message builders.

Symbol rules come from the simulator's catalogue read back through the real exchangeInfo
parser, so the gate rounds and filters exactly as it would against the simulator.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.bus import (
    ORDER_REQUEST,
    ORDER_UPDATE,
    RISK_STATE,
    SYSTEM_ACK,
    SYSTEM_ALERT,
    SYSTEM_CONTROL,
    Bus,
)
from app.bus.catalogue import ACCOUNT_UPDATE, MARKET_BOOK, MARKET_KLINE, MARKET_MARK, SIGNAL
from app.domain import (
    AccountUpdated,
    Alert,
    BookTicker,
    ControlAcknowledged,
    ControlAction,
    ControlCommand,
    Fill,
    Kline,
    ManualClock,
    MarketType,
    MarkPrice,
    OrderDenied,
    OrderStatus,
    OrderUpdated,
    PositionSnapshot,
    Signal,
    SignalAction,
    SubmitOrder,
    TradingStateChanged,
)
from app.domain.orders import OrderEvent, OrderRequest
from config.risk import RiskSettings
from exchange.binance.ratelimit_rules import parse_rate_limits
from exchange.binance.rules import SymbolRules, parse_exchange_info
from exchange.sim.catalog import default_symbol, futures_exchange_info, spot_exchange_info
from risk.gate import RiskGate
from risk.state_store import StateDocuments

START_MS = 1_763_700_000_000  # 2025-11-21 04:40 UTC
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def sim_rules(market: MarketType) -> dict[str, SymbolRules]:
    build = spot_exchange_info if market is MarketType.SPOT else futures_exchange_info
    document = build([default_symbol(s, market) for s in SYMBOLS], server_time_ms=START_MS)
    return dict(parse_exchange_info(json.dumps(document).encode(), market).symbols)


def sim_order_limits(market: MarketType) -> list[tuple[int, int]]:
    build = spot_exchange_info if market is MarketType.SPOT else futures_exchange_info
    document = build([default_symbol("BTCUSDT", market)], server_time_ms=START_MS)
    rules = parse_rate_limits(document["rateLimits"])
    return [(r.window_s * 1000, r.limit) for r in rules if r.kind == "ORDERS"]


def settings(tmp_path: Path, **overrides: Any) -> RiskSettings:
    """RiskSettings from a config-like dict (nested sections as dicts)."""
    data: dict[str, Any] = {"state_file": tmp_path / "risk_state.json", **overrides}
    return RiskSettings.model_validate(data)


@dataclass
class GateHarness:
    bus: Bus
    clock: ManualClock
    gate: RiskGate
    market: MarketType
    orders: list[SubmitOrder] = field(default_factory=list)
    requests: list[OrderRequest] = field(default_factory=list)
    denials: list[OrderDenied] = field(default_factory=list)
    states: list[TradingStateChanged] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    acks: list[ControlAcknowledged] = field(default_factory=list)
    #: every message in the order it was seen, to check what came before what
    timeline: list[object] = field(default_factory=list)
    filled: dict[str, Decimal] = field(default_factory=dict)
    #: called with every order request as the executor receives it
    order_hooks: list[Callable[[OrderRequest], Awaitable[None]]] = field(default_factory=list)
    _trade_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _signal_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- collectors --------------------------------------------------------------------------
    async def _on_request(self, request: OrderRequest) -> None:
        self.requests.append(request)
        self.timeline.append(request)
        if isinstance(request, SubmitOrder):
            self.orders.append(request)
        for hook in self.order_hooks:
            await hook(request)

    async def _on_update(self, event: OrderEvent) -> None:
        if isinstance(event, OrderDenied):
            self.denials.append(event)
            self.timeline.append(event)

    async def _on_state(self, change: TradingStateChanged) -> None:
        self.states.append(change)
        self.timeline.append(change)

    async def _on_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)

    async def _on_ack(self, ack: ControlAcknowledged) -> None:
        self.acks.append(ack)
        self.timeline.append(ack)

    # -- inputs ------------------------------------------------------------------------------
    async def settle(self) -> None:
        await self.bus.run_until_idle()

    async def signal(
        self,
        action: SignalAction = SignalAction.ENTER_LONG,
        symbol: str = "BTCUSDT",
        *,
        strategy: str = "alpha",
        size: str | Decimal | None = None,
        signal_id: str | None = None,
    ) -> OrderDenied | SubmitOrder:
        """Send one signal; returns the gate's answer (exactly one is asserted)."""
        before = (len(self.orders), len(self.denials))
        signal = Signal(
            strategy=strategy,
            symbol=symbol,
            action=action,
            ts_ms=self.clock.now_ms(),
            signal_id=signal_id or f"{strategy}-{next(self._signal_ids)}",
            size_hint=None if size is None else Decimal(size),
        )
        await self.bus.sender(SIGNAL.channel(strategy)).send(signal)
        await self.settle()
        new_orders = self.orders[before[0] :]
        new_denials = self.denials[before[1] :]
        assert len(new_orders) + len(new_denials) == 1, (new_orders, new_denials)
        return new_orders[0] if new_orders else new_denials[0]

    async def deny_reason(self, *args: Any, **kwargs: Any) -> str:
        answer = await self.signal(*args, **kwargs)
        assert isinstance(answer, OrderDenied), answer
        return answer.reason

    async def approve(self, *args: Any, **kwargs: Any) -> SubmitOrder:
        answer = await self.signal(*args, **kwargs)
        assert isinstance(answer, SubmitOrder), answer
        return answer

    async def fill(
        self, order: SubmitOrder, price: str | Decimal, quantity: str | Decimal | None = None
    ) -> None:
        """The executor's stamped OrderUpdated for a (partial) fill of `order`."""
        qty = order.quantity if quantity is None else Decimal(quantity)
        done = self.filled.get(order.client_order_id, Decimal(0)) + qty
        self.filled[order.client_order_id] = done
        fill = Fill(
            trade_id=next(self._trade_ids),
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            price=Decimal(price),
            quantity=qty,
            fee=Decimal(0),
            fee_asset="USDT",
            is_maker=False,
            ts_ms=self.clock.now_ms(),
        )
        status = OrderStatus.FILLED if done >= order.quantity else OrderStatus.PARTIALLY_FILLED
        await self.order_update(order, status, done, fill=fill)

    async def order_update(
        self,
        order: SubmitOrder,
        status: OrderStatus,
        filled: Decimal = Decimal(0),
        *,
        fill: Fill | None = None,
    ) -> None:
        update = OrderUpdated(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            status=status,
            quantity=order.quantity,
            filled_quantity=filled,
            ts_ms=self.clock.now_ms(),
            fill=fill,
            strategy=order.strategy,
            signal_id=order.signal_id,
            purpose=order.purpose,
            reduce_only=order.reduce_only,
        )
        await self.bus.sender(ORDER_UPDATE.channel()).send(update)
        await self.settle()

    async def bar(self, symbol: str, close: str | Decimal) -> None:
        now = self.clock.now_ms()
        price = Decimal(close)
        kline = Kline(
            symbol, "1m", now - 60_000, now - 1, price, price, price, price,
            Decimal(1), price, 1, True,
        )  # fmt: skip
        await self.bus.sender(MARKET_KLINE.channel(symbol)).send(kline)
        await self.settle()

    async def book(self, symbol: str, bid: str, ask: str) -> None:
        ticker = BookTicker(
            symbol, Decimal(bid), Decimal(1), Decimal(ask), Decimal(1), self.clock.now_ms()
        )
        await self.bus.sender(MARKET_BOOK.channel(symbol)).send(ticker)
        await self.settle()

    async def mark(self, symbol: str, price: str, next_funding_ms: int) -> None:
        mark = MarkPrice(
            symbol, Decimal(price), Decimal(price), Decimal("0.0001"), next_funding_ms,
            self.clock.now_ms(),
        )  # fmt: skip
        await self.bus.sender(MARKET_MARK.channel(symbol)).send(mark)
        await self.settle()

    async def account(self, positions: Sequence[tuple[str, str]]) -> None:
        snapshots = tuple(
            PositionSnapshot(symbol, Decimal(qty), Decimal(0), Decimal(0))
            for symbol, qty in positions
        )
        update = AccountUpdated(self.clock.now_ms(), "ORDER", positions=snapshots)
        await self.bus.sender(ACCOUNT_UPDATE.channel()).send(update)
        await self.settle()

    async def control(
        self, action: ControlAction, reason: str = "", command_id: str = "cmd-1"
    ) -> None:
        command = ControlCommand(action, "test", self.clock.now_ms(), reason, command_id)
        await self.bus.sender(SYSTEM_CONTROL.channel()).send(command)
        await self.settle()

    async def open_position(
        self,
        symbol: str = "BTCUSDT",
        size: str = "0.01",
        price: str = "60000",
        *,
        strategy: str = "alpha",
        short: bool = False,
    ) -> SubmitOrder:
        action = SignalAction.ENTER_SHORT if short else SignalAction.ENTER_LONG
        order = await self.approve(action, symbol, strategy=strategy, size=size)
        await self.fill(order, price)
        return order


async def make_gate(
    tmp_path: Path,
    market: MarketType = MarketType.SPOT,
    *,
    rules: dict[str, SymbolRules] | None = None,
    order_limits: Sequence[tuple[int, int]] | None = None,
    clock: ManualClock | None = None,
    prices: dict[str, str] | None = None,
    start: bool = True,
    documents: StateDocuments | None = None,
    **overrides: Any,
) -> GateHarness:
    """A started gate with prices seen for BTCUSDT (60,000) and ETHUSDT (3,000); its state in
    `documents` (a file in `tmp_path` when None)."""
    bus = Bus(replay=True)
    clock = clock or ManualClock(START_MS)
    gate = RiskGate(
        bus=bus,
        clock=clock,
        settings=settings(tmp_path, **overrides),
        market=market,
        rules=sim_rules(market) if rules is None else rules,
        order_limits=sim_order_limits(market) if order_limits is None else order_limits,
        documents=documents,
    )
    harness = GateHarness(bus, clock, gate, market)
    bus.subscribe(ORDER_REQUEST.channel(), harness._on_request, subscriber="executor")
    bus.subscribe(ORDER_UPDATE.channel(), harness._on_update, subscriber="watcher")
    bus.subscribe(RISK_STATE.channel(), harness._on_state, subscriber="watcher")
    bus.subscribe(SYSTEM_ALERT.channel(), harness._on_alert, subscriber="watcher")
    bus.subscribe(SYSTEM_ACK.channel(), harness._on_ack, subscriber="watcher")
    if start:
        await gate.start()
        await harness.settle()
    default_prices = {"BTCUSDT": "60000", "ETHUSDT": "3000"}
    for symbol, price in (default_prices if prices is None else prices).items():
        await harness.bar(symbol, price)
    return harness
