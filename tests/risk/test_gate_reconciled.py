"""The risk gate takes start-up reconciliation's positions whole: its book is restored from a
state saved every few seconds, the database and the exchange are the truth after a crash."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from app.bus import ACCOUNT_UPDATE
from app.domain import Fill, OrderStatus, PositionsReconciled, Side, StrategyPosition
from tests.risk.gate_support import make_gate

D = Decimal


async def test_the_book_takes_the_reconciled_positions_and_a_folded_fill_once(
    tmp_path: Path,
) -> None:
    h = await make_gate(tmp_path)
    await h.open_position("BTCUSDT", size="0.01", strategy="alpha")
    await h.open_position("ETHUSDT", size="0.1", price="3000", strategy="beta")
    missed = await h.approve(symbol="BTCUSDT", strategy="alpha", size="0.02")

    settled = PositionsReconciled(
        ts_ms=h.clock.now_ms(),
        positions=(
            StrategyPosition("alpha", "BTCUSDT", D("0.03"), D("60100")),
            StrategyPosition("risk", "BTCUSDT", D("0.005"), D("59000")),
        ),
        folded_trades=(("BTCUSDT", 99),),
    )
    await h.bus.sender(ACCOUNT_UPDATE.channel()).send(settled)
    await h.settle()
    assert h.gate.book.positions() == {
        ("alpha", "BTCUSDT"): D("0.03"),
        ("risk", "BTCUSDT"): D("0.005"),
    }
    assert h.gate.book.average_price("alpha", "BTCUSDT") == D("60100")

    # The missed fill's own update, handled after the message that already counted it.
    fill = Fill(99, missed.client_order_id, "BTCUSDT", Side.BUY, D("60150"), D("0.02"),
                D(0), "USDT", False, h.clock.now_ms())  # fmt: skip
    await h.order_update(missed, OrderStatus.FILLED, D("0.02"), fill=fill)
    assert h.gate.book.positions()[("alpha", "BTCUSDT")] == D("0.03")

    # The state the gate saves carries it: a restart of the gate agrees.
    await h.gate.persist()
    again = await make_gate(tmp_path)
    assert again.gate.book.net_position("BTCUSDT") == D("0.035")
    assert again.gate.book.net_position("ETHUSDT") == 0
