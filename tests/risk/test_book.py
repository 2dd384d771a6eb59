"""RiskBook: average-cost positions, fees, pending entries, equity, the UTC day, snapshots.

Expected values are worked out by hand in the comments next to them.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import Fill, Side
from risk.book import SEEN_TRADE_IDS, RiskBook, RoundTrip

D = Decimal
DAY = 86_400_000
CAPITAL = D(10_000)


def fill(
    trade_id: int,
    side: Side,
    quantity: str,
    price: str,
    *,
    fee: str = "0",
    fee_asset: str = "USDT",
    symbol: str = "BTCUSDT",
    ts_ms: int = 0,
) -> Fill:
    return Fill(
        trade_id, f"c{trade_id}", symbol, side, D(price), D(quantity), D(fee), fee_asset,
        False, ts_ms,
    )  # fmt: skip


def new_book() -> RiskBook:
    return RiskBook(capital=CAPITAL)


def test_long_open_add_partial_close_and_close() -> None:
    book = new_book()
    assert book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "1", "100")) is None
    assert book.on_fill(strategy="s1", fill=fill(2, Side.BUY, "1", "110")) is None
    assert book.position("s1", "BTCUSDT") == D(2)
    assert book.average_price("s1", "BTCUSDT") == D(105)  # (100 + 110) / 2
    assert book.on_fill(strategy="s1", fill=fill(3, Side.SELL, "0.5", "120")) is None
    assert book.realised_pnl == D("7.5")  # 0.5 x (120 - 105)
    assert book.position("s1", "BTCUSDT") == D("1.5")
    assert book.average_price("s1", "BTCUSDT") == D(105)  # reducing keeps the average
    book.on_price("BTCUSDT", D(100))
    assert book.unrealised_pnl() == D("-7.5")  # 1.5 x (100 - 105)
    assert book.equity() == D(10_000)  # 10,000 + 7.5 - 7.5
    trip = book.on_fill(strategy="s1", fill=fill(4, Side.SELL, "1.5", "104", ts_ms=7))
    # 7.5 + 1.5 x (104 - 105) = 6
    assert trip == RoundTrip("s1", "BTCUSDT", D(6), 7)
    assert book.realised_pnl == D(6)
    assert book.position("s1", "BTCUSDT") == 0
    assert book.positions() == {}
    assert book.equity() == D(10_006)


def test_short_round_trip() -> None:
    book = new_book()
    book.on_fill(strategy="s1", fill=fill(1, Side.SELL, "2", "50"))
    assert book.position("s1", "BTCUSDT") == D(-2)
    book.on_price("BTCUSDT", D(55))
    assert book.unrealised_pnl() == D(-10)  # -2 x (55 - 50)
    assert book.on_fill(strategy="s1", fill=fill(2, Side.BUY, "1", "40")) is None  # +10
    trip = book.on_fill(strategy="s1", fill=fill(3, Side.BUY, "1", "45"))  # +5
    assert trip is not None
    assert trip.pnl == D(15)
    assert book.realised_pnl == D(15)


def test_flip_through_zero_splits_pnl_and_fee() -> None:
    book = new_book()
    book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "1", "100", fee="0.1"))
    trip = book.on_fill(strategy="s1", fill=fill(2, Side.SELL, "3", "90", fee="0.3"))
    # Closed part: 1 x (90 - 100) = -10; fees: the opening 0.1 and 1/3 of 0.3 = 0.1.
    assert trip is not None
    assert trip.pnl == D("-10.2")
    assert book.position("s1", "BTCUSDT") == D(-2)
    assert book.average_price("s1", "BTCUSDT") == D(90)  # the rest opened at the fill price
    assert book.realised_pnl == D("-10.4")  # -10 - 0.1 - 0.3
    trip = book.on_fill(strategy="s1", fill=fill(3, Side.BUY, "2", "80"))
    # New position: 2/3 of 0.3 = 0.2 fee, then 2 x (90 - 80) = 20.
    assert trip is not None
    assert trip.pnl == D("19.8")
    assert book.realised_pnl == D("9.6")


def test_fees_in_quote_base_and_third_asset() -> None:
    book = new_book()
    book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "1", "100", fee="0.25"))
    assert book.realised_pnl == D("-0.25")  # quote asset: straight off the PnL
    book.on_fill(strategy="s1", fill=fill(2, Side.BUY, "1", "100", fee="0.001", fee_asset="BTC"))
    assert book.realised_pnl == D("-0.35")  # base asset: 0.001 BTC x 100 = 0.1 USDT
    book.on_fill(strategy="s1", fill=fill(3, Side.BUY, "1", "100", fee="0.05", fee_asset="BNB"))
    assert book.realised_pnl == D("-0.35")  # third asset: counted apart
    assert book.fees_other == {"BNB": D("0.05")}
    # BNB is the base asset of BNBUSDT: 0.0015 BNB x 300 = 0.45 USDT.
    book.on_fill(
        strategy="s1",
        fill=fill(4, Side.BUY, "2", "300", fee="0.0015", fee_asset="BNB", symbol="BNBUSDT"),
    )
    assert book.realised_pnl == D("-0.80")
    assert book.fees_other == {"BNB": D("0.05")}
    # ETHBTC is quoted in BTC: a BTC fee is a quote fee, an ETH fee converts at 0.05.
    book.on_fill(
        strategy="s1",
        fill=fill(5, Side.BUY, "1", "0.05", fee="0.0001", fee_asset="BTC", symbol="ETHBTC"),
    )
    book.on_fill(
        strategy="s1",
        fill=fill(6, Side.BUY, "1", "0.05", fee="0.002", fee_asset="ETH", symbol="ETHBTC"),
    )
    assert book.realised_pnl == D("-0.80") - D("0.0001") - D("0.0001")


def test_quote_asset_is_the_longest_match() -> None:
    book = RiskBook(capital=CAPITAL, quote_assets=("USD", "FDUSD"))
    assert book.quote_asset("BTCFDUSD") == "FDUSD"
    assert book.quote_asset("BTCUSD") == "USD"
    assert book.quote_asset("BTCEUR") is None
    assert new_book().quote_asset("ETHBTC") == "BTC"


def test_futures_realized_pnl_field_is_not_used() -> None:
    book = new_book()
    book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "1", "100"))
    closing = Fill(2, "c2", "BTCUSDT", Side.SELL, D(110), D(1), D(0), "USDT", False, 0, D(999))
    trip = book.on_fill(strategy="s1", fill=closing)
    assert trip is not None
    assert trip.pnl == D(10)


def test_duplicate_trade_id_is_ignored_per_symbol() -> None:
    book = new_book()
    book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "1", "100", fee="1"))
    assert book.on_fill(strategy="s1", fill=fill(1, Side.SELL, "1", "100")) is None
    assert book.position("s1", "BTCUSDT") == D(1)
    assert book.realised_pnl == D(-1)
    # The same trade id on another symbol is another trade.
    book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "2", "10", symbol="ETHUSDT"))
    assert book.position("s1", "ETHUSDT") == D(2)


def test_seen_trade_ids_are_bounded() -> None:
    book = new_book()
    for n in range(SEEN_TRADE_IDS + 1):
        book.on_fill(strategy="s1", fill=fill(n, Side.BUY if n % 2 == 0 else Side.SELL, "1", "1"))
    seen = book.snapshot()["seen_trade_ids"]
    assert isinstance(seen, list)
    assert len(seen) == SEEN_TRADE_IDS
    assert tuple(seen[0]) == ("BTCUSDT", 1)
    assert book.position("s1", "BTCUSDT") == D(1)
    # The oldest id was forgotten: it counts again; the newest is still known.
    book.on_fill(strategy="s1", fill=fill(SEEN_TRADE_IDS, Side.BUY, "1", "1"))
    assert book.position("s1", "BTCUSDT") == D(1)
    book.on_fill(strategy="s1", fill=fill(0, Side.SELL, "1", "1"))
    assert book.position("s1", "BTCUSDT") == D(0)


def test_positions_net_holders_and_open_positions() -> None:
    book = new_book()
    book.on_fill(strategy="a", fill=fill(1, Side.BUY, "3", "100"))
    book.on_fill(strategy="b", fill=fill(2, Side.SELL, "1", "100"))
    book.on_fill(strategy="b", fill=fill(3, Side.BUY, "2", "10", symbol="ETHUSDT"))
    assert book.net_position("BTCUSDT") == D(2)
    assert book.positions() == {
        ("a", "BTCUSDT"): D(3),
        ("b", "BTCUSDT"): D(-1),
        ("b", "ETHUSDT"): D(2),
    }
    assert book.open_positions() == 3
    assert book.holders("BTCUSDT") == 2
    assert book.holders("ETHUSDT") == 1
    assert book.holders("SOLUSDT") == 0


def test_pending_entries_count_until_final() -> None:
    book = new_book()
    book.on_price("BTCUSDT", D(100))
    book.add_pending(
        client_order_id="o1", strategy="s1", symbol="BTCUSDT", side=Side.BUY,
        quantity=D(2), is_entry=True,
    )  # fmt: skip
    book.add_pending(
        client_order_id="x1", strategy="s2", symbol="BTCUSDT", side=Side.SELL,
        quantity=D(5), is_entry=False,
    )  # fmt: skip
    assert book.pending_entry_quantity("BTCUSDT", Side.BUY) == D(2)
    assert book.pending_entry_quantity("BTCUSDT", Side.SELL) == 0  # exits do not count
    assert book.exposure() == D(200)  # |0 + 2| x 100
    assert book.open_positions() == 0
    assert book.open_positions(include_pending=True) == 1
    assert book.holders("BTCUSDT", include_pending=True) == 1
    assert book.has_pending_entry("s1", "BTCUSDT")
    # Part filled: the fill moves into the position, the rest stays pending.
    book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "0.5", "100"))
    book.update_pending("o1", filled_quantity=D("0.5"), final=False)
    assert book.pending_entry_quantity("BTCUSDT", Side.BUY) == D("1.5")
    assert book.exposure() == D(200)  # |0.5 + 1.5| x 100
    assert book.symbol_notional("BTCUSDT", extra_quantity=D(-3)) == D(100)  # |0.5 + 1.5 - 3|
    book.update_pending("nobody", filled_quantity=D(9), final=True)  # ignored
    book.update_pending("o1", filled_quantity=D("0.5"), final=True)
    assert book.pending_entry_quantity("BTCUSDT", Side.BUY) == 0
    assert book.exposure() == D(50)
    assert book.pending_ids() == ["x1"]


def test_pending_short_entry_offsets_and_extra_symbols_count() -> None:
    book = new_book()
    book.on_price("BTCUSDT", D(100))
    book.on_price("ETHUSDT", D(10))
    book.on_fill(strategy="a", fill=fill(1, Side.BUY, "3", "100"))
    book.add_pending(
        client_order_id="o1", strategy="b", symbol="BTCUSDT", side=Side.SELL,
        quantity=D(1), is_entry=True,
    )  # fmt: skip
    assert book.exposure() == D(200)  # |3 - 1| x 100
    # extra: a new ETH short of 3 -> + 30; an unpriced symbol adds nothing.
    assert book.exposure(extra={"ETHUSDT": D(-3), "XRPUSDT": D(5)}) == D(230)
    assert book.exposure(extra={"XRPUSDT": D(5)}, prices={"XRPUSDT": D(2)}) == D(210)


def test_unrealised_equity_and_unpriced_symbols() -> None:
    book = new_book()
    book.on_fill(strategy="a", fill=fill(1, Side.BUY, "2", "100"))
    book.on_fill(strategy="b", fill=fill(2, Side.SELL, "10", "5", symbol="XRPUSDT"))
    # The first fill on a symbol is its first price: 0 unrealised at the fill price.
    assert book.price("BTCUSDT") == D(100)
    book.on_price("BTCUSDT", D(130))
    book.on_price("XRPUSDT", D(4))
    # 2 x (130 - 100) = 60; -10 x (4 - 5) = 10
    assert book.unrealised_pnl() == D(70)
    assert book.equity() == D(10_070)
    assert book.exposure() == D(300)  # 2 x 130 + 10 x 4
    # A later fill does not overwrite a known price.
    book.on_fill(strategy="a", fill=fill(3, Side.BUY, "1", "90"))
    assert book.price("BTCUSDT") == D(130)
    assert book.price("SOLUSDT") is None


def test_day_roll_at_utc_midnight() -> None:
    book = new_book()
    assert book.day is None
    book.roll_day(3 * DAY + 10 * 3_600_000)
    assert book.day == 3
    assert book.day_open_equity == D(10_000)
    book.on_fill(strategy="s1", fill=fill(1, Side.BUY, "1", "100"))
    book.on_price("BTCUSDT", D(90))
    book.record_entry_sent(symbol="BTCUSDT", quantity=D(1), now_ms=3 * DAY + 11 * 3_600_000)
    book.record_entry_sent(symbol="BTCUSDT", quantity=D("0.5"), now_ms=3 * DAY + 12 * 3_600_000)
    assert book.entries_today("BTCUSDT") == 2
    assert book.quantity_today("BTCUSDT") == D("1.5")
    book.roll_day(4 * DAY - 1)
    assert book.day_pnl() == D(-10)  # 1 x (90 - 100), same day
    book.roll_day(4 * DAY)
    assert book.day == 4
    assert book.day_pnl() == 0
    assert book.day_open_equity == D(9_990)
    assert book.entries_today("BTCUSDT") == 0
    assert book.quantity_today("BTCUSDT") == 0
    # The cooldown's memory is not a day counter.
    assert book.last_entry_ms("BTCUSDT") == 3 * DAY + 12 * 3_600_000
    book.on_price("BTCUSDT", D(95))
    assert book.day_pnl() == D(5)
    book.roll_day(4 * DAY - 5)  # a clock stepping back does not reopen the day
    assert book.day_open_equity == D(9_990)


def test_record_entry_sent_rolls_the_day_first() -> None:
    book = new_book()
    book.record_entry_sent(symbol="BTCUSDT", quantity=D(1), now_ms=DAY - 1)
    book.record_entry_sent(symbol="BTCUSDT", quantity=D(2), now_ms=DAY)
    assert book.entries_today("BTCUSDT") == 1
    assert book.quantity_today("BTCUSDT") == D(2)


def _busy_book() -> RiskBook:
    book = new_book()
    book.roll_day(DAY + 5)
    book.on_fill(strategy="a", fill=fill(1, Side.BUY, "1", "100", fee="0.1"))
    book.on_fill(strategy="a", fill=fill(2, Side.BUY, "1", "110", fee="0.01", fee_asset="BNB"))
    book.on_fill(strategy="b", fill=fill(3, Side.SELL, "4", "10", symbol="ETHUSDT"))
    book.on_price("BTCUSDT", D(120))
    book.add_pending(
        client_order_id="o1", strategy="c", symbol="BTCUSDT", side=Side.SELL,
        quantity=D(3), is_entry=True,
    )  # fmt: skip
    book.update_pending("o1", filled_quantity=D(1), final=False)
    book.record_entry_sent(symbol="BTCUSDT", quantity=D(3), now_ms=DAY + 10)
    return book


def test_snapshot_restore_round_trip_behaves_the_same() -> None:
    book = _busy_book()
    data = json.loads(json.dumps(book.snapshot()))
    copy = RiskBook.restore(data, capital=CAPITAL)
    assert copy.snapshot() == book.snapshot()
    for b in (book, copy):
        assert b.equity() == D("10029.9")  # 10,000 - 0.1 + 2 x (120 - 105) + 0 (ETH at 10)
        assert b.exposure() == D(40)  # BTC |2 - 2| x 120 + ETH 4 x 10
        assert b.entries_today("BTCUSDT") == 1
        assert b.fees_other == {"BNB": D("0.01")}
        # The fills already seen are still ignored, a new one is booked the same way.
        assert b.on_fill(strategy="a", fill=fill(2, Side.SELL, "2", "1")) is None
        trip = b.on_fill(strategy="a", fill=fill(9, Side.SELL, "2", "125"))
        assert trip == RoundTrip("a", "BTCUSDT", D("39.9"), 0)  # 2 x 20 - 0.1
    assert copy.snapshot() == book.snapshot()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.pop("positions"),
        lambda d: d.update(version=99),
        lambda d: d.update(realised_pnl="abc"),
        lambda d: d.update(realised_pnl=1.5),
        lambda d: d.update(day_open_equity="NaN"),
        lambda d: d["pending"][0].update(side="up"),
        lambda d: d.update(seen_trade_ids=[["BTCUSDT"]]),
        lambda d: d.update(entries_today={"BTCUSDT": "1"}),
        lambda d: d.update(prices=[1, 2]),
    ],
)
def test_restore_rejects_bad_data(corrupt) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(_busy_book().snapshot()))
    corrupt(data)
    with pytest.raises(ValueError, match="snapshot"):
        RiskBook.restore(data, capital=CAPITAL)


# -- the property: positions and cash -------------------------------------------------------

_fills = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2"]),
        st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.decimals(min_value=D("0.001"), max_value=D(50), places=3),
        st.decimals(min_value=D("0.01"), max_value=D(1000), places=2),
        st.decimals(min_value=D(0), max_value=D(1), places=4),
        st.sampled_from(["USDT", "base", "BNB"]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_fills, st.decimals(min_value=D(1), max_value=D(1000), places=2))
def test_position_and_equity_follow_the_cash_flows(fills, close_price) -> None:  # type: ignore[no-untyped-def]
    book = new_book()
    expected: dict[tuple[str, str], Decimal] = {}
    cash = D(0)
    fees = D(0)
    trips = D(0)
    trade_id = 0

    def book_fill(strategy: str, symbol: str, side: Side, qty: Decimal, price: Decimal,
                  fee: Decimal, asset: str) -> None:  # fmt: skip
        nonlocal cash, fees, trips, trade_id
        trade_id += 1
        fee_asset = symbol[:3] if asset == "base" else asset
        f = Fill(trade_id, "", symbol, side, price, qty, fee, fee_asset, False, trade_id)
        trip = book.on_fill(strategy=strategy, fill=f)
        if trip is not None:
            trips += trip.pnl
        signed = qty if side is Side.BUY else -qty
        # A base-asset fee is never held: the holding shrinks by it, the cash flow does not.
        held = signed - fee if asset == "base" else signed
        expected[(strategy, symbol)] = expected.get((strategy, symbol), D(0)) + held
        cash -= signed * price
        fees += {"USDT": fee, "base": D(0), "BNB": D(0)}[asset]

    for strategy, symbol, side, qty, price, fee, asset in fills:
        book_fill(strategy, symbol, side, qty, price, fee, asset)
    for key, qty in expected.items():
        assert book.position(*key) == qty
    assert book.positions() == {k: q for k, q in expected.items() if q != 0}
    for (strategy, symbol), qty in list(expected.items()):
        if qty != 0:
            side = Side.SELL if qty > 0 else Side.BUY
            book_fill(strategy, symbol, side, abs(qty), close_price, D(0), "USDT")
    assert book.positions() == {}
    tolerance = D("1e-15")
    assert abs(book.equity() - (CAPITAL + cash - fees)) < tolerance
    # With everything flat, the round trips hold all the realised PnL.
    assert abs(trips - book.realised_pnl) < tolerance
