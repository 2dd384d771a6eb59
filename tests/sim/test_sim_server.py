"""The assembled simulator answers the real client over loopback: a first smoke check."""

from __future__ import annotations

from decimal import Decimal

from app.domain import OrderStatus, OrderType, Side, SubmitOrder
from app.domain.clock import ManualClock
from tests.sim.harness import START_MS, running_sim, spot_client


async def test_spot_market_order_fills_against_the_simulated_book() -> None:
    clock = ManualClock(START_MS)
    async with running_sim(clock=clock) as sim, spot_client(sim, clock) as client:
        info = await client.exchange_info()
        assert {"BTCUSDT", "ETHUSDT"} <= set(info.symbols)
        (book,) = await client.book_tickers("BTCUSDT")
        order = SubmitOrder(
            "tb-1", "s1", "BTCUSDT", Side.BUY, OrderType.MARKET, Decimal("0.01"), clock.now_ms()
        )
        update, fills = await client.place_order(order)
        assert update.status is OrderStatus.FILLED
        # The best ask first, then (beyond its size) slipped prices.
        assert fills
        assert fills[0].price == book.ask_price
        assert fills[0].quantity == min(book.ask_quantity, Decimal("0.01"))
        assert all(later.price >= book.ask_price for later in fills)
        fee = sum(f.fee for f in fills)
        cost = sum(f.price * f.quantity for f in fills)
        balances = {b.asset: b for b in await client.account()}
        assert balances["BTC"].free == Decimal("0.01") - fee
        assert balances["USDT"].free == Decimal(10_000) - cost
