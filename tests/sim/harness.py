"""Running the whole simulator on a loopback port inside a test, and clients pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

from app.domain import OrderType, Side, SubmitOrder
from app.domain.clock import Clock, ManualClock
from app.domain.enums import TimeInForce
from exchange.binance.futures import FuturesClient
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, DEFAULT_USDM_RULES, RateLimiter
from exchange.binance.rest import RestTransport
from exchange.binance.signing import HmacSigner, Signer
from exchange.binance.spot import SpotClient
from exchange.binance.timesync import ServerTime
from exchange.sim.options import TEST_API_KEY, TEST_API_SECRET, SimOptions
from exchange.sim.server import SimExchange

__all__ = ["TEST_OPTIONS", "btc_order", "futures_client", "running_sim", "spot_client"]

START_MS = 1_700_000_000_000
# Fixed start, 1m bars with 4 updates each, 50 bars of history, and time that moves only as
# fast as stream clients read (so a test without streams sees a market that stands still).
TEST_OPTIONS = SimOptions(
    port=0, seed=7, start_ms=START_MS - 50 * 60_000, speed=None, updates_per_bar=4, history_bars=50
)


@contextlib.asynccontextmanager
async def running_sim(
    options: SimOptions = TEST_OPTIONS, *, clock: Clock | None = None
) -> AsyncIterator[SimExchange]:
    """The simulator listening on 127.0.0.1 with its pumps running; stopped on exit."""
    clock = clock or ManualClock(START_MS)
    sim = SimExchange(options, clock=clock)
    async with sim.serving(), asyncio.TaskGroup() as group:
        task = group.create_task(sim.run())
        if isinstance(clock, ManualClock):
            # Yield only once the pumps are running: a test that counts the clock's sleepers
            # then counts its own and the simulator's (the listenKey expiry check) alike.
            await clock.wait_for_sleepers(1)
        try:
            yield sim
        finally:
            task.cancel()


def _transport(
    sim: SimExchange,
    clock: Clock,
    *,
    spot: bool,
    timeout_s: float,
    api_key: str = TEST_API_KEY,
    signer: Signer | None = None,
) -> RestTransport:
    endpoints = sim.endpoints
    return RestTransport(
        base_url=endpoints.spot_rest if spot else endpoints.futures_rest,
        server_time_path="/api/v3/time" if spot else "/fapi/v1/time",
        clock=clock,
        limiter=RateLimiter(
            clock=clock,
            rules=DEFAULT_SPOT_RULES if spot else DEFAULT_USDM_RULES,
            share=0.8,
            name="sim-test",
        ),
        server_time=ServerTime(clock=clock),
        api_key=api_key,
        signer=signer or HmacSigner(TEST_API_SECRET),
        recv_window_ms=5000,
        timeout_s=timeout_s,
        name="sim-test",
    )


@contextlib.asynccontextmanager
async def spot_client(
    sim: SimExchange,
    clock: Clock,
    *,
    timeout_s: float = 5.0,
    api_key: str = TEST_API_KEY,
    signer: Signer | None = None,
) -> AsyncIterator[SpotClient]:
    transport = _transport(
        sim, clock, spot=True, timeout_s=timeout_s, api_key=api_key, signer=signer
    )
    try:
        yield SpotClient(transport)
    finally:
        await transport.close()


@contextlib.asynccontextmanager
async def futures_client(
    sim: SimExchange, clock: Clock, *, timeout_s: float = 5.0
) -> AsyncIterator[FuturesClient]:
    transport = _transport(sim, clock, spot=False, timeout_s=timeout_s)
    try:
        yield FuturesClient(transport)
    finally:
        await transport.close()


def with_options(**changes: object) -> SimOptions:
    return replace(TEST_OPTIONS, **changes)  # type: ignore[arg-type]


def btc_order(
    cid: str, side: Side, order_type: OrderType, qty: str, price: Decimal | None = None
) -> SubmitOrder:
    """A BTCUSDT order; a priced one is GTC."""
    return SubmitOrder(
        cid,
        "s1",
        "BTCUSDT",
        side,
        order_type,
        Decimal(qty),
        START_MS,
        price=price,
        time_in_force=TimeInForce.GTC if price is not None else None,
    )
