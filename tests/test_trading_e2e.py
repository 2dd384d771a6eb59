"""The whole trading path in the real daemon against its embedded simulator, end to end.

`build_daemon` with the live executor (signed orders to the simulator on loopback) and with
the default paper executor: market stream → strategy worker → risk gate → executor →
simulator (or virtual fills) → user-data stream → executor → strategies. The kill switch is
driven through the real `tradebus halt|resume|flatten` commands over the control socket.

The simulator's market runs at 60x (a 1m bar per second) so bars close often; the waits below
are on conditions with a bound for defects, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from app.bus import MARKET_KLINE, ORDER_UPDATE, SYSTEM_ACK
from app.cli import main
from app.domain import ControlAcknowledged, ControlAction, Kline, OrderStatus, OrderUpdated
from app.runtime import ComponentSpec, ExitCode, Stage
from app.wiring import Daemon, build_daemon
from config import Settings, load_settings
from exchange.binance.futures import FuturesClient

pytestmark = pytest.mark.slow

DEFECT_BOUND_S = 30.0
SYMBOLS = [
    "BTCUSDT", "ETHUSDT", "XAAUSDT", "XABUSDT", "XACUSDT", "XADUSDT", "XAEUSDT", "XAFUSDT",
    "XAGUSDT", "XAHUSDT", "XAIUSDT", "XAJUSDT",
]  # fmt: skip


NO_LIMITS: dict[str, object] = {
    "risk.limits.max_position_notional": None,
    "risk.limits.max_total_exposure": None,
    "risk.limits.max_open_positions": None,
    "risk.limits.daily_loss_limit_pct": None,
    "risk.limits.cooldown_s": 0.0,
    "risk.guards.consecutive_losses": None,
    "risk.guards.max_drawdown_pct": None,
}


def trading_settings(folder: Path, **extra: object) -> Settings:
    overrides: dict[str, object] = {
        "executor.mode": "live",
        "exchange.symbols": SYMBOLS,
        "exchange.kline_intervals": ["1m"],
        "sim.port": 0,
        "sim.speed": 60,
        "sim.updates_per_bar": 4,
        "sim.history_bars": 5,
        "sim.state_file": "",
        "sim.spot_balances": {"USDT": "1000000"},
        "health.heartbeat_path": str(folder / "hb.json"),
        "database.url": f"sqlite:///{folder / 'tradebus.db'}",
        "logging.file": "",
        "runtime.control_socket": str(folder / "c.sock"),
        "risk.state_file": str(folder / "risk.json"),
        "risk.orders.default_entry_notional": "50",
        # Not the shipped example limits: these runs trade every other bar on purpose.
        **NO_LIMITS,
        "strategies.snapshot_file": str(folder / "strategies.json"),
        "strategies.run": [
            {
                "strategy": "sma_cross",
                "name": "flip",
                "params": {"fast": 1, "slow": 2, "allow_short": False},
            }
        ],
        **extra,
    }
    return load_settings(None, overrides=overrides, env={}, dotenv_file=None)


class SimOrders:
    """Every order placement reaching the simulator, with the instant it arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []  # (perf_counter, side, client id)
        self.changed = asyncio.Event()

    def on_order_received(self, params: Mapping[str, str]) -> None:
        self.arrivals.append(
            (time.perf_counter(), params.get("side", ""), params.get("newClientOrderId", ""))
        )
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(DEFECT_BOUND_S):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


class Acks:
    """When each component's acknowledgement of each command was published."""

    def __init__(self, daemon: Daemon) -> None:
        self.at: dict[tuple[ControlAction, str], float] = {}
        daemon.bus.subscribe(SYSTEM_ACK.channel(), self.on_ack, subscriber="ack_probe")
        daemon.supervisor.add(ComponentSpec("ack_probe", Stage.OBSERVER))

    async def on_ack(self, ack: ControlAcknowledged) -> None:
        self.at[(ack.action, ack.component)] = time.perf_counter()


