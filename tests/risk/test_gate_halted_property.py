"""Property: nothing that can open or grow a position leaves the gate unless it is ACTIVE.

Hypothesis drives a real gate on a replay bus with an arbitrary interleaving of entry and exit
signals (random sizes, symbols, instances), fills and cancellations of the orders it approved,
HALT/RESUME/FLATTEN commands, price moves (which trip the drawdown guard) and time passing
(which ends a consecutive-loss cooldown). A watcher on the bus sees every `risk.state` change
and every order in publish order, so it knows the trading state each order left in, and keeps
its own model of every instance's position from the fills it sent. Asserted:

- no SubmitOrder with purpose ENTRY leaves while the state is REDUCING or HALTED;
- every other order is an EXIT or FLATTEN that, with the closes of the same instance and
  symbol still in flight, closes at most the instance's |position|, on the closing side, and is
  reduce-only on futures (and only there);
- every signal gets exactly one answer (checked in `GateHarness.signal`).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.bus import RISK_STATE
from app.domain import (
    ControlAction,
    MarketType,
    OrderPurpose,
    OrderStatus,
    Side,
    SignalAction,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)
from app.domain.orders import OrderRequest
from tests.risk.gate_support import GateHarness, make_gate

BASE = {"BTCUSDT": Decimal(60_000), "ETHUSDT": Decimal(3_000)}
SIZES: dict[str, list[str | None]] = {
    "BTCUSDT": [None, "0.001", "0.004", "0.01", "0.02", "0.5"],
    "ETHUSDT": [None, "0.01", "0.05", "0.2", "1", "10"],
}


@dataclass(frozen=True)
class Emit:
    action: SignalAction
    symbol: str
    strategy: str
    size_index: int
    fill_now: bool  # the executor fills an approved order at once


@dataclass(frozen=True)
class FillOrder:
    index: int  # of the open orders, modulo their number
    whole: bool


@dataclass(frozen=True)
class Cancel:
    index: int


@dataclass(frozen=True)
class Command:
    action: ControlAction


@dataclass(frozen=True)
class Move:
    symbol: str
    pct: int


@dataclass(frozen=True)
class Wait:
    seconds: int


Step = Emit | FillOrder | Cancel | Command | Move | Wait

symbols = st.sampled_from(sorted(BASE))
emits = st.builds(
    Emit,
    st.sampled_from(list(SignalAction)),
    symbols,
    st.sampled_from(["alpha", "beta"]),
    st.integers(0, 5),
    st.booleans(),
)
commands = st.builds(
    Command, st.sampled_from([ControlAction.HALT, ControlAction.RESUME, ControlAction.FLATTEN])
)
steps = st.lists(
    st.one_of(
        emits,
        emits,
        emits,
        st.builds(FillOrder, st.integers(0, 50), st.booleans()),
        st.builds(Cancel, st.integers(0, 50)),
        commands,
        commands,
        st.builds(Move, symbols, st.integers(-8, 8)),
        st.builds(Wait, st.integers(1, 120)),
    ),
    min_size=6,
    max_size=40,
)
# Every run starts with positions on both symbols for both instances, so exits and flattening
# have something to close from the first step.
PRELUDE: list[Step] = [
    Emit(SignalAction.ENTER_LONG, "BTCUSDT", "alpha", 3, fill_now=True),
    Emit(SignalAction.ENTER_LONG, "ETHUSDT", "beta", 4, fill_now=True),
    Emit(SignalAction.ENTER_LONG, "ETHUSDT", "alpha", 3, fill_now=True),
    Emit(SignalAction.ENTER_LONG, "BTCUSDT", "beta", 4, fill_now=True),
]


@dataclass
class Watcher:
    """The bus-side model: trading state in publish order, positions from the fills sent."""

    market: MarketType
    state: TradingState = TradingState.ACTIVE
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    open_orders: dict[str, SubmitOrder] = field(default_factory=dict)
    filled: dict[str, Decimal] = field(default_factory=dict)
    checked: int = 0
    outside_active: int = 0
    seen: list[TradingState] = field(default_factory=list)

    async def on_state(self, change: TradingStateChanged) -> None:
        self.state = change.state
        self.seen.append(change.state)

    def in_flight_closes(self, strategy: str, symbol: str) -> Decimal:
        return sum(
            (
                o.quantity - self.filled.get(o.client_order_id, Decimal(0))
                for o in self.open_orders.values()
                if o.purpose is not OrderPurpose.ENTRY
                and (o.strategy, o.symbol) == (strategy, symbol)
            ),
            start=Decimal(0),
        )

    async def on_order(self, request: OrderRequest) -> None:
        if not isinstance(request, SubmitOrder):
            return
        order = request
        self.checked += 1
        if self.state is not TradingState.ACTIVE:
            self.outside_active += 1
            assert order.purpose is not OrderPurpose.ENTRY, (self.state, order)
        if order.purpose is not OrderPurpose.ENTRY:
            assert order.purpose in (OrderPurpose.EXIT, OrderPurpose.FLATTEN)
            assert order.strategy != "risk"  # no exchange positions are reported here
            position = self.positions.get((order.strategy, order.symbol), Decimal(0))
            closing = Side.SELL if position > 0 else Side.BUY
            assert position != 0, order
            assert order.side is closing, (position, order)
            in_flight = self.in_flight_closes(order.strategy, order.symbol)
            assert in_flight + order.quantity <= abs(position), (position, in_flight, order)
            assert order.reduce_only is (self.market is MarketType.USDM)
        self.open_orders[order.client_order_id] = order

    def book_fill(self, order: SubmitOrder, quantity: Decimal) -> None:
        key = (order.strategy, order.symbol)
        signed = quantity if order.side is Side.BUY else -quantity
        self.positions[key] = self.positions.get(key, Decimal(0)) + signed
        self.filled[order.client_order_id] = (
            self.filled.get(order.client_order_id, Decimal(0)) + quantity
        )


async def _scenario(market: MarketType, entry_type: str, action: str, plan: list[Step]) -> Watcher:
    with tempfile.TemporaryDirectory() as tmp:
        h = await make_gate(
            Path(tmp),
            market,
            start=False,
            orders={"entry_type": entry_type, "limit_offset_bps": "5"},
            guards={
                "consecutive_losses": 2,
                "consecutive_loss_cooldown_min": 1,
                "max_drawdown_pct": 1,
                "drawdown_action": action,
            },
        )
        watcher = Watcher(market)
        h.bus.subscribe(RISK_STATE.channel(), watcher.on_state, subscriber="model")
        h.order_hooks.append(watcher.on_order)
        await h.gate.start()
        await h.settle()
        prices = dict(BASE)
        for step in (*PRELUDE, *plan):
            await _apply(h, watcher, prices, step)
        return watcher


async def _fill(
    h: GateHarness, watcher: Watcher, prices: dict[str, Decimal], order: SubmitOrder, whole: bool
) -> None:
    done = watcher.filled.get(order.client_order_id, Decimal(0))
    remaining = order.quantity - done
    quantity = remaining if whole or remaining < Decimal("0.002") else remaining / 2
    watcher.book_fill(order, quantity)
    if done + quantity >= order.quantity:
        del watcher.open_orders[order.client_order_id]
    await h.fill(order, order.price or prices[order.symbol], quantity)


async def _apply(h: GateHarness, watcher: Watcher, prices: dict[str, Decimal], step: Step) -> None:
    live = list(watcher.open_orders.values())
    match step:
        case Emit(action, symbol, strategy, size_index, fill_now):
            size = SIZES[symbol][size_index]
            answer = await h.signal(action, symbol, strategy=strategy, size=size)
            if fill_now and isinstance(answer, SubmitOrder):
                await _fill(h, watcher, prices, answer, whole=True)
        case FillOrder(index, whole) if live:
            await _fill(h, watcher, prices, live[index % len(live)], whole)
        case Cancel(index) if live:
            order = live[index % len(live)]
            del watcher.open_orders[order.client_order_id]
            done = watcher.filled.get(order.client_order_id, Decimal(0))
            await h.order_update(order, OrderStatus.CANCELED, done)
        case Command(action):
            await h.control(action, command_id=f"cmd-{h.clock.now_ms()}-{action.value}")
        case Move(symbol, pct):
            prices[symbol] = BASE[symbol] * (100 + pct) / 100
            await h.bar(symbol, prices[symbol])
        case Wait(seconds):
            h.clock.advance(seconds)
            await h.gate.tick()
            await h.settle()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    market=st.sampled_from(list(MarketType)),
    entry_type=st.sampled_from(["market", "limit"]),
    action=st.sampled_from(["halted", "reducing"]),
    plan=steps,
)
def test_no_entry_leaves_unless_active_and_closes_never_exceed_positions(
    market: MarketType, entry_type: str, action: str, plan: list[Step]
) -> None:
    watcher = asyncio.run(_scenario(market, entry_type, action, plan))
    # Shown by --hypothesis-show-statistics: how often the interesting case was reached.
    outside = watcher.outside_active
    event(f"orders outside ACTIVE: {'3+' if outside >= 3 else outside}")
    event(f"states seen: {len(set(watcher.seen))}")


def test_the_scenario_reaches_orders_outside_active() -> None:
    """The property is not vacuous: a fixed plan sends exits while HALTED and REDUCING."""
    plan: list[Step] = [
        Command(ControlAction.HALT),
        Emit(SignalAction.ENTER_LONG, "BTCUSDT", "alpha", 3, fill_now=True),  # denied
        Emit(SignalAction.EXIT_LONG, "BTCUSDT", "alpha", 5, fill_now=False),  # 0.5, clipped
        Command(ControlAction.RESUME),
        Move("ETHUSDT", -8),  # -288 on 10,000: the 1 % drawdown breaker -> REDUCING
        Emit(SignalAction.ENTER_LONG, "BTCUSDT", "alpha", 3, fill_now=True),  # denied
        Emit(SignalAction.EXIT_LONG, "ETHUSDT", "beta", 2, fill_now=False),
        Command(ControlAction.FLATTEN),
    ]
    watcher = asyncio.run(_scenario(MarketType.USDM, "market", "reducing", plan))
    assert watcher.seen == [
        TradingState.ACTIVE,
        TradingState.HALTED,
        TradingState.ACTIVE,
        TradingState.REDUCING,
        TradingState.HALTED,
    ]
    # The halted exit, the reducing exit, then flattening: beta's ETH rest and BTC, alpha's ETH
    # (alpha's BTC is wholly being closed by its exit in flight).
    assert watcher.outside_active == 5
