"""UserPublisher on a real replay Bus: decoded user-data events reach the right channels.

A replay bus delivers in publish order when ``run_until_idle`` is awaited, so every test sees
exactly what a subscriber of ``venue.order``, ``account.update`` and ``system.alert`` would
see, in order, with no task scheduling in between.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from app.bus import ACCOUNT_UPDATE, SYSTEM_ALERT, VENUE_ORDER, Bus
from app.domain import (
    AccountUpdated,
    Alert,
    AlertSeverity,
    AlgoOrderUpdated,
    Balance,
    BalanceChanged,
    OrderDenied,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionSnapshot,
    QuickFill,
    Side,
)
from app.domain.clock import ManualClock
from app.domain.orders import UserStreamResynced
from app.feeds.user import UserPublisher
from exchange.binance.parse_user import (
    ListenKeyExpired,
    StreamTerminated,
    UnknownUserEvent,
    decode_futures_user_event,
)

NOW_MS = 1_700_000_000_000
Seen = list[tuple[str, object]]

ORDER = OrderUpdated(
    "tb-s1-000042", "BTCUSDT", Side.BUY, OrderType.LIMIT, OrderStatus.NEW, Decimal("0.010"),
    Decimal(0), NOW_MS, price=Decimal("43000.0"), exchange_order_id=4097372160,
)  # fmt: skip
QUICK_FILL = QuickFill(
    "tb-s1-000042", "BTCUSDT", Side.BUY, Decimal("43000.0"), Decimal("0.004"), 109100866,
    4097372160, True, NOW_MS + 5,
)  # fmt: skip
ALGO = AlgoOrderUpdated(
    "tb-s1-000043", 2146760, "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, "new",
    Decimal("0.010"), NOW_MS + 6, trigger_price=Decimal("41000"), reduce_only=True,
)  # fmt: skip
ACCOUNT = AccountUpdated(
    NOW_MS + 7, "ORDER", (Balance("USDT", Decimal("103.5"), Decimal(0)),),
    (PositionSnapshot("BTCUSDT", Decimal("0.004"), Decimal("43000.0"), Decimal(0)),),
)  # fmt: skip
DEPOSIT = BalanceChanged("USDT", Decimal("250.00"), NOW_MS + 8, NOW_MS + 9)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ms=NOW_MS)


@pytest.fixture
def bus() -> Bus:
    return Bus(replay=True)


def recorder(delivered: Seen, channel: str) -> Callable[[object], Awaitable[None]]:
    async def record(message: object) -> None:
        delivered.append((channel, message))

    return record


@pytest.fixture
def seen(bus: Bus) -> Seen:
    """Everything delivered on the three channels, as (channel, message), in delivery order."""
    delivered: Seen = []
    orders = VENUE_ORDER.channel()
    accounts = ACCOUNT_UPDATE.channel()
    alerts = SYSTEM_ALERT.channel()
    bus.subscribe(orders, recorder(delivered, orders.name), subscriber="recorder")
    bus.subscribe(accounts, recorder(delivered, accounts.name), subscriber="recorder")
    bus.subscribe(alerts, recorder(delivered, alerts.name), subscriber="recorder")
    return delivered


@pytest.fixture
def publisher(bus: Bus, clock: ManualClock) -> UserPublisher:
    return UserPublisher(bus=bus, clock=clock)


async def test_each_event_goes_to_its_channel_in_order(
    bus: Bus, seen: Seen, publisher: UserPublisher
) -> None:
    await publisher.on_events([ORDER, ACCOUNT, QUICK_FILL, DEPOSIT, ALGO])
    assert await bus.run_until_idle() == 5
    assert seen == [
        ("venue.order", ORDER),
        ("account.update", ACCOUNT),
        ("venue.order", QUICK_FILL),
        ("account.update", DEPOSIT),
        ("venue.order", ALGO),
    ]
    assert publisher.snapshot() == {
        "published": 5,
        "OrderUpdated": 1,
        "QuickFill": 1,
        "AlgoOrderUpdated": 1,
        "AccountUpdated": 1,
        "BalanceChanged": 1,
    }


async def test_records_that_are_not_venue_events_are_counted_not_published(
    bus: Bus, seen: Seen, publisher: UserPublisher
) -> None:
    # A risk denial may travel on order.update, but never comes from the venue's stream.
    denial = OrderDenied("s1", "BTCUSDT", "max position", NOW_MS)
    control = [
        ListenKeyExpired(NOW_MS, "VVxv"),
        StreamTerminated(NOW_MS),
        UnknownUserEvent("MARGIN_CALL"),
        denial,
    ]
    await publisher.on_events([*control, ORDER])
    assert await bus.run_until_idle() == 1
    assert seen == [("venue.order", ORDER)]
    assert publisher.snapshot() == {"published": 1, "not_published": 4, "OrderUpdated": 1}
    published = {topic.name: topic.published for topic in bus.topics}
    assert published == {"venue.order": 1, "account.update": 0, "system.alert": 0}


async def test_an_empty_batch_publishes_nothing(
    bus: Bus, seen: Seen, publisher: UserPublisher
) -> None:
    await publisher.on_events([])
    assert await bus.run_until_idle() == 0
    assert seen == []
    assert publisher.snapshot() == {"published": 0}


async def test_resync_raises_a_warning_alert_with_the_reason(
    bus: Bus, seen: Seen, publisher: UserPublisher, clock: ManualClock
) -> None:
    clock.advance(12.5)
    await publisher.on_resync("listenKey expired; reconnected after 3.2 s")
    assert await bus.run_until_idle() == 2
    resynced, delivered = seen
    # The executor hears it first (it re-queries its open orders), then the operators.
    assert resynced == (
        "venue.order",
        UserStreamResynced("listenKey expired; reconnected after 3.2 s", NOW_MS + 12_500),
    )
    assert delivered == (
        "system.alert",
        Alert(
            severity=AlertSeverity.WARNING,
            source="user_data",
            title="user data stream re-established; reconcile orders and balances",
            ts_ms=NOW_MS + 12_500,
            detail="listenKey expired; reconnected after 3.2 s",
        ),
    )
    await publisher.on_resync("reconnected")
    await bus.run_until_idle()
    assert publisher.snapshot() == {"published": 0, "resyncs": 2}


async def test_alert_source_names_the_feed(bus: Bus, seen: Seen, clock: ManualClock) -> None:
    futures_feed = UserPublisher(bus=bus, clock=clock, source="user_data.usdm")
    await futures_feed.on_resync("connection dropped")
    await bus.run_until_idle()
    (_, alert) = seen[1]
    assert isinstance(alert, Alert)
    assert alert.source == "user_data.usdm"


async def test_publishing_without_subscribers_is_fine(clock: ManualClock) -> None:
    # In a daemon where nothing listens to account.update yet, the feed must not fail.
    lonely = Bus(replay=True)
    publisher = UserPublisher(bus=lonely, clock=clock)
    await publisher.on_events([ORDER, DEPOSIT])
    await publisher.on_resync("reconnected")
    assert await lonely.run_until_idle() == 0
    assert {topic.name: topic.unrouted for topic in lonely.topics} == {
        "venue.order": 2,
        "account.update": 1,
        "system.alert": 1,
    }
    assert publisher.snapshot()["published"] == 2


# -- from the wire: Binance docs' USDⓈ-M user-data events, decoded and published ---------------

TRADE_LITE = {
    "e": "TRADE_LITE", "E": 1721895408092, "T": 1721895408214, "s": "BTCUSDT", "q": "0.001",
    "p": "0", "m": False, "c": "z8hcUoOsqEdKMeKPSABslD", "S": "BUY", "L": "64089.20",
    "l": "0.040", "t": 109100866, "i": 8886774,
}  # fmt: skip
ORDER_TRADE_UPDATE = {
    "e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650,
    "o": {
        "s": "BTCUSDT", "c": "z8hcUoOsqEdKMeKPSABslD", "S": "BUY", "o": "LIMIT", "f": "GTC",
        "q": "0.040", "p": "64089.20", "ap": "64089.20", "sp": "0", "x": "TRADE",
        "X": "FILLED", "i": 8886774, "l": "0.040", "z": "0.040", "L": "64089.20",
        "N": "USDT", "n": "1.02542720", "T": 1568879465650, "t": 109100866, "b": "0",
        "a": "0", "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "LIMIT", "ps": "BOTH",
        "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_TAKER",
        "pm": "NONE", "gtd": 0,
    },
}  # fmt: skip
WIRE_ACCOUNT_UPDATE = {
    "e": "ACCOUNT_UPDATE", "E": 1568879465652, "T": 1568879465650,
    "a": {
        "m": "ORDER",
        "B": [{"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "0"}],
        "P": [{"s": "BTCUSDT", "pa": "0.040", "ep": "64089.20", "bep": "64114.8", "cr": "0",
               "up": "0", "mt": "cross", "iw": "0", "ps": "BOTH"}],
    },
}  # fmt: skip
LISTEN_KEY_EXPIRED = {
    "e": "listenKeyExpired", "E": 1736996475556,
    "listenKey": "WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv",
}  # fmt: skip


async def test_decoded_futures_stream_reaches_the_bus(
    bus: Bus, seen: Seen, publisher: UserPublisher
) -> None:
    for event in (TRADE_LITE, ORDER_TRADE_UPDATE, WIRE_ACCOUNT_UPDATE, LISTEN_KEY_EXPIRED):
        await publisher.on_events(decode_futures_user_event(json.dumps(event).encode()))
    await bus.run_until_idle()
    assert [(channel, type(message).__name__) for channel, message in seen] == [
        ("venue.order", "QuickFill"),
        ("venue.order", "OrderUpdated"),
        ("account.update", "AccountUpdated"),
    ]
    quick, filled, account = (message for _, message in seen)
    assert isinstance(quick, QuickFill)
    assert isinstance(filled, OrderUpdated)
    assert isinstance(account, AccountUpdated)
    # The early notice and the booked fill describe the same trade.
    assert filled.fill is not None
    assert quick.trade_id == filled.fill.trade_id == 109100866
    assert filled.status is OrderStatus.FILLED
    assert account.positions[0].quantity == Decimal("0.040")
    assert publisher.snapshot() == {
        "published": 3,
        "QuickFill": 1,
        "OrderUpdated": 1,
        "AccountUpdated": 1,
        "not_published": 1,
    }
