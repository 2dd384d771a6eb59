"""Order placement latency over the WebSocket API, through the real client, against loopback.

``WsOrderEntry(WsApiClient).place_order`` does everything a live WS placement does: order
parameters, rate-limiter reservation (default spot rules with a budget so large it never
waits), timestamp from the server-time offset, HMAC signature over the sorted params, one text
frame out on an open connection, the answer matched by id, its ``rateLimits`` fed back to the
limiter, and the FULL result parsed into an ``OrderUpdated`` and its fills.

The server is this file run as ``serve`` in its own process, pinned to the other core when
there is one (like ``rest_order.py``'s): a Binance-shaped ``/ws-api/v3`` that checks the API
key, HMAC signature and timestamp of the first ``--verify-first`` placements the way Binance
does, then answers unchecked with a FULL spot answer built from the request (FILLED, one fill,
``rateLimits`` as Binance sends them by default). No permessage-deflate, as on the streams.

Each call is timed alone (perf_counter_ns). In blocks interleaved with the client's, a bare
frame exchange on a second connection (one pre-signed frame sent, its answer received; no
signing, limiter or parse) gives the loopback WebSocket floor. Then the client's own steps are
timed in-process, without a socket, including the JSON round trip the result takes today.

    python bench/ws_order.py [--orders 5000] [--warmup 200] [--same-core]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import hmac
import json
import logging
import os
import platform
import random
import sys
import time
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import aiohttp
import msgspec
import structlog
from _loopback_server import LoopbackServer, _serve, pinning_cores
from aiohttp import WSMsgType, web
from rest_order import (
    API_KEY,
    BLOCK,
    BLOCKS,
    HUGE_BUDGET,
    IN_PROCESS_CALLS,
    SECRET,
    TARGET_P50_US,
    Series,
    best_median_async,
    best_median_sync,
    cpu_model,
    orders_for,
    pct,
    report_latency,
)

from app.domain import MarketType, OrderUpdated, SubmitOrder
from app.domain.clock import SystemClock
from exchange.binance import ws_api
from exchange.binance.order_params import spot_order_params
from exchange.binance.parse_account import parse_spot_order
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, RateLimiter
from exchange.binance.signing import HmacSigner
from exchange.binance.timesync import ServerTime
from exchange.binance.ws_api import WsApiClient
from exchange.binance.ws_orders import WsOrderEntry

EIGHT_PLACES = Decimal("0.00000001")

# -- the server (its own process) -------------------------------------------------------------


def _signed_text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class WsApiVenue:
    """Answers ``time`` and spot ``order.place`` like Binance's WebSocket API does."""

    def __init__(self, api_key: str, secret: str, verify_first: int) -> None:
        self._api_key = api_key
        self._secret = secret.encode()
        self._verify_first = verify_first
        self._rng = random.Random(3)
        self._ticks = 6_180_010
        self._order_id = 4_000_000_000
        self._trade_id = 900_000_000
        self.orders = 0
        self.verified = 0
        self._day_orders = 0

    def _refusal(self, frame: dict[str, Any], code: int, message: str) -> dict[str, Any]:
        return {"id": frame.get("id"), "status": 400, "error": {"code": code, "msg": message}}

    def _check(self, frame: dict[str, Any], now_ms: int) -> dict[str, Any] | None:
        # Binance's rule, written out here independently of the client's signing module.
        params = frame["params"]
        if params.get("apiKey") != self._api_key:
            return self._refusal(frame, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = "&".join(
            f"{key}={_signed_text(params[key])}" for key in sorted(params) if key != "signature"
        )
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(str(params.get("signature")), expected):
            return self._refusal(frame, -1022, "Signature for this request is not valid.")
        sent_ms, window_ms = int(params["timestamp"]), int(params.get("recvWindow", 5000))
        if sent_ms > now_ms + 1_000 or now_ms - sent_ms > window_ms:
            return self._refusal(
                frame, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        self.verified += 1
        return None

    def _rate_limits(self) -> list[dict[str, Any]]:
        return [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100,
             "count": 1 + self.orders % 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000,
             "count": self._day_orders},
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 6000, "count": 1 + self.orders % 6000},
        ]  # fmt: skip

    def answer(self, frame: dict[str, Any]) -> dict[str, Any]:
        now_ms = time.time_ns() // 1_000_000
        if frame.get("method") == "time":
            return {"id": frame.get("id"), "status": 200, "result": {"serverTime": now_ms}}
        if frame.get("method") != "order.place":
            return self._refusal(frame, -1102, "Unknown method.")
        if self.orders < self._verify_first:
            refusal = self._check(frame, now_ms)
            if refusal is not None:
                return refusal
        self.orders += 1
        self._day_orders += 1
        params = frame["params"]
        self._ticks = max(1, self._ticks + self._rng.randint(-5, 5))
        price = Decimal(self._ticks).scaleb(-2)
        qty = Decimal(params["quantity"])
        self._order_id += 1
        self._trade_id += self._rng.randint(1, 40)
        quote = (qty * price).quantize(EIGHT_PLACES)
        commission = (qty * Decimal("0.00075")).quantize(EIGHT_PLACES)
        result = {
            "symbol": params["symbol"], "orderId": self._order_id, "orderListId": -1,
            "clientOrderId": params["newClientOrderId"], "transactTime": now_ms,
            "price": "0.00000000", "origQty": f"{qty:.8f}", "executedQty": f"{qty:.8f}",
            "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": f"{quote:.8f}",
            "status": "FILLED", "timeInForce": "GTC", "type": params["type"],
            "side": params["side"], "workingTime": now_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "fills": [{
                "price": f"{price:.8f}", "qty": f"{qty:.8f}", "commission": f"{commission:.8f}",
                "commissionAsset": "BTC" if params["side"] == "BUY" else "USDT",
                "tradeId": self._trade_id,
            }],
        }  # fmt: skip
        return {
            "id": frame["id"],
            "status": 200,
            "result": result,
            "rateLimits": self._rate_limits(),
        }

    async def connection(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, autoping=True)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                answer = self.answer(json.loads(message.data))
                await ws.send_str(json.dumps(answer, separators=(",", ":")))
        return ws

    async def stats(self, _: web.Request) -> web.Response:
        cpu = time.process_time()
        return web.json_response({"orders": self.orders, "verified": self.verified, "cpu_s": cpu})


