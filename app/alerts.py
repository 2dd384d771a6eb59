"""Alert sinks, both consuming `system.alert`.

`AlertLogger` logs every alert at a level matching its severity, so alerts reach the JSON log
(and whatever ships it) even with no chat configured. `SlackWebhook` posts alerts at or above
`alerts.min_severity` to a Slack incoming webhook when `alerts.slack_webhook_url` is set.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request

import structlog

from app.domain import Alert, AlertSeverity, Clock
from app.redaction import Redactor

log = structlog.get_logger("app.alerts")

_SEVERITY_ORDER = (AlertSeverity.INFO, AlertSeverity.WARNING, AlertSeverity.CRITICAL)


class AlertLogger:
    def __init__(self, *, min_severity: AlertSeverity = AlertSeverity.INFO) -> None:
        self._min = _SEVERITY_ORDER.index(min_severity)
        self.received = 0
        self.logged = 0

    async def on_alert(self, alert: Alert) -> None:
        self.received += 1
        if _SEVERITY_ORDER.index(alert.severity) < self._min:
            return
        self.logged += 1
        level = {
            AlertSeverity.INFO: log.info,
            AlertSeverity.WARNING: log.warning,
            AlertSeverity.CRITICAL: log.error,
        }[alert.severity]
        level(
            "alert_raised",
            severity=alert.severity.value,
            source=alert.source,
            title=alert.title,
            detail=alert.detail,
            alert_ts_ms=alert.ts_ms,
        )


class SlackWebhook:
    """Posts alerts at or above `min_severity` to a Slack incoming webhook.

    The POST runs in a worker thread (stdlib `urllib`, no extra dependency) with a timeout, so
    the event loop never waits on the network; a failed post is retried with backoff on the
    injected clock and then logged — an unreachable Slack never takes the daemon down. The
    webhook URL is a secret: it is never logged, and every text sent is redacted first.
    """

    def __init__(
        self,
        *,
        webhook_url: str,
        instance: str,
        clock: Clock,
        redactor: Redactor,
        min_severity: AlertSeverity = AlertSeverity.WARNING,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        if urllib.parse.urlsplit(webhook_url).scheme not in ("https", "http"):
            raise ValueError("alerts.slack_webhook_url must be an https:// URL")
        self._url = webhook_url
        self._instance = instance
        self._clock = clock
        self._redactor = redactor
        self._min = _SEVERITY_ORDER.index(min_severity)
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._backoff_s = backoff_s
        self.sent = 0
        self.failed = 0

    async def on_alert(self, alert: Alert) -> None:
        if _SEVERITY_ORDER.index(alert.severity) < self._min:
            return
        text = f"[{self._instance}] {alert.severity.value.upper()} {alert.source}: {alert.title}"
        if alert.detail:
            text += f"\n{alert.detail}"
        body = json.dumps({"text": self._redactor.redact(text)}).encode()
        for attempt in range(1, self._attempts + 1):
            try:
                await asyncio.to_thread(self._post, body)
            except (OSError, ValueError) as exc:  # URLError/HTTPError/timeouts are OSErrors
                log.warning(
                    "slack_alert_failed",
                    attempt=attempt,
                    error_type=type(exc).__name__,
                    status=getattr(exc, "code", None),
                )
                if attempt < self._attempts:
                    await self._clock.sleep(self._backoff_s * 2 ** (attempt - 1))
                continue
            self.sent += 1
            return
        self.failed += 1
        log.error("slack_alert_dropped", title=alert.title, attempts=self._attempts)

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self._url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
            response.read()
