"""Load, validate and display the configuration.

Sources, highest priority first: CLI overrides (``--set``, flags) > environment (``TRADEBUS_*``,
nested with ``__``) > ``.env`` file > secrets directory > TOML file > defaults.

Secrets directory convention: one file per setting, named exactly like its environment
variable, e.g. ``TRADEBUS_EXCHANGE__API_SECRET`` (matched case-insensitively, so Docker-style
lower-case ``tradebus_exchange__api_secret`` works too); the content, stripped, is the value.

Every failure becomes a ``ConfigError`` listing ``field: reason`` problems. Reasons never carry
input values, because the offending input may be a secret; errors are raised ``from None`` so
the pydantic error (which does hold the input) is not chained into tracebacks either.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args

from dotenv import dotenv_values
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsError,
    TomlConfigSettingsSource,
)

from config.environment import tradebus_config_path, tradebus_secrets_dir
from config.settings import Settings, SettingsIssues, SourcePlan, use_source_plan

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ConfigError",
    "ConfigProblem",
    "load_settings",
    "parse_set_option",
    "render_effective",
    "secret_values",
]

DEFAULT_CONFIG_PATH = Path("config/tradebus.toml")
MASK = "**********"
ENV_PREFIX = "TRADEBUS_"
_DELIMITER = "__"
# Read by the bootstrap (which file, which secrets dir), not settings themselves.
_BOOTSTRAP_VARS = frozenset({"TRADEBUS_CONFIG", "TRADEBUS_SECRETS_DIR"})
_TEST_PREFIX = "TRADEBUS_TEST_"  # reserved for the test suite (e.g. a PostgreSQL DSN)
_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_SOURCE_ERROR_RE = re.compile(r'field "(?P<field>[^"]+)" from source "(?P<source>[^"]+)"')


@dataclass(frozen=True)
class ConfigProblem:
    field: str  # dotted path ("health.interval_s"), variable name, file path or "--config"
    reason: str  # never contains the offending value: it could be a secret


class ConfigError(Exception):
    """The configuration is unusable; ``str()`` lists every problem, one per line."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{p.field}: {p.reason}" for p in self.problems))


class _MappingEnvSource(EnvSettingsSource):
    """The stock env source, fed from an explicit mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)  # set first: the base __init__ loads the variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(self._environ)
        return {name.lower(): value for name, value in self._environ.items()}


_SOURCE_LABELS = {
    _MappingEnvSource.__name__: "environment",
    DotEnvSettingsSource.__name__: ".env file",
    NestedSecretsSettingsSource.__name__: "secrets directory",
}


def load_settings(
    config_file: Path | None = None,
    *,
    config_file_required: bool = False,
    overrides: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_file: Path | None = Path(".env"),
    secrets_dir: Path | None = None,
) -> Settings:
    """Build the validated ``Settings``; raise ``ConfigError`` listing every problem.

    ``env`` defaults to ``os.environ``. When ``config_file``/``secrets_dir`` are not given, the
    bootstrap variables ``TRADEBUS_CONFIG``/``TRADEBUS_SECRETS_DIR`` in ``env`` are honoured
    (a file named by ``TRADEBUS_CONFIG`` must exist, like one passed with ``--config``).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    toml_file = _resolve_config_file(config_file, config_file_required, environ)
    if secrets_dir is None:
        secrets_dir = tradebus_secrets_dir(environ)
    # Optional sources: absent means "not used", as documented for .env and secrets dirs.
    if dotenv_file is not None and not dotenv_file.is_file():
        dotenv_file = None
    if secrets_dir is not None and not secrets_dir.is_dir():
        secrets_dir = None

    init_kwargs, problems = _nest_overrides(overrides or {})
    plan = _source_plan(environ, dotenv_file, secrets_dir, toml_file)
    unknown: list[ConfigProblem] = []
    try:
        unknown += _unknown_names(environ, "unknown environment variable")
        if dotenv_file is not None:
            names = [name for name in dotenv_values(dotenv_file, encoding="utf-8") if name]
            unknown += _unknown_names(names, f"unknown variable in {dotenv_file}")
        if secrets_dir is not None:
            names = [p.name for p in secrets_dir.iterdir() if p.is_file()]
            unknown += _unknown_names(names, f"unknown secret file in {secrets_dir}")
        problems += unknown
        with use_source_plan(plan):
            settings = Settings(**init_kwargs)
    except ValidationError as exc:
        # An unknown variable already reported by name also shows up as an unknown key.
        reported = {_env_name_to_path(p.field) for p in unknown}
        problems += [p for p in _translate(exc) if p.field not in reported]
        raise ConfigError(problems) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(str(toml_file), f"invalid TOML: {exc}")]) from None
    except UnicodeDecodeError:
        reason = "a config, .env or secret file is not valid UTF-8 text"
        raise ConfigError([ConfigProblem("settings", reason)]) from None
    except OSError as exc:
        where = str(exc.filename or toml_file)
        raise ConfigError([ConfigProblem(where, f"cannot read: {exc.strerror}")]) from None
    except SettingsError as exc:
        raise ConfigError([*problems, _translate_source_error(exc)]) from None
    if problems:
        raise ConfigError(problems)
    return settings


