"""Tests of `tradebus strategies list` and of `tradebus config check` on `[[strategies.run]]`.

Most run the real command in-process (`app.cli.main` with captured stdout/stderr) from
`tmp_path` with every `TRADEBUS_*` variable removed, so no config, `.env` or variable of the
machine leaks in. One test runs the installed console script as a subprocess, to show that a
plugin reaches it through nothing but `PYTHONPATH` and its entry-point metadata.

Plugins are real distributions written into a directory on `sys.path` (see
`tests/strategies/test_registry.py`, whose installer is reused here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from config.loader import load_settings
from tests.strategies.test_registry import (
    BREAKOUT_MODULE,
    CLASHING_MODULE,
    EXPLODING_MODULE,
    install_plugin,
    unique_package,
)

RunTradebus = Callable[..., subprocess.CompletedProcess[str]]

EXCHANGE = '[exchange]\nsymbols = ["BTCUSDT", "ETHUSDT"]\nkline_intervals = ["5m", "1m"]\n'


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


Tradebus = Callable[..., Outcome]


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config/tradebus.toml or .env here
    for name in list(os.environ):
        if name.upper().startswith("TRADEBUS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def tradebus(capsys: pytest.CaptureFixture[str]) -> Tradebus:
    """Run `tradebus <args>` in-process; return its exit code and what it printed."""

    def run(*args: str) -> Outcome:
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(int(code), captured.out, captured.err)

    return run


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site-packages-like directory on `sys.path` (also for child processes)."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    before = set(sys.modules)
    yield directory
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(directory)):
            del sys.modules[name]


def install_demo_plugins(site: Path) -> str:
    """One good plugin and two broken ones in one distribution; returns the package name."""
    package = unique_package()
    install_plugin(
        site,
        package=package,
        modules={
            "breakout": BREAKOUT_MODULE,
            "exploding": EXPLODING_MODULE,
            "clash": CLASHING_MODULE,
        },
        entry_points={
            "demo_breakout": "breakout:DemoBreakout",
            "demo_exploding": "exploding:Strategy",
            "momentum": "clash:MyMomentum",
        },
    )
    return package


def squeezed(line: str) -> str:
    """A line with its column padding collapsed to single spaces."""
    return " ".join(line.split())


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "strategies.toml"
    path.write_text(EXCHANGE + text, encoding="utf-8")
    return str(path)


def run_table(strategy: str, **keys: str) -> str:
    lines = [f'strategy = "{strategy}"', *(f"{key} = {value}" for key, value in keys.items())]
    return "\n[[strategies.run]]\n" + "\n".join(lines) + "\n"


# --- strategies list --------------------------------------------------------------------------


def test_list_shows_the_builtins_with_parameters_and_market(tradebus: Tradebus) -> None:
    result = tradebus("strategies", "list")

    assert result.code == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert "momentum  (builtin)" in lines
    assert "vwap_reversion  (builtin)" in lines
    momentum = lines.index("momentum  (builtin)")
    assert lines[momentum + 1] == (
        "  trend following: fast/slow EMA alignment plus a channel breakout"
    )
    assert lines[momentum + 2] == (
        "  market: trending markets on 15m-4h bars; loses to whipsaw in ranges"
    )
    assert lines[momentum + 3] == "  parameters:"
    squeezed_lines = [squeezed(line) for line in lines]
    assert "fast int = 20 [>= 1] fast EMA period in bars" in squeezed_lines
    assert (
        "require_breakout bool = True need a channel breakout, not just the EMA alignment"
        in squeezed_lines
    )
    assert "adx_period int = 14 [>= 2, <= 200] ADX lookback in bars" in squeezed_lines
    assert any(line.startswith("  market: liquid pairs on 1m-15m bars") for line in lines)
    assert not any(line.startswith("unusable plugin") for line in lines)


def test_list_json_parses_and_carries_parameter_defaults(tradebus: Tradebus) -> None:
    result = tradebus("strategies", "list", "--json")

    assert result.code == 0
    document = json.loads(result.stdout)
    strategies = {strategy["name"]: strategy for strategy in document["strategies"]}
    assert {"momentum", "vwap_reversion"} <= set(strategies)
    momentum = strategies["momentum"]
    assert momentum["source"] == "builtin"
    assert momentum["market"].startswith("trending markets")
    params = {param["name"]: param for param in momentum["params"]}
    assert params["fast"] == {
        "name": "fast",
        "type": "int",
        "default": "20",
        "constraints": ">= 1",
        "description": "fast EMA period in bars",
    }
    assert params["slow"]["default"] == "50"
    vwap_params = {param["name"]: param for param in strategies["vwap_reversion"]["params"]}
    assert vwap_params["band_mult"]["default"] == "2.0"
    assert vwap_params["band_mult"]["constraints"] == "> 0"
    assert all(param["description"] for param in vwap_params.values())
    assert isinstance(document["problems"], dict)


def test_list_shows_an_installed_plugin_and_the_broken_ones(site: Path, tradebus: Tradebus) -> None:
    package = install_demo_plugins(site)

    result = tradebus("strategies", "list")

    assert result.code == 0  # broken plugins are reported, not fatal
    lines = result.stdout.splitlines()
    assert "demo_breakout  (tb_plugin_demo 0.1)" in lines
    assert "lookback int = 3 [>= 2, <= 500] bars in the breakout channel" in [
        squeezed(line) for line in lines
    ]
    assert "momentum  (builtin)" in lines  # not replaced by the clashing plugin
    assert lines[-2:] == [
        f"unusable plugin demo_exploding: cannot load {package}.exploding:Strategy: "
        "RuntimeError: missing licence key",
        "unusable plugin momentum: name already taken by builtin Momentum",
    ]


def test_list_json_includes_plugins_and_problems(site: Path, tradebus: Tradebus) -> None:
    package = install_demo_plugins(site)

    result = tradebus("strategies", "list", "--json")

    assert result.code == 0
    document = json.loads(result.stdout)
    names = [strategy["name"] for strategy in document["strategies"]]
    assert names == sorted(names)
    breakout = next(s for s in document["strategies"] if s["name"] == "demo_breakout")
    assert breakout["source"] == "tb_plugin_demo 0.1"
    assert [param["name"] for param in breakout["params"]] == ["lookback", "trigger"]
    assert document["problems"] == {
        "demo_exploding": f"cannot load {package}.exploding:Strategy: "
        "RuntimeError: missing licence key",
        "momentum": "name already taken by builtin Momentum",
    }


def test_console_script_finds_a_plugin_on_pythonpath(
    site: Path, run_tradebus: RunTradebus, tradebus_env: dict[str, str]
) -> None:
    package = install_demo_plugins(site)
    inherited = tradebus_env.get("PYTHONPATH")
    env = {**tradebus_env, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), inherited]))}

    result = run_tradebus("strategies", "list", env=env)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "demo_breakout  (tb_plugin_demo 0.1)" in lines
    assert (
        f"unusable plugin demo_exploding: cannot load {package}.exploding:Strategy: "
        "RuntimeError: missing licence key"
    ) in lines


# --- config check -----------------------------------------------------------------------------


def test_config_check_accepts_strategy_runs_and_renders_them(
    tmp_path: Path, tradebus: Tradebus
) -> None:
    config = write_config(
        tmp_path,
        run_table(
            "momentum",
            name='"trend_btc"',
            symbols='["BTCUSDT"]',
            params="{ fast = 10, slow = 30, require_breakout = false, full_confidence_pct = 0.5 }",
        )
        + run_table("vwap_reversion", interval='"1m"', params="{ band_mult = 2.5 }")
        + run_table("momentum", name='"parked"', enabled="false", params="{ nope = 1 }"),
    )

    result = tradebus("config", "check", "--config", config)

    assert result.code == 0, result.stderr
    assert result.stdout.rstrip().endswith("# configuration is valid")
    runs = tomllib.loads(result.stdout)["strategies"]["run"]
    assert runs == [
        {
            "strategy": "momentum",
            "name": "trend_btc",
            "symbols": ["BTCUSDT"],
            "params": {
                "fast": 10,
                "slow": 30,
                "require_breakout": False,
                "full_confidence_pct": 0.5,
            },
            "enabled": True,
        },
        {
            "strategy": "vwap_reversion",
            "interval": "1m",
            "params": {"band_mult": 2.5},
            "enabled": True,
        },
        {"strategy": "momentum", "name": "parked", "params": {"nope": 1}, "enabled": False},
    ]
    # The effective configuration is itself a config that loads to the same settings.
    rendered = tmp_path / "effective.toml"
    rendered.write_text(result.stdout, encoding="utf-8")
    original = load_settings(Path(config), env={}, dotenv_file=None)
    assert load_settings(rendered, env={}, dotenv_file=None) == original


def test_config_check_accepts_a_plugin_strategy(
    site: Path, tmp_path: Path, tradebus: Tradebus
) -> None:
    install_demo_plugins(site)
    config = write_config(tmp_path, run_table("demo_breakout", params="{ lookback = 5 }"))

    result = tradebus("config", "check", "--config", config)

    assert result.code == 0, result.stderr
    (run,) = tomllib.loads(result.stdout)["strategies"]["run"]
    assert run["strategy"] == "demo_breakout"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            run_table("momentum", params="{ nope = 1 }"),
            "strategies.run.0.params.nope: unknown parameter",
            id="unknown-param",
        ),
        pytest.param(
            run_table("momentum", params="{ fast = 0 }"),
            "strategies.run.0.params.fast: Input should be greater than or equal to 1",
            id="param-out-of-range",
        ),
        pytest.param(
            run_table("vwap_reversion", params="{ adx_period = 500 }"),
            "strategies.run.0.params.adx_period: Input should be less than or equal to 200",
            id="param-above-range",
        ),
        pytest.param(
            run_table("momentum", params="{ fast = 50, slow = 20 }"),
            "strategies.run.0: momentum: fast must be shorter than slow",
            id="fast-not-below-slow",
        ),
        pytest.param(
            run_table("momentum", symbols='["BTCUSDT", "XRPUSDT"]'),
            "strategies.run.0.symbols.1: XRPUSDT is not in exchange.symbols, "
            "so no data would reach it",
            id="symbol-not-streamed",
        ),
        pytest.param(
            run_table("momentum", interval='"15m"'),
            "strategies.run.0.interval: 15m is not in exchange.kline_intervals ['5m', '1m']",
            id="interval-not-streamed",
        ),
        pytest.param(
            run_table("momentum") + run_table("momentum", symbols='["ETHUSDT"]'),
            "strategies.run.1.name: instance name 'momentum' is already used by run.0 "
            "(set a distinct `name`)",
            id="duplicate-instance",
        ),
        pytest.param(
            run_table("momentum", name='"trend.btc"'),
            "strategies.run.0.name: String should match pattern '^[A-Za-z0-9_-]{1,48}$'",
            id="dotted-instance-name",
        ),
    ],
)
def test_config_check_names_the_bad_strategy_field(
    tmp_path: Path, tradebus: Tradebus, text: str, expected: str
) -> None:
    result = tradebus("config", "check", "--config", write_config(tmp_path, text))

    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["tradebus: invalid configuration:", f"  {expected}"]


def test_config_check_names_an_unknown_strategy_and_the_known_ones(
    tmp_path: Path, tradebus: Tradebus
) -> None:
    result = tradebus("config", "check", "--config", write_config(tmp_path, run_table("vwap")))

    assert result.code == 2
    assert result.stdout == ""
    problem = result.stderr.splitlines()[1]
    assert problem.startswith("  strategies.run.0.strategy: no strategy named 'vwap' (known: ")
    assert "momentum" in problem
    assert "vwap_reversion" in problem


def test_config_check_reports_every_strategy_problem_at_once(
    tmp_path: Path, tradebus: Tradebus
) -> None:
    text = (
        run_table("momentum", name='"ok"')
        + run_table("momentm")
        + run_table("momentum", name='"typo"', params="{ nope = 1, fast = 0 }")
        + run_table("momentum", name='"inverted"', params="{ fast = 60 }")
        + run_table("vwap_reversion", enabled="false", params="{ nope = 1 }")
    )

    result = tradebus("config", "check", "--config", write_config(tmp_path, text))

    assert result.code == 2
    fields = [line.split(": ", 1)[0].strip() for line in result.stderr.splitlines()[1:]]
    assert fields == [
        "strategies.run.1.strategy",
        "strategies.run.2.params.fast",  # the model's fields first, then unknown keys
        "strategies.run.2.params.nope",
        "strategies.run.3",
    ]


def test_config_check_validates_plugin_parameters(
    site: Path, tmp_path: Path, tradebus: Tradebus
) -> None:
    install_demo_plugins(site)
    text = run_table("demo_breakout", params="{ lookback = 1 }") + run_table("demo_exploding")

    result = tradebus("config", "check", "--config", write_config(tmp_path, text))

    assert result.code == 2
    lines = result.stderr.splitlines()
    assert lines[1] == (
        "  strategies.run.0.params.lookback: Input should be greater than or equal to 2"
    )
    assert lines[2].startswith(
        "  strategies.run.1.strategy: strategy 'demo_exploding' is installed but broken: "
        "cannot load "
    )
