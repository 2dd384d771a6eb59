"""Wires the trading path: the risk gate, the executor (live or paper) and the control socket.

Kept apart from ``app.wiring`` so the composition root stays short. The executor is chosen by
``executor.mode`` (default: paper fills in paper mode, real orders in live mode). Both executors
consume ``order.request`` and produce ``order.update``; the live one also follows the venue's
own order events on ``venue.order`` (the user-data stream, attached in live mode).

Start-up order (the supervisor starts stages backwards): the executor first loads the symbol
rules and the clock offset from the venue and, on futures, applies leverage, margin type and
position mode, so the first order is already signed with a synchronised clock and the risk
gate's filters are known before any strategy can signal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.bus import Bus
from app.control import ControlServer
from app.domain import Clock, MarketType, Mode
from app.health import HealthMonitor
from app.runtime import ComponentSpec, Stage, Supervisor
from app.venue import BinanceVenue
from config import Settings
from exchange.binance.futures import FuturesClient
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, DEFAULT_USDM_RULES
from exchange.binance.ratelimit_rules import RateLimitRule
from executor.futures_setup import prepare_futures_account
from executor.journal import IntentJournal, NoJournal
from executor.live import LiveExecutor
from executor.paper import PaperExecutor
from executor.protective_stops import ProtectiveStops
from executor.venue_port import venue_port
from risk.gate import RiskGate
from risk.state_store import StateDocuments

__all__ = ["TradingWiringError", "wire_trading"]

_STOP_REFRESH_S = 30.0
_INTERVAL_MS = {"SECOND": 1_000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}


class TradingWiringError(ValueError):
    """The risk/executor settings cannot be assembled with the rest (exit code 2)."""


@dataclass
class TradingPath:
    """What was wired; all None in shadow mode (`executor.mode = "off"`)."""

    gate: RiskGate | None
    executor: LiveExecutor | PaperExecutor | None
    control: ControlServer | None


def executor_mode(settings: Settings) -> str:
    """ "live" (orders to the venue), "paper" (virtual fills in this process) or "off".

    Orders reach Binance only in mode "live". The embedded simulator is an exchange with play
    money, so `executor.mode = "live"` may send it real orders in paper mode too: the whole
    order path (user-data stream, unknown-status recovery) then runs offline.
    """
    chosen = settings.executor.mode or ("live" if settings.mode is Mode.LIVE else "paper")
    if chosen == "live" and settings.mode is not Mode.LIVE and settings.exchange.venue != "sim":
        raise TradingWiringError(
            "executor.mode: 'live' sends orders to Binance and needs mode = 'live' "
            f"(mode is {settings.mode.value!r}); with venue 'sim' it trades on the simulator"
        )
    if settings.executor.protective_stops.enabled and (
        chosen != "live" or settings.exchange.market is not MarketType.USDM
    ):
        raise TradingWiringError(
            "executor.protective_stops.enabled: exchange-side stops need market = 'usdm' and "
            "live orders (spot has no reduce-only stop order)"
        )
    return chosen


def order_limits(rules: tuple[RateLimitRule, ...]) -> list[tuple[int, int]]:
    """The exchange's ORDERS limits as (window ms, count)."""
    return [
        (_INTERVAL_MS[rule.interval] * rule.interval_num, rule.limit)
        for rule in rules
        if rule.kind == "ORDERS"
    ]


def wire_trading(
    settings: Settings,
    *,
    bus: Bus,
    clock: Clock,
    supervisor: Supervisor,
    health: HealthMonitor,
    venue: BinanceVenue,
    journal: IntentJournal | None = None,
    risk_state: StateDocuments | None = None,
) -> TradingPath:
    """`journal`: where the live executor records each order's intent before sending it;
    `risk_state`: where the risk gate keeps its state (a file at `risk.state_file` if None)."""
    mode = executor_mode(settings)
    if mode == "off":
        return TradingPath(None, None, None)
    market = settings.exchange.market
    spot = market is MarketType.SPOT
    gate = RiskGate(
        bus=bus,
        clock=clock,
        settings=settings.risk,
        market=market,
        rules=venue.rules,
        order_limits=order_limits(DEFAULT_SPOT_RULES if spot else DEFAULT_USDM_RULES),
        documents=risk_state,
    )
    executor: LiveExecutor | PaperExecutor
    stops: ProtectiveStops | None = None
    if mode == "live":
        if settings.executor.protective_stops.enabled and isinstance(venue.client, FuturesClient):
            stops = ProtectiveStops(
                client=venue.client,
                settings=settings.executor.protective_stops,
                clock=clock,
                rules=venue.rules,
            )
        executor = LiveExecutor(
            bus=bus,
            clock=clock,
            venue=venue_port(venue.client),
            settings=settings.executor,
            market=market,
            protective_stops=stops,
            journal=journal or NoJournal(),
        )
    else:
        executor = PaperExecutor(
            bus=bus, clock=clock, settings=settings.executor, market=market, rules=venue.rules
        )
    if stops is not None:
        supervisor.add(
            ComponentSpec(
                "protective_stops",
                Stage.EXECUTOR,
                run=_refresh_stops(stops, clock),
                restartable=True,
            )
        )
        health.add_section("protective_stops", stops.status)
    supervisor.add(
        ComponentSpec(
            "executor",
            Stage.EXECUTOR,
            start=_executor_start(settings, venue, executor, stops),
            run=executor.run,
            progress=lambda: executor.progress,
        )
    )
    supervisor.add(
        ComponentSpec(
            "risk", Stage.RISK, start=gate.start, run=gate.run, progress=lambda: gate.progress
        )
    )
    health.add_section("risk", gate.status)
    health.add_section("executor", executor.status)
    control = None
    if settings.runtime.control_socket is not None:
        control = ControlServer(
            bus=bus,
            clock=clock,
            path=settings.runtime.control_socket,
            required_acks=("risk", "executor"),
            ack_timeout_s=settings.runtime.control_ack_timeout_s,
        )
        supervisor.add(
            ComponentSpec(
                "control",
                Stage.OBSERVER,
                start=control.start,
                run=control.run,
                restartable=True,
                progress=lambda: control.served,
            )
        )
        # A command sent during the drain is refused at once instead of waiting for acks
        # from components that are stopping.
        supervisor.on_stopping(control.stop_accepting)
        health.add_section("control", control.status)
    return TradingPath(gate, executor, control)


def _executor_start(
    settings: Settings,
    venue: BinanceVenue,
    executor: LiveExecutor | PaperExecutor,
    stops: ProtectiveStops | None,
) -> Callable[[], Awaitable[None]]:
    async def start() -> None:
        await venue.prepare()
        if isinstance(executor, LiveExecutor) and isinstance(venue.client, FuturesClient):
            await prepare_futures_account(
                venue.client, settings.executor.futures, settings.exchange.symbols
            )
        if stops is not None:
            await stops.reconcile()  # adopt our stops left open by the previous run
        await executor.start()

    return start


def _refresh_stops(stops: ProtectiveStops, clock: Clock) -> Callable[[], Awaitable[None]]:
    """Re-place a stop that ended while its position is open, and settle lost answers."""

    async def run() -> None:
        while True:
            await clock.sleep(_STOP_REFRESH_S)
            await stops.refresh()

    return run
