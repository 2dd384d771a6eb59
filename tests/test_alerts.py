"""Alert sinks: the log sink and the Slack webhook against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.alerts import AlertLogger, SlackWebhook
from app.domain import Alert, AlertSeverity, ManualClock
from app.redaction import MASK, Redactor


class Webhook:
    """A loopback stand-in for Slack: records bodies, answers with the queued statuses."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, str]] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T/B/x"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def alert(severity: AlertSeverity, detail: str = "") -> Alert:
    return Alert(severity, "executor", "order status unknown", 1, detail)


async def test_slack_posts_alerts_at_or_above_min_severity_redacted(webhook: Webhook) -> None:
    canary = "CANARY-slack-9f3a"
    slack = SlackWebhook(
        webhook_url=webhook.url,
        instance="prod-1",
        clock=ManualClock(),
        redactor=Redactor([canary]),
        min_severity=AlertSeverity.WARNING,
    )
    await slack.on_alert(alert(AlertSeverity.INFO))
    await slack.on_alert(alert(AlertSeverity.CRITICAL, f"key {canary} rejected"))
    assert slack.sent == 1
    assert len(webhook.bodies) == 1
    text = webhook.bodies[0]["text"]
    assert text.startswith("[prod-1] CRITICAL executor: order status unknown")
    assert canary not in text
    assert MASK in text


async def test_slack_retries_with_backoff_then_gives_up(webhook: Webhook) -> None:
    clock = ManualClock()
    slack = SlackWebhook(
        webhook_url=webhook.url, instance="i", clock=clock, redactor=Redactor(), attempts=3
    )
    webhook.statuses = [500, 500, 500]
    task = asyncio.create_task(slack.on_alert(alert(AlertSeverity.CRITICAL)))
    for delay in (1.0, 2.0):
        await asyncio.wait_for(clock.wait_for_sleepers(), timeout=30)
        clock.advance(delay)
    await task
    assert (slack.sent, slack.failed) == (0, 1)
    assert len(webhook.bodies) == 3


def test_slack_refuses_non_http_urls() -> None:
    with pytest.raises(ValueError, match="https"):
        SlackWebhook(
            webhook_url="file:///etc/passwd", instance="i", clock=ManualClock(), redactor=Redactor()
        )


async def test_alert_logger_counts_everything() -> None:
    sink = AlertLogger()
    await sink.on_alert(alert(AlertSeverity.INFO))
    await sink.on_alert(alert(AlertSeverity.CRITICAL))
    assert (sink.received, sink.logged) == (2, 2)
