"""The paper executor as a component: a real replay bus, a ManualClock, orders sent on
`order.request` and market data on `market.*`, everything it publishes collected.

Venue used unless a test says otherwise: maker 0.1 %, taker 0.2 %, slippage 10 bps, latency
50 ms, 10,000 USDT. Times are offsets from the clock's start.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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
    Balance,
    BookTicker,
    CancelOrder,
    ControlAcknowledged,
    ControlAction,
    ControlCommand,
    ExecutionType,
    Kline,
    ManualClock,
    MarketType,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionSnapshot,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    TradingState,
    TradingStateChanged,
)
from app.domain.account import AccountEvent
from app.domain.orders import OrderEvent
from config.executor import ExecutorSettings, PaperSettings
from exchange.binance.rules import LotSize, SymbolRules
from executor.paper import HALTED_REASON, PaperExecutor
from executor.paper_account import INSUFFICIENT_BALANCE, REDUCE_ONLY_REJECTED
from executor.paper_fills import NOT_CROSSED

D = Decimal
T0 = 1_700_000_040_000  # a minute boundary: bar N opens here
MINUTE = 60_000


@dataclass
class Venue:
    market: MarketType = MarketType.SPOT
    balances: dict[str, Decimal] = field(default_factory=lambda: {"USDT": D(10_000)})
    latency_ms: int = 50
    slippage_bps: Decimal = Decimal(10)
    leverage: int = 1
    clock: ManualClock = field(init=False)
    bus: Bus = field(init=False)
    executor: PaperExecutor = field(init=False)
    updates: list[OrderUpdated] = field(default_factory=list)
    accounts: list[AccountUpdated] = field(default_factory=list)
    acks: list[ControlAcknowledged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock = ManualClock(T0)
        self.bus = Bus(replay=True)
        settings = ExecutorSettings.model_validate(
            {
                "mode": "paper",
                "futures": {"leverage": self.leverage},
                "paper": PaperSettings(
                    balances=self.balances,
                    maker_fee=D("0.001"),
                    taker_fee=D("0.002"),
                    slippage_bps=self.slippage_bps,
                    latency_ms=self.latency_ms,
                ),
            }
        )
        lot = LotSize(D("0.001"), D(1000), D("0.001"))
        rules = {
            "BTCUSDT": SymbolRules("BTCUSDT", self.market, "TRADING", "BTC", "USDT", lot_size=lot)
        }
        self.executor = PaperExecutor(
            bus=self.bus, clock=self.clock, settings=settings, market=self.market, rules=rules
        )
        self.bus.subscribe(ORDER_UPDATE.channel(), self._on_update, subscriber="probe")
        self.bus.subscribe(ACCOUNT_UPDATE.channel(), self._on_account, subscriber="probe")
        self.bus.subscribe(SYSTEM_ACK.channel(), self._on_ack, subscriber="probe")
        self._requests = self.bus.sender(ORDER_REQUEST.channel())
        self._books = self.bus.sender(MARKET_BOOK.channel("BTCUSDT"))
        self._klines = self.bus.sender(MARKET_KLINE.channel("BTCUSDT"))
        self._control = self.bus.sender(SYSTEM_CONTROL.channel())
        self._risk = self.bus.sender(RISK_STATE.channel())

    async def _on_update(self, event: OrderEvent) -> None:
        assert isinstance(event, OrderUpdated)
        self.updates.append(event)

    async def _on_account(self, event: AccountEvent) -> None:
        assert isinstance(event, AccountUpdated)
        self.accounts.append(event)

    async def _on_ack(self, ack: ControlAcknowledged) -> None:
        self.acks.append(ack)

    async def send(self, request: SubmitOrder | CancelOrder | ReplaceOrder) -> None:
        await self._requests.send(request)
        await self.bus.run_until_idle()

    async def submit(self, cid: str = "c1", **fields: Any) -> None:
        values: dict[str, Any] = {
            "client_order_id": cid, "strategy": "s1", "symbol": "BTCUSDT", "side": Side.BUY,
            "order_type": OrderType.MARKET, "quantity": D(1), "ts_ms": self.clock.now_ms(),
            "signal_id": f"sig-{cid}",
        }  # fmt: skip
        values.update(fields)
        await self.send(SubmitOrder(**values))

    async def book(self, bid: str, ask: str, at: int) -> None:
        await self._books.send(BookTicker("BTCUSDT", D(bid), D(5), D(ask), D(5), T0 + at))
        await self.bus.run_until_idle()

    async def bar(self, n: int, o: str, h: str, low: str, c: str, *, closed: bool = True) -> None:
        start = T0 + n * MINUTE
        await self._klines.send(
            Kline("BTCUSDT", "1m", start, start + MINUTE - 1, D(o), D(h), D(low), D(c),
                  D(1), D(1), 1, closed)
        )  # fmt: skip
        await self.bus.run_until_idle()

    async def control(self, action: ControlAction, command_id: str = "cmd-1") -> None:
        await self._control.send(
            ControlCommand(action, "test", self.clock.now_ms(), "", command_id)
        )
        await self.bus.run_until_idle()

    async def risk(self, state: TradingState) -> None:
        await self._risk.send(TradingStateChanged(state, None, "test", self.clock.now_ms()))
        await self.bus.run_until_idle()

    def of(self, cid: str) -> list[OrderUpdated]:
        return [u for u in self.updates if u.client_order_id == cid]

    def statuses(self, cid: str) -> list[OrderStatus]:
        return [u.status for u in self.of(cid)]


def balance(account: AccountUpdated, asset: str) -> Balance:
    return next(b for b in account.balances if b.asset == asset)


# -- acknowledgement, stamping, fills -----------------------------------------------------------


async def test_start_publishes_the_initial_balances() -> None:
    venue = Venue(balances={"USDT": D(500), "BTC": D(2)})
    await venue.executor.start()
    await venue.bus.run_until_idle()
    assert venue.accounts == [
        AccountUpdated(
            T0, "paper_start", (Balance("BTC", D(2), D(0)), Balance("USDT", D(500), D(0)))
        )
    ]


async def test_every_update_is_stamped_and_a_limit_fills_as_maker_on_a_later_tick() -> None:
    venue = Venue()
    await venue.book("99", "101", at=0)
    await venue.submit(
        "c1", order_type=OrderType.LIMIT, price=D(100), quantity=D(2),
        time_in_force=TimeInForce.GTC, purpose=OrderPurpose.ENTRY,
    )  # fmt: skip
    await venue.book("100", "100.5", at=40)  # before the live time (T0 + 50)
    await venue.book("99", "99.5", at=60)  # crosses: fills at the limit
    new, filled = venue.of("c1")
    for update in (new, filled):
        assert (update.strategy, update.signal_id, update.purpose) == ("s1", "sig-c1", "entry")
        assert update.exchange_order_id == 1
        assert update.time_in_force is TimeInForce.GTC
    assert (new.status, new.execution_type, new.ts_ms) == (OrderStatus.NEW, ExecutionType.NEW, T0)
    assert (filled.status, filled.execution_type) == (OrderStatus.FILLED, ExecutionType.TRADE)
    assert (filled.filled_quantity, filled.average_fill_price, filled.ts_ms) == (
        D(2),
        D(100),
        T0 + 60,
    )
    fill = filled.fill
    assert fill is not None
    assert (fill.trade_id, fill.price, fill.quantity, fill.is_maker) == (1, D(100), D(2), True)
    assert (fill.fee, fill.fee_asset, fill.exchange_order_id) == (D("0.2"), "USDT", 1)
    # 10_000 - 200 - 0.2 fee; BTC credited in full
    (account,) = venue.accounts
    assert account.reason == "ORDER"
    assert balance(account, "USDT") == Balance("USDT", D("9799.8"), D(0))
    assert balance(account, "BTC") == Balance("BTC", D(2), D(0))
    status = venue.executor.status()
    assert status["filled"] == 1
    assert status["fees"] == {"USDT": "0.200"}
    assert status["balances"]["USDT"] == {"free": "9799.800", "locked": "0.000"}


async def test_market_order_takes_the_first_tick_at_or_after_the_latency() -> None:
    venue = Venue()
    await venue.book("99", "100", at=0)
    await venue.submit("m1", side=Side.BUY, quantity=D(1))
    await venue.book("90", "91", at=49)
    assert venue.statuses("m1") == [OrderStatus.NEW]
    await venue.book("100", "101", at=50)
    fill = venue.of("m1")[-1].fill
    assert fill is not None
    assert (fill.price, fill.is_maker, fill.fee) == (D("101.101"), False, D("0.202202"))
    assert fill.ts_ms == T0 + 50


async def test_with_klines_only_a_market_order_fills_at_the_next_bars_open() -> None:
    venue = Venue()
    await venue.bar(0, "100", "110", "90", "105")  # the closed bar that produced the signal
    await venue.submit("m1", side=Side.BUY, quantity=D(1), ts_ms=T0 + MINUTE - 1)
    await venue.bar(1, "106", "106", "106", "106", closed=False)
    fill = venue.of("m1")[-1].fill
    assert fill is not None
    assert (fill.price, fill.is_maker) == (D("106.106"), False)


async def test_a_limit_never_fills_in_the_bar_in_progress_when_it_arrived() -> None:
    venue = Venue()
    await venue.bar(0, "105", "106", "101", "102", closed=False)
    await venue.submit("l1", order_type=OrderType.LIMIT, price=D(100), ts_ms=T0 + 30_000)
    await venue.bar(0, "105", "106", "95", "97")  # the same bar closes through the limit
    assert venue.statuses("l1") == [OrderStatus.NEW]
    await venue.bar(1, "98", "99", "96", "97")  # gapped through: the open, as maker
    fill = venue.of("l1")[-1].fill
    assert fill is not None
    assert (fill.price, fill.is_maker, fill.fee) == (D(98), True, D("0.098"))


async def test_ioc_without_a_cross_expires() -> None:
    venue = Venue()
    await venue.book("101", "102", at=0)
    await venue.submit(
        "i1", order_type=OrderType.LIMIT, price=D(100), time_in_force=TimeInForce.IOC
    )
    await venue.book("101", "102", at=50)
    last = venue.of("i1")[-1]
    assert (last.status, last.execution_type, last.reason) == (
        OrderStatus.EXPIRED, ExecutionType.EXPIRED, NOT_CROSSED,
    )  # fmt: skip
    assert venue.executor.spot is not None
    assert venue.executor.spot.locked("USDT") == 0


async def test_duplicate_client_order_id_places_one_order() -> None:
    venue = Venue()
    await venue.book("99", "100", at=0)
    await venue.submit("c1", quantity=D(1))
    await venue.submit("c1", quantity=D(1))
    await venue.book("99", "100", at=50)
    await venue.book("99", "100", at=60)
    statuses = [(u.status, u.execution_type) for u in venue.of("c1")]
    assert statuses == [
        (OrderStatus.NEW, ExecutionType.NEW),
        (OrderStatus.NEW, None),  # the current state, republished
        (OrderStatus.FILLED, ExecutionType.TRADE),
    ]
    assert venue.executor.counts["duplicate_submits"] == 1
    assert venue.executor.counts["filled"] == 1
    assert len(venue.accounts) == 1


# -- cancel, replace, TTL -------------------------------------------------------------------------


async def test_cancel_releases_the_lock_and_unknown_cancels_are_counted() -> None:
    venue = Venue()
    await venue.submit("l1", order_type=OrderType.LIMIT, price=D(100), quantity=D(2))
    spot = venue.executor.spot
    assert spot is not None
    assert spot.locked("USDT") == D("200.4")  # 2 x 100 x (1 + 0.2 % worst fee)
    await venue.send(CancelOrder("l1", "BTCUSDT", T0 + 10, "strategy exit"))
    last = venue.of("l1")[-1]
    assert (last.status, last.execution_type, last.reason) == (
        OrderStatus.CANCELED, ExecutionType.CANCELED, "strategy exit",
    )  # fmt: skip
    assert (last.strategy, last.signal_id) == ("s1", "sig-l1")
    assert (spot.free("USDT"), spot.locked("USDT")) == (D(10_000), D(0))
    await venue.send(CancelOrder("l1", "BTCUSDT", T0 + 20))
    await venue.send(CancelOrder("nope", "BTCUSDT", T0 + 20))
    assert venue.executor.counts["cancels_ignored"] == 2
    assert len(venue.of("l1")) == 2


async def test_spot_replace_cancels_the_old_id_and_places_the_new_one() -> None:
    venue = Venue()
    await venue.submit("l1", order_type=OrderType.LIMIT, price=D(100), quantity=D(1))
    await venue.send(ReplaceOrder("l1", "BTCUSDT", T0 + 10, D(90), D(2), "l2"))
    old, new = venue.of("l1")[-1], venue.of("l2")[-1]
    assert (old.status, old.reason) == (OrderStatus.CANCELED, "replaced")
    assert (new.status, new.execution_type, new.price, new.quantity) == (
        OrderStatus.NEW, ExecutionType.NEW, D(90), D(2),
    )  # fmt: skip
    assert (new.exchange_order_id, new.strategy, new.signal_id) == (2, "s1", "sig-l1")
    spot = venue.executor.spot
    assert spot is not None
    assert spot.locked("USDT") == D("180.36")  # only the new order's lock
    await venue.book("94", "95", at=100)
    assert venue.of("l2")[-1].status is OrderStatus.NEW  # 95 is above the new limit
    await venue.book("89", "90", at=110)
    assert venue.of("l2")[-1].fill is not None
    assert venue.of("l1")[-1].status is OrderStatus.CANCELED


async def test_futures_replace_amends_in_place() -> None:
    venue = Venue(market=MarketType.USDM)
    await venue.submit("l1", order_type=OrderType.LIMIT, price=D(100), quantity=D(1))
    await venue.send(ReplaceOrder("l1", "BTCUSDT", T0 + 10, D(95), D(3), "ignored"))
    amended = venue.of("l1")[-1]
    assert (amended.status, amended.execution_type) == (OrderStatus.NEW, ExecutionType.AMENDMENT)
    assert (amended.price, amended.quantity, amended.exchange_order_id) == (D(95), D(3), 1)
    assert venue.of("ignored") == []
    await venue.book("96", "97", at=100)
    assert venue.of("l1")[-1].status is OrderStatus.NEW
    await venue.book("94", "95", at=110)
    fill = venue.of("l1")[-1].fill
    assert fill is not None
    assert (fill.price, fill.quantity) == (D(95), D(3))


async def test_ttl_cancels_a_resting_limit_on_market_events_and_in_run() -> None:
    venue = Venue()
    await venue.submit("a", order_type=OrderType.LIMIT, price=D(100), ttl_ms=5_000)
    await venue.submit("b", order_type=OrderType.LIMIT, price=D(100), ttl_ms=20_000)
    await venue.book("101", "102", at=4_999)
    assert venue.statuses("a") == [OrderStatus.NEW]
    await venue.book("101", "102", at=5_000)
    last = venue.of("a")[-1]
    assert (last.status, last.reason, last.ts_ms) == (
        OrderStatus.CANCELED,
        "ttl expired",
        T0 + 5_000,
    )

    async with asyncio.TaskGroup() as group:
        runner = group.create_task(venue.executor.run())
        await venue.clock.wait_for_sleepers(1)
        venue.clock.advance(19)  # T0 + 19 s: not yet
        await venue.clock.wait_for_sleepers(1)
        await venue.bus.run_until_idle()
        assert venue.statuses("b") == [OrderStatus.NEW]
        venue.clock.advance(1)
        await venue.clock.wait_for_sleepers(1)
        await venue.bus.run_until_idle()
        runner.cancel()
    assert (venue.of("b")[-1].status, venue.of("b")[-1].reason) == (
        OrderStatus.CANCELED, "ttl expired",
    )  # fmt: skip


# -- refusals and control -----------------------------------------------------------------------


async def test_spot_orders_the_balance_cannot_cover_are_rejected() -> None:
    venue = Venue(balances={"USDT": D(100)})
    await venue.submit("big", order_type=OrderType.LIMIT, price=D(100), quantity=D(1))
    await venue.submit("sell", side=Side.SELL, quantity=D("0.5"))
    for cid in ("big", "sell"):  # 100 x 1 x 1.002 > 100; no BTC at all
        (rejected,) = venue.of(cid)
        assert (rejected.status, rejected.reason) == (OrderStatus.REJECTED, INSUFFICIENT_BALANCE)
        assert rejected.exchange_order_id is None
        assert rejected.strategy == "s1"
    await venue.submit("lot", order_type=OrderType.LIMIT, price=D(1), quantity=D("0.0005"))
    assert venue.of("lot")[-1].reason.startswith("Filter failure: LOT_SIZE")
    await venue.submit("stop", order_type=OrderType.STOP_MARKET, stop_price=D(90))
    assert venue.of("stop")[-1].status is OrderStatus.REJECTED
    assert venue.executor.status()["rejected"] == 4


async def test_halt_refuses_entries_acknowledges_and_resume_allows_them_again() -> None:
    venue = Venue()
    await venue.control(ControlAction.HALT, "h1")
    assert venue.acks == [ControlAcknowledged("h1", ControlAction.HALT, "executor", T0)]
    await venue.submit("entry", purpose=OrderPurpose.ENTRY)
    await venue.submit(
        "exit", purpose=OrderPurpose.EXIT, side=Side.SELL, order_type=OrderType.LIMIT, price=D(1)
    )
    assert (venue.of("entry")[-1].status, venue.of("entry")[-1].reason) == (
        OrderStatus.REJECTED, HALTED_REASON,
    )  # fmt: skip
    # the exit is judged on its merits: no BTC to sell, but not refused for the halt
    assert venue.of("exit")[-1].reason == INSUFFICIENT_BALANCE
    assert venue.executor.status()["halted"] is True
    await venue.control(ControlAction.RESUME, "r1")
    assert venue.acks[-1].command_id == "r1"
    await venue.submit("entry2", order_type=OrderType.LIMIT, price=D(1))
    assert venue.statuses("entry2") == [OrderStatus.NEW]


async def test_risk_state_reducing_or_halted_refuses_entries() -> None:
    venue = Venue()
    for n, state in enumerate((TradingState.REDUCING, TradingState.HALTED)):
        await venue.risk(state)
        await venue.submit(f"e{n}", order_type=OrderType.LIMIT, price=D(1))
        assert venue.of(f"e{n}")[-1].reason == HALTED_REASON
    await venue.risk(TradingState.ACTIVE)
    await venue.submit("ok", order_type=OrderType.LIMIT, price=D(1))
    assert venue.statuses("ok") == [OrderStatus.NEW]


async def test_flatten_cancels_open_orders_but_not_the_flattening_ones() -> None:
    venue = Venue(balances={"USDT": D(10_000), "BTC": D(1)})
    await venue.submit("entry", order_type=OrderType.LIMIT, price=D(50))
    await venue.submit(
        "closing", side=Side.SELL, quantity=D(1), purpose=OrderPurpose.FLATTEN,
        order_type=OrderType.LIMIT, price=D(200),
    )  # fmt: skip
    await venue.control(ControlAction.FLATTEN, "f1")
    assert (venue.of("entry")[-1].status, venue.of("entry")[-1].reason) == (
        OrderStatus.CANCELED, "flatten",
    )  # fmt: skip
    assert venue.statuses("closing") == [OrderStatus.NEW]
    assert venue.acks[-1] == ControlAcknowledged(
        "f1", ControlAction.FLATTEN, "executor", T0, "1 open orders cancelled"
    )
    await venue.submit("again", order_type=OrderType.LIMIT, price=D(50))
    assert venue.of("again")[-1].reason == HALTED_REASON


# -- futures -------------------------------------------------------------------------------------


async def test_futures_position_account_updates_and_reduce_only() -> None:
    venue = Venue(market=MarketType.USDM, slippage_bps=D(0), latency_ms=0)
    await venue.submit("ro", side=Side.SELL, reduce_only=True, purpose=OrderPurpose.EXIT)
    assert (venue.of("ro")[-1].status, venue.of("ro")[-1].reason) == (
        OrderStatus.REJECTED, REDUCE_ONLY_REJECTED,
    )  # fmt: skip
    await venue.book("99", "100", at=0)
    await venue.submit("long", side=Side.BUY, quantity=D(2))
    await venue.book("99", "100", at=1)  # buys 2 at 100, fee 0.4
    await venue.submit("flip", side=Side.SELL, quantity=D(3), reduce_only=True)
    assert venue.of("flip")[-1].reason == REDUCE_ONLY_REJECTED
    await venue.submit("cut", side=Side.SELL, quantity=D(1), reduce_only=True)
    await venue.book("110", "111", at=2)  # sells 1 at 110: realised 10, fee 0.22
    cut = venue.of("cut")[-1].fill
    assert cut is not None
    assert (cut.price, cut.realized_pnl, cut.fee) == (D(110), D(10), D("0.22"))
    account = venue.accounts[-1]
    assert balance(account, "USDT").free == D(10_000) - D("0.4") + 10 - D("0.22")
    # unrealised at the last price, the book's mid 110.5: 1 x (110.5 - 100)
    assert account.positions == (
        PositionSnapshot("BTCUSDT", D(1), D(100), D("10.5"), leverage=1, mark_price=D("110.5")),
    )
    assert venue.executor.status()["positions"]["BTCUSDT"]["quantity"] == "1"


# -- property: value accounting is exact ----------------------------------------------------------

STEP = st.tuples(
    st.sampled_from([Side.BUY, Side.SELL]),
    st.decimals(min_value=D("0.001"), max_value=D(5), places=3),  # quantity
    st.decimals(min_value=D(50), max_value=D(200), places=2),  # bid
    st.decimals(min_value=D("0.01"), max_value=D(2), places=2),  # spread
)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(STEP, min_size=1, max_size=12),
    slippage=st.decimals(min_value=D(0), max_value=D(50), places=1),
)
def test_value_is_conserved_up_to_fees_and_execution_costs(
    steps: list[tuple[Side, Decimal, Decimal, Decimal]], slippage: Decimal
) -> None:
    """For every fill i at price p_i against a book with mid m_i, valued at the final mid M:

    V_end(M) = V_start(M) - sum(fee_i) - sum(cost_i) + sum(s_i q_i (M - m_i))

    with cost_i = s_i q_i (p_i - m_i) (what crossing the spread plus slippage cost, never
    negative) and s_i = +1 for a buy, -1 for a sell. Every term is exact in Decimal."""
    asyncio.run(_value_conservation(steps, slippage))


async def _value_conservation(
    steps: list[tuple[Side, Decimal, Decimal, Decimal]], slippage: Decimal
) -> None:
    venue = Venue(balances={"USDT": D(1_000), "BTC": D(2)}, slippage_bps=slippage)
    fees = costs = moves = D(0)
    mids: dict[int, Decimal] = {}
    at = 0
    await venue.book("100", "100.5", at)  # prices the first order's balance check
    for n, (side, quantity, bid, spread) in enumerate(steps):
        # Each order is checked against the previous book and fills on the next one: a buy
        # that now costs more than it locked takes the rest from free quote, or expires.
        await venue.submit(f"o{n}", side=side, quantity=quantity, ts_ms=T0 + at)
        at += 50
        await venue.book(str(bid), str(bid + spread), at)
        mids[n] = bid + spread / 2
        at += 1
    final_mid = mids[len(steps) - 1]
    for n, (side, quantity, bid, spread) in enumerate(steps):
        fill = venue.of(f"o{n}")[-1].fill
        if fill is None:
            assert venue.of(f"o{n}")[-1].status in (OrderStatus.REJECTED, OrderStatus.EXPIRED)
            continue
        sign = 1 if side is Side.BUY else -1
        touch = bid + spread if side is Side.BUY else bid
        assert fill.price == touch * (1 + sign * slippage / 10_000)
        assert fill.fee == fill.price * quantity * D("0.002")
        cost = sign * quantity * (fill.price - mids[n])
        assert cost >= 0
        fees += fill.fee
        costs += cost
        moves += sign * quantity * (final_mid - mids[n])
    spot = venue.executor.spot
    assert spot is not None
    assert spot.locked("USDT") == spot.locked("BTC") == 0
    assert spot.free("USDT") >= 0
    assert spot.free("BTC") >= 0
    start = D(1_000) + D(2) * final_mid
    end = spot.free("USDT") + spot.free("BTC") * final_mid
    assert end == start - fees - costs + moves


async def test_a_market_buy_the_balance_no_longer_covers_at_fill_expires() -> None:
    venue = Venue(balances={"USDT": D(101)})
    await venue.book("99", "100", at=0)
    await venue.submit("m1", quantity=D(1))  # locks 100 x 1.001 x 1.002 = 100.3003...
    await venue.book("109", "110", at=50)  # now costs 110.11 + fee
    last = venue.of("m1")[-1]
    assert (last.status, last.reason, last.fill) == (
        OrderStatus.EXPIRED, "insufficient balance at fill", None,
    )  # fmt: skip
    spot = venue.executor.spot
    assert spot is not None
    assert (spot.free("USDT"), spot.locked("USDT"), spot.free("BTC")) == (D(101), D(0), D(0))
    assert venue.accounts == []


async def test_futures_margin_is_checked_on_submit_and_on_amend() -> None:
    venue = Venue(market=MarketType.USDM, balances={"USDT": D(1_000)}, leverage=2)
    await venue.submit("big", order_type=OrderType.LIMIT, price=D(100), quantity=D(21))
    assert venue.of("big")[-1].reason == "Margin is insufficient."  # 2100 / 2 > 1000
    await venue.submit("l1", order_type=OrderType.LIMIT, price=D(100), quantity=D(10))
    futures = venue.executor.futures
    assert futures is not None
    assert futures.available("USDT", {}) == D(500)  # 10 x 100 / 2 reserved
    await venue.send(ReplaceOrder("l1", "BTCUSDT", T0 + 10, D(100), D(30), "unused"))
    refused = venue.of("l1")[-1]
    assert (refused.status, refused.execution_type, refused.quantity) == (
        OrderStatus.NEW, None, D(10),
    )  # fmt: skip
    assert refused.reason == "amendment refused: Margin is insufficient."
    assert futures.available("USDT", {}) == D(500)  # the old reservation, put back
    await venue.book("99", "99.5", at=100)
    filled = venue.of("l1")[-1]
    assert (filled.status, filled.reason, filled.quantity) == (OrderStatus.FILLED, "", D(10))


async def test_once_a_symbol_has_book_tickers_they_alone_fill_market_orders() -> None:
    venue = Venue()
    await venue.book("99", "100", at=0)
    await venue.bar(0, "100", "100", "100", "100")
    await venue.submit("m1", quantity=D(1), ts_ms=T0 + MINUTE - 1)
    await venue.bar(1, "90", "90", "90", "90", closed=False)  # a kline: not used
    assert venue.statuses("m1") == [OrderStatus.NEW]
    await venue.book("104", "105", at=MINUTE + 100)
    fill = venue.of("m1")[-1].fill
    assert fill is not None
    assert fill.price == D("105.105")
