"""Parquet/Feather kline loading: both column layouts, every cell type, errors, real files."""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
feather = pytest.importorskip("pyarrow.feather")
parquet = pytest.importorskip("pyarrow.parquet")

from app.domain.market import Kline  # noqa: E402
from exchange.sim.kline_arrow import MISSING_PYARROW, load_kline_arrow  # noqa: E402
from exchange.sim.kline_files import KlineFileError, load_kline_csv, load_klines_file  # noqa: E402

T0 = 1_660_435_200_000  # 2022-08-14T00:00:00Z
MINUTE = 60_000


def _write(path: Path, columns: dict[str, Any]) -> Path:
    table = pa.table(columns)
    if path.suffix == ".parquet":
        parquet.write_table(table, path)
    else:
        feather.write_feather(table, path)
    return path


def _binance_strings(**overrides: list[Any]) -> dict[str, Any]:
    """Two valid 1m bars in Binance's layout, every value as text (as in the CSV files)."""
    columns: dict[str, Any] = {
        "open_time": [T0, T0 + MINUTE],
        "open": ["1983.55", "1982.30"],
        "high": ["1983.90", "1983.28"],
        "low": ["1982.14", "1982.01"],
        "close": ["1982.29", "1983.15"],
        "volume": ["205.131", "66.8131"],
        "close_time": [T0 + MINUTE - 1, T0 + 2 * MINUTE - 1],
        "quote_volume": ["406814.92308", "132465.114196"],
        "count": [288, 217],
        "ignore": ["0", "0"],
    }
    columns.update(overrides)
    return columns


def _freqtrade(**overrides: Any) -> dict[str, Any]:
    """Two valid 5m bars in freqtrade's layout: UTC nanosecond timestamps, float64 prices."""
    columns: dict[str, Any] = {
        "date": pa.array(
            [
                datetime(2019, 10, 11, 0, 0, tzinfo=UTC),
                datetime(2019, 10, 11, 0, 5, tzinfo=UTC),
            ],
            pa.timestamp("ns", tz="UTC"),
        ),
        "open": [0.1, 0.2],
        "high": [0.3, 0.25],
        "low": [0.1, 0.15],
        "close": [0.2, 0.15],
        "volume": [3478.0, 0.1],
    }
    columns.update(overrides)
    return columns


FREQTRADE_T0 = int(datetime(2019, 10, 11, tzinfo=UTC).timestamp() * 1000)


# --- Binance layout ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".feather", ".arrow"])
def test_binance_layout_with_string_prices_reads_exactly(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"k{suffix}", _binance_strings())

    klines = load_kline_arrow(path, symbol="ETHUSDT", interval="1m")

    assert klines == [
        Kline(
            "ETHUSDT",
            "1m",
            T0,
            T0 + MINUTE - 1,
            Decimal("1983.55"),
            Decimal("1983.90"),
            Decimal("1982.14"),
            Decimal("1982.29"),
            Decimal("205.131"),
            Decimal("406814.92308"),
            288,
            closed=True,
        ),
        Kline(
            "ETHUSDT",
            "1m",
            T0 + MINUTE,
            T0 + 2 * MINUTE - 1,
            Decimal("1982.30"),
            Decimal("1983.28"),
            Decimal("1982.01"),
            Decimal("1983.15"),
            Decimal("66.8131"),
            Decimal("132465.114196"),
            217,
            closed=True,
        ),
    ]
    assert str(klines[0].high) == "1983.90"  # text kept as written, trailing zero included


def test_binance_microsecond_times_are_truncated_to_ms(tmp_path: Path) -> None:
    columns = _binance_strings(
        open_time=[T0 * 1000, (T0 + MINUTE) * 1000 + 7],
        close_time=[(T0 + MINUTE - 1) * 1000 + 999, (T0 + 2 * MINUTE - 1) * 1000 + 999],
    )
    path = _write(tmp_path / "k.parquet", columns)

    klines = load_kline_arrow(path, symbol="ETHUSDT", interval="1m")

    assert [(k.open_time_ms, k.close_time_ms) for k in klines] == [
        (T0, T0 + MINUTE - 1),
        (T0 + MINUTE, T0 + 2 * MINUTE - 1),
    ]


def test_binance_digit_string_times_and_counts_are_accepted(tmp_path: Path) -> None:
    columns = _binance_strings(
        open_time=[str(T0), str(T0 + MINUTE)],
        close_time=[str(T0 + MINUTE - 1), str(T0 + 2 * MINUTE - 1)],
        count=["288", "217"],
    )
    path = _write(tmp_path / "k.parquet", columns)

    klines = load_kline_arrow(path, symbol="ETHUSDT", interval="1m")

    assert [k.open_time_ms for k in klines] == [T0, T0 + MINUTE]
    assert [k.trades for k in klines] == [288, 217]


