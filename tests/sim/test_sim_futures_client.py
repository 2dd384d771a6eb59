"""The real ``FuturesClient`` against the running simulator: every call but algo orders.

The market stands still (speed None, no stream client), so the book read before an order is
the book it meets and positions, fees and realised PnL can be checked exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from app.domain import OrderStatus, OrderType, Side, SubmitOrder
from app.domain.account import PositionSnapshot
from app.domain.clock import ManualClock
from app.domain.enums import MarketType, TimeInForce
from app.domain.market import BookTicker
from app.domain.orders import OrderUpdated
from app.errors import NotFoundError, RejectedError
from exchange.binance.futures import FuturesClient
from tests.sim.harness import START_MS, TEST_OPTIONS, futures_client, running_sim

TAKER = Decimal("0.0005")
WALLET = Decimal(10_000)


@pytest.fixture
async def client() -> AsyncIterator[FuturesClient]:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, futures_client(sim, clock) as futures:
        yield futures


def _order(
    cid: str,
    side: Side,
    order_type: OrderType,
    qty: str,
    price: Decimal | None = None,
    tif: TimeInForce | None = None,
    *,
    reduce_only: bool = False,
) -> SubmitOrder:
    return SubmitOrder(
        cid,
        "s1",
        "BTCUSDT",
        side,
        order_type,
        Decimal(qty),
        START_MS,
        price=price,
        time_in_force=tif,
        reduce_only=reduce_only,
    )


async def _book(client: FuturesClient) -> BookTicker:
    (book,) = await client.book_tickers("BTCUSDT")
    return book


async def _place(client: FuturesClient, order: SubmitOrder) -> OrderUpdated:
    update = await client.place_order(order)
    assert isinstance(update, OrderUpdated)
    return update


async def _position(client: FuturesClient) -> PositionSnapshot | None:
    positions = [p for p in await client.position_risk("BTCUSDT") if p.quantity != 0]
    return positions[0] if positions else None


async def test_market_data_calls(client: FuturesClient) -> None:
    info = await client.exchange_info()
    assert info.market is MarketType.USDM
    assert set(info.symbols) == set(TEST_OPTIONS.futures_symbols)
    btc = info.symbols["BTCUSDT"]
    assert btc.price_filter is not None
    assert btc.price_filter.tick_size == Decimal("0.10")
    assert btc.lot_size is not None
    assert btc.lot_size.step_size == Decimal("0.001")

    klines = await client.klines("BTCUSDT", "1m", limit=5)
    assert len(klines) == 5
    assert [b.open_time_ms - a.open_time_ms for a, b in itertools.pairwise(klines)] == [60_000] * 4

    book = await _book(client)
    assert book.ask_price - book.bid_price == Decimal("0.10")
    assert book.ts_ms == START_MS  # futures tickers carry the server time
    assert {b.symbol for b in await client.book_tickers()} == {"BTCUSDT", "ETHUSDT"}

    (mark,) = await client.premium_index("BTCUSDT")
    tick = Decimal("0.10")
    assert mark.symbol == "BTCUSDT"
    assert book.bid_price - tick <= mark.mark_price <= book.ask_price + tick
    assert mark.next_funding_time_ms > START_MS
    assert mark.next_funding_time_ms % (8 * 3_600_000) == 0
    assert {m.symbol for m in await client.premium_index()} == {"BTCUSDT", "ETHUSDT"}
    funding = await client.funding_info()
    assert all(f.interval_hours > 0 for f in funding.values())


async def test_account_balance_and_settings(client: FuturesClient) -> None:
    balances, positions = await client.account()
    (usdt,) = [b for b in balances if b.asset == "USDT"]
    assert usdt.free == WALLET
    assert all(p.quantity == 0 for p in positions)
    assert [b.free for b in await client.balances() if b.asset == "USDT"] == [WALLET]

    # positionRisk v3 carries neither leverage nor margin type: see them act on margin.
    await client.set_leverage("BTCUSDT", 10)
    too_big = _order("lev", Side.BUY, OrderType.MARKET, "2.000")  # ~123k notional
    with pytest.raises(RejectedError) as raised:  # needs ~12.3k margin at 10x
        await _place(client, too_big)
    assert raised.value.code == -2019
    await client.set_leverage("BTCUSDT", 20)
    await client.set_margin_type("BTCUSDT", "isolated")
    await client.set_margin_type("BTCUSDT", "ISOLATED")  # already so: counts as success
    await _place(client, too_big)  # ~6.1k at 20x
    (risk,) = await client.position_risk("BTCUSDT")
    assert risk.quantity == Decimal("2.000")
    assert risk.position_side == "BOTH"
    with pytest.raises(RejectedError) as raised:
        await client.set_leverage("BTCUSDT", 1000)
    assert raised.value.code == -4028

    # One-way mode only (hedge mode is not simulated): asking for one-way is a no-op success.
    assert await client.hedge_mode() is False
    await client.set_hedge_mode(False)
    assert await client.hedge_mode() is False
    with pytest.raises(RejectedError) as raised:  # not with a position open
        await client.set_margin_type("BTCUSDT", "CROSSED")
    assert raised.value.code == -4048
    await _place(client, _order("flat", Side.SELL, OrderType.MARKET, "2.000", reduce_only=True))
    assert await _position(client) is None
    await client.set_margin_type("BTCUSDT", "CROSSED")


async def test_position_fees_and_realised_pnl(client: FuturesClient) -> None:
    book = await _book(client)
    qty = Decimal("0.010")
    opened = await _place(client, _order("open", Side.BUY, OrderType.MARKET, str(qty)))
    assert opened.status is OrderStatus.FILLED
    assert opened.filled_quantity == qty
    buys = await client.user_trades("BTCUSDT", order_id=opened.exchange_order_id)
    assert buys[0].price == book.ask_price  # takes the best ask first, then walks up
    assert sum(t.quantity for t in buys) == qty
    entry = sum(t.price * t.quantity for t in buys) / qty
    assert opened.average_fill_price == entry
    position = await _position(client)
    assert position is not None
    assert (position.quantity, position.entry_price) == (qty, entry)
    assert all(t.fee == t.price * t.quantity * TAKER and t.fee_asset == "USDT" for t in buys)
    assert all(not t.is_maker and t.realized_pnl == 0 for t in buys)

    with pytest.raises(RejectedError) as raised:  # would grow the long: refused
        await _place(
            client, _order("ro-buy", Side.BUY, OrderType.MARKET, "0.001", reduce_only=True)
        )
    assert raised.value.code == -2022

    closed = await _place(
        client, _order("close", Side.SELL, OrderType.MARKET, str(qty), reduce_only=True)
    )
    assert closed.status is OrderStatus.FILLED
    assert closed.reduce_only
    assert await _position(client) is None
    with pytest.raises(RejectedError) as raised:  # nothing left to reduce: refused
        await _place(
            client, _order("ro-flat", Side.SELL, OrderType.MARKET, "0.001", reduce_only=True)
        )
    assert raised.value.code == -2022

    sells = await client.user_trades("BTCUSDT", order_id=closed.exchange_order_id)
    assert sells[0].price == book.bid_price
    assert sum(t.quantity for t in sells) == qty
    assert all(t.side is Side.SELL for t in sells)
    assert all(t.realized_pnl == (t.price - entry) * t.quantity for t in sells)
    pnl = sum((t.realized_pnl or Decimal(0)) for t in sells)
    fees = sum(t.fee for t in (*buys, *sells))
    (usdt,) = [b for b in await client.balances() if b.asset == "USDT"]
    assert usdt.free == WALLET + pnl - fees
    everything = await client.user_trades("BTCUSDT")
    assert everything == [*buys, *sells]
    assert await client.user_trades("BTCUSDT", from_id=sells[0].trade_id) == sells


async def test_short_position_is_signed(client: FuturesClient) -> None:
    await _place(client, _order("short", Side.SELL, OrderType.MARKET, "0.005"))
    position = await _position(client)
    assert position is not None
    assert position.quantity == Decimal("-0.005")


async def test_limit_order_lifecycle(client: FuturesClient) -> None:
    book = await _book(client)
    price = book.bid_price - 500
    placed = await _place(
        client, _order("lim", Side.BUY, OrderType.LIMIT, "0.002", price, TimeInForce.GTC)
    )
    assert placed.status is OrderStatus.NEW
    assert placed.price == price
    assert placed.time_in_force is TimeInForce.GTC
    assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == ["lim"]
    assert [o.client_order_id for o in await client.open_orders()] == ["lim"]
    queried = await client.query_order("BTCUSDT", "lim")
    assert (queried.exchange_order_id, queried.status) == (placed.exchange_order_id, placed.status)

    new_price = price + Decimal("100.0")
    modified = await client.modify_order(
        "BTCUSDT", "lim", side="BUY", quantity=Decimal("0.003"), price=new_price
    )
    assert modified.exchange_order_id == placed.exchange_order_id
    assert (modified.price, modified.quantity) == (new_price, Decimal("0.003"))
    assert (await client.query_order("BTCUSDT", "lim")).price == new_price

    canceled = await client.cancel_order("BTCUSDT", "lim")
    assert canceled.status is OrderStatus.CANCELED
    assert await client.open_orders("BTCUSDT") == []
    with pytest.raises(RejectedError) as raised:
        await client.cancel_order("BTCUSDT", "lim")
    assert raised.value.code == -2011

    with pytest.raises(RejectedError) as raised:  # post-only that would take
        await _place(
            client,
            _order("gtx", Side.BUY, OrderType.LIMIT, "0.002", book.ask_price, TimeInForce.GTX),
        )
    assert raised.value.code == -5022


async def test_marketable_limit_fills_and_opens_a_position(client: FuturesClient) -> None:
    book = await _book(client)
    filled = await _place(
        client,
        _order("take", Side.BUY, OrderType.LIMIT, "0.004", book.ask_price + 10, TimeInForce.GTC),
    )
    assert filled.status is OrderStatus.FILLED
    assert filled.average_fill_price is not None
    assert book.ask_price <= filled.average_fill_price <= book.ask_price + 10
    position = await _position(client)
    assert position is not None
    assert position.quantity == Decimal("0.004")


async def test_listen_key_lifecycle(client: FuturesClient) -> None:
    key = await client.create_listen_key()
    assert len(key) == 64
    assert await client.create_listen_key() == key  # Binance hands out the live key again
    await client.keepalive_listen_key()
    await client.close_listen_key()
    with pytest.raises(NotFoundError):
        await client.keepalive_listen_key()
