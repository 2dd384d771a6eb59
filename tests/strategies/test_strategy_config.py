"""Tests of strategy configuration: the ``[strategies]`` section and its ``[[strategies.run]]``
tables, the settings root's check that strategies only use streamed data, and
`resolve_strategy_runs`, which validates each run against the strategy registry.

Settings are loaded hermetically from a TOML file in `tmp_path` (explicit empty `env`, no
`.env`), the way a user's config reaches the daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, ValidationError, model_validator

from app.strategy_wiring import ResolvedRun, StrategyConfigError, resolve_strategy_runs
from config.loader import ConfigError, load_settings
from config.settings import Settings
from config.strategies import StrategiesSettings, StrategyRunSettings
from strategies.base import Strategy, StrategyParams
from strategies.context import StrategyContext
from strategies.momentum import Momentum, MomentumParams
from strategies.registry import Registry, RegistryEntry, load_registry
from strategies.vwap_reversion import VwapReversion

EXCHANGE = '[exchange]\nsymbols = ["BTCUSDT", "ETHUSDT"]\nkline_intervals = ["5m", "1m", "1d"]\n'


def load(tmp_path: Path, text: str, *, exchange: str = EXCHANGE) -> Settings:
    path = tmp_path / "tradebus.toml"
    path.write_text(exchange + text, encoding="utf-8")
    return load_settings(path, env={}, dotenv_file=None)


def load_problems(tmp_path: Path, text: str, *, exchange: str = EXCHANGE) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, exchange=exchange)
    return {problem.field: problem.reason for problem in info.value.problems}


def resolve_problems(settings: Settings, registry: Registry | None = None) -> dict[str, str]:
    with pytest.raises(StrategyConfigError) as info:
        resolve_strategy_runs(settings, registry)
    return dict(info.value.problems)


def run_table(strategy: str, **keys: str) -> str:
    lines = [f'strategy = "{strategy}"', *(f"{key} = {value}" for key, value in keys.items())]
    return "\n[[strategies.run]]\n" + "\n".join(lines) + "\n"


# --- the [strategies] section -----------------------------------------------------------------


def test_no_run_tables_means_no_strategies(tmp_path: Path) -> None:
    settings = load(tmp_path, "")

    assert settings.strategies == StrategiesSettings()
    assert settings.strategies.run == ()
    assert settings.strategies.history == "exchange"
    assert settings.strategies.snapshot_file == Path("status/strategy_state.json")
    assert resolve_strategy_runs(settings) == []


def test_run_table_defaults(tmp_path: Path) -> None:
    (run,) = load(tmp_path, run_table("momentum")).strategies.run

    assert run == StrategyRunSettings(strategy="momentum")
    assert run.name is None
    assert run.instance == "momentum"  # the instance name defaults to the strategy name
    assert run.symbols is None  # all of exchange.symbols, resolved later
    assert run.interval is None
    assert run.params == {}
    assert run.enabled


def test_symbols_are_upper_cased_and_may_be_a_comma_list(tmp_path: Path) -> None:
    (run,) = load(tmp_path, run_table("momentum", symbols='"ethusdt, btcusdt"')).strategies.run
    assert run.symbols == ("ETHUSDT", "BTCUSDT")


def test_section_and_run_tables_are_frozen(tmp_path: Path) -> None:
    settings = load(tmp_path, run_table("momentum"))
    with pytest.raises(ValidationError):
        settings.strategies.run[0].enabled = False
    with pytest.raises(ValidationError):
        settings.strategies.history = "none"


def test_snapshots_can_be_turned_off_and_the_import_file_emptied(tmp_path: Path) -> None:
    text = '[strategies]\nsnapshots = false\nsnapshot_file = ""\nhistory = "none"\n'
    settings = load(tmp_path, text)
    assert settings.strategies.snapshots is False
    assert settings.strategies.snapshot_file is None
    assert settings.strategies.history == "none"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[strategies]\nhistory = "binance"\n', "strategies.history"),
        ("[strategies]\nsnapshot_interval_s = 0\n", "strategies.snapshot_interval_s"),
        ("[strategies]\nmax_catch_up_bars = 0\n", "strategies.max_catch_up_bars"),
        ("[strategies]\nruns = []\n", "strategies.runs"),
        (run_table("momentum", nope="1"), "strategies.run.0.nope"),
        (run_table("momentum", symbols="[]"), "strategies.run.0.symbols"),
        (run_table("momentum", symbols='["BTCUSDT", "BTC/USDT"]'), "strategies.run.0.symbols.1"),
        (run_table("momentum", interval='"7m"'), "strategies.run.0.interval"),
        (run_table("momentum", enabled='"maybe"'), "strategies.run.0.enabled"),
        (run_table("momentum", params='"fast=5"'), "strategies.run.0.params"),
        ("\n[[strategies.run]]\nname = 'a'\n", "strategies.run.0.strategy"),
    ],
)
def test_malformed_section_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    assert list(load_problems(tmp_path, text)) == [field]


def test_duplicate_symbols_in_one_run_are_refused(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, run_table("momentum", symbols='["BTCUSDT", "btcusdt"]'))
    assert problems == {"strategies.run.0.symbols": "contains duplicates"}


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({"name": '"vwap.majors"'}, "strategies.run.0.name"),
        ({"name": '"signal>all"'}, "strategies.run.0.name"),
        ({"name": '"has space"'}, "strategies.run.0.name"),
        ({"name": '""'}, "strategies.run.0.name"),
        ({"name": '"' + "x" * 49 + '"'}, "strategies.run.0.name"),
    ],
)
def test_instance_names_must_be_one_channel_token(
    tmp_path: Path, keys: dict[str, str], field: str
) -> None:
    # The instance name becomes the channel `signal.<name>`: a dot would split it.
    assert list(load_problems(tmp_path, run_table("momentum", **keys))) == [field]


def test_strategy_names_with_dots_are_refused(tmp_path: Path) -> None:
    assert list(load_problems(tmp_path, run_table("my.strategy"))) == ["strategies.run.0.strategy"]


def test_longest_allowed_instance_name(tmp_path: Path) -> None:
    name = "Trend_BTC-" + "x" * 38
    (run,) = load(tmp_path, run_table("momentum", name=f'"{name}"')).strategies.run
    assert run.instance == name


def test_duplicate_instance_names_are_refused(tmp_path: Path) -> None:
    text = (
        run_table("momentum")
        + run_table("momentum", name='"slow_trend"')
        + run_table("momentum")  # instance "momentum" again
        + run_table("vwap_reversion", name='"slow_trend"')
    )
    problems = load_problems(tmp_path, text)

    assert problems == {
        "strategies.run.2.name": "instance name 'momentum' is already used by run.0 "
        "(set a distinct `name`)",
        "strategies.run.3.name": "instance name 'slow_trend' is already used by run.1 "
        "(set a distinct `name`)",
    }


def test_same_strategy_twice_with_distinct_names_is_fine(tmp_path: Path) -> None:
    text = run_table("momentum", name='"fast_trend"') + run_table("momentum", name='"slow_trend"')
    runs = load(tmp_path, text).strategies.run
    assert [run.instance for run in runs] == ["fast_trend", "slow_trend"]


# --- cross-check against [exchange] -----------------------------------------------------------


def test_symbols_must_be_streamed(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path, run_table("momentum", symbols='["BTCUSDT", "XRPUSDT", "ETHUSDT", "SOLUSDT"]')
    )

    assert problems == {
        "strategies.run.0.symbols.1": "XRPUSDT is not in exchange.symbols, "
        "so no data would reach it",
        "strategies.run.0.symbols.3": "SOLUSDT is not in exchange.symbols, "
        "so no data would reach it",
    }


def test_interval_must_be_streamed(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, run_table("momentum", interval='"15m"'))
    assert problems == {
        "strategies.run.0.interval": "15m is not in exchange.kline_intervals ['5m', '1m', '1d']"
    }


def test_cross_check_reports_every_run_at_once(tmp_path: Path) -> None:
    text = (
        run_table("momentum", symbols='["XRPUSDT"]')
        + run_table("vwap_reversion", interval='"1m"')
        + run_table("momentum", name='"hourly"', interval='"1h"')
    )
    assert list(load_problems(tmp_path, text)) == [
        "strategies.run.0.symbols.0",
        "strategies.run.2.interval",
    ]


def test_cross_check_follows_overridden_exchange_settings(tmp_path: Path) -> None:
    path = tmp_path / "tradebus.toml"
    path.write_text(EXCHANGE + run_table("momentum", symbols='["ETHUSDT"]'), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={}, dotenv_file=None, overrides={"exchange.symbols": "BTCUSDT"})
    assert [problem.field for problem in info.value.problems] == ["strategies.run.0.symbols.0"]


# --- resolve_strategy_runs --------------------------------------------------------------------


def test_resolves_a_run_with_its_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, run_table("momentum"))

    (run,) = resolve_strategy_runs(settings)

    assert run == ResolvedRun(
        instance="momentum",
        strategy_cls=Momentum,
        params=MomentumParams(),
        symbols=("BTCUSDT", "ETHUSDT"),  # every streamed symbol
        interval="5m",  # the first of exchange.kline_intervals
    )


def test_resolves_explicit_name_symbols_interval_and_params(tmp_path: Path) -> None:
    text = run_table(
        "momentum",
        name='"trend_eth"',
        symbols='["ETHUSDT"]',
        interval='"1m"',
        params="{ fast = 5, slow = 15, require_breakout = false }",
    )

    (run,) = resolve_strategy_runs(load(tmp_path, text))

    assert run.instance == "trend_eth"
    assert run.symbols == ("ETHUSDT",)
    assert run.interval == "1m"
    assert run.params == MomentumParams(fast=5, slow=15, require_breakout=False)
    assert isinstance(run.params, MomentumParams)


def test_disabled_runs_are_skipped_even_when_invalid(tmp_path: Path) -> None:
    text = (
        run_table("momentum", enabled="false", params="{ fast = 50, slow = 20 }")
        + run_table("no_such_strategy", enabled="false")
        + run_table("vwap_reversion", interval='"1m"')
    )
    runs = resolve_strategy_runs(load(tmp_path, text))
    assert [(run.instance, run.strategy_cls) for run in runs] == [("vwap_reversion", VwapReversion)]


def test_unknown_strategy_names_the_known_ones(tmp_path: Path) -> None:
    problems = resolve_problems(load(tmp_path, run_table("vwap")), load_registry(plugins=[]))
    assert problems == {
        "strategies.run.0.strategy": "no strategy named 'vwap' (known: ensemble, momentum, "
        "rsi_reversion, sma_cross, vwap_reversion)"
    }


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ("{ nope = 1 }", "strategies.run.0.params.nope", "unknown parameter"),
        (
            "{ fast = 0 }",
            "strategies.run.0.params.fast",
            "Input should be greater than or equal to 1",
        ),
        (
            '{ slow = "long" }',
            "strategies.run.0.params.slow",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "{ full_confidence_pct = -1.0 }",
            "strategies.run.0.params.full_confidence_pct",
            "Input should be greater than 0",
        ),
    ],
)
def test_bad_parameter_names_the_parameter(
    tmp_path: Path, params: str, field: str, reason: str
) -> None:
    settings = load(tmp_path, run_table("momentum", params=params))
    assert resolve_problems(settings) == {field: reason}


def test_every_bad_parameter_of_a_run_is_listed(tmp_path: Path) -> None:
    settings = load(tmp_path, run_table("momentum", params="{ fast = 0, slow = 1, nope = 2 }"))
    assert list(resolve_problems(settings)) == [
        "strategies.run.0.params.fast",
        "strategies.run.0.params.slow",
        "strategies.run.0.params.nope",
    ]


@pytest.mark.parametrize(
    ("strategy", "keys", "reason"),
    [
        (
            "momentum",
            {"params": "{ fast = 30, slow = 30 }"},
            "momentum: fast must be shorter than slow",
        ),
        (
            "vwap_reversion",
            {"interval": '"1d"'},
            "vwap_reversion: vwap_reversion needs intraday bars, not 1d",
        ),
        (
            "vwap_reversion",
            {"interval": '"1m"', "params": "{ adx_max = 40.0, adx_exit = 30.0 }"},
            "vwap_reversion: adx_exit must be at least adx_max",
        ),
    ],
)
def test_strategy_refusing_its_configuration_names_the_run(
    tmp_path: Path, strategy: str, keys: dict[str, str], reason: str
) -> None:
    settings = load(tmp_path, run_table(strategy, **keys))
    assert resolve_problems(settings) == {"strategies.run.0": reason}


def test_default_interval_is_what_the_strategy_is_checked_against(tmp_path: Path) -> None:
    daily_first = '[exchange]\nsymbols = ["BTCUSDT"]\nkline_intervals = ["1d", "1m"]\n'
    settings = load(tmp_path, run_table("vwap_reversion"), exchange=daily_first)
    assert resolve_problems(settings) == {
        "strategies.run.0": "vwap_reversion: vwap_reversion needs intraday bars, not 1d"
    }


def test_all_problems_are_reported_at_once_with_their_run_index(tmp_path: Path) -> None:
    text = (
        run_table("momentum", name='"good"')
        + run_table("no_such_strategy")
        + run_table("momentum", name='"off"', enabled="false", params="{ nope = 1 }")
        + run_table("momentum", name='"typo"', params="{ fsat = 5 }")
        + run_table("momentum", name='"inverted"', params="{ fast = 60 }")
    )

    with pytest.raises(StrategyConfigError) as info:
        resolve_strategy_runs(load(tmp_path, text))

    error = info.value
    assert [field for field, _ in error.problems] == [
        "strategies.run.1.strategy",
        "strategies.run.3.params.fsat",
        "strategies.run.4",
    ]
    assert str(error) == "; ".join(f"{field}: {reason}" for field, reason in error.problems)


# --- resolve against a given registry ---------------------------------------------------------


class _WindowParams(StrategyParams):
    short: int = Field(default=2, ge=1)
    long: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> _WindowParams:
        if self.short >= self.long:
            raise ValueError("short must be below long")
        return self


class _Window(Strategy[_WindowParams]):
    name = "window"
    params_model = _WindowParams

    def __init__(self, params: _WindowParams, ctx: StrategyContext) -> None:
        super().__init__(params, ctx)


def registry_of(*classes: type[Strategy[Any]], problems: dict[str, str] | None = None) -> Registry:
    entries = {cls.name: RegistryEntry(cls.name, cls, "test") for cls in classes}
    return Registry(entries, problems or {})


def test_resolves_against_the_registry_it_is_given(tmp_path: Path) -> None:
    settings = load(tmp_path, run_table("window", params="{ long = 9 }"))

    (run,) = resolve_strategy_runs(settings, registry_of(_Window))

    assert run.strategy_cls is _Window
    assert run.params == _WindowParams(long=9)
    # The built-ins are not in that registry.
    assert list(resolve_problems(load(tmp_path, run_table("momentum")), registry_of(_Window))) == [
        "strategies.run.0.strategy"
    ]


def test_params_model_level_error_is_reported_on_params(tmp_path: Path) -> None:
    settings = load(tmp_path, run_table("window", params="{ short = 5 }"))
    assert resolve_problems(settings, registry_of(_Window)) == {
        "strategies.run.0.params": "Value error, short must be below long"
    }


def test_broken_plugin_reason_reaches_the_config_error(tmp_path: Path) -> None:
    registry = registry_of(problems={"breakout": "cannot load pkg.breakout:B: ImportError: x"})
    settings = load(tmp_path, run_table("breakout"))

    assert resolve_problems(settings, registry) == {
        "strategies.run.0.strategy": "strategy 'breakout' is installed but broken: "
        "cannot load pkg.breakout:B: ImportError: x"
    }
