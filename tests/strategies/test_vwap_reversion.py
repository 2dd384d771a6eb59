"""`vwap_reversion` on hand-built bar paths: which bar enters or exits, and why.

Every path is a UTC session of 1m doji bars (open = high = low = close, volume 1), so the VWAP
is the plain mean of the closes and each number below can be checked by hand. `make_runner`
first replays a quiet warm-up that ends at the session's midnight; the bars of the session
itself then go through `on_kline` one by one, as live bars would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from app.domain import (
    BookTicker,
    Kline,
    OrderDenied,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    Signal,
    SignalAction,
)
from strategies.runner import StrategyRunner
from strategies.vwap_reversion import VwapReversion, VwapReversionParams
from tests.strategies.bars import (
    DAY_MS,
    INTERVAL_NAMES,
    SESSION_START_MS,
    assert_alternates,
    klines_from,
    synthetic_klines,
)
from tests.strategies.kline_data import Bars

SYMBOL = "BTCUSDT"
INSTANCE = "vr1"
MINUTE_MS = 60_000
SESSION_MS = SESSION_START_MS + DAY_MS  # the session under test; the warm-up precedes it

ENTER_LONG = SignalAction.ENTER_LONG
ENTER_SHORT = SignalAction.ENTER_SHORT
EXIT_LONG = SignalAction.EXIT_LONG
EXIT_SHORT = SignalAction.EXIT_SHORT

# Sideways: the closes alternate 100/101, so ADX(3) settles near 20 and the 2-sigma bands sit
# about a point either side of the VWAP. None of these closes leaves the bands.
SIDEWAYS = ["100", "101"] * 4
# After SIDEWAYS, a close of 97 (minute 8) is below the lower band: VWAP = 901/9 and
# sigma = sqrt(116)/9 over the nine closes, so the band is (901 - 2*sqrt(116))/9 = 97.72.
STRETCH_MINUTE = 8
LOWER_AT_STRETCH = (901 - 2 * math.sqrt(116)) / 9

# Small values keep the paths short; adx_exit well above adx_max so that only the exit under
# test fires. Tests override what they are about.
BASE_PARAMS: dict[str, Any] = {
    "adx_period": 3,
    "min_session_bars": 3,
    "adx_max": 40.0,
    "adx_exit": 60.0,
}


def bar(minute: int, close: str) -> Kline:
    """A closed 1m doji bar opening `minute` minutes after the session's midnight."""
    price = Decimal(close)
    open_ms = SESSION_MS + minute * MINUTE_MS
    return Kline(
        SYMBOL, "1m", open_ms, open_ms + MINUTE_MS - 1, price, price, price, price,
        Decimal(1), price, 1, True,
    )  # fmt: skip


def close_ms(minute: int) -> int:
    return bar(minute, "1").close_time_ms


def make_runner(**params: Any) -> StrategyRunner:
    """A runner whose warm-up is complete exactly at the session's midnight.

    The runner suppresses every signal until `strategy.warmup_bars` bars were seen, and
    vwap_reversion asks for a whole session plus 2 * adx_period bars. Replaying exactly that
    many flat bars (price 100) ending at midnight completes it: flat prices leave ADX at 0 and
    the VWAP resets at the new session, so every signal after it comes from the session's own
    bars, and the session's first bar is already allowed to signal.
    """
    runner = StrategyRunner(
        VwapReversion,
        VwapReversionParams(**{**BASE_PARAMS, **params}),
        instance=INSTANCE,
        symbol=SYMBOL,
        interval="1m",
    )
    count = runner.strategy.warmup_bars
    runner.warm_up(bar(minute, "100") for minute in range(-count, 0))
    assert runner.warmed_up
    assert runner.stats.suppressed == 0
    return runner


def feed(runner: StrategyRunner, closes: Sequence[str], start: int = 0) -> list[tuple[int, Signal]]:
    """Feed closes as consecutive bars from minute `start`; return (minute, signal) pairs."""
    return [
        (minute, signal)
        for minute, close in enumerate(closes, start)
        for signal in runner.on_kline(bar(minute, close))
    ]


