"""End to end through the real daemon wiring: Binance venue (pointed at a loopback server by
endpoint overrides) → market streams → feed → bus → a subscriber, plus the heartbeat section.

The server drops the stream after the first closed bar; bars that closed while the client was
away come back by REST, so the subscriber must see every closed kline exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from app.bus import MARKET_KLINE
from app.domain.market import Kline
from app.runtime import ComponentSpec, Stage
from app.wiring import StartupConfigError, build_daemon
from config import Settings
from config.database import DatabaseSettings
from config.exchange import EndpointOverrides, ExchangeSettings
from config.risk import RiskSettings
from config.settings import HealthSettings, LoggingSettings

MINUTE_MS = 60_000
T0 = 1_700_000_040_000 - (1_700_000_040_000 % MINUTE_MS)


def kline_row(open_ms: int, close: str) -> list[Any]:
    return [
        open_ms,
        "100",
        "101",
        "99",
        close,
        "5",
        open_ms + MINUTE_MS - 1,
        "500",
        10,
        "2",
        "200",
        "0",
    ]


def kline_frame(open_ms: int, close: str, *, closed: bool) -> str:
    return json.dumps(
        {
            "stream": "btcusdt@kline_1m",
            "data": {
                "e": "kline",
                "E": open_ms + 1000,
                "s": "BTCUSDT",
                "k": {
                    "t": open_ms,
                    "T": open_ms + MINUTE_MS - 1,
                    "s": "BTCUSDT",
                    "i": "1m",
                    "o": "100",
                    "c": close,
                    "h": "101",
                    "l": "99",
                    "v": "5",
                    "n": 10,
                    "x": closed,
                    "q": "500",
                },
            },
        }
    )


EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": T0,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
    ],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "orderTypes": ["LIMIT", "MARKET"],
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01",
                    "maxPrice": "1000000",
                    "tickSize": "0.01",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001",
                    "maxQty": "9000",
                    "stepSize": "0.00001",
                },
            ],
        }
    ],
}


class FakeBinance:
    """REST time/exchangeInfo/klines and a `/stream` WebSocket with two scripted sessions."""

    def __init__(self) -> None:
        self.connections = 0
        self.kline_queries: list[dict[str, str]] = []
        self.base_http = ""
        self.base_ws = ""

    async def time(self, _: web.Request) -> web.Response:
        return web.json_response({"serverTime": T0 + 5 * MINUTE_MS})

    async def exchange_info(self, _: web.Request) -> web.Response:
        return web.json_response(EXCHANGE_INFO)

    async def klines(self, request: web.Request) -> web.Response:
        self.kline_queries.append(dict(request.query))
        start = int(request.query["startTime"])
        rows = [kline_row(T0 + i * MINUTE_MS, f"10{i}") for i in range(5)]
        return web.json_response([r for r in rows if r[0] >= start])

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        if self.connections == 1:
            await ws.send_str(kline_frame(T0, "100", closed=True))
            await ws.send_str(kline_frame(T0 + MINUTE_MS, "101", closed=False))
            await ws.close()  # bars T0+1..T0+3 close while the client is away
            return ws
        await ws.send_str(kline_frame(T0 + 4 * MINUTE_MS, "104", closed=True))
        async for message in ws:  # keep the session open until the client leaves
            if message.type is WSMsgType.CLOSE:
                break
        return ws


@pytest.fixture
async def fake_binance() -> AsyncIterator[FakeBinance]:
    fake = FakeBinance()
    app = web.Application()
    app.router.add_get("/api/v3/time", fake.time)
    app.router.add_get("/api/v3/exchangeInfo", fake.exchange_info)
    app.router.add_get("/api/v3/klines", fake.klines)
    app.router.add_get("/stream", fake.stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.base_http = f"http://127.0.0.1:{port}"
    fake.base_ws = f"ws://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def settings_for(fake: FakeBinance, tmp_path: Path, **exchange: Any) -> Settings:
    return Settings(
        mode="paper",
        logging=LoggingSettings(file=None),
        health=HealthSettings(heartbeat_path=tmp_path / "heartbeat.json", systemd_notify=False),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'tradebus.db'}"),
        risk=RiskSettings(state_file=tmp_path / "risk_state.json"),
        exchange=ExchangeSettings(
            venue="binance",
            symbols=("BTCUSDT",),
            book_ticker=False,
            reconnect_backoff_initial_s=0.001,
            reconnect_backoff_max_s=0.002,
            endpoints=EndpointOverrides(spot_rest=fake.base_http, spot_streams=fake.base_ws),
            **exchange,
        ),
    )


async def test_closed_klines_reach_the_bus_once_in_order_across_a_reconnect(
    fake_binance: FakeBinance, tmp_path: Path
) -> None:
    daemon = build_daemon(settings_for(fake_binance, tmp_path))
    closed: list[Kline] = []
    all_closed = asyncio.Event()

    async def on_kline(kline: Kline) -> None:
        if kline.closed:
            closed.append(kline)
            if len(closed) == 5:
                all_closed.set()

    daemon.bus.subscribe(MARKET_KLINE.any(), on_kline, subscriber="probe")
    daemon.supervisor.add(ComponentSpec("probe", Stage.STRATEGY))
    running = asyncio.ensure_future(daemon.run(install_signal_handlers=False))
    try:
        await asyncio.wait_for(all_closed.wait(), timeout=30)
        heartbeat = daemon.health.snapshot()
    finally:
        daemon.supervisor.request_shutdown("test done")
        await running
    assert [k.open_time_ms for k in closed] == [T0 + i * MINUTE_MS for i in range(5)]
    assert [str(k.close) for k in closed] == ["100", "101", "102", "103", "104"]
    assert fake_binance.connections == 2
    assert fake_binance.kline_queries[0]["startTime"] == str(T0 + MINUTE_MS)
    venue = heartbeat["venue"]
    assert venue["market_feed"]["kline_closed"] == 5
    assert venue["rest"]["rate_limits"]["rules"]
    assert venue["rest"]["server_time"]["offset_ms"] is not None


async def test_an_unknown_symbol_stops_start_up(fake_binance: FakeBinance, tmp_path: Path) -> None:
    settings = settings_for(fake_binance, tmp_path)
    settings = settings.model_copy(
        update={"exchange": settings.exchange.model_copy(update={"symbols": ("ETHUSDT",)})}
    )
    daemon = build_daemon(settings)
    code = await asyncio.wait_for(daemon.run(install_signal_handlers=False), timeout=30)
    assert code != 0
    components = daemon.health.snapshot()["components"]
    # The executor loads the symbol rules first, before any order could use them.
    assert "ETHUSDT: not listed" in (components["executor"]["last_error"] or "")


def test_a_bad_signing_key_is_a_startup_config_error(tmp_path: Path) -> None:
    settings = Settings(
        mode="paper",
        exchange=ExchangeSettings(
            venue="binance", key_type="ed25519", api_key="k", api_secret="not a pem"
        ),
    )
    with pytest.raises(StartupConfigError, match=r"exchange\.api_secret") as raised:
        build_daemon(settings)
    assert "not a pem" not in str(raised.value)
