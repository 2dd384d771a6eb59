"""Tests for app.log_setup: rendering, context, redaction on every path, rotation."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from app.log_setup import configure_logging, get_logger, log_context, reset_logging
from app.redaction import MASK, Redactor

CANARY = "CANARY-7d1e5b-secret"
# Escapes differently in JSON (quote, backslash, non-ASCII) and in repr (quote).
TRICKY = 'tr"ick\\y-sécret'


class TTYStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    reset_logging()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def redactor() -> Redactor:
    return Redactor([CANARY, TRICKY])


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_on_non_tty_stream(redactor: Redactor) -> None:
    out = io.StringIO()
    configure_logging(stream=out, redactor=redactor, static_context={"instance": "tb"})
    get_logger("tradebus.test").info("order_submitted", client_order_id="c-1", qty=2)

    (rec,) = json_lines(out.getvalue())
    assert rec["event"] == "order_submitted"
    assert rec["level"] == "info"
    assert rec["logger"] == "tradebus.test"
    assert rec["client_order_id"] == "c-1"
    assert rec["qty"] == 2
    assert rec["instance"] == "tb"
    ts = rec["timestamp"]
    assert ts.endswith("Z")
    assert len(ts.split(".")[1]) == 4  # milliseconds + "Z"
    parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    assert parsed.utcoffset() == UTC.utcoffset(None)


def test_default_logger_name_is_the_calling_module() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().info("thing_happened")
    (rec,) = json_lines(out.getvalue())
    assert rec["logger"] == __name__


def test_console_format(redactor: Redactor) -> None:
    out = io.StringIO()
    configure_logging(stream=out, fmt="console", redactor=redactor)
    get_logger("c").warning("risk_state_changed", state="HALTED")
    text = out.getvalue()
    assert "risk_state_changed" in text
    assert "state=HALTED" in text
    assert "warn" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_auto_format_uses_console_on_a_tty_and_still_redacts(redactor: Redactor) -> None:
    out = TTYStringIO()
    configure_logging(stream=out, redactor=redactor)  # fmt="auto", colours on
    get_logger("c").info("key_loaded", key=CANARY)
    text = out.getvalue()
    assert not text.startswith("{")
    assert "key_loaded" in text
    assert CANARY not in text
    assert MASK in text


def test_stdlib_records_share_rendering() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    logging.getLogger("asyncio").warning("slow callback %s took %.1fs", "cb", 0.25)
    (rec,) = json_lines(out.getvalue())
    assert rec["event"] == "slow callback cb took 0.2s"
    assert rec["level"] == "warning"
    assert rec["logger"] == "asyncio"
    assert "timestamp" in rec


def test_level_filters_structlog_and_stdlib() -> None:
    out = io.StringIO()
    configure_logging(stream=out, level="warning")
    get_logger("x").info("dropped")
    logging.getLogger("y").info("dropped too")
    get_logger("x").error("kept")
    assert [r["event"] for r in json_lines(out.getvalue())] == ["kept"]


def test_invalid_level_and_format_are_rejected() -> None:
    with pytest.raises(ValueError, match="level"):
        configure_logging(level="LOUD")
    with pytest.raises(ValueError, match="format"):
        configure_logging(fmt="xml")


async def test_contextvars_are_task_local() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    log = get_logger("ctx")
    a_bound = asyncio.Event()
    b_logged = asyncio.Event()

    async def worker_a() -> None:
        structlog.contextvars.bind_contextvars(component="strategy", symbol="BTCUSDT")
        log.info("signal_emitted")
        a_bound.set()
        await b_logged.wait()
        with log_context(client_order_id="c-42"):
            log.info("order_requested")
        log.info("order_done")

    async def worker_b() -> None:
        await a_bound.wait()  # A has bound its context by now
        log.info("fill_recorded")
        b_logged.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(worker_a())
        tg.create_task(worker_b())
    log.info("test_done")

    by_event = {r["event"]: r for r in json_lines(out.getvalue())}
    assert by_event["signal_emitted"]["component"] == "strategy"
    assert by_event["signal_emitted"]["symbol"] == "BTCUSDT"
    assert by_event["order_requested"]["client_order_id"] == "c-42"
    assert "client_order_id" not in by_event["order_done"]
    for sibling in ("fill_recorded", "test_done"):
        assert "component" not in by_event[sibling]
        assert "symbol" not in by_event[sibling]


def _log_canaries(secret: str) -> None:
    log = get_logger("leaky")
    log.info("credentials_loaded", api_key=secret, nested={"k": [secret]})
    log.info(f"event text with {secret}")
    log.info("positional %s", secret)
    log.info("key_as_secret", **{secret: 1})
    try:
        raise RuntimeError(f"exchange refused key {secret}")
    except RuntimeError:
        log.exception("request_failed")
    prices: dict[str, int] = {}
    try:
        prices[secret]  # KeyError repr()s the key in the traceback
    except KeyError:
        log.exception("lookup_failed")
    logging.getLogger("x").error("stdlib says %s", secret)
    try:
        raise ValueError(secret)
    except ValueError:
        logging.getLogger("x").exception("stdlib failed", stack_info=True)


@pytest.mark.parametrize("secret", [CANARY, TRICKY])
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_never_reach_stream_or_file(
    redactor: Redactor, tmp_path: Path, secret: str, fmt: str
) -> None:
    out = io.StringIO()
    log_file = tmp_path / "logs" / "deep" / "tradebus.jsonl"  # parents get created
    configure_logging(stream=out, fmt=fmt, file=log_file, redactor=redactor)
    _log_canaries(secret)

    stream_text = out.getvalue()
    file_text = log_file.read_text(encoding="utf-8")
    for text in (stream_text, file_text):
        assert MASK in text
        assert secret not in text
        # Nor any escaped form: JSON or repr escaping must not smuggle it out.
        assert json.dumps(secret)[1:-1] not in text
        assert repr(secret)[1:-1] not in text
    records = json_lines(file_text)
    assert len(records) == 8
    assert [r["event"] for r in records][:2] == ["credentials_loaded", f"event text with {MASK}"]
    assert records[0]["api_key"] == MASK
    assert records[3][MASK] == 1
    assert "exception" in records[4]
    assert "stack" in records[7]
    if fmt == "json":
        # Stream and file render the same records (the timestamp is taken per handler).
        strip = [{k: v for k, v in r.items() if k != "timestamp"} for r in records]
        assert [
            {k: v for k, v in r.items() if k != "timestamp"} for r in json_lines(stream_text)
        ] == strip


def test_secret_registered_after_configure_is_redacted(tmp_path: Path) -> None:
    redactor = Redactor()
    out = io.StringIO()
    configure_logging(stream=out, redactor=redactor)
    redactor.add(CANARY)
    get_logger("late").info("late_secret", value=CANARY)
    assert CANARY not in out.getvalue()


def test_file_rotation_and_redacted_backups(redactor: Redactor, tmp_path: Path) -> None:
    log_file = tmp_path / "rot.jsonl"
    configure_logging(
        stream=io.StringIO(),
        file=log_file,
        file_max_bytes=2_000,
        file_backups=2,
        redactor=redactor,
    )
    log = get_logger("rot")
    for i in range(200):
        log.info("tick_processed", i=i, key=CANARY)

    backup1 = tmp_path / "rot.jsonl.1"
    assert backup1.exists()
    assert (tmp_path / "rot.jsonl.2").exists()
    assert not (tmp_path / "rot.jsonl.3").exists()  # file_backups respected
    for path in (log_file, backup1):
        text = path.read_text(encoding="utf-8")
        assert path.stat().st_size <= 2_000
        assert CANARY not in text
        assert all(r["key"] == MASK for r in json_lines(text))
    # The newest record is in the live file, written once (not lost or doubled by rollover).
    assert [r["i"] for r in json_lines(log_file.read_text(encoding="utf-8"))][-1] == 199


def test_reconfiguring_does_not_duplicate_lines(tmp_path: Path) -> None:
    first = io.StringIO()
    configure_logging(stream=first, file=tmp_path / "a.jsonl")
    second = io.StringIO()
    configure_logging(stream=second, file=tmp_path / "a.jsonl")
    configure_logging(stream=second, file=tmp_path / "a.jsonl")
    get_logger("dup").info("once")
    logging.getLogger("dup.stdlib").warning("once too")

    assert first.getvalue() == ""
    assert [r["event"] for r in json_lines(second.getvalue())] == ["once", "once too"]
    file_events = json_lines((tmp_path / "a.jsonl").read_text(encoding="utf-8"))
    assert [r["event"] for r in file_events] == ["once", "once too"]


def test_reset_leaves_foreign_handlers(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging(stream=io.StringIO())
    reset_logging()
    logging.getLogger("foreign").warning("still captured")
    assert "still captured" in caplog.text
    assert all(
        not isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
        for h in logging.getLogger().handlers
    )