def _resolve_config_file(
    config_file: Path | None, required: bool, environ: Mapping[str, str]
) -> Path | None:
    """The TOML file to read, or None for defaults only; a required file must exist."""
    flag = "--config"
    if config_file is None and (from_env := tradebus_config_path(environ)) is not None:
        config_file, required, flag = from_env, True, "TRADEBUS_CONFIG"
    if config_file is None:
        return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None
    if config_file.is_file():
        return config_file
    if config_file.exists():
        raise ConfigError([ConfigProblem(flag, f"is not a file: {config_file}")])
    if required:
        raise ConfigError([ConfigProblem(flag, f"file not found: {config_file}")])
    return None


def _source_plan(
    environ: Mapping[str, str],
    dotenv_file: Path | None,
    secrets_dir: Path | None,
    toml_file: Path | None,
) -> SourcePlan:
    """The source order, highest priority first; pydantic-settings deep-merges them."""

    def plan(
        settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            _MappingEnvSource(settings_cls, environ),
        ]
        if dotenv_file is not None:
            # "only_existing": the stock behaviour turns every unrelated .env line into an
            # extra (forbidden) key; unknown TRADEBUS_ names are checked by _unknown_names.
            sources.append(
                DotEnvSettingsSource(
                    settings_cls, env_file=dotenv_file, dotenv_filtering="only_existing"
                )
            )
        if secrets_dir is not None:
            # The plain SecretsSettingsSource only maps top-level fields to files (a whole
            # section as JSON); the nested variant splits file names on "__" like env vars.
            sources.append(
                NestedSecretsSettingsSource(
                    SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir),
                    secrets_dir_missing="ok",
                )
            )
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    return plan


