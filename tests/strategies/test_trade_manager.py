"""Trade management for one instance: entries sized and screened, fills booked as positions,
exit rules closing them — on hand-built bars and fills, with exact prices and quantities."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import pytest

from app.domain import OrderDenied, OrderStatus, Side, Signal, SignalAction
from strategies.context import StrategyContext
from strategies.exits import CompositeExit, ExitRule, FixedExit, TrailingStop
from strategies.filters import RegimeFilter
from strategies.models import ModelAction, ModelState, StrategyDecision
from strategies.sizing import FixedFraction
from strategies.trade.entry import ModelEntryRule, SizedEntry
from strategies.trade.manager import MarketSettings, TradeManager
from strategies.trade.state import EntryFilter
from tests.strategies.trade_support import STEP, T0, context, entry_at, filled, flat, ohlc

SYMBOL = "BTCUSDT"


def manager(
    *,
    exits: ExitRule | None = None,
    filters: Sequence[EntryFilter] = (),
    fraction: float = 0.5,
    model: object | None = None,
    max_wait_bars: int = 3,
    symbols: Sequence[str] = (SYMBOL,),
) -> TradeManager:
    base = SizedEntry(filters, FixedFraction(fraction))
    return TradeManager(
        instance="t",
        symbols=symbols,
        capital=10_000.0,
        entry=ModelEntryRule(base, model),  # type: ignore[arg-type]  # test doubles
        exits=exits if exits is not None else FixedExit(stop_loss_pct=2, take_profit_pct=4),
        filters=filters,
        market=MarketSettings(interval_ms=STEP, atr_period=3, adx_period=3, returns_lookback=20),
        max_wait_bars=max_wait_bars,
    )


def open_long(
    trade: TradeManager, ctx: StrategyContext, *, bar: int = 20, price: str = "100"
) -> Signal:
    """History up to `bar`, an entry at its close, filled at `price` early in the next bar."""
    trade.on_history(flat(n) for n in range(bar + 1))
    (sized,), denials = trade.on_signals([entry_at(ctx, bar)], ctx)
    assert denials == []
    assert sized.size_hint is not None
    trade.on_order(
        filled(
            side=Side.BUY,
            quantity=str(sized.size_hint),
            price=price,
            trade_id=1,
            ts_ms=T0 + (bar + 1) * STEP + 5,
            signal_id=sized.signal_id,
        )
    )
    return sized


def test_an_entry_is_sized_filled_stopped_out_and_booked_with_its_fees() -> None:
    trade, ctx = manager(), context()
    trade.on_history(flat(n) for n in range(21))
    (sized,), _ = trade.on_signals([entry_at(ctx, 20)], ctx)
    # fixed fraction 0.5 of 10 000 at the last close 100 -> 50 units
    assert sized.size_hint == Decimal(50)
    assert "sizer:fixed_fraction" in sized.tags
    trade.on_order(
        filled(side=Side.BUY, quantity="50", price="100", trade_id=1, ts_ms=T0 + 21 * STEP + 5,
               signal_id=sized.signal_id, fee="0.05")
    )  # fmt: skip
    (position,) = trade.positions.values()
    assert (position.side, position.entry_price, position.quantity) == ("long", 100.0, 50)
    # stop 2 % below 100 = 98, target 4 % above = 104
    assert trade.on_bar(ohlc(21, 100, 101, 99, 100), ctx) == []
    (exit_signal,) = trade.on_bar(ohlc(22, 100, 100.5, 97, 97.5), ctx)
    assert exit_signal.action is SignalAction.EXIT_LONG
    assert exit_signal.reason == "fixed: stop-loss 98"
    assert exit_signal.size_hint == Decimal(50)
    assert exit_signal.ts_ms == T0 + 23 * STEP - 1
    assert set(exit_signal.tags) == {
        "exit_rule:fixed", f"position:{sized.signal_id}", "exit_price:98"
    }  # fmt: skip
    assert trade.on_bar(ohlc(23, 97, 97, 90, 91), ctx) == []  # already exiting: once only
    trade.on_order(
        filled(side=Side.SELL, quantity="50", price="97.9", trade_id=2,
               ts_ms=T0 + 24 * STEP + 3, signal_id=exit_signal.signal_id,
               client_order_id="c-2", fee="0.05")
    )  # fmt: skip
    assert trade.positions == {}
    (closed,) = trade.trades
    # (97.9 - 100) x 50 - 0.05 - 0.05
    assert closed.pnl == pytest.approx(-105.1)
    assert closed.exit_price == pytest.approx(97.9)
    assert trade.equity == pytest.approx(10_000 - 105.1)
    status = trade.status()
    assert status["closed_trades"] == 1
    assert status["exits"] == {"fixed": 1}
    assert status["win_rate"] == 0.0


def test_a_short_takes_profit_and_the_exit_is_an_exit_short() -> None:
    trade, ctx = manager(), context()
    trade.on_history(flat(n) for n in range(21))
    (sized,), _ = trade.on_signals([entry_at(ctx, 20, short=True)], ctx)
    trade.on_order(
        filled(side=Side.SELL, quantity=str(sized.size_hint), price="100", trade_id=1,
               ts_ms=T0 + 21 * STEP + 5, signal_id=sized.signal_id)
    )  # fmt: skip
    # a short's target is 4 % below: 96; this bar reaches 95.5 without touching the stop 102
    (exit_signal,) = trade.on_bar(ohlc(21, 99, 99.5, 95.5, 96.5), ctx)
    assert exit_signal.action is SignalAction.EXIT_SHORT
    assert exit_signal.reason == "fixed: take-profit 96"


def test_a_refused_entry_becomes_a_denial_with_the_filters_reason_and_is_counted() -> None:
    trade, ctx = manager(filters=[RegimeFilter("trend", 25.0)]), context()
    signal = entry_at(ctx, 0)  # no history: ADX unknown
    out, (denial,) = trade.on_signals([signal], ctx)
    assert out == []
    assert denial.signal_id == signal.signal_id
    assert denial.strategy == "t"
    assert denial.reason.startswith("regime: regime: regime unknown")
    assert trade.status()["refusals"] == {"regime": 1}
    assert trade.status()["entries_refused"] == 1


def test_a_sizer_that_cannot_size_refuses_the_entry() -> None:
    trade, ctx = manager(), context()
    _, (denial,) = trade.on_signals([entry_at(ctx, 0)], ctx)  # no close known yet
    assert denial.reason.startswith("fixed_fraction: fixed_fraction: no price")


class Scripted:
    """A model answering from a script, recording what it was shown."""

    name = "scripted"

    def __init__(self, *decisions: StrategyDecision) -> None:
        self.decisions = list(decisions)
        self.shown: list[tuple[dict[str, float], dict[str, float], ModelState]] = []

    def decide(
        self,
        signals: Sequence[Signal],
        signal_metrics: Sequence[dict[str, float]],
        strategy_metrics: dict[str, float],
        state: ModelState,
    ) -> StrategyDecision:
        self.shown.append((dict(signal_metrics[0]), dict(strategy_metrics), state))
        return self.decisions.pop(0) if len(self.decisions) > 1 else self.decisions[0]


WAIT = StrategyDecision(ModelAction.WAIT, 0.0, 0.4, "not yet")


def test_the_model_can_wait_then_enter_on_a_later_bar_with_the_same_signal_id() -> None:
    model = Scripted(WAIT, WAIT, StrategyDecision(ModelAction.ENTER, 1.0, 0.8, "go"))
    trade, ctx = manager(model=model), context()
    trade.on_history(flat(n) for n in range(21))
    signal = entry_at(ctx, 20)
    assert trade.on_signals([signal], ctx) == ([], [])
    assert trade.on_bar(flat(21), ctx) == []
    (entered,) = trade.on_bar(flat(22), ctx)
    assert entered.signal_id == signal.signal_id
    assert entered.ts_ms == T0 + 23 * STEP - 1
    assert entered.confidence == 0.8
    assert "model:scripted:enter" in entered.tags
    assert trade.take_denials() == []
    # the model saw metrics and no price
    metrics, _, _ = model.shown[0]
    assert not {"close", "price", "open", "high", "low"} & set(metrics)


def test_a_model_that_keeps_waiting_is_given_up_after_max_wait_bars() -> None:
    trade, ctx = manager(model=Scripted(WAIT), max_wait_bars=3), context()
    trade.on_history(flat(n) for n in range(21))
    signal = entry_at(ctx, 20)
    trade.on_signals([signal], ctx)
    for n in (21, 22):
        assert trade.on_bar(flat(n), ctx) == []
        assert trade.take_denials() == []
    assert trade.on_bar(flat(23), ctx) == []
    (denial,) = trade.take_denials()
    assert denial.signal_id == signal.signal_id
    assert denial.reason == "model: still waiting after 3 bars: not yet"


def test_reduce_size_scales_the_sizers_quantity() -> None:
    model = Scripted(StrategyDecision(ModelAction.REDUCE_SIZE, 0.3, 0.55, "unsure"))
    trade, ctx = manager(model=model), context()
    trade.on_history(flat(n) for n in range(21))
    (sized,), _ = trade.on_signals([entry_at(ctx, 20)], ctx)
    assert sized.size_hint == Decimal(15)  # 50 x 0.3


def test_skip_refuses_with_the_models_reason() -> None:
    trade, ctx = (
        manager(model=Scripted(StrategyDecision(ModelAction.SKIP, 0.0, 0.2, "no"))),
        context(),
    )
    trade.on_history(flat(n) for n in range(21))
    _, (denial,) = trade.on_signals([entry_at(ctx, 20)], ctx)
    assert denial.reason == "model: no"


def test_partial_entry_fills_average_the_entry_and_the_levels_follow_it() -> None:
    trade, ctx = manager(), context()
    trade.on_history(flat(n) for n in range(21))
    (sized,), _ = trade.on_signals([entry_at(ctx, 20)], ctx)
    ts = T0 + 21 * STEP
    partial = OrderStatus.PARTIALLY_FILLED
    trade.on_order(filled(side=Side.BUY, quantity="30", price="100", trade_id=1, ts_ms=ts + 1,
                          signal_id=sized.signal_id, status=partial))  # fmt: skip
    trade.on_order(filled(side=Side.BUY, quantity="20", price="101", trade_id=2, ts_ms=ts + 2,
                          signal_id=sized.signal_id))  # fmt: skip
    (position,) = trade.positions.values()
    # (30 x 100 + 20 x 101) / 50 = 100.4; stop 2 % below = 98.392
    assert position.entry_price == pytest.approx(100.4)
    assert position.quantity == 50
    assert trade.pending_entries == {}
    (exit_signal,) = trade.on_bar(ohlc(21, 100.4, 100.5, 98.3, 98.5), ctx)
    assert "exit_price:98.392" in exit_signal.tags


def test_a_repeated_fill_event_is_booked_once() -> None:
    trade, ctx = manager(), context()
    sized = open_long(trade, ctx)
    again = filled(side=Side.BUY, quantity="50", price="100", trade_id=1,
                   ts_ms=T0 + 21 * STEP + 5, signal_id=sized.signal_id)  # fmt: skip
    trade.on_order(again)
    (position,) = trade.positions.values()
    assert position.quantity == 50


def test_the_strategys_exit_closes_each_of_its_positions_once() -> None:
    trade, ctx = manager(fraction=0.25), context()
    first = open_long(trade, ctx)
    (second,), _ = trade.on_signals([entry_at(ctx, 21)], ctx)
    trade.on_order(filled(side=Side.BUY, quantity=str(second.size_hint), price="100",
                          trade_id=7, ts_ms=T0 + 22 * STEP + 1, signal_id=second.signal_id,
                          client_order_id="c-7"))  # fmt: skip
    ctx.now_ms = T0 + 23 * STEP - 1
    strategy_exit = ctx.make_signal(SignalAction.EXIT_LONG, "done")
    out, _ = trade.on_signals([strategy_exit], ctx)
    assert [s.signal_id == strategy_exit.signal_id for s in out] == [True, False]
    assert [s.size_hint for s in out] == [Decimal(25), Decimal(25)]
    assert {f"position:{first.signal_id}", "exit_rule:strategy"} <= set(out[0].tags)
    assert f"position:{second.signal_id}" in out[1].tags
    # both are already exiting: another exit from the strategy adds nothing
    assert trade.on_signals([ctx.make_signal(SignalAction.EXIT_LONG, "again")], ctx) == ([], [])


def test_a_strategy_exit_with_nothing_filled_passes_through() -> None:
    trade, ctx = manager(), context()
    trade.on_history(flat(n) for n in range(21))
    strategy_exit = entry_at(ctx, 20)
    strategy_exit = ctx.make_signal(SignalAction.EXIT_LONG, "done")
    assert trade.on_signals([strategy_exit], ctx) == ([strategy_exit], [])


def test_a_denied_exit_is_judged_again_on_the_next_bar() -> None:
    trade, ctx = manager(), context()
    open_long(trade, ctx)
    (exit_signal,) = trade.on_bar(ohlc(21, 100, 100, 97, 97.5), ctx)
    trade.on_order(OrderDenied("t", SYMBOL, "test", exit_signal.ts_ms, exit_signal.signal_id))
    (again,) = trade.on_bar(ohlc(22, 97, 97.5, 96, 96.5), ctx)
    assert again.reason == "fixed: stop-loss 98 (gapped through)"
    assert "exit_price:97" in again.tags


def test_a_cancelled_exit_order_reopens_the_position_for_the_rules() -> None:
    trade, ctx = manager(), context()
    open_long(trade, ctx)
    (exit_signal,) = trade.on_bar(ohlc(21, 100, 100, 97, 97.5), ctx)
    cancelled = filled(side=Side.SELL, quantity="50", price="97", trade_id=9, ts_ms=T0,
                       signal_id=exit_signal.signal_id, client_order_id="c-x")  # fmt: skip
    trade.on_order(replace(cancelled, fill=None, status=OrderStatus.CANCELED))
    assert trade.on_bar(ohlc(22, 97, 97.5, 96, 96.5), ctx) != []


def test_an_unexpected_opening_fill_is_adopted_and_managed() -> None:
    trade, ctx = manager(), context()
    trade.on_history(flat(n) for n in range(21))
    trade.on_order(filled(side=Side.BUY, quantity="2", price="100", trade_id=3,
                          ts_ms=T0 + 21 * STEP + 1, client_order_id="by-hand"))  # fmt: skip
    assert list(trade.positions) == ["by-hand"]
    assert trade.status()["adopted_positions"] == 1
    (exit_signal,) = trade.on_bar(ohlc(21, 100, 100, 97, 98), ctx)
    assert exit_signal.size_hint == Decimal(2)


def test_fills_without_a_signal_id_are_routed_by_side() -> None:
    trade, ctx = manager(), context()
    trade.on_history(flat(n) for n in range(21))
    (sized,), _ = trade.on_signals([entry_at(ctx, 20)], ctx)
    trade.on_order(filled(side=Side.BUY, quantity="50", price="100", trade_id=1,
                          ts_ms=T0 + 21 * STEP + 1, client_order_id="e-1"))  # fmt: skip
    assert list(trade.positions) == [sized.signal_id]
    trade.on_bar(ohlc(21, 100, 100, 97, 98), ctx)
    trade.on_order(filled(side=Side.SELL, quantity="50", price="98", trade_id=2,
                          ts_ms=T0 + 22 * STEP + 1, client_order_id="x-1"))  # fmt: skip
    assert trade.positions == {}
    assert trade.trades[-1].pnl == pytest.approx(-100.0)


def test_a_stop_crossed_while_replaying_history_exits_on_the_first_live_bar() -> None:
    trade, ctx = manager(), context()
    sized = open_long(trade, ctx)
    # the daemon was down: bars 21..23 come back as history; bar 22 crossed the stop 98
    trade.on_history([flat(21), ohlc(22, 100, 100, 97.5, 97.8), flat(23, 97.8)])
    (exit_signal,) = trade.on_bar(flat(24, 97.8), ctx)
    assert exit_signal.reason == "fixed: stop-loss 98 (while replaying history)"
    assert f"position:{sized.signal_id}" in exit_signal.tags
    assert exit_signal.ts_ms == T0 + 25 * STEP - 1


def test_the_trailing_peak_and_the_whole_book_survive_a_snapshot_restore() -> None:
    def build() -> TradeManager:
        return manager(
            exits=CompositeExit([TrailingStop(trail_pct=3.0), FixedExit(stop_loss_pct=10)])
        )

    path = [ohlc(21, 100, 104, 99, 103), ohlc(22, 103, 110, 102, 109),
            ohlc(23, 109, 109.5, 105, 106), ohlc(24, 106, 107, 106.5, 106.8)]  # fmt: skip

    def run(cut: int | None) -> list[tuple[str, str, str]]:
        trade, ctx = build(), context()
        open_long(trade, ctx)
        out: list[Signal] = []
        for index, bar in enumerate(path):
            if index == cut:
                saved = json.loads(json.dumps(trade.snapshot(), allow_nan=False))
                trade = build()
                trade.restore(saved)
            out.extend(trade.on_bar(bar, ctx))
        return [(s.reason, s.signal_id, ",".join(s.tags)) for s in out]

    uninterrupted = run(None)
    # peak 110 after bar 22; stop 3 % below = 106.7; bar 23 reaches 105
    assert uninterrupted[0][0] == "trailing: trailing stop 106.7 (peak 110)"
    assert len(uninterrupted) == 1
    for cut in range(len(path)):
        assert run(cut) == uninterrupted


def test_a_snapshot_of_another_instance_is_refused() -> None:
    trade = manager()
    saved = trade.snapshot()
    saved["instance"] = "other"
    with pytest.raises(ValueError, match="another instance"):
        manager().restore(saved)


def test_unrealised_pnl_moves_equity_and_its_high_water_mark() -> None:
    trade, ctx = manager(), context()
    open_long(trade, ctx)
    trade.on_bar(ohlc(21, 100, 103.5, 100, 103), ctx)  # +3 x 50
    assert trade.equity == pytest.approx(10_150)
    trade.on_bar(ohlc(22, 103, 103, 100.5, 101), ctx)
    state = trade.state(0)
    assert state.equity == pytest.approx(10_050)
    assert state.peak_equity == pytest.approx(10_150)


def test_an_entry_order_ending_unfilled_without_ids_frees_its_pending_entry() -> None:
    trade, ctx = manager(), context()
    trade.on_history(flat(n) for n in range(21))
    trade.on_signals([entry_at(ctx, 20)], ctx)
    assert len(trade.pending_entries) == 1
    expired = filled(side=Side.BUY, quantity="50", price="100", trade_id=1, ts_ms=T0,
                     client_order_id="e-9", status=OrderStatus.EXPIRED)  # fmt: skip
    trade.on_order(replace(expired, fill=None, filled_quantity=Decimal(0)))
    assert trade.pending_entries == {}
    assert trade.positions == {}
