"""Building blocks shared by the configuration sections: the frozen section config, the
cross-field error type, and the lenient pre-validators for values from TOML and the environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, SecretStr

__all__ = [
    "SECTION_CONFIG",
    "OptionalPath",
    "OptionalSecret",
    "SettingsIssues",
    "empty_to_none",
    "split_list",
    "upper",
]

SECTION_CONFIG = ConfigDict(frozen=True, extra="forbid")


class SettingsIssues(ValueError):
    """Cross-field problems, each tied to a field path relative to the model that raised it.

    Pydantic keeps the exception object in the error's ``ctx``, which is how the loader recovers
    the precise field; the message itself never contains input values.
    """

    def __init__(self, issues: tuple[tuple[str, str], ...]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in issues))
        self.issues = issues


def empty_to_none(value: object) -> object:
    # TOML has no null, and an empty environment variable usually means "not set".
    if isinstance(value, str) and not value.strip():
        return None
    return value


def upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def split_list(value: object) -> object:
    # Env vars and ``--set`` give strings: accept a JSON list or "BTCUSDT,ETHUSDT".
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("not a valid JSON list") from None
    return [part.strip() for part in text.split(",") if part.strip()]


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(empty_to_none)]
OptionalPath = Annotated[Path | None, BeforeValidator(empty_to_none)]
