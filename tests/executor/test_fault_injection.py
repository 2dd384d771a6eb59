"""Chaos: many orders through the live executor while the simulator injects every order-path
fault it has, then an audit against the simulator's own records.

Per market: placements whose answer is lost after the exchange accepted them (5xx, -1007,
timeouts), random 429s with Retry-After, orders invisible to queries just after creation,
and user-data stream drops every ~100 orders (events in the gap are lost for good; the
executor must learn the outcome by REST). The audit, printed and asserted:

- at most one exchange order per intent (the simulator's orders by client order id), and
  every intent the exchange never saw ended REJECTED;
- every simulator trade booked by exactly one fill (same trade ids, same quantities), and
  published on `order.update` exactly once;
- no order left UNKNOWN, PENDING_NEW or open; the executor's final status matches the
  simulator's.

Time: the exchange's order limits (spot 100 per 10 s) make 1,000 orders take minutes of
exchange time, so both sides share a clock that runs `SPEED` times faster than the wall
(every wait — Retry-After, backoffs, grace periods, TTLs, rate windows — scales alike).
Requests are signed with a wide recvWindow for the same reason. The test waits on
conditions (the executor's updates), never on time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from app.domain import MarketType, OrderStatus, Side
from config.executor import ExecutorSettings
from exchange.sim.faults import FaultKind, FaultRule
from tests.executor.rig import Rig, executor_rig, order
from tests.sim.harness import START_MS, with_options

SPEED = 40.0
MAX_PENDING = 20  # intents waiting for their first answer
SETTINGS = ExecutorSettings(mode="live", ttl_check_interval_s=0.5)
_EXCHANGE_STATUS = {
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
}


class FastClock:
    """Wall time sped up `speed` times: a Clock for tests that must cover minutes quickly."""

    def __init__(self, speed: float, start_ms: int) -> None:
        self._speed = speed
        self._start_ms = start_ms
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self._speed

    def now_ms(self) -> int:
        return self._start_ms + int(self.monotonic() * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self._speed)


def _faults(market: str) -> list[FaultRule]:
    m: Any = market
    return [
        # ~10 % placed but status unknown, ~5 % -1007 (first rule that fires wins).
        FaultRule(FaultKind.ORDER_ERROR_5XX, probability=0.05, market=m, http_status=503),
        FaultRule(FaultKind.ORDER_TIMEOUT, probability=0.055, market=m, timeout_s=2.0),
        FaultRule(FaultKind.ORDER_ERROR_1007, probability=0.06, market=m),
        FaultRule(FaultKind.RATE_LIMIT_429, probability=0.004, count=8, market=m, retry_after_s=1),
        FaultRule(FaultKind.ORDER_NOT_FOUND_AFTER_CREATE, probability=0.1, market=m, grace_ms=1500),
    ]


async def _chaos(market: MarketType, intents: int, qty: str, per_s: float) -> None:
    """`per_s`: intents per (clock) second, under the exchange's order limit as the risk
    gate's order-rate check keeps it; faster, the executor rightly gives up on intents it
    cannot send within `max_send_attempts`."""
    started = time.monotonic()
    spot = market is MarketType.SPOT
    sim_market = "spot" if spot else "futures"
    options = with_options(
        spot_balances={"USDT": Decimal(10_000_000), "BTC": Decimal(100)},
        futures_wallet={"USDT": Decimal(10_000_000)},
    )
    clock = FastClock(SPEED, START_MS)
    async with executor_rig(
        market=market,
        settings=SETTINGS,
        stream=True,
        clock=clock,
        options=options,
        recv_window_ms=60_000,
        stream_backoff_s=0.5,
    ) as rig:
        client: Any = rig.port.client  # type: ignore[attr-defined]
        (book,) = await client.book_tickers("BTCUSDT")
        resting = (book.bid_price * Decimal("0.9")).quantize(Decimal(1))
        for rule in _faults(sim_market):
            await rig.sim.faults.arm(rule)
        cids: list[str] = []
        for i in range(intents):
            if i and i % 100 == 0:
                await rig.sim.faults.arm(FaultRule(FaultKind.DROP_STREAMS, market=sim_market))  # type: ignore[arg-type]
            cid = f"fi-{i:04d}"
            side = Side.BUY if i % 2 == 0 else Side.SELL
            if i % 10 == 9:  # a resting LIMIT buy, cancelled by its TTL
                intent = order(cid, qty=qty, price=resting, ttl_ms=2_000)
            else:
                intent = order(cid, side=side, qty=qty)
            await rig.wait(lambda: _count(rig, OrderStatus.PENDING_NEW) < MAX_PENDING, 30.0)
            await rig.request(intent)
            await clock.sleep(1.0 / per_s)  # the signal rate, not a wait for an outcome
            cids.append(cid)
        await rig.wait(lambda: _settled(rig, cids), 45.0)
        _audit(rig, cids, market, time.monotonic() - started)


def _count(rig: Rig, status: OrderStatus) -> int:
    return sum(1 for o in rig.executor.book if o.status is status)


def _settled(rig: Rig, cids: list[str]) -> bool:
    orders = [rig.executor.book.get(cid) for cid in cids]
    if any(o is None or not o.is_final or o.fill_gap > 0 for o in orders):
        return False
    booked = sum(len(o.fills) for o in orders if o is not None)
    return booked == len(rig.sim_trades())


def _audit(rig: Rig, cids: list[str], market: MarketType, elapsed_s: float) -> None:
    sim_orders = rig.sim_orders()
    per_cid = Counter(o["client_order_id"] for o in sim_orders)
    trades = rig.sim_trades()
    book = rig.executor.book
    final = Counter(book.get(cid).status.value for cid in cids)  # type: ignore[union-attr]
    status = rig.executor.status()
    rejections = Counter(
        o.reason[:60] for o in (book.get(c) for c in cids) if o and o.status is OrderStatus.REJECTED
    )
    published = Counter(u.fill.trade_id for u in rig.seen if getattr(u, "fill", None) is not None)
    print(
        f"\n[{market.value}] {len(cids)} intents in {elapsed_s:.1f}s: "
        f"exchange orders {len(sim_orders)}, trades {len(trades)}, "
        f"fills booked {status['fills_booked']}\n"
        f"  final status: {dict(sorted(final.items()))}\n"
        f"  faults fired: {rig.sim.faults.snapshot()['fired_total']}\n"
        f"  executor: {status['counts']}\n"
        f"  refused transitions: {status['refused_transitions']}\n"
        f"  exchange orders per intent: {dict(Counter(per_cid[c] for c in cids))}\n"
        f"  rejection reasons: {dict(rejections)}"
    )
    # One exchange order per intent at most, and nothing we did not ask for.
    assert set(per_cid) <= set(cids)
    assert max(per_cid.values()) == 1
    for cid in cids:
        tracked = book.get(cid)
        assert tracked is not None
        assert tracked.status not in (OrderStatus.UNKNOWN, OrderStatus.PENDING_NEW), cid
        assert tracked.is_final, (cid, tracked.status)
        if per_cid[cid] == 0:
            assert tracked.status is OrderStatus.REJECTED, cid
    for sim_order in sim_orders:
        tracked = book.get(sim_order["client_order_id"])
        assert tracked is not None
        assert tracked.status is _EXCHANGE_STATUS[sim_order["status"]], sim_order
        executed = Decimal(sim_order.get("executed_qty", "0"))
        assert tracked.booked_quantity == executed, sim_order
    # Every exchange trade booked once, with its quantity; published once.
    booked = {f.trade_id: f.quantity for o in book for f in o.fills.values()}
    assert booked == {t["trade_id"]: Decimal(t["qty"]) for t in trades}
    assert sum(len(o.fills) for o in book) == len(trades)
    assert published == Counter({t["trade_id"]: 1 for t in trades})
    assert status["unknown"] == status["pending_new"] == status["open_orders"] == 0
    fired = rig.sim.faults.snapshot()["fired_total"]
    assert fired.get("order_error_1007", 0) > 0
    assert fired.get("order_error_5xx", 0) + fired.get("order_timeout", 0) > 0
    assert fired.get("drop_streams", 0) > 0


@pytest.mark.slow
async def test_spot_1000_orders_under_faults() -> None:
    await _chaos(MarketType.SPOT, 1000, "0.001", per_s=7.0)  # limit: 100 per 10 s


@pytest.mark.slow
async def test_futures_orders_under_faults() -> None:
    await _chaos(MarketType.USDM, 300, "0.010", per_s=15.0)  # limit: 1,200 a minute
