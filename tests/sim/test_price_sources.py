"""Tests for the simulator's price sources: kline files, the synthetic market, intrabar updates
and replay."""

from __future__ import annotations

import itertools
import random
import zipfile
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.market import Kline
from exchange.sim.price_sources import (
    KlineFileError,
    PriceSource,
    Regime,
    ReplayMarket,
    SyntheticMarket,
    intrabar_updates,
    load_kline_csv,
)
from exchange.sim.synthetic import MAX_REGIME_BARS

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)
SPOT_ROWS = (
    "1660435200000,1983.55000000,1983.90000000,1982.14000000,1982.29000000,205.13100000,"
    "1660435259999,406814.92308000,288,105.29930000,208854.93067400,0\n"
    "1660435260000,1982.30000000,1983.28000000,1982.01000000,1983.15000000,66.81310000,"
    "1660435319999,132465.11419600,217,36.23750000,71839.19746300,0\n"
)
FIRST_SPOT = Kline(
    "ETHUSDT",
    "1m",
    1660435200000,
    1660435259999,
    Decimal("1983.55"),
    Decimal("1983.90"),
    Decimal("1982.14"),
    Decimal("1982.29"),
    Decimal("205.131"),
    Decimal("406814.92308"),
    288,
    closed=True,
)
# 2025-01-01 in microseconds, as spot files from 2025 on write it.
MICROS_ROW = (
    "1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,"
    "8.21827000,1735689659999999,768978.53200000,1362,4.21447000,394340.41000000,0\n"
)
FUTURES_ROW = (
    "1662336000000,19992.70,20000.00,19988.10,19996.80,482.638,1662336059999,"
    "9650791.43440,4263,302.950,6057727.57980,0\n"
)


def write(tmp_path: Path, text: str, name: str = "klines.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def bar(
    open_: str = "100.00",
    high: str = "101.50",
    low: str = "99.25",
    close: str = "100.75",
    *,
    open_ms: int = 60_000,
    volume: str = "12.345",
) -> Kline:
    return Kline(
        "BTCUSDT",
        "1m",
        open_ms,
        open_ms + 59_999,
        Decimal(open_),
        Decimal(high),
        Decimal(low),
        Decimal(close),
        Decimal(volume),
        Decimal("1234.5678"),
        42,
        closed=True,
    )


def market(seed: int = 7, **overrides: Any) -> SyntheticMarket:
    arguments: dict[str, Any] = {
        "seed": seed,
        "start_price": Decimal("30000.00"),
        "tick_size": Decimal("0.01"),
        "start_ms": 1_700_000_000_000,
    }
    arguments.update(overrides)
    return SyntheticMarket("BTCUSDT", **arguments)


def assert_consistent(kline: Kline) -> None:
    assert kline.low <= kline.open <= kline.high
    assert kline.low <= kline.close <= kline.high
    assert kline.low > 0
    assert kline.volume > 0


# --- kline files ---------------------------------------------------------------------------


def test_spot_file_without_header(tmp_path: Path) -> None:
    klines = load_kline_csv(write(tmp_path, SPOT_ROWS), symbol="ETHUSDT", interval="1m")
    assert klines[0] == FIRST_SPOT
    assert [k.open_time_ms for k in klines] == [1660435200000, 1660435260000]
    assert all(k.closed for k in klines)


def test_futures_file_with_header(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + FUTURES_ROW)
    (kline,) = load_kline_csv(path, symbol="BTCUSDT", interval="1m")
    assert kline.open_time_ms == 1662336000000
    assert kline.close_time_ms == 1662336059999
    assert kline.close == Decimal("19996.80")
    assert kline.trades == 4263


def test_microsecond_timestamps_become_milliseconds(tmp_path: Path) -> None:
    (kline,) = load_kline_csv(write(tmp_path, MICROS_ROW), symbol="BTCUSDT", interval="1m")
    assert kline.open_time_ms == 1735689600000
    assert kline.close_time_ms == 1735689659999


