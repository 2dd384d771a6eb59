"""Binance market-stream feed: combined-stream connections, staleness watchdog, rotation.

:class:`MarketStreams` splits a list of stream names into connections of at most
``max_streams_per_connection`` (each a :class:`~exchange.binance.stream_connection.
StreamConnection` on ``{base_url}/stream?streams=a/b/c``) and runs them, with one watchdog, in
an ``asyncio.TaskGroup`` until cancelled. All connections share one
:class:`~exchange.binance.kline_gaps.KlineSequencer`, so downstream sees each closed kline once,
in order, across disconnects, rotations and REST backfills.

The watchdog wakes every ``watchdog_interval_s`` on the ``Clock`` and closes (so reopens, with
backfill) every connection that reached ``max_age_s`` (Binance cuts connections at 24 h) or has
a stream without a frame for ``stale_after_s``.

Limits, checked against Binance's docs:

- Spot: at most 1024 streams per connection and 5 incoming messages per second (pings and pongs
  count); a connection is only valid for 24 h; ``serverShutdown`` means "reconnect now".
- USD-M futures: 10 incoming messages per second and 24 h. The current docs say 1024 streams
  per connection, the older ones (and widely used clients) 200: we keep 200, which is valid
  under both and only costs an extra connection past 200 streams.
- USD-M futures routes streams by path (:func:`route_for`): ``/public`` carries high-frequency
  book data (``@bookTicker``, ``!bookTicker``, every ``@depth...``), ``/market`` everything else
  (klines, ``@markPrice``, ``@aggTrade``, tickers...). A stream on the wrong route is silently
  never delivered, so a futures feed is one ``MarketStreams`` per route (:func:`group_by_route`).

Market streams carry no secrets: URLs are logged. Run the feed from the composition root.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from typing import Any, Final, Literal

import aiohttp
import structlog

from app.domain.clock import Clock
from exchange.binance.kline_gaps import KlineSequencer
from exchange.binance.stream_connection import (
    STALE,
    FetchKlines,
    OnMessage,
    StreamConnection,
    StreamLimits,
)

__all__ = [
    "FUTURES_LIMITS",
    "SPOT_LIMITS",
    "MarketStreams",
    "Route",
    "StreamLimits",
    "group_by_route",
    "route_for",
]

log = structlog.get_logger(__name__)

SPOT_LIMITS: Final = StreamLimits(max_streams_per_connection=1024, max_control_messages_per_s=5)
FUTURES_LIMITS: Final = StreamLimits(max_streams_per_connection=200, max_control_messages_per_s=10)

Route = Literal["public", "market"]
_PUBLIC_CHANNELS: Final = ("bookTicker", "depth")


def route_for(stream: str) -> Route:
    """USD-M futures route of a stream name: ``public`` for book data, ``market`` otherwise.

    ``btcusdt@bookTicker``, ``!bookTicker``, ``btcusdt@depth``, ``btcusdt@depth20@100ms`` ->
    ``public``; ``btcusdt@kline_1m``, ``btcusdt@markPrice@1s``, ``btcusdt@aggTrade``,
    ``!ticker@arr`` -> ``market``. Spot has no routes.
    """
    name = stream[1:] if stream.startswith("!") else stream.partition("@")[2]
    channel = name.partition("@")[0]
    if channel == _PUBLIC_CHANNELS[0] or channel.startswith(_PUBLIC_CHANNELS[1]):
        return "public"
    return "market"


def group_by_route(streams: Sequence[str]) -> dict[Route, list[str]]:
    """Futures stream names per route, order kept; a route without streams is left out."""
    groups: dict[Route, list[str]] = {}
    for stream in streams:
        groups.setdefault(route_for(stream), []).append(stream)
    return groups


class MarketStreams:
    """Market-data streams of one base URL, spread over as many connections as the limit
    needs, each reconnected forever; frames go to ``on_message`` in per-connection order.

    ``fetch_klines(symbol, interval, start_ms)`` returns REST klines from ``start_ms`` with
    ``closed`` set by server time (``None``: gaps are skipped, counted, and logged).
    ``sequencer`` is the feed's shared :class:`KlineSequencer` (read its counters, not more).
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        streams: Sequence[str],
        clock: Clock,
        on_message: OnMessage,
        fetch_klines: FetchKlines | None,
        limits: StreamLimits,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        unique = list(dict.fromkeys(streams))
        if not unique:
            raise ValueError("MarketStreams needs at least one stream")
        self.name = name
        self._clock = clock
        self._limits = limits
        self._session = session
        self.sequencer = KlineSequencer()
        shared_rng = rng if rng is not None else random.Random()
        size = limits.max_streams_per_connection
        base = base_url.rstrip("/")
        self._connections = [
            StreamConnection(
                name=f"{name}-{index}",
                url=f"{base}/stream?streams={'/'.join(chunk)}",
                streams=chunk,
                clock=clock,
                limits=limits,
                sequencer=self.sequencer,
                on_message=on_message,
                fetch_klines=fetch_klines,
                rng=shared_rng,
            )
            for index, chunk in enumerate(
                unique[start : start + size] for start in range(0, len(unique), size)
            )
        ]

    @property
    def connections(self) -> tuple[StreamConnection, ...]:
        return tuple(self._connections)

    async def run(self) -> None:
        """Run every connection and the watchdog until cancelled.

        An exception from ``on_message`` stops the feed and is raised here as itself (not
        wrapped in an ``ExceptionGroup``) once every connection is closed.
        """
        async with contextlib.AsyncExitStack() as stack:
            session = self._session
            if session is None:
                # No total timeout: it would cut the WebSockets; the handshake has its own.
                timeout = aiohttp.ClientTimeout(
                    total=None, sock_connect=self._limits.connect_timeout_s
                )
                session = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
            log.info(
                "market_streams_started",
                feed=self.name,
                connections=len(self._connections),
                streams=sum(len(c.streams) for c in self._connections),
            )
            try:
                async with asyncio.TaskGroup() as tasks:
                    for connection in self._connections:
                        tasks.create_task(connection.run(session), name=connection.name)
                    tasks.create_task(self._watch(tasks), name=f"{self.name}-watchdog")
            except ExceptionGroup as group:
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise

    async def _watch(self, tasks: asyncio.TaskGroup) -> None:
        while True:
            await self._clock.sleep(self._limits.watchdog_interval_s)
            now = self._clock.monotonic()
            for connection in self._connections:
                reason = connection.due_reason(now)
                ws = connection.request_close(reason) if reason is not None else None
                if ws is None:
                    continue
                if reason == STALE:
                    stale = connection.stale_streams(now)
                    log.warning("market_stream_stale", connection=connection.name, streams=stale)
                else:
                    log.info("market_stream_rotating", connection=connection.name)
                # Closing waits for the server's close frame: never stall the watchdog.
                tasks.create_task(ws.close(), name=f"{connection.name}-close")

    def stale_streams(self) -> list[str]:
        now = self._clock.monotonic()
        return [s for connection in self._connections for s in connection.stale_streams(now)]

    def snapshot(self) -> dict[str, Any]:
        """Per-connection state and counters, stale streams, sequencer counters (JSON-safe)."""
        return {
            "name": self.name,
            "connections": [connection.snapshot() for connection in self._connections],
            "stale_streams": self.stale_streams(),
            "sequencer": self.sequencer.snapshot(),
        }