def _nest_overrides(overrides: Mapping[str, object]) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Turn ``{"health.interval_s": 2}`` into ``{"health": {"interval_s": 2}}``."""
    nested: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for key, value in overrides.items():
        # The pattern also keeps BaseSettings' private "_env_file"-style kwargs out.
        if not _KEY_RE.match(key):
            problems.append(ConfigProblem(key, "not a valid setting name"))
            continue
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(ConfigProblem(key, "conflicts with another override"))
                break
            node = child
        else:
            if isinstance(node.get(leaf), dict) or (leaf in node and isinstance(value, Mapping)):
                problems.append(ConfigProblem(key, "conflicts with another override"))
            else:
                node[leaf] = dict(value) if isinstance(value, Mapping) else value
    return nested, problems


def _section_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """Every settable path as an env var name, walking nested models generically."""
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        yield ENV_PREFIX + _DELIMITER.join(path).upper()
        candidates = (field.annotation, *get_args(field.annotation))
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from _section_paths(candidate, path)


_KNOWN_NAMES = frozenset(_section_paths(Settings))


def _unknown_names(names: Iterable[str], reason: str) -> list[ConfigProblem]:
    """Typo detection for ``TRADEBUS_*`` names; other names belong to someone else."""
    problems = []
    for name in names:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in _BOOTSTRAP_VARS:
            continue
        if upper.startswith(_TEST_PREFIX) or upper in _KNOWN_NAMES:
            continue
        close = difflib.get_close_matches(upper, _KNOWN_NAMES, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(ConfigProblem(name, reason + hint))
    return problems


def _env_name_to_path(name: str) -> str:
    return name[len(ENV_PREFIX) :].lower().replace(_DELIMITER, ".")


def _translate(exc: ValidationError) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(str(part) for part in error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SettingsIssues):
            problems += [ConfigProblem(_join(loc, field), reason) for field, reason in cause.issues]
            continue
        if error["type"] == "extra_forbidden":
            reason = "unknown key"
        elif isinstance(cause, ValueError):
            reason = str(cause)  # our validators' messages, without pydantic's "Value error, "
        else:
            reason = error["msg"]
        problems.append(ConfigProblem(_join(loc), _scrub(reason, error.get("input"))))
    return problems


def _join(loc: tuple[str, ...], relative: str = "") -> str:
    parts = [*loc, *relative.split(".")] if relative else list(loc)
    return ".".join(part for part in parts if part) or "settings"


def _scrub(reason: str, value: object) -> str:
    # Defence in depth: pydantic's messages describe the expectation, not the input, but if
    # one ever quotes the input (which may be a secret) it must not reach the log.
    for text in _strings_in(value):
        if len(text) >= 4:
            reason = reason.replace(text, "<redacted>")
    return reason


def _strings_in(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings_in(key)
            yield from _strings_in(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings_in(item)


def _translate_source_error(exc: SettingsError) -> ConfigProblem:
    match = _SOURCE_ERROR_RE.search(str(exc))
    if match is None:
        return ConfigProblem("settings", "a settings source could not be read")
    where = _SOURCE_LABELS.get(match["source"], match["source"])
    detail = ""
    if isinstance(exc.__cause__, json.JSONDecodeError):
        cause = exc.__cause__  # its msg and position never quote the document
        detail = f" (invalid JSON: {cause.msg} at line {cause.lineno}, column {cause.colno})"
    return ConfigProblem(match["field"], f"could not parse the value from the {where}{detail}")


def parse_set_option(text: str) -> tuple[str, object]:
    """Parse ``--set KEY=VALUE``; VALUE is a TOML value if it is one, else the raw string."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ValueError("--set expects KEY=VALUE, e.g. health.interval_s=2 (no '=' found)")
    key = key.strip()
    if not key:
        raise ValueError("--set expects KEY=VALUE: the key before '=' is empty")
    if not _KEY_RE.match(key):
        raise ValueError(f"--set key {key!r} is not a dotted setting name like health.interval_s")
    try:
        parsed = tomllib.loads(f"value = {raw}")
    except tomllib.TOMLDecodeError:
        return key, raw.strip()
    # A newline in VALUE could smuggle in more keys; then it is not one TOML value.
    if list(parsed) != ["value"]:
        return key, raw.strip()
    return key, parsed["value"]


def render_effective(settings: Settings) -> str:
    """The effective configuration as TOML, in schema order, secrets masked."""
    lines = [
        "# Effective tradebus configuration. Secrets are masked; unset values are comments.",
    ]
    _render_model(settings, (), lines)
    return "\n".join(lines) + "\n"


def _render_model(
    model: BaseModel, path: tuple[str, ...], lines: list[str], *, header: bool = True
) -> None:
    tables: list[tuple[str, BaseModel]] = []
    table_arrays: list[tuple[str, tuple[BaseModel, ...]]] = []
    if path and header:
        lines += ["", f"[{'.'.join(path)}]"]
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            tables.append((name, value))  # TOML: plain keys must come before sub-tables
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            table_arrays.append((name, value))  # [[strategies.run]]
        elif value is None:
            lines.append(f"# {name} = (unset)")
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    for name, items in table_arrays:
        for item in items:
            item_path = (*path, name)
            lines += ["", f"[[{'.'.join(item_path)}]]"]
            # Sub-tables of an array item are named by the array's path: in TOML,
            # [strategies.run.trade] belongs to the [[strategies.run]] just above it.
            _render_model(item, item_path, lines, header=False)
    for name, table in tables:
        _render_model(table, (*path, name), lines)


def _toml_value(value: object) -> str:
    if isinstance(value, SecretStr | SecretBytes):
        return _toml_string(MASK)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _toml_value(value.value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    return _toml_string(str(value))


def _toml_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def secret_values(settings: BaseModel) -> tuple[str, ...]:
    """Every non-empty secret in the tree, for log redaction; new sections are found too."""
    return tuple(dict.fromkeys(secret for secret in _secrets_in(settings) if secret))


def _secrets_in(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, SecretBytes):
        yield value.get_secret_value().decode("utf-8", errors="replace")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secrets_in(getattr(value, name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secrets_in(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secrets_in(item)
