"""Process facts that come from environment variables but are not settings.

This is the one module (besides the settings loader) that reads ``os.environ``: the systemd
notification socket and watchdog, the bootstrap variables that say where the configuration
lives, and whether we run under CI. Every function takes an optional ``environ`` mapping so
callers and tests can stay hermetic; ``None`` means the real process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "is_ci",
    "systemd_notify_socket",
    "systemd_watchdog_usec",
    "tradebus_config_path",
    "tradebus_secrets_dir",
]

_FALSY = frozenset({"", "0", "false", "no", "off"})


def _get(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    # An exported-but-empty variable means "not set" for every fact here.
    return value if value else None


def systemd_notify_socket(environ: Mapping[str, str] | None = None) -> str | None:
    """``NOTIFY_SOCKET``: where ``sd_notify`` messages go; ``None`` when not under systemd."""
    return _get("NOTIFY_SOCKET", environ)


def systemd_watchdog_usec(environ: Mapping[str, str] | None = None) -> int | None:
    """``WATCHDOG_USEC`` if the systemd watchdog is meant for this process, else ``None``.

    systemd sets ``WATCHDOG_PID`` when the variables may be inherited by children; a value for
    another process must be ignored, or a child would ping on its parent's behalf.
    """
    pid = _get("WATCHDOG_PID", environ)
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    raw = _get("WATCHDOG_USEC", environ)
    if raw is None:
        return None
    try:
        usec = int(raw.strip())
    except ValueError:
        return None
    return usec if usec > 0 else None


def tradebus_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """``TRADEBUS_CONFIG``: the TOML file to load instead of ``config/tradebus.toml``."""
    value = _get("TRADEBUS_CONFIG", environ)
    return Path(value).expanduser() if value else None


def tradebus_secrets_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``TRADEBUS_SECRETS_DIR``: a directory of secret files (e.g. ``/run/secrets``)."""
    value = _get("TRADEBUS_SECRETS_DIR", environ)
    return Path(value).expanduser() if value else None


def is_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``CI`` is set to a truthy value (CI providers set ``CI=true``)."""
    value = _get("CI", environ)
    return value is not None and value.strip().lower() not in _FALSY