def serve(arguments: list[str]) -> None:
    parser = argparse.ArgumentParser(description="the WS API loopback server")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--verify-first", type=int, default=200)
    options = parser.parse_args(arguments)
    if options.cpu is not None:
        os.sched_setaffinity(0, {options.cpu})
    venue = WsApiVenue(options.api_key, options.secret, options.verify_first)
    app = web.Application()
    app.router.add_get("/ws-api/v3", venue.connection)
    app.router.add_get("/bench/stats", venue.stats)
    asyncio.run(_serve(app))


class WsApiServer(LoopbackServer):
    """``LoopbackServer``'s process handling (``PORT n``, stop on stdin close) for this file."""

    def __init__(self, arguments: list[str], *, cpu: int | None) -> None:
        super().__init__(arguments, cpu=cpu)
        pinned = ["--cpu", str(cpu)] if cpu is not None else []
        self._command = [sys.executable, str(Path(__file__).resolve()), "serve", *pinned]
        self._command += arguments


# -- the client -------------------------------------------------------------------------------


def client_for(url: str) -> WsApiClient:
    clock = SystemClock()
    rules = [dataclasses.replace(rule, limit=HUGE_BUDGET) for rule in DEFAULT_SPOT_RULES]
    return WsApiClient(
        url=url,
        clock=clock,
        server_time=ServerTime(clock=clock),
        api_key=API_KEY,
        signer=HmacSigner(SECRET),
        limiter=RateLimiter(clock=clock, rules=rules),
        recv_window_ms=5000,
        request_timeout_s=10.0,
        name="bench-ws-api",
    )


