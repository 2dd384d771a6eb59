"""The composition root: the one module that builds every component from its config section
and connects them through the bus. Nothing else constructs components.

Today the daemon runs its own machinery: the supervisor (which also obeys `shutdown` on
`system.control`), the alert sink, the event-loop lag monitor and the health monitor that writes
the heartbeat. Feeds, strategies, the risk gate, the executor and the recorder are wired here
as they land, each at its pipeline stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from app import __version__
from app.alerts import AlertLogger, SlackWebhook
from app.bus import RISK_STATE, SYSTEM_ALERT, Bus, CapacityClass
from app.domain import AlertSeverity, Clock, Mode, SystemClock
from app.health import HealthMonitor, HealthOptions, LoopLagMonitor
from app.redaction import REDACTOR, Redactor
from app.runtime import ComponentSpec, ExitCode, RuntimeOptions, Stage, Supervisor
from app.systemd import SystemdNotifier
from config import Settings
from config.environment import systemd_notify_socket, systemd_watchdog_usec

log = structlog.get_logger("app.wiring")


class UnsupportedMode(Exception):
    pass


@dataclass
class Daemon:
    settings: Settings
    bus: Bus
    supervisor: Supervisor
    health: HealthMonitor
    notifier: SystemdNotifier

    async def run(self, *, install_signal_handlers: bool = True) -> ExitCode:
        code = await self.supervisor.run(install_signal_handlers=install_signal_handlers)
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
    # The heartbeat says "running" (or "draining") the moment it becomes true, and systemd
    # hears READY only after that first running heartbeat is on disk.
    supervisor.on_running(health.beat)
    supervisor.on_running(notifier.ready)
    supervisor.on_stopping(notifier.stopping)
    supervisor.on_stopping(health.beat)
    return Daemon(settings, bus, supervisor, health, notifier)
