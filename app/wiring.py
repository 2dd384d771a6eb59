"""The composition root: the one module that builds every component from its config section
and connects them through the bus. Nothing else constructs components.

The daemon runs its own machinery (the supervisor, which also obeys `shutdown` on
`system.control`, the alert sink, the event-loop lag monitor and the health monitor that writes
the heartbeat), the venue (Binance or the embedded simulator) with its feeds, the strategy
workers, the trading path (risk gate, executor, control socket: `app.trading_wiring`), and the
database: the recorder and start-up reconciliation (`app.recovery_wiring`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from app import __version__
from app.alerts import AlertLogger, SlackWebhook
from app.bus import RISK_STATE, SYSTEM_ALERT, Bus, CapacityClass
from app.domain import AlertSeverity, Clock, Mode, SystemClock
from app.errors import FatalVenueError
from app.health import HealthMonitor, HealthOptions, LoopLagMonitor
from app.recovery_wiring import Persistence, wire_persistence, wire_recovery
from app.redaction import REDACTOR, Redactor
from app.runtime import ComponentSpec, ExitCode, RuntimeOptions, Stage, Supervisor
from app.sim_venue import build_sim, sim_client_settings
from app.snapshot_wiring import wire_snapshots
from app.strategy_wiring import (
    StrategyConfigError,
    build_strategy_workers,
    resolve_strategy_runs,
)
from app.systemd import SystemdNotifier
from app.trading_wiring import TradingPath, TradingWiringError, executor_mode, wire_trading
from app.venue import BinanceVenue, build_binance_venue
from config import Settings
from config.environment import systemd_notify_socket, systemd_watchdog_usec
from exchange.binance.endpoints import Endpoints
from exchange.sim.server import SimExchange
from exchange.sim.state_file import StateFileError
from executor.live import LiveExecutor
from strategies.history import HistorySource
from strategies.registry import Registry
from strategies.snapshots import SnapshotStore

log = structlog.get_logger("app.wiring")


class StartupConfigError(Exception):
    """The settings passed validation but cannot be assembled (exit code 2, like bad config)."""


class UnsupportedMode(StartupConfigError):
    pass


@dataclass
class Daemon:
    settings: Settings
    bus: Bus
    supervisor: Supervisor
    health: HealthMonitor
    notifier: SystemdNotifier
    venue: BinanceVenue
    trading: TradingPath
    persistence: Persistence
    sim: SimExchange | None = None  # the embedded simulator, when the venue is "sim"
    # Released after every component stopped (HTTP sessions of the venue clients).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def run(self, *, install_signal_handlers: bool = True) -> ExitCode:
        try:
            code = await self.supervisor.run(install_signal_handlers=install_signal_handlers)
        finally:
            for close in self.closers:
                await close()
        try:
            # The last word: phase "stopped" and the exit code, so `tradebus status` and
            # whoever restarts the service can see how it ended.
            await self.health.write_once(exit_code=code)
        except OSError as exc:
            log.error("final_heartbeat_failed", error=str(exc))
        return code


def build_daemon(
    settings: Settings,
    *,
    clock: Clock | None = None,
    redactor: Redactor = REDACTOR,
    notify_socket: str | None = None,
    watchdog_usec: int | None = None,
    registry: Registry | None = None,
) -> Daemon:
    """Construct and connect everything; does no I/O (nothing runs until `Daemon.run`)."""
    if settings.mode is Mode.BACKTEST:
        raise UnsupportedMode(
            "mode 'backtest' replays history through a replay driver that is not built yet; "
            "use mode 'paper' or 'live' with `tradebus run`"
        )
    clock = clock or SystemClock()
    bus = Bus(
        capacities={
            CapacityClass.MARKET: settings.bus.market_capacity,
            CapacityClass.ORDER: settings.bus.order_capacity,
            CapacityClass.DEFAULT: settings.bus.default_capacity,
        }
    )
    runtime = settings.runtime
    supervisor = Supervisor(
        bus=bus,
        clock=clock,
        options=RuntimeOptions(
            drain_timeout_s=runtime.drain_timeout_s,
            restart_backoff_initial_s=runtime.restart_backoff_initial_s,
            restart_backoff_max_s=runtime.restart_backoff_max_s,
            restart_max_in_window=runtime.restart_max_in_window,
            restart_window_s=runtime.restart_window_s,
        ),
    )

    alerts = AlertLogger()
    bus.subscribe(SYSTEM_ALERT.channel(), alerts.on_alert, subscriber="alerts")
    supervisor.add(ComponentSpec("alerts", Stage.OBSERVER, progress=lambda: alerts.received))
    if settings.alerts.slack_webhook_url is not None:
        slack = SlackWebhook(
            webhook_url=settings.alerts.slack_webhook_url.get_secret_value(),
            instance=settings.instance_name,
            clock=clock,
            redactor=redactor,
            min_severity=AlertSeverity(settings.alerts.min_severity),
        )
        bus.subscribe(SYSTEM_ALERT.channel(), slack.on_alert, subscriber="slack")
        supervisor.add(
            ComponentSpec("slack", Stage.OBSERVER, progress=lambda: slack.sent + slack.failed)
        )

    health_settings = settings.health
    loop_lag = LoopLagMonitor(
        sample_s=health_settings.loop_lag_sample_s, window_s=health_settings.loop_lag_window_s
    )
    supervisor.add(
        ComponentSpec(
            "loop_lag",
            Stage.OBSERVER,
            run=loop_lag.run,
            restartable=True,
            progress=lambda: loop_lag.measured,
        )
    )

    if settings.health.systemd_notify:
        notify_socket = notify_socket or systemd_notify_socket()
        watchdog_usec = watchdog_usec or systemd_watchdog_usec()
    notifier = SystemdNotifier(
        notify_socket if settings.health.systemd_notify else None, watchdog_usec
    )
    health = HealthMonitor(
        options=HealthOptions(
            heartbeat_path=health_settings.heartbeat_path,
            interval_s=health_settings.interval_s,
            stale_after_s=health_settings.stale_after_s,
            stall_after_s=health_settings.stall_after_s,
            loop_lag_p99_max_ms=health_settings.loop_lag_p99_max_ms,
        ),
        supervisor=supervisor,
        bus=bus,
        clock=clock,
        loop_lag=loop_lag,
        identity={
            "version": __version__,
            "instance": settings.instance_name,
            "mode": settings.mode.value,
            "venue": settings.exchange.venue,
            "market": settings.exchange.market.value,
        },
        redactor=redactor,
        notifier=notifier,
    )
    closers: list[Callable[[], Awaitable[None]]] = []
    sim: SimExchange | None = None
    if settings.exchange.venue == "binance":
        venue = _wire_binance(settings, bus=bus, clock=clock, supervisor=supervisor, health=health)
    else:
        venue, sim = _wire_sim(settings, bus=bus, clock=clock, supervisor=supervisor, health=health)
        closers.append(sim.stop)
    closers.insert(0, venue.close)
    try:
        # The executor mode (checked here first) decides whether intents are journaled.
        persistence = wire_persistence(
            settings, bus=bus, clock=clock, supervisor=supervisor, health=health
        )
        trading = wire_trading(
            settings,
            bus=bus,
            clock=clock,
            supervisor=supervisor,
            health=health,
            venue=venue,
            journal=persistence.recorder,
            risk_state=persistence.risk_state,
        )
    except TradingWiringError as exc:
        raise StartupConfigError(str(exc)) from None
    closers.append(_disposer(persistence))
    _wire_strategies(
        settings,
        bus=bus,
        clock=clock,
        supervisor=supervisor,
        health=health,
        history=venue,
        registry=registry,
        snapshots=persistence.snapshots,
    )
    if isinstance(trading.executor, LiveExecutor):
        # After the strategy workers: they must be receiving when the synthetic updates go out.
        wire_recovery(
            settings,
            bus=bus,
            clock=clock,
            supervisor=supervisor,
            venue=venue,
            executor=trading.executor,
            persistence=persistence,
        )
    bus.subscribe(RISK_STATE.channel(), health.on_trading_state, subscriber="health")
    supervisor.add(
        ComponentSpec(
            "health",
            Stage.OBSERVER,
            run=health.run,
            restartable=True,
            progress=lambda: health.writes,
        )
    )
    wire_snapshots(
        settings,
        clock=clock,
        supervisor=supervisor,
        health=health,
        recorder=persistence.recorder,
        gate=trading.gate,
        redactor=redactor,
    )
    # The heartbeat says "running" (or "draining") the moment it becomes true, and systemd
    # hears READY only after that first running heartbeat is on disk.
    supervisor.on_running(health.beat)
    supervisor.on_running(notifier.ready)
    supervisor.on_stopping(notifier.stopping)
    supervisor.on_stopping(health.beat)
    return Daemon(
        settings, bus, supervisor, health, notifier, venue, trading, persistence, sim, closers
    )


def _disposer(persistence: Persistence) -> Callable[[], Awaitable[None]]:
    async def dispose() -> None:
        # After the recorder's final flush: its connections are released with the engine.
        await asyncio.to_thread(persistence.engine.dispose)

    return dispose


def _wire_strategies(
    settings: Settings,
    *,
    bus: Bus,
    clock: Clock,
    supervisor: Supervisor,
    health: HealthMonitor,
    history: HistorySource,
    registry: Registry | None = None,
    snapshots: SnapshotStore | None = None,
) -> None:
    """One worker per configured strategy instance, at the strategy stage: started (history,
    restored state) after the risk gate and executor, before the feeds."""
    try:
        runs = resolve_strategy_runs(settings, registry)
    except StrategyConfigError as exc:
        raise StartupConfigError(str(exc)) from None
    workers = build_strategy_workers(
        runs, settings, bus=bus, clock=clock, history=history, store=snapshots
    )
    for worker in workers:
        supervisor.add(
            ComponentSpec(
                worker.component,
                Stage.STRATEGY,
                start=worker.start,
                run=worker.run,
                restartable=True,
            )
        )
    if workers:
        health.add_section("strategies", lambda: {w.instance: w.status() for w in workers})


def _wire_sim(
    settings: Settings, *, bus: Bus, clock: Clock, supervisor: Supervisor, health: HealthMonitor
) -> tuple[BinanceVenue, SimExchange]:
    """The embedded simulator (its port bound now, so the client knows where it is), and the
    same Binance client wiring as for the real exchange, pointed at it with its test key."""
    try:
        sim = build_sim(settings, clock=clock)
    except OSError as exc:
        raise StartupConfigError(
            f"sim: cannot listen on {settings.sim.host}:{settings.sim.port} ({exc.strerror}); "
            "is another tradebus or `tradebus sim` running? Set sim.port to another port"
        ) from None
    except (ValueError, StateFileError) as exc:
        raise StartupConfigError(f"sim: {exc}") from None
    supervisor.add(
        ComponentSpec(
            "sim",
            Stage.VENUE,
            start=sim.start,
            run=sim.run,
            progress=lambda: sim.spot.timeline.frames_sent + sim.futures.timeline.frames_sent,
        )
    )
    health.add_section("sim", sim.status)
    client_settings = settings.model_copy(
        update={"exchange": sim_client_settings(settings.exchange)}
    )
    venue = _wire_binance(
        client_settings,
        bus=bus,
        clock=clock,
        supervisor=supervisor,
        health=health,
        endpoints=sim.endpoints,
    )
    return venue, sim


def _wire_binance(
    settings: Settings,
    *,
    bus: Bus,
    clock: Clock,
    supervisor: Supervisor,
    health: HealthMonitor,
    endpoints: Endpoints | None = None,
) -> BinanceVenue:
    """Market feed (and in live mode the user-data feed) from Binance, plus clock sync.
    The caller closes the venue's connections once the daemon stopped."""
    try:
        venue = build_binance_venue(
            settings.exchange,
            user_data=executor_mode(settings) == "live",
            bus=bus,
            clock=clock,
            endpoints=endpoints,
        )
    except (ValueError, FatalVenueError) as exc:
        raise StartupConfigError(str(exc)) from None
    # The symbol rules and the clock offset are loaded by the executor's start-up
    # (`app.trading_wiring`), before any component that needs them.
    supervisor.add(
        ComponentSpec(
            "market_feed",
            Stage.FEED,
            run=venue.run_market_streams,
            restartable=True,
            progress=lambda: venue.market_publisher.published,
        )
    )
    supervisor.add(
        ComponentSpec("clock_sync", Stage.FEED, run=venue.run_clock_sync, restartable=True)
    )
    user_stream, user_publisher = venue.user_stream, venue.user_publisher
    if user_stream is not None and user_publisher is not None:
        supervisor.add(
            ComponentSpec(
                "user_feed",
                Stage.FEED,
                run=user_stream.run,
                restartable=True,
                progress=lambda: user_publisher.published,
            )
        )
    health.add_section("venue", venue.snapshot)
    return venue
