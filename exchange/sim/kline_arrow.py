"""Parquet and Feather (Arrow IPC) kline files → closed ``Kline`` values, for replays.

Kline histories also come as columnar files: freqtrade stores its downloads as Feather, and
Binance-style exports are often kept as Parquet. Two column layouts are recognised by name
(extra columns are ignored):

- Binance: ``open_time, open, high, low, close, volume`` and optionally ``close_time,
  quote_volume, count``. Absent ones are derived: ``close_time`` is the end of the bar
  (``open_time`` + one interval - 1 ms, or the calendar month's end for ``1M``); ``quote_volume``
  is ``volume * close`` rounded half-even to 8 decimals (an estimate: the real figure sums each
  trade's price times quantity, which a bar no longer holds); ``count`` is 0 (unknown).
- freqtrade: ``date, open, high, low, close, volume``; derived as above.

Cell types accepted:

- timestamps: integers (milliseconds, or microseconds at or above ``MICROSECOND_THRESHOLD``,
  as in the CSV loader), digit strings likewise, or Arrow timestamps of any unit and time zone
  (Arrow stores them as UTC instants, so the zone changes nothing), truncated to milliseconds;
- prices and volumes: decimal128/256 and strings are read exactly; floats (freqtrade's
  float64) through ``Decimal(repr(value))``, the shortest text that round-trips, so 0.1 becomes
  ``Decimal("0.1")`` rather than the binary float's 55-digit expansion; integers exactly.

Validation matches ``exchange.sim.kline_files`` (one interval per bar for fixed intervals,
consistent OHLC, positive low, non-negative volumes, strictly increasing open times). A bad row
raises ``KlineFileError`` whose ``line`` is the 0-based row index in the table.

pyarrow is an optional dependency (extra ``parquet``), so it is imported only when a file is
read, through ``importlib`` because it ships no type information.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TypeVar

from app.domain.market import Kline
from exchange.binance.kline_gaps import interval_ms as interval_length_ms
from exchange.sim.kline_files import MICROSECOND_THRESHOLD, KlineFileError, check_bar

__all__ = ["MISSING_PYARROW", "load_kline_arrow"]

MISSING_PYARROW: Final = "reading .parquet/.feather needs pyarrow: pip install 'tradebus[parquet]'"

_PARQUET_SUFFIXES: Final = frozenset({".parquet"})
_FEATHER_SUFFIXES: Final = frozenset({".feather", ".arrow"})
_PRICE_COLUMNS: Final = ("open", "high", "low", "close", "volume")
_BINANCE_TIME: Final = "open_time"
_FREQTRADE_TIME: Final = "date"
_QUOTE_VOLUME_PLACES: Final = Decimal("1e-8")
# Wide enough that volume * close is exact before the rounding to 8 places.
_EXACT: Final = Context(prec=100)
# Arrow timestamp unit → (multiplier, divisor) to milliseconds.
_UNIT_TO_MS: Final[dict[str, tuple[int, int]]] = {
    "s": (1000, 1),
    "ms": (1, 1),
    "us": (1, 1000),
    "ns": (1, 1_000_000),
}

_Cell = Callable[[Any], Any]
_T = TypeVar("_T")


def load_kline_arrow(path: Path, *, symbol: str, interval: str) -> list[Kline]:
    """Read a ``.parquet``, ``.feather`` or ``.arrow`` kline file into closed klines, in order.

    Raises ``KlineFileError`` for a missing, unreadable or malformed file (or when pyarrow is not
    installed) and ``ValueError`` for an unknown interval name.
    """
    bar_ms = interval_length_ms(interval)  # unknown interval names raise ValueError here
    table = _read_table(path)
    columns: list[str] = [str(name) for name in table.column_names]
    time_column = _time_column(path, columns)
    rows = table.num_rows
    open_times = _timestamps(path, table, time_column)
    prices = {name: _decimals(path, table, name) for name in _PRICE_COLUMNS}
    close_times = _timestamps(path, table, "close_time") if "close_time" in columns else None
    quote_volumes = _decimals(path, table, "quote_volume") if "quote_volume" in columns else None
    counts = _counts(path, table) if "count" in columns else None

    klines: list[Kline] = []
    for row in range(rows):
        open_ms = _present(path, row, time_column, open_times[row])
        open_, high, low, close, volume = (
            _present(path, row, name, prices[name][row]) for name in _PRICE_COLUMNS
        )
        close_ms = (
            _present(path, row, "close_time", close_times[row])
            if close_times is not None
            else _derived_close_ms(open_ms, bar_ms)
        )
        quote_volume = (
            _present(path, row, "quote_volume", quote_volumes[row])
            if quote_volumes is not None
            else _EXACT.multiply(volume, close).quantize(
                _QUOTE_VOLUME_PLACES, rounding=ROUND_HALF_EVEN, context=_EXACT
            )
        )
        trades = _present(path, row, "count", counts[row]) if counts is not None else 0
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
        check_bar(path, row, kline, bar_ms)
        if klines and open_ms <= klines[-1].open_time_ms:
            previous = klines[-1].open_time_ms
            raise KlineFileError(path, row, f"open time {open_ms} is not after {previous}")
        klines.append(kline)
    return klines


def _read_table(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        reader_name = "pyarrow.parquet"
    elif suffix in _FEATHER_SUFFIXES:
        reader_name = "pyarrow.feather"
    else:
        raise KlineFileError(path, None, "expected a .parquet, .feather or .arrow file")
    if not path.is_file():
        raise KlineFileError(path, None, "no such file")
    try:
        pyarrow = importlib.import_module("pyarrow")
        reader: ModuleType = importlib.import_module(reader_name)
    except ImportError:
        raise KlineFileError(path, None, MISSING_PYARROW) from None
    try:
        return reader.read_table(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise KlineFileError(path, None, f"unreadable {suffix} file ({exc})") from exc


def _time_column(path: Path, columns: Sequence[str]) -> str:
    """Which layout the columns follow, by its time column; names what is missing otherwise."""
    present = set(columns)
    missing_prices = [name for name in _PRICE_COLUMNS if name not in present]
    for time_column, layout in ((_BINANCE_TIME, "Binance"), (_FREQTRADE_TIME, "freqtrade")):
        if time_column in present:
            if missing_prices:
                raise KlineFileError(
                    path, None, f"{layout} layout lacks columns: {', '.join(missing_prices)}"
                )
            return time_column
    wanted = [f"{_BINANCE_TIME} (Binance) or {_FREQTRADE_TIME} (freqtrade)", *missing_prices]
    found = ", ".join(columns) or "no columns"
    raise KlineFileError(
        path, None, f"unknown column layout: missing {', '.join(wanted)}; found {found}"
    )


def _timestamps(path: Path, table: Any, name: str) -> list[int | None]:
    """A time column as epoch milliseconds (``None`` for nulls, reported per row later)."""
    pyarrow = importlib.import_module("pyarrow")
    column = table.column(name)
    kind = column.type
    if pyarrow.types.is_timestamp(kind):
        multiplier, divisor = _UNIT_TO_MS[kind.unit]
        raw = column.cast(pyarrow.int64()).to_pylist()
        return [None if value is None else value * multiplier // divisor for value in raw]
    if pyarrow.types.is_integer(kind):
        return [None if value is None else _to_ms(value) for value in column.to_pylist()]
    if pyarrow.types.is_string(kind) or pyarrow.types.is_large_string(kind):
        return [
            None if text is None else _to_ms(_whole(path, row, name, text))
            for row, text in enumerate(column.to_pylist())
        ]
    raise KlineFileError(
        path, None, f"{name} has type {kind}; expected integer ms/µs, a timestamp or digit strings"
    )


def _to_ms(value: int) -> int:
    return value // 1000 if value >= MICROSECOND_THRESHOLD else value


def _decimals(path: Path, table: Any, name: str) -> list[Decimal | None]:
    pyarrow = importlib.import_module("pyarrow")
    column = table.column(name)
    kind = column.type
    convert: _Cell
    if pyarrow.types.is_floating(kind):
        convert = lambda value: Decimal(repr(float(value)))  # noqa: E731 - shortest round-trip text
    elif pyarrow.types.is_integer(kind):
        convert = Decimal
    elif pyarrow.types.is_decimal(kind):
        convert = lambda value: value  # noqa: E731 - already an exact Decimal
    elif pyarrow.types.is_string(kind) or pyarrow.types.is_large_string(kind):
        convert = lambda value: Decimal(value.strip())  # noqa: E731
    else:
        raise KlineFileError(
            path, None, f"{name} has type {kind}; expected float, integer, decimal or string"
        )
    values: list[Decimal | None] = []
    for row, cell in enumerate(column.to_pylist()):
        if cell is None:
            values.append(None)
            continue
        try:
            value = convert(cell)
        except InvalidOperation:
            raise KlineFileError(path, row, f"{name} {cell!r} is not a number") from None
        if not value.is_finite():
            raise KlineFileError(path, row, f"{name} {cell!r} is not a finite number")
        values.append(value)
    return values


def _counts(path: Path, table: Any) -> list[int | None]:
    pyarrow = importlib.import_module("pyarrow")
    column = table.column("count")
    kind = column.type
    cells = column.to_pylist()
    if pyarrow.types.is_integer(kind):
        for row, cell in enumerate(cells):
            if cell is not None and cell < 0:
                raise KlineFileError(path, row, f"count {cell} is negative")
        return [None if cell is None else int(cell) for cell in cells]
    if pyarrow.types.is_string(kind) or pyarrow.types.is_large_string(kind):
        return [
            None if cell is None else _whole(path, row, "count", cell)
            for row, cell in enumerate(cells)
        ]
    raise KlineFileError(path, None, f"count has type {kind}; expected integer or string")


def _whole(path: Path, row: int, column: str, text: str) -> int:
    stripped = text.strip()
    if not stripped.isdigit():  # also refuses signs, decimals and exponents, as the CSV loader
        raise KlineFileError(path, row, f"{column} {text!r} is not a whole number")
    return int(stripped)


def _present(path: Path, row: int, column: str, value: _T | None) -> _T:
    if value is None:
        raise KlineFileError(path, row, f"{column} is null")
    return value


def _derived_close_ms(open_ms: int, bar_ms: int | None) -> int:
    if bar_ms is not None:
        return open_ms + bar_ms - 1
    # 1M: the bar ends where the next calendar month (UTC) begins.
    opened = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
    year, month = (opened.year + 1, 1) if opened.month == 12 else (opened.year, opened.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000) - 1
