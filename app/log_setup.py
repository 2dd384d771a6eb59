"""Logging configuration: structlog on top of stdlib ``logging``, with secret redaction.

``configure_logging()`` is called once by the CLI (again in tests; each call replaces the
handlers it installed before). Everything goes through the stdlib root logger, rendered by a
``structlog.stdlib.ProcessorFormatter``, so records from stdlib loggers (asyncio, third-party
libraries) get the same keys, rendering and redaction as our own events.

Pipeline of one event::

    structlog logger ─┐  filter_by_level, contextvars, level, logger name, timestamp, stack
                      ├─▶ root logger ─▶ handler ─▶ RedactingFormatter:
    stdlib logger ────┘  (the same steps run as the formatter's foreign_pre_chain)
        static context → exception rendering → redact values → render (JSON / console)
        → redact the rendered line (LAST: nothing can bypass it)

Conventions for callers (DESIGN.md §3.13, §3.7):

* Events are snake_case, past tense, with keys: ``log.info("order_submitted",
  client_order_id=cid, symbol="BTCUSDT")``; never interpolate values into the event text.
* Per-task context is bound with ``structlog.contextvars.bind_contextvars(component=…)`` or
  :func:`log_context` (``bound_contextvars``). asyncio tasks copy the context at creation, so a
  binding made inside a task stays in that task.
* A bad message is logged with its context and ``log.exception("message_failed", …)``.

Output: JSON lines (``event``, ``level``, ``timestamp``, ``logger`` + context) when the stream
is not a TTY or ``fmt="json"``; structlog's console renderer otherwise. The optional file is
always JSON lines, size-rotated.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, cast

import structlog
from structlog.contextvars import bound_contextvars
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import EventDict, Processor, WrappedLogger

from app.redaction import REDACTOR, Redactor

__all__ = ["configure_logging", "get_logger", "log_context", "reset_logging"]

# Re-exported for readability at call sites: ``with log_context(symbol="BTCUSDT"): …``
log_context = bound_contextvars

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_saved_root_level: int | None = None  # the root level before our first configure_logging()
_FORMATS = ("auto", "json", "console")


def _add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # structlog's TimeStamper("iso") gives microseconds; we want milliseconds and a "Z".
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    event_dict["timestamp"] = now.replace("+00:00", "Z")
    return event_dict


def _foreign_stack(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # A stdlib record's stack_info is already a formatted string; StackInfoRenderer would
    # capture the formatter's own stack instead, so just move it to the same "stack" key.
    stack = event_dict.pop("stack_info", None)
    if stack:
        event_dict["stack"] = stack
    return event_dict


def _static_context(context: Mapping[str, object]) -> Processor:
    items = tuple(context.items())

    def add_static(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        for key, value in items:
            event_dict.setdefault(key, value)  # a per-event or bound value wins
        return event_dict

    return add_static


def _redact_values(redactor: Redactor) -> Processor:
    def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        # Before rendering, so a secret is masked before JSON/repr escaping can disguise it
        # (the final line pass also catches the escaped forms; this is belt and braces).
        return cast(EventDict, redactor.redact_obj(event_dict))

    return redact


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """A ProcessorFormatter whose fully rendered output goes through the redactor last."""

    def __init__(
        self,
        *,
        redactor: Redactor,
        processors: list[Processor],
        foreign_pre_chain: tuple[Processor, ...],
    ) -> None:
        super().__init__(processors=processors, foreign_pre_chain=foreign_pre_chain)
        self._redactor = redactor
        # RotatingFileHandler.shouldRollover() formats the record once to measure it, then
        # emit() formats it again; remembering the last one halves the cost. Both calls run
        # under the handler's lock and each handler has its own formatter, so no race. A weak
        # reference, so a record's traceback (and the frames it pins) is not kept alive.
        self._last: tuple[weakref.ref[logging.LogRecord], str] | None = None

    def format(self, record: logging.LogRecord) -> str:
        last = self._last
        if last is not None and last[0]() is record:
            return last[1]
        text = self._redactor.redact(super().format(record))
        self._last = (weakref.ref(record), text)
        return text


# Run for structlog events before they reach stdlib logging, and (minus the structlog-only
# steps) by the formatter for stdlib records, so both carry the same keys.
_COMMON: tuple[Processor, ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _add_timestamp,
)
_STRUCTLOG_CHAIN: tuple[Processor, ...] = (
    structlog.stdlib.filter_by_level,  # drop below-level events before doing any work
    *_COMMON,
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.processors.StackInfoRenderer(),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
)
_FOREIGN_CHAIN: tuple[Processor, ...] = (*_COMMON, _foreign_stack)

# Structured tracebacks for JSON, without local variables: locals may hold secrets and bulk.
_dict_tracebacks = structlog.processors.ExceptionRenderer(
    ExceptionDictTransformer(show_locals=False)
)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def _formatter(
    *, json: bool, colors: bool, redactor: Redactor, static: Mapping[str, object]
) -> RedactingFormatter:
    renderer: Processor
    exception_step: tuple[Processor, ...]
    if json:
        renderer = structlog.processors.JSONRenderer()  # stdlib json.dumps by default
        exception_step = (_dict_tracebacks,)
    else:
        # plain_traceback, not the rich default: rich wraps long lines, which could split a
        # secret across two lines and defeat the line redaction.
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
        exception_step = ()  # the console renderer formats exc_info itself
    return RedactingFormatter(
        redactor=redactor,
        foreign_pre_chain=_FOREIGN_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _static_context(static),
            *exception_step,
            _redact_values(redactor),
            renderer,
        ],
    )


def _our_handlers(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if isinstance(h.formatter, RedactingFormatter)]


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "auto",
    file: Path | None = None,
    file_max_bytes: int = 10 * 1024 * 1024,
    file_backups: int = 5,
    stream: TextIO | None = None,
    redactor: Redactor = REDACTOR,
    static_context: Mapping[str, object] | None = None,
) -> None:
    """Configure structlog and the stdlib root logger; a later call replaces the handlers.

    ``fmt``: ``"auto"`` (console on a TTY, JSON lines otherwise), ``"json"`` or ``"console"``.
    ``file``: JSON lines, rotated at ``file_max_bytes`` keeping ``file_backups`` old files.
    ``static_context``: keys added to every event (e.g. ``{"instance": …, "mode": "paper"}``).
    """
    level_name = level.upper()
    if level_name not in _LEVELS:
        raise ValueError(f"log level must be one of {_LEVELS}, got {level!r}")
    if fmt not in _FORMATS:
        raise ValueError(f"log format must be one of {_FORMATS}, got {fmt!r}")
    out = stream if stream is not None else sys.stdout
    static = dict(static_context or {})
    tty = _is_tty(out)

    handlers: list[logging.Handler] = []
    stream_handler = logging.StreamHandler(out)
    stream_handler.setFormatter(
        _formatter(
            json=fmt == "json" or (fmt == "auto" and not tty),
            colors=tty,
            redactor=redactor,
            static=static,
        )
    )
    handlers.append(stream_handler)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            file, maxBytes=file_max_bytes, backupCount=file_backups, encoding="utf-8"
        )
        file_handler.setFormatter(
            _formatter(json=True, colors=False, redactor=redactor, static=static)
        )
        handlers.append(file_handler)

    root = logging.getLogger()
    global _saved_root_level
    if _saved_root_level is None:
        _saved_root_level = root.level
    _remove_handlers(root)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level_name)

    structlog.configure(
        processors=list(_STRUCTLOG_CHAIN),
        context_class=dict,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger first used before configure_logging() (or after a test's
        # reset) would otherwise keep structlog's default PrintLogger forever, which writes
        # unredacted. The per-call cost (~µs) is small next to rendering.
        cache_logger_on_first_use=False,
    )


def _remove_handlers(root: logging.Logger) -> None:
    # Only ours: handlers installed by others (pytest's caplog) stay.
    for handler in _our_handlers(root):
        root.removeHandler(handler)
        handler.close()


def reset_logging() -> None:
    """Undo configure_logging(): remove and close our handlers, restore the root level and
    structlog's defaults (used by tests so other modules see a pristine setup)."""
    global _saved_root_level
    root = logging.getLogger()
    _remove_handlers(root)
    if _saved_root_level is not None:
        root.setLevel(_saved_root_level)
        _saved_root_level = None
    structlog.reset_defaults()


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger routed through stdlib ``logging``; ``name`` becomes the ``logger`` key
    and defaults to the calling module's ``__name__``."""
    if name is None:
        # Resolved here, once: structlog's own guess walks the stack on every (uncached) call.
        name = str(sys._getframe(1).f_globals.get("__name__", "tradebus"))
    return structlog.stdlib.get_logger(name)