def actions(signals: Iterable[tuple[int, Signal]]) -> list[tuple[int, SignalAction]]:
    return [(minute, signal.action) for minute, signal in signals]


def vwap(runner: StrategyRunner) -> VwapReversion:
    strategy = runner.strategy
    assert isinstance(strategy, VwapReversion)
    return strategy


# -- entries ----------------------------------------------------------------------------------
def test_a_close_below_the_lower_band_in_a_sideways_session_enters_long() -> None:
    runner = make_runner()
    signals = feed(runner, [*SIDEWAYS, "97"])
    ((minute, signal),) = signals
    assert minute == STRETCH_MINUTE
    assert signal.action is ENTER_LONG
    assert signal.reason == f"close 97 below VWAP band {LOWER_AT_STRETCH:.8g}"
    assert signal.ts_ms == close_ms(STRETCH_MINUTE)
    assert signal.signal_id == f"{INSTANCE}:{SYMBOL}:{close_ms(STRETCH_MINUTE)}:0"
    # 0.5 at the band, 1.0 at twice its distance: the close is 28/sqrt(116) sigmas out.
    assert signal.confidence == pytest.approx(0.5 + 0.5 * (28 / math.sqrt(116) - 2) / 2)
    assert signal.tags[0] == "vwap_band"
    assert vwap(runner).adx.value < 40


def test_a_close_above_the_upper_band_enters_short() -> None:
    signals = feed(make_runner(), [*SIDEWAYS, "100", "104"])
    ((minute, signal),) = signals
    assert (minute, signal.action) == (9, ENTER_SHORT)
    # Ten closes: mean 1008/10 = 100.8, variance (5*0.8**2 + 4*0.2**2 + 3.2**2)/10 = 1.36.
    assert signal.reason == f"close 104 above VWAP band {100.8 + 2 * math.sqrt(1.36):.8g}"


def test_without_allow_short_a_close_above_the_band_does_nothing() -> None:
    runner = make_runner(allow_short=False)
    assert feed(runner, [*SIDEWAYS, "100", "104"]) == []
    # Longs are still taken: the same stretch downwards enters.
    assert actions(feed(runner, ["100", "96"], start=10)) == [(11, ENTER_LONG)]


def test_no_entry_while_adx_says_trend() -> None:
    # A steady fall of half a point per bar: with band_mult 1 the close leaves the lower band
    # from the third bar on, but ADX is already 55.6 there and only rises.
    falling = [str(Decimal(100) - Decimal("0.5") * n) for n in range(8)]
    trending = make_runner(band_mult=1.0)
    assert feed(trending, falling) == []
    assert vwap(trending).adx.value > 90
    # Only ADX kept it out: with a ceiling above 55.6 the third bar enters.
    lenient = make_runner(band_mult=1.0, adx_max=80.0, adx_exit=90.0)
    assert actions(feed(lenient, falling[:3])) == [(2, ENTER_LONG)]


@pytest.mark.parametrize(("min_session_bars", "entered"), [(9, True), (10, False)])
def test_no_entry_before_the_session_has_min_session_bars(
    min_session_bars: int, entered: bool
) -> None:
    # The stretched close is the session's 9th bar.
    signals = feed(make_runner(min_session_bars=min_session_bars), [*SIDEWAYS, "97"])
    assert actions(signals) == ([(STRETCH_MINUTE, ENTER_LONG)] if entered else [])


@pytest.mark.parametrize(("min_band_bps", "entered"), [(1.0, True), (5.0, False)])
def test_no_entry_when_the_bands_are_narrower_than_min_band_bps(
    min_band_bps: float, entered: bool
) -> None:
    # The sideways path scaled down a hundredfold: the same shape (and the same ADX), but a
    # sigma of about 1.2 bps of the VWAP, too narrow to pay the fees at 5 bps.
    tiny = ["100", "100.01"] * 4 + ["99.97"]
    runner = make_runner(min_band_bps=min_band_bps)
    signals = feed(runner, tiny)
    assert actions(signals) == ([(STRETCH_MINUTE, ENTER_LONG)] if entered else [])
    state = vwap(runner).vwap
    assert 1.0 < state.std / state.vwap * 10_000 < 5.0


