"""The bus: overflow policies, fan-out and patterns, point-to-point rules, end of stream, and
the replay (lock-step) delivery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.bus import (
    MARKET_BOOK,
    MARKET_KLINE,
    ORDER_REQUEST,
    ORDER_UPDATE,
    SIGNAL,
    SYSTEM_ALERT,
    Bus,
    ChannelClosed,
    Inbox,
    NoReceiver,
    Overflow,
    WiringError,
)
from app.bus.catalogue import spec_for
from app.bus.names import InvalidName, matches
from app.domain import Kline, Signal
from tests.factories import alert, book, kline, order, signal, update


async def settle(rounds: int = 5) -> None:
    """Let every ready task run (no time passes: this only yields to the loop)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Collector:
    def __init__(self) -> None:
        self.items: list[Any] = []

    async def __call__(self, message: Any) -> None:
        self.items.append(message)


# -- overflow policies --------------------------------------------------------------------
async def test_full_order_request_blocks_the_sender_and_never_drops() -> None:
    bus = Bus()
    sender = bus.sender(ORDER_REQUEST.channel())
    received = Collector()
    subscription = bus.subscribe(
        ORDER_REQUEST.channel(), received, subscriber="executor", capacity=2
    )
    await sender.send(order(0))
    await sender.send(order(1))
    blocked = asyncio.create_task(sender.send(order(2)))
    await settle()
    assert not blocked.done(), "a full order channel must make the sender wait"
    assert subscription.inbox is not None
    assert subscription.inbox.blocked_senders == 1
    delivery = asyncio.create_task(subscription.deliver())
    await blocked
    more = [asyncio.create_task(sender.send(order(n))) for n in range(3, 40)]
    await asyncio.gather(*more)
    subscription.inbox.close()
    await delivery
    assert [o.client_order_id for o in received.items] == [f"tb-{n}" for n in range(40)]
    assert subscription.inbox.dropped == 0
    assert subscription.inbox.high_water == 2


async def test_cancelled_blocked_sender_passes_its_turn_on() -> None:
    inbox: Inbox[int] = Inbox("x", 1, Overflow.BLOCK)
    inbox.try_put(0)
    first = asyncio.create_task(inbox.put(1))
    second = asyncio.create_task(inbox.put(2))
    await settle()
    assert inbox.take_nowait() == 0  # wakes `first`...
    first.cancel()  # ...which is cancelled before it can use the room
    await settle()
    assert second.done()
    assert inbox.take_nowait() == 2


async def test_market_conflation_keeps_newest_per_key_and_counts_replacements() -> None:
    bus = Bus()
    received = Collector()
    subscription = bus.subscribe(MARKET_KLINE.any(), received, subscriber="strategy", capacity=16)
    btc = bus.sender(MARKET_KLINE.channel("BTCUSDT"))
    eth = bus.sender(MARKET_KLINE.channel("ETHUSDT"))
    for price in ("1", "2", "3"):
        await btc.send(kline("BTCUSDT", 0, price, closed=False))
    await eth.send(kline("ETHUSDT", 0, "10", closed=False))
    await btc.send(kline("BTCUSDT", 0, "4", closed=True))  # the close replaces the intrabar
    await btc.send(kline("BTCUSDT", 60_000, "5", closed=False))  # next bar: its own key
    assert subscription.inbox is not None
    assert len(subscription.inbox) == 3
    assert subscription.inbox.conflated == 3
    assert subscription.inbox.dropped == 0
    subscription.inbox.close()
    await subscription.deliver()
    got = [(k.symbol, k.open_time_ms, str(k.close), k.closed) for k in received.items]
    assert got == [
        ("BTCUSDT", 0, "4", True),  # newest value, in the place of the first pending update
        ("ETHUSDT", 0, "10", False),
        ("BTCUSDT", 60_000, "5", False),
    ]


