"""Signal -> order shaping on the simulator's real symbol rules, and the closes-in-flight ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from app.domain import (
    BookTicker,
    MarketType,
    OrderPurpose,
    OrderType,
    Side,
    Signal,
    SignalAction,
    SubmitOrder,
)
from config.risk import OrderShapeSettings
from exchange.binance.rules import check_order
from risk.orders import (
    ClosingOrders,
    Denial,
    PriceBoard,
    ShapedEntry,
    close_order,
    closing_side,
    shape_entry,
)
from tests.risk.gate_support import START_MS, sim_rules

SPOT_RULES = sim_rules(MarketType.SPOT)
USDM_RULES = sim_rules(MarketType.USDM)


def _signal(action: SignalAction = SignalAction.ENTER_LONG, size: str | None = None) -> Signal:
    return Signal(
        "alpha", "BTCUSDT", action, START_MS, "alpha-1", None if size is None else Decimal(size)
    )


def _board(
    close: str | None = "60000", bid: str | None = None, ask: str | None = None
) -> PriceBoard:
    board = PriceBoard()
    if close is not None:
        board.on_close("BTCUSDT", Decimal(close))
    if bid is not None and ask is not None:
        board.on_book(
            BookTicker("BTCUSDT", Decimal(bid), Decimal(1), Decimal(ask), Decimal(1), START_MS)
        )
    return board


def _shape(
    signal: Signal,
    board: PriceBoard,
    market: MarketType = MarketType.SPOT,
    **shape: object,
) -> ShapedEntry | Denial:
    rules = SPOT_RULES if market is MarketType.SPOT else USDM_RULES
    return shape_entry(
        signal,
        market=market,
        rules=rules["BTCUSDT"],
        settings=OrderShapeSettings.model_validate(shape),
        board=board,
        client_order_id="tb-x",
        now_ms=START_MS,
    )


def test_price_prefers_the_book_mid_then_the_close_then_the_mark() -> None:
    board = PriceBoard()
    assert board.price("BTCUSDT") is None
    board.on_mark("BTCUSDT", Decimal(59_000))
    assert board.price("BTCUSDT") == Decimal(59_000)
    board.on_close("BTCUSDT", Decimal(60_000))
    assert board.price("BTCUSDT") == Decimal(60_000)
    board.on_book(
        BookTicker("BTCUSDT", Decimal(61_000), Decimal(1), Decimal(61_002), Decimal(1), 0)
    )
    assert board.price("BTCUSDT") == Decimal(61_001)
    assert board.best("BTCUSDT", Side.BUY) == Decimal(61_000)
    assert board.best("BTCUSDT", Side.SELL) == Decimal(61_002)
    # A one-sided book is not a mid.
    board.on_book(BookTicker("BTCUSDT", Decimal(0), Decimal(0), Decimal(61_002), Decimal(1), 0))
    assert board.price("BTCUSDT") == Decimal(60_000)


def test_limit_entry_without_a_book_uses_the_last_price() -> None:
    shaped = _shape(_signal(size="0.01"), _board(), entry_type="limit", limit_offset_bps="100")
    assert isinstance(shaped, ShapedEntry)
    assert shaped.order.price == Decimal("59400.00")
    assert shaped.price == shaped.order.price  # valued at the limit price


def test_a_non_trading_symbol_is_left_to_the_status_check() -> None:
    import dataclasses

    rules = dataclasses.replace(SPOT_RULES["BTCUSDT"], status="HALT")
    shaped = shape_entry(
        _signal(size="0.01"),
        market=MarketType.SPOT,
        rules=rules,
        settings=OrderShapeSettings(),
        board=_board(),
        client_order_id="tb-x",
        now_ms=START_MS,
    )
    assert isinstance(shaped, ShapedEntry)
    assert shaped.status_violation == "filter STATUS: symbol BTCUSDT is HALT, not TRADING"


def test_unknown_symbol_rules_deny_by_status_name() -> None:
    shaped = shape_entry(
        _signal(size="0.01"),
        market=MarketType.SPOT,
        rules=None,
        settings=OrderShapeSettings(),
        board=_board(),
        client_order_id="tb-x",
        now_ms=START_MS,
    )
    assert shaped == Denial("symbol_status: no exchange rules for BTCUSDT")


def test_a_non_positive_size_hint_is_denied() -> None:
    shaped = _shape(_signal(size="-1"), _board())
    assert isinstance(shaped, Denial)
    assert shaped.check == "size"


@settings(max_examples=200)
@given(
    market=st.sampled_from(list(MarketType)),
    limit=st.booleans(),
    size=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(50), places=7),
    price=st.decimals(min_value=Decimal(20_000), max_value=Decimal(100_000), places=2),
    spread=st.decimals(min_value=Decimal(0), max_value=Decimal(50), places=1),
    offset=st.decimals(min_value=Decimal(0), max_value=Decimal(300), places=1),
)
def test_every_shaped_entry_passes_the_filters_and_never_grows(
    market: MarketType,
    limit: bool,
    size: Decimal,
    price: Decimal,
    spread: Decimal,
    offset: Decimal,
) -> None:
    side_action = SignalAction.ENTER_SHORT if market is MarketType.USDM else SignalAction.ENTER_LONG
    board = _board(str(price), str(price), str(price + spread))
    shape = {"entry_type": "limit" if limit else "market", "limit_offset_bps": offset}
    shaped = _shape(_signal(side_action, str(size)), board, market, **shape)
    event("denied" if isinstance(shaped, Denial) else "shaped")
    if isinstance(shaped, Denial):
        assert shaped.reason.startswith("filter ")
        return
    order = shaped.order
    assert order.quantity <= size
    rules = (SPOT_RULES if market is MarketType.SPOT else USDM_RULES)["BTCUSDT"]
    assert (
        check_order(
            rules,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            price=order.price,
            reference_price=board.price("BTCUSDT"),
        )
        is None
    )
    if limit:
        assert order.price is not None
        # Passive: a buy never above the bid, a sell never below the ask.
        if order.side is Side.BUY:
            assert order.price <= price
        else:
            assert order.price >= price + spread


@pytest.mark.parametrize("market", list(MarketType))
def test_close_orders_are_market_and_reduce_only_on_futures_only(market: MarketType) -> None:
    rules = (SPOT_RULES if market is MarketType.SPOT else USDM_RULES)["BTCUSDT"]
    order = close_order(
        strategy="alpha",
        symbol="BTCUSDT",
        side=Side.SELL,
        quantity=Decimal("0.0123456"),
        purpose=OrderPurpose.EXIT,
        market=market,
        rules=rules,
        reference_price=Decimal(60_000),
        client_order_id="tb-y",
        now_ms=START_MS,
        signal_id="alpha-2",
    )
    assert isinstance(order, SubmitOrder)
    assert order.order_type is OrderType.MARKET
    assert order.reduce_only is (market is MarketType.USDM)
    assert order.quantity <= Decimal("0.0123456")
    assert order.quantity == (Decimal("0.01234") if market is MarketType.SPOT else Decimal("0.012"))


def test_closing_orders_clip_the_next_close() -> None:
    closing = ClosingOrders()
    assert closing_side(Decimal(1)) is Side.SELL
    assert closing_side(Decimal(-1)) is Side.BUY
    assert closing.closable(Decimal(1), Side.BUY, "a", "X") == 0  # the wrong side never closes
    closing.add("c1", "a", "X", Decimal("0.6"))
    assert closing.closable(Decimal(1), Side.SELL, "a", "X") == Decimal("0.4")
    assert closing.closable(Decimal(1), Side.SELL, "b", "X") == Decimal(1)
    closing.update("c1", filled_quantity=Decimal("0.2"), final=False)
    # Position 0.8 after that fill, 0.4 still to come from c1.
    assert closing.closable(Decimal("0.8"), Side.SELL, "a", "X") == Decimal("0.4")
    restored = ClosingOrders()
    restored.restore(closing.snapshot())
    assert restored.in_flight("a", "X") == Decimal("0.4")
    closing.update("c1", filled_quantity=Decimal("0.2"), final=True)
    assert closing.in_flight("a", "X") == 0
    assert len(closing) == 0
