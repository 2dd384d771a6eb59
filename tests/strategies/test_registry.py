"""Tests of the strategy registry: the built-ins, real plugins found through the
`tradebus.strategies` entry-point group, broken plugins, and the parameter descriptions.

Plugins are real installed distributions, not mocks: `install_plugin` writes a package and a
`<dist>-<version>.dist-info` folder (METADATA + entry_points.txt) under a directory that is then
put on `sys.path`, which is all `importlib.metadata` needs to find them. Every test uses its own
import package name, so a module cached in `sys.modules` by one test never answers another.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from collections.abc import Iterator, Mapping
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from app.domain import SignalAction
from strategies.base import Strategy, StrategyParams
from strategies.ensemble import Ensemble
from strategies.momentum import Momentum
from strategies.registry import (
    ENTRY_POINT_GROUP,
    ParamInfo,
    UnknownStrategy,
    describe_params,
    load_registry,
)
from strategies.rsi_reversion import RsiReversion
from strategies.runner import StrategyRunner
from strategies.sma_cross import SmaCross
from strategies.vwap_reversion import VwapReversion
from tests.factories import kline

BUILTIN_NAMES = {"ensemble", "momentum", "rsi_reversion", "sma_cross", "vwap_reversion"}

# A third-party strategy as a plugin author would write it, against the public API only.
BREAKOUT_MODULE = '''
"""A channel breakout shipped by a third-party package."""
from collections import deque
from typing import Literal

from pydantic import Field

from strategies.base import Strategy, StrategyParams


class DemoBreakoutParams(StrategyParams):
    lookback: int = Field(default=3, ge=2, le=500, description="bars in the breakout channel")
    trigger: Literal["close", "high"] = Field(default="close", description="price that breaks out")


class DemoBreakout(Strategy[DemoBreakoutParams]):
    name = "demo_breakout"
    params_model = DemoBreakoutParams
    summary = "long when the price breaks the channel high"
    market = "any market; a test plugin"

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        if ctx.interval == "1M":
            raise ValueError("monthly bars are too coarse for a breakout")
        self.highs = deque(maxlen=params.lookback)
        self.warmup_bars = params.lookback

    def on_bar(self, bar):
        price = bar.close if self.params.trigger == "close" else bar.high
        full = len(self.highs) == self.highs.maxlen
        if full and price > max(self.highs) and self.ctx.position == 0:
            self.ctx.enter_long(f"breakout above {max(self.highs)}", tags=("demo",))
        self.highs.append(bar.high)
'''

# Modules for the broken plugins.
EXPLODING_MODULE = 'raise RuntimeError("missing licence key")\n'
NOT_A_STRATEGY_MODULE = """
def helper():
    return 42


class NotAStrategy:
    name = "demo_helper"
"""
CLASHING_MODULE = """
from strategies.base import Strategy


class MyMomentum(Strategy):
    name = "momentum"

    def on_bar(self, bar):
        pass