def test_zip_holding_one_csv(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDT-1m-2022-08-14.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ETHUSDT-1m-2022-08-14.csv", SPOT_ROWS)
    klines = load_kline_csv(path, symbol="ETHUSDT", interval="1m")
    assert klines == load_kline_csv(write(tmp_path, SPOT_ROWS), symbol="ETHUSDT", interval="1m")
    assert klines[0] == FIRST_SPOT


def test_zip_with_two_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", SPOT_ROWS)
        archive.writestr("b.csv", SPOT_ROWS)
    with pytest.raises(KlineFileError, match="expected one CSV"):
        load_kline_csv(path, symbol="ETHUSDT", interval="1m")


def test_corrupt_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KlineFileError, match="not a zip"):
        load_kline_csv(write(tmp_path, SPOT_ROWS, "bad.zip"), symbol="ETHUSDT", interval="1m")


def test_empty_file_gives_no_klines(tmp_path: Path) -> None:
    assert load_kline_csv(write(tmp_path, ""), symbol="ETHUSDT", interval="1m") == []
    assert load_kline_csv(write(tmp_path, HEADER, "h.csv"), symbol="X", interval="1m") == []


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (FUTURES_ROW.replace(",0\n", "\n"), "expected 12 columns, found 11"),
        (FUTURES_ROW.replace("19992.70", "abc"), "open 'abc' is not a number"),
        (FUTURES_ROW.replace("19992.70", "NaN"), "open 'NaN' is not a finite number"),
        (FUTURES_ROW.replace(",4263,", ",42.5,"), "count '42.5' is not a whole number"),
        (FUTURES_ROW.replace("1662336000000", "-1662336000000"), "open_time .* not a whole"),
        (FUTURES_ROW.replace("19988.10", "19995.00"), "inconsistent OHLC"),
        (FUTURES_ROW.replace("19988.10", "0"), "low 0 is not positive"),
        (FUTURES_ROW.replace("482.638", "-482.638"), "negative volume"),
        (FUTURES_ROW.replace("1662336059999", "1662336119999"), "not one 1m"),
        (FUTURES_ROW.replace("1662336059999", "1662335999999"), "close time .* not after"),
    ],
)
def test_malformed_row_names_file_line_and_reason(tmp_path: Path, row: str, reason: str) -> None:
    next_row = FUTURES_ROW.replace("1662336000000", "1662335940000").replace(
        "1662336059999", "1662335999999"
    )
    path = write(tmp_path, HEADER + next_row + row)
    with pytest.raises(KlineFileError, match=reason) as caught:
        load_kline_csv(path, symbol="BTCUSDT", interval="1m")
    assert caught.value.path == path
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: ")


def test_rows_out_of_order_are_refused(tmp_path: Path) -> None:
    rows = SPOT_ROWS.splitlines(keepends=True)
    with pytest.raises(KlineFileError, match=r":2: open time 1660435200000 is not after"):
        load_kline_csv(write(tmp_path, rows[1] + rows[0]), symbol="ETHUSDT", interval="1m")


def test_header_is_only_skipped_on_the_first_line(tmp_path: Path) -> None:
    with pytest.raises(KlineFileError, match=r":2: open_time 'open_time' is not a whole number"):
        load_kline_csv(write(tmp_path, FUTURES_ROW + HEADER), symbol="BTCUSDT", interval="1m")


def test_error_inside_a_zip_names_the_member(tmp_path: Path) -> None:
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner.csv", FUTURES_ROW.replace("19992.70", "x"))
    with pytest.raises(KlineFileError, match=r"bad\.zip/inner\.csv:1: open 'x'"):
        load_kline_csv(path, symbol="BTCUSDT", interval="1m")


def test_unknown_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown kline interval"):
        load_kline_csv(write(tmp_path, SPOT_ROWS), symbol="ETHUSDT", interval="7m")


