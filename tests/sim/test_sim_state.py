"""``state_file``: a restarted simulator continues the same market and the same accounts."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain import OrderStatus, OrderType, Side
from app.domain.clock import ManualClock
from app.domain.orders import OrderUpdated
from exchange.binance.parse_market import MarketFrame
from exchange.binance.streams import SPOT_LIMITS, MarketStreams
from exchange.sim.server import SimExchange
from exchange.sim.state_file import StateFileError
from tests.sim.harness import START_MS, futures_client, running_sim, spot_client, with_options
from tests.sim.harness import btc_order as _order

GUARD_S = 10.0


async def _run_market(sim: SimExchange, frames_wanted: int) -> None:
    """Let a stream client read ``frames_wanted`` frames (speed None: that moves time)."""
    got = asyncio.Event()
    frames: list[MarketFrame] = []

    async def on_message(frame: MarketFrame) -> None:
        frames.append(frame)
        if len(frames) >= frames_wanted:
            got.set()

    feed = MarketStreams(
        name="state",
        base_url=sim.endpoints.spot_streams,
        streams=["btcusdt@kline_1m"],
        clock=ManualClock(START_MS),
        on_message=on_message,
        fetch_klines=None,
        limits=SPOT_LIMITS,
    )
    async with asyncio.TaskGroup() as group:
        task = group.create_task(feed.run())
        async with asyncio.timeout(GUARD_S):
            await got.wait()
        task.cancel()


async def test_a_restart_continues_accounts_orders_ids_and_market_time(tmp_path: Path) -> None:
    options = with_options(state_file=tmp_path / "sim-state.json")
    clock = ManualClock(START_MS)
    async with running_sim(options, clock=clock) as sim:
        start_market_ms = sim.spot.timeline.now_ms
        await _run_market(sim, 6)
        async with spot_client(sim, clock) as spot, futures_client(sim, clock) as futures:
            bought, fills = await spot.place_order(
                _order("buy", Side.BUY, OrderType.MARKET, "0.01")
            )
            (book,) = await spot.book_tickers("BTCUSDT")
            resting, _ = await spot.place_order(
                _order("rest", Side.BUY, OrderType.LIMIT, "0.01", book.bid_price - 500)
            )
            long = await futures.place_order(_order("long", Side.BUY, OrderType.MARKET, "0.003"))
            assert isinstance(long, OrderUpdated)
            balances = await spot.account()
            positions = await futures.position_risk("BTCUSDT")
            trades = await spot.my_trades("BTCUSDT")
        stopped_market_ms = sim.spot.timeline.now_ms
        futures_market_ms = sim.futures.timeline.now_ms
    assert start_market_ms is not None
    assert stopped_market_ms is not None
    assert stopped_market_ms > start_market_ms
    assert options.state_file is not None
    assert options.state_file.exists()

    clock.advance(3600)  # an hour passes while the simulator is down
    async with running_sim(options, clock=clock) as sim:
        # speed None: the market continues where it stopped, not where the clock is.
        assert sim.spot.timeline.now_ms == stopped_market_ms
        assert sim.futures.timeline.now_ms == futures_market_ms
        async with spot_client(sim, clock) as spot, futures_client(sim, clock) as futures:
            assert await spot.account() == balances
            assert await futures.position_risk("BTCUSDT") == positions
            assert await spot.my_trades("BTCUSDT") == trades
            (still_open,) = await spot.open_orders("BTCUSDT")
            assert still_open.client_order_id == "rest"
            assert still_open.exchange_order_id == resting.exchange_order_id
            queried = await spot.query_order("BTCUSDT", "rest")
            assert queried.status is OrderStatus.NEW
            assert queried.price == resting.price
            after, more = await spot.place_order(_order("buy2", Side.BUY, OrderType.MARKET, "0.01"))
            assert after.exchange_order_id is not None
            assert resting.exchange_order_id is not None
            assert after.exchange_order_id > resting.exchange_order_id
            assert min(f.trade_id for f in more) > max(f.trade_id for f in fills)
            canceled = await spot.cancel_order("BTCUSDT", "rest")
            assert canceled.status is OrderStatus.CANCELED
            locked = {b.asset: b.locked for b in await spot.account()}
            assert locked.get("USDT", Decimal(0)) == 0
            again = await futures.place_order(_order("more", Side.BUY, OrderType.MARKET, "0.002"))
            assert isinstance(again, OrderUpdated)
            assert again.exchange_order_id is not None
            assert long.exchange_order_id is not None
            assert again.exchange_order_id > long.exchange_order_id
            (position,) = await futures.position_risk("BTCUSDT")
            assert position.quantity == Decimal("0.005")
    assert bought.status is OrderStatus.FILLED


async def test_a_state_file_from_other_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim-state.json"
    clock = ManualClock(START_MS)
    async with running_sim(with_options(state_file=path), clock=clock):
        pass
    assert path.exists()
    with pytest.raises(StateFileError, match="seed"):
        SimExchange(with_options(state_file=path, seed=8), clock=clock)
    with pytest.raises(StateFileError, match="spot_symbols"):
        SimExchange(with_options(state_file=path, spot_symbols=("BTCUSDT",)), clock=clock)
    SimExchange(with_options(state_file=path), clock=clock)  # the same settings still load
