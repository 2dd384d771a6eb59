"""Domain <-> row mapping: round trips as properties of the pure functions, then through a real
SQLite file and a real PostgreSQL schema; position accounting by hand-computed examples and an
invariant."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.domain import (
    Alert,
    AlertSeverity,
    Balance,
    Kline,
    OrderDenied,
    OrderOrigin,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    Signal,
    SignalAction,
    SubmitOrder,
    TimeInForce,
    TradingState,
    TradingStateChanged,
)
from app.domain.orders import Fill
from config.database import DatabaseSettings
from database import mapping
from database.engine import make_engine
from database.models import (
    AlertRow,
    BalanceRow,
    CandleRow,
    FillRow,
    OrderRow,
    SignalRow,
    TradingStateRow,
)
from database.schema import upgrade

# -- strategies -----------------------------------------------------------------------------------
amounts = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False
)
positive = st.decimals(
    min_value=Decimal("0"), max_value=Decimal("1e9"), allow_nan=False, allow_infinity=False,
    places=8,
)  # fmt: skip
text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=36)
symbols = st.sampled_from(["BTCUSDT", "ETHBTC", "BNBUSDT", "SOLFDUSD"])
times = st.integers(min_value=0, max_value=2**53)
maybe = st.one_of


def _enum(kind: Any) -> Any:
    return st.sampled_from(list(kind))


fills = st.builds(
    Fill,
    trade_id=st.integers(min_value=0, max_value=2**62),
    client_order_id=ids,
    symbol=symbols,
    side=_enum(Side),
    price=positive,
    quantity=positive,
    fee=positive,
    fee_asset=st.sampled_from(["BTC", "USDT", "BNB", ""]),
    is_maker=st.booleans(),
    ts_ms=times,
    realized_pnl=maybe(st.none(), amounts),
    exchange_order_id=maybe(st.none(), st.integers(min_value=0, max_value=2**62)),
)
order_updates = st.builds(
    OrderUpdated,
    client_order_id=ids,
    symbol=symbols,
    side=_enum(Side),
    order_type=_enum(OrderType),
    status=_enum(OrderStatus),
    quantity=positive,
    filled_quantity=positive,
    ts_ms=times,
    price=maybe(st.none(), positive),
    average_fill_price=maybe(st.none(), positive),
    exchange_order_id=maybe(st.none(), st.integers(min_value=0, max_value=2**62)),
    reason=text,
    origin=_enum(OrderOrigin),
    reduce_only=st.booleans(),
    stop_price=maybe(st.none(), positive),
    time_in_force=maybe(st.none(), _enum(TimeInForce)),
    strategy=ids,
    signal_id=maybe(st.none(), ids),
    purpose=maybe(st.none(), _enum(OrderPurpose)),
)
submits = st.builds(
    SubmitOrder,
    client_order_id=ids,
    strategy=ids,
    symbol=symbols,
    side=_enum(Side),
    order_type=_enum(OrderType),
    quantity=positive,
    ts_ms=times,
    price=maybe(st.none(), positive),
    stop_price=maybe(st.none(), positive),
    time_in_force=maybe(st.none(), _enum(TimeInForce)),
    reduce_only=st.booleans(),
    signal_id=maybe(st.none(), ids),
    purpose=_enum(OrderPurpose),
)
signals = st.builds(
    Signal,
    strategy=ids,
    symbol=symbols,
    action=_enum(SignalAction),
    ts_ms=times,
    signal_id=ids,
    size_hint=maybe(st.none(), amounts),
    confidence=st.floats(min_value=0, max_value=1),
    reason=text,
    tags=st.lists(text, max_size=4).map(tuple),
)
klines = st.builds(
    Kline,
    symbol=symbols,
    interval=st.just("1m"),
    open_time_ms=times,
    close_time_ms=times,
    open=positive,
    high=positive,
    low=positive,
    close=positive,
    volume=positive,
    quote_volume=positive,
    trades=st.integers(min_value=0, max_value=2**40),
    closed=st.just(True),
)
balances = st.builds(
    Balance, asset=st.sampled_from(["BTC", "USDT", "BNB"]), free=positive, locked=positive
)
states = st.builds(
    TradingStateChanged,
    state=_enum(TradingState),
    previous=maybe(st.none(), _enum(TradingState)),
    reason=text,
    ts_ms=times,
)
alerts = st.builds(
    Alert, severity=_enum(AlertSeverity), source=ids, title=text, ts_ms=times, detail=text
)


def _without_event_fields(update: OrderUpdated) -> OrderUpdated:
    """What a row can give back: the latest state, not the event that produced it."""
    return dataclasses.replace(update, fill=None, execution_type=None)


# -- pure round trips -----------------------------------------------------------------------------
@given(order_updates)
def test_order_round_trip(update: OrderUpdated) -> None:
    row = mapping.order_to_row(update)
    assert row.is_open is not update.status.is_final
    assert mapping.order_from_row(row) == _without_event_fields(update)


@given(submits)
def test_intent_is_a_pending_new_order_row(order: SubmitOrder) -> None:
    back = mapping.order_from_row(mapping.intent_to_row(order))
    assert back.status is OrderStatus.PENDING_NEW
    assert back.filled_quantity == 0
    assert (back.client_order_id, back.strategy, back.symbol, back.side) == (
        order.client_order_id, order.strategy, order.symbol, order.side,
    )  # fmt: skip
    assert (back.quantity, back.price, back.stop_price) == (
        order.quantity, order.price, order.stop_price,
    )  # fmt: skip
    assert (back.purpose, back.signal_id, back.order_type) == (
        order.purpose, order.signal_id, order.order_type,
    )  # fmt: skip


@given(fills, ids)
def test_fill_round_trip(fill: Fill, strategy: str) -> None:
    row = mapping.fill_to_row(fill, strategy=strategy)
    assert row.strategy == strategy
    assert mapping.fill_from_row(row) == fill


def test_fill_without_client_order_id_takes_the_orders() -> None:
    fill = Fill(1, "", "BTCUSDT", Side.BUY, Decimal(1), Decimal(1), Decimal(0), "USDT", False, 0)
    assert mapping.fill_to_row(fill, strategy="s", client_order_id="tb-1").client_order_id == "tb-1"


@given(signals)
def test_signal_round_trip(signal: Signal) -> None:
    row = mapping.signal_to_row(signal)
    assert (row.outcome, row.client_order_id, row.denial_reason) == ("", None, None)
    assert mapping.signal_from_row(row) == signal


def test_denial_becomes_the_signals_answer() -> None:
    denied = OrderDenied("s1", "BTCUSDT", "max_positions: 3", 5, "sig-1", "tb-sig-1")
    values = mapping.denial_values(denied)
    assert values is not None
    assert (values["signal_id"], values["outcome"], values["denial_reason"]) == (
        "sig-1", "denied", "max_positions: 3",
    )  # fmt: skip
    assert values["client_order_id"] == "tb-sig-1"
    assert mapping.denial_values(dataclasses.replace(denied, signal_id=None)) is None


@given(klines)
def test_candle_round_trip(kline: Kline) -> None:
    assert mapping.candle_from_row(mapping.candle_to_row(kline)) == kline


@pytest.mark.parametrize(("interval", "closed"), [("1m", False), ("5m", True)])
def test_only_closed_one_minute_bars_map(interval: str, closed: bool) -> None:
    one = Decimal(1)
    kline = Kline("BTCUSDT", interval, 0, 59_999, one, one, one, one, one, one, 1, closed)
    with pytest.raises(ValueError, match="only closed 1m"):
        mapping.candle_to_row(kline)


@given(balances, times)
def test_balance_row(balance: Balance, ts_ms: int) -> None:
    row = mapping.balance_to_row(balance, ts_ms)
    assert (row.asset, row.free, row.locked, row.updated_ms) == (
        balance.asset, balance.free, balance.locked, ts_ms,
    )  # fmt: skip


@given(states)
def test_trading_state_round_trip(change: TradingStateChanged) -> None:
    assert mapping.trading_state_from_row(mapping.trading_state_to_row(change)) == change


@given(alerts)
def test_alert_round_trip(alert: Alert) -> None:
    assert mapping.alert_from_row(mapping.alert_to_row(alert)) == alert


# -- position accounting --------------------------------------------------------------------------
def _fill(n: int, side: Side, price: str, quantity: str, fee: str, asset: str) -> Fill:
    return Fill(
        n, f"c{n}", "BTCUSDT", side, Decimal(price), Decimal(quantity), Decimal(fee), asset,
        False, n,
    )  # fmt: skip


def test_spot_round_trip_with_a_base_asset_fee() -> None:
    position = mapping.PositionState()
    # Buy 1 BTC at 100, the fee (0.001 BTC) taken from what is bought: 0.999 held, and the
    # fee (0.1 USDT at the fill price) charged to PnL.
    position = mapping.apply_fill(position, _fill(1, Side.BUY, "100", "1", "0.001", "BTC"))
    assert position == mapping.PositionState(Decimal("0.999"), Decimal(100), Decimal("-0.1"))
    position = mapping.apply_fill(position, _fill(2, Side.BUY, "110", "1", "0.11", "USDT"))
    assert position.quantity == Decimal("1.999")
    assert position.average_price == Decimal("209.9") / Decimal("1.999")
    position = mapping.apply_fill(position, _fill(3, Side.SELL, "120", "1.999", "0.2", "USDT"))
    assert position.quantity == 0
    assert position.average_price == 0
    # 1.999 * 120 - 209.9 cost - 0.41 fees
    assert abs(position.realized_pnl - Decimal("29.57")) < Decimal("1e-20")


def test_a_fill_crossing_zero_opens_the_rest_at_its_price() -> None:
    position = mapping.apply_fill(
        mapping.PositionState(), _fill(1, Side.SELL, "50", "2", "0", "USDT")
    )
    assert position == mapping.PositionState(Decimal(-2), Decimal(50), Decimal(0))
    position = mapping.apply_fill(position, _fill(2, Side.BUY, "40", "3", "0.12", "USDT"))
    assert position == mapping.PositionState(Decimal(1), Decimal(40), Decimal("19.88"))


def test_a_fee_in_a_third_asset_is_not_charged_to_pnl() -> None:
    position = mapping.apply_fill(
        mapping.PositionState(), _fill(1, Side.BUY, "100", "1", "0.01", "BNB")
    )
    assert position == mapping.PositionState(Decimal(1), Decimal(100), Decimal(0))


@given(
    st.lists(
        st.tuples(_enum(Side), positive.filter(lambda d: d > 0), positive.filter(lambda d: d > 0)),
        max_size=12,
    )
)
@settings(max_examples=200)
def test_position_quantity_is_the_sum_of_position_changes(
    trades: list[tuple[Side, Decimal, Decimal]],
) -> None:
    position = mapping.PositionState()
    expected = Decimal(0)
    for n, (side, price, quantity) in enumerate(trades):
        fill = _fill(n, side, str(price), str(quantity), "0", "USDT")
        position = mapping.apply_fill(position, fill)
        expected += fill.position_change
        assert position.quantity == expected
        assert position.average_price >= 0
        if position.quantity == 0:
            assert position.average_price == 0


# -- through a real database ----------------------------------------------------------------------
def create_schema(settings: DatabaseSettings) -> Engine:
    """The tables as a user gets them: the real alembic upgrade to head."""
    engine = make_engine(settings)
    upgrade(engine)
    return engine


def _stored(engine: Engine, row: Any) -> Any:
    model = type(row)
    with Session(engine) as session:
        session.add(row)
        session.commit()
    with Session(engine) as session:
        return session.exec(select(model)).one()


EXAMPLE_FILL = Fill(
    9_007_199_254_740_993, "tb-1", "ETHBTC", Side.BUY, Decimal("0.05123400"),
    Decimal("12.00000001"), Decimal("0.00001200"), "ETH", True, 1_700_000_000_123,
    Decimal("-0.000000000000000001"), 77,
)  # fmt: skip
EXAMPLE_UPDATE = OrderUpdated(
    "tb-1", "ETHBTC", Side.BUY, OrderType.LIMIT, OrderStatus.PARTIALLY_FILLED,
    Decimal("20.00000000"), Decimal("12.00000001"), 1_700_000_000_123, Decimal("0.05123400"),
    Decimal("0.051234"), 77, EXAMPLE_FILL, "why", None, OrderOrigin.CLIENT, False,
    Decimal("0.05"), TimeInForce.GTC, "trend-1", "sig-9", OrderPurpose.ENTRY,
)  # fmt: skip


def test_rows_round_trip_through_the_database(db_settings: DatabaseSettings) -> None:
    engine = create_schema(db_settings)
    try:
        row: OrderRow = _stored(engine, mapping.order_to_row(EXAMPLE_UPDATE))
        assert mapping.order_from_row(row) == _without_event_fields(EXAMPLE_UPDATE)
        fill_row: FillRow = _stored(engine, mapping.fill_to_row(EXAMPLE_FILL, strategy="trend-1"))
        assert mapping.fill_from_row(fill_row) == EXAMPLE_FILL
        if db_settings.url.startswith("sqlite"):
            assert str(fill_row.fee) == "0.00001200"  # trailing zeros kept, as stored
        signal = Signal(
            "trend-1", "ETHBTC", SignalAction.ENTER_LONG, 5, "sig-9", Decimal("0.1"), 0.75,
            "cross", ("a,b", "c"),
        )  # fmt: skip
        signal_row: SignalRow = _stored(engine, mapping.signal_to_row(signal))
        assert mapping.signal_from_row(signal_row) == signal
        one = Decimal("123456789012.123456789")
        kline = Kline("ETHBTC", "1m", 60_000, 119_999, one, one, one, one, one, one, 3, True)
        candle: CandleRow = _stored(engine, mapping.candle_to_row(kline))
        assert mapping.candle_from_row(candle) == kline
        balance: BalanceRow = _stored(
            engine, mapping.balance_to_row(Balance("BTC", Decimal("0.1"), Decimal("0")), 9)
        )
        assert (balance.free, balance.locked) == (Decimal("0.1"), Decimal(0))
        change = TradingStateChanged(TradingState.HALTED, TradingState.ACTIVE, "operator", 3)
        state: TradingStateRow = _stored(engine, mapping.trading_state_to_row(change))
        assert mapping.trading_state_from_row(state) == change
        alert = Alert(AlertSeverity.CRITICAL, "recorder", "trading halted", 4, "détail ✓")
        alert_row: AlertRow = _stored(engine, mapping.alert_to_row(alert))
        assert mapping.alert_from_row(alert_row) == alert
    finally:
        engine.dispose()
