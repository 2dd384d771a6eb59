"""``tradebus reconcile --dry-run``: what start-up reconciliation would change, printed, nothing
applied.

It runs the daemon's own diff (`executor.reconciliation.reconcile`) between the configured
database (with the intent journal) and the exchange (``exchange.venue = "binance"``; its
endpoints may point at a `tradebus sim`): the synthetic order updates it would publish, the
open orders it would adopt, foreign orders, unresolved orders and position mismatches. It only
reads: no order is placed or cancelled, nothing is written. Run it while the daemon is stopped,
or it races the daemon's own orders.

Exit codes: 0 the database and the exchange agree, 1 there are differences (printed), 2 a
config or usage error, 3 the exchange or the database could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from app.runtime import ExitCode
from config import Settings

if TYPE_CHECKING:
    from executor.reconciliation import ReconcileReport

__all__ = ["add_reconcile_command", "run_reconcile"]

_DIFFERENCES = 1
_UNREADABLE = 3


def add_reconcile_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    config_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    text = "print how the database differs from the exchange (nothing is applied)"
    parser = commands.add_parser("reconcile", help=text, description=f"{text}.")
    config_options(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        required=True,
        help="required: the daemon applies the difference itself when it starts",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")


def run_reconcile(settings: Settings, *, as_json: bool, stdout: TextIO, stderr: TextIO) -> int:
    if settings.exchange.venue != "binance":
        print(
            "tradebus: reconcile: exchange.venue must be 'binance' (its endpoints may point at "
            "a running `tradebus sim`); the embedded simulator lives inside the daemon",
            file=stderr,
        )
        return ExitCode.CONFIG_ERROR
    try:
        report = asyncio.run(_reconcile(settings))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none is a traceback
        print(f"tradebus: reconcile: {type(exc).__name__}: {exc}", file=stderr)
        return _UNREADABLE
    _print(report, as_json=as_json, stdout=stdout)
    summary = report.summary()
    in_sync = not (
        report.events
        or report.adopted
        or report.foreign
        or report.unresolved
        or report.position_mismatches
        or summary["problems"]
    )
    return ExitCode.OK if in_sync else _DIFFERENCES


async def _reconcile(settings: Settings) -> ReconcileReport:
    # The venue and database stacks are imported here, so other commands do not pay for them.
    from app.bus import Bus
    from app.domain import SystemClock
    from app.recovery_wiring import reconcile_with_database
    from app.venue import build_binance_venue
    from database.engine import make_engine
    from database.intent_journal import IntentJournal, journal_path
    from database.schema import current_revision, head_revision
    from executor.venue_port import venue_port

    clock = SystemClock()
    engine = make_engine(settings.database)
    journal = IntentJournal(journal_path(settings.database))
    venue = build_binance_venue(settings.exchange, user_data=False, bus=Bus(), clock=clock)
    try:
        revision = await asyncio.to_thread(current_revision, engine)
        if revision != head_revision():
            raise RuntimeError(
                f"the database is at schema {revision or 'none'}, this tradebus at "
                f"{head_revision()}: run `tradebus db upgrade` first"
            )
        await venue.prepare()
        _, report = await reconcile_with_database(
            settings,
            engine=engine,
            journal=journal,
            venue=venue,
            port=venue_port(venue.client),
            clock=clock,
            forget_journaled=False,
        )
        return report
    finally:
        await venue.close()
        journal.close()
        await asyncio.to_thread(engine.dispose)


def _print(report: ReconcileReport, *, as_json: bool, stdout: TextIO) -> None:
    events = [
        {
            "client_order_id": e.client_order_id,
            "symbol": e.symbol,
            "status": e.status.value,
            "filled": str(e.filled_quantity),
            "trade_id": None if e.fill is None else e.fill.trade_id,
            "strategy": e.strategy,
            "reason": e.reason,
        }
        for e in report.events
    ]
    if as_json:
        print(json.dumps({"summary": report.summary(), "events": events}, indent=1), file=stdout)
        return
    summary = report.summary()
    print(f"synthetic updates    {summary['events']} ({summary['fills']} with a fill)", file=stdout)
    for event in events:
        fill = f" trade {event['trade_id']}" if event["trade_id"] is not None else ""
        print(
            f"  {event['symbol']:<12} {event['client_order_id']:<36} {event['status']:<18}"
            f" filled {event['filled']}{fill}",
            file=stdout,
        )
    for label in ("adopted", "foreign", "unresolved", "position_mismatches", "problems"):
        print(f"{label.replace('_', ' '):<20} {summary[label] or '-'}", file=stdout)
