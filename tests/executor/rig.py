"""The live executor on a live bus against the running simulator, for the executor tests.

`executor_rig` starts the simulator (ManualClock by default), a Spot or USDⓈ-M client, the
`LiveExecutor` behind its venue port (optionally wrapped by a test port), and — when asked —
the user-data stream wired into a `UserPublisher` on the same bus, so exchange events reach
the executor on `venue.order`. Everything published on `order.update` and `system.ack` is
recorded in one list, in arrival order, and tests wait on conditions over it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.bus import (
    ORDER_REQUEST,
    ORDER_UPDATE,
    RISK_STATE,
    SYSTEM_ACK,
    SYSTEM_CONTROL,
    VENUE_ORDER,
    Bus,
)
from app.domain import (
    ControlAcknowledged,
    ControlAction,
    ControlCommand,
    MarketType,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
    TimeInForce,
)
from app.domain.clock import Clock, ManualClock
from app.domain.orders import OrderEvent, OrderRequest
from app.errors import StatusUnknownError, TransientError
from app.feeds.user import UserPublisher
from config.executor import ExecutorSettings
from exchange.binance.futures import FuturesClient
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, DEFAULT_USDM_RULES, RateLimiter
from exchange.binance.rest import RestTransport
from exchange.binance.signing import HmacSigner
from exchange.binance.spot import SpotClient
from exchange.binance.timesync import ServerTime
from exchange.binance.user_data_futures import FuturesUserDataStream
from exchange.binance.user_data_spot import SpotUserDataStream
from exchange.sim.options import TEST_API_KEY, TEST_API_SECRET, SimOptions
from exchange.sim.server import SimExchange
from executor.live import LiveExecutor
from executor.venue_port import Placed, Replaced, VenuePort, venue_port
from tests.sim.harness import START_MS, TEST_OPTIONS, futures_client, running_sim, spot_client

__all__ = [
    "GUARD_S",
    "FlakyPort",
    "LostRequestPort",
    "Rig",
    "executor_rig",
    "order",
]

GUARD_S = 10.0  # real seconds: only a defect makes a wait this long
# A long housekeeping interval by default: tests that advance the clock are not disturbed by
# TTL passes unless they ask for them.
SETTINGS = ExecutorSettings(mode="live", ttl_check_interval_s=3600.0)


def order(
    cid: str,
    *,
    side: Side = Side.BUY,
    qty: str = "0.01",
    price: Decimal | None = None,
    purpose: OrderPurpose = OrderPurpose.ENTRY,
    ttl_ms: int | None = None,
    symbol: str = "BTCUSDT",
) -> SubmitOrder:
    """A MARKET order, or a GTC LIMIT when priced."""
    return SubmitOrder(
        cid,
        "s1",
        symbol,
        side,
        OrderType.LIMIT if price is not None else OrderType.MARKET,
        Decimal(qty),
        START_MS,
        price=price,
        time_in_force=TimeInForce.GTC if price is not None else None,
        signal_id=f"sig-{cid}",
        purpose=purpose,
        ttl_ms=ttl_ms,
    )


class _Wrapped:
    """A port that forwards everything to the real one (tests override a call)."""

    def __init__(self, inner: VenuePort) -> None:
        self.inner = inner
        self.place_calls = 0
        self.query_calls = 0

    @property
    def market(self) -> MarketType:
        return self.inner.market

    async def place(self, order: SubmitOrder) -> Placed:
        self.place_calls += 1
        return await self.inner.place(order)

    async def query(self, symbol: str, client_order_id: str) -> OrderUpdated:
        self.query_calls += 1
        return await self.inner.query(symbol, client_order_id)

    async def cancel(self, symbol: str, client_order_id: str) -> OrderUpdated:
        return await self.inner.cancel(symbol, client_order_id)

    async def replace(self, cancel_client_order_id: str, new_order: SubmitOrder) -> Replaced:
        return await self.inner.replace(cancel_client_order_id, new_order)

    async def trades(self, symbol: str, exchange_order_id: int) -> list[Any]:
        return await self.inner.trades(symbol, exchange_order_id)


class FlakyPort(_Wrapped):
    """The first `failures` placements fail before reaching the exchange (connection
    refused: the socket never opened)."""

    def __init__(self, inner: VenuePort, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    async def place(self, order: SubmitOrder) -> Placed:
        self.place_calls += 1
        if self.place_calls <= self.failures:
            raise TransientError("cannot connect: ClientConnectorError", endpoint="POST /order")
        return await self.inner.place(order)


class LostRequestPort(_Wrapped):
    """Placement requests are lost on the way (the connection dropped after the write but
    before the exchange read them): the client sees an unknown outcome, nothing exists."""

    async def place(self, order: SubmitOrder) -> Placed:
        self.place_calls += 1
        raise StatusUnknownError("no complete response (ServerDisconnectedError)")


@dataclass
class Rig:
    bus: Bus
    clock: Clock
    sim: SimExchange
    executor: LiveExecutor
    port: VenuePort
    seen: list[Any] = field(default_factory=list)  # order.update and system.ack, in order
    received: list[str] = field(default_factory=list)  # cids of placements the sim received
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self._requests = self.bus.sender(ORDER_REQUEST.channel())
        self._venue = self.bus.sender(VENUE_ORDER.channel())
        self._control = self.bus.sender(SYSTEM_CONTROL.channel())
        self._risk = self.bus.sender(RISK_STATE.channel())
        self.bus.subscribe(ORDER_UPDATE.channel(), self._record, subscriber="test")
        self.bus.subscribe(SYSTEM_ACK.channel(), self._record, subscriber="test")

    async def _record(self, item: Any) -> None:
        async with self._changed:
            self.seen.append(item)
            self._changed.notify_all()

    async def request(self, request: OrderRequest) -> None:
        await self._requests.send(request)

    async def venue_event(self, event: OrderEvent) -> None:
        await self._venue.send(event)

    async def control(self, action: ControlAction, command_id: str) -> None:
        await self._control.send(
            ControlCommand(action, "test", self.clock.now_ms(), "", command_id)
        )

    async def risk(self, message: Any) -> None:
        await self._risk.send(message)

    async def wait(self, done: Callable[[], bool], timeout_s: float = GUARD_S) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(done)

    async def wait_status(self, cid: str, status: OrderStatus) -> OrderUpdated:
        await self.wait(lambda: any(u.status is status for u in self.updates(cid)))
        return next(u for u in self.updates(cid) if u.status is status)

    def updates(self, cid: str) -> list[OrderUpdated]:
        return [u for u in self.seen if isinstance(u, OrderUpdated) and u.client_order_id == cid]

    def statuses(self, cid: str) -> list[OrderStatus]:
        return [u.status for u in self.updates(cid)]

    def acks(self) -> list[ControlAcknowledged]:
        return [a for a in self.seen if isinstance(a, ControlAcknowledged)]

    def sim_orders(self, cid: str | None = None) -> list[dict[str, Any]]:
        """The simulator's own order records (open and finished), optionally for one id."""
        if self.port.market is MarketType.SPOT:
            orders: list[dict[str, Any]] = self.sim.spot.engine.snapshot()["orders"]
        else:
            book = self.sim.futures.engine.snapshot()["book"]
            orders = [o for rows in book["orders"].values() for o in rows]
        return [o for o in orders if cid is None or o["client_order_id"] == cid]

    def sim_trades(self) -> list[dict[str, Any]]:
        if self.port.market is MarketType.SPOT:
            trades: list[dict[str, Any]] = self.sim.spot.engine.snapshot()["trades"]
            return trades
        book = self.sim.futures.engine.snapshot()["book"]
        return [t for rows in book["trades"].values() for t in rows]

    async def sleepers(self, count: int) -> None:
        assert isinstance(self.clock, ManualClock)
        async with asyncio.timeout(GUARD_S):
            await self.clock.wait_for_sleepers(count)

    def advance(self, seconds: float) -> None:
        assert isinstance(self.clock, ManualClock)
        self.clock.advance(seconds)