"""

_package_numbers = itertools.count()


def unique_package(stem: str = "tb_plugin_demo") -> str:
    """An import package name no other test uses (sys.modules outlives a test)."""
    return f"{stem}_{next(_package_numbers)}"


def install_plugin(
    site: Path,
    *,
    package: str,
    modules: Mapping[str, str],
    entry_points: Mapping[str, str],
    dist: str = "tb_plugin_demo",
    version: str = "0.1",
) -> None:
    """Install a distribution into `site` the way pip lays it out: the package, then its
    dist-info with `entry_points` (name -> "module:attribute" inside `package`)."""
    package_dir = site / package
    package_dir.mkdir(parents=True)
    (package_dir / "__init__.py").write_text("", encoding="utf-8")
    for module, source in modules.items():
        (package_dir / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
    )
    declared = "".join(f"{name} = {package}.{target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{declared}", encoding="utf-8")
    # The import system and importlib.metadata cache directory listings.
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site-packages-like directory on `sys.path`; its modules leave `sys.modules` after."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    before = set(sys.modules)
    yield directory
    for name in set(sys.modules) - before:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if module_file.startswith(str(directory)):
            del sys.modules[name]


# --- built-ins --------------------------------------------------------------------------------


def test_builtins_are_registered_with_source_builtin() -> None:
    registry = load_registry(plugins=[])

    assert set(registry.entries) == BUILTIN_NAMES
    assert registry.entries["vwap_reversion"].cls is VwapReversion
    assert registry.entries["momentum"].cls is Momentum
    assert registry.entries["sma_cross"].cls is SmaCross
    assert registry.entries["rsi_reversion"].cls is RsiReversion
    assert registry.entries["ensemble"].cls is Ensemble
    assert {entry.source for entry in registry.entries.values()} == {"builtin"}
    assert registry.problems == {}
    assert registry.get("momentum") is Momentum


def test_builtins_are_present_whatever_is_installed() -> None:
    registry = load_registry()  # the real environment's entry points

    assert registry.get("vwap_reversion") is VwapReversion
    assert registry.entries["momentum"].source == "builtin"


def test_unknown_name_lists_the_known_ones() -> None:
    registry = load_registry(plugins=[])

    with pytest.raises(UnknownStrategy) as info:
        registry.get("mean_reversion")

    assert str(info.value) == (
        "no strategy named 'mean_reversion' "
        "(known: ensemble, momentum, rsi_reversion, sma_cross, vwap_reversion)"
    )
    assert isinstance(info.value, KeyError)  # callers may treat it as a failed lookup


# --- real plugins -----------------------------------------------------------------------------


def test_installed_plugin_is_found_through_its_entry_point(site: Path) -> None:
    package = unique_package()
    install_plugin(
        site,
        package=package,
        modules={"breakout": BREAKOUT_MODULE},
        entry_points={"demo_breakout": "breakout:DemoBreakout"},
    )

    registry = load_registry()

    entry = registry.entries["demo_breakout"]
    assert entry.source == "tb_plugin_demo 0.1"
    assert entry.cls.__module__ == f"{package}.breakout"
    assert issubclass(entry.cls, Strategy)
    assert registry.get("demo_breakout") is entry.cls
    assert registry.problems == {}
    # The built-ins are still there, still built-in.
    assert registry.entries["momentum"].cls is Momentum
    assert registry.entries["vwap_reversion"].source == "builtin"


def test_plugins_given_explicitly_are_named_by_their_target(site: Path) -> None:
    package = unique_package()
    install_plugin(
        site,
        package=package,
        modules={"breakout": BREAKOUT_MODULE},
        entry_points={},  # not declared: only the explicit entry point below exists
    )
    target = f"{package}.breakout:DemoBreakout"
    point = EntryPoint(name="demo_breakout", value=target, group=ENTRY_POINT_GROUP)

    registry = load_registry(plugins=[point])

    # No distribution behind a hand-made entry point: its target stands in as the source.
    assert registry.entries["demo_breakout"].source == target
    assert set(registry.entries) == {"demo_breakout", *BUILTIN_NAMES}


@pytest.mark.parametrize(
    ("entry_name", "target", "modules", "reason"),
    [
        pytest.param(
            "demo_exploding",
            "exploding:Strategy",
            {"exploding": EXPLODING_MODULE},
            "cannot load {package}.exploding:Strategy: RuntimeError: missing licence key",
            id="raises-on-import",
        ),
        pytest.param(
            "demo_missing",
            "absent:Thing",
            {},
            "cannot load {package}.absent:Thing: ModuleNotFoundError: "
            "No module named '{package}.absent'",
            id="module-missing",
        ),
        pytest.param(
            "demo_helper",
            "helpers:helper",
            {"helpers": NOT_A_STRATEGY_MODULE},
            "is not a tradebus Strategy subclass",
            id="a-function",
        ),
        pytest.param(
            "demo_helper",
            "helpers:NotAStrategy",
            {"helpers": NOT_A_STRATEGY_MODULE},
            "is not a tradebus Strategy subclass",
            id="a-class-not-a-strategy",
        ),
        pytest.param(
            "breakout_v2",
            "breakout:DemoBreakout",
            {"breakout": BREAKOUT_MODULE},
            "entry point is named 'breakout_v2' but the class says name = 'demo_breakout'",
            id="name-mismatch",
        ),
    ],
)
def test_broken_plugin_is_reported_not_registered(
    site: Path, entry_name: str, target: str, modules: dict[str, str], reason: str
) -> None:
    package = unique_package()
    install_plugin(site, package=package, modules=modules, entry_points={entry_name: target})

    registry = load_registry()

    expected = reason.format(package=package)
    assert registry.problems == {entry_name: expected}
    assert entry_name not in registry.entries
    assert set(registry.entries) == BUILTIN_NAMES
    with pytest.raises(UnknownStrategy) as info:
        registry.get(entry_name)
    assert str(info.value) == f"strategy {entry_name!r} is installed but broken: {expected}"


def test_plugin_cannot_replace_a_builtin(site: Path) -> None:
    install_plugin(
        site,
        package=unique_package(),
        modules={"clash": CLASHING_MODULE},
        entry_points={"momentum": "clash:MyMomentum"},
    )

    registry = load_registry()

    assert registry.problems == {"momentum": "name already taken by builtin Momentum"}
    assert registry.entries["momentum"].cls is Momentum
    assert registry.entries["momentum"].source == "builtin"
    assert registry.get("momentum") is Momentum


def test_broken_plugins_do_not_hide_a_good_one_of_the_same_package(site: Path) -> None:
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
            "demo_exploding": "exploding:Strategy",
            "demo_breakout": "breakout:DemoBreakout",
            "momentum": "clash:MyMomentum",
        },
    )

    registry = load_registry()

    assert registry.entries["demo_breakout"].source == "tb_plugin_demo 0.1"
    assert sorted(registry.problems) == ["demo_exploding", "momentum"]
    assert registry.entries["momentum"].cls is Momentum


# --- parameter descriptions -------------------------------------------------------------------


def params_by_name(cls: type[Strategy[Any]]) -> dict[str, ParamInfo]:
    return {param.name: param for param in describe_params(cls)}


def test_describe_params_of_momentum() -> None:
    params = params_by_name(Momentum)

    assert list(params) == list(Momentum.params_model.model_fields)  # declaration order
    assert params["fast"] == ParamInfo("fast", "int", "20", ">= 1", "fast EMA period in bars")
    assert params["slow"] == ParamInfo("slow", "int", "50", ">= 2", "slow EMA period in bars")
    assert params["require_breakout"] == ParamInfo(
        "require_breakout",
        "bool",
        "True",
        "",
        "need a channel breakout, not just the EMA alignment",
    )
    assert params["full_confidence_pct"].type == "float"
    assert params["full_confidence_pct"].default == "1.0"
    assert params["full_confidence_pct"].constraints == "> 0"


def test_describe_params_of_vwap_reversion() -> None:
    params = params_by_name(VwapReversion)

    assert params["band_mult"] == ParamInfo(
        "band_mult", "float", "2.0", "> 0", "entry band width in sigma from VWAP"
    )
    assert params["adx_period"].constraints == ">= 2, <= 200"
    assert params["adx_max"].constraints == "> 0, <= 100"
    assert params["min_band_bps"].constraints == ">= 0"
    assert params["allow_short"].default == "True"


@pytest.mark.parametrize("cls", [Momentum, VwapReversion], ids=lambda cls: cls.name)
def test_every_builtin_parameter_is_documented(cls: type[Strategy[Any]]) -> None:
    for param in describe_params(cls):
        assert param.type, param
        assert param.default != "required", f"{cls.name}.{param.name} needs a default"
        assert param.description, f"{cls.name}.{param.name} has no description"


class _OddParams(StrategyParams):
    window: int = Field(ge=1, multiple_of=2)
    side: Literal["long", "short"] = "long"
    cap: float | None = None
    ratio: float = Field(default=0.5, gt=0, lt=1)


class _Odd(Strategy[_OddParams]):
    name = "odd"
    params_model = _OddParams


def test_describe_params_renders_required_literal_optional_and_bounds() -> None:
    assert describe_params(_Odd) == [
        ParamInfo("window", "int", "required", ">= 1, multiple of 2", ""),
        ParamInfo("side", "'long' | 'short'", "'long'", "", ""),
        ParamInfo("cap", "float | None", "None", "", ""),
        ParamInfo("ratio", "float", "0.5", "> 0, < 1", ""),
    ]


def test_describe_params_of_a_plugin(site: Path) -> None:
    install_plugin(
        site,
        package=unique_package(),
        modules={"breakout": BREAKOUT_MODULE},
        entry_points={"demo_breakout": "breakout:DemoBreakout"},
    )
    cls = load_registry().get("demo_breakout")

    assert describe_params(cls) == [
        ParamInfo("lookback", "int", "3", ">= 2, <= 500", "bars in the breakout channel"),
        ParamInfo("trigger", "'close' | 'high'", "'close'", "", "price that breaks out"),
    ]


# --- a plugin runs like a built-in ------------------------------------------------------------


def test_plugin_strategy_runs_and_signals(site: Path) -> None:
    install_plugin(
        site,
        package=unique_package(),
        modules={"breakout": BREAKOUT_MODULE},
        entry_points={"demo_breakout": "breakout:DemoBreakout"},
    )
    cls = load_registry().get("demo_breakout")
    runner = StrategyRunner(
        cls, cls.params_model(), instance="demo", symbol="BTCUSDT", interval="1m"
    )
    minute = 60_000

    quiet = [runner.on_kline(kline(open_time_ms=i * minute, close="100")) for i in range(3)]
    breakout = runner.on_kline(kline(open_time_ms=3 * minute, close="101"))

    assert quiet == [(), (), ()]
    assert len(breakout) == 1
    signal = breakout[0]
    assert signal.strategy == "demo"
    assert signal.symbol == "BTCUSDT"
    assert signal.action is SignalAction.ENTER_LONG
    assert signal.ts_ms == 3 * minute + 59_999  # the bar's close time, not a wall clock
    assert signal.reason == f"breakout above {Decimal('100')}"
    assert signal.tags == ("demo",)
    assert runner.stats.bars == 4
    assert runner.stats.signals == 1
    assert not runner.disabled
