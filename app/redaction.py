"""Secret redaction: the guarantee that no configured secret value is ever written out.

The CLI fills the process-wide :data:`REDACTOR` from the loaded config (API keys, API secrets,
database and alert passwords) before anything else runs, then

* every log handler redacts its fully rendered line (see ``app/log_setup.py``),
* the heartbeat writer passes its JSON document through :meth:`Redactor.redact_obj`,
* ``sys.stdout`` and ``sys.stderr`` are replaced by :meth:`Redactor.wrap_stream` proxies so
  tracebacks, warnings and stray ``print()`` calls are covered too.

Besides the raw value, each secret is registered in the encoded forms it takes on its way to an
output: URL percent-encoded (``quote(s, safe="")`` and ``quote_plus(s)``, a secret that went
through a query string), JSON-escaped (``json.dumps(s)[1:-1]``, ASCII and non-ASCII variants)
and the inside of its Python ``repr`` (``KeyError('…')`` in a traceback, a dict in a log value).

Masking is interval-based: every occurrence of every registered form is found, overlapping
occurrences are merged and each merged span becomes one :data:`MASK`, so two secrets that
overlap in the text cannot leave a fragment of either one visible.

Limits:

* A secret split across two separate ``write()`` calls of a wrapped stream is not caught: each
  call is redacted on its own. Log records and heartbeat documents are redacted whole, so this
  only concerns raw writes (``print(…, end="")`` pieces, a library writing char by char).
* Bytes written to a wrapped stream's ``.buffer`` bypass redaction.
* A secret made only of ``*`` characters is indistinguishable from the mask.

Stdlib only, so everything (including ``app.domain``-adjacent code and the CLI's first lines)
can import it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import BinaryIO, TextIO
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "REDACTOR", "Redactor"]

MASK = "**********"


def _forms(secret: str) -> set[str]:
    """Every encoded form in which *secret* may reach an output."""
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    }


class Redactor:
    """Masks registered secrets (and their encoded forms) in text and JSON-like documents."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        # Readers use whatever pair of patterns was published last, without locking: a single
        # attribute assignment is atomic, so redact() never sees a half-built state.
        self._patterns: tuple[re.Pattern[str], re.Pattern[str]] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Register secrets; empty strings are ignored. Safe to call from any thread."""
        with self._lock:
            before = len(self._forms)
            for secret in secrets:
                if secret:
                    self._forms.update(_forms(secret))
            if len(self._forms) == before:
                return
            # Longest first: Python's alternation is leftmost-first, not leftmost-longest, so a
            # secret that contains another one must be tried before it.
            ordered = sorted(self._forms, key=lambda f: (-len(f), f))
            alternation = "|".join(map(re.escape, ordered))
            # The lookahead finds, at every position, the longest form starting there, which
            # includes occurrences overlapping an earlier match.
            any_start = re.compile(f"(?=({alternation}))")
            # Forms with a non-'*' character: used to re-check the output, where a mask next to
            # plain text can complete a secret containing '*' (mask + "ab" → "**ab").
            starry = [f for f in ordered if f.strip("*")]
            recheck = re.compile(f"(?=({'|'.join(map(re.escape, starry))}))") if starry else None
            self._patterns = (any_start, recheck or re.compile(r"(?!)"))

    def redact(self, text: str) -> str:
        """Return *text* with every occurrence of every registered form replaced by MASK."""
        patterns = self._patterns
        if patterns is None:  # fast path: nothing registered
            return text
        any_start, recheck = patterns
        if any_start.search(text) is None:  # the common case: one scan, no allocation
            return text
        text = _mask(any_start, text)
        # Each re-check pass turns at least one non-'*' character into '*', so it terminates.
        while recheck.search(text) is not None:
            text = _mask(recheck, text)
        return text

    def redact_obj(self, value: object) -> object:
        """Deep-redact str leaves (and str keys) of dicts, lists and tuples into new containers.

        Other leaves (numbers, None, arbitrary objects) are returned as they are.
        """
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {
                (self.redact(k) if isinstance(k, str) else k): self.redact_obj(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.redact_obj(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.redact_obj(v) for v in value)
        return value

    def wrap_stream(self, stream: TextIO) -> TextIO:
        """A proxy of *stream* whose ``write()`` redacts first; the rest delegates."""
        return _RedactingStream(stream, self)


def _mask(pattern: re.Pattern[str], text: str) -> str:
    """Replace the union of all (possibly overlapping) matches of *pattern* with MASK."""
    spans: list[tuple[int, int]] = []
    for m in pattern.finditer(text):
        start, end = m.start(), m.start() + len(m.group(1))
        if spans and start <= spans[-1][1]:
            if end > spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    parts: list[str] = []
    pos = 0
    for start, end in spans:
        parts.append(text[pos:start])
        parts.append(MASK)
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


class _RedactingStream(TextIO):
    """TextIO proxy: text passes through the redactor; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, s: str) -> int:
        self._stream.write(self._redactor.redact(s))
        # Report the caller's length: callers (print, TextIOWrapper users) compare against it.
        return len(s)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:
        return self._stream.encoding

    @property
    def errors(self) -> str | None:
        return self._stream.errors

    @property
    def buffer(self) -> BinaryIO:
        # Bytes written here bypass redaction (documented in the module docstring).
        return self._stream.buffer

    @property
    def line_buffering(self) -> int:
        return self._stream.line_buffering

    @property
    def newlines(self) -> str | tuple[str, ...] | None:
        return self._stream.newlines  # type: ignore[no-any-return]

    @property
    def mode(self) -> str:
        return self._stream.mode

    @property
    def name(self) -> str:
        return str(self._stream.name)

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def close(self) -> None:
        self._stream.close()

    def readable(self) -> bool:
        return self._stream.readable()

    def read(self, n: int = -1) -> str:
        return self._stream.read(n)

    def readline(self, limit: int = -1) -> str:
        return self._stream.readline(limit)

    def readlines(self, hint: int = -1) -> list[str]:
        return self._stream.readlines(hint)

    def seekable(self) -> bool:
        return self._stream.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def truncate(self, size: int | None = None) -> int:
        return self._stream.truncate(size)

    def writable(self) -> bool:
        return self._stream.writable()

    def __enter__(self) -> TextIO:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Deliberately not closing: the wrapped stream is usually sys.stdout/sys.stderr.
        return None

    def __iter__(self) -> Iterator[str]:
        return iter(self._stream)

    def __next__(self) -> str:
        return next(self._stream)

    def __getattr__(self, name: str) -> object:
        # Anything else (reconfigure, …) is the wrapped stream's.
        return getattr(self._stream, name)


REDACTOR: Redactor = Redactor()
"""The process-wide instance; the CLI registers the loaded config's secrets on it."""