async def test_book_conflation_is_per_symbol_and_overflow_drops_oldest_key() -> None:
    bus = Bus()
    received = Collector()
    subscription = bus.subscribe(MARKET_BOOK.any(), received, subscriber="s", capacity=2)
    for symbol in ("AAAUSDT", "BBBUSDT", "CCCUSDT"):
        await bus.sender(MARKET_BOOK.channel(symbol)).send(book(symbol, "5"))
    await bus.sender(MARKET_BOOK.channel("CCCUSDT")).send(book("CCCUSDT", "6"))
    assert subscription.inbox is not None
    assert subscription.inbox.dropped == 1
    assert subscription.inbox.conflated == 1
    subscription.inbox.close()
    await subscription.deliver()
    assert [(b.symbol, str(b.bid_price)) for b in received.items] == [
        ("BBBUSDT", "5"),
        ("CCCUSDT", "6"),
    ]


async def test_alerts_drop_oldest_with_a_counter() -> None:
    bus = Bus()
    received = Collector()
    subscription = bus.subscribe(SYSTEM_ALERT.channel(), received, subscriber="alerts", capacity=3)
    alerts = bus.sender(SYSTEM_ALERT.channel())
    for n in range(5):
        await alerts.send(alert(n))  # never blocks
    assert subscription.inbox is not None
    assert subscription.inbox.dropped == 2
    subscription.inbox.close()
    await subscription.deliver()
    assert [a.ts_ms for a in received.items] == [2, 3, 4]


# -- routing ------------------------------------------------------------------------------
async def test_pattern_subscription_sees_channels_created_before_and_after() -> None:
    bus = Bus()
    early = bus.sender(SIGNAL.channel("early"))
    received = Collector()
    subscription = bus.subscribe(SIGNAL.any(), received, subscriber="risk")
    late = bus.sender(SIGNAL.channel("late"))
    await early.send(signal("early"))
    await late.send(signal("late"))
    await bus.sender(MARKET_KLINE.channel("BTCUSDT")).send(kline())  # not a signal
    assert subscription.inbox is not None
    subscription.inbox.close()
    await subscription.deliver()
    assert [s.strategy for s in received.items] == ["early", "late"]


async def test_fanout_delivers_to_every_subscriber_and_counts_unrouted() -> None:
    bus = Bus()
    updates = bus.sender(ORDER_UPDATE.channel())
    await updates.send(update(0))
    assert updates.topic.unrouted == 1
    collectors = [Collector() for _ in range(3)]
    subs = [
        bus.subscribe(ORDER_UPDATE.channel(), c, subscriber=f"s{i}")
        for i, c in enumerate(collectors)
    ]
    await updates.send(update(1))
    for sub in subs:
        assert sub.inbox is not None
        sub.inbox.close()
        await sub.deliver()
    assert all([u.ts_ms for u in c.items] == [1] for c in collectors)
    assert updates.topic.published == 2


def test_point_to_point_rules_are_enforced_at_wiring() -> None:
    bus = Bus()
    bus.subscribe(ORDER_REQUEST.channel(), Collector(), subscriber="executor")
    with pytest.raises(WiringError, match="point-to-point"):
        bus.subscribe(ORDER_REQUEST.channel(), Collector(), subscriber="other")
    with pytest.raises(WiringError, match="point-to-point"):
        bus.subscribe_pattern("order.*", Collector(), subscriber="snoop")


async def test_point_to_point_without_receiver_is_loud() -> None:
    bus = Bus()
    with pytest.raises(NoReceiver):
        await bus.sender(ORDER_REQUEST.channel()).send(order())


async def test_wrong_message_type_is_refused() -> None:
    bus = Bus()
    sender: Any = bus.sender(ORDER_REQUEST.channel())
    bus.subscribe(ORDER_REQUEST.channel(), Collector(), subscriber="executor")
    with pytest.raises(TypeError, match=r"order\.request"):
        await sender.send(signal())