# -- exits ------------------------------------------------------------------------------------
def test_a_long_exits_when_the_close_reverts_to_the_vwap() -> None:
    signals = feed(make_runner(), [*SIDEWAYS, "97", "98.5", "100.6"])
    assert actions(signals) == [(8, ENTER_LONG), (10, EXIT_LONG)]
    # 98.5 stays below the VWAP; 100.6 reaches it (eleven closes summing to 1100.1).
    assert signals[1][1].reason == f"reverted to VWAP {1100.1 / 11:.8g}"


def test_a_short_exits_when_the_close_reverts_to_the_vwap() -> None:
    signals = feed(make_runner(), [*SIDEWAYS, "100", "104", "100.4"])
    assert actions(signals) == [(9, ENTER_SHORT), (10, EXIT_SHORT)]
    assert signals[1][1].reason == f"reverted to VWAP {1108.4 / 11:.8g}"


def test_a_long_exits_when_adx_rises_above_adx_exit() -> None:
    # After the entry the fall goes on a point per bar: no reversion, but a trend.
    runner = make_runner()
    signals = feed(runner, [*SIDEWAYS, "97", "96", "95", "94", "93"])
    assert actions(signals) == [(8, ENTER_LONG), (11, EXIT_LONG)]
    assert signals[1][1].reason == "trend: ADX 65.3 > 60.0"


def test_a_position_is_closed_on_the_first_bar_of_the_next_session() -> None:
    # Sideways all day, stretched on the session's last bar (23:59), and still below the old
    # VWAP at the next midnight: the only reason to leave is that the session ended.
    runner = make_runner()
    day = [str(100 + minute % 2) for minute in range(1439)]
    signals = feed(runner, [*day, "97", "97.5"])
    assert actions(signals) == [(1439, ENTER_LONG), (1440, EXIT_LONG)]
    assert signals[1][1].reason == "session_end"
    assert signals[1][1].ts_ms == SESSION_MS + DAY_MS + MINUTE_MS - 1


# -- the 5-second volatility guard ------------------------------------------------------------
def quote(ts_ms: int, mid: str) -> BookTicker:
    price = Decimal(mid)
    spread = Decimal("0.01")
    return BookTicker(SYMBOL, price - spread, Decimal(1), price + spread, Decimal(1), ts_ms)


@pytest.mark.parametrize(
    ("quotes", "entered"),
    [
        # 100.9 -> 97: a 4% move within the 5 s before the stretched close
        ([(4_999, "100.9")], False),
        # calm books just before the close: 0.2%
        ([(4_000, "97.2"), (1_000, "97.1")], True),
        # the same move, but exactly 5 s old at the close: just out of the window
        ([(5_000, "100.9")], True),
    ],
    ids=["jump_in_window", "calm", "jump_older_than_window"],
)
def test_a_sudden_move_in_the_last_seconds_suppresses_the_entry(
    quotes: list[tuple[int, str]], entered: bool
) -> None:
    runner = make_runner()
    assert feed(runner, SIDEWAYS) == []
    stretched_close = close_ms(STRETCH_MINUTE)
    for age_ms, mid in quotes:
        assert runner.on_book(quote(stretched_close - age_ms, mid)) == ()
    signals = feed(runner, ["97"], start=STRETCH_MINUTE)
    assert actions(signals) == ([(STRETCH_MINUTE, ENTER_LONG)] if entered else [])
    assert runner.stats.books == len(quotes)


