"""Pre-trade checks (every check tripped, precedence, net-reducing entries), the order rate
window and the funding clock. Numbers in the expected reasons are worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from app.domain import Fill, MarkPrice, Side
from config.risk import RiskLimitSettings
from risk.book import RiskBook
from risk.checks import CHECK_NAMES, ProposedEntry, entry_denial, fmt_money, fmt_quantity
from risk.funding import FundingClock, fmt_clock, fmt_duration
from risk.order_rate import OrderRateLimit

D = Decimal
DAY = 86_400_000
HOUR = 3_600_000
MIN = 60_000
NOW = 10 * DAY + 12 * HOUR  # noon UTC
_trade_ids = iter(range(1, 1_000_000))


def buy(book: RiskBook, strategy: str, symbol: str, quantity: str, price: str) -> None:
    qty = D(quantity)
    side = Side.BUY if qty > 0 else Side.SELL
    fill = Fill(next(_trade_ids), "", symbol, side, D(price), abs(qty), D(0), "USDT", False, NOW)
    book.on_fill(strategy=strategy, fill=fill)


def entry(
    quantity: str = "1", *, strategy: str = "s9", symbol: str = "BTCUSDT", side: Side = Side.BUY,
    price: str = "100",
) -> ProposedEntry:  # fmt: skip
    return ProposedEntry(strategy, symbol, side, D(quantity), D(price))


def rate() -> OrderRateLimit:
    return OrderRateLimit([(10_000, 100)], share=0.5)


def deny(
    proposed: ProposedEntry,
    book: RiskBook,
    *,
    status: str | None = "TRADING",
    order_rate: OrderRateLimit | None = None,
    funding: FundingClock | None = None,
    now_ms: int = NOW,
    **limits: Any,
) -> str | None:
    return entry_denial(
        proposed,
        book=book,
        limits=RiskLimitSettings(**limits),
        now_ms=now_ms,
        symbol_status=status,
        order_rate=order_rate or rate(),
        funding=funding,
    )


def new_book() -> RiskBook:
    book = RiskBook(capital=D(10_000))
    book.roll_day(NOW)
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        book.on_price(symbol, D(100))
    return book


def test_check_names_in_order() -> None:
    assert CHECK_NAMES == (
        "symbol_status", "order_rate", "cooldown", "funding_window", "max_trades_per_day",
        "max_quantity_per_day", "max_position_notional", "max_total_exposure",
        "max_exposure_pct_equity", "max_open_positions", "max_positions_per_symbol",
        "daily_loss_limit", "daily_loss_limit_pct",
    )  # fmt: skip


def test_a_passing_entry() -> None:
    book = new_book()
    buy(book, "s1", "ETHUSDT", "5", "100")
    reason = deny(
        entry("1"),
        book,
        max_position_notional=D(1000),
        max_total_exposure=D(2000),
        max_exposure_pct_equity=D(50),
        max_open_positions=3,
        max_positions_per_symbol=1,
        daily_loss_limit=D(100),
        daily_loss_limit_pct=D(1),
        max_trades_per_day=1,
        max_quantity_per_day={"BTCUSDT": D(1)},
        cooldown_s=30,
        funding=FundingClock(),
    )
    assert reason is None


def test_symbol_status() -> None:
    book = new_book()
    assert deny(entry(), book, status=None) == "symbol_status: no exchange rules for BTCUSDT"
    assert deny(entry(), book, status="BREAK") == "symbol_status: BTCUSDT is BREAK, not TRADING"


def test_order_rate() -> None:
    book, order_rate = new_book(), rate()
    for _ in range(49):
        order_rate.record(NOW - 5_000)
    assert deny(entry(), book, order_rate=order_rate) is None
    order_rate.record(NOW - 5_000)
    assert deny(entry(), book, order_rate=order_rate) == (
        "order_rate: 50 orders in the last 10s, limit 50 (50% of the exchange's 100)"
    )


def test_cooldown() -> None:
    book = new_book()
    book.record_entry_sent(symbol="BTCUSDT", quantity=D(1), now_ms=NOW - 12_000)
    assert deny(entry(), book, cooldown_s=30) == (
        "cooldown: last entry on BTCUSDT 12s ago, 30s between entries"
    )
    assert deny(entry(), book, cooldown_s=12) is None  # exactly the cooldown has passed
    assert deny(entry(symbol="ETHUSDT"), book, cooldown_s=30) is None  # per symbol


def test_funding_window() -> None:
    book, funding = new_book(), FundingClock()
    funding.on_mark(MarkPrice("BTCUSDT", D(100), D(100), D("0.0001"), NOW + 4 * MIN, NOW))
    assert deny(entry(), book, funding=funding) == (
        "funding_window: next funding at 12:04:00 UTC in 4m (no entries 5m before to 1m after)"
    )
    assert deny(entry(), book, funding=funding, funding_window_before_min=3) is None
    assert deny(entry(), book, funding=None) is None  # spot: no funding gate


def test_max_trades_per_day() -> None:
    book = new_book()
    for hour in (1, 2, 3):
        book.record_entry_sent(symbol="BTCUSDT", quantity=D(1), now_ms=10 * DAY + hour * HOUR)
    assert deny(entry(), book, max_trades_per_day=3) == (
        "max_trades_per_day: 3 entries on BTCUSDT today (UTC), limit 3"
    )
    assert deny(entry(), book, max_trades_per_day=4) is None
    assert deny(entry(), book, max_trades_per_day=3, now_ms=11 * DAY) is None  # a new day


def test_max_quantity_per_day() -> None:
    book = new_book()
    book.record_entry_sent(symbol="BTCUSDT", quantity=D("0.5"), now_ms=NOW - HOUR)
    limit = {"BTCUSDT": D("0.6")}
    assert deny(entry("0.2"), book, max_quantity_per_day=limit) == (
        "max_quantity_per_day: 0.5 BTCUSDT entered today (UTC) + 0.2 would be 0.7, limit 0.6"
    )
    assert deny(entry("0.1"), book, max_quantity_per_day=limit) is None  # exactly 0.6
    assert deny(entry("0.2", symbol="ETHUSDT"), book, max_quantity_per_day=limit) is None


def test_max_position_notional_counts_positions_pending_and_the_entry() -> None:
    book = new_book()
    buy(book, "s1", "BTCUSDT", "4", "100")
    book.add_pending(
        client_order_id="o1", strategy="s2", symbol="BTCUSDT", side=Side.BUY,
        quantity=D(3), is_entry=True,
    )  # fmt: skip
    # (4 + 3 + 4) x 100 = 1,100
    assert deny(entry("4"), book, max_position_notional=D(1000)) == (
        "max_position_notional: BTCUSDT net notional would be 1,100 (now 700), limit 1,000"
    )
    assert deny(entry("3"), book, max_position_notional=D(1000)) is None  # exactly 1,000
    # The entry's reference price is what counts: 4 x 100 + 3 x 100 + 3 x 101 > 1,000
    assert deny(entry("3", price="101"), book, max_position_notional=D(1000)) == (
        "max_position_notional: BTCUSDT net notional would be 1,010 (now 707), limit 1,000"
    )


def test_entry_reducing_the_net_position_passes_a_notional_limit() -> None:
    book = new_book()
    short_12 = entry("12", side=Side.SELL)
    # Alone, a short of 12 is 1,200 of notional: refused.
    assert deny(short_12, book, max_position_notional=D(1000)).startswith(  # type: ignore[union-attr]
        "max_position_notional: BTCUSDT net notional would be 1,200"
    )
    assert deny(short_12, book, max_total_exposure=D(1000)).startswith(  # type: ignore[union-attr]
        "max_total_exposure:"
    )
    # With another instance long 8, the net after it is |8 - 12| x 100 = 400.
    buy(book, "s1", "BTCUSDT", "8", "100")
    assert deny(short_12, book, max_position_notional=D(1000), max_total_exposure=D(1000)) is None
    # Above the limit already (prices moved): an entry that shrinks the net still passes...
    buy(book, "s1", "BTCUSDT", "7", "100")  # net 15 -> 1,500
    shrink = entry("2", side=Side.SELL)
    assert deny(shrink, book, max_position_notional=D(1000), max_total_exposure=D(1000)) is None
    assert deny(shrink, book, max_exposure_pct_equity=D(10)) is None
    # ...one that grows it does not.
    assert deny(entry("1"), book, max_position_notional=D(1000)) is not None


def test_max_total_exposure() -> None:
    book = new_book()
    buy(book, "s1", "ETHUSDT", "10", "100")
    assert deny(entry("11"), book, max_total_exposure=D(2000)) == (
        "max_total_exposure: exposure would be 2,100 (now 1,000), limit 2,000"
    )
    assert deny(entry("10"), book, max_total_exposure=D(2000)) is None
    # A working entry counts before its fill: 1,000 + 500 + 600 > 2,000.
    book.add_pending(
        client_order_id="o1", strategy="s2", symbol="SOLUSDT", side=Side.SELL,
        quantity=D(5), is_entry=True,
    )  # fmt: skip
    assert deny(entry("6"), book, max_total_exposure=D(2000)) == (
        "max_total_exposure: exposure would be 2,100 (now 1,500), limit 2,000"
    )
    book.update_pending("o1", filled_quantity=D(0), final=True)  # cancelled unfilled
    assert deny(entry("6"), book, max_total_exposure=D(2000)) is None


def test_max_exposure_pct_equity() -> None:
    book = new_book()
    # 151 x 100 = 15,100 = 151% of 10,000
    assert deny(entry("151"), book, max_exposure_pct_equity=D(150)) == (
        "max_exposure_pct_equity: exposure would be 15,100, 151% of equity 10,000, limit 150%"
    )
    assert deny(entry("150"), book, max_exposure_pct_equity=D(150)) is None


def test_max_exposure_pct_equity_without_equity() -> None:
    book = new_book()
    buy(book, "s1", "ETHUSDT", "200", "100")
    book.on_price("ETHUSDT", D(50))  # 200 x (50 - 100) = -10,000: equity 0
    assert deny(entry("1"), book, max_exposure_pct_equity=D(150)) == (
        "max_exposure_pct_equity: equity is 0, not positive"
    )


def test_max_open_positions() -> None:
    book = new_book()
    buy(book, "s1", "BTCUSDT", "1", "100")
    book.add_pending(
        client_order_id="o1", strategy="s2", symbol="ETHUSDT", side=Side.BUY,
        quantity=D(1), is_entry=True,
    )  # fmt: skip
    assert deny(entry(strategy="s3", symbol="SOLUSDT"), book, max_open_positions=2) == (
        "max_open_positions: 2 positions open (with working entries), limit 2"
    )
    # Adding to a held position, or to one with a working entry, takes no new slot.
    assert deny(entry(strategy="s1", symbol="BTCUSDT"), book, max_open_positions=2) is None
    assert deny(entry(strategy="s2", symbol="ETHUSDT"), book, max_open_positions=2) is None
    assert deny(entry(strategy="s3", symbol="SOLUSDT"), book, max_open_positions=3) is None


def test_max_positions_per_symbol() -> None:
    book = new_book()
    buy(book, "s1", "BTCUSDT", "-1", "100")
    assert deny(entry(strategy="s2"), book, max_positions_per_symbol=1) == (
        "max_positions_per_symbol: 1 instances hold BTCUSDT (with working entries), limit 1"
    )
    assert deny(entry(strategy="s2", symbol="ETHUSDT"), book, max_positions_per_symbol=1) is None
    assert deny(entry(strategy="s1"), book, max_positions_per_symbol=1) is None


def test_daily_loss_limit() -> None:
    book = new_book()
    buy(book, "s1", "ETHUSDT", "10", "100")
    book.on_price("ETHUSDT", D(49))  # 10 x (49 - 100) = -510
    assert deny(entry(), book, daily_loss_limit=D(500)) == (
        "daily_loss_limit: loss today (UTC, realised + unrealised) 510, limit 500"
    )
    book.on_price("ETHUSDT", D(50))  # a loss of exactly 500 is the limit
    assert deny(entry(), book, daily_loss_limit=D(500)).startswith("daily_loss_limit:")  # type: ignore[union-attr]
    book.on_price("ETHUSDT", D("50.1"))  # 499
    assert deny(entry(), book, daily_loss_limit=D(500)) is None
    # At the next UTC day the loss so far is the past: the day starts at 9,501.
    book.on_price("ETHUSDT", D(49))
    assert deny(entry(), book, daily_loss_limit=D(500), now_ms=11 * DAY) is None


def test_daily_loss_limit_pct() -> None:
    book = new_book()
    buy(book, "s1", "ETHUSDT", "10", "100")
    book.on_price("ETHUSDT", D(49))  # -510 = 5.1% of 10,000
    assert deny(entry(), book, daily_loss_limit_pct=D(5)) == (
        "daily_loss_limit_pct: loss today (UTC, realised + unrealised) 510, 5.1% of the day's "
        "opening equity 10,000, limit 5%"
    )
    assert deny(entry(), book, daily_loss_limit_pct=D("5.2")) is None


def test_precedence_follows_check_names() -> None:
    """Every check fails at once; relaxing them one by one reveals them in CHECK_NAMES order."""
    book = new_book()
    buy(book, "s1", "BTCUSDT", "100", "100")
    book.on_price("BTCUSDT", D(90))  # loss 1,000 = 10%
    book.record_entry_sent(symbol="BTCUSDT", quantity=D(1), now_ms=NOW - 1_000)
    order_rate = rate()
    for _ in range(50):
        order_rate.record(NOW)
    funding = FundingClock()
    funding.on_mark(MarkPrice("BTCUSDT", D(90), D(90), D(0), NOW + MIN, NOW))
    settings: dict[str, Any] = {
        "cooldown_s": 60,
        "max_trades_per_day": 1,
        "max_quantity_per_day": {"BTCUSDT": D(1)},
        "max_position_notional": D(5000),
        "max_total_exposure": D(5000),
        "max_exposure_pct_equity": D(50),
        "max_open_positions": 1,
        "max_positions_per_symbol": 1,
        "daily_loss_limit": D(500),
        "daily_loss_limit_pct": D(5),
    }
    args: dict[str, Any] = {"status": None, "order_rate": order_rate, "funding": funding}
    relax: list[Callable[[], object]] = [
        lambda: args.update(status="TRADING"),
        lambda: args.update(order_rate=rate()),
        lambda: settings.update(cooldown_s=0),
        lambda: args.update(funding=None),
        *(partial(settings.pop, name) for name in CHECK_NAMES[4:]),
    ]
    for name, step in zip(CHECK_NAMES, relax, strict=True):
        reason = deny(entry(), book, **args, **settings)
        assert reason is not None
        assert reason.startswith(f"{name}:"), reason
        step()
    assert deny(entry(), book, **args, **settings) is None


def test_proposed_entry_needs_a_size_and_a_price() -> None:
    with pytest.raises(ValueError, match="quantity"):
        entry("0")
    with pytest.raises(ValueError, match="price"):
        entry(price="0")


def test_formatting() -> None:
    assert fmt_money(D("9010.004")) == "9,010"
    assert fmt_money(D("9.90")) == "9.9"
    assert fmt_money(D("-1234567.891")) == "-1,234,567.89"
    assert fmt_money(D("-0.001")) == "0"
    assert fmt_quantity(D("0.00120")) == "0.0012"
    assert fmt_quantity(D("1E+2")) == "100"
    assert fmt_clock(3 * DAY + 8 * HOUR + 5_000) == "08:00:05 UTC"
    assert fmt_duration(192_000) == "3m12s"
    assert fmt_duration(45_999) == "45s"
    assert fmt_duration(300_000) == "5m"
    assert fmt_duration(HOUR + 5 * MIN) == "1h05m00s"
    assert fmt_duration(0) == "0s"


# -- the order rate window ------------------------------------------------------------------


def test_order_rate_sliding_window_boundaries() -> None:
    limit = OrderRateLimit([(10_000, 100)], share=0.5)
    for t in range(50):  # one order per ms, t = 0..49
        assert limit.denial(t) is None
        limit.record(t)
    assert limit.denial(49) == (
        "order_rate: 50 orders in the last 10s, limit 50 (50% of the exchange's 100)"
    )
    # The window is (now - 10s, now]: at 9,999 the order sent at 0 still counts...
    assert limit.denial(9_999) is not None
    # ...at 10,000 it has left it.
    assert limit.denial(10_000) is None
    limit.record(10_000)
    assert limit.denial(10_000) is not None
    assert limit.denial(10_001) is None  # the one at 1 left as well
    assert limit.status() == {
        "share": 0.5,
        "limits": [{"interval": "10s", "exchange_limit": 100, "allowed": 50, "sent": 49}],
    }


def test_order_rate_boundary_of_a_shorter_window() -> None:
    limit = OrderRateLimit([(10_000, 4), (DAY, 1000)], share=0.5)  # allowed 2 and 500
    limit.record(0)
    limit.record(5_000)
    assert limit.denial(9_999) == (
        "order_rate: 2 orders in the last 10s, limit 2 (50% of the exchange's 4)"
    )
    # Exactly 10s later the first order has left the 10s window, though the day still holds it.
    assert limit.denial(10_000) is None
    assert limit.status()["limits"] == [
        {"interval": "10s", "exchange_limit": 4, "allowed": 2, "sent": 1},
        {"interval": "1d", "exchange_limit": 1000, "allowed": 500, "sent": 2},
    ]


def test_order_rate_every_limit_applies_and_allows_at_least_one() -> None:
    limit = OrderRateLimit([(10_000, 100), (DAY, 7)], share=0.5)  # allowed 50 and 3
    for t in (0, 20_000, 40_000):
        assert limit.denial(t) is None
        limit.record(t)
    assert limit.denial(60_000) == (
        "order_rate: 3 orders in the last 1d, limit 3 (50% of the exchange's 7)"
    )
    assert limit.denial(DAY) is None  # the order at 0 left the day window
    one = OrderRateLimit([(MIN, 1)], share=0.3)  # floor(0.3) = 0 -> at least 1
    assert one.denial(0) is None
    one.record(0)
    assert one.denial(59_999) == (
        "order_rate: 1 orders in the last 1m, limit 1 (30% of the exchange's 1)"
    )
    assert OrderRateLimit([], share=0.5).denial(0) is None
    with pytest.raises(ValueError, match="share"):
        OrderRateLimit([(MIN, 1)], share=0)


# -- the funding clock ----------------------------------------------------------------------


def mark(symbol: str, next_funding_ms: int, ts_ms: int) -> MarkPrice:
    return MarkPrice(symbol, D(100), D(100), D("0.0001"), next_funding_ms, ts_ms)


WINDOW = {"before_ms": 5 * MIN, "after_ms": MIN}


def test_funding_window_from_the_mark_stream() -> None:
    clock = FundingClock()
    base = 10 * DAY
    clock.on_mark(mark("BTCUSDT", base + 8 * HOUR, base + 7 * HOUR))  # 8h interval
    clock.on_mark(mark("ETHUSDT", base + 4 * HOUR, base + 3 * HOUR))  # 4h interval
    assert clock.denial("BTCUSDT", base + 7 * HOUR + 54 * MIN + 59_999, **WINDOW) is None
    assert clock.denial("BTCUSDT", base + 7 * HOUR + 55 * MIN, **WINDOW) == (
        "funding_window: next funding at 08:00:00 UTC in 5m (no entries 5m before to 1m after)"
    )
    assert clock.denial("BTCUSDT", base + 8 * HOUR - 192_000, **WINDOW) == (
        "funding_window: next funding at 08:00:00 UTC in 3m12s (no entries 5m before to 1m after)"
    )
    # ETH funds at 04:00, BTC does not: nothing assumes 00/08/16.
    at = base + 3 * HOUR + 57 * MIN
    assert clock.denial("BTCUSDT", at, **WINDOW) is None
    assert clock.denial("ETHUSDT", at, **WINDOW) == (
        "funding_window: next funding at 04:00:00 UTC in 3m (no entries 5m before to 1m after)"
    )
    # The stream moves ETH's next funding on by 4h: 04:00 becomes the last one.
    clock.on_mark(mark("ETHUSDT", base + 8 * HOUR, base + 4 * HOUR + 1_000))
    assert clock.last_funding_ms("ETHUSDT") == base + 4 * HOUR
    assert clock.denial("ETHUSDT", base + 4 * HOUR + 30_000, **WINDOW) == (
        "funding_window: last funding at 04:00:00 UTC 30s ago (no entries 5m before to 1m after)"
    )
    assert clock.denial("ETHUSDT", base + 4 * HOUR + MIN, **WINDOW) is None
    # BTC's stream has not moved on after 08:00 yet: its "next" is then the last one.
    assert clock.denial("BTCUSDT", base + 8 * HOUR + 59_999, **WINDOW) == (
        "funding_window: last funding at 08:00:00 UTC 59s ago (no entries 5m before to 1m after)"
    )
    clock.on_mark(mark("BTCUSDT", base + 16 * HOUR, base + 8 * HOUR + 1_000))
    assert clock.next_funding_ms("BTCUSDT") == base + 16 * HOUR
    assert clock.denial("BTCUSDT", base + 8 * HOUR + 30_000, **WINDOW) is not None
    assert clock.denial("BTCUSDT", base + 8 * HOUR + MIN, **WINDOW) is None
    assert clock.denial("BTCUSDT", base + 16 * HOUR - 5 * MIN, **WINDOW) is not None


def test_funding_unknown_symbol_off_window_and_shortened_interval() -> None:
    clock = FundingClock()
    assert clock.denial("BTCUSDT", 0, **WINDOW) is None  # no mark yet: not gated
    clock.on_mark(mark("BTCUSDT", 8 * HOUR, 7 * HOUR))
    assert clock.denial("BTCUSDT", 8 * HOUR, before_ms=0, after_ms=0) is None
    # The exchange shortened the interval: the next funding comes earlier.
    clock.on_mark(mark("BTCUSDT", 7 * HOUR + 30 * MIN, 7 * HOUR + 1_000))
    assert clock.next_funding_ms("BTCUSDT") == 7 * HOUR + 30 * MIN
    assert clock.last_funding_ms("BTCUSDT") is None
    assert clock.denial("BTCUSDT", 7 * HOUR + 28 * MIN, **WINDOW) is not None
    clock.on_mark(mark("BTCUSDT", 0, 7 * HOUR + 2_000))  # no funding time: ignored
    assert clock.next_funding_ms("BTCUSDT") == 7 * HOUR + 30 * MIN
