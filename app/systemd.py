"""systemd service notifications (`Type=notify`, `WatchdogSec=`) without a dependency.

The protocol is one datagram of `KEY=VALUE` lines to the unix socket named by `NOTIFY_SOCKET`
(a leading `@` means the abstract namespace). Failing to notify never stops the daemon: the
error is logged once and notifications are switched off.
"""

from __future__ import annotations

import socket

import structlog

log = structlog.get_logger("app.systemd")


class SystemdNotifier:
    def __init__(self, socket_path: str | None, watchdog_usec: int | None = None) -> None:
        self._address: str | None = None
        if socket_path:
            self._address = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path
        self.watchdog_usec = watchdog_usec

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the watchdog timeout, as systemd recommends."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def notify(self, *lines: str) -> bool:
        if self._address is None:
            return False
        payload = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(payload, self._address)
        except OSError as exc:
            log.warning("systemd_notify_failed", error=str(exc))
            self._address = None
            return False
        return True

    def ready(self, status: str = "running") -> None:
        self.notify("READY=1", f"STATUS={status}")

    def stopping(self, status: str = "draining") -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> None:
        if self.watchdog_usec:
            self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")