def test_real_spot_and_futures_files(kline_fixtures: Path) -> None:
    base = kline_fixtures / "live_trading_indicators"
    spot = load_kline_csv(
        base / "spot" / "ETHUSDT-1m-2022-08-14.zip", symbol="ETHUSDT", interval="1m"
    )
    spot_csv = base / "extracted" / "spot" / "ETHUSDT-1m-2022-08-14.csv"
    assert spot == load_kline_csv(spot_csv, symbol="ETHUSDT", interval="1m")
    assert len(spot) == 1440
    assert spot[0] == FIRST_SPOT
    futures = load_kline_csv(
        base / "usdm" / "BTCUSDT-1m-2022-09-05.zip", symbol="BTCUSDT", interval="1m"
    )
    assert len(futures) == 1440  # the header row is not a kline
    assert futures[0].open == Decimal("19992.70")
    hourly = load_kline_csv(
        base / "extracted" / "usdm" / "ETHUSDT-1h-2022-08-24.csv", symbol="ETHUSDT", interval="1h"
    )
    assert len(hourly) == 24
    for kline in (*spot, *futures, *hourly):
        assert_consistent(kline)
    for series in (spot, futures, hourly):
        starts = [k.open_time_ms for k in series]
        assert starts == sorted(starts)
        assert all(k.open_time_ms == p.close_time_ms + 1 for p, k in itertools.pairwise(series))


# --- synthetic market -----------------------------------------------------------------------


def test_same_seed_gives_identical_bars() -> None:
    first, second = market(seed=11), market(seed=11)
    assert [first.next_bar() for _ in range(300)] == [second.next_bar() for _ in range(300)]


def test_different_seeds_differ() -> None:
    first, second = market(seed=1), market(seed=2)
    assert [first.next_bar() for _ in range(50)] != [second.next_bar() for _ in range(50)]


def test_bars_are_contiguous_consistent_and_on_the_tick() -> None:
    source = market(interval_ms=300_000)
    assert (source.symbol, source.interval) == ("BTCUSDT", "5m")
    bars = [source.next_bar() for _ in range(500)]
    assert bars[0].open_time_ms == 1_700_000_000_000
    assert bars[0].open == Decimal("30000.00")
    for previous, current in itertools.pairwise(bars):
        assert current.open_time_ms == previous.close_time_ms + 1
        assert current.open == previous.close
    for kline in bars:
        assert kline.closed
        assert kline.close_time_ms - kline.open_time_ms == 299_999
        assert_consistent(kline)
        assert kline.quote_volume > 0
        assert kline.trades >= 1
        for price in (kline.open, kline.high, kline.low, kline.close):
            assert price % Decimal("0.01") == 0


def test_regimes_switch_and_shape_the_path() -> None:
    source = market(seed=3)
    seen: dict[Regime, list[Kline]] = {regime: [] for regime in Regime}
    switches = 0
    previous = source.current_regime
    for _ in range(4000):
        regime = source.current_regime
        switches += regime is not previous
        previous = regime
        seen[regime].append(source.next_bar())
    assert all(seen.values()), "every regime occurs"
    assert switches >= 4000 // MAX_REGIME_BARS - 1

    def mean_move(bars: list[Kline]) -> Decimal:
        return sum(((k.close - k.open) / k.open for k in bars), Decimal(0)) / len(bars)

    def mean_range(bars: list[Kline]) -> Decimal:
        return sum(((k.high - k.low) / k.open for k in bars), Decimal(0)) / len(bars)

    assert mean_move(seen[Regime.TRENDING_UP]) > 0 > mean_move(seen[Regime.TRENDING_DOWN])
    assert mean_range(seen[Regime.VOLATILE]) > 2 * mean_range(seen[Regime.RANGING])


def test_prices_stay_positive_when_the_price_is_one_tick() -> None:
    source = market(start_price=Decimal("0.0001"), tick_size=Decimal("0.0001"))
    for _ in range(500):
        kline = source.next_bar()
        assert kline.low >= Decimal("0.0001")
        assert_consistent(kline)