# -- the stance follows the entry's fate ------------------------------------------------------
def entry_event(kind: str, entry: Signal) -> OrderDenied | OrderUpdated | None:
    ts = entry.ts_ms + 50
    if kind == "denied":
        return OrderDenied(INSTANCE, SYMBOL, "max_exposure", ts, signal_id=entry.signal_id)
    if kind == "other_denied":
        return OrderDenied(INSTANCE, SYMBOL, "max_exposure", ts, signal_id="vr1:BTCUSDT:1:0")
    status = {"unfilled": OrderStatus.EXPIRED, "working": OrderStatus.NEW}.get(kind)
    if status is None:
        return None
    return OrderUpdated(
        "tb-1", SYMBOL, Side.BUY, OrderType.MARKET, status, Decimal(1), Decimal(0), ts,
        strategy=INSTANCE,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "entered_again"),
    [
        ("denied", True),
        ("unfilled", True),
        ("other_denied", False),
        ("working", False),
        ("none", False),
    ],
)
def test_an_entry_that_never_became_a_position_returns_to_flat(
    kind: str, entered_again: bool
) -> None:
    # adx_max 50 so that the bar after the entry (close 96, ADX 47) may enter too; while the
    # strategy still believes it is long, that bar is neither an exit (below the VWAP, ADX
    # under 70) nor an entry.
    runner = make_runner(adx_max=50.0, adx_exit=70.0)
    ((_, entry),) = feed(runner, [*SIDEWAYS, "97"])
    event = entry_event(kind, entry)
    if event is not None:
        assert runner.on_order(event) == ()
    after = feed(runner, ["96"], start=STRETCH_MINUTE + 1)
    assert actions(after) == ([(9, ENTER_LONG)] if entered_again else [])


# -- construction -----------------------------------------------------------------------------
@pytest.mark.parametrize("interval", ["1d", "1w", "1M"])
def test_daily_or_longer_bars_are_refused(interval: str) -> None:
    with pytest.raises(ValueError, match="needs intraday bars"):
        StrategyRunner(
            VwapReversion, VwapReversionParams(), instance=INSTANCE, symbol=SYMBOL,
            interval=interval,
        )  # fmt: skip


def test_adx_exit_below_adx_max_is_refused() -> None:
    with pytest.raises(ValueError, match="adx_exit must be at least adx_max"):
        make_runner(adx_max=30.0, adx_exit=25.0)
    make_runner(adx_max=30.0, adx_exit=30.0)  # equal is allowed


# -- whole series -----------------------------------------------------------------------------
# Small enough values that the strategy trades often on real and synthetic data.
ACTIVE_PARAMS = VwapReversionParams(
    band_mult=1.0, adx_max=60, adx_exit=80, min_session_bars=3, min_band_bps=0, adx_period=5
)


def run_series(klines: Sequence[Kline], params: VwapReversionParams, interval: str) -> list[Signal]:
    runner = StrategyRunner(
        VwapReversion, params, instance=INSTANCE, symbol=SYMBOL, interval=interval
    )
    signals = [signal for kline in klines for signal in runner.on_kline(kline)]
    assert runner.failure is None
    assert runner.stats.stale_bars == 0
    return signals


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_market_signals_alternate(seed: int) -> None:
    klines = synthetic_klines(3600, seed=seed)
    for params in (VwapReversionParams(), ACTIVE_PARAMS):
        assert_alternates(run_series(klines, params, "1m"))
    assert len(run_series(klines, ACTIVE_PARAMS, "1m")) >= 10


def test_recorded_klines_signals_alternate(recorded_series: list[Bars]) -> None:
    total = 0
    for bars in recorded_series:
        if len(bars) < 2:
            continue
        interval = INTERVAL_NAMES[int(bars.open_time_ms[1] - bars.open_time_ms[0])]
        klines = klines_from(bars, interval=interval)
        for params in (VwapReversionParams(), ACTIVE_PARAMS):
            signals = run_series(klines, params, interval)
            assert_alternates(signals)
            total += len(signals)
    assert total > 0  # the check above was not vacuous
