"""The executor's order book: fills once per trade id, filled quantity never lower, stale
reports keep the status but book their fill, refused transitions counted and logged, the
published updates stamped; and the net positions fed to the protective stops."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import structlog

from app.bus import ORDER_UPDATE, Bus
from app.domain import (
    Fill,
    MarketType,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
    TimeInForce,
)
from app.domain.clock import ManualClock
from app.domain.enums import ExecutionType
from app.domain.orders import OrderEvent
from config.executor import ExecutorSettings
from executor.core import ExecutorCore
from executor.positions import NetPositions
from executor.stamping import stamped_updates
from executor.state_machine import Verdict
from executor.tracked import OrderBook, TrackedOrder, apply_update

T0 = 1_700_000_000_000
REQUEST = SubmitOrder(
    "cid-1", "s1", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("1.0"), T0,
    price=Decimal(100), time_in_force=TimeInForce.GTC, signal_id="sig-1", ttl_ms=5_000,
)  # fmt: skip


def _fill(
    trade_id: int, qty: str, price: str = "100", fee: str = "0.001", asset: str = "BTC"
) -> Fill:
    return Fill(
        trade_id, "cid-1", "BTCUSDT", Side.BUY, Decimal(price), Decimal(qty), Decimal(fee), asset,
        False, T0, exchange_order_id=42,
    )  # fmt: skip


def _report(status: OrderStatus, filled: str = "0", fill: Fill | None = None) -> OrderUpdated:
    return OrderUpdated(
        "cid-1", "BTCUSDT", Side.BUY, OrderType.LIMIT, status, Decimal("1.0"), Decimal(filled),
        T0, price=Decimal(100), exchange_order_id=42, fill=fill,
        execution_type=ExecutionType.TRADE if fill else ExecutionType.NEW,
    )  # fmt: skip


def _order() -> TrackedOrder:
    return TrackedOrder(REQUEST, created_ms=T0)


def test_partial_fills_aggregate_with_fees_in_their_own_asset() -> None:
    order = _order()
    apply_update(order, _report(OrderStatus.NEW))
    apply_update(order, _report(OrderStatus.PARTIALLY_FILLED, "0.4", _fill(1, "0.4", "100")))
    bnb = _fill(2, "0.6", "110", fee="0.02", asset="BNB")
    applied = apply_update(order, _report(OrderStatus.FILLED, "1.0", bnb))
    assert applied.verdict is Verdict.APPLY
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == Decimal("1.0")
    assert order.average_price == Decimal("106")
    assert order.fees == {"BTC": Decimal("0.001"), "BNB": Decimal("0.02")}


def test_a_duplicate_fill_is_booked_once() -> None:
    order = _order()
    report = _report(OrderStatus.PARTIALLY_FILLED, "0.4", _fill(1, "0.4"))
    assert apply_update(order, report).new_fills
    again = apply_update(order, report)
    assert again.new_fills == ()
    assert not again.changed
    assert order.booked_quantity == Decimal("0.4")
    assert order.fees == {"BTC": Decimal("0.001")}


def test_an_older_report_keeps_the_status_but_books_its_fill() -> None:
    order = _order()
    apply_update(order, _report(OrderStatus.FILLED, "1.0", _fill(2, "0.6")))
    older = apply_update(order, _report(OrderStatus.PARTIALLY_FILLED, "0.4", _fill(1, "0.4")))
    assert older.verdict is Verdict.STALE
    assert [f.trade_id for f in older.new_fills] == [1]
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == Decimal("1.0")  # never lowered by the older report
    assert apply_update(order, _report(OrderStatus.NEW)).verdict is Verdict.STALE
    assert order.status is OrderStatus.FILLED


def test_a_refused_transition_is_not_applied_but_its_fill_is_booked() -> None:
    order = _order()
    apply_update(order, _report(OrderStatus.CANCELED, "0"))
    refused = apply_update(order, _report(OrderStatus.FILLED, "1.0", _fill(9, "1.0")))
    assert refused.refused
    assert order.status is OrderStatus.CANCELED
    assert [f.trade_id for f in refused.new_fills] == [9]


def test_amendment_changes_price_and_quantity_and_a_gap_is_measured() -> None:
    order = _order()
    amended = replace(
        _report(OrderStatus.NEW), price=Decimal(95), quantity=Decimal("2.0"),
        execution_type=ExecutionType.AMENDMENT,
    )  # fmt: skip
    assert apply_update(order, amended).changed
    assert (order.price, order.quantity) == (Decimal(95), Decimal("2.0"))
    apply_update(order, _report(OrderStatus.PARTIALLY_FILLED, "0.5"))  # REST: no trades
    assert order.fill_gap == Decimal("0.5")


def test_ttl_counts_from_the_send_and_only_for_limit_orders() -> None:
    order = _order()
    assert not order.ttl_expired(T0 + 10_000)  # never sent
    order.sent_ms = T0 + 1_000
    assert not order.ttl_expired(T0 + 5_999)
    assert order.ttl_expired(T0 + 6_000)
    market = TrackedOrder(replace(REQUEST, order_type=OrderType.MARKET), created_ms=T0)
    market.sent_ms = T0
    assert not market.ttl_expired(T0 + 60_000)


def test_the_book_finds_orders_by_client_id_then_exchange_id() -> None:
    book = OrderBook()
    order = _order()
    book.add(order)
    apply_update(order, _report(OrderStatus.NEW))
    book.remember_exchange_id(order)
    by_exchange_id = replace(_report(OrderStatus.NEW), client_order_id="other")
    assert book.find(by_exchange_id) is order
    assert book.get("cid-1") is order
    assert "cid-1" in book
    assert book.by_status() == {"new": 1}


def test_several_new_fills_become_one_update_each_in_trade_order() -> None:
    order = _order()
    fills = (_fill(2, "0.5", "102"), _fill(1, "0.5", "100"))
    report = _report(OrderStatus.FILLED, "1.0")
    applied = apply_update(order, report, fills)
    updates = stamped_updates(order, report, applied.new_fills)
    assert [(u.fill.trade_id if u.fill else None) for u in updates] == [1, 2]
    assert [u.status for u in updates] == [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert [u.filled_quantity for u in updates] == [Decimal("0.5"), Decimal("1.0")]
    assert [u.average_fill_price for u in updates] == [Decimal(100), Decimal(101)]
    assert all(u.strategy == "s1" and u.signal_id == "sig-1" for u in updates)
    assert all(u.purpose is OrderPurpose.ENTRY for u in updates)


async def test_the_core_logs_and_counts_a_refused_transition_and_publishes_nothing() -> None:
    bus = Bus(replay=True)
    seen: list[OrderEvent] = []

    async def record(event: OrderEvent) -> None:
        seen.append(event)

    bus.subscribe(ORDER_UPDATE.channel(), record, subscriber="test")
    core = ExecutorCore(
        bus=bus, clock=ManualClock(T0), venue=None,  # type: ignore[arg-type]
        settings=ExecutorSettings(), market=MarketType.SPOT, name="executor",
    )  # fmt: skip
    order = _order()
    core.book.add(order)
    await core.apply(order, _report(OrderStatus.CANCELED), source="stream")
    await bus.run_until_idle()
    published = len(seen)
    with structlog.testing.capture_logs() as logs:
        await core.apply(order, _report(OrderStatus.FILLED, "0"), source="stream")
        await core.apply(order, _report(OrderStatus.EXPIRED), source="stream")
    await bus.run_until_idle()
    assert len(seen) == published
    assert dict(core.refused) == {"canceled->filled": 1, "canceled->expired": 1}
    refusal = next(e for e in logs if e["event"] == "order_transition_refused")
    assert (refusal["from_status"], refusal["to_status"]) == ("canceled", "filled")
    assert refusal["client_order_id"] == "cid-1"


def test_net_positions_average_entry_and_crossing_zero() -> None:
    positions = NetPositions()
    buy = _fill(1, "1.0", "100", asset="USDT")
    positions.add(buy)
    grown = positions.add(replace(buy, trade_id=2, price=Decimal(110)))
    assert (grown.quantity, grown.average_price) == (Decimal("2.0"), Decimal(105))
    sell = replace(buy, trade_id=3, side=Side.SELL, quantity=Decimal("1.5"), price=Decimal(120))
    reduced = positions.add(sell)
    assert (reduced.quantity, reduced.average_price) == (Decimal("0.5"), Decimal(105))
    flipped = positions.add(replace(sell, trade_id=4, quantity=Decimal("1.0"), price=Decimal(90)))
    assert (flipped.quantity, flipped.average_price) == (Decimal("-0.5"), Decimal(90))
    flat = positions.add(replace(buy, trade_id=5, quantity=Decimal("0.5")))
    assert (flat.quantity, flat.average_price) == (Decimal(0), None)
    # Spot takes a buyer's fee in the base asset: the account holds the quantity less the fee.
    held = positions.add(_fill(6, "1.0", "100", fee="0.001", asset="BTC"))
    assert (held.quantity, held.average_price) == (Decimal("0.999"), Decimal(100))
