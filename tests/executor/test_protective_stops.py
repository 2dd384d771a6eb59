"""`ProtectiveStops` against the running simulator and its algo-order service.

Everything is real: positions come from fills on the simulator, stops are placed, looked up
and cancelled through the real ``FuturesClient`` on ``/fapi/v1/algoOrder``, and the stops
follow their ALGO_UPDATE events as the simulator publishes them (read by our own parser from
the user-data hub, synchronously, so no test waits on a socket). A stop fires when the test
moves the simulator's price through it (``set_market``). Failures are the simulator's fault
injection: a lost answer (5xx after accept), an answer that never comes (latency beyond the
client's timeout), a 429. ``CallLog`` only counts the algo requests the stops send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from app.domain import AlgoOrderUpdated, MarketType, OrderType, Side
from app.domain.clock import ManualClock
from config.executor import ProtectiveStopSettings
from exchange.binance.futures import FuturesClient
from exchange.binance.parse_user import decode_futures_user_event
from exchange.binance.rest import RestTransport
from exchange.binance.rules import PriceFilter, SymbolRules
from exchange.sim.faults import FaultKind, FaultRule
from exchange.sim.replies import encode_json
from exchange.sim.server import SimExchange
from executor.protective_stops import ProtectiveStops, stop_level
from tests.sim.harness import START_MS, btc_order, futures_client, running_sim
from tests.sim.test_futures_algo import futures_engine, set_market

BTC = "BTCUSDT"
ALGO = "/fapi/v1/algoOrder"
SETTINGS = ProtectiveStopSettings(enabled=True, stop_pct=Decimal(5), working_type="contract_price")


class CallLog:
    """The real transport, recording which requests pass through it (a spy, not a fake)."""

    def __init__(self, inner: RestTransport) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # limiter, server_time, close ...

    async def request(
        self, method: str, path: str, params: Sequence[tuple[str, object]] = (), **kw: Any
    ) -> bytes:
        self.calls.append((method, path))
        return await self.inner.request(method, path, params, **kw)

    def algo_calls(self, method: str) -> int:
        return self.calls.count((method, ALGO))


@dataclass
class Setup:
    sim: SimExchange
    clock: ManualClock
    client: FuturesClient  # what the stops use: through the call log
    reader: FuturesClient  # what the test reads with: not logged
    log: CallLog
    rules: dict[str, SymbolRules]

    def stops(
        self, settings: ProtectiveStopSettings = SETTINGS, client: FuturesClient | None = None
    ) -> ProtectiveStops:
        stops = ProtectiveStops(
            client=client or self.client, settings=settings, clock=self.clock, rules=self.rules
        )

        def deliver(event: dict[str, Any]) -> None:
            for update in decode_futures_user_event(encode_json(event)):
                if isinstance(update, AlgoOrderUpdated):
                    stops.on_algo_update(update)

        self.sim.futures.hub.subscribe(deliver)
        return stops

    async def trade(self, cid: str, side: Side, qty: str, *, reduce_only: bool = False) -> None:
        order = replace(btc_order(cid, side, OrderType.MARKET, qty), reduce_only=reduce_only)
        await self.reader.place_order(order)

    async def position(self) -> tuple[Decimal, Decimal | None]:
        """The simulator's signed BTCUSDT position and average entry (what our fills made)."""
        for p in await self.reader.position_risk(BTC):
            if p.quantity != 0:
                return p.quantity, p.entry_price
        return Decimal(0), None

    async def follow(self, stops: ProtectiveStops) -> None:
        """What the executor does after a fill."""
        quantity, entry = await self.position()
        await stops.on_position(BTC, quantity, entry)

    async def open_stops(self) -> list[AlgoOrderUpdated]:
        return await self.reader.open_algo_orders(BTC)

    async def status_of(self, client_algo_id: str) -> str:
        return (await self.reader.query_algo_order(client_algo_id)).status


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    clock = ManualClock(START_MS)
    async with (
        running_sim(clock=clock) as sim,
        futures_client(sim, clock) as futures,
        futures_client(sim, clock) as reader,
    ):
        set_market(sim, Decimal(60_000))
        log = CallLog(futures.transport)
        client = FuturesClient(cast(RestTransport, log))
        rules = dict((await reader.exchange_info()).symbols)
        yield Setup(sim, clock, client, reader, log, rules)


