"""The alert sink: every message on `system.alert` is logged at a level that matches its
severity, so alerts reach the JSON log (and whatever ships it) even with no other channel.

Consumes `system.alert`. Chat delivery (Slack) is not built yet; `alerts.slack_webhook_url` is
validated and redacted but nothing is sent (see README, "Known gaps").
"""

from __future__ import annotations

import structlog

from app.domain import Alert, AlertSeverity

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
