"""The real ``SpotClient`` against the running simulator: every call, with the values checked.

Market time stands still here (speed None, no stream client), so the book the test reads is
the book the orders meet, and every expected balance can be computed exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from app.domain import OrderStatus, OrderType, Side, SubmitOrder
from app.domain.account import Balance
from app.domain.clock import ManualClock
from app.domain.enums import MarketType, TimeInForce
from app.domain.market import BookTicker
from app.errors import RejectedError
from exchange.binance.spot import SpotClient
from tests.sim.harness import START_MS, TEST_OPTIONS, running_sim, spot_client, with_options

FEE_RATE = Decimal("0.001")
START_USDT = Decimal(1_000_000)  # enough to sweep several book levels


@pytest.fixture
async def client() -> AsyncIterator[SpotClient]:
    clock = ManualClock(START_MS)
    options = with_options(spot_balances={"USDT": START_USDT})
    async with running_sim(options, clock=clock) as sim, spot_client(sim, clock) as spot:
        yield spot


def _order(
    cid: str,
    side: Side,
    order_type: OrderType,
    qty: str,
    price: Decimal | None = None,
    tif: TimeInForce | None = None,
    symbol: str = "BTCUSDT",
) -> SubmitOrder:
    return SubmitOrder(
        cid,
        "s1",
        symbol,
        side,
        order_type,
        Decimal(qty),
        START_MS,
        price=price,
        time_in_force=tif,
    )


async def _balances(client: SpotClient) -> dict[str, Balance]:
    return {b.asset: b for b in await client.account()}


async def _book(client: SpotClient, symbol: str = "BTCUSDT") -> BookTicker:
    (book,) = await client.book_tickers(symbol)
    return book


async def test_exchange_info_carries_rules_for_the_configured_symbols(client: SpotClient) -> None:
    info = await client.exchange_info()
    assert info.market is MarketType.SPOT
    assert set(info.symbols) == set(TEST_OPTIONS.spot_symbols)
    btc = info.symbols["BTCUSDT"]
    assert (btc.base_asset, btc.quote_asset, btc.status) == ("BTC", "USDT", "TRADING")
    assert btc.price_filter is not None
    assert btc.price_filter.tick_size == Decimal("0.01")
    assert btc.lot_size is not None
    assert btc.lot_size.step_size == Decimal("0.00001")
    assert {"MARKET", "LIMIT", "LIMIT_MAKER"} <= btc.order_types
    only_eth = await client.exchange_info(["ETHUSDT"])
    assert set(only_eth.symbols) == {"ETHUSDT"}


async def test_klines_are_the_closed_history_plus_the_open_bar(client: SpotClient) -> None:
    klines = await client.klines("BTCUSDT", "1m", limit=10)
    assert len(klines) == 10
    opens = [k.open_time_ms for k in klines]
    assert opens == sorted(opens)
    assert all(b - a == 60_000 for a, b in itertools.pairwise(opens))
    assert all(k.low <= min(k.open, k.close) and k.high >= max(k.open, k.close) for k in klines)
    assert all(k.close_time_ms == k.open_time_ms + 59_999 for k in klines)
    ranged = await client.klines("BTCUSDT", "1m", start_ms=opens[2], end_ms=opens[4])
    assert [k.open_time_ms for k in ranged] == opens[2:5]
    assert ranged == klines[2:5]


async def test_book_tickers_for_one_and_for_all_symbols(client: SpotClient) -> None:
    book = await _book(client)
    assert book.symbol == "BTCUSDT"
    assert book.ask_price - book.bid_price == Decimal("0.01")  # one tick of spread
    assert book.bid_quantity > 0
    assert book.ask_quantity > 0
    everything = await client.book_tickers()
    assert {b.symbol for b in everything} == {"BTCUSDT", "ETHUSDT"}
    assert book in everything


async def test_account_starts_with_the_configured_balances(client: SpotClient) -> None:
    balances = await _balances(client)
    assert balances["USDT"].free == START_USDT
    assert balances["USDT"].locked == 0
    assert "BTC" not in balances  # omitZeroBalances


async def test_market_buy_then_sell_books_fees_and_trades(client: SpotClient) -> None:
    book = await _book(client)
    update, fills = await client.place_order(_order("m-buy", Side.BUY, OrderType.MARKET, "0.01"))
    assert update.status is OrderStatus.FILLED
    assert update.filled_quantity == Decimal("0.01")
    assert update.exchange_order_id is not None
    assert sum(f.quantity for f in fills) == Decimal("0.01")
    assert all(f.fee_asset == "BTC" and not f.is_maker for f in fills)
    assert fills[0].price == book.ask_price
    fee = sum(f.fee for f in fills)
    assert fee == Decimal("0.01") * FEE_RATE
    cost = sum(f.price * f.quantity for f in fills)
    balances = await _balances(client)
    assert balances["BTC"].free == Decimal("0.01") - fee
    assert balances["USDT"].free == START_USDT - cost

    update, sells = await client.place_order(_order("m-sell", Side.SELL, OrderType.MARKET, "0.005"))
    assert update.status is OrderStatus.FILLED
    assert sells[0].price == book.bid_price
    assert sells[0].fee_asset == "USDT"
    proceeds = sum(f.price * f.quantity for f in sells)
    assert sum(f.fee for f in sells) == proceeds * FEE_RATE
    balances = await _balances(client)
    assert balances["BTC"].free == Decimal("0.005") - fee
    assert balances["USDT"].free == START_USDT - cost + proceeds * (1 - FEE_RATE)

    trades = await client.my_trades("BTCUSDT")
    assert [t.trade_id for t in trades] == sorted(t.trade_id for t in trades)
    assert [t.side for t in trades] == [Side.BUY] * len(fills) + [Side.SELL] * len(sells)
    assert {t.trade_id for t in trades} == {f.trade_id for f in (*fills, *sells)}
    later = await client.my_trades("BTCUSDT", from_id=sells[0].trade_id)
    assert [t.trade_id for t in later] == [s.trade_id for s in sells]
    by_order = await client.my_trades("BTCUSDT", order_id=update.exchange_order_id)
    assert [t.trade_id for t in by_order] == [s.trade_id for s in sells]


async def test_resting_limit_locks_the_quote_until_cancelled(client: SpotClient) -> None:
    book = await _book(client)
    price = book.bid_price - Decimal(100)
    update, fills = await client.place_order(
        _order("rest-1", Side.BUY, OrderType.LIMIT, "0.02", price, TimeInForce.GTC)
    )
    assert update.status is OrderStatus.NEW
    assert fills == ()
    assert update.price == price
    assert update.time_in_force is TimeInForce.GTC
    balances = await _balances(client)
    assert balances["USDT"].locked == price * Decimal("0.02")
    assert balances["USDT"].free == START_USDT - price * Decimal("0.02")

    (listed,) = await client.open_orders("BTCUSDT")
    assert listed.client_order_id == "rest-1"
    assert listed.status is OrderStatus.NEW
    assert [o.client_order_id for o in await client.open_orders()] == ["rest-1"]
    queried = await client.query_order("BTCUSDT", "rest-1")
    assert queried.exchange_order_id == update.exchange_order_id
    assert queried.quantity == Decimal("0.02")
    assert queried.filled_quantity == 0

    canceled = await client.cancel_order("BTCUSDT", "rest-1")
    assert canceled.status is OrderStatus.CANCELED
    balances = await _balances(client)
    assert balances["USDT"].free == START_USDT
    assert balances["USDT"].locked == 0
    assert await client.open_orders("BTCUSDT") == []
    assert (await client.query_order("BTCUSDT", "rest-1")).status is OrderStatus.CANCELED
    with pytest.raises(RejectedError) as raised:
        await client.cancel_order("BTCUSDT", "rest-1")
    assert raised.value.code == -2011


async def test_all_orders_lists_final_and_open_orders_in_id_order(client: SpotClient) -> None:
    book = await _book(client)
    await client.place_order(_order("all-1", Side.BUY, OrderType.MARKET, "0.01"))
    price = book.bid_price - Decimal(100)
    await client.place_order(
        _order("all-2", Side.BUY, OrderType.LIMIT, "0.01", price, TimeInForce.GTC)
    )
    await client.place_order(
        _order("all-3", Side.BUY, OrderType.LIMIT, "0.01", price, TimeInForce.GTC)
    )
    await client.cancel_order("BTCUSDT", "all-3")
    orders = await client.all_orders("BTCUSDT")
    assert [(o.client_order_id, o.status) for o in orders] == [
        ("all-1", OrderStatus.FILLED),
        ("all-2", OrderStatus.NEW),
        ("all-3", OrderStatus.CANCELED),
    ]
    second = orders[1].exchange_order_id
    assert second is not None
    later = await client.all_orders("BTCUSDT", from_order_id=second)
    assert [o.client_order_id for o in later] == ["all-2", "all-3"]
    assert [o.client_order_id for o in await client.all_orders("BTCUSDT", limit=1)] == ["all-3"]


async def test_marketable_limit_fills_at_the_book_not_the_limit(client: SpotClient) -> None:
    book = await _book(client)
    update, fills = await client.place_order(
        _order("lim-x", Side.BUY, OrderType.LIMIT, "0.001", book.ask_price + 50, TimeInForce.GTC)
    )
    assert update.status is OrderStatus.FILLED
    assert fills[0].price == book.ask_price
    assert not fills[0].is_maker


async def test_ioc_fills_what_the_book_has_and_expires_the_rest(client: SpotClient) -> None:
    book = await _book(client)
    qty = book.ask_quantity * 3  # more than one top-of-book chunk: the rest is beyond the limit
    update, fills = await client.place_order(
        _order("ioc-1", Side.BUY, OrderType.LIMIT, str(qty), book.ask_price, TimeInForce.IOC)
    )
    assert update.status is OrderStatus.EXPIRED
    assert update.filled_quantity == book.ask_quantity
    assert [(f.price, f.quantity) for f in fills] == [(book.ask_price, book.ask_quantity)]
    away = await client.place_order(
        _order("ioc-2", Side.BUY, OrderType.LIMIT, "0.001", book.bid_price, TimeInForce.IOC)
    )
    assert away[0].status is OrderStatus.EXPIRED
    assert away[1] == ()


async def test_fok_fills_all_or_nothing(client: SpotClient) -> None:
    book = await _book(client)
    too_big = book.ask_quantity * 3
    update, fills = await client.place_order(
        _order("fok-1", Side.BUY, OrderType.LIMIT, str(too_big), book.ask_price, TimeInForce.FOK)
    )
    assert update.status is OrderStatus.EXPIRED
    assert fills == ()
    assert update.filled_quantity == 0
    assert (await _balances(client))["USDT"].free == START_USDT
    update, fills = await client.place_order(
        _order("fok-2", Side.BUY, OrderType.LIMIT, "0.001", book.ask_price, TimeInForce.FOK)
    )
    assert update.status is OrderStatus.FILLED
    assert sum(f.quantity for f in fills) == Decimal("0.001")


async def test_limit_maker_rests_or_is_refused_when_it_would_take(client: SpotClient) -> None:
    book = await _book(client)
    update, fills = await client.place_order(
        _order("mk-1", Side.BUY, OrderType.LIMIT_MAKER, "0.001", book.bid_price)
    )
    assert update.status is OrderStatus.NEW
    assert fills == ()
    assert update.order_type is OrderType.LIMIT_MAKER
    with pytest.raises(RejectedError) as raised:
        await client.place_order(
            _order("mk-2", Side.BUY, OrderType.LIMIT_MAKER, "0.001", book.ask_price)
        )
    assert raised.value.code == -2010
    assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == ["mk-1"]


async def test_insufficient_balance_is_refused(client: SpotClient) -> None:
    with pytest.raises(RejectedError) as raised:
        await client.place_order(_order("big", Side.BUY, OrderType.MARKET, "50"))
    assert raised.value.code == -2010
    assert (await _balances(client))["USDT"].free == START_USDT


async def test_cancel_replace_swaps_a_resting_order(client: SpotClient) -> None:
    book = await _book(client)
    first = book.bid_price - 200
    placed, _ = await client.place_order(
        _order("cr-1", Side.BUY, OrderType.LIMIT, "0.01", first, TimeInForce.GTC)
    )
    second = book.bid_price - 100
    result = await client.cancel_replace(
        "cr-1", _order("cr-2", Side.BUY, OrderType.LIMIT, "0.01", second, TimeInForce.GTC)
    )
    assert (result.cancel_result, result.new_order_result) == ("success", "success")
    assert result.canceled is not None
    assert result.canceled.client_order_id == "cr-1"
    assert result.canceled.status is OrderStatus.CANCELED
    assert result.new_order is not None
    assert result.new_order.status is OrderStatus.NEW
    assert result.new_order.exchange_order_id is not None
    assert placed.exchange_order_id is not None
    assert result.new_order.exchange_order_id > placed.exchange_order_id
    assert [o.price for o in await client.open_orders("BTCUSDT")] == [second]
    assert (await _balances(client))["USDT"].locked == second * Decimal("0.01")

    # STOP_ON_FAILURE with nothing to cancel: Binance answers 400 -2022 and places nothing.
    with pytest.raises(RejectedError) as raised:
        await client.cancel_replace(
            "nope", _order("cr-3", Side.BUY, OrderType.LIMIT, "0.01", second, TimeInForce.GTC)
        )
    assert raised.value.code == -2022
    assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == ["cr-2"]