async def test_no_entry_reaches_the_simulator_after_the_halt_is_acknowledged(
    tmp_path: Path,
) -> None:
    daemon = build_daemon(trading_settings(tmp_path))
    assert daemon.sim is not None
    orders = SimOrders()
    daemon.sim.spot.gateway.on_order_received = orders.on_order_received
    acks = Acks(daemon)
    bars = Bars(daemon)
    socket = str(tmp_path / "c.sock")
    async with asyncio.TaskGroup() as group:
        running = group.create_task(daemon.run(install_signal_handlers=False))
        try:
            # Entries flowing in bursts (one per closing bar and symbol that crossed).
            await orders.wait_for(lambda: sum(s == "BUY" for _, s, _ in orders.arrivals) >= 8)
            assert await cli("halt", "--socket", socket, "--reason", "test") == 0
            acknowledged = max(acks.at[(ControlAction.HALT, c)] for c in ("risk", "executor"))
            before = len(orders.arrivals)
            denied_before = daemon.health.snapshot()["risk"]["denied"]
            # Let three more bars close while halted.
            await bars.wait(3)
            late_entries = [
                cid for at, side, cid in orders.arrivals if side == "BUY" and at > acknowledged
            ]
            heartbeat = daemon.health.snapshot()
            assert await cli("resume", "--socket", socket) == 0
            resumed = len(orders.arrivals)
            await orders.wait_for(lambda: any(s == "BUY" for _, s, _ in orders.arrivals[resumed:]))
        finally:
            daemon.supervisor.request_shutdown("test done")
    assert running.result() == ExitCode.OK
    print(
        f"orders before halt {before}, after halt {resumed - before} "
        f"(entries after the acknowledgement: {len(late_entries)})"
    )
    assert late_entries == []
    assert heartbeat["risk"]["state"] == "halted"
    # Signals kept coming while halted and were denied by the trading state.
    assert heartbeat["risk"]["denied"] > denied_before


class Bars:
    """Closed bars of BTCUSDT reaching the bus: the market's clock, as the daemon sees it."""

    def __init__(self, daemon: Daemon) -> None:
        self.closed = 0
        self.changed = asyncio.Event()
        daemon.bus.subscribe(MARKET_KLINE.channel("BTCUSDT"), self.on_kline, subscriber="bars")
        daemon.supervisor.add(ComponentSpec("bars", Stage.STRATEGY))

    async def on_kline(self, kline: Kline) -> None:
        if kline.closed:
            self.closed += 1
            self.changed.set()

    async def wait(self, bars: int) -> None:
        target = self.closed + bars
        async with asyncio.timeout(DEFECT_BOUND_S):
            while self.closed < target:
                self.changed.clear()
                await self.changed.wait()


class Fills:
    """FILLED order updates on `order.update`."""

    def __init__(self, daemon: Daemon) -> None:
        self.filled: list[OrderUpdated] = []
        self.changed = asyncio.Event()
        daemon.bus.subscribe(ORDER_UPDATE.channel(), self.on_update, subscriber="fills")
        daemon.supervisor.add(ComponentSpec("fills", Stage.OBSERVER))

    async def on_update(self, update: object) -> None:
        if isinstance(update, OrderUpdated) and update.status is OrderStatus.FILLED:
            self.filled.append(update)
        self.changed.set()  # conditional-order states too: predicates may watch them

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(DEFECT_BOUND_S):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def test_flatten_closes_every_position_with_market_orders(tmp_path: Path) -> None:
    daemon = build_daemon(trading_settings(tmp_path))
    assert daemon.sim is not None
    orders = SimOrders()
    daemon.sim.spot.gateway.on_order_received = orders.on_order_received
    fills = Fills(daemon)
    bars = Bars(daemon)
    socket = str(tmp_path / "c.sock")
    async with asyncio.TaskGroup() as group:
        running = group.create_task(daemon.run(install_signal_handlers=False))
        try:
            await orders.wait_for(lambda: sum(s == "BUY" for _, s, _ in orders.arrivals) >= 4)
            assert await cli("halt", "--socket", socket) == 0
            await bars.wait(1)  # entries in flight at the halt fill
            assert await cli("flatten", "--yes", "--socket", socket) == 0
            await fills.wait_for(lambda: only_dust(daemon))
            balances = await daemon.venue.client.account()  # the exchange's own account
            heartbeat = daemon.health.snapshot()
        finally:
            daemon.supervisor.request_shutdown("test done")
    assert running.result() == ExitCode.OK
    assert heartbeat["risk"]["state"] == "halted"
    flattened = [u for u in fills.filled if u.purpose is not None and u.purpose.value == "flatten"]
    assert flattened, "flatten placed no order"
    assert all(u.order_type.value == "market" for u in flattened)
    # What is left is spot dust (below the lot step: cannot be sold), and the gate's book
    # agrees with the exchange's balances to the last unit.
    remaining = {
        key.split("/")[1]: Decimal(quantity)
        for key, quantity in heartbeat["risk"]["open_positions"].items()
    }
    held = {b.asset: b.total for b in balances if b.asset not in ("USDT", "BNB") and b.total}
    assert held == {symbol.removesuffix("USDT"): q for symbol, q in remaining.items() if q}


