"""Which strategies exist: the built-in ones plus any installed package's, found through the
`tradebus.strategies` entry-point group.

A third-party package registers a strategy in its `pyproject.toml`::

    [project.entry-points."tradebus.strategies"]
    my_breakout = "my_package.breakout:Breakout"

The entry point must name a `Strategy` subclass whose `name` equals the entry-point name. A
plugin that fails to import, names something else, or clashes with a name already taken is
not silently dropped: it is listed in `Registry.problems` (and by `tradebus strategies list`),
and configuring it fails with that reason.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic.fields import FieldInfo

from strategies.base import Strategy
from strategies.ensemble import Ensemble
from strategies.momentum import Momentum
from strategies.rsi_reversion import RsiReversion
from strategies.sma_cross import SmaCross
from strategies.vwap_reversion import VwapReversion

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "ParamInfo",
    "Registry",
    "RegistryEntry",
    "UnknownStrategy",
    "describe_params",
    "load_registry",
]

ENTRY_POINT_GROUP = "tradebus.strategies"
BUILTIN: tuple[type[Strategy[Any]], ...] = (
    VwapReversion,
    Momentum,
    SmaCross,
    RsiReversion,
    Ensemble,
)


class UnknownStrategy(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    cls: type[Strategy[Any]]
    source: str  # "builtin", or "<distribution> <version>" of the installing package


@dataclass(frozen=True)
class Registry:
    entries: dict[str, RegistryEntry]
    problems: dict[str, str]  # entry-point name -> why it is unusable

    def get(self, name: str) -> type[Strategy[Any]]:
        entry = self.entries.get(name)
        if entry is not None:
            return entry.cls
        if name in self.problems:
            raise UnknownStrategy(
                f"strategy {name!r} is installed but broken: {self.problems[name]}"
            )
        known = ", ".join(sorted(self.entries)) or "none"
        raise UnknownStrategy(f"no strategy named {name!r} (known: {known})")


def load_registry(*, plugins: Iterable[EntryPoint] | None = None) -> Registry:
    """The built-ins, then every entry point of the group (or those given, for tests)."""
    entries = {cls.name: RegistryEntry(cls.name, cls, "builtin") for cls in BUILTIN}
    problems: dict[str, str] = {}
    found = entry_points(group=ENTRY_POINT_GROUP) if plugins is None else plugins
    for point in sorted(found, key=lambda p: p.name):
        source = f"{point.dist.name} {point.dist.version}" if point.dist else point.value
        try:
            loaded = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            problems[point.name] = f"cannot load {point.value}: {type(exc).__name__}: {exc}"
            continue
        reason = _unusable(point.name, loaded, entries)
        if reason is not None:
            problems[point.name] = reason
            continue
        entries[point.name] = RegistryEntry(point.name, loaded, source)
    return Registry(entries, problems)


def _unusable(name: str, loaded: object, entries: dict[str, RegistryEntry]) -> str | None:
    if not (isinstance(loaded, type) and issubclass(loaded, Strategy)):
        return "is not a tradebus Strategy subclass"
    if loaded.name != name:
        return f"entry point is named {name!r} but the class says name = {loaded.name!r}"
    if name in entries:
        return f"name already taken by {entries[name].source} {entries[name].cls.__qualname__}"
    return None


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    default: str
    constraints: str
    description: str


def describe_params(cls: type[Strategy[Any]]) -> list[ParamInfo]:
    """A strategy's parameters as a person reads them: type, default, bounds, meaning."""
    return [
        ParamInfo(
            name=name,
            type=_type_name(field.annotation),
            default="required" if field.is_required() else repr(field.get_default()),
            constraints=_constraints(field),
            description=field.description or "",
        )
        for name, field in cls.params_model.model_fields.items()
    ]


def _type_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):  # `X | None` lists NoneType
        return "None"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def _constraints(field: FieldInfo) -> str:
    symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "multiple_of": "multiple of"}
    parts: list[str] = []
    for item in field.metadata:
        for attribute, symbol in symbols.items():
            value = getattr(item, attribute, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)