@contextlib.asynccontextmanager
async def _client(
    sim: SimExchange, clock: Clock, *, spot: bool, timeout_s: float, recv_window_ms: int | None
) -> AsyncIterator[SpotClient | FuturesClient]:
    if recv_window_ms is None:
        client_cm = spot_client if spot else futures_client
        async with client_cm(sim, clock, timeout_s=timeout_s) as client:
            yield client
        return
    transport = RestTransport(
        base_url=sim.endpoints.spot_rest if spot else sim.endpoints.futures_rest,
        server_time_path="/api/v3/time" if spot else "/fapi/v1/time",
        clock=clock,
        limiter=RateLimiter(
            clock=clock, rules=DEFAULT_SPOT_RULES if spot else DEFAULT_USDM_RULES, name="rig"
        ),
        server_time=ServerTime(clock=clock),
        api_key=TEST_API_KEY,
        signer=HmacSigner(TEST_API_SECRET),
        recv_window_ms=recv_window_ms,
        timeout_s=timeout_s,
        name="rig",
    )
    try:
        yield SpotClient(transport) if spot else FuturesClient(transport)
    finally:
        await transport.close()


@contextlib.asynccontextmanager
async def executor_rig(
    *,
    market: MarketType = MarketType.SPOT,
    settings: ExecutorSettings = SETTINGS,
    stream: bool = False,
    wrap: Callable[[VenuePort], VenuePort] | None = None,
    clock: Clock | None = None,
    options: SimOptions = TEST_OPTIONS,
    timeout_s: float = 5.0,
    stream_backoff_s: float = 1.0,
    recv_window_ms: int | None = None,
) -> AsyncIterator[Rig]:
    """`recv_window_ms` set: a client of our own with that window and the whole rate budget
    (a clock that runs faster than the wall makes requests look older on arrival)."""
    clock = clock or ManualClock(START_MS)
    spot = market is MarketType.SPOT
    async with (
        running_sim(options, clock=clock) as sim,
        _client(
            sim, clock, spot=spot, timeout_s=timeout_s, recv_window_ms=recv_window_ms
        ) as client,
    ):
        bus = Bus()
        port: VenuePort = venue_port(client)
        if wrap is not None:
            port = wrap(port)
        executor = LiveExecutor(bus=bus, clock=clock, venue=port, settings=settings, market=market)
        rig = Rig(bus, clock, sim, executor, port)
        gateway = sim.spot.gateway if spot else sim.futures.gateway
        gateway.on_order_received = lambda params: rig.received.append(
            params.get("newClientOrderId", "")
        )
        runners: list[Any] = [executor.run]
        if stream:
            publisher = UserPublisher(bus=bus, clock=clock)
            user: SpotUserDataStream | FuturesUserDataStream
            if spot:
                user = SpotUserDataStream(
                    ws_api_url=sim.endpoints.spot_ws_api,
                    clock=clock,
                    server_time=ServerTime(clock=clock),
                    api_key=TEST_API_KEY,
                    signer=HmacSigner(TEST_API_SECRET),
                    limiter=None,
                    on_events=publisher.on_events,
                    on_resync=publisher.on_resync,
                    backoff_initial_s=stream_backoff_s,
                    backoff_max_s=stream_backoff_s * 4,
                )
            else:
                assert isinstance(client, FuturesClient)
                user = FuturesUserDataStream(
                    client=client,
                    private_url=sim.endpoints.futures_private,
                    clock=clock,
                    on_events=publisher.on_events,
                    on_resync=publisher.on_resync,
                    backoff_initial_s=stream_backoff_s,
                    backoff_max_s=stream_backoff_s * 4,
                )
            runners.append(user.run)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(s.deliver()) for s in bus.subscriptions()]
            tasks += [group.create_task(run()) for run in runners]
            try:
                if stream:
                    hub = sim.spot.hub if spot else sim.futures.hub
                    async with asyncio.timeout(GUARD_S):
                        await hub.wait_for_subscribers(1)
                yield rig
            finally:
                for task in tasks:
                    task.cancel()


