"""Binance public-data kline files (data.binance.vision) → closed ``Kline`` values.

The files are CSV with twelve columns: open_time, open, high, low, close, volume, close_time,
quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore. Differences between the
archives that this loader absorbs:

- spot files have no header row; USD-M futures files start with one (``open_time,...``);
- spot files from 2025 on carry timestamps in microseconds; older ones and futures files in
  milliseconds. A timestamp at or above ``MICROSECOND_THRESHOLD`` (year 5138 read as ms, 1973
  read as µs) is taken as microseconds and truncated to milliseconds;
- downloads are zips holding one CSV; ``load_kline_csv`` reads either form.

Every row must be well formed: a bad one raises ``KlineFileError`` naming file, line and
reason, rather than being skipped, because a silently thinned history would mislead a replay.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from app.domain.market import Kline
from exchange.binance.kline_gaps import interval_ms as interval_length_ms

__all__ = [
    "MICROSECOND_THRESHOLD",
    "KlineFileError",
    "check_bar",
    "load_kline_csv",
    "load_klines_file",
]

MICROSECOND_THRESHOLD: Final = 10**14
_COLUMNS: Final = 12
_HEADER_FIRST_CELL: Final = "open_time"


class KlineFileError(ValueError):
    """A kline file that cannot be read as Binance public data; says where and why."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        where = f"{path}" if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


_ARROW_SUFFIXES: Final = (".parquet", ".feather", ".arrow")


def load_klines_file(path: Path, *, symbol: str, interval: str) -> list[Kline]:
    """Any supported kline file by its suffix: CSV or zip here, Parquet/Feather through
    ``exchange.sim.kline_arrow`` (which needs pyarrow, an optional extra)."""
    if not path.is_file():
        raise KlineFileError(path, None, "no such file")
    if path.suffix.lower() in _ARROW_SUFFIXES:
        from exchange.sim.kline_arrow import load_kline_arrow

        return load_kline_arrow(path, symbol=symbol, interval=interval)
    return load_kline_csv(path, symbol=symbol, interval=interval)


def load_kline_csv(path: Path, *, symbol: str, interval: str) -> list[Kline]:
    """Read a Binance kline CSV (or a ``.zip`` holding one) into closed klines, in file order.

    Open times must strictly increase (gaps are allowed: exchange outages leave real holes), and
    for fixed-length intervals each row must span exactly one ``interval``.
    """
    bar_ms = interval_length_ms(interval)  # unknown interval names raise ValueError here
    if path.suffix.lower() == ".zip":
        return _load_zip(path, symbol, interval, bar_ms)
    with path.open(newline="", encoding="utf-8") as text:
        return _parse_rows(path, csv.reader(text), symbol, interval, bar_ms)


def _load_zip(path: Path, symbol: str, interval: str, bar_ms: int | None) -> list[Kline]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise KlineFileError(path, None, f"not a zip file ({exc})") from exc
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            names = [info.filename for info in members]
            raise KlineFileError(path, None, f"expected one CSV in the zip, found {names}")
        with (
            archive.open(members[0]) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
        ):
            where = path / members[0].filename  # errors name the member inside the archive
            return _parse_rows(where, csv.reader(text), symbol, interval, bar_ms)


def _parse_rows(
    path: Path, rows: Iterable[list[str]], symbol: str, interval: str, bar_ms: int | None
) -> list[Kline]:
    klines: list[Kline] = []
    previous_open_ms: int | None = None
    try:
        for line, row in _numbered_data_rows(rows):
            kline = _parse_row(path, line, row, symbol, interval, bar_ms)
            if previous_open_ms is not None and kline.open_time_ms <= previous_open_ms:
                raise KlineFileError(
                    path, line, f"open time {kline.open_time_ms} is not after {previous_open_ms}"
                )
            previous_open_ms = kline.open_time_ms
            klines.append(kline)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise KlineFileError(path, None, f"unreadable CSV ({exc})") from exc
    return klines


def _numbered_data_rows(rows: Iterable[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Rows with their 1-based line numbers, minus a header on line 1 and blank lines."""
    for line, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if line == 1 and row[0].strip().lower() == _HEADER_FIRST_CELL:
            continue
        yield line, row


def _parse_row(
    path: Path, line: int, row: list[str], symbol: str, interval: str, bar_ms: int | None
) -> Kline:
    if len(row) != _COLUMNS:
        raise KlineFileError(path, line, f"expected {_COLUMNS} columns, found {len(row)}")
    open_ms = _timestamp_ms(path, line, "open_time", row[0])
    close_ms = _timestamp_ms(path, line, "close_time", row[6])
    open_, high, low, close, volume, quote_volume = (
        _decimal(path, line, name, row[index])
        for name, index in (
            ("open", 1),
            ("high", 2),
            ("low", 3),
            ("close", 4),
            ("volume", 5),
            ("quote_volume", 7),
        )
    )
    trades = _integer(path, line, "count", row[8])
    kline = Kline(
        symbol,
        interval,
        open_ms,
        close_ms,
        open_,
        high,
        low,
        close,
        volume,
        quote_volume,
        trades,
        closed=True,
    )
    check_bar(path, line, kline, bar_ms)
    return kline


def check_bar(path: Path, line: int, kline: Kline, bar_ms: int | None) -> None:
    """The checks every loaded bar passes, whatever the file kind: it spans one interval
    (``bar_ms``, None for calendar months), its OHLC are consistent and positive, and its
    volumes and trade count are not negative."""
    open_ms, close_ms = kline.open_time_ms, kline.close_time_ms
    if close_ms <= open_ms:
        raise KlineFileError(path, line, f"close time {close_ms} is not after open {open_ms}")
    if bar_ms is not None and close_ms - open_ms + 1 != bar_ms:
        raise KlineFileError(
            path,
            line,
            f"bar spans {close_ms - open_ms + 1} ms, not one {kline.interval} ({bar_ms} ms)",
        )
    open_, high, low, close = kline.open, kline.high, kline.low, kline.close
    if low <= 0:
        raise KlineFileError(path, line, f"low {low} is not positive")
    if not (low <= min(open_, close) and max(open_, close) <= high):
        raise KlineFileError(
            path, line, f"inconsistent OHLC: open={open_} high={high} low={low} close={close}"
        )
    if kline.volume < 0 or kline.quote_volume < 0 or kline.trades < 0:
        raise KlineFileError(path, line, "negative volume or trade count")


def _integer(path: Path, line: int, column: str, cell: str) -> int:
    text = cell.strip()
    if not text.isdigit():  # also refuses signs, decimals and exponents
        raise KlineFileError(path, line, f"{column} {cell!r} is not a whole number")
    return int(text)


def _timestamp_ms(path: Path, line: int, column: str, cell: str) -> int:
    value = _integer(path, line, column, cell)
    return value // 1000 if value >= MICROSECOND_THRESHOLD else value


def _decimal(path: Path, line: int, column: str, cell: str) -> Decimal:
    try:
        value = Decimal(cell.strip())
    except InvalidOperation:
        raise KlineFileError(path, line, f"{column} {cell!r} is not a number") from None
    if not value.is_finite():
        raise KlineFileError(path, line, f"{column} {cell!r} is not a finite number")
    return value
