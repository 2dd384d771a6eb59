"""The configuration schema: one frozen ``Settings`` root and one frozen section per concern.

Each component receives only its own section (``settings.health``, ``settings.exchange``, ...),
never the root. Every model is frozen and forbids unknown keys, so a typo in a config file is an
error instead of a silently ignored value.

Where values come from is decided by ``config.loader``: ``Settings()`` built directly uses only
its keyword arguments and the defaults (it never reads ``os.environ``), which keeps tests and
tools hermetic. ``load_settings`` installs the full source chain through ``use_source_plan``.

Cross-field validators raise ``SettingsIssues``, which carries the dotted field each problem is
about, so the loader can report ``exchange.api_key`` rather than the section or the root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.domain.enums import Mode
from config.database import DatabaseSettings
from config.exchange import ExchangeSettings
from config.executor import ExecutorSettings
from config.fields import SECTION_CONFIG, OptionalPath, OptionalSecret, SettingsIssues, upper
from config.risk import RiskSettings
from config.sim import SimSettings
from config.strategies import StrategiesSettings

__all__ = [
    "AlertSettings",
    "BusSettings",
    "ExchangeSettings",
    "HealthSettings",
    "LoggingSettings",
    "RuntimeSettings",
    "Settings",
    "SettingsIssues",
    "SourcePlan",
    "StrategiesSettings",
    "use_source_plan",
]

InstanceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class RuntimeSettings(BaseModel):
    """Supervisor and shutdown behaviour (``app.runtime``)."""

    model_config = SECTION_CONFIG

    drain_timeout_s: float = Field(default=5.0, gt=0)
    restart_backoff_initial_s: float = Field(default=0.5, gt=0)
    restart_backoff_max_s: float = Field(default=30.0, gt=0)
    restart_max_in_window: int = Field(default=5, ge=1)
    restart_window_s: float = Field(default=300.0, gt=0)
    # `tradebus halt|resume|flatten` reach the daemon through this Unix socket (mode 0600);
    # unset: no control socket (commands then only arrive on `system.control`).
    control_socket: OptionalPath = Path("status/control.sock")
    # How long the control server waits for every component to confirm a command.
    control_ack_timeout_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _backoff_bounds(self) -> RuntimeSettings:
        if self.restart_backoff_max_s < self.restart_backoff_initial_s:
            raise SettingsIssues(
                (("restart_backoff_max_s", "must be at least restart_backoff_initial_s"),)
            )
        return self


class BusSettings(BaseModel):
    """Default queue bounds for the channels (``app.bus``)."""

    model_config = SECTION_CONFIG

    default_capacity: int = Field(default=1024, ge=1)
    market_capacity: int = Field(default=4096, ge=1)
    order_capacity: int = Field(default=1024, ge=1)


class LoggingSettings(BaseModel):
    """structlog output (``app.logging``)."""

    model_config = SECTION_CONFIG

    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(upper)] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"
    # An empty string disables file logging: TOML cannot express None.
    file: OptionalPath = Path("logs/tradebus.log")
    file_max_bytes: int = Field(default=10 * 1024 * 1024, ge=64 * 1024)
    file_backups: int = Field(default=5, ge=0)


class HealthSettings(BaseModel):
    """Heartbeat file, stall detection and event-loop lag (``app.health``)."""

    model_config = SECTION_CONFIG

    heartbeat_path: Path = Path("status/heartbeat.json")
    interval_s: float = Field(default=5.0, gt=0)
    stale_after_s: float = Field(default=20.0, gt=0)
    stall_after_s: float = Field(default=60.0, gt=0)
    loop_lag_sample_s: float = Field(default=0.25, gt=0)
    loop_lag_window_s: float = Field(default=60.0, gt=0)
    loop_lag_p99_max_ms: float = Field(default=250.0, gt=0)
    systemd_notify: bool = True

    @model_validator(mode="after")
    def _ordering(self) -> HealthSettings:
        issues: list[tuple[str, str]] = []
        if self.stale_after_s <= self.interval_s:
            issues.append(
                (
                    "stale_after_s",
                    "must be greater than interval_s, otherwise every heartbeat is already "
                    "stale when the next one is due",
                )
            )
        if self.loop_lag_window_s <= self.loop_lag_sample_s:
            issues.append(
                ("loop_lag_window_s", "must be greater than loop_lag_sample_s to hold samples")
            )
        if issues:
            raise SettingsIssues(tuple(issues))
        return self


class AlertSettings(BaseModel):
    """Where operator alerts go (``app.alerts``)."""

    model_config = SECTION_CONFIG

    slack_webhook_url: OptionalSecret = None
    min_severity: Literal["info", "warning", "critical"] = "warning"


# Builds the source chain for one load; installed by the loader, read by
# ``settings_customise_sources``. A ContextVar keeps concurrent loads (tests, threads) apart.
SourcePlan = Callable[
    [type[BaseSettings], PydanticBaseSettingsSource], tuple[PydanticBaseSettingsSource, ...]
]
_source_plan: ContextVar[SourcePlan | None] = ContextVar("tradebus_source_plan", default=None)


@contextmanager
def use_source_plan(plan: SourcePlan) -> Iterator[None]:
    """Make ``Settings(...)`` built inside the block read the sources chosen by ``plan``."""
    token = _source_plan.set(plan)
    try:
        yield
    finally:
        _source_plan.reset(token)


class Settings(BaseSettings):
    """The root. Built by ``config.loader.load_settings``; components get one section each."""

    model_config = SettingsConfigDict(
        env_prefix="TRADEBUS_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    mode: Mode = Mode.PAPER
    instance_name: InstanceName = "tradebus"
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    strategies: StrategiesSettings = Field(default_factory=StrategiesSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The stock env/dotenv/secrets sources read os.environ and the working directory
        # implicitly; they are replaced by the loader's explicit ones, or dropped.
        plan = _source_plan.get()
        if plan is None:
            return (init_settings,)
        return plan(settings_cls, init_settings)

    @model_validator(mode="after")
    def _strategies_use_streamed_data(self) -> Settings:
        exchange = self.exchange
        issues: list[tuple[str, str]] = []
        for index, run in enumerate(self.strategies.run):
            if not run.enabled:
                continue  # parked: checked when it is enabled again
            for position, symbol in enumerate(run.symbols or ()):
                if symbol not in exchange.symbols:
                    issues.append(
                        (
                            f"strategies.run.{index}.symbols.{position}",
                            f"{symbol} is not in exchange.symbols, so no data would reach it",
                        )
                    )
            if run.interval is not None and run.interval not in exchange.kline_intervals:
                issues.append(
                    (
                        f"strategies.run.{index}.interval",
                        f"{run.interval} is not in exchange.kline_intervals "
                        f"{list(exchange.kline_intervals)}",
                    )
                )
        if issues:
            raise SettingsIssues(tuple(issues))
        return self

    @model_validator(mode="after")
    def _live_needs_a_real_venue(self) -> Settings:
        if self.mode != Mode.LIVE:
            return self
        issues: list[tuple[str, str]] = []
        if self.exchange.venue != "binance":
            issues.append(
                (
                    "exchange.venue",
                    "mode 'live' sends real orders and needs venue 'binance'; "
                    "'sim' is the simulator (use mode 'paper' with it)",
                )
            )
        if self.exchange.api_key is None:
            issues.append(("exchange.api_key", "required when mode is 'live'"))
        if not self.exchange.has_signing_key:
            issues.append(
                (
                    "exchange.api_secret",
                    "required when mode is 'live' (or private_key_file for ed25519/rsa keys)",
                )
            )
        if issues:
            raise SettingsIssues(tuple(issues))
        return self
