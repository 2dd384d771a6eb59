"""The simulator's persisted state: one JSON file, replaced atomically.

The simulator keeps balances, orders and positions across restarts so a daemon pointed at it
sees the same account after either side restarts. A file is written to a temporary file in the
same directory, fsynced, renamed over the old one and the directory fsynced: a crash at any
point leaves either the old or the new file, never a torn one. Reading refuses a corrupt file
or one of another format version with ``StateFileError`` (path and reason) instead of
silently starting a fresh account — losing the state must be the user's decision.

Decimals are written as strings; a float is refused (money must not pass through binary
floating point), as is anything else JSON cannot hold exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import structlog

from app.atomic_file import replace_atomically
from app.domain.clock import Clock

__all__ = ["FORMAT", "FORMAT_VERSION", "StateFileError", "StateSaver", "load_state", "save_state"]

FORMAT: Final = "tradebus-sim-state"
FORMAT_VERSION: Final = 1

log = structlog.get_logger("exchange.sim.state_file")


class StateFileError(Exception):
    """The state file cannot be used (or written); ``path`` and ``reason`` say why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"simulator state file {path}: {reason}")


def save_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (see the module docstring)."""
    target = Path(path)
    try:
        document = {"format": FORMAT, "version": FORMAT_VERSION, "state": _jsonable(state, "")}
    except (TypeError, ValueError) as exc:
        raise StateFileError(target, f"cannot be saved: {exc}") from exc
    data = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode() + b"\n"
    replace_atomically(target, data)


def load_state(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved state, or None when there is no file yet."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(source, f"cannot be read: {exc}") from exc
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateFileError(source, f"is not valid JSON (corrupt?): {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StateFileError(source, f"is not a simulator state file (no format {FORMAT!r})")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise StateFileError(
            source, f"has format version {version!r}; this simulator reads {FORMAT_VERSION}"
        )
    state = document.get("state")
    if not isinstance(state, dict):
        raise StateFileError(source, "has no state object")
    return state


class StateSaver:
    """Saves ``snapshot()`` every ``interval_s`` when something changed since the last save.

    The owner calls ``mark_dirty()`` after each change and ``flush()`` at shutdown (after
    ``run`` stopped). Saves happen on the event loop, between changes, so a snapshot is always
    consistent. A failed periodic save is logged and retried at the next interval (the state
    stays dirty); ``flush`` raises, so a shutdown that could not save says so.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        snapshot: Callable[[], Mapping[str, Any]],
        clock: Clock,
        interval_s: float,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, not {interval_s}")
        self._path = Path(path)
        self._snapshot = snapshot
        self._clock = clock
        self._interval_s = interval_s
        self._dirty = False
        self.saves = 0
        self.failures = 0

    @property
    def dirty(self) -> bool:
        return self._dirty

    def mark_dirty(self) -> None:
        self._dirty = True

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._interval_s)
            if not self._dirty:
                continue
            try:
                self._save()
            except (OSError, StateFileError) as exc:
                self.failures += 1
                log.error("sim_state_save_failed", path=str(self._path), error=str(exc))

    def flush(self) -> None:
        """Save now if anything changed since the last save."""
        if self._dirty:
            self._save()

    def _save(self) -> None:
        # Cleared before saving: a change made while saving (none today: the save is
        # synchronous) would mark it dirty again rather than be lost.
        self._dirty = False
        try:
            save_state(self._path, self._snapshot())
        except BaseException:
            self._dirty = True
            raise
        self.saves += 1


def _jsonable(value: object, where: str) -> object:
    """A copy of ``value`` JSON can hold exactly; ``where`` locates a refused value."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite decimal {value} at {where or '/'}")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError(f"float {value!r} at {where or '/'}: use Decimal")
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"key {key!r} at {where or '/'} is not a string")
            out[key] = _jsonable(item, f"{where}/{key}")
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{where}/{i}") for i, item in enumerate(value)]
    raise TypeError(f"{type(value).__name__} at {where or '/'} is not JSON")
