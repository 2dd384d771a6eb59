"""Binance-shaped loopback servers for the benchmarks, run in a process of their own.

A measured client should not share its core with the server it talks to, so the benchmarks
start this file as a subprocess (:class:`LoopbackServer`), which binds 127.0.0.1 on port 0,
prints ``PORT <n>`` and serves until its standard input closes (the parent exiting closes it
too, so no server outlives its benchmark).

    rest    ``GET /api/v3/time`` and ``POST /api/v3/order``: a spot FULL answer (FILLED, one
            fill) built from the request. The first ``--verify-first`` orders are checked the
            way Binance checks them (API key header, HMAC-SHA256 over the query as sent,
            timestamp within recvWindow); later ones are answered unchecked.
    stream  ``/stream`` (WebSocket): every connection gets ``--frames`` pre-built combined
            kline frames for ``--symbols`` as fast as the socket takes them, then a close.

Both answer ``GET /bench/stats`` with counters and the server's CPU time, so a client can tell
its own cost from the server's. :func:`kline_frames` is importable: the client decodes the very
same frames in-process for its breakdown.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from types import TracebackType

from aiohttp import WSMsgType, web

MINUTE_MS = 60_000
FIRST_OPEN_MS = 1_723_161_240_000  # a minute boundary (2024-08-09 00:14 UTC)
UPDATES_PER_BAR = 60  # 59 intrabar updates, then the closed bar
_START_TICKS = {"BTCUSDT": 6_180_010, "ETHUSDT": 265_044, "BNBUSDT": 52_317, "SOLUSDT": 15_412}
_EIGHT_PLACES = Decimal("0.00000001")


# -- frames ---------------------------------------------------------------------------------


def _price(ticks: int) -> str:
    # Spot answers carry 8 decimals; prices here move in 0.01 ticks.
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def _amount(units: int) -> str:
    # Volumes in 0.00001 units, written with Binance's 8 decimals.
    return f"{units // 100_000}.{units % 100_000:05d}000"


def _quote(units: int, ticks: int) -> str:
    value = units * ticks  # in 1e-7
    return f"{value // 10_000_000}.{value % 10_000_000:07d}0"


def kline_frames(count: int, symbols: list[str], seed: int = 7) -> list[bytes]:
    """``count`` combined ``<symbol>@kline_1m`` frames, round-robin over ``symbols``.

    Per symbol: a seeded random walk, 59 intrabar updates of a bar then its closed frame, open
    times one minute apart, so the kline sequencer accepts every frame in order.
    """
    rng = random.Random(seed)
    state = {s: [_START_TICKS.get(s, 100_000), 0, 0, 0, 0, 0, 0, 0, 1_000] for s in symbols}
    frames: list[bytes] = []
    for index in range(count):
        symbol = symbols[index % len(symbols)]
        st = state[symbol]  # price, open, high, low, volume, taker volume, trades, first, next
        seq = index // len(symbols)
        bar, step = divmod(seq, UPDATES_PER_BAR)
        if step == 0:
            st[1] = st[2] = st[3] = st[0]
            st[4] = st[5] = st[6] = 0
            st[7] = st[8]
        st[0] = max(1, st[0] + rng.randint(-3, 3))
        st[2], st[3] = max(st[2], st[0]), min(st[3], st[0])
        trades = rng.randint(1, 20)
        bought = rng.randint(1, 4_000)
        st[4] += bought + rng.randint(1, 4_000)
        st[5] += bought
        st[6] += trades
        st[8] += trades
        open_ms = FIRST_OPEN_MS + bar * MINUTE_MS
        closed = step == UPDATES_PER_BAR - 1
        event_ms = open_ms + MINUTE_MS if closed else open_ms + step * 1_000 + rng.randint(0, 999)
        k = (
            f'{{"t":{open_ms},"T":{open_ms + MINUTE_MS - 1},"s":"{symbol}","i":"1m",'
            f'"f":{st[7]},"L":{st[8] - 1},"o":"{_price(st[1])}","c":"{_price(st[0])}",'
            f'"h":"{_price(st[2])}","l":"{_price(st[3])}","v":"{_amount(st[4])}","n":{st[6]},'
            f'"x":{"true" if closed else "false"},"q":"{_quote(st[4], st[0])}",'
            f'"V":"{_amount(st[5])}","Q":"{_quote(st[5], st[0])}","B":"0"}}'
        )
        frames.append(
            f'{{"stream":"{symbol.lower()}@kline_1m","data":{{"e":"kline","E":{event_ms},'
            f'"s":"{symbol}","k":{k}}}}}'.encode()
        )
    return frames


# -- the REST server ------------------------------------------------------------------------


class RestVenue:
    """Answers spot order placement like Binance does, with Binance's usage headers."""

    def __init__(self, api_key: str, secret: str, verify_first: int) -> None:
        self._api_key = api_key
        self._secret = secret.encode()
        self._verify_first = verify_first
        self._rng = random.Random(3)
        self._ticks = _START_TICKS["BTCUSDT"]
        self.orders = 0
        self.verified = 0
        self._order_id = 4_000_000_000
        self._trade_id = 900_000_000
        self._windows: dict[str, list[int]] = {"1m": [0, 0], "10s": [0, 0], "1d": [0, 0]}

    def _count(self, window: str, length_ms: int, now_ms: int) -> int:
        start = now_ms - now_ms % length_ms
        counter = self._windows[window]
        if counter[0] != start:
            counter[0], counter[1] = start, 0
        counter[1] += 1
        return counter[1]

    def _refusal(self, status: int, code: int, message: str) -> web.Response:
        return web.json_response({"code": code, "msg": message}, status=status)

    def _check(self, request: web.Request, now_ms: int) -> web.Response | None:
        if request.headers.get("X-MBX-APIKEY") != self._api_key:
            return self._refusal(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload, _, signature = request.rel_url.raw_query_string.rpartition("&signature=")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return self._refusal(400, -1022, "Signature for this request is not valid.")
        query = request.rel_url.query
        sent_ms, window_ms = int(query["timestamp"]), int(query.get("recvWindow", "5000"))
        if sent_ms > now_ms + 1_000 or now_ms - sent_ms > window_ms:
            return self._refusal(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        self.verified += 1
        return None

    async def server_time(self, _: web.Request) -> web.Response:
        return web.json_response({"serverTime": time.time_ns() // 1_000_000})

    async def place_order(self, request: web.Request) -> web.Response:
        now_ms = time.time_ns() // 1_000_000
        if self.orders < self._verify_first:
            refusal = self._check(request, now_ms)
            if refusal is not None:
                return refusal
        self.orders += 1
        query = request.rel_url.query
        self._ticks = max(1, self._ticks + self._rng.randint(-5, 5))
        price = Decimal(self._ticks).scaleb(-2)
        qty = Decimal(query["quantity"])
        self._order_id += 1
        self._trade_id += self._rng.randint(1, 40)
        quote = (qty * price).quantize(_EIGHT_PLACES)
        commission = (qty * Decimal("0.00075")).quantize(_EIGHT_PLACES)
        body = {
            "symbol": query["symbol"], "orderId": self._order_id, "orderListId": -1,
            "clientOrderId": query["newClientOrderId"], "transactTime": now_ms,
            "price": "0.00000000", "origQty": f"{qty:.8f}", "executedQty": f"{qty:.8f}",
            "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": f"{quote:.8f}",
            "status": "FILLED", "timeInForce": "GTC", "type": query["type"],
            "side": query["side"], "workingTime": now_ms, "selfTradePreventionMode": "EXPIRE_MAKER",
            "fills": [
                {
                    "price": f"{price:.8f}", "qty": f"{qty:.8f}", "commission": f"{commission:.8f}",
                    "commissionAsset": "BTC" if query["side"] == "BUY" else "USDT",
                    "tradeId": self._trade_id,
                }
            ],
        }  # fmt: skip
        weight = self._count("1m", MINUTE_MS, now_ms)
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "x-mbx-uuid": f"{self._order_id:08x}-5f0c-4d1e-9a2b-3c4d5e6f7a8b",
            "x-mbx-used-weight": str(weight),
            "x-mbx-used-weight-1m": str(weight),
            "x-mbx-order-count-10s": str(self._count("10s", 10_000, now_ms)),
            "x-mbx-order-count-1d": str(self._count("1d", 86_400_000, now_ms)),
            "Strict-Transport-Security": "max-age=31536000; includeSubdomains",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Xss-Protection": "1; mode=block",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'self'",
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache",
            "Expires": "0",
        }
        return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), headers=headers)

    async def stats(self, _: web.Request) -> web.Response:
        cpu = time.process_time()
        return web.json_response({"orders": self.orders, "verified": self.verified, "cpu_s": cpu})


def rest_app(api_key: str, secret: str, verify_first: int) -> web.Application:
    venue = RestVenue(api_key, secret, verify_first)
    app = web.Application()
    app.router.add_get("/api/v3/time", venue.server_time)
    app.router.add_post("/api/v3/order", venue.place_order)
    app.router.add_get("/bench/stats", venue.stats)
    return app


# -- the stream server ----------------------------------------------------------------------


class StreamVenue:
    """Blasts the same pre-built kline frames at every connection, then closes it."""

    def __init__(self, frames: list[bytes]) -> None:
        self._frames = frames
        self.last: dict[str, float] = {}

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate: Binance's market streams send plain text frames.
        ws = web.WebSocketResponse(compress=False, autoping=True)
        await ws.prepare(request)
        wall, cpu = time.perf_counter(), time.process_time()
        send = ws.send_frame
        for frame in self._frames:
            await send(frame, WSMsgType.TEXT)
        self.last = {
            "frames": len(self._frames),
            "send_s": time.perf_counter() - wall,
            "send_cpu_s": time.process_time() - cpu,
        }
        await ws.close()
        return ws

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.last)