def _expected(setup: Setup, quantity: Decimal, entry: Decimal) -> tuple[Side, Decimal]:
    return stop_level(setup.rules[BTC], quantity, entry, SETTINGS.stop_pct)


def _symbol_status(stops: ProtectiveStops) -> dict[str, Any]:
    symbols = cast(dict[str, dict[str, Any]], stops.status()["symbols"])
    return symbols[BTC]


def test_level_rounds_towards_the_entry() -> None:
    rules = SymbolRules(
        BTC,
        MarketType.USDM,
        "TRADING",
        "BTC",
        "USDT",
        price_filter=PriceFilter(Decimal("0.10"), Decimal("1000000"), Decimal("0.10")),
    )
    # 100.03 * 0.95 = 95.0285 -> 95.1 (up, tighter); 100.03 * 1.05 = 105.0315 -> 105.0 (down).
    assert stop_level(rules, Decimal(1), Decimal("100.03"), Decimal(5)) == (
        Side.SELL,
        Decimal("95.1"),
    )
    assert stop_level(rules, Decimal(-1), Decimal("100.03"), Decimal(5)) == (
        Side.BUY,
        Decimal("105.0"),
    )


async def test_long_gets_a_reduce_only_stop_below_entry(setup: Setup) -> None:
    stops = setup.stops()
    await setup.trade("e1", Side.BUY, "0.010")
    quantity, entry = await setup.position()
    assert quantity == Decimal("0.010")
    assert entry is not None

    await setup.follow(stops)

    (order,) = await setup.open_stops()
    side, trigger = _expected(setup, quantity, entry)
    assert trigger < entry * Decimal("0.951")
    assert trigger >= entry * Decimal("0.95")
    assert (order.side, order.trigger_price) == (side, trigger) == (Side.SELL, trigger)
    assert order.order_type is OrderType.STOP_MARKET
    assert order.reduce_only is True
    assert order.quantity == Decimal("0.010")
    assert order.client_algo_id == "ps-BTCUSDT-1"
    status = _symbol_status(stops)
    assert status["stop"]["status"] == "new"
    assert status["stop"]["algo_id"] == order.algo_id
    assert status["placed"] == 1
    assert stops.status()["unprotected"] == []

    await setup.follow(stops)  # the same position again: nothing is sent
    assert setup.log.algo_calls("POST") == 1
    assert setup.log.algo_calls("DELETE") == 0


async def test_short_gets_a_stop_above_entry(setup: Setup) -> None:
    stops = setup.stops()
    await setup.trade("e1", Side.SELL, "0.020")
    quantity, entry = await setup.position()
    assert quantity == Decimal("-0.020")
    assert entry is not None

    await setup.follow(stops)

    (order,) = await setup.open_stops()
    trigger = order.trigger_price
    assert trigger is not None
    assert (order.side, trigger) == _expected(setup, quantity, entry)
    assert entry * Decimal("1.049") < trigger <= entry * Decimal("1.05")
    assert order.quantity == Decimal("0.020")


async def test_replaced_when_the_position_grows_and_cancelled_when_flat(setup: Setup) -> None:
    stops = setup.stops()
    await setup.trade("e1", Side.BUY, "0.010")
    await setup.follow(stops)
    await setup.trade("e2", Side.BUY, "0.005")

    await setup.follow(stops)

    (order,) = await setup.open_stops()  # never two live stops
    assert order.client_algo_id == "ps-BTCUSDT-2"
    assert order.quantity == Decimal("0.015")
    assert await setup.status_of("ps-BTCUSDT-1") == "canceled"
    assert [m for m, p in setup.log.calls if p == ALGO] == ["POST", "DELETE", "POST"]

    await setup.trade("x1", Side.SELL, "0.015", reduce_only=True)
    await setup.follow(stops)

    assert await setup.open_stops() == []
    assert await setup.status_of("ps-BTCUSDT-2") == "canceled"
    status = _symbol_status(stops)
    assert status["stop"] is None
    assert status["last"]["status"] == "canceled"
    assert status["cancelled"] == 2