def test_cross_family_pattern_must_share_a_policy() -> None:
    bus = Bus()
    bus.subscribe_pattern("market.>", Collector(), subscriber="tape")  # all conflate
    with pytest.raises(WiringError, match="mixes overflow"):
        bus.subscribe_pattern("system.*", Collector(), subscriber="x")
    with pytest.raises(WiringError, match="matches no channel"):
        bus.subscribe_pattern("nothing.*", Collector(), subscriber="y")


def test_names_and_patterns() -> None:
    assert matches("signal.*", "signal.vwap")
    assert not matches("signal.*", "signal.vwap.extra")
    assert matches("market.>", "market.kline.BTCUSDT")
    assert not matches("market.kline.*", "market.book.BTCUSDT")
    with pytest.raises(InvalidName):
        MARKET_KLINE.channel("BTC.USDT")
    with pytest.raises(ValueError, match="required"):
        MARKET_KLINE.channel()
    with pytest.raises(KeyError, match="not declared"):
        spec_for("nope.nope")


# -- end of stream ------------------------------------------------------------------------
async def test_close_is_end_of_stream_after_draining() -> None:
    bus = Bus()
    received = Collector()
    subscription = bus.subscribe(ORDER_REQUEST.channel(), received, subscriber="executor")
    sender = bus.sender(ORDER_REQUEST.channel())
    for n in range(3):
        await sender.send(order(n))
    bus.close_subscriber("executor")
    await subscription.deliver()  # returns: drained and closed
    assert len(received.items) == 3
    with pytest.raises(ChannelClosed):
        await sender.send(order(9))


async def test_closed_fanout_subscriber_is_skipped_and_counted() -> None:
    bus = Bus()
    live, gone = Collector(), Collector()
    live_sub = bus.subscribe(ORDER_UPDATE.channel(), live, subscriber="recorder")
    gone_sub = bus.subscribe(ORDER_UPDATE.channel(), gone, subscriber="strategy")
    bus.close_subscriber("strategy")
    await bus.sender(ORDER_UPDATE.channel()).send(update())
    assert gone_sub.inbox is not None
    assert live_sub.inbox is not None
    assert gone_sub.inbox.rejected_closed == 1
    assert len(live_sub.inbox) == 1


async def test_closing_a_topic_ends_exact_subscribers() -> None:
    bus = Bus()
    sender = bus.sender(ORDER_UPDATE.channel())
    subscription = bus.subscribe(ORDER_UPDATE.channel(), Collector(), subscriber="r")
    await sender.send(update())
    sender.topic.close()
    await subscription.deliver()
    with pytest.raises(ChannelClosed):
        await sender.send(update())


async def test_one_subscriber_never_runs_two_handlers_at_once() -> None:
    bus = Bus()
    running = 0
    overlap = 0
    gate = asyncio.Event()

    async def handler(_: Any) -> None:
        nonlocal running, overlap
        running += 1
        overlap = max(overlap, running)
        await gate.wait()
        running -= 1

    subs = [
        bus.subscribe(MARKET_KLINE.any(), handler, subscriber="strategy"),
        bus.subscribe(ORDER_UPDATE.channel(), handler, subscriber="strategy"),
    ]
    tasks = [asyncio.create_task(s.deliver()) for s in subs]
    await bus.sender(MARKET_KLINE.channel("BTCUSDT")).send(kline())
    await bus.sender(ORDER_UPDATE.channel()).send(update())
    await settle()
    gate.set()
    bus.close_subscriber("strategy")
    await asyncio.gather(*tasks)
    assert overlap == 1
    assert sum(s.handled for s in subs) == 2


# -- replay -------------------------------------------------------------------------------
class EchoStrategy:
    """The same component code for both deliveries: a kline in, a signal out, and it records
    the order updates it sees while handling."""

    def __init__(self, bus: Bus) -> None:
        self.signals = bus.sender(SIGNAL.channel("echo"))
        self.log: list[str] = []
        self.busy = False

    async def on_kline(self, k: Kline) -> None:
        assert not self.busy, "handler re-entered"
        self.busy = True
        self.log.append(f"kline {k.open_time_ms}")
        await self.signals.send(signal("echo", k.open_time_ms))
        self.busy = False

    async def on_update(self, u: Any) -> None:
        assert not self.busy, "handler re-entered"
        self.log.append(f"update {u.ts_ms}")