def stream_app(frames: int, symbols: list[str]) -> web.Application:
    venue = StreamVenue(kline_frames(frames, symbols))
    app = web.Application()
    app.router.add_get("/stream", venue.stream)
    app.router.add_get("/bench/stats", venue.stats)
    return app


# -- process plumbing -----------------------------------------------------------------------


async def _serve(app: web.Application) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()
    # Blocks in read() (no CPU) until the parent closes the pipe or exits.
    threading.Thread(
        target=lambda: (sys.stdin.buffer.read(), loop.call_soon_threadsafe(stdin_closed.set)),
        daemon=True,
    ).start()
    print(f"PORT {port}", flush=True)
    try:
        await stdin_closed.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this core")
    kinds = parser.add_subparsers(dest="kind", required=True)
    rest = kinds.add_parser("rest")
    rest.add_argument("--api-key", required=True)
    rest.add_argument("--secret", required=True)
    rest.add_argument("--verify-first", type=int, default=200)
    stream = kinds.add_parser("stream")
    stream.add_argument("--frames", type=int, required=True)
    stream.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    arguments = parser.parse_args()
    if arguments.cpu is not None:
        os.sched_setaffinity(0, {arguments.cpu})
    if arguments.kind == "rest":
        app = rest_app(arguments.api_key, arguments.secret, arguments.verify_first)
    else:
        app = stream_app(arguments.frames, arguments.symbols.split(","))
    asyncio.run(_serve(app))


class LoopbackServer:
    """The server above as a child process: ``with LoopbackServer([...]) as server: server.url``."""

    def __init__(self, arguments: list[str], *, cpu: int | None = None) -> None:
        pinned = ["--cpu", str(cpu)] if cpu is not None else []
        self._command = [sys.executable, str(Path(__file__).resolve()), *pinned, *arguments]
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackServer:
        process = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"loopback server did not start (said {line!r})")
        self.port = int(line.removeprefix("PORT "))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.stdin is not None:
            process.stdin.close()  # the server's signal to stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()  # our own child, by its handle
            process.wait()


def pinning_cores() -> tuple[int | None, int | None]:
    """(client core, server core) when this process may use two cores, else (None, None)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return cores[0], cores[1]


if __name__ == "__main__":
    main()
