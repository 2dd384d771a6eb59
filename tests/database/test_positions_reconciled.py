"""The recorder takes start-up reconciliation's positions whole (``PositionsReconciled``), and
a missed fill it already counted moves nothing when its order update is recorded after it
(the two travel on different channels, so either may come first)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine

from app.domain import OrderStatus, PositionsReconciled, Side, StrategyPosition
from config.database import DatabaseSettings
from tests.database.test_mapping import create_schema
from tests.database.test_recorder import _recorder, _settings, fill, rows, running, update

D = Decimal


@pytest.fixture
def engine(db_settings: DatabaseSettings) -> Iterator[Engine]:
    engine = create_schema(db_settings)
    yield engine
    engine.dispose()


def _positions(engine: Engine) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]]:
    return {
        (r["strategy"], r["symbol"]): (
            D(r["quantity"]),
            D(r["average_price"]),
            D(r["realized_pnl"]),
        )
        for r in rows(engine, "positions")
    }


async def test_positions_are_replaced_and_unlisted_ones_flattened(
    engine: Engine, db_settings: DatabaseSettings
) -> None:
    recorder = _recorder(engine, _settings(db_settings))
    async with running(recorder):
        # s1 bought 1 at 100, then sold 0.5 at 110: realized 5, 0.5 left.
        buy = fill(1, Side.BUY, "100", "1", "0", "USDT", "a")
        sell = fill(2, Side.SELL, "110", "0.5", "0", "USDT", "b")
        await recorder.on_order_event(update("a", OrderStatus.FILLED, "1", fill=buy))
        await recorder.on_order_event(update("b", OrderStatus.FILLED, "0.5", fill=sell))
        await recorder.on_order_event(
            update(
                "c",
                OrderStatus.FILLED,
                "2",
                strategy="s2",
                fill=fill(3, Side.BUY, "90", "2", "0", "USDT", "c"),
            )
        )
        await recorder.flush()
        assert _positions(engine)[("s1", "BTCUSDT")] == (D("0.5"), D("100"), D("5"))

        settled = PositionsReconciled(
            ts_ms=9,
            positions=(
                StrategyPosition("s1", "BTCUSDT", D("0.2"), D("100")),
                StrategyPosition("risk", "BTCUSDT", D("-0.1"), D("95")),
            ),
        )
        await recorder.on_account(settled)
        await recorder.flush()

    assert _positions(engine) == {
        ("s1", "BTCUSDT"): (D("0.2"), D("100"), D("5")),  # realized PnL kept
        ("s2", "BTCUSDT"): (D("0"), D("0"), D("0")),  # not listed: flat
        ("risk", "BTCUSDT"): (D("-0.1"), D("95"), D("0")),
    }


@pytest.mark.parametrize("fill_first", [True, False])
async def test_a_folded_fill_counts_once_whichever_arrives_first(
    engine: Engine, db_settings: DatabaseSettings, fill_first: bool
) -> None:
    missed = fill(41, Side.BUY, "100", "0.3", "0", "USDT", "m")
    settled = PositionsReconciled(
        ts_ms=9,
        positions=(StrategyPosition("s1", "BTCUSDT", D("0.3"), D("100")),),
        folded_trades=(("BTCUSDT", 41),),
    )
    recorder = _recorder(engine, _settings(db_settings))
    async with running(recorder):
        events = [
            (recorder.on_order_event, update("m", OrderStatus.FILLED, "0.3", fill=missed)),
            (recorder.on_account, settled),
        ]
        for handler, event in events if fill_first else reversed(events):
            await handler(event)  # type: ignore[operator]
            await recorder.flush()  # separate batches: the hardest case

    assert _positions(engine) == {("s1", "BTCUSDT"): (D("0.3"), D("100"), D("0"))}
    assert [r["trade_id"] for r in rows(engine, "fills")] == [41]
