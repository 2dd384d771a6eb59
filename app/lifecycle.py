"""What the supervisor knows about components: stages, states, specs, records and exit codes.

Kept apart from `app.runtime` so that readers of the heartbeat (`app.health`) and the wiring
can name these without the supervisor's machinery.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from app.bus import Subscription


class ExitCode(IntEnum):
    """Process exit codes of `tradebus` (documented in the README)."""

    OK = 0  # stopped on request and drained cleanly, or the run finished
    INTERNAL_ERROR = 1  # a bug outside any component
    CONFIG_ERROR = 2  # invalid configuration or command line; nothing was started
    COMPONENT_FAILED = 3  # a component crashed (not restartable, or out of restarts)
    DRAIN_INCOMPLETE = 4  # a stage missed its drain deadline; messages were not delivered
    FORCED = 5  # a second signal cut the drain short


class StartRefused(Exception):
    """A start hook found its environment unusable the way a bad config is (a database written
    by a newer tradebus): the daemon exits CONFIG_ERROR, not COMPONENT_FAILED, because
    restarting it cannot help; a person must act."""


# When several things go wrong, the exit code names the root cause, not the aftermath: a crash
# usually also makes the drain overrun, and a forced exit overrides everything.
EXIT_CODE_PRECEDENCE = (
    ExitCode.OK,
    ExitCode.DRAIN_INCOMPLETE,
    ExitCode.INTERNAL_ERROR,
    ExitCode.COMPONENT_FAILED,
    ExitCode.CONFIG_ERROR,  # only from a refused start (StartRefused): what a person must fix
    ExitCode.FORCED,
)


class Stage(IntEnum):
    """Pipeline position: shutdown drains in this order, start-up runs it backwards."""

    FEED = 0
    STRATEGY = 1
    RISK = 2
    EXECUTOR = 3
    RECORDER = 4
    OBSERVER = 5
    # The embedded simulator: up before anything connects to it, down after everyone left.
    VENUE = 6


class Phase(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"


class ComponentState(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    DRAINING = "draining"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True)
class ComponentSpec:
    """How the supervisor runs one component. Its handlers are found on the bus by `name`."""

    name: str
    stage: Stage
    run: Callable[[], Awaitable[None]] | None = None
    start: Callable[[], Awaitable[None]] | None = None
    restartable: bool = False
    finish_stops_daemon: bool = False  # e.g. a replay feed reaching the end of its data
    progress: Callable[[], int] | None = None  # a counter that grows while it does work


@dataclass(frozen=True)
class RuntimeOptions:
    drain_timeout_s: float = 5.0
    restart_backoff_initial_s: float = 0.5
    restart_backoff_max_s: float = 30.0
    restart_max_in_window: int = 5
    restart_window_s: float = 300.0


@dataclass
class ComponentRecord:
    spec: ComponentSpec
    subscriptions: list[Subscription[Any]]
    state: ComponentState = ComponentState.PENDING
    restarts: int = 0
    failures: int = 0
    last_error: str | None = None
    restart_times: deque[float] = field(default_factory=deque)
    delivery_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    run_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def progress(self) -> int:
        own = self.spec.progress() if self.spec.progress is not None else 0
        return own + sum(s.handled for s in self.subscriptions)

    @property
    def depth(self) -> int:
        return sum(s.depth for s in self.subscriptions)
