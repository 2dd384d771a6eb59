"""Builds the strategy workers from ``[strategies]``: resolves each configured instance against
the registry, validates its parameters with the strategy's own model, and gives the workers
their history (the venue's klines endpoint, `BinanceVenue.closed_klines`) and their snapshot
store.

Kept apart from ``app.wiring`` so the composition root stays short. ``tradebus config check``
runs the same resolution, so a wrong parameter is reported before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.bus import Bus
from app.domain import Clock
from config import Settings
from exchange.binance.kline_gaps import interval_ms
from strategies.base import Strategy, StrategyParams
from strategies.context import StrategyContext
from strategies.history import HistorySource
from strategies.registry import Registry, UnknownStrategy, load_registry
from strategies.snapshots import JsonSnapshotStore, SnapshotStore
from strategies.trade.factory import TradeConfigError, trade_manager_factory
from strategies.trade.manager import TradeManager
from strategies.worker import StrategyWorker, WorkerOptions

__all__ = [
    "ResolvedRun",
    "StrategyConfigError",
    "build_strategy_workers",
    "legacy_snapshots",
    "resolve_strategy_runs",
]


class StrategyConfigError(Exception):
    """Configured strategies that cannot run, each problem tied to its config field."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class ResolvedRun:
    instance: str
    strategy_cls: type[Strategy[Any]]
    params: StrategyParams
    symbols: tuple[str, ...]
    interval: str
    # Builds the instance's trade management (`[strategies.run.trade]`); None: not configured.
    trade: Callable[[], TradeManager] | None = None


def resolve_strategy_runs(
    settings: Settings, registry: Registry | None = None
) -> list[ResolvedRun]:
    """Every enabled `[[strategies.run]]`, validated; all problems are reported at once."""
    registry = registry or load_registry()
    resolved: list[ResolvedRun] = []
    problems: list[tuple[str, str]] = []
    for index, run in enumerate(settings.strategies.run):
        if not run.enabled:
            continue
        field = f"strategies.run.{index}"
        try:
            strategy_cls = registry.get(run.strategy)
        except UnknownStrategy as exc:
            problems.append((f"{field}.strategy", str(exc)))
            continue
        try:
            params = strategy_cls.params_model.model_validate(run.params)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                location = ".".join(str(part) for part in error["loc"])
                reason = "unknown parameter" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append((f"{field}.params.{location}".rstrip("."), reason))
            continue
        interval = run.interval or settings.exchange.kline_intervals[0]
        try:
            # Construction does no I/O; it is where a strategy rejects parameter combinations
            # its model cannot express alone (e.g. fast >= slow) or an unsuitable interval.
            strategy_cls(
                params, StrategyContext(strategy=run.instance, symbol="", interval=interval)
            )
        except ValueError as exc:
            problems.append((field, f"{run.strategy}: {exc}"))
            continue
        symbols = run.symbols or settings.exchange.symbols
        trade = None
        if run.trade is not None:
            step_ms = interval_ms(interval)
            if step_ms is None:
                problems.append(
                    (f"{field}.trade", f"needs a fixed-length interval, not {interval}")
                )
                continue
            try:
                trade = trade_manager_factory(
                    run.trade, instance=run.instance, symbols=symbols, interval_ms=step_ms
                )
            except TradeConfigError as exc:
                problems.append((f"{field}.trade.{exc.field}", exc.reason))
                continue
        resolved.append(ResolvedRun(run.instance, strategy_cls, params, symbols, interval, trade))
    if problems:
        raise StrategyConfigError(problems)
    return resolved


def build_strategy_workers(
    runs: Sequence[ResolvedRun],
    settings: Settings,
    *,
    bus: Bus,
    clock: Clock,
    history: HistorySource | None,
    store: SnapshotStore | None = None,
) -> list[StrategyWorker]:
    """`store`: where snapshots are kept (the daemon: its database); none are kept without
    one, or when `strategies.snapshots` is off."""
    section = settings.strategies
    if not section.snapshots:
        store = None
    options = WorkerOptions(
        snapshot_interval_s=section.snapshot_interval_s,
        max_catch_up_bars=section.max_catch_up_bars,
    )
    return [
        StrategyWorker(
            instance=run.instance,
            strategy_cls=run.strategy_cls,
            params=run.params,
            symbols=run.symbols,
            interval=run.interval,
            bus=bus,
            clock=clock,
            history=history if section.history == "exchange" else None,
            store=store,
            options=options,
            trade_factory=run.trade,
        )
        for run in runs
    ]


def legacy_snapshots(settings: Settings) -> JsonSnapshotStore | None:
    """The snapshot file of versions before the database, to import from (None: no file)."""
    path = settings.strategies.snapshot_file
    return JsonSnapshotStore(path) if path is not None else None