def test_binance_optional_columns_are_derived(tmp_path: Path) -> None:
    columns = _binance_strings()
    for name in ("close_time", "quote_volume", "count", "ignore"):
        del columns[name]
    path = _write(tmp_path / "k.feather", columns)

    first, second = load_kline_arrow(path, symbol="ETHUSDT", interval="1m")

    assert first.close_time_ms == T0 + MINUTE - 1
    assert second.close_time_ms == T0 + 2 * MINUTE - 1
    # volume * close, rounded half-even to 8 places: 205.131 * 1982.29 = 406629.12999
    assert first.quote_volume == Decimal("406629.12999000")
    # 66.8131 * 1983.15 = 132500.399265 (exact in 8 places)
    assert second.quote_volume == Decimal("132500.39926500")
    assert first.trades == second.trades == 0


def test_derived_quote_volume_is_rounded_to_eight_places(tmp_path: Path) -> None:
    columns = _binance_strings(volume=["0.123456789", "1"], close=["1983.000000001", "1983.15"])
    del columns["quote_volume"]
    path = _write(tmp_path / "k.parquet", columns)

    first, _ = load_kline_arrow(path, symbol="ETHUSDT", interval="1m")

    # the exact product has 18 places; only 8 are kept
    exact = Decimal("0.123456789") * Decimal("1983.000000001")
    assert first.quote_volume == exact.quantize(Decimal("1e-8"))
    assert first.quote_volume.as_tuple().exponent == -8


def test_decimal128_prices_are_exact(tmp_path: Path) -> None:
    kind = pa.decimal128(20, 8)
    columns = _binance_strings(
        open=pa.array([Decimal("1983.55000000"), Decimal("1982.30000000")], kind),
        high=pa.array([Decimal("1983.90000000"), Decimal("1983.28000000")], kind),
        low=pa.array([Decimal("1982.14000000"), Decimal("1982.01000000")], kind),
        close=pa.array([Decimal("1982.29000000"), Decimal("1983.15000000")], kind),
    )
    path = _write(tmp_path / "k.parquet", columns)

    first, second = load_kline_arrow(path, symbol="ETHUSDT", interval="1m")

    assert str(first.open) == "1983.55000000"
    assert second.close == Decimal("1983.15")


def test_monthly_bars_end_at_the_next_calendar_month(tmp_path: Path) -> None:
    feb = int(datetime(2024, 2, 1, tzinfo=UTC).timestamp() * 1000)
    dec = int(datetime(2024, 12, 1, tzinfo=UTC).timestamp() * 1000)
    columns = {
        "open_time": [feb, dec],
        "open": ["1", "1"],
        "high": ["1", "1"],
        "low": ["1", "1"],
        "close": ["1", "1"],
        "volume": ["1", "1"],
    }
    path = _write(tmp_path / "k.parquet", columns)

    first, second = load_kline_arrow(path, symbol="ETHUSDT", interval="1M")

    assert first.close_time_ms == int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000) - 1
    assert second.close_time_ms == int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000) - 1


# --- freqtrade layout ----------------------------------------------------------------------


def test_freqtrade_layout_floats_become_their_shortest_decimal(tmp_path: Path) -> None:
    path = _write(tmp_path / "XRP_ETH-5m.feather", _freqtrade())

    first, second = load_kline_arrow(path, symbol="XRPETH", interval="5m")

    assert first == Kline(
        "XRPETH",
        "5m",
        FREQTRADE_T0,
        FREQTRADE_T0 + 5 * MINUTE - 1,
        Decimal("0.1"),
        Decimal("0.3"),
        Decimal("0.1"),
        Decimal("0.2"),
        Decimal("3478.0"),
        Decimal("695.60000000"),  # 3478.0 * 0.2, estimated
        0,
        closed=True,
    )
    assert str(second.volume) == "0.1"  # not 0.1000000000000000055511151231257827...
    assert second.open_time_ms == FREQTRADE_T0 + 5 * MINUTE


