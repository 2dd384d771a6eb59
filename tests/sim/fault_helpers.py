"""Shared pieces of the end-to-end fault tests: orders, a WS-API client on the simulator, and
a real-seconds guard against a test that would otherwise hang on a defect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Final, TypeVar

from app.domain import OrderType, Side, SubmitOrder, TimeInForce
from app.domain.clock import ManualClock
from exchange.binance.signing import HmacSigner
from exchange.binance.timesync import ServerTime
from exchange.binance.ws_api import WsApiClient
from exchange.sim.options import TEST_API_KEY, TEST_API_SECRET

__all__ = ["GUARD_S", "guarded", "limit_buy", "market_buy", "sim_sleepers", "ws_api_client"]

# Real seconds: only a defect (a frame that never comes) can make a test wait this long.
GUARD_S: Final = 10.0

T = TypeVar("T")


async def guarded(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(GUARD_S):
        return await awaitable


async def sim_sleepers(clock: ManualClock) -> int:
    """Wait until the simulator's own timer (the listenKey expiry check) sleeps on ``clock``
    and return how many sleep: a test then waits for more than that."""
    await guarded(clock.wait_for_sleepers(1))
    return clock.sleeper_count


def market_buy(
    cid: str, clock: ManualClock, symbol: str = "BTCUSDT", qty: str = "0.01"
) -> SubmitOrder:
    return SubmitOrder(cid, "s1", symbol, Side.BUY, OrderType.MARKET, Decimal(qty), clock.now_ms())


def limit_buy(
    cid: str, clock: ManualClock, price: Decimal, symbol: str = "BTCUSDT", qty: str = "0.01"
) -> SubmitOrder:
    """A resting buy: ``price`` well under the market, a whole number (a multiple of any tick)."""
    return SubmitOrder(
        cid,
        "s1",
        symbol,
        Side.BUY,
        OrderType.LIMIT,
        Decimal(qty),
        clock.now_ms(),
        price=price.quantize(Decimal(1)),
        time_in_force=TimeInForce.GTC,
    )


@contextlib.asynccontextmanager
async def ws_api_client(
    url: str,
    clock: ManualClock,
    *,
    timeout_s: float = 5.0,
    on_event: Callable[[bytes | str], Awaitable[None]] | None = None,
) -> AsyncIterator[tuple[WsApiClient, asyncio.Task[None]]]:
    """A connected ``WsApiClient`` with its reader task; closed on exit."""
    client = WsApiClient(
        url=url,
        clock=clock,
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_API_SECRET),
        limiter=None,
        recv_window_ms=5000,
        request_timeout_s=timeout_s,
        name="sim-ws-api",
        heartbeat_s=None,
        on_event=on_event,
    )
    await guarded(client.connect())
    reader = asyncio.get_running_loop().create_task(client.run())
    try:
        yield client, reader
    finally:
        await client.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await guarded(reader)