@pytest.mark.parametrize(
    "overrides",
    [
        {"interval_ms": 7_000},
        {"tick_size": Decimal(0)},
        {"start_price": Decimal("0.001"), "tick_size": Decimal("0.01")},
        {"base_volume": Decimal(-1)},
    ],
)
def test_synthetic_market_refuses_bad_settings(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"interval|tick_size|start_price|base_volume"):
        market(**overrides)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    ticks=st.integers(1, 10**6),
    tick_exponent=st.integers(-8, 1),
)
def test_generator_invariants(seed: int, ticks: int, tick_exponent: int) -> None:
    tick = Decimal(1).scaleb(tick_exponent)
    source = market(seed=seed, start_price=ticks * tick, tick_size=tick, interval_ms=1_000)
    previous: Kline | None = None
    for _ in range(60):
        kline = source.next_bar()
        assert_consistent(kline)
        assert kline.open % tick == kline.high % tick == kline.low % tick == 0
        assert kline.close % tick == 0
        if previous is not None:
            assert kline.open_time_ms == previous.open_time_ms + 1_000
        previous = kline


# --- intrabar updates -----------------------------------------------------------------------


def assert_valid_updates(final: Kline, updates: list[Kline], steps: int) -> None:
    assert len(updates) == steps
    assert updates[-1] == final
    assert all(not u.closed for u in updates[:-1])
    for update in updates:
        assert (update.symbol, update.interval) == (final.symbol, final.interval)
        assert (update.open_time_ms, update.close_time_ms) == (
            final.open_time_ms,
            final.close_time_ms,
        )
        assert update.open == final.open
        assert final.low <= update.low <= min(update.open, update.close)
        assert max(update.open, update.close) <= update.high <= final.high
    for earlier, later in itertools.pairwise(updates):
        assert later.high >= earlier.high
        assert later.low <= earlier.low
        assert later.volume >= earlier.volume
        assert later.quote_volume >= earlier.quote_volume
        assert later.trades >= earlier.trades


def test_intrabar_updates_form_the_bar() -> None:
    final = bar()
    updates = intrabar_updates(final, steps=10, rng=random.Random(5))
    assert_valid_updates(final, updates, 10)
    in_progress = updates[:-1]
    # the path really reaches both extremes before the bar closes, on the bar's price grid
    assert in_progress[-1].high == final.high
    assert in_progress[-1].low == final.low
    for update in in_progress:
        assert update.close % Decimal("0.01") == 0
    assert len({u.close for u in in_progress}) > 2


def test_intrabar_updates_are_deterministic() -> None:
    final = bar()
    first = intrabar_updates(final, steps=8, rng=random.Random(9))
    assert first == intrabar_updates(final, steps=8, rng=random.Random(9))
    assert first != intrabar_updates(final, steps=8, rng=random.Random(10))


def test_one_step_is_just_the_bar() -> None:
    final = bar()
    assert intrabar_updates(final, steps=1, rng=random.Random(0)) == [final]


def test_intrabar_updates_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="steps"):
        intrabar_updates(bar(), steps=0, rng=random.Random(0))
    with pytest.raises(ValueError, match="closed"):
        intrabar_updates(replace(bar(), closed=False), steps=3, rng=random.Random(0))
    with pytest.raises(ValueError, match="inconsistent"):
        intrabar_updates(bar(low="100.50"), steps=3, rng=random.Random(0))


@st.composite
def bars(draw: st.DrawFn) -> Kline:
    exponent = draw(st.integers(-8, 0))
    unit = Decimal(1).scaleb(exponent)
    low = draw(st.integers(1, 10**7))
    high = low + draw(st.integers(0, 10**5))
    open_ = draw(st.integers(low, high))
    close = draw(st.integers(low, high))
    volume = Decimal(draw(st.integers(0, 10**9))).scaleb(draw(st.integers(-8, 0)))
    return replace(
        bar(),
        open=open_ * unit,
        high=high * unit,
        low=low * unit,
        close=close * unit,
        volume=volume,
        trades=draw(st.integers(0, 10**6)),
    )