class RawFrame:
    """One pre-signed ``order.place`` frame on a bare connection: the loopback WS floor."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, client: WsApiClient) -> None:
        params = client._prepare(dict(spot_order_params(orders_for(1, 0)[0])), True)
        self._text = json.dumps({"id": "raw", "method": "order.place", "params": params})
        self._ws = ws
        self.answer = ""

    async def send(self) -> None:
        await self._ws.send_str(self._text)
        message = await self._ws.receive()
        self.answer = message.data


async def server_stats(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    async with session.get(f"{base_url}/bench/stats") as response:
        stats: dict[str, Any] = await response.json()
        return stats


class CannedWsApi:
    """Hands every request one decoded answer: ``WsOrderEntry`` without a socket."""

    def __init__(self, result: Any) -> None:
        self._result = result

    async def request(self, method: str, params: object = None, **_: object) -> Any:
        return self._result


class _RawAnswer(msgspec.Struct):
    id: str
    status: int = 200
    result: msgspec.Raw = msgspec.Raw(b"null")


async def in_process(client: WsApiClient, answer: str, calls: int) -> list[tuple[str, float]]:
    """The client's own steps, each timed alone (median µs); nothing here touches a socket."""
    order = orders_for(1, 0)[0]
    frame = ws_api._parse_frame(answer)
    assert frame is not None
    entry = WsOrderEntry(cast(WsApiClient, CannedWsApi(frame["result"])), MarketType.SPOT)
    clock = SystemClock()
    rules = [dataclasses.replace(rule, limit=HUGE_BUDGET) for rule in DEFAULT_SPOT_RULES]
    limiter = RateLimiter(clock=clock, rules=rules)
    answer_bytes = answer.encode()
    loop = asyncio.get_running_loop()

    def params() -> object:
        return spot_order_params(order)

    def prepare() -> str:
        # The client's own code (private), so the step measured is the one that runs.
        signed = client._prepare(dict(spot_order_params(order)), True)
        return json.dumps({"id": "1", "method": "order.place", "params": signed})

    def answered() -> Awaitable[object]:
        future = loop.create_future()
        future.set_result(frame)
        return ws_api.wait_with_clock(clock, future, 10.0)

    def usage() -> None:
        limiter.observe_headers(ws_api._usage_as_headers(frame["rateLimits"]))

    def raw_result() -> object:
        return parse_spot_order(msgspec.json.decode(answer_bytes, type=_RawAnswer).result)

    return [
        ("order params (spot_order_params)", best_median_sync(params, calls)),
        ("params + sign + JSON frame (stdlib json)", best_median_sync(prepare, calls)),
        ("limiter acquire (weight 1, 1 order)", await best_median_async(
            lambda: limiter.acquire(weight=1, orders=1), calls)),
        ("wait_with_clock, answer already there", await best_median_async(answered, calls)),
        ("decode answer frame (stdlib json, Decimal)", best_median_sync(
            lambda: ws_api._parse_frame(answer), calls)),
        ("rateLimits → limiter", best_median_sync(usage, calls)),
        ("params + result re-encoded + parse FULL", await best_median_async(
            lambda: entry.place_order(order), calls)),
        ("alt: msgspec frame, raw result → parse", best_median_sync(raw_result, calls)),
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Run:
    placed: Series
    floor: Series
    wrong: int
    server_cpu_s: float
    verified: int
    breakdown: list[tuple[str, float]]
    answer_bytes: int


async def timed_blocks(
    orders: list[SubmitOrder], entry: WsOrderEntry[Any], raw: RawFrame
) -> tuple[Series, Series, list[OrderUpdated]]:
    """Placements and bare frames in alternating blocks, so background load on a shared
    machine hits both alike; returns both series and the placements' answers."""
    placed, floor = Series(), Series()
    answers: list[OrderUpdated] = []
    pending = iter(orders)

    async def place_next() -> OrderUpdated:
        update, _ = await entry.place_order(next(pending))
        return cast(OrderUpdated, update)

    for first in range(0, len(orders), BLOCK):
        size = len(orders[first : first + BLOCK])
        answers += cast(list[OrderUpdated], await placed.measure(place_next, size))
        await floor.measure(raw.send, size)
    return placed, floor, answers


async def run(port: int, count: int, warmup: int) -> Run:
    base_url = f"http://127.0.0.1:{port}"
    client = client_for(f"ws://127.0.0.1:{port}/ws-api/v3")
    entry = WsOrderEntry(client, MarketType.SPOT)
    await client.connect()
    async with asyncio.TaskGroup() as tasks, aiohttp.ClientSession() as session:
        tasks.create_task(client.run())
        try:
            await client.server_time.sync(client.fetch_server_time_ms)
            for order in orders_for(warmup, 0):
                await entry.place_order(order)
            checked = await server_stats(session, base_url)
            async with session.ws_connect(f"{base_url}/ws-api/v3", compress=0) as ws:
                raw = RawFrame(ws, client)
                for _ in range(warmup):
                    await raw.send()
                orders = orders_for(count, warmup)
                gc.collect()
                before = await server_stats(session, base_url)
                placed, floor, answers = await timed_blocks(orders, entry, raw)
                after = await server_stats(session, base_url)
            breakdown = await in_process(client, raw.answer, IN_PROCESS_CALLS)
        finally:
            await client.close()
    wrong = sum(
        1
        for order, update in zip(orders, answers, strict=True)
        if update.client_order_id != order.client_order_id
        or update.filled_quantity != order.quantity
    )
    server_cpu = after["cpu_s"] - before["cpu_s"]
    return Run(placed, floor, wrong, server_cpu, checked["verified"], breakdown, len(raw.answer))


def report(result: Run, count: int, warmup: int) -> None:
    print(
        f"server: checked API key, HMAC signature and timestamp of the {result.verified} "
        f"warm-up orders (all valid), then answered the timed ones without checking"
    )
    print(f"== {count:,} sequential placements after {warmup} warm-up ", end="")
    print(f"(answers not matching their order: {result.wrong}; {result.answer_bytes} B each)")
    placed, floor = result.placed, result.floor
    print(f"  {'latency (µs)':<34} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8}  client CPU")
    report_latency("WsOrderEntry.place_order", placed)
    report_latency("bare frame out + answer in", floor)
    server_us = result.server_cpu_s / (2 * count) * 1e6  # both kinds of request hit it
    print(f"  placements: {count / placed.wall_s:,.0f} orders/s sequential; ", end="")
    print(f"server CPU per request {server_us:.0f} µs")
    print(
        f"== in-process breakdown (no socket; median µs per call, quietest of {BLOCKS} blocks "
        f"of {IN_PROCESS_CALLS // BLOCKS:,} calls)"
    )
    for label, micros in result.breakdown:
        print(f"  {label:<44} {micros:6.1f} µs")
    steps = [micros for _, micros in result.breakdown]
    own = sum(steps[1:7]) - steps[0]  # params are in two of them
    today, alternative = steps[4] + steps[6] - steps[0], steps[7]
    extra = (placed.cpu_s - floor.cpu_s) / count * 1e6
    print(
        f"  together {own:.0f} µs; place_order costs {extra:.0f} µs more client CPU than the "
        f"bare frame (the rest: event-loop turns, aiohttp, the reader task's hand-over)"
    )
    print(
        f"  answer → domain: {today:.0f} µs today, {alternative:.0f} µs if WsApiClient decoded "
        f"frames with msgspec and handed over the raw result"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--same-core", action="store_true", help="pin the server to the client's core too"
    )
    arguments = parser.parse_args()
    # Hot paths log nothing below WARNING; keep start-up debug lines out of the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    count, warmup = arguments.orders, max(1, arguments.warmup)
    client_cpu, server_cpu = pinning_cores()
    if arguments.same_core:
        server_cpu = client_cpu
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Python {platform.python_version()}, {cpu_model()}, load average {load}; ", end="")
    if client_cpu is None:
        print("not pinned (one core available or no sched_setaffinity)")
    else:
        print(f"client pinned to core {client_cpu}, server to core {server_cpu}")
    server_arguments = ["--api-key", API_KEY, "--secret", SECRET, "--verify-first", str(warmup)]
    with WsApiServer(server_arguments, cpu=server_cpu) as server:
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        result = await run(server.port, count, warmup)
    report(result, count, warmup)
    p50 = pct(result.placed.samples, 0.50)
    verdict = "PASS" if p50 <= TARGET_P50_US else "MISS"
    print(f"target: p50 <= {TARGET_P50_US:.0f} µs  ({p50:.1f} µs: {verdict})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
    else:
        asyncio.run(main())
