"""``settle_positions``: the strategy positions start-up reconciliation publishes, from the
database's, the missed fills and the exchange's quantities under the trust_exchange policy."""

from __future__ import annotations

from decimal import Decimal

from app.domain import (
    Fill,
    MarketType,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionSnapshot,
    Side,
    StrategyPosition,
)
from app.domain.positions import PositionState
from app.position_recovery import settle_positions
from executor.reconciliation import ReconcileReport
from executor.reconciliation_diff import PositionMismatch

D = Decimal


def _report(
    market: MarketType,
    *,
    events: tuple[OrderUpdated, ...] = (),
    mismatches: tuple[PositionMismatch, ...] = (),
    positions: tuple[PositionSnapshot, ...] = (),
) -> ReconcileReport:
    return ReconcileReport(
        market=market,
        ts_ms=5_000,
        events=events,
        orders=(),
        adopted=(),
        foreign=(),
        unresolved=(),
        unmatched_trades=(),
        position_mismatches=mismatches,
        balances=(),
        positions=positions,
        last_trade_ids={},
        problems=(),
    )


def _filled(strategy: str, side: Side, quantity: str, price: str, trade_id: int) -> OrderUpdated:
    fill = Fill(
        trade_id=trade_id,
        client_order_id=f"tb-{trade_id}",
        symbol="BTCUSDT",
        side=side,
        price=D(price),
        quantity=D(quantity),
        fee=D(0),
        fee_asset="USDT",
        is_maker=False,
        ts_ms=4_000,
    )
    return OrderUpdated(
        client_order_id=f"tb-{trade_id}",
        symbol="BTCUSDT",
        side=side,
        order_type=OrderType.MARKET,
        status=OrderStatus.FILLED,
        quantity=D(quantity),
        filled_quantity=D(quantity),
        ts_ms=4_000,
        fill=fill,
        strategy=strategy,
    )


HELD = {
    ("alpha", "BTCUSDT"): PositionState(D("0.3"), D("60000"), D("12")),
    ("beta", "BTCUSDT"): PositionState(D("0.2"), D("61000"), D("0")),
}


def test_missed_fills_are_added_to_what_the_database_held() -> None:
    report = _report(
        MarketType.USDM,
        events=(
            _filled("alpha", Side.BUY, "0.1", "64000", 7),
            _filled("gamma", Side.SELL, "0.5", "63000", 8),
        ),
    )
    settled = settle_positions(HELD, report, trust_exchange=True)

    assert settled.positions == (
        StrategyPosition("alpha", "BTCUSDT", D("0.4"), D("61000")),
        StrategyPosition("beta", "BTCUSDT", D("0.2"), D("61000")),
        StrategyPosition("gamma", "BTCUSDT", D("-0.5"), D("63000")),
    )
    assert settled.folded_trades == (("BTCUSDT", 7), ("BTCUSDT", 8))
    assert settled.corrections == ()


def test_a_position_closed_by_hand_is_taken_off_the_holders_in_name_order() -> None:
    mismatch = PositionMismatch("BTCUSDT", expected=D("0.5"), exchange=D("0.1"))
    report = _report(MarketType.USDM, mismatches=(mismatch,))

    settled = settle_positions(HELD, report, trust_exchange=True)

    # alpha gives up all 0.3, beta 0.1 of its 0.2.
    assert settled.positions == (StrategyPosition("beta", "BTCUSDT", D("0.1"), D("61000")),)
    assert settled.corrections == (
        "BTCUSDT: alpha 0.3 -> 0 (exchange)",
        "BTCUSDT: beta 0.2 -> 0.1 (exchange)",
    )


def test_what_no_instance_holds_goes_to_the_risk_gate_at_the_exchange_price() -> None:
    flipped = PositionMismatch("BTCUSDT", expected=D("0.5"), exchange=D("-0.25"))
    snapshot = PositionSnapshot("BTCUSDT", D("-0.25"), D("59000"), D("0"))
    report = _report(MarketType.USDM, mismatches=(flipped,), positions=(snapshot,))

    settled = settle_positions(HELD, report, trust_exchange=True)

    assert settled.positions == (StrategyPosition("risk", "BTCUSDT", D("-0.25"), D("59000")),)
    assert sum(p.quantity for p in settled.positions) == D("-0.25")


def test_spot_never_goes_below_zero_or_above_the_position() -> None:
    short_of = PositionMismatch("BTCUSDT", expected=D("0.5"), exchange=D("0.45"), note="less")
    settled = settle_positions(
        HELD, _report(MarketType.SPOT, mismatches=(short_of,)), trust_exchange=True
    )
    assert sum(p.quantity for p in settled.positions) == D("0.45")
    assert all(p.strategy != "risk" for p in settled.positions)


def test_the_halt_policy_corrects_nothing() -> None:
    mismatch = PositionMismatch("BTCUSDT", expected=D("0.5"), exchange=D("0"))
    settled = settle_positions(
        HELD, _report(MarketType.USDM, mismatches=(mismatch,)), trust_exchange=False
    )
    assert sum(p.quantity for p in settled.positions) == D("0.5")
    assert settled.corrections == ()