async def test_stop_triggers_when_the_price_crosses_and_closes_the_position(
    setup: Setup,
) -> None:
    stops = setup.stops()
    await setup.trade("e1", Side.BUY, "0.010")
    await setup.follow(stops)
    (order,) = await setup.open_stops()
    trigger = order.trigger_price
    assert trigger is not None

    set_market(setup.sim, trigger + 1)  # above the stop: nothing happens
    assert (await setup.position())[0] == Decimal("0.010")
    with capture_logs() as logs:
        set_market(setup.sim, trigger - 1)

    assert await setup.position() == (Decimal(0), None)  # the simulator closed it
    assert await setup.status_of("ps-BTCUSDT-1") == "finished"
    assert [e["event"] for e in logs if e["event"].startswith("protective_stop")] == [
        "protective_stop_triggered",  # on TRIGGERED, once
        "protective_stop_ended",  # FINISHED: its market order is done
    ]
    status = _symbol_status(stops)
    assert status["stop"] is None
    assert status["last"]["status"] == "finished"
    assert status["triggered"] == 1

    await setup.follow(stops)  # the executor reports the flat position: nothing to cancel
    assert setup.log.algo_calls("DELETE") == 0
    assert setup.log.algo_calls("POST") == 1


async def test_lost_placement_answer_is_looked_up_not_resent(setup: Setup) -> None:
    stops = setup.stops()
    await setup.trade("e1", Side.BUY, "0.010")
    # The simulator accepts the stop, then answers 500 (-1001): the outcome is unknown.
    await setup.sim.faults.arm(FaultRule(FaultKind.ORDER_ERROR_5XX, market="futures", count=1))

    await setup.follow(stops)
    # The ALGO_UPDATE "new" came first, but the error answer is what the stops go by.
    assert _symbol_status(stops)["stop"]["status"] == "unknown"

    await setup.follow(stops)

    assert setup.log.algo_calls("POST") == 1
    assert setup.log.algo_calls("GET") == 1
    (order,) = await setup.open_stops()
    assert order.client_algo_id == "ps-BTCUSDT-1"
    assert _symbol_status(stops)["stop"]["status"] == "new"
    assert stops.status()["unprotected"] == []


async def test_lost_placement_that_never_arrived_is_replaced_after_the_grace(
    setup: Setup,
) -> None:
    async with futures_client(setup.sim, setup.clock, timeout_s=0.5) as impatient:
        log = CallLog(impatient.transport)
        stops = setup.stops(client=FuturesClient(cast(RestTransport, log)))
        await setup.trade("e1", Side.BUY, "0.010")
        quantity, entry = await setup.position()
        # The request is held (on the simulator's clock) far beyond the client's patience: the
        # client gives up, status unknown, and the order has not reached the engine.
        await setup.sim.faults.arm(
            FaultRule(FaultKind.LATENCY, market="futures", latency_ms=3_600_000, count=1)
        )
        await stops.on_position(BTC, quantity, entry)
        assert _symbol_status(stops)["stop"]["status"] == "unknown"

        await setup.follow(stops)  # "not found" inside the grace period proves nothing yet
        assert log.algo_calls("POST") == 1
        assert log.algo_calls("GET") == 1
        setup.clock.advance(10.0)
        await setup.follow(stops)

        assert log.algo_calls("POST") == 2
        (order,) = await setup.open_stops()
        assert order.client_algo_id == "ps-BTCUSDT-2"
        assert _symbol_status(stops)["last"]["status"] == "expired"


