"""`load_recovery`: what start-up reconciliation reads back, written by the real recorder into a
real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Engine

from app.domain import (
    AccountUpdated,
    Balance,
    OrderStatus,
    Side,
    TradingState,
    TradingStateChanged,
)
from config.database import DatabaseSettings
from database.queries import load_recovery
from tests.database.test_recorder import (
    _recorder,
    _settings,
    engine,  # noqa: F401 - the fixture
    fill,
    intent,
    running,
    update,
)


async def test_recovery_reads_what_may_still_change_and_the_cursors(
    engine: Engine,  # noqa: F811 - the fixture
    db_settings: DatabaseSettings,
) -> None:
    recorder = _recorder(engine, _settings(db_settings))
    async with running(recorder):
        # Finished and fully recorded: not read back (but counted).
        await recorder.on_order_event(
            update(
                "done",
                OrderStatus.FILLED,
                "1",
                2,
                fill=fill(11, Side.BUY, "100", "1", "0", "USDT", "done"),
            )
        )
        # Open, partly filled: read back with its recorded fill.
        await recorder.on_order_event(
            update(
                "open",
                OrderStatus.PARTIALLY_FILLED,
                "0.4",
                3,
                fill=fill(12, Side.BUY, "100", "0.4", "0", "USDT", "open"),
            )
        )
        # Finished in two fills that add up exactly (0.1 + 0.2, not exact in floats): not read.
        for trade_id, amount in ((13, "0.1"), (14, "0.2")):
            part = fill(trade_id, Side.BUY, "100", amount, "0", "USDT", "split")
            await recorder.on_order_event(
                update("split", OrderStatus.FILLED, "0.3", 5, quantity="0.3", fill=part)
            )
        # Short by one smallest step on a large quantity: read back.
        big = fill(15, Side.BUY, "100", "1000", "0", "USDT", "step")
        await recorder.on_order_event(
            update(
                "step", OrderStatus.FILLED, "1000.00000001", 6, quantity="1000.00000001", fill=big
            )
        )
        # Finished with fewer recorded fills than filled (a futures answer): read back.
        await recorder.on_order_event(update("short", OrderStatus.FILLED, "1", 4))
        # Written ahead, never answered: read back, and its time bounds the in-flight wait.
        await recorder.record_intent(intent("ahead"))
        await recorder.on_account(
            AccountUpdated(
                ts_ms=5, reason="ORDER", balances=(Balance("USDT", Decimal("7.5"), Decimal(0)),)
            )
        )
        await recorder.on_trading_state(
            TradingStateChanged(TradingState.HALTED, TradingState.ACTIVE, "operator", 6)
        )
        await recorder.flush()
    recovery = load_recovery(engine)
    assert [o.client_order_id for o in recovery.orders] == ["ahead", "open", "short", "step"]
    by_id = {o.client_order_id: o for o in recovery.orders}
    assert by_id["ahead"].status is OrderStatus.PENDING_NEW
    assert by_id["open"].filled_quantity == Decimal("0.4")
    assert by_id["short"].strategy == "s1"
    assert {cid: [f.trade_id for f in fills] for cid, fills in recovery.fills.items()} == {
        "open": [12],
        "step": [15],
    }
    assert recovery.last_trade_ids == {"BTCUSDT": 15}
    assert recovery.positions == {("s1", "BTCUSDT"): Decimal("1001.7")}
    assert [(b.asset, b.free) for b in recovery.balances] == [("USDT", Decimal("7.5"))]
    assert recovery.trading_state is not None
    assert recovery.trading_state.state is TradingState.HALTED
    assert recovery.newest_pending_intent_ms == 7
    assert recovery.finished_orders == 4


def test_an_empty_database_recovers_nothing(
    engine: Engine,  # noqa: F811 - the fixture
) -> None:
    recovery = load_recovery(engine)
    assert (recovery.orders, recovery.fills, recovery.last_trade_ids) == ((), {}, {})
    assert (recovery.positions, recovery.trading_state, recovery.newest_pending_intent_ms) == (
        {}, None, None,
    )  # fmt: skip
