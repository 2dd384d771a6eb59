"""KlineSequencer: closed klines exactly once and in order, stale intrabar drops, gap hold-back
and REST merging; a hypothesis property checks the guarantee against a REST source that knows
the truth, under random disconnects, replays and page sizes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.market import Kline
from exchange.binance.kline_gaps import KlineGap, KlineSequencer, interval_ms

MINUTE = 60_000
T0 = 1_700_000_040_000  # a minute boundary


def bar(
    index: int,
    *,
    closed: bool = True,
    close: str = "1",
    symbol: str = "BTCUSDT",
    interval: str = "1m",
    step: int = MINUTE,
    start: int = T0,
) -> Kline:
    open_ms = start + index * step
    price = Decimal(close)
    return Kline(
        symbol, interval, open_ms, open_ms + step - 1, price, price, price, price,
        Decimal(1), price, 1, closed,
    )  # fmt: skip


def opens(klines: Sequence[Kline]) -> list[tuple[int, bool]]:
    return [((k.open_time_ms - T0) // MINUTE, k.closed) for k in klines]


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("1s", 1_000),
        ("1m", 60_000),
        ("3m", 180_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("3d", 259_200_000),
        ("1w", 604_800_000),
        ("1M", None),
    ],
)
def test_interval_lengths(interval: str, expected: int | None) -> None:
    assert interval_ms(interval) == expected


def test_unknown_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="2m"):
        interval_ms("2m")


def test_closed_bars_in_order_pass_and_intrabar_updates_pass() -> None:
    seq = KlineSequencer()
    out = []
    for k in [bar(0, closed=False), bar(0), bar(1, closed=False), bar(1, closed=False), bar(1)]:
        out += seq.accept(k)
    assert opens(out) == [(0, False), (0, True), (1, False), (1, False), (1, True)]
    assert seq.last_closed_open_ms("BTCUSDT", "1m") == T0 + MINUTE
    assert seq.missing_from("BTCUSDT", "1m") == T0 + 2 * MINUTE
    assert seq.pending_gap("BTCUSDT", "1m") is None


def test_duplicate_and_older_closed_bars_are_dropped_and_counted() -> None:
    seq = KlineSequencer()
    assert seq.accept(bar(0)) == [bar(0)]
    assert seq.accept(bar(1)) == [bar(1)]
    assert seq.accept(bar(1, close="2")) == []
    assert seq.accept(bar(0)) == []
    assert seq.duplicates_dropped == 2
    assert seq.last_closed_open_ms("BTCUSDT", "1m") == T0 + MINUTE


def test_intrabar_update_at_or_before_the_last_closed_bar_is_stale() -> None:
    seq = KlineSequencer()
    seq.accept(bar(3))
    assert seq.accept(bar(3, closed=False)) == []
    assert seq.accept(bar(2, closed=False)) == []
    assert seq.accept(bar(4, closed=False)) == [bar(4, closed=False)]
    assert seq.stale_updates_dropped == 2


def test_a_closed_bar_past_a_gap_is_held_until_rest_fills_it() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    assert seq.accept(bar(3)) == []
    assert seq.pending_gap("BTCUSDT", "1m") == KlineGap(
        "BTCUSDT", "1m", T0 + MINUTE, T0 + 3 * MINUTE
    )
    assert seq.needs_backfill("BTCUSDT", "1m", T0 + MINUTE)
    # Everything after the gap waits too, closed bars and intrabar updates alike.
    assert seq.accept(bar(4, closed=False)) == []
    assert seq.accept(bar(4)) == []
    assert seq.accept(bar(5, closed=False)) == []
    assert seq.missing_from("BTCUSDT", "1m") == T0 + MINUTE
    assert seq.gaps_detected == 1

    out = seq.accept_backfill([bar(1), bar(2), bar(3), bar(4), bar(5, closed=False)])
    assert opens(out) == [(1, True), (2, True), (3, True), (4, True), (5, False)]
    assert seq.backfilled == 4
    assert seq.pending_gap("BTCUSDT", "1m") is None
    assert seq.missing_from("BTCUSDT", "1m") == T0 + 5 * MINUTE


def test_a_stream_bar_that_fills_the_gap_releases_the_held_ones() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(2))
    assert opens(seq.accept(bar(1))) == [(1, True), (2, True)]
    assert seq.pending_gap("BTCUSDT", "1m") is None


def test_out_of_order_closed_bars_come_out_sorted() -> None:
    seq = KlineSequencer()
    out = seq.accept(bar(0))
    for index in (3, 2, 4, 1):
        out += seq.accept(bar(index))
    assert opens(out) == [(i, True) for i in range(5)]


def test_an_intrabar_update_past_the_cursor_reveals_a_gap() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    assert seq.accept(bar(2, closed=False)) == []
    assert seq.pending_gap("BTCUSDT", "1m") == KlineGap(
        "BTCUSDT", "1m", T0 + MINUTE, T0 + 2 * MINUTE
    )
    out = seq.accept_backfill([bar(1), bar(2, closed=False)])
    assert opens(out) == [(1, True), (2, False)]


def test_rest_proves_an_exchange_outage_a_real_hole() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(5, closed=False))
    assert seq.pending_gap("BTCUSDT", "1m") is not None
    # Bars 1..4 do not exist (maintenance): REST answers with the bar in progress only.
    out = seq.accept_backfill([bar(5, closed=False)])
    assert opens(out) == [(5, False)]
    assert seq.pending_gap("BTCUSDT", "1m") is None
    assert seq.accept(bar(5)) == [bar(5)]


def test_rest_hole_before_a_closed_bar_is_accepted() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(4))
    out = seq.accept_backfill([bar(3), bar(4), bar(5, closed=False)])
    assert opens(out) == [(3, True), (4, True)]
    assert seq.missing_from("BTCUSDT", "1m") == T0 + 5 * MINUTE


def test_partial_rest_page_leaves_the_rest_of_the_gap_pending() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(5))
    assert opens(seq.accept_backfill([bar(1), bar(2)])) == [(1, True), (2, True)]
    assert seq.pending_gap("BTCUSDT", "1m") == KlineGap(
        "BTCUSDT", "1m", T0 + 3 * MINUTE, T0 + 5 * MINUTE
    )
    assert opens(seq.accept_backfill([bar(3), bar(4), bar(5)])) == [(3, True), (4, True), (5, True)]
    assert seq.duplicates_dropped == 0


def test_backfill_drops_what_was_already_emitted_and_unclosed_rows() -> None:
    seq = KlineSequencer()
    for index in range(3):
        seq.accept(bar(index))
    out = seq.accept_backfill([bar(4), bar(1), bar(2), bar(3), bar(5, closed=False)])
    assert opens(out) == [(3, True), (4, True)]
    assert seq.backfilled == 2


def test_an_empty_rest_answer_changes_nothing() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(2))
    assert seq.accept_backfill([]) == []
    assert seq.accept_backfill([bar(0)]) == []
    assert seq.pending_gap("BTCUSDT", "1m") is not None


def test_held_stream_bar_the_rest_answer_lacks_is_still_emitted_in_order() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(2, close="7"))
    out = seq.accept_backfill([bar(1), bar(3)])
    assert opens(out) == [(1, True), (2, True), (3, True)]
    assert out[1].close == Decimal(7)


def test_series_are_independent() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(2))
    eth = bar(0, symbol="ETHUSDT")
    assert seq.accept(eth) == [eth]
    five = bar(0, interval="5m", step=5 * MINUTE)
    assert seq.accept(five) == [five]
    assert [gap.symbol for gap in seq.pending_gaps()] == ["BTCUSDT"]


def test_skip_gap_releases_what_is_held() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(3))
    seq.accept(bar(4, closed=False))
    out = seq.skip_gap("BTCUSDT", "1m")
    assert opens(out) == [(3, True), (4, False)]
    assert seq.gaps_skipped == 1
    assert seq.skip_gap("BTCUSDT", "1m") == []
    assert seq.accept(bar(4)) == [bar(4)]


def test_one_month_bars_have_no_gap_detection() -> None:
    assert interval_ms("1M") is None
    seq = KlineSequencer()
    january = replace(bar(0), interval="1M")
    march = replace(bar(0), interval="1M", open_time_ms=T0 + 60 * 86_400_000)
    assert seq.accept(january) == [january]
    assert seq.accept(march) == [march]  # February may be missing: nothing can tell
    assert seq.accept(january) == []
    assert seq.accept(replace(march, closed=False)) == []
    assert seq.missing_from("BTCUSDT", "1M") == march.open_time_ms + 1
    assert not seq.needs_backfill("BTCUSDT", "1M", march.open_time_ms + 90 * 86_400_000)


def test_needs_backfill_compares_with_the_bar_about_to_come() -> None:
    seq = KlineSequencer()
    assert not seq.needs_backfill("BTCUSDT", "1m", T0)
    seq.accept(bar(0))
    assert not seq.needs_backfill("BTCUSDT", "1m", T0 + MINUTE)
    assert seq.needs_backfill("BTCUSDT", "1m", T0 + 2 * MINUTE)


def test_snapshot_is_plain_data() -> None:
    seq = KlineSequencer()
    seq.accept(bar(0))
    seq.accept(bar(0))
    seq.accept(bar(2))
    snap = seq.snapshot()
    assert snap["duplicates_dropped"] == 1
    assert snap["series"]["BTCUSDT@1m"] == {
        "last_closed_open_ms": T0,
        "missing_from_ms": T0 + MINUTE,
        "held": 1,
    }
    assert snap["pending_gaps"] == [
        {"symbol": "BTCUSDT", "interval": "1m", "missing_from_ms": T0 + MINUTE,
         "held_from_ms": T0 + 2 * MINUTE}
    ]  # fmt: skip


# --- property: whatever the stream loses or repeats, downstream sees the truth -------------


def test_accept_from_stream_tells_when_a_backfill_is_due() -> None:
    seq = KlineSequencer()
    assert seq.accept_from_stream(bar(0, closed=False)) == ([bar(0, closed=False)], False)
    assert seq.accept_from_stream(bar(0)) == ([bar(0)], False)
    assert seq.accept_from_stream(bar(2, closed=False)) == ([], True)  # bar 1 is missing
    assert seq.accept_from_stream(bar(2)) == ([], True)
    assert seq.accept_from_stream(bar(0)) == ([], True)  # a duplicate changes nothing
    eth = bar(0, symbol="ETHUSDT")
    assert seq.accept_from_stream(eth) == ([eth], False)  # other series are unaffected
    seq.accept_backfill([bar(1), bar(2), bar(3, closed=False)])
    assert seq.accept_from_stream(bar(3, closed=False)) == ([bar(3, closed=False)], False)
    assert seq.accept_from_stream(bar(1, closed=False)) == ([], False)  # stale
    assert seq.stale_updates_dropped == 2  # this one and bar 2's update, held then superseded


@dataclass(frozen=True)
class Event:
    bar: int  # index into the truth
    closed: bool
    delivered: bool
    noticed: bool  # a loss the client noticed (a disconnect); else the stream skipped silently
    repeat: bool  # delivered twice (a replay after reconnect)


def rest_source(truth: list[int], page: int) -> Callable[[int, int, bool], list[Kline]]:
    """REST as of "now" (bar `now` in progress, or just closed): klines from start, one page."""

    def fetch(start_ms: int, now: int, now_closed: bool) -> list[Kline]:
        rows = []
        for index in truth:
            if index > now or bar(index).open_time_ms < start_ms:
                continue
            rows.append(bar(index, closed=index < now or now_closed))
        return rows[:page]

    return fetch


def fill(
    seq: KlineSequencer, fetch: Callable[[int, int, bool], list[Kline]], now: int, closed: bool
) -> list[Kline]:
    """What the stream layer does: fetch from missing_from until caught up and gap-free."""
    out: list[Kline] = []
    while (start := seq.missing_from("BTCUSDT", "1m")) is not None:
        answer = fetch(start, now, closed)
        emitted = seq.accept_backfill(answer)
        out += emitted
        progressed = seq.missing_from("BTCUSDT", "1m") != start
        gap = seq.pending_gap("BTCUSDT", "1m")
        if gap is not None:
            assert progressed, f"REST knows the truth, yet the gap {gap} did not shrink"
            continue
        if not progressed or not answer or not answer[-1].closed:
            break
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[int], list[Event], int]:
    count = draw(st.integers(1, 25))
    # Holes: bars the exchange never produced (an outage); the first bar always exists.
    truth = [0] + [i for i in range(1, count) if not draw(st.booleans()) or draw(st.booleans())]
    events = []
    for index in truth:
        for _ in range(draw(st.integers(0, 2))):
            events.append(Event(index, False, *draw(st.tuples(*[st.booleans()] * 3))))
        # The first closed bar always arrives: it anchors the series (no history before it).
        delivered = index == 0 or draw(st.booleans())
        events.append(Event(index, True, delivered, *draw(st.tuples(*[st.booleans()] * 2))))
    return truth, events, draw(st.integers(1, 4))


def accept_and_check(
    seq: KlineSequencer, kline: Kline, via_stream_api: bool
) -> tuple[list[Kline], bool]:
    """accept() then pending_gap(), or accept_from_stream() checked against pending_gap()."""
    if not via_stream_api:
        return seq.accept(kline), seq.pending_gap(kline.symbol, kline.interval) is not None
    emitted, gap_pending = seq.accept_from_stream(kline)
    assert gap_pending == (seq.pending_gap(kline.symbol, kline.interval) is not None)
    return emitted, gap_pending


@pytest.mark.parametrize("via_stream_api", [False, True])
@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_emitted_closed_klines_are_exactly_the_truth(
    via_stream_api: bool,
    scenario: tuple[list[int], list[Event], int],
) -> None:
    truth, events, page = scenario
    fetch = rest_source(truth, page)
    seq = KlineSequencer()
    out: list[Kline] = []
    connected = True
    for event in events:
        if not event.delivered:
            connected = connected and not event.noticed
            continue
        if not connected:  # reconnected: backfill before the first new frame
            connected = True
            out += fill(seq, fetch, event.bar, event.closed)
        for _ in range(2 if event.repeat else 1):
            emitted, gap_pending = accept_and_check(
                seq, bar(event.bar, closed=event.closed), via_stream_api
            )
            out += emitted
            if gap_pending:
                out += fill(seq, fetch, event.bar, event.closed)
    out += fill(seq, fetch, truth[-1], True)  # the final reconnect, after the last bar closed

    closed = [(k.open_time_ms - T0) // MINUTE for k in out if k.closed]
    assert closed == truth
    last_closed = last_seen = -1
    for kline in out:
        index = (kline.open_time_ms - T0) // MINUTE
        assert index > last_closed, "an update at or before an emitted closed bar"
        assert index >= last_seen, "an update delivered past a gap, before the missing bars"
        last_seen = index
        if kline.closed:
            last_closed = index
    assert seq.pending_gaps() == []
