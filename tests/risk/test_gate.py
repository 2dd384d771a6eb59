"""The risk gate component on a replay bus: signals in, orders or named denials out.

Every pre-trade check and guard is tripped through the component (a signal in, an
`OrderDenied` whose reason starts with the check's name out), plus the exchange filters, exits
in every trading state, flattening, operator commands and the persisted state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.bus import SIGNAL
from app.domain import (
    AlertSeverity,
    ControlAcknowledged,
    ControlAction,
    MarketType,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    SignalAction,
    SubmitOrder,
    TimeInForce,
    TradingState,
    TradingStateChanged,
)
from risk.checks import CHECK_NAMES
from risk.client_ids import client_order_id, flatten_client_order_id
from tests.risk.gate_support import START_MS, GateHarness, make_gate, sim_rules

ENTER_LONG, ENTER_SHORT = SignalAction.ENTER_LONG, SignalAction.ENTER_SHORT
EXIT_LONG, EXIT_SHORT = SignalAction.EXIT_LONG, SignalAction.EXIT_SHORT
SPOT, USDM = MarketType.SPOT, MarketType.USDM


# -- shaping -------------------------------------------------------------------------------------
async def test_market_entry_is_sized_rounded_and_identified_by_its_signal(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    order = await h.approve(ENTER_LONG, "BTCUSDT", signal_id="alpha-7")
    # 100 USDT default notional / 60,000 = 0.0016666.. rounded down to the 0.00001 step.
    assert order.quantity == Decimal("0.00166")
    assert order.order_type is OrderType.MARKET
    assert order.price is None
    assert order.purpose is OrderPurpose.ENTRY
    assert not order.reduce_only
    assert order.client_order_id == client_order_id("tb", "alpha-7")
    assert (order.strategy, order.signal_id, order.side) == ("alpha", "alpha-7", Side.BUY)
    assert h.gate.status()["approved"] == 1


async def test_size_hint_sets_the_quantity(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    order = await h.approve(ENTER_LONG, "ETHUSDT", size="0.123456")
    assert order.quantity == Decimal("0.1234")  # ETHUSDT step 0.0001


async def test_limit_entries_rest_on_the_passive_side(tmp_path: Path) -> None:
    shape = {"entry_type": "limit", "limit_offset_bps": "10", "limit_ttl_s": 30}
    h = await make_gate(tmp_path, USDM, orders=shape)
    await h.book("BTCUSDT", "60000.0", "60001.0")
    buy = await h.approve(ENTER_LONG, "BTCUSDT", size="0.01")
    assert buy.order_type is OrderType.LIMIT
    assert buy.time_in_force is TimeInForce.GTC
    assert buy.price == Decimal("59940.0")  # 60000 x (1 - 0.001), tick 0.1, rounded down
    assert buy.ttl_ms == 30_000
    sell = await h.approve(ENTER_SHORT, "BTCUSDT", size="0.01", strategy="beta")
    assert sell.price == Decimal("60061.1")  # 60001 x 1.001 = 60061.001, rounded up
    # Without a book ticker, the last price stands in for the bid.
    eth = await h.approve(ENTER_LONG, "ETHUSDT", size="0.1")
    assert eth.price == Decimal("2997.00")


async def test_spot_cannot_open_a_short(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    assert await h.deny_reason(ENTER_SHORT) == "market: spot cannot open a short"
    futures = await make_gate(tmp_path / "f", USDM)
    assert (await futures.approve(ENTER_SHORT, size="0.01")).side is Side.SELL


async def test_an_entry_without_a_price_is_denied(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, prices={})
    assert await h.deny_reason(ENTER_LONG, "BTCUSDT") == "price: no price seen for BTCUSDT yet"


async def test_an_entry_without_size_or_default_is_denied(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, orders={"default_entry_notional": None})
    assert (await h.deny_reason(ENTER_LONG)).startswith("size: ")
    assert (await h.approve(ENTER_LONG, size="0.001")).quantity == Decimal("0.001")


async def test_filters_deny_by_name_and_nothing_is_sent(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    assert (await h.deny_reason(size="0.000004")).startswith("filter LOT_SIZE: ")
    assert (await h.deny_reason(size="0.00005")).startswith("filter NOTIONAL: ")  # 3 USDT < 5
    futures = await make_gate(tmp_path / "f", USDM)
    # 0.001 BTC at 60,000 = 60 USDT, below the futures minimum notional of 100.
    assert (await futures.deny_reason(size="0.001")).startswith("filter MIN_NOTIONAL: ")
    assert h.orders == []
    assert futures.orders == []
    assert h.gate.status()["denials"] == {"filter LOT_SIZE": 1, "filter NOTIONAL": 1}


async def test_a_limit_price_outside_the_price_filter_is_denied(tmp_path: Path) -> None:
    rules = sim_rules(SPOT)
    btc = rules["BTCUSDT"]
    assert btc.price_filter is not None
    floor = dataclasses.replace(btc.price_filter, min_price=Decimal("59990"))
    rules["BTCUSDT"] = dataclasses.replace(btc, price_filter=floor)
    h = await make_gate(
        tmp_path, rules=rules, orders={"entry_type": "limit", "limit_offset_bps": "5"}
    )
    # 60,000 x (1 - 0.0005) = 59,970, below minPrice 59,990.
    assert (await h.deny_reason(size="0.01")).startswith("filter PRICE_FILTER: price 59970")


# -- pre-trade checks ----------------------------------------------------------------------------
Setup = Callable[[GateHarness], Awaitable[None]]


async def _nothing(h: GateHarness) -> None:
    return None


async def _one_entry(h: GateHarness) -> None:
    await h.approve(ENTER_LONG, "BTCUSDT", size="0.01")


async def _two_entries(h: GateHarness) -> None:
    await h.approve(ENTER_LONG, "BTCUSDT", size="0.01")
    await h.approve(ENTER_LONG, "ETHUSDT", size="0.01")


async def _losing_position(h: GateHarness) -> None:
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.bar("BTCUSDT", "54000")  # -60 unrealised


async def _funding_soon(h: GateHarness) -> None:
    await h.mark("BTCUSDT", "60000", START_MS + 120_000)  # funding in 2 minutes


def _status_break(tmp: Path) -> dict[str, Any]:
    rules = sim_rules(SPOT)
    rules["BTCUSDT"] = dataclasses.replace(rules["BTCUSDT"], status="BREAK")
    return {"rules": rules}


CHECK_CASES: list[tuple[str, dict[str, Any], Setup, dict[str, Any]]] = [
    # (check, gate options, setup, the denied signal)
    ("symbol_status", {"_rules": _status_break}, _nothing, {"size": "0.01"}),
    ("order_rate", {"order_limits": [(10_000, 4)]}, _two_entries, {"size": "0.01"}),
    ("cooldown", {"limits": {"cooldown_s": 60}}, _one_entry, {"size": "0.01"}),
    ("funding_window", {"market": USDM}, _funding_soon, {"size": "0.01"}),
    ("max_trades_per_day", {"limits": {"max_trades_per_day": 1}}, _one_entry, {"size": "0.01"}),
    (
        "max_quantity_per_day",
        {"limits": {"max_quantity_per_day": {"BTCUSDT": "0.015"}}},
        _one_entry,
        {"size": "0.01"},
    ),
    (
        "max_position_notional",
        {"limits": {"max_position_notional": 1000}},
        _one_entry,
        {"size": "0.01"},
    ),
    (
        "max_total_exposure",
        {"limits": {"max_total_exposure": 1000}},
        _one_entry,
        {"symbol": "ETHUSDT", "size": "0.2"},
    ),
    (
        "max_exposure_pct_equity",
        {"limits": {"max_exposure_pct_equity": 5}},
        _nothing,
        {"size": "0.01"},
    ),
    (
        "max_open_positions",
        {"limits": {"max_open_positions": 1}},
        _one_entry,
        {"symbol": "ETHUSDT", "size": "0.1"},
    ),
    (
        "max_positions_per_symbol",
        {"limits": {"max_positions_per_symbol": 1}},
        _one_entry,
        {"strategy": "beta", "size": "0.01"},
    ),
    ("daily_loss_limit", {"limits": {"daily_loss_limit": 50}}, _losing_position, {"size": "0.01"}),
    (
        "daily_loss_limit_pct",
        {"limits": {"daily_loss_limit_pct": "0.5"}},
        _losing_position,
        {"size": "0.01"},
    ),
]


def test_every_check_has_a_case() -> None:
    assert sorted(case[0] for case in CHECK_CASES) == sorted(CHECK_NAMES)


@pytest.mark.parametrize(
    ("check", "options", "setup", "denied"), CHECK_CASES, ids=[c[0] for c in CHECK_CASES]
)
async def test_each_pre_trade_check_denies_by_name(
    tmp_path: Path, check: str, options: dict[str, Any], setup: Setup, denied: dict[str, Any]
) -> None:
    options = dict(options)
    if "_rules" in options:
        options.update(options.pop("_rules")(tmp_path))
    h = await make_gate(tmp_path, **options)
    await setup(h)
    before = len(h.orders)
    reason = await h.deny_reason(ENTER_LONG, **denied)
    assert reason.startswith(f"{check}: "), reason
    assert len(h.orders) == before
    assert h.gate.status()["denials"] == {check: 1}
    denial = h.denials[-1]
    assert denial.client_order_id == client_order_id("tb", denial.signal_id or "")


async def test_cooldown_passes_once_elapsed(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, limits={"cooldown_s": 60})
    await _one_entry(h)
    h.clock.advance(60)
    await h.approve(ENTER_LONG, size="0.01")


async def test_a_cancelled_entry_frees_its_slot(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, limits={"max_open_positions": 1})
    order = await h.approve(ENTER_LONG, "BTCUSDT", size="0.01")
    assert (await h.deny_reason(ENTER_LONG, "ETHUSDT", size="0.1")).startswith(
        "max_open_positions: "
    )
    await h.order_update(order, OrderStatus.CANCELED)
    await h.approve(ENTER_LONG, "ETHUSDT", size="0.1")


async def test_halted_gate_denies_entries_with_the_state(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.control(ControlAction.HALT, "maintenance")
    assert await h.deny_reason(size="0.01") == "trading_state: halted (operator: maintenance)"


# -- guards --------------------------------------------------------------------------------------
async def _round_trip(h: GateHarness, entry: str, exit_: str, strategy: str = "alpha") -> None:
    await h.open_position("BTCUSDT", "0.01", entry, strategy=strategy)
    out = await h.approve(EXIT_LONG, "BTCUSDT", strategy=strategy)
    await h.fill(out, exit_)


async def test_consecutive_losses_halt_for_the_cooldown(tmp_path: Path) -> None:
    h = await make_gate(
        tmp_path, guards={"consecutive_losses": 2, "consecutive_loss_cooldown_min": 30}
    )
    await _round_trip(h, "60000", "59000")
    await _round_trip(h, "60000", "59000", strategy="beta")
    assert h.gate.state.state is TradingState.HALTED
    reason = await h.deny_reason(size="0.01")
    assert reason.startswith("trading_state: halted (consecutive_losses: 2 losing trades")
    assert h.states[-1].state is TradingState.HALTED
    assert h.alerts[-1].severity is AlertSeverity.CRITICAL
    assert json.loads((tmp_path / "risk_state.json").read_text())["trading_state"]["state"] == (
        "halted"
    )
    h.clock.advance(29 * 60)
    await h.gate.tick()
    assert h.gate.state.state is TradingState.HALTED
    h.clock.advance(60)
    await h.gate.tick()
    await h.settle()
    assert h.gate.status()["state"] == "active"
    assert h.states[-1].state.value == "active"
    assert h.alerts[-1].severity.value == "info"
    await h.approve(size="0.01")


async def test_max_drawdown_moves_to_reducing_and_exits_still_pass(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, guards={"max_drawdown_pct": 5, "drawdown_action": "reducing"})
    await h.open_position("BTCUSDT", "0.1", "60000")
    await h.bar("BTCUSDT", "54000")  # -600 of 10,000: 6 % below the peak
    assert h.gate.state.state is TradingState.REDUCING
    assert h.alerts[-1].severity is AlertSeverity.WARNING
    reason = await h.deny_reason(ENTER_LONG, "ETHUSDT", size="0.1")
    assert reason.startswith("trading_state: reducing (max_drawdown: ")
    out = await h.approve(EXIT_LONG, "BTCUSDT")
    assert (out.quantity, out.purpose) == (Decimal("0.1"), OrderPurpose.EXIT)


async def test_a_timed_halt_over_reducing_waits_for_the_operator(tmp_path: Path) -> None:
    guards = {
        "max_drawdown_pct": 3,
        "drawdown_action": "reducing",
        "consecutive_losses": 1,
        "consecutive_loss_cooldown_min": 1,
    }
    h = await make_gate(tmp_path, guards=guards)
    await h.open_position("BTCUSDT", "0.1", "60000")
    await h.bar("BTCUSDT", "56000")  # -400: 4 % down
    assert h.gate.state.state is TradingState.REDUCING
    await h.fill(await h.approve(EXIT_LONG), "56000")  # a losing round trip
    assert h.gate.state.state is TradingState.HALTED
    assert h.gate.state.resume_at_ms is None
    h.clock.advance(120)
    await h.gate.tick()
    assert h.gate.status()["state"] == "halted"


async def test_min_equity_halts(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, guards={"min_equity": 9500})
    await h.open_position("BTCUSDT", "0.1", "60000")
    await h.bar("BTCUSDT", "54000")
    assert (await h.deny_reason(size="0.01")).startswith("trading_state: halted (min_equity: ")


async def test_a_guard_never_lifts_an_operator_halt(tmp_path: Path) -> None:
    h = await make_gate(
        tmp_path, guards={"consecutive_losses": 1, "consecutive_loss_cooldown_min": 1}
    )
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.control(ControlAction.HALT, "manual")
    out = await h.approve(EXIT_LONG, "BTCUSDT")
    await h.fill(out, "59000")  # a losing trip: the guard would halt for one minute
    h.clock.advance(120)
    await h.gate.tick()
    assert (h.gate.state.state, h.gate.state.reason) == (TradingState.HALTED, "operator: manual")


# -- exits -------------------------------------------------------------------------------------
async def test_exits_are_clipped_to_the_instance_position(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.open_position("BTCUSDT", "0.02", "60000", strategy="beta")
    out = await h.approve(EXIT_LONG, "BTCUSDT", size="5")
    assert (out.quantity, out.side, out.purpose) == (Decimal("0.01"), Side.SELL, OrderPurpose.EXIT)
    assert out.order_type is OrderType.MARKET
    assert not out.reduce_only
    # While that exit is in flight, nothing more of alpha's position is left to close.
    assert (await h.deny_reason(EXIT_LONG, "BTCUSDT")).startswith("no_position: ")
    await h.fill(out, "60000", "0.004")
    await h.order_update(out, OrderStatus.CANCELED, Decimal("0.004"))
    again = await h.approve(EXIT_LONG, "BTCUSDT")
    assert again.quantity == Decimal("0.006")


async def test_exits_without_a_matching_position_are_denied(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    assert (await h.deny_reason(EXIT_LONG, "BTCUSDT")).startswith(
        "no_position: alpha holds no long"
    )
    await h.open_position("BTCUSDT", "0.01", "60000", strategy="beta")
    assert (await h.deny_reason(EXIT_LONG, "BTCUSDT")).startswith("no_position: ")
    assert (await h.deny_reason(EXIT_SHORT, "BTCUSDT", strategy="beta")).startswith(
        "no_position: beta holds no short"
    )


@pytest.mark.parametrize("action", [ControlAction.HALT, "reducing"])
async def test_exits_pass_in_halted_and_reducing(tmp_path: Path, action: object) -> None:
    h = await make_gate(tmp_path, USDM)
    await h.open_position("BTCUSDT", "0.01", "60000", short=True)
    if action is ControlAction.HALT:
        await h.control(ControlAction.HALT)
    else:
        await h.gate._apply(h.gate.state.set(TradingState.REDUCING, "test", h.clock.now_ms()))
    assert h.gate.state.state is not TradingState.ACTIVE
    out = await h.approve(EXIT_SHORT, "BTCUSDT", size="0.004")
    assert (out.side, out.quantity, out.reduce_only) == (Side.BUY, Decimal("0.004"), True)
    # reduceOnly exempts futures exits from MIN_NOTIONAL (240 USDT here is fine anyway; 60 is not).
    small = await h.approve(EXIT_SHORT, "BTCUSDT", size="0.001")
    assert small.reduce_only
    assert small.quantity == Decimal("0.001")


async def test_exit_dust_is_denied_with_the_filter_name(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.open_position("BTCUSDT", "0.01", "60000")
    assert (await h.deny_reason(EXIT_LONG, size="0.000004")).startswith("filter LOT_SIZE: ")
    assert (await h.deny_reason(EXIT_LONG, size="0.00005")).startswith("filter NOTIONAL: ")


async def test_exits_count_in_the_order_rate_but_are_never_denied_for_it(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, order_limits=[(10_000, 2)])  # 1 order per 10 s allowed
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.approve(EXIT_LONG, size="0.002")
    await h.approve(EXIT_LONG, size="0.002")
    assert (await h.deny_reason(ENTER_LONG, "ETHUSDT", size="0.1")).startswith("order_rate: ")
    assert h.gate.order_rate.status()["limits"][0]["sent"] == 3  # type: ignore[index]


# -- operator commands ---------------------------------------------------------------------------
async def test_halt_is_acknowledged_after_it_is_in_force(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.control(ControlAction.HALT, "desk", command_id="c-9")
    change = next(
        i
        for i, m in enumerate(h.timeline)
        if isinstance(m, TradingStateChanged) and m.state is TradingState.HALTED
    )
    ack = next(i for i, m in enumerate(h.timeline) if isinstance(m, ControlAcknowledged))
    assert change < ack
    assert (h.acks[0].command_id, h.acks[0].action, h.acks[0].component) == (
        "c-9",
        ControlAction.HALT,
        "risk",
    )
    assert h.acks[0].detail == "halted: operator: desk"
    await h.control(ControlAction.RESUME, command_id="c-10")
    assert h.gate.state.state is TradingState.ACTIVE
    assert h.acks[-1].command_id == "c-10"
    await h.approve(size="0.01")
    await h.control(ControlAction.SHUTDOWN, command_id="c-11")
    assert len(h.acks) == 2


async def test_resume_rebases_the_drawdown_breaker(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, guards={"max_drawdown_pct": 5})
    await h.open_position("BTCUSDT", "0.1", "60000")
    await h.bar("BTCUSDT", "54000")
    assert h.gate.state.state is TradingState.HALTED
    await h.control(ControlAction.RESUME)
    await h.bar("BTCUSDT", "53900")  # 10 below the new peak: no new trip
    assert h.gate.status()["state"] == "active"


async def test_flatten_closes_every_instance_position_then_acknowledges(tmp_path: Path) -> None:
    h = await make_gate(tmp_path, USDM)
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.open_position("BTCUSDT", "0.02", "60000", strategy="beta", short=True)
    await h.open_position("ETHUSDT", "0.5", "3000", strategy="beta")
    # The exchange reports BTC -0.005 (instances net -0.01: 0.005 is not ours) and ETH as ours.
    await h.account([("BTCUSDT", "-0.005"), ("ETHUSDT", "0.5")])
    sent = len(h.orders)
    await h.control(ControlAction.FLATTEN, "panic", command_id="f-1")
    flat = h.orders[sent:]
    got = {(o.strategy, o.symbol, o.side, o.quantity) for o in flat}
    assert got == {
        ("alpha", "BTCUSDT", Side.SELL, Decimal("0.01")),
        ("beta", "BTCUSDT", Side.BUY, Decimal("0.02")),
        ("beta", "ETHUSDT", Side.SELL, Decimal("0.5")),
        ("risk", "BTCUSDT", Side.SELL, Decimal("0.005")),
    }
    for order in flat:
        assert order.purpose is OrderPurpose.FLATTEN
        assert order.reduce_only
        assert order.order_type is OrderType.MARKET
        assert order.client_order_id == flatten_client_order_id(
            "tb", "f-1", order.strategy, order.symbol
        )
    assert h.gate.state.state is TradingState.HALTED
    assert h.gate.state.reason == "operator: flatten: panic"
    ack_at = next(i for i, m in enumerate(h.timeline) if isinstance(m, ControlAcknowledged))
    last_order = max(i for i, m in enumerate(h.timeline) if isinstance(m, SubmitOrder))
    assert last_order < ack_at
    assert h.acks[0].detail == "halted: operator: flatten: panic; 4 flatten orders"
    assert (await h.deny_reason(size="0.01")).startswith("trading_state: halted")


async def test_spot_flatten_closes_instance_positions_only(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.account([("BTCUSDT", "3")])  # never sent on spot; ignored if it were
    await h.control(ControlAction.FLATTEN)
    (order,) = h.orders[1:]
    assert (order.side, order.quantity, order.reduce_only) == (Side.SELL, Decimal("0.01"), False)
    assert order.purpose is OrderPurpose.FLATTEN


# -- persistence and lifecycle ------------------------------------------------------------------
async def test_a_halt_survives_a_restart(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.control(ControlAction.HALT, "overnight")
    again = await make_gate(tmp_path)
    assert (again.gate.state.state, again.gate.state.reason) == (
        TradingState.HALTED,
        "operator: overnight",
    )
    assert again.states[0].state is TradingState.HALTED  # published once at start
    assert (await again.deny_reason(size="0.01")).startswith("trading_state: halted")
    assert (await again.approve(EXIT_LONG)).quantity == Decimal("0.01")  # the book came back


def _quarantined(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.glob("risk_state.json.corrupt-*")]


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 99}', b"[]", b'{"version": 1}'])
async def test_an_unreadable_state_file_starts_halted(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "risk_state.json").write_bytes(content)
    h = await make_gate(tmp_path)
    assert h.gate.state.state is TradingState.HALTED
    assert h.gate.state.reason.startswith("state file unreadable: ")
    assert h.states[0].state is TradingState.HALTED
    assert any(a.severity is AlertSeverity.CRITICAL for a in h.alerts)
    assert (await h.deny_reason(size="0.01")).startswith("trading_state: halted (state file")
    # The bad file is kept aside for a post-mortem, and the halt itself is on disk: a second
    # restart is still halted.
    assert _quarantined(tmp_path) == [content]
    again = await make_gate(tmp_path)
    assert again.gate.state.state is TradingState.HALTED
    assert again.gate.state.reason.startswith("state file unreadable: ")
    assert again.alerts == []


async def test_exits_in_flight_survive_a_restart(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.approve(EXIT_LONG)
    await h.gate.persist()
    again = await make_gate(tmp_path)
    assert (await again.deny_reason(EXIT_LONG)).startswith("no_position: ")


async def test_run_ends_cooldowns_and_persists_on_the_way_out(tmp_path: Path) -> None:
    h = await make_gate(
        tmp_path, guards={"consecutive_losses": 1, "consecutive_loss_cooldown_min": 1}
    )
    await _round_trip(h, "60000", "59000")
    assert h.gate.state.state is TradingState.HALTED
    task = asyncio.create_task(h.gate.run())
    await h.clock.wait_for_sleepers()
    for _ in range(61):
        h.clock.advance(1)
        await h.clock.wait_for_sleepers()
    await h.settle()
    assert h.gate.status()["state"] == "active"
    await h.open_position("ETHUSDT", "0.1", "3000")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = json.loads((tmp_path / "risk_state.json").read_text())
    assert saved["trading_state"]["state"] == "active"
    assert [p["symbol"] for p in saved["book"]["positions"]] == ["ETHUSDT"]


async def test_a_resent_signal_is_answered_once(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    first = await h.approve(size="0.01", signal_id="alpha-1")
    again = Signal("alpha", "BTCUSDT", ENTER_LONG, START_MS, "alpha-1", Decimal("0.01"))
    await h.bus.sender(SIGNAL.channel("alpha")).send(again)
    await h.settle()
    assert h.orders == [first]
    assert h.denials == []


async def test_status_is_json_safe(tmp_path: Path) -> None:
    h = await make_gate(tmp_path)
    await h.open_position("BTCUSDT", "0.01", "60000")
    await h.bar("BTCUSDT", "61000")
    await h.deny_reason(ENTER_SHORT)
    status = json.loads(json.dumps(h.gate.status()))
    assert status["state"] == "active"
    assert status["open_positions"] == {"alpha/BTCUSDT": "0.01"}
    assert Decimal(status["equity"]) == Decimal(10_010)
    assert status["approved"] == 1
    assert status["denials"] == {"market": 1}
