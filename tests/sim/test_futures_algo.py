"""The simulator's algo-order service (conditional futures orders), through our own client.

The real ``FuturesClient`` places, queries, lists and cancels algo orders on the running
simulator, and our parsers read every answer and every ALGO_UPDATE. The market stands still
(speed None) unless a test moves it: ``set_last`` hands the engine a quote with a new last
trade price (what CONTRACT_PRICE orders watch), ``set_mark`` a new mark price (MARK_PRICE),
and publishes the user-data events that produced, as the market pump does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain import AlgoOrderUpdated, OrderStatus, OrderType, Side, SubmitOrder
from app.domain.clock import ManualClock
from app.domain.orders import OrderUpdated
from app.errors import NotFoundError, RejectedError
from exchange.binance.futures import FuturesClient
from exchange.binance.parse_user import UserEvent, decode_futures_user_event
from exchange.binance.user_data_futures import FuturesUserDataStream
from exchange.sim.errors import SimError
from exchange.sim.futures_engine import FuturesEngine
from exchange.sim.matching import MarkTick, Quote
from exchange.sim.server import SimExchange
from tests.sim.harness import START_MS, btc_order, futures_client, running_sim, with_options
from tests.sim.test_futures_helpers import engine, params, quote, wire

BTC = "BTCUSDT"
TICK = Decimal("0.10")
GUARD_S = 10.0


def futures_engine(sim: SimExchange) -> FuturesEngine:
    engine = sim.futures.engine
    assert isinstance(engine, FuturesEngine)
    return engine


def _publish(sim: SimExchange) -> None:
    events = futures_engine(sim).drain_events()
    if events:
        sim.futures.hub.publish(events)


def set_last(sim: SimExchange, price: Decimal, symbol: str = BTC) -> None:
    """A trade at ``price`` with the book one tick around it (CONTRACT_PRICE moves)."""
    now = sim.futures.server_now_ms()
    tick = Quote(symbol, now, price - TICK, price, Decimal(50), Decimal(50), price, Decimal(0))
    futures_engine(sim).on_quote(tick, now)
    _publish(sim)


def set_mark(sim: SimExchange, price: Decimal, symbol: str = BTC) -> None:
    """A new mark price only (MARK_PRICE moves); the book and the last price stay."""
    engine = futures_engine(sim)
    now = sim.futures.server_now_ms()
    funding_ms, rate = engine.ledger.funding.get(symbol, (now + 3_600_000, Decimal(0)))
    engine.on_mark(MarkTick(symbol, now, price, price, rate, funding_ms), now)
    _publish(sim)


def set_market(sim: SimExchange, price: Decimal, symbol: str = BTC) -> None:
    set_last(sim, price, symbol)
    set_mark(sim, price, symbol)


def algo(
    cid: str,
    side: Side,
    order_type: OrderType,
    trigger: Decimal,
    qty: str = "0.010",
    **changes: object,
) -> SubmitOrder:
    return replace(btc_order(cid, side, order_type, qty), stop_price=trigger, **changes)  # type: ignore[arg-type]


async def placed(client: FuturesClient, order: SubmitOrder) -> AlgoOrderUpdated:
    answer = await client.place_order(order)
    assert isinstance(answer, AlgoOrderUpdated)
    return answer


async def position(client: FuturesClient) -> Decimal:
    return sum((p.quantity for p in await client.position_risk(BTC)), Decimal(0))


@pytest.fixture
async def market() -> AsyncIterator[tuple[SimExchange, FuturesClient]]:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, futures_client(sim, clock) as client:
        set_market(sim, Decimal(60_000))
        yield sim, client


async def test_place_query_list_cancel_round_trip(
    market: tuple[SimExchange, FuturesClient],
) -> None:
    _, client = market
    stop = algo("stop-1", Side.SELL, OrderType.STOP_MARKET, Decimal(59_000), reduce_only=True)
    answer = await placed(client, stop)
    assert (answer.client_algo_id, answer.status, answer.order_type) == (
        "stop-1",
        "new",
        OrderType.STOP_MARKET,
    )
    assert (answer.trigger_price, answer.quantity, answer.reduce_only) == (
        Decimal(59_000),
        Decimal("0.010"),
        True,
    )
    assert answer.exchange_order_id is None
    take = algo(
        "tp-1", Side.SELL, OrderType.TAKE_PROFIT_LIMIT, Decimal(61_000), price=Decimal(61_010)
    )
    limit = await placed(client, take)
    assert (limit.order_type, limit.price) == (OrderType.TAKE_PROFIT_LIMIT, Decimal(61_010))
    assert limit.algo_id == answer.algo_id + 1

    queried = await client.query_algo_order("stop-1")
    assert replace(queried, ts_ms=answer.ts_ms) == answer
    assert [o.client_algo_id for o in await client.open_algo_orders(BTC)] == ["stop-1", "tp-1"]
    assert [o.client_algo_id for o in await client.open_algo_orders()] == ["stop-1", "tp-1"]
    assert await client.open_algo_orders("ETHUSDT") == []

    await client.cancel_algo_order("stop-1")
    assert (await client.query_algo_order("stop-1")).status == "canceled"
    assert [o.client_algo_id for o in await client.open_algo_orders()] == ["tp-1"]
    with pytest.raises(NotFoundError) as cancel_again:
        await client.cancel_algo_order("stop-1")
    assert cancel_again.value.code == -2011
    with pytest.raises(NotFoundError) as unknown:
        await client.query_algo_order("nobody")
    assert unknown.value.code == -2013
    assert await client.open_orders(BTC) == []  # nothing reached the matching engine


async def test_placement_is_validated_like_binance(
    market: tuple[SimExchange, FuturesClient],
) -> None:
    _, client = market
    refusals = [
        # A SELL stop above the price, a BUY stop below it: they would fire at once.
        (algo("a", Side.SELL, OrderType.STOP_MARKET, Decimal(60_001)), -2021),
        (algo("b", Side.BUY, OrderType.STOP_MARKET, Decimal(59_999)), -2021),
        (algo("c", Side.SELL, OrderType.TAKE_PROFIT_MARKET, Decimal(59_999)), -2021),
        (algo("d", Side.SELL, OrderType.STOP_MARKET, Decimal("59000.05")), -4014),
        (algo("e", Side.SELL, OrderType.STOP_MARKET, Decimal(59_000), qty="0.0001"), -1111),
        (algo("f", Side.SELL, OrderType.STOP_MARKET, Decimal(59_000), qty="0.001"), -4164),
    ]
    for order, code in refusals:
        with pytest.raises(RejectedError) as refused:
            await client.place_order(order)
        assert refused.value.code == code, order.client_order_id
    # The same small order is fine once it may only reduce (no minimum notional then).
    await placed(
        client,
        algo("g", Side.SELL, OrderType.STOP_MARKET, Decimal(59_000), "0.001", reduce_only=True),
    )
    with pytest.raises(RejectedError) as duplicate:
        await placed(client, algo("g", Side.SELL, OrderType.STOP_MARKET, Decimal(58_000)))
    assert duplicate.value.code == -4116
    assert [o.client_algo_id for o in await client.open_algo_orders()] == ["g"]


async def test_stop_market_on_mark_price_closes_the_long(
    market: tuple[SimExchange, FuturesClient],
) -> None:
    sim, client = market
    await client.place_order(btc_order("long", Side.BUY, OrderType.MARKET, "0.010"))
    assert await position(client) == Decimal("0.010")
    trigger = Decimal(59_000)
    on_mark = algo(
        "sl-mark", Side.SELL, OrderType.STOP_MARKET, trigger, reduce_only=True,
        working_type="MARK_PRICE",
    )  # fmt: skip
    await placed(client, on_mark)
    # A CONTRACT_PRICE stop at the same level, for contrast: the mark alone never fires it.
    await placed(client, replace(on_mark, client_order_id="sl-last", working_type=None))

    set_mark(sim, trigger + 1)
    assert (await client.query_algo_order("sl-mark")).status == "new"
    set_mark(sim, trigger)  # reaching the trigger is enough

    done = await client.query_algo_order("sl-mark")
    assert done.status == "finished"
    assert done.exchange_order_id is not None
    assert await position(client) == 0
    child = await client.query_order(BTC, "sl-mark")  # the order carries the clientAlgoId
    assert child.exchange_order_id == done.exchange_order_id
    assert (child.order_type, child.status, child.reduce_only) == (
        OrderType.MARKET,
        OrderStatus.FILLED,
        True,
    )
    assert child.filled_quantity == Decimal("0.010")
    (waiting,) = await client.open_algo_orders()
    assert waiting.client_algo_id == "sl-last"  # the last price is still 60 000


async def test_take_profit_market_on_the_last_price(
    market: tuple[SimExchange, FuturesClient],
) -> None:
    sim, client = market
    await client.place_order(btc_order("short", Side.SELL, OrderType.MARKET, "0.020"))
    tp = algo("tp", Side.BUY, OrderType.TAKE_PROFIT_MARKET, Decimal(58_000), reduce_only=True)
    await placed(client, replace(tp, quantity=Decimal("0.020")))
    set_last(sim, Decimal("58000.10"))
    assert (await client.query_algo_order("tp")).status == "new"
    set_last(sim, Decimal("57999.90"))
    done = await client.query_algo_order("tp")
    assert done.status == "finished"
    assert await position(client) == 0
    trades = await client.user_trades(BTC, order_id=done.exchange_order_id)
    assert {t.price for t in trades} == {Decimal("57999.90")}  # bought at the ask


async def test_close_position_closes_all_and_its_twin_expires(
    market: tuple[SimExchange, FuturesClient],
) -> None:
    sim, client = market
    await client.place_order(btc_order("long", Side.BUY, OrderType.MARKET, "0.013"))
    sl = algo("sl", Side.SELL, OrderType.STOP_MARKET, Decimal(59_000), close_position=True)
    stop = await placed(client, replace(sl, reduce_only=True))  # dropped, as Binance requires
    assert (stop.close_position, stop.quantity, stop.reduce_only) == (True, Decimal(0), False)
    await placed(
        client,
        replace(sl, client_order_id="tp", order_type=OrderType.TAKE_PROFIT_MARKET,
                stop_price=Decimal(61_000)),
    )  # fmt: skip
    await client.place_order(btc_order("more", Side.BUY, OrderType.MARKET, "0.004"))

    set_last(sim, Decimal(58_900))

    assert await position(client) == 0  # 0.017: the position when it fired, not when placed
    fired = await client.query_algo_order("sl")
    assert fired.status == "finished"
    child = await client.query_order(BTC, "sl")
    assert child.filled_quantity == Decimal("0.017")
    assert (await client.query_algo_order("tp")).status == "expired"  # nothing left to close
    assert await client.open_algo_orders() == []


async def test_reduce_only_stop_without_a_position_is_rejected_when_it_fires(
    market: tuple[SimExchange, FuturesClient],
) -> None:
    sim, client = market
    await placed(
        client, algo("orphan", Side.SELL, OrderType.STOP_MARKET, Decimal(59_000), reduce_only=True)
    )
    set_last(sim, Decimal(58_000))
    rejected = await client.query_algo_order("orphan")
    assert (rejected.status, rejected.exchange_order_id) == ("rejected", None)
    assert await position(client) == 0
    with pytest.raises(NotFoundError):
        await client.query_order(BTC, "orphan")


class Events:
    def __init__(self) -> None:
        self.items: list[UserEvent] = []
        self._changed = asyncio.Condition()

    async def on_events(self, events: tuple[UserEvent, ...]) -> None:
        async with self._changed:
            self.items.extend(events)
            self._changed.notify_all()

    async def wait(self, done: Callable[[list[UserEvent]], bool]) -> None:
        async with asyncio.timeout(GUARD_S), self._changed:
            await self._changed.wait_for(lambda: done(self.items))


async def test_algo_updates_on_the_private_stream() -> None:
    clock = ManualClock(START_MS)
    events = Events()
    async with running_sim(clock=clock) as sim, futures_client(sim, clock) as client:
        set_market(sim, Decimal(60_000))
        stream = FuturesUserDataStream(
            client=client,
            private_url=sim.endpoints.futures_private,
            clock=clock,
            on_events=events.on_events,
            heartbeat_s=None,
        )
        async with asyncio.TaskGroup() as tasks:
            reader = tasks.create_task(stream.run())
            async with asyncio.timeout(GUARD_S):
                await sim.futures.hub.wait_for_subscribers(1)
            await client.place_order(btc_order("long", Side.BUY, OrderType.MARKET, "0.010"))
            await placed(client, algo("gone", Side.SELL, OrderType.STOP_MARKET, Decimal(58_000)))
            await client.cancel_algo_order("gone")
            await placed(
                client,
                algo("sl", Side.SELL, OrderType.STOP_MARKET, Decimal(59_000), reduce_only=True),
            )
            set_last(sim, Decimal(58_990))
            await events.wait(
                lambda items: any(
                    isinstance(e, AlgoOrderUpdated) and e.status == "finished" for e in items
                )
            )
            reader.cancel()

    algos = [e for e in events.items if isinstance(e, AlgoOrderUpdated)]
    assert [(a.client_algo_id, a.status) for a in algos] == [
        ("gone", "new"), ("gone", "canceled"),
        ("sl", "new"), ("sl", "triggering"), ("sl", "triggered"), ("sl", "finished"),
    ]  # fmt: skip
    triggered, finished = algos[-2:]
    child = [e for e in events.items if isinstance(e, OrderUpdated) and e.client_order_id == "sl"]
    assert [o.status for o in child] == [OrderStatus.NEW, OrderStatus.FILLED]
    order_id = child[0].exchange_order_id
    assert triggered.exchange_order_id == finished.exchange_order_id == order_id
    assert (finished.filled_quantity, finished.average_fill_price) == (
        Decimal("0.010"),
        Decimal("58989.90"),  # the bid one tick under the trade
    )
    # The engine's order: the child's events sit between TRIGGERING and TRIGGERED.
    order = [
        (type(e).__name__, getattr(e, "status", None))
        for e in events.items
        if isinstance(e, AlgoOrderUpdated | OrderUpdated)
        and getattr(e, "client_order_id", getattr(e, "client_algo_id", "")) == "sl"
    ]
    assert order == [
        ("AlgoOrderUpdated", "new"), ("AlgoOrderUpdated", "triggering"),
        ("OrderUpdated", OrderStatus.NEW), ("OrderUpdated", OrderStatus.FILLED),
        ("AlgoOrderUpdated", "triggered"), ("AlgoOrderUpdated", "finished"),
    ]  # fmt: skip


async def test_pending_algo_orders_survive_a_restart(tmp_path: Path) -> None:
    options = with_options(state_file=tmp_path / "sim-state.json")
    clock = ManualClock(START_MS)
    async with running_sim(options, clock=clock) as sim, futures_client(sim, clock) as client:
        # The market as the simulator made it (a restart replays its last quote to the engine).
        last = futures_engine(sim).quotes[BTC].last
        trigger = (last - 500).quantize(Decimal(1))
        await client.place_order(btc_order("long", Side.BUY, OrderType.MARKET, "0.010"))
        stop = algo("sl", Side.SELL, OrderType.STOP_MARKET, trigger, reduce_only=True)
        before = await placed(client, stop)
        await placed(client, algo("x", Side.SELL, OrderType.STOP_MARKET, trigger - 100))
        await client.cancel_algo_order("x")

    async with running_sim(options, clock=clock) as sim, futures_client(sim, clock) as client:
        (kept,) = await client.open_algo_orders()
        assert kept == before
        assert (await client.query_algo_order("x")).status == "canceled"
        after = await placed(client, algo("y", Side.SELL, OrderType.STOP_MARKET, trigger - 100))
        assert after.algo_id == before.algo_id + 2  # the id sequence continues
        set_last(sim, trigger - 1)
        assert (await client.query_algo_order("sl")).status == "finished"
        assert await position(client) == 0


# --- the engine alone: refusals and the trigger table


def _algo(**values: str) -> dict[str, str]:
    return params(**({"algoType": "CONDITIONAL", "side": "SELL", "type": "STOP_MARKET"} | values))


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"algoType": "VP", "quantity": "0.010", "triggerPrice": "59000"}, -1130),
        ({"type": "LIMIT", "quantity": "0.010", "triggerPrice": "59000"}, -1116),
        ({"type": "TRAILING_STOP_MARKET", "quantity": "0.010"}, -1130),
        ({"quantity": "0.010"}, -1102),
        ({"triggerPrice": "59000"}, -1102),
        ({"closePosition": "true", "quantity": "0.010", "triggerPrice": "59000"}, -1106),
        ({"closePosition": "true", "reduceOnly": "true", "triggerPrice": "59000"}, -1106),
        (
            {"type": "STOP", "closePosition": "true", "triggerPrice": "59000", "price": "59000"},
            -1106,
        ),
        ({"quantity": "0.010", "triggerPrice": "59000", "price": "59000"}, -1106),
        ({"type": "STOP", "quantity": "0.010", "triggerPrice": "59000"}, -1102),
        ({"quantity": "0.010", "triggerPrice": "59000", "workingType": "INDEX"}, -1130),
        ({"quantity": "0.010", "triggerPrice": "59000", "positionSide": "LONG"}, -4061),
        ({"quantity": "0.010", "triggerPrice": "59000", "clientAlgoId": "no spaces"}, -4015),
        ({"quantity": "0.010", "triggerPrice": "60000.00"}, -2021),  # last 60000: fires
    ],
)
def test_refusals(values: dict[str, str], code: int) -> None:
    e = engine()
    e.on_quote(quote(), 1)
    with pytest.raises(SimError) as refused:
        e.new_algo_order(_algo(**values), 2)
    assert refused.value.code == code, refused.value.msg
    assert e.algos == {}
    assert [ev for ev in e.drain_events() if ev["e"] == "ALGO_UPDATE"] == []


def test_at_most_ten_open_algo_orders_per_symbol() -> None:
    e = engine()
    e.on_quote(quote(), 1)
    for n in range(10):
        e.new_algo_order(_algo(quantity="0.010", triggerPrice=str(59_000 - n)), 2)
    with pytest.raises(SimError) as refused:
        e.new_algo_order(_algo(quantity="0.010", triggerPrice="58000"), 3)
    assert refused.value.code == -4045
    first = min(e.algos)
    e.cancel_algo_order({"algoId": str(first)}, 4)
    e.new_algo_order(_algo(quantity="0.010", triggerPrice="58000"), 5)


@pytest.mark.parametrize(
    ("order_type", "side", "fires_at", "holds_at"),
    [
        ("STOP_MARKET", "SELL", "58999.90", "59000.10"),
        ("STOP_MARKET", "BUY", "59000.10", "58999.90"),
        ("TAKE_PROFIT_MARKET", "SELL", "59000.10", "58999.90"),
        ("TAKE_PROFIT_MARKET", "BUY", "58999.90", "59000.10"),
    ],
)
def test_trigger_directions(order_type: str, side: str, fires_at: str, holds_at: str) -> None:
    e = engine()
    e.on_quote(quote(holds_at, str(Decimal(holds_at) + TICK)), 1)
    e.new_algo_order(_algo(type=order_type, side=side, quantity="0.010", triggerPrice="59000"), 2)
    e.on_quote(quote(holds_at, str(Decimal(holds_at) + TICK)), 3)
    assert [a.status for a in e.algos.values()] == ["NEW"]
    e.on_quote(quote(fires_at, str(Decimal(fires_at) + TICK)), 4)
    assert [a.status for a in e.algos.values()] == ["FINISHED"]


def test_stop_limit_rests_and_finishes_when_its_order_fills() -> None:
    e = engine()
    e.on_quote(quote("59100.00", "59100.10"), 1)
    e.new_order(params(side="BUY", type="MARKET", quantity="0.010"), 1)
    e.new_algo_order(
        _algo(
            type="STOP", quantity="0.010", triggerPrice="59000", price="59050", reduceOnly="true"
        ),
        2,
    )
    e.drain_events()
    e.on_quote(quote("58990.00", "58990.10"), 3)  # fires; SELL 59050 does not cross the bid
    (stop,) = e.algos.values()
    assert stop.status == "TRIGGERED"
    assert e.book.orders["BTCUSDT"][stop.actual_order_id or 0].status == "NEW"
    e.on_quote(quote("59060.00", "59060.10"), 4)  # the bid reaches the limit: it fills
    assert stop.status == "FINISHED"
    decoded = [m for ev in e.drain_events() for m in decode_futures_user_event(wire(ev))]
    algos = [m.status for m in decoded if isinstance(m, AlgoOrderUpdated)]
    assert algos == ["triggering", "triggered", "finished"]


def test_price_protection_holds_the_trigger_while_mark_and_last_disagree() -> None:
    e = engine()
    e.on_quote(quote(), 1)
    e.new_algo_order(
        _algo(quantity="0.010", triggerPrice="59000", priceProtect="TRUE", reduceOnly="true"), 2
    )
    e.on_mark(MarkTick("BTCUSDT", 3, Decimal(63_000), Decimal(63_000), Decimal(0), 10**13), 3)
    e.on_quote(quote("58000.00", "58000.10"), 4)  # last 58 000 vs mark 63 000: > 5 % apart
    assert [a.status for a in e.algos.values()] == ["NEW"]
    e.on_mark(MarkTick("BTCUSDT", 5, Decimal(58_500), Decimal(58_500), Decimal(0), 10**13), 5)
    e.on_quote(quote("58000.00", "58000.10"), 6)
    assert [a.status for a in e.algos.values()] == ["REJECTED"]  # no position to reduce


def test_engine_snapshot_round_trip_keeps_algo_orders() -> None:
    e = engine()
    e.on_quote(quote(), 1)
    e.new_algo_order(_algo(quantity="0.010", triggerPrice="59000", clientAlgoId="keep"), 2)
    snap = e.snapshot()
    again = FuturesEngine.from_snapshot(
        snap, list(e.symbols.values()), fees=e.fees, fill_model=e.fill_model
    )
    assert again.snapshot() == snap
    assert wire(again.query_algo_order({"clientAlgoId": "keep"}, 3)) == wire(
        e.query_algo_order({"clientAlgoId": "keep"}, 3)
    )
    old = {k: v for k, v in snap.items() if k != "algo"}  # a state saved before algo orders
    assert (
        FuturesEngine.from_snapshot(
            old, list(e.symbols.values()), fees=e.fees, fill_model=e.fill_model
        ).algos
        == {}
    )
