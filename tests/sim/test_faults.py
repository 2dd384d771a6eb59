"""The fault catalogue and injector: rule validation, the decisions servers act on, and
determinism (same seed, same calls, same decisions)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from app.domain.clock import ManualClock
from exchange.sim.faults import (
    FaultInjector,
    FaultKind,
    FaultRule,
    FaultRuleError,
    FaultUnavailableError,
    RequestFault,
)


def injector(seed: int = 7) -> tuple[FaultInjector, ManualClock]:
    clock = ManualClock()
    return FaultInjector(seed=seed, clock=clock), clock


def place(inj: FaultInjector, market: str = "spot", symbol: str = "BTCUSDT") -> RequestFault | None:
    return inj.before_request(market=market, channel="rest", is_order_placement=True, symbol=symbol)


# -- rules ------------------------------------------------------------------------------------


def test_rule_json_round_trip_keeps_only_relevant_parameters() -> None:
    rule = FaultRule.from_json({"kind": "partial_fills", "market": "futures", "fraction": "0.3"})
    assert rule.fraction == Decimal("0.3")
    data = rule.to_json()
    assert data == {
        "kind": "partial_fills",
        "probability": 1.0,
        "market": "futures",
        "fraction": "0.3",
    }
    assert FaultRule.from_json(json.loads(json.dumps(data))) == rule
    reject = FaultRule.from_json(
        {"kind": "reject_2010", "probability": "0.25", "count": "2", "symbol": "ethusdt"}
    )
    assert (reject.probability, reject.count, reject.symbol) == (0.25, 2, "ETHUSDT")
    assert reject.to_json() == {
        "kind": "reject_2010",
        "probability": 0.25,
        "count": 2,
        "symbol": "ETHUSDT",
        "message": "",
    }
    assert FaultRule.from_json(reject.to_json()) == reject


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({}, "kind"),
        ({"kind": "meteor_strike"}, "kind"),
        ({"kind": "latency", "probability": 1.5}, "probability"),
        ({"kind": "latency", "probability": "often"}, "probability"),
        ({"kind": "latency", "count": 0}, "count"),
        ({"kind": "latency", "market": "margin"}, "market"),
        ({"kind": "latency", "channel": "fix"}, "channel"),
        ({"kind": "latency", "ban_s": 5}, "ban_s"),
        ({"kind": "latency", "latency_ms": -1}, "latency_ms"),
        ({"kind": "latency", "colour": "red"}, "colour"),
        ({"kind": "partial_fills", "fraction": "1"}, "fraction"),
        ({"kind": "partial_fills", "probability": 0.5}, "probability"),
        ({"kind": "drop_streams", "count": 2}, "count"),
        ({"kind": "drop_streams", "channel": "rest"}, "channel"),
        ({"kind": "listen_key_expired", "market": "spot"}, "market"),
        ({"kind": "order_error_5xx", "error_code": -2010}, "error_code"),
        ({"kind": "clock_skew", "skew_ms": 0}, "skew_ms"),
        ({"kind": "rate_limit_429", "channel": "streams"}, "channel"),
        ({"kind": "partial_fills", "symbol": "BTCUSDT"}, "symbol"),
        ({"kind": "clock_skew", "channel": "rest"}, "channel"),
        ({"kind": "order_error_5xx", "http_status": 404}, "http_status"),
    ],
)
def test_invalid_rules_name_the_field(data: dict[str, object], field_name: str) -> None:
    with pytest.raises(FaultRuleError) as caught:
        FaultRule.from_json(data)
    assert caught.value.field == field_name
    assert field_name in str(caught.value)


def test_constructor_refuses_a_parameter_of_another_kind() -> None:
    with pytest.raises(FaultRuleError, match="retry_after_s"):
        FaultRule(FaultKind.IP_BAN_418, retry_after_s=3)


# -- request faults ---------------------------------------------------------------------------


async def test_reject_only_hits_order_placement_and_count_runs_out() -> None:
    inj, _ = injector()
    await inj.arm(FaultRule(FaultKind.REJECT_2010, count=2, message="Market is closed."))
    assert inj.before_request(market="spot", channel="rest", is_order_placement=False) is None
    first = place(inj)
    assert first is not None
    assert first.error is not None
    error = first.error
    assert (error.status, error.code, error.msg) == (400, -2010, "Market is closed.")
    assert json.loads(error.rest_reply().body) == {"code": -2010, "msg": "Market is closed."}
    assert error.ws_error(server_time_ms=1) == {"code": -2010, "msg": "Market is closed."}
    assert inj.rules()[0].remaining == 1
    assert place(inj) is not None
    assert place(inj) is None
    assert inj.rules() == []


async def test_scope_market_channel_symbol() -> None:
    inj, _ = injector()
    await inj.arm(
        FaultRule(FaultKind.REJECT_1013, market="futures", channel="ws_api", symbol="ETHUSDT")
    )
    assert place(inj, market="futures", symbol="ETHUSDT") is None  # channel rest
    assert place(inj, market="spot", symbol="ETHUSDT") is None
    hit = inj.before_request(
        market="futures", channel="ws_api", is_order_placement=True, symbol="ETHUSDT"
    )
    assert hit is not None
    assert hit.error is not None
    assert hit.error.code == -1013
    assert hit.error.msg == "Filter failure: LOT_SIZE"
    other = inj.before_request(
        market="futures", channel="ws_api", is_order_placement=True, symbol="BTCUSDT"
    )
    assert other is None


async def test_ban_418_covers_every_request_until_it_ends() -> None:
    inj, clock = injector()
    await inj.arm(FaultRule(FaultKind.IP_BAN_418, count=1, ban_s=120, market="spot"))
    first = inj.before_request(market="spot", channel="rest", is_order_placement=False)
    assert first is not None
    assert first.error is not None
    assert first.error.status == 418
    assert first.error.retry_after_s == 120
    until = clock.now_ms() + 120_000
    assert first.error.until_ms == until
    reply = first.error.rest_reply()
    assert reply.status == 418
    assert reply.header("Retry-After") == "120"
    assert str(until) in json.loads(reply.body)["msg"]
    assert inj.rules() == []  # the count is used, the ban stands
    clock.advance(100.5)
    later = inj.before_request(market="futures", channel="ws_api", is_order_placement=True)
    assert later is not None
    assert later.error is not None
    assert (later.error.status, later.error.retry_after_s) == (418, 20)
    assert later.error.ws_error(server_time_ms=clock.now_ms() + 7, skew_ms=7) == {
        "code": -1003,
        "msg": later.error.msg,
        "data": {"serverTime": clock.now_ms() + 7, "retryAfter": until + 7},
    }
    clock.advance(19.5)
    assert inj.before_request(market="spot", channel="rest", is_order_placement=False) is None


async def test_429_window_per_market_with_retry_after() -> None:
    inj, clock = injector()
    await inj.arm(FaultRule(FaultKind.RATE_LIMIT_429, count=1, retry_after_s=3))
    first = inj.before_request(market="spot", channel="rest", is_order_placement=False)
    assert first is not None
    assert first.error is not None
    assert (first.error.status, first.error.code, first.error.retry_after_s) == (429, -1003, 3)
    assert first.error.rest_reply().header("Retry-After") == "3"
    assert inj.before_request(market="futures", channel="rest", is_order_placement=False) is None
    clock.advance(2)
    again = inj.before_request(market="spot", channel="rest", is_order_placement=False)
    assert again is not None
    assert again.error is not None
    assert again.error.retry_after_s == 1
    clock.advance(1)
    assert inj.before_request(market="spot", channel="rest", is_order_placement=False) is None


async def test_clear_lifts_the_ban() -> None:
    inj, _ = injector()
    await inj.arm(FaultRule(FaultKind.IP_BAN_418))
    assert place(inj) is not None
    assert inj.snapshot()["banned_until_ms"] is not None
    assert inj.clear(FaultKind.IP_BAN_418) == 1
    assert place(inj) is None


async def test_latency_adds_up_and_comes_with_errors() -> None:
    inj, _ = injector()
    await inj.arm(FaultRule(FaultKind.LATENCY, latency_ms=200))
    await inj.arm(FaultRule(FaultKind.LATENCY, latency_ms=50, channel="rest"))
    await inj.arm(FaultRule(FaultKind.REJECT_2010))
    fault = place(inj)
    assert fault is not None
    assert fault.latency_ms == 250
    assert fault.error is not None
    assert inj.latency_ms(market="spot", channel="streams") == 200


async def test_post_accept_faults() -> None:
    inj, _ = injector()
    await inj.arm(FaultRule(FaultKind.ORDER_ERROR_5XX, count=1, error_code=-1000, http_status=503))
    await inj.arm(FaultRule(FaultKind.ORDER_ERROR_1007, count=1))
    await inj.arm(FaultRule(FaultKind.ORDER_TIMEOUT, count=1, timeout_s=2.5))
    faults = [inj.after_order_accepted(market="spot", channel="rest") for _ in range(4)]
    first, second, third, fourth = faults
    assert first is not None
    assert first.error is not None
    assert (first.error.status, first.error.code) == (503, -1000)
    assert second is not None
    assert second.error is not None
    assert (second.error.status, second.error.code) == (408, -1007)
    assert "execution status unknown" in second.error.msg
    assert third is not None
    assert third.error is None
    assert third.timeout_s == 2.5
    assert fourth is None


async def test_new_order_hidden_for_the_grace_period() -> None:
    inj, clock = injector()
    await inj.arm(FaultRule(FaultKind.ORDER_NOT_FOUND_AFTER_CREATE, count=1, grace_ms=1500))
    assert inj.hide_new_order(
        market="spot", channel="rest", symbol="BTCUSDT", order_id=5, client_order_id="abc"
    )
    assert inj.is_hidden(market="spot", symbol="BTCUSDT", order_id=5)
    assert inj.is_hidden(market="spot", symbol="BTCUSDT", client_order_id="abc")
    assert not inj.is_hidden(market="spot", symbol="BTCUSDT", order_id=6)
    assert not inj.is_hidden(market="futures", symbol="BTCUSDT", order_id=5)
    assert not inj.hide_new_order(
        market="spot", channel="rest", symbol="BTCUSDT", order_id=6, client_order_id="x"
    )
    clock.advance(1.5)
    assert not inj.is_hidden(market="spot", symbol="BTCUSDT", order_id=5)


async def test_standing_conditions_and_change_listener() -> None:
    inj, _ = injector()
    changes: list[Decimal | None] = []
    inj.on_change(lambda: changes.append(inj.partial_fill_fraction("spot")))
    await inj.arm(FaultRule(FaultKind.CLOCK_SKEW, skew_ms=-3000, market="spot"))
    await inj.arm(FaultRule(FaultKind.PARTIAL_FILLS, fraction=Decimal("0.25")))
    await inj.arm(FaultRule(FaultKind.PARTIAL_FILLS, fraction=Decimal("0.1"), market="futures"))
    assert inj.clock_skew_ms("spot") == -3000
    assert inj.clock_skew_ms("futures") == 0
    assert inj.partial_fill_fraction("spot") == Decimal("0.25")
    assert inj.partial_fill_fraction("futures") == Decimal("0.1")
    inj.clear(FaultKind.PARTIAL_FILLS)
    assert changes == [None, Decimal("0.25"), Decimal("0.25"), None]


async def test_actions_run_callbacks_at_arm_time() -> None:
    inj, _ = injector()
    with pytest.raises(FaultUnavailableError):
        await inj.arm(FaultRule(FaultKind.DROP_STREAMS))
    seen: list[FaultRule] = []

    async def stall(rule: FaultRule) -> None:
        seen.append(rule)

    inj.on_action(FaultKind.STALL_STREAMS, stall)
    rule = FaultRule(FaultKind.STALL_STREAMS, stall_s=4.0, market="futures")
    await inj.arm(rule)
    assert seen == [rule]
    assert inj.rules() == []
    assert inj.snapshot()["fired_total"] == {"stall_streams": 1}
    with pytest.raises(ValueError, match="not an action"):
        inj.on_action(FaultKind.LATENCY, stall)


async def decisions(seed: int) -> list[object]:
    inj, clock = injector(seed)
    await inj.arm(FaultRule(FaultKind.LATENCY, probability=0.5, latency_ms=10))
    await inj.arm(FaultRule(FaultKind.REJECT_2010, probability=0.3))
    await inj.arm(FaultRule(FaultKind.ORDER_ERROR_1007, probability=0.4))
    out: list[object] = []
    for i in range(200):
        out.append(place(inj, market="spot" if i % 2 else "futures"))
        out.append(inj.after_order_accepted(market="spot", channel="rest"))
        clock.advance(0.1)
    return out


async def test_same_seed_same_decisions() -> None:
    a = await decisions(1)
    assert a == await decisions(1)
    assert a != await decisions(2)
    # The probabilities are real: some requests hit, some do not.
    assert 0 < sum(x is None for x in a) < len(a)
