"""Wires persistence and start-up recovery: the schema, the recorder, and reconciliation with the
exchange before any strategy sees market data.

Start-up (the supervisor starts stages backwards, each start hook awaited before the next):

1. recorder (stage RECORDER): the schema is brought to this code's head (or start-up is refused,
   `database.schema.ensure_schema`), then the writer thread starts and the intent journal
   opens. From here every order intent can be journaled and every `order.update` is recorded.
2. executor (stage EXECUTOR): symbol rules, clock offset, futures account set-up.
3. risk gate (RISK), strategy workers (STRATEGY): their deliveries start, so they will see the
   synthetic updates below.
4. reconciliation (STRATEGY, added after the workers): load from the database (and the intent
   journal, for intents the database did not get before a crash) what it knew,
   wait until an intent sent just before a crash can no longer reach the exchange (its
   recvWindow), diff against the exchange, alert on position mismatches and apply the policy,
   then publish the synthetic updates and adopt the open orders, then every strategy position
   as settled (`app.position_recovery`: the risk book and the positions table take them whole,
   so a risk book saved seconds before a crash catches up). A failure stops the daemon:
   it refuses to trade on a state it could not reconcile.
5. feeds (FEED): only now does market data flow.

While trading, the same diff runs every `database.reconcile_interval_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.engine import Engine

from app import __version__
from app.bus import ACCOUNT_UPDATE, SYSTEM_ALERT, SYSTEM_CONTROL, Bus, Sender
from app.domain import (
    AccountUpdated,
    Alert,
    AlertSeverity,
    Clock,
    ControlAction,
    ControlCommand,
    PositionsReconciled,
)
from app.health import HealthMonitor
from app.lifecycle import StartRefused
from app.position_recovery import settle_positions
from app.runtime import ComponentSpec, Stage, Supervisor
from app.strategy_wiring import legacy_snapshots
from app.trading_wiring import executor_mode
from app.venue import BinanceVenue
from config import Settings
from database.documents import DatabaseSnapshotStore, DatabaseStateDocuments
from database.engine import make_engine
from database.intent_journal import IntentJournal, journal_path
from database.queries import Recovery, load_recovery
from database.recorder import Recorder
from database.schema import SchemaError, ensure_schema
from executor.live import LiveExecutor
from executor.reconciliation import KnownState, ReconcileReport, reconcile
from executor.venue_port import VenuePort

__all__ = ["Persistence", "reconcile_with_database", "wire_persistence", "wire_recovery"]

log = structlog.get_logger("app.recovery")

#: the risk gate's row in state_documents
RISK_STATE_DOCUMENT = "risk_gate"

# Margin on top of recvWindow for the exchange's own clock offset.
_IN_FLIGHT_MARGIN_MS = 1_000


@dataclass
class Persistence:
    engine: Engine
    recorder: Recorder
    journal: IntentJournal | None  # live orders only: paper fills need no write-ahead
    risk_state: DatabaseStateDocuments  # the risk gate's trading state, guards and book
    snapshots: DatabaseSnapshotStore  # the strategy workers' state


def wire_persistence(
    settings: Settings, *, bus: Bus, clock: Clock, supervisor: Supervisor, health: HealthMonitor
) -> Persistence:
    engine = make_engine(settings.database)
    journal = None
    if executor_mode(settings) == "live":
        journal = IntentJournal(
            journal_path(settings.database), synchronous=settings.database.synchronous
        )
    recorder = Recorder(
        bus=bus, clock=clock, engine=engine, settings=settings.database, journal=journal
    )
    risk_state = DatabaseStateDocuments(
        engine, RISK_STATE_DOCUMENT, clock, legacy_file=settings.risk.state_file
    )
    legacy = legacy_snapshots(settings)
    snapshots = DatabaseSnapshotStore(engine, clock, legacy=None if legacy is None else legacy.load)

    async def start() -> None:
        try:
            await asyncio.to_thread(ensure_schema, settings.database, engine)
        except SchemaError as exc:  # a newer tradebus's database, or auto_upgrade off
            raise StartRefused(str(exc)) from None
        await recorder.start()

    supervisor.add(
        ComponentSpec(
            "recorder",
            Stage.RECORDER,
            start=start,
            run=recorder.run,
            progress=lambda: recorder.progress,
        )
    )
    health.add_section("recorder", recorder.status)

    async def run_started() -> None:
        await recorder.record_run_start(__version__, settings.mode.value, settings.instance_name)

    async def run_stopping() -> None:
        await recorder.record_run_stop(supervisor.exit_code.name.lower())

    supervisor.on_running(run_started)
    supervisor.on_stopping(run_stopping)
    return Persistence(engine, recorder, journal, risk_state, snapshots)


def wire_recovery(
    settings: Settings,
    *,
    bus: Bus,
    clock: Clock,
    supervisor: Supervisor,
    venue: BinanceVenue,
    executor: LiveExecutor,
    persistence: Persistence,
) -> None:
    """The reconciliation component; add it after the strategy workers (see the docstring)."""
    symbols = tuple(settings.exchange.symbols)
    prefix = settings.risk.orders.client_id_prefix
    alerts = bus.sender(SYSTEM_ALERT.channel())
    control = bus.sender(SYSTEM_CONTROL.channel())
    accounts = bus.sender(ACCOUNT_UPDATE.channel())

    async def alert(severity: AlertSeverity, title: str, detail: str) -> None:
        await alerts.send(
            Alert(
                severity=severity,
                source="reconciliation",
                title=title,
                detail=detail,
                ts_ms=clock.now_ms(),
            )
        )

    async def start() -> None:
        recovery, report = await reconcile_with_database(
            settings,
            engine=persistence.engine,
            journal=persistence.journal,
            venue=venue,
            port=executor.core.venue,
            clock=clock,
            forget_journaled=True,
        )
        await _report_problems(report, alert)
        trust_exchange = settings.database.position_mismatch == "trust_exchange"
        settled = settle_positions(recovery.held, report, trust_exchange=trust_exchange)
        if report.position_mismatches:
            await _apply_mismatch_policy(settings, report, settled, alert, control, clock)
        await executor.adopt(report)
        if report.balances or report.positions:
            await accounts.send(
                AccountUpdated(
                    ts_ms=report.ts_ms,
                    reason="RECONCILIATION",
                    balances=report.balances,
                    positions=report.positions,
                )
            )
        # After the synthetic updates: the risk book and the positions table take these whole.
        await accounts.send(settled)
        log.info(
            "startup_reconciled",
            orders_in_db=len(recovery.orders),
            finished_orders_in_db=recovery.finished_orders,
            **report.summary(),
        )

    async def run() -> None:
        await executor.reconcile_periodically(
            symbols=symbols,
            client_id_prefix=prefix,
            interval_s=settings.database.reconcile_interval_s,
        )

    supervisor.add(
        ComponentSpec("reconciliation", Stage.STRATEGY, start=start, run=run, restartable=True)
    )


async def reconcile_with_database(
    settings: Settings,
    *,
    engine: Engine,
    journal: IntentJournal | None,
    venue: BinanceVenue,
    port: VenuePort,
    clock: Clock,
    forget_journaled: bool,
) -> tuple[Recovery, ReconcileReport]:
    """What the database (and the intent journal) knew, diffed against the exchange: the
    daemon's start-up and `tradebus reconcile --dry-run` (which forgets nothing)."""
    journaled = await asyncio.to_thread(journal.entries) if journal is not None else []
    recovery = await asyncio.to_thread(load_recovery, engine, journaled)
    if journal is not None and forget_journaled:
        await asyncio.to_thread(journal.forget, recovery.journaled_in_database)
    await _let_in_flight_requests_land(recovery, clock, settings.exchange.recv_window_ms)
    known = KnownState(
        orders=recovery.orders,
        last_trade_ids=recovery.last_trade_ids,
        positions=recovery.positions,
        client_id_prefix=settings.risk.orders.client_id_prefix,
        fills=recovery.fills,
    )
    base_assets = {symbol: rules.base_asset for symbol, rules in venue.rules.items()}
    report = await reconcile(port, known, settings.exchange.symbols, clock, base_assets=base_assets)
    return recovery, report