class EchoExecutor:
    def __init__(self, bus: Bus) -> None:
        self.updates = bus.sender(ORDER_UPDATE.channel())

    async def on_signal(self, s: Signal) -> None:
        await self.updates.send(update(s.ts_ms))


def wire(bus: Bus) -> EchoStrategy:
    strategy = EchoStrategy(bus)
    executor = EchoExecutor(bus)
    bus.subscribe(MARKET_KLINE.any(), strategy.on_kline, subscriber="strategy")
    bus.subscribe(ORDER_UPDATE.channel(), strategy.on_update, subscriber="strategy")
    bus.subscribe(SIGNAL.any(), executor.on_signal, subscriber="executor")
    return strategy


async def test_replay_is_lock_step_and_never_reentrant() -> None:
    bus = Bus(replay=True)
    strategy = wire(bus)
    market = bus.sender(MARKET_KLINE.channel("BTCUSDT"))
    for n in range(3):
        await market.send(kline(open_time_ms=n))
        assert await bus.run_until_idle() == 3  # kline, signal, update: all before the next bar
    assert strategy.log == [
        "kline 0", "update 0", "kline 1", "update 1", "kline 2", "update 2",
    ]  # fmt: skip


async def test_live_delivery_runs_the_same_components_to_the_same_result() -> None:
    bus = Bus()
    strategy = wire(bus)
    tasks = [asyncio.create_task(s.deliver()) for s in bus.subscriptions()]
    market = bus.sender(MARKET_KLINE.channel("BTCUSDT"))
    for n in range(3):
        await market.send(kline(open_time_ms=n))
        await settle(20)
    for name in ("strategy", "executor"):
        bus.close_subscriber(name)
    await asyncio.gather(*tasks)
    assert sorted(strategy.log) == sorted(
        ["kline 0", "update 0", "kline 1", "update 1", "kline 2", "update 2"]
    )


async def test_replay_handler_error_propagates() -> None:
    bus = Bus(replay=True)

    async def broken(_: Any) -> None:
        raise ValueError("boom")

    subscription = bus.subscribe(ORDER_UPDATE.channel(), broken, subscriber="x")
    await bus.sender(ORDER_UPDATE.channel()).send(update(7))
    with pytest.raises(ValueError, match="boom"):
        await bus.run_until_idle()
    assert subscription.in_flight is not None


# -- properties ---------------------------------------------------------------------------
@given(st.lists(st.one_of(st.integers(0, 1000), st.none()), max_size=200), st.integers(1, 8))
def test_block_inbox_is_fifo_and_lossless(ops: list[int | None], capacity: int) -> None:
    inbox: Inbox[int] = Inbox("p", capacity, Overflow.BLOCK)
    model: list[int] = []
    for op in ops:
        if op is None:
            if model:
                assert inbox.take_nowait() == model.pop(0)
        elif inbox.try_put(op):
            model.append(op)
        else:
            assert len(model) == capacity  # refused only when full: the caller must wait
    assert list(inbox.pending) == model
    assert inbox.dropped == 0


@given(st.lists(st.tuples(st.integers(0, 5), st.integers()), max_size=200), st.integers(1, 8))
def test_conflating_inbox_holds_latest_value_per_key(
    puts: list[tuple[int, int]], capacity: int
) -> None:
    inbox: Inbox[tuple[int, int]] = Inbox("c", capacity, Overflow.CONFLATE)
    for key, value in puts:
        inbox.try_put((key, value), key)
    latest = dict(puts)
    held = dict(inbox.pending.values())
    for key, value in held.items():
        assert latest[key] == value
    assert len(held) <= capacity
    assert inbox.conflated + inbox.dropped + len(held) == len(puts)