@settings(max_examples=60, deadline=None)
@given(final=bars(), steps=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_intrabar_invariants(final: Kline, steps: int, seed: int) -> None:
    updates = intrabar_updates(final, steps=steps, rng=random.Random(seed))
    assert_valid_updates(final, updates, steps)
    assert updates == intrabar_updates(final, steps=steps, rng=random.Random(seed))


# --- replay and the protocol ----------------------------------------------------------------


def series(count: int = 3) -> list[Kline]:
    closes = ["101.00", "99.50", "100.25", "102.00", "98.00"]
    klines = []
    price = Decimal("100.00")
    for index in range(count):
        close = Decimal(closes[index % len(closes)])
        klines.append(
            bar(
                str(price),
                str(max(price, close) + 1),
                str(min(price, close) - 1),
                str(close),
                open_ms=60_000 * (index + 1),
            )
        )
        price = close
    return klines


def test_replay_plays_the_file_once_then_ends() -> None:
    klines = series()
    source = ReplayMarket(klines)
    assert (source.symbol, source.interval) == ("BTCUSDT", "1m")
    assert [source.next_bar() for _ in range(3)] == klines
    assert source.next_bar() is None
    assert source.next_bar() is None


def test_looped_replay_shifts_time_and_continues_prices() -> None:
    klines = series()
    source = ReplayMarket(klines, loop=True)
    played = [source.next_bar() for _ in range(9)]
    assert all(k is not None for k in played)
    replayed = [k for k in played if k is not None]
    assert replayed[:3] == klines
    span = klines[-1].close_time_ms + 1 - klines[0].open_time_ms
    for previous, current in itertools.pairwise(replayed):
        assert current.open_time_ms == previous.close_time_ms + 1
        assert current.open == previous.close
    shift = klines[-1].close - klines[0].open
    second = replayed[3]
    assert second.open_time_ms == klines[0].open_time_ms + span
    assert second.high == klines[0].high + shift
    assert second.low == klines[0].low + shift
    assert second.volume == klines[0].volume
    assert second.quote_volume == klines[0].quote_volume + klines[0].volume * shift
    assert replayed[6].open == klines[0].open + 2 * shift


def test_looped_replay_restarts_prices_rather_than_going_below_zero() -> None:
    falling = [
        bar("10.00", "10.00", "2.00", "2.00"),
        bar("2.00", "3.00", "1.00", "1.00", open_ms=120_000),
    ]
    source = ReplayMarket(falling, loop=True)
    for _ in range(20):
        kline = source.next_bar()
        assert kline is not None
        assert kline.low > 0
        assert_consistent(kline)


def test_replay_refuses_bad_series() -> None:
    klines = series()
    with pytest.raises(ValueError, match="at least one"):
        ReplayMarket([])
    with pytest.raises(ValueError, match="out of order"):
        ReplayMarket([klines[1], klines[0]])
    with pytest.raises(ValueError, match="mixed"):
        ReplayMarket([klines[0], replace(klines[1], symbol="ETHUSDT")])
    with pytest.raises(ValueError, match="not closed"):
        ReplayMarket([replace(klines[0], closed=False)])


def test_replay_of_a_real_file(kline_fixtures: Path) -> None:
    path = kline_fixtures / "live_trading_indicators" / "usdm" / "ETHUSDT-1h-2022-08-24.zip"
    klines = load_kline_csv(path, symbol="ETHUSDT", interval="1h")
    source = ReplayMarket(klines, loop=True)
    played = [source.next_bar() for _ in range(3 * len(klines))]
    for previous, current in itertools.pairwise(played):
        assert previous is not None
        assert current is not None
        assert current.open_time_ms == previous.close_time_ms + 1
        assert_consistent(current)


def drain(source: PriceSource, limit: int) -> list[Kline]:
    bars_seen = []
    for _ in range(limit):
        kline = source.next_bar()
        if kline is None:
            break
        bars_seen.append(kline)
    return bars_seen


def test_both_sources_serve_the_protocol() -> None:
    assert len(drain(ReplayMarket(series()), 10)) == 3
    assert len(drain(market(), 10)) == 10