async def _let_in_flight_requests_land(
    recovery: Recovery, clock: Clock, recv_window_ms: int
) -> None:
    """An intent recorded just before a crash may have been sent and still be on its way: the
    exchange accepts it until its timestamp is recvWindow old. Only after that may "does not
    exist" mean "never placed"."""
    newest = recovery.newest_pending_intent_ms
    if newest is None:
        return
    wait_ms = newest + recv_window_ms + _IN_FLIGHT_MARGIN_MS - clock.now_ms()
    if wait_ms > 0:
        log.info("waiting_for_in_flight_orders", wait_ms=wait_ms)
        await clock.sleep(wait_ms / 1000)


async def _report_problems(
    report: ReconcileReport, alert: Callable[[AlertSeverity, str, str], Awaitable[None]]
) -> None:
    if report.foreign:
        ids = ", ".join(f"{o.symbol} {o.client_order_id}" for o in report.foreign)
        await alert(
            AlertSeverity.WARNING,
            "foreign open orders left untouched",
            f"{len(report.foreign)} open order(s) not placed by this instance: {ids}",
        )
    if report.unresolved or report.problems:
        await alert(
            AlertSeverity.WARNING,
            "reconciliation left orders unresolved",
            "; ".join(report.problems) or f"{len(report.unresolved)} unresolved order(s)",
        )


async def _apply_mismatch_policy(
    settings: Settings,
    report: ReconcileReport,
    settled: PositionsReconciled,
    alert: Callable[[AlertSeverity, str, str], Awaitable[None]],
    control: Sender[ControlCommand],
    clock: Clock,
) -> None:
    detail = "; ".join(
        f"{m.symbol}: ours {m.expected}, exchange {m.exchange}" + (f" ({m.note})" if m.note else "")
        for m in report.position_mismatches
    )
    if settled.corrections:
        detail += "; set to the exchange's: " + "; ".join(settled.corrections)
    policy = settings.database.position_mismatch
    await alert(AlertSeverity.CRITICAL, f"position mismatch ({policy})", detail)
    if policy == "halt":
        await control.send(
            ControlCommand(
                action=ControlAction.HALT,
                requested_by="reconciliation",
                ts_ms=clock.now_ms(),
                reason=f"position mismatch: {detail}",
            )
        )
