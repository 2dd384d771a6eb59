"""Assembles the Binance venue from the ``[exchange]`` section: one REST transport and client,
the market streams per route, and (when orders go to the venue) the user-data stream, each wired
to the feeds.

Kept apart from ``app.wiring`` so the composition root stays short; nothing here does I/O until
``prepare()`` (server time, exchangeInfo) and the ``run_*`` coroutines are started by the
supervisor. Secrets are read from ``SecretStr`` here and handed straight to the client; they
never appear in the snapshot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.bus import Bus
from app.domain import Clock, MarketType
from app.domain.market import Kline
from app.errors import FatalVenueError
from app.feeds.market import MarketPublisher
from app.feeds.user import UserPublisher
from config.exchange import ExchangeSettings
from exchange.binance.endpoints import Endpoints, endpoints_for
from exchange.binance.futures import FuturesClient
from exchange.binance.parse_market import stream_names
from exchange.binance.ratelimit import DEFAULT_SPOT_RULES, DEFAULT_USDM_RULES, RateLimiter
from exchange.binance.rest import RestTransport
from exchange.binance.rules import SymbolRules
from exchange.binance.signing import Signer, load_signer
from exchange.binance.spot import SpotClient
from exchange.binance.streams import (
    FUTURES_LIMITS,
    SPOT_LIMITS,
    MarketStreams,
    StreamLimits,
    group_by_route,
)
from exchange.binance.timesync import ServerTime
from exchange.binance.user_data_futures import FuturesUserDataStream
from exchange.binance.user_data_spot import SpotUserDataStream

__all__ = ["BinanceVenue", "build_binance_venue"]

# Kline pages (stream backfill, warm-up history): the most rows one call returns on both venues.
_BACKFILL_PAGE = 1000


@dataclass
class BinanceVenue:
    settings: ExchangeSettings
    endpoints: Endpoints
    transport: RestTransport
    client: SpotClient | FuturesClient
    market_streams: list[MarketStreams]
    market_publisher: MarketPublisher
    user_stream: SpotUserDataStream | FuturesUserDataStream | None = None
    user_publisher: UserPublisher | None = None
    rules: dict[str, SymbolRules] = field(default_factory=dict)

    async def prepare(self) -> None:
        """Measure the clock offset and load symbol rules; refuse unknown or halted symbols."""
        await self.transport.sync_time()
        if isinstance(self.client, SpotClient):
            info = await self.client.exchange_info(self.settings.symbols)
        else:
            info = await self.client.exchange_info()
        problems: list[str] = []
        for symbol in self.settings.symbols:
            rules = info.symbols.get(symbol)
            if rules is None:
                problems.append(f"{symbol}: not listed on {self.settings.market.value}")
            elif rules.status != "TRADING":
                problems.append(f"{symbol}: status {rules.status}, not TRADING")
            else:
                self.rules[symbol] = rules
        if problems:
            raise FatalVenueError("exchange.symbols: " + "; ".join(problems))

    async def run_market_streams(self) -> None:
        async with asyncio.TaskGroup() as group:
            for streams in self.market_streams:
                group.create_task(streams.run(), name=streams.name)

    async def run_clock_sync(self) -> None:
        await self.transport.server_time.run_periodic(
            self.transport.fetch_server_time_ms, interval_s=self.settings.time_sync_interval_s
        )

    async def fetch_klines(self, symbol: str, interval: str, start_ms: int) -> list[Kline]:
        return await self.client.klines(symbol, interval, start_ms=start_ms, limit=_BACKFILL_PAGE)

    async def closed_klines(
        self, symbol: str, interval: str, *, start_ms: int, end_ms: int
    ) -> list[Kline]:
        """Closed bars opening in [start_ms, end_ms], page by page: the strategies' warm-up
        history (`strategies.history.HistorySource`)."""
        bars: list[Kline] = []
        cursor = start_ms
        while cursor <= end_ms:
            page = await self.client.klines(
                symbol, interval, start_ms=cursor, end_ms=end_ms, limit=_BACKFILL_PAGE
            )
            bars.extend(bar for bar in page if bar.closed and bar.open_time_ms <= end_ms)
            if len(page) < _BACKFILL_PAGE:
                break
            cursor = page[-1].open_time_ms + 1
        return bars

    def snapshot(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "market": self.settings.market.value,
            "environment": self.settings.environment,
            "rest": self.transport.snapshot(),
            "market_streams": {s.name: s.snapshot() for s in self.market_streams},
            "market_feed": self.market_publisher.snapshot(),
        }
        if self.user_stream is not None and self.user_publisher is not None:
            document["user_stream"] = self.user_stream.snapshot()
            document["user_feed"] = self.user_publisher.snapshot()
        return document

    async def close(self) -> None:
        await self.transport.close()


def build_binance_venue(
    settings: ExchangeSettings,
    *,
    user_data: bool,
    bus: Bus,
    clock: Clock,
    endpoints: Endpoints | None = None,
) -> BinanceVenue:
    endpoints = endpoints or endpoints_for(settings.environment, settings.endpoints.model_dump())
    spot = settings.market is MarketType.SPOT
    limiter = RateLimiter(
        clock=clock,
        rules=DEFAULT_SPOT_RULES if spot else DEFAULT_USDM_RULES,
        share=settings.rate_limit_share,
        name=f"binance-{settings.market.value}",
    )
    server_time = ServerTime(clock=clock)
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    signer = _signer(settings)
    transport = RestTransport(
        base_url=endpoints.spot_rest if spot else endpoints.futures_rest,
        server_time_path="/api/v3/time" if spot else "/fapi/v1/time",
        clock=clock,
        limiter=limiter,
        server_time=server_time,
        api_key=api_key,
        signer=signer,
        recv_window_ms=settings.recv_window_ms,
        timeout_s=settings.request_timeout_s,
        name=f"binance-{settings.market.value}-rest",
    )
    client: SpotClient | FuturesClient = SpotClient(transport) if spot else FuturesClient(transport)
    publisher = MarketPublisher(bus=bus)
    venue = BinanceVenue(
        settings=settings,
        endpoints=endpoints,
        transport=transport,
        client=client,
        market_streams=[],
        market_publisher=publisher,
    )
    names = stream_names(
        [s.lower() for s in settings.symbols],
        intervals=settings.kline_intervals,
        book_ticker=settings.book_ticker,
        mark_price=not spot,
    )
    base_limits = SPOT_LIMITS if spot else FUTURES_LIMITS
    limits = StreamLimits(
        max_streams_per_connection=base_limits.max_streams_per_connection,
        max_control_messages_per_s=base_limits.max_control_messages_per_s,
        max_age_s=settings.stream_max_age_s,
        stale_after_s=settings.stream_stale_after_s,
        backoff_initial_s=settings.reconnect_backoff_initial_s,
        backoff_max_s=settings.reconnect_backoff_max_s,
    )
    routes = {"spot": names} if spot else group_by_route(names)
    for route, route_streams in routes.items():
        base_url = endpoints.spot_streams
        if not spot:
            base_url = endpoints.futures_public if route == "public" else endpoints.futures_market
        venue.market_streams.append(
            MarketStreams(
                name=f"market-{route}",
                base_url=base_url,
                streams=route_streams,
                clock=clock,
                on_message=publisher.on_frame,
                fetch_klines=venue.fetch_klines,
                limits=limits,
            )
        )
    if user_data:
        _attach_user_stream(venue, settings, bus=bus, clock=clock, api_key=api_key, signer=signer)
    return venue


def _attach_user_stream(
    venue: BinanceVenue,
    settings: ExchangeSettings,
    *,
    bus: Bus,
    clock: Clock,
    api_key: str | None,
    signer: Signer | None,
) -> None:
    if api_key is None or signer is None:
        raise FatalVenueError("live orders need exchange.api_key and a signing key")
    publisher = UserPublisher(bus=bus, clock=clock)
    venue.user_publisher = publisher
    if isinstance(venue.client, SpotClient):
        venue.user_stream = SpotUserDataStream(
            ws_api_url=venue.endpoints.spot_ws_api,
            clock=clock,
            server_time=venue.transport.server_time,
            api_key=api_key,
            signer=signer,
            limiter=venue.transport.limiter,
            on_events=publisher.on_events,
            on_resync=publisher.on_resync,
            backoff_initial_s=settings.reconnect_backoff_initial_s,
            backoff_max_s=settings.reconnect_backoff_max_s,
            max_age_s=settings.stream_max_age_s,
            request_timeout_s=settings.request_timeout_s,
            recv_window_ms=settings.recv_window_ms,
        )
    else:
        venue.user_stream = FuturesUserDataStream(
            client=venue.client,
            private_url=venue.endpoints.futures_private,
            clock=clock,
            on_events=publisher.on_events,
            on_resync=publisher.on_resync,
            keepalive_s=settings.listen_key_keepalive_s,
            backoff_initial_s=settings.reconnect_backoff_initial_s,
            backoff_max_s=settings.reconnect_backoff_max_s,
            max_age_s=settings.stream_max_age_s,
        )


def _signer(settings: ExchangeSettings) -> Signer | None:
    if not settings.has_signing_key:
        return None
    return load_signer(
        settings.key_type,
        secret=settings.api_secret.get_secret_value() if settings.api_secret else None,
        private_key_file=settings.private_key_file,
        passphrase=(
            settings.private_key_passphrase.get_secret_value()
            if settings.private_key_passphrase
            else None
        ),
    )