def only_dust(daemon: Daemon) -> bool:
    """Every position the gate still books is below its symbol's lot step."""
    for key, quantity in daemon.health.snapshot()["risk"]["open_positions"].items():
        lot = daemon.venue.rules[key.split("/")[1]].lot_size
        assert lot is not None
        if Decimal(quantity) >= lot.step_size:
            return False
    return True


async def test_the_default_paper_daemon_fills_strategy_orders_virtually(tmp_path: Path) -> None:
    settings = trading_settings(tmp_path, **{"executor.mode": "paper"})
    daemon = build_daemon(settings)
    assert daemon.sim is not None
    orders = SimOrders()
    daemon.sim.spot.gateway.on_order_received = orders.on_order_received
    fills = Fills(daemon)
    async with asyncio.TaskGroup() as group:
        running = group.create_task(daemon.run(install_signal_handlers=False))
        try:
            await fills.wait_for(lambda: len(fills.filled) >= 5)
            heartbeat = daemon.health.snapshot()
        finally:
            daemon.supervisor.request_shutdown("test done")
    assert running.result() == ExitCode.OK
    assert orders.arrivals == []  # paper: nothing reaches the exchange
    assert heartbeat["risk"]["approved"] >= 5
    strategy = heartbeat["strategies"]["flip"]
    assert strategy  # the worker ran
    # Every virtual fill is stamped with the instance, so the strategy sees its own orders.
    assert all(u.strategy == "flip" for u in fills.filled)


async def test_futures_entries_get_an_exchange_side_protective_stop(tmp_path: Path) -> None:
    settings = trading_settings(
        tmp_path,
        **{
            "exchange.market": "usdm",
            "exchange.symbols": ["BTCUSDT", "ETHUSDT"],
            "executor.futures.leverage": 2,
            "executor.protective_stops.enabled": True,
            "executor.protective_stops.stop_pct": "3",
        },
    )
    daemon = build_daemon(settings)
    assert daemon.sim is not None
    fills = Fills(daemon)
    async with asyncio.TaskGroup() as group:
        running = group.create_task(daemon.run(install_signal_handlers=False))
        try:
            await fills.wait_for(lambda: any(u.purpose is not None for u in fills.filled))
            entry = next(u for u in fills.filled if u.purpose is not None)
            stops: dict[str, object] = {}

            def placed() -> bool:
                stops.update(daemon.health.snapshot()["protective_stops"])
                return entry.symbol in str(stops)

            await fills.wait_for(placed)
            client = daemon.venue.client
            assert isinstance(client, FuturesClient)
            open_algo = await client.open_algo_orders(entry.symbol)
        finally:
            daemon.supervisor.request_shutdown("test done")
    assert running.result() == ExitCode.OK
    # The exchange holds a reduce-only stop for the position, 3% away on the losing side.
    assert len(open_algo) == 1
    stop = open_algo[0]
    assert stop.reduce_only
    assert stop.trigger_price is not None
    assert entry.average_fill_price is not None
    ratio = stop.trigger_price / entry.average_fill_price
    assert abs(ratio - Decimal("0.97")) < Decimal("0.002")