# -- restarts: one simulator, executors that come and go (issue 8) ------------------------------


@dataclass
class SimSession:
    """A running simulator and one client on it, outliving the executors started on it."""

    sim: SimExchange
    clock: Clock
    client: SpotClient | FuturesClient
    port: VenuePort

    @property
    def market(self) -> MarketType:
        return self.port.market


@contextlib.asynccontextmanager
async def sim_session(
    *,
    market: MarketType = MarketType.SPOT,
    clock: Clock | None = None,
    options: SimOptions = TEST_OPTIONS,
) -> AsyncIterator[SimSession]:
    clock = clock or ManualClock(START_MS)
    spot = market is MarketType.SPOT
    async with (
        running_sim(options, clock=clock) as sim,
        _client(sim, clock, spot=spot, timeout_s=5.0, recv_window_ms=None) as client,
    ):
        yield SimSession(sim, clock, client, venue_port(client))


@contextlib.asynccontextmanager
async def executor_on(
    session: SimSession,
    *,
    settings: ExecutorSettings = SETTINGS,
    journal: Any = None,
) -> AsyncIterator[Rig]:
    """A fresh bus and `LiveExecutor` (with `journal`) on the session's simulator; leaving
    the block stops them — the executor is "down" while the simulator keeps the account."""
    bus = Bus()
    executor = LiveExecutor(
        bus=bus,
        clock=session.clock,
        venue=session.port,
        settings=settings,
        market=session.market,
        journal=journal,
    )
    rig = Rig(bus, session.clock, session.sim, executor, session.port)
    spot = session.market is MarketType.SPOT
    gateway = session.sim.spot.gateway if spot else session.sim.futures.gateway
    gateway.on_order_received = lambda params: rig.received.append(
        params.get("newClientOrderId", "")
    )
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(s.deliver()) for s in bus.subscriptions()]
            tasks.append(group.create_task(executor.run()))
            try:
                yield rig
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        gateway.on_order_received = None