async def test_failures_are_kept_visible_and_retried(setup: Setup) -> None:
    stops = setup.stops()
    await setup.trade("e1", Side.BUY, "0.010")
    quantity, entry = await setup.position()
    assert entry is not None
    await setup.sim.faults.arm(
        FaultRule(FaultKind.RATE_LIMIT_429, market="futures", count=1, retry_after_s=1)
    )

    await stops.on_position(BTC, quantity, entry)  # raises nothing
    assert stops.status()["unprotected"] == [BTC]
    assert "placement failed" in _symbol_status(stops)["error"]
    assert _symbol_status(stops)["failures"] == 1
    setup.clock.advance(1.0)  # Retry-After is law
    assert await setup.open_stops() == []

    # An entry far above the market puts the stop above it: the simulator refuses (-2021).
    with capture_logs() as logs:
        await stops.on_position(BTC, quantity, entry * 2)
    assert [e["log_level"] for e in logs if e["event"] == "protective_stop_rejected"] == ["error"]
    status = _symbol_status(stops)
    assert status["last"]["status"] == "rejected"
    assert status["last"]["reason"] == "Order would immediately trigger."
    assert status["rejected"] == 1

    await stops.on_position(BTC, quantity, entry)  # retried on the next call
    assert len(await setup.open_stops()) == 1
    assert stops.status()["unprotected"] == []


async def test_stop_expired_by_the_exchange_is_reported_and_replaced(setup: Setup) -> None:
    stops = setup.stops()
    await setup.trade("e1", Side.BUY, "0.010")
    await setup.follow(stops)
    (order,) = await setup.open_stops()

    engine = futures_engine(setup.sim)
    with capture_logs() as logs:
        engine.expire_algo_order(order.algo_id, setup.sim.futures.server_now_ms(), "By system")
        setup.sim.futures.hub.publish(engine.drain_events())
    assert any(e["event"] == "protective_stop_rejected" and e["log_level"] == "error" for e in logs)
    assert stops.status()["unprotected"] == [BTC]
    assert "By system" in _symbol_status(stops)["error"]
    # A late "new" (REST answer after the stream event) does not revive it.
    stops.on_algo_update(order)
    assert stops.status()["unprotected"] == [BTC]
    assert _symbol_status(stops)["last"]["status"] == "expired"

    await stops.refresh()

    (again,) = await setup.open_stops()
    assert again.client_algo_id == "ps-BTCUSDT-2"
    assert stops.status()["unprotected"] == []


async def test_restart_adopts_the_open_stop(setup: Setup) -> None:
    await setup.trade("e1", Side.BUY, "0.010")
    await setup.follow(setup.stops())

    restarted = setup.stops()
    await restarted.reconcile()
    await setup.follow(restarted)

    assert setup.log.algo_calls("POST") == 1
    assert setup.log.algo_calls("DELETE") == 0
    assert _symbol_status(restarted)["stop"]["client_algo_id"] == "ps-BTCUSDT-1"
    await setup.trade("e2", Side.BUY, "0.010")  # the numbering continues after the adopted one
    await setup.follow(restarted)
    (order,) = await setup.open_stops()
    assert order.client_algo_id == "ps-BTCUSDT-2"


async def test_restart_cancels_duplicate_stops(setup: Setup) -> None:
    await setup.trade("e1", Side.BUY, "0.010")
    await setup.follow(setup.stops())
    quantity, entry = await setup.position()
    assert entry is not None
    _side, trigger = _expected(setup, quantity, entry)
    # A leftover from an earlier crash at another level, plus someone else's algo order.
    for cid, level in (("ps-BTCUSDT-7", trigger - 100), ("theirs-1", trigger - 200)):
        order = replace(
            btc_order(cid, Side.SELL, OrderType.STOP_MARKET, "0.010"),
            stop_price=level,
            reduce_only=True,
        )
        await setup.reader.place_order(order)

    restarted = setup.stops()
    await restarted.reconcile()
    await setup.follow(restarted)

    assert sorted(o.client_algo_id for o in await setup.open_stops()) == [
        "ps-BTCUSDT-8",
        "theirs-1",
    ]
    assert await setup.status_of("ps-BTCUSDT-1") == "canceled"
    assert await setup.status_of("ps-BTCUSDT-7") == "canceled"
    assert (await setup.reader.query_algo_order("ps-BTCUSDT-8")).trigger_price == trigger


async def test_disabled_sends_nothing(setup: Setup) -> None:
    stops = setup.stops(ProtectiveStopSettings(enabled=False))
    await setup.trade("e1", Side.BUY, "0.010")
    await setup.follow(stops)
    assert setup.log.calls == []