@pytest.mark.parametrize(
    ("unit", "tz"),
    [("s", None), ("ms", "UTC"), ("us", None), ("ns", "UTC"), ("ms", "Asia/Tokyo")],
)
def test_any_timestamp_unit_and_zone_becomes_utc_ms(
    tmp_path: Path, unit: str, tz: str | None
) -> None:
    # Arrow timestamps are UTC instants whatever the display zone, so each case reads the same.
    instants = [FREQTRADE_T0, FREQTRADE_T0 + 5 * MINUTE]
    multiplier, divisor = {"s": (1, 1000), "ms": (1, 1), "us": (1000, 1), "ns": (10**6, 1)}[unit]
    raw = [ms * multiplier // divisor for ms in instants]
    date = pa.array(raw, pa.int64()).cast(pa.timestamp(unit, tz=tz))
    path = _write(tmp_path / "k.parquet", _freqtrade(date=date))

    klines = load_kline_arrow(path, symbol="XRPETH", interval="5m")

    assert [k.open_time_ms for k in klines] == instants


def test_sub_millisecond_timestamps_are_truncated(tmp_path: Path) -> None:
    date = pa.array(
        [FREQTRADE_T0 * 1_000_000 + 999_999, (FREQTRADE_T0 + 5 * MINUTE) * 1_000_000],
        pa.int64(),
    ).cast(pa.timestamp("ns", tz="UTC"))
    path = _write(tmp_path / "k.feather", _freqtrade(date=date))

    klines = load_kline_arrow(path, symbol="XRPETH", interval="5m")

    assert [k.open_time_ms for k in klines] == [FREQTRADE_T0, FREQTRADE_T0 + 5 * MINUTE]


@pytest.mark.parametrize("scale", [1, 1000])  # integer ms, integer µs
def test_freqtrade_integer_dates(tmp_path: Path, scale: int) -> None:
    date = [FREQTRADE_T0 * scale, (FREQTRADE_T0 + 5 * MINUTE) * scale]
    path = _write(tmp_path / "k.parquet", _freqtrade(date=date))

    klines = load_kline_arrow(path, symbol="XRPETH", interval="5m")

    assert [k.open_time_ms for k in klines] == [FREQTRADE_T0, FREQTRADE_T0 + 5 * MINUTE]


def test_gaps_between_bars_are_kept(tmp_path: Path) -> None:
    date = pa.array([FREQTRADE_T0, FREQTRADE_T0 + 60 * MINUTE], pa.int64())
    path = _write(tmp_path / "k.parquet", _freqtrade(date=date))

    klines = load_kline_arrow(path, symbol="XRPETH", interval="5m")

    assert [k.open_time_ms for k in klines] == [FREQTRADE_T0, FREQTRADE_T0 + 60 * MINUTE]


def test_load_klines_file_dispatches_arrow_suffixes(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.feather", _freqtrade())

    assert load_klines_file(path, symbol="XRPETH", interval="5m") == load_kline_arrow(
        path, symbol="XRPETH", interval="5m"
    )


# --- errors --------------------------------------------------------------------------------


def _error(path: Path, interval: str = "1m") -> KlineFileError:
    with pytest.raises(KlineFileError) as caught:
        load_kline_arrow(path, symbol="ETHUSDT", interval=interval)
    return caught.value


def test_unknown_layout_names_the_missing_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.parquet", {"time": [T0], "open": ["1"], "close": ["1"]})

    error = _error(path)

    assert error.line is None
    assert "open_time (Binance) or date (freqtrade)" in error.reason
    assert "high, low, volume" in error.reason
    assert "found time, open, close" in error.reason


def test_partial_layout_names_its_missing_columns(tmp_path: Path) -> None:
    columns = _binance_strings()
    del columns["high"], columns["volume"]
    path = _write(tmp_path / "k.parquet", columns)

    assert _error(path).reason == "Binance layout lacks columns: high, volume"


@pytest.mark.parametrize(
    ("overrides", "row", "fragment"),
    [
        ({"close_time": [T0 + MINUTE - 1, T0 + 3 * MINUTE - 1]}, 1, "bar spans 120000 ms"),
        ({"close_time": [T0, T0 + 2 * MINUTE - 1]}, 0, "is not after open"),
        ({"high": ["1983.90", "1983.00"]}, 1, "inconsistent OHLC"),
        ({"low": ["1984", "1982.01"]}, 0, "inconsistent OHLC"),
        ({"low": ["0", "1982.01"]}, 0, "low 0 is not positive"),
        ({"volume": ["205.131", "-1"]}, 1, "negative volume"),
        ({"quote_volume": ["-1", "1"]}, 0, "negative volume"),
        (
            {"open_time": [T0, T0], "close_time": [T0 + MINUTE - 1] * 2},
            1,
            f"open time {T0} is not after {T0}",
        ),
        ({"open": ["1983.55", "abc"]}, 1, "open 'abc' is not a number"),
        ({"open": ["NaN", "1982.30"]}, 0, "is not a finite number"),
        ({"open": ["1983.55", None]}, 1, "open is null"),
        ({"count": ["288", "-3"]}, 1, "count '-3' is not a whole number"),
        ({"count": [288, -3]}, 1, "count -3 is negative"),
        ({"open_time": [str(T0), "1.5e12"]}, 1, "is not a whole number"),
    ],
)
def test_bad_rows_name_their_row_index(
    tmp_path: Path, overrides: dict[str, list[Any]], row: int, fragment: str
) -> None:
    path = _write(tmp_path / "k.parquet", _binance_strings(**overrides))

    error = _error(path)

    assert error.line == row
    assert fragment in error.reason
    assert str(error).startswith(f"{path}:{row}: ")


def test_float_nan_price_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.feather", _freqtrade(close=[0.2, float("nan")]))

    error = _error(path, "5m")

    assert (error.line, error.reason) == (1, "close nan is not a finite number")


def test_unsupported_column_types_are_refused(tmp_path: Path) -> None:
    floats = _write(tmp_path / "t.parquet", _binance_strings(open_time=[1.0e12, 1.1e12]))
    booleans = _write(tmp_path / "b.parquet", _binance_strings(open=[True, False]))

    assert "open_time has type double" in _error(floats).reason
    assert "open has type bool" in _error(booleans).reason


def test_unreadable_files(tmp_path: Path) -> None:
    garbage = tmp_path / "k.parquet"
    garbage.write_bytes(b"not parquet at all")
    garbage_feather = tmp_path / "k.feather"
    garbage_feather.write_bytes(b"not feather at all")

    assert _error(garbage).reason.startswith("unreadable .parquet file")
    assert _error(garbage_feather).reason.startswith("unreadable .feather file")
    assert _error(tmp_path / "absent.parquet").reason == "no such file"
    assert "expected a .parquet" in _error(tmp_path / "k.csv").reason


def test_unknown_interval_raises_value_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.parquet", _binance_strings())

    with pytest.raises(ValueError, match="unknown kline interval"):
        load_kline_arrow(path, symbol="ETHUSDT", interval="7m")


def test_missing_pyarrow_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "k.parquet", _binance_strings())
    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.feather"):
        monkeypatch.setitem(sys.modules, name, None)  # None makes the import fail

    error = _error(path)

    assert error.reason == MISSING_PYARROW
    assert "pip install 'tradebus[parquet]'" in str(error)


# --- real files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "symbol", "interval", "bar_ms"),
    [
        ("freqtrade/spot/XRP_ETH-5m.feather", "XRPETH", "5m", 5 * MINUTE),
        ("freqtrade/futures/XRP_USDT_USDT-1h-futures.feather", "XRPUSDT", "1h", 60 * MINUTE),
    ],
)
def test_real_freqtrade_files(
    kline_fixtures: Path, relative: str, symbol: str, interval: str, bar_ms: int
) -> None:
    path = kline_fixtures / relative

    klines = load_kline_arrow(path, symbol=symbol, interval=interval)

    raw = feather.read_table(path).to_pylist()
    assert len(klines) == len(raw) > 0
    assert all(k.close_time_ms - k.open_time_ms + 1 == bar_ms for k in klines)
    assert all(a.open_time_ms < b.open_time_ms for a, b in itertools.pairwise(klines))
    assert all(k.low <= min(k.open, k.close) and max(k.open, k.close) <= k.high for k in klines)
    for index in (0, len(raw) // 2, len(raw) - 1):
        kline, row = klines[index], raw[index]
        assert kline.open_time_ms == int(row["date"].timestamp() * 1000)
        for name in ("open", "high", "low", "close", "volume"):
            value = getattr(kline, name)
            assert value == Decimal(repr(row[name]))
            assert float(value) == row[name]  # the decimal text round-trips to the same float


def test_real_binance_csv_round_trips_through_parquet(kline_fixtures: Path, tmp_path: Path) -> None:
    csv_path = kline_fixtures / "live_trading_indicators/extracted/spot/ETHUSDT-1m-2022-08-14.csv"
    from_csv = load_kline_csv(csv_path, symbol="ETHUSDT", interval="1m")
    assert len(from_csv) == 1440
    # Written as text, as the CSV holds it, so Decimal values (and their exponents) survive.
    text_columns = {
        "open_time": [str(k.open_time_ms) for k in from_csv],
        "open": [str(k.open) for k in from_csv],
        "high": [str(k.high) for k in from_csv],
        "low": [str(k.low) for k in from_csv],
        "close": [str(k.close) for k in from_csv],
        "volume": [str(k.volume) for k in from_csv],
        "close_time": [str(k.close_time_ms) for k in from_csv],
        "quote_volume": [str(k.quote_volume) for k in from_csv],
        "count": [str(k.trades) for k in from_csv],
    }
    path = _write(tmp_path / "ETHUSDT-1m-2022-08-14.parquet", text_columns)

    from_parquet = load_kline_arrow(path, symbol="ETHUSDT", interval="1m")

    assert from_parquet == from_csv
    assert [str(k.open) for k in from_parquet] == [str(k.open) for k in from_csv]
