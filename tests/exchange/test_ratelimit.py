"""Tests for the Binance rate limiter: budgets per fixed window, waiting, headers and blocks.

Time is a ``ManualClock`` started at a known offset inside a UTC-midnight-aligned minute, so
every window boundary is at a known distance; nothing here sleeps in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy, istr
from structlog.testing import capture_logs

from app.domain.clock import ManualClock
from app.errors import RateLimitedError
from exchange.binance import ratelimit
from exchange.binance.ratelimit import (
    DEFAULT_SPOT_RULES,
    DEFAULT_USDM_RULES,
    RateLimiter,
    RateLimitRule,
    parse_rate_limits,
)

MIDNIGHT_MS = 1_699_920_000_000  # 2023-11-14 00:00:00 UTC: aligned to every window length
WEIGHT_1M = RateLimitRule("REQUEST_WEIGHT", "MINUTE", 1, 10)  # budget 5 at share 0.5
ORDERS_10S = RateLimitRule("ORDERS", "SECOND", 10, 4)
RAW_5M = RateLimitRule("RAW_REQUESTS", "MINUTE", 5, 100)


def make_limiter(
    *,
    offset_s: float,
    rules: tuple[RateLimitRule, ...] = (WEIGHT_1M,),
    share: float = 0.5,
    max_wait_s: float = 10.0,
) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock(start_ms=MIDNIGHT_MS + int(offset_s * 1000))
    limiter = RateLimiter(clock=clock, rules=rules, share=share, max_wait_s=max_wait_s)
    return limiter, clock


def rule_state(limiter: RateLimiter, window: str, kind: str = "REQUEST_WEIGHT") -> dict[str, Any]:
    rules: list[dict[str, Any]] = limiter.snapshot()["rules"]
    (state,) = [r for r in rules if r["window"] == window and r["kind"] == kind]
    return state


async def settle() -> None:
    """Let every ready task run until it blocks (no time passes on any clock)."""
    for _ in range(10):
        await asyncio.sleep(0)


# -- rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "window_s", "suffix"),
    [
        (RateLimitRule("REQUEST_WEIGHT", "MINUTE", 1, 6000), 60, "1M"),
        (RateLimitRule("ORDERS", "SECOND", 10, 100), 10, "10S"),
        (RateLimitRule("ORDERS", "DAY", 1, 200_000), 86_400, "1D"),
        (RateLimitRule("RAW_REQUESTS", "MINUTE", 5, 61_000), 300, "5M"),
        (RateLimitRule("REQUEST_WEIGHT", "HOUR", 2, 1), 7_200, "2H"),
    ],
)
def test_rule_window_and_header_suffix(rule: RateLimitRule, window_s: int, suffix: str) -> None:
    assert rule.window_s == window_s
    assert rule.header_suffix == suffix


def test_parse_rate_limits_on_recorded_spot_exchange_info(binance_fixtures: Path) -> None:
    payload = json.loads(
        (binance_fixtures / "rest/http_spot_market_exchange_info.json").read_text()
    )
    assert parse_rate_limits(payload["rateLimits"]) == (
        RateLimitRule("REQUEST_WEIGHT", "MINUTE", 1, 1200),
        RateLimitRule("ORDERS", "SECOND", 10, 50),
        RateLimitRule("ORDERS", "DAY", 1, 160_000),
        RateLimitRule("RAW_REQUESTS", "MINUTE", 5, 6100),
    )


def test_parse_rate_limits_on_recorded_futures_exchange_info(binance_fixtures: Path) -> None:
    path = binance_fixtures / "rest/http_futures_market_exchange_info.json"
    rules = parse_rate_limits(json.loads(path.read_text())["rateLimits"])
    assert {(r.kind, r.header_suffix) for r in rules} == {
        ("REQUEST_WEIGHT", "1M"),
        ("ORDERS", "1M"),
        ("ORDERS", "10S"),
    }
    assert RateLimitRule("ORDERS", "SECOND", 10, 300) in rules


def test_parse_rate_limits_skips_malformed_entries() -> None:
    good = {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}
    raw = [
        "not a mapping",
        None,
        {**good, "rateLimitType": "CONNECTIONS"},
        {**good, "interval": "WEEK"},
        {**good, "intervalNum": True},
        {**good, "intervalNum": 0},
        {**good, "limit": "100"},
        {**good, "limit": -5},
        {"rateLimitType": "ORDERS", "interval": "SECOND"},
        good,
    ]
    assert parse_rate_limits(raw) == (RateLimitRule("ORDERS", "SECOND", 10, 100),)  # type: ignore[arg-type]
    assert parse_rate_limits(None) == ()  # type: ignore[arg-type]
    assert parse_rate_limits([]) == ()


def test_default_rules_cover_every_documented_window() -> None:
    assert {(r.kind, r.header_suffix, r.limit) for r in DEFAULT_SPOT_RULES} == {
        ("REQUEST_WEIGHT", "1M", 6000),
        ("ORDERS", "10S", 100),
        ("ORDERS", "1D", 200_000),
        ("RAW_REQUESTS", "5M", 61_000),
    }
    assert {(r.kind, r.header_suffix, r.limit) for r in DEFAULT_USDM_RULES} == {
        ("REQUEST_WEIGHT", "1M", 2400),
        ("ORDERS", "10S", 300),
        ("ORDERS", "1M", 1200),
    }


# -- budget and waiting ----------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.0, -0.1, 1.01])
def test_share_outside_zero_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        make_limiter(offset_s=0, share=share)


async def test_budget_is_floor_of_limit_times_share_and_at_least_one() -> None:
    limiter, _ = make_limiter(offset_s=0, rules=(RateLimitRule("ORDERS", "SECOND", 10, 3),))
    assert rule_state(limiter, "10S", "ORDERS")["budget"] == 1  # floor(1.5)
    tiny, _ = make_limiter(offset_s=0, share=0.01)
    assert rule_state(tiny, "1M")["budget"] == 1  # floor(0.1) would forbid everything


async def test_budget_is_respected_exactly_and_the_next_request_waits_for_the_reset() -> None:
    limiter, clock = make_limiter(offset_s=55)  # 5 s before the minute turns
    for _ in range(5):
        await limiter.acquire(weight=1)
    assert rule_state(limiter, "1M")["remaining"] == 0

    sixth = asyncio.create_task(limiter.acquire(weight=1))
    await clock.wait_for_sleepers()
    clock.advance(4.999)
    await settle()
    assert not sixth.done()

    clock.advance(0.002)
    await asyncio.wait_for(sixth, 1)
    assert rule_state(limiter, "1M")["used"] == 1  # counted in the new minute only
    snap = limiter.snapshot()
    assert snap["waits"] == 1
    assert snap["wait_seconds_total"] == pytest.approx(5.001)


async def test_waiters_are_served_first_come_first_served() -> None:
    weight_10s = RateLimitRule("REQUEST_WEIGHT", "SECOND", 10, 10)  # budget 5
    limiter, clock = make_limiter(offset_s=5, rules=(weight_10s,), max_wait_s=30)
    await limiter.acquire(weight=3)
    done: list[str] = []

    async def request(label: str, weight: int) -> None:
        await limiter.acquire(weight=weight)
        done.append(label)

    big = asyncio.create_task(request("big", 5))  # needs the whole next window
    await clock.wait_for_sleepers()
    small = asyncio.create_task(request("small", 1))  # would fit now, but arrived second
    await settle()
    assert limiter.snapshot()["waiting"] == 2
    assert done == []

    clock.advance(5)
    await asyncio.wait_for(big, 1)
    await settle()
    assert done == ["big"]  # the small one did not overtake, and now waits for another window

    await clock.wait_for_sleepers()
    clock.advance(10)
    await asyncio.wait_for(small, 1)
    assert done == ["big", "small"]


async def test_a_wait_longer_than_max_wait_raises_with_the_wait() -> None:
    limiter, _ = make_limiter(offset_s=20)  # 40 s to the next minute
    await limiter.acquire(weight=5)
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(weight=1)
    assert caught.value.retry_after_s == pytest.approx(40)
    assert not caught.value.banned
    assert limiter.snapshot()["rejected_local"] == 1
    assert rule_state(limiter, "1M")["used"] == 5


async def test_a_request_heavier_than_the_whole_budget_raises_at_once() -> None:
    limiter, _ = make_limiter(offset_s=0)
    with pytest.raises(RateLimitedError, match="exceeds"):
        await limiter.acquire(weight=6)
    assert rule_state(limiter, "1M")["used"] == 0


async def test_negative_amounts_are_a_programming_error() -> None:
    limiter, _ = make_limiter(offset_s=0)
    with pytest.raises(ValueError, match="negative"):
        await limiter.acquire(weight=-1)


async def test_orders_and_raw_requests_are_counted_in_their_own_windows() -> None:
    limiter, _ = make_limiter(offset_s=0, rules=(WEIGHT_1M, ORDERS_10S, RAW_5M), share=1.0)
    await limiter.acquire(weight=2)
    await limiter.acquire(weight=1, orders=1)
    await limiter.acquire(weight=1, orders=1, raw=0)
    assert rule_state(limiter, "1M")["used"] == 4
    assert rule_state(limiter, "10S", "ORDERS")["used"] == 2
    assert rule_state(limiter, "5M", "RAW_REQUESTS")["used"] == 2


async def test_orders_budget_blocks_orders_but_not_plain_requests() -> None:
    limiter, _ = make_limiter(offset_s=1, rules=(WEIGHT_1M, ORDERS_10S), share=1.0, max_wait_s=1)
    for _ in range(4):
        await limiter.acquire(weight=1, orders=1)
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(weight=1, orders=1)
    assert caught.value.retry_after_s == pytest.approx(9)
    await limiter.acquire(weight=1)  # no order: only the weight window counts it
    assert rule_state(limiter, "1M")["used"] == 5


# -- headers ---------------------------------------------------------------------------------


async def test_reported_weight_of_other_bots_raises_our_count_and_makes_us_wait() -> None:
    limiter, clock = make_limiter(offset_s=57)
    await limiter.acquire(weight=1)
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "5", "Content-Type": "application/json"})
    assert rule_state(limiter, "1M")["used"] == 5

    waiting = asyncio.create_task(limiter.acquire(weight=1))
    await clock.wait_for_sleepers()
    assert not waiting.done()
    clock.advance(3)
    await asyncio.wait_for(waiting, 1)


async def test_a_lower_reported_value_never_lowers_our_count() -> None:
    limiter, _ = make_limiter(offset_s=0)
    await limiter.acquire(weight=3)
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "1"})
    assert rule_state(limiter, "1M")["used"] == 3


async def test_header_names_are_case_insensitive_and_bad_values_are_ignored() -> None:
    limiter, _ = make_limiter(offset_s=0, rules=(WEIGHT_1M, ORDERS_10S), share=1.0)
    limiter.observe_headers(
        {
            "x-mbx-used-weight-1m": "7",
            "X-Mbx-Order-Count-10s": "2",
            "X-MBX-USED-WEIGHT-1H": "900",  # a window we have no rule for
            "X-MBX-ORDER-COUNT-1D": "not a number",
            "X-MBX-ORDER-COUNT-1M": "-3",
        }
    )
    assert rule_state(limiter, "1M")["used"] == 7
    assert rule_state(limiter, "10S", "ORDERS")["used"] == 2
    assert limiter.snapshot()["reported"] == {
        "x-mbx-used-weight-1m": 7,
        "x-mbx-order-count-10s": 2,
        "x-mbx-used-weight-1h": 900,
    }


async def test_aiohttp_headers_in_mixed_case_count_every_time() -> None:
    limiter, _ = make_limiter(offset_s=0, rules=(WEIGHT_1M, ORDERS_10S), share=1.0)
    headers = CIMultiDictProxy(
        CIMultiDict(
            [
                ("Content-Type", "application/json"),
                (istr("X-Mbx-Used-Weight-1m"), "6"),  # aiohttp hands out istr names
                ("x-MBX-order-COUNT-10S", "3"),
                ("X-MBX-USED-WEIGHT", "6"),  # no window in the name: not a usage header
                ("X-MBX-UUID", "e0a3c0b4-5f0c-4d1e-9a2b-3c4d5e6f7a8b"),
                ("X-MBX-USED-WEIGHT-1H", "40"),  # a window we have no rule for
            ]
        )
    )
    limiter.observe_headers(headers)
    assert rule_state(limiter, "1M")["used"] == 6
    assert rule_state(limiter, "10S", "ORDERS")["used"] == 3
    # The same names again (now remembered), with higher counts.
    limiter.observe_headers(
        CIMultiDict([(istr("X-Mbx-Used-Weight-1m"), "8"), ("x-MBX-order-COUNT-10S", "4")])
    )
    assert rule_state(limiter, "1M")["used"] == 8
    assert rule_state(limiter, "10S", "ORDERS")["used"] == 4
    assert limiter.snapshot()["reported"] == {
        "x-mbx-used-weight-1m": 8,
        "x-mbx-order-count-10s": 4,
        "x-mbx-used-weight-1h": 40,
    }


async def test_padded_and_zero_led_header_names_count_for_their_window() -> None:
    limiter, _ = make_limiter(offset_s=0, share=1.0)
    limiter.observe_headers({" X-MBX-USED-WEIGHT-01M ": "3"})
    assert rule_state(limiter, "1M")["used"] == 3
    assert limiter.snapshot()["reported"] == {"x-mbx-used-weight-01m": 3}


async def test_a_window_added_by_set_rules_takes_its_header_from_then_on() -> None:
    limiter, _ = make_limiter(offset_s=0, share=1.0)
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1H": "5"})  # no rule yet: reported only
    limiter.set_rules([WEIGHT_1M, RateLimitRule("REQUEST_WEIGHT", "HOUR", 1, 100)])
    assert rule_state(limiter, "1H")["used"] == 0
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1H": "9"})
    assert rule_state(limiter, "1H")["used"] == 9
    assert rule_state(limiter, "1M")["used"] == 0


async def test_header_names_past_the_memo_bound_are_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo: dict[str, object] = {}
    monkeypatch.setattr(ratelimit, "_USAGE_NAMES", memo)
    monkeypatch.setattr(ratelimit, "_USAGE_NAMES_MAX", 4)
    limiter, _ = make_limiter(offset_s=0, share=1.0)
    junk = {f"X-Junk-{index}": "1" for index in range(10)}
    limiter.observe_headers({**junk, "X-MBX-USED-WEIGHT-1M": "7"})
    assert len(memo) == 4
    assert rule_state(limiter, "1M")["used"] == 7


async def test_a_response_sent_in_the_previous_window_does_not_fill_the_new_one() -> None:
    limiter, clock = make_limiter(offset_s=59.9)
    sent_ms = clock.now_ms()
    clock.advance(0.2)  # the response arrives in the next minute
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "5"}, sent_ms=sent_ms)
    assert rule_state(limiter, "1M")["used"] == 0
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "4"}, sent_ms=clock.now_ms())
    assert rule_state(limiter, "1M")["used"] == 4


# -- blocks ----------------------------------------------------------------------------------


async def test_block_makes_every_acquire_raise_until_it_has_passed() -> None:
    limiter, clock = make_limiter(offset_s=0)
    with capture_logs() as logs:
        limiter.block(30, banned=False, reason="http 429")
    assert logs == [
        {
            "event": "rate_limit_blocked",
            "log_level": "warning",
            "name": "binance",
            "retry_after_s": 30,
            "banned": False,
            "reason": "http 429",
        }
    ]

    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(weight=1)
    assert caught.value.retry_after_s == pytest.approx(30)
    assert not caught.value.banned

    clock.advance(29)
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(weight=1, orders=1)
    assert caught.value.retry_after_s == pytest.approx(1)

    clock.advance(1.5)
    assert limiter.blocked_for_s() == 0
    await limiter.acquire(weight=1)
    assert limiter.snapshot()["blocks"] == 1
    assert limiter.snapshot()["rejected_local"] == 2


async def test_a_418_marks_the_limiter_banned() -> None:
    limiter, clock = make_limiter(offset_s=0)
    limiter.block(120, banned=True, reason="http 418")
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(weight=1)
    assert caught.value.banned
    assert caught.value.retry_after_s == pytest.approx(120)
    assert limiter.snapshot()["banned"] is True
    clock.advance(121)
    assert limiter.snapshot()["banned"] is False


async def test_a_shorter_block_never_shortens_a_longer_one() -> None:
    limiter, _ = make_limiter(offset_s=0)
    limiter.block(60, banned=True, reason="http 418")
    limiter.block(5, banned=False, reason="http 429")
    assert limiter.blocked_for_s() == pytest.approx(60)
    assert limiter.snapshot()["banned"] is True
    limiter.block(90, banned=False, reason="code -1003")
    assert limiter.blocked_for_s() == pytest.approx(90)
    assert limiter.snapshot()["blocks"] == 3


async def test_a_block_wakes_a_waiting_acquire_instead_of_sending_after_it() -> None:
    limiter, clock = make_limiter(offset_s=55)
    await limiter.acquire(weight=5)
    waiting = asyncio.create_task(limiter.acquire(weight=1))
    await clock.wait_for_sleepers()

    limiter.block(300, banned=True, reason="http 418")
    with pytest.raises(RateLimitedError) as caught:
        await asyncio.wait_for(waiting, 1)  # no clock advance: it must not wait for the minute
    assert caught.value.banned
    assert rule_state(limiter, "1M")["used"] == 5


# -- cancellation ----------------------------------------------------------------------------


async def test_cancelled_waiters_take_nothing_and_leave_the_line_working() -> None:
    limiter, clock = make_limiter(offset_s=55)
    await limiter.acquire(weight=5)
    head = asyncio.create_task(limiter.acquire(weight=5))
    await clock.wait_for_sleepers()
    middle = asyncio.create_task(limiter.acquire(weight=5))
    last = asyncio.create_task(limiter.acquire(weight=5))
    await settle()
    assert limiter.snapshot()["waiting"] == 3

    middle.cancel()
    head.cancel()
    for task in (middle, head):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert limiter.snapshot()["waiting"] == 1
    assert rule_state(limiter, "1M")["used"] == 5  # nothing released that they had not taken

    clock.advance(5)
    await asyncio.wait_for(last, 1)  # the whole new budget was still free for it
    assert rule_state(limiter, "1M")["used"] == 5
    assert limiter.snapshot()["waiting"] == 0


async def test_after_the_only_waiter_is_cancelled_requests_pass_straight_through() -> None:
    limiter, clock = make_limiter(offset_s=55)
    await limiter.acquire(weight=5)
    waiting = asyncio.create_task(limiter.acquire(weight=1))
    await clock.wait_for_sleepers()
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    clock.advance(5)
    await asyncio.wait_for(limiter.acquire(weight=5), 1)
    assert limiter.snapshot()["waiting"] == 0


# -- rules updates and reporting -------------------------------------------------------------


async def test_set_rules_keeps_counts_of_windows_that_still_exist() -> None:
    limiter, _ = make_limiter(offset_s=0, rules=(WEIGHT_1M, RAW_5M))
    await limiter.acquire(weight=3)
    limiter.set_rules(
        [RateLimitRule("REQUEST_WEIGHT", "MINUTE", 1, 20), RateLimitRule("ORDERS", "DAY", 1, 9)]
    )
    weight = rule_state(limiter, "1M")
    assert (weight["limit"], weight["budget"], weight["used"]) == (20, 10, 3)
    assert rule_state(limiter, "1D", "ORDERS")["used"] == 0
    assert {r["window"] for r in limiter.snapshot()["rules"]} == {"1M", "1D"}

    limiter.set_rules([])  # an exchangeInfo without limits does not switch limiting off
    assert len(limiter.snapshot()["rules"]) == 2


async def test_set_rules_with_more_budget_releases_a_waiter() -> None:
    limiter, clock = make_limiter(offset_s=55)
    await limiter.acquire(weight=5)
    waiting = asyncio.create_task(limiter.acquire(weight=2))
    await clock.wait_for_sleepers()
    limiter.set_rules([RateLimitRule("REQUEST_WEIGHT", "MINUTE", 1, 14)])  # budget 7
    await asyncio.wait_for(waiting, 1)
    assert rule_state(limiter, "1M")["used"] == 7


async def test_snapshot_is_plain_json() -> None:
    limiter, _ = make_limiter(offset_s=0, rules=DEFAULT_SPOT_RULES, share=0.25)
    await limiter.acquire(weight=20, orders=1)
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "42", "X-MBX-ORDER-COUNT-10S": "1"})
    limiter.block(2.5, banned=False, reason="http 429")
    snap = limiter.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert rule_state(limiter, "1M") == {
        "kind": "REQUEST_WEIGHT",
        "window": "1M",
        "limit": 6000,
        "budget": 1500,
        "used": 42,
        "remaining": 1458,
    }
    assert snap["blocked_for_s"] == pytest.approx(2.5)
    assert snap["banned"] is False
    assert {"waits", "wait_seconds_total", "rejected_local", "blocks"} <= snap.keys()
