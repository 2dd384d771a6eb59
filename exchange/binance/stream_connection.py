"""One Binance combined-stream WebSocket kept alive forever: connect, backfill, read, reconnect.

:class:`StreamConnection` owns one ``/stream?streams=a/b/c`` URL. Each session:

1. connects (aiohttp ``ws_connect``; the handshake is bounded by ``connect_timeout_s``; the
   client pings every ``heartbeat_s`` and aiohttp answers the server's pings by itself);
2. backfills from REST every kline series of this connection that already has a closed bar,
   so bars closed while disconnected reach downstream before any newer frame;
3. reads frames until the server closes, the socket fails, the server announces a shutdown,
   or the staleness watchdog closes it (:meth:`StreamConnection.request_close`: stale
   streams, or rotation at ``max_age_s``), yielding to the event loop after every closed kline
   and every :data:`FRAMES_PER_YIELD` frames, so a burst never starves other tasks.

Klines go through the shared :class:`~exchange.binance.kline_gaps.KlineSequencer`; a gap the
stream reveals is filled from REST inline, before the next frame is read. A failed or
incomplete backfill ends the session like a socket error: reconnect with backoff, and never
deliver past a gap. Exceptions raised by ``on_message`` are bugs downstream: they propagate.

Backoff is exponential with full jitter (``uniform(0, min(max, initial * 2**n))``), slept on the
``Clock``; a session that lived ``stable_after_s`` resets it. A server shutdown or a rotation
reconnects at once, unless the previous session also ended that way within ``stable_after_s``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import structlog

from app.domain.clock import Clock
from app.domain.market import BookTicker, Kline, MarkPrice
from app.errors import RateLimitedError, VenueError
from exchange.binance.kline_gaps import KlineSequencer
from exchange.binance.parse_market import (
    ControlReply,
    MalformedFrame,
    MarketFrame,
    ServerShutdown,
    UnknownEvent,
    decode_market_frame,
)

__all__ = ["FRAMES_PER_YIELD", "FetchKlines", "OnMessage", "StreamConnection", "StreamLimits"]

log = structlog.get_logger(__name__)

OnMessage = Callable[[MarketFrame], Awaitable[None]]
FetchKlines = Callable[[str, str, int], Awaitable[list[Kline]]]

_CONNECTION_ERRORS: Final = (aiohttp.ClientError, OSError, TimeoutError)
_BACKFILL_ERRORS: Final = (*_CONNECTION_ERRORS, VenueError, MalformedFrame)
_MALFORMED_LOGGED_FIRST: Final = 10
_MALFORMED_LOGGED_EVERY: Final = 1000
_REASON_CHARS: Final = 200
_MAX_DOUBLINGS: Final = 32
# aiohttp hands out frames it has already buffered (up to ~380 kline frames, ~5 ms of work at
# full load) without suspending, so a reader that never yields starves every other task for a
# whole burst: order placement, bus subscribers, the watchdog. Yielding every this many frames
# bounds that stall to well under a millisecond for a cost of one event-loop pass per batch.
FRAMES_PER_YIELD: Final = 32
SERVER_SHUTDOWN: Final = "server_shutdown"
# A closed bar is what strategies trade on. Yielding right after delivering one lets the
# signal → risk → order chain it starts run before the rest of the bar-close burst is parsed:
# otherwise an order waits behind every other symbol's closing frames (tick-to-trade).
_BAR_CLOSED: Final = "bar_closed"
ROTATION: Final = "rotation"
STALE: Final = "stale"
_IMMEDIATE: Final = frozenset({SERVER_SHUTDOWN, ROTATION})
_COUNTERS: Final = (
    "reconnects",
    "frames",
    "malformed",
    "server_shutdowns",
    "stale_reconnects",
    "rotations",
    "control_replies",
    "unknown_events",
    "backfill_failures",
)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Venue limits and client behaviour for market-stream connections (times in seconds)."""

    max_streams_per_connection: int
    # We send no SUBSCRIBE (the URL carries the streams), only heartbeat pings and pongs.
    max_control_messages_per_s: float
    max_age_s: float = 23 * 3600.0  # Binance cuts every connection at 24 h: rotate first
    stale_after_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    heartbeat_s: float = 30.0
    stable_after_s: float = 60.0
    connect_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    watchdog_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_streams_per_connection < 1:
            raise ValueError("max_streams_per_connection must be at least 1")
        timings = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if any(value <= 0 for value in timings.values()):
            raise ValueError(f"every limit must be positive: {timings}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        if 1.0 / self.heartbeat_s > self.max_control_messages_per_s:
            raise ValueError("heartbeat pings alone would exceed max_control_messages_per_s")


class _Lost(Exception):
    """The session cannot go on (socket, handshake or backfill failure): reconnect."""

    def __init__(self, reason: str, *, retry_after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason[:_REASON_CHARS]
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class _Ended:
    reason: str
    lived_s: float
    retry_after_s: float = 0.0


def kline_series(stream: str) -> tuple[str, str] | None:
    """``btcusdt@kline_1m`` -> ``("BTCUSDT", "1m")``; ``None`` for any other stream."""
    symbol, _, channel = stream.partition("@")
    if not channel.startswith("kline_") or "@" in channel:
        return None
    return symbol.upper(), channel.removeprefix("kline_")


class StreamConnection:
    """One combined-stream WebSocket for a fixed list of streams, reconnected until cancelled."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        streams: Sequence[str],
        clock: Clock,
        limits: StreamLimits,
        sequencer: KlineSequencer,
        on_message: OnMessage,
        fetch_klines: FetchKlines | None,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.url = url
        self.streams = tuple(streams)
        self._clock = clock
        self._limits = limits
        self._sequencer = sequencer
        self._on_message = on_message
        self._fetch_klines = fetch_klines
        self._rng = rng
        self._series = {s: key for s in self.streams if (key := kline_series(s)) is not None}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connected_at: float | None = None
        self._connected_since_ms: int | None = None
        self._last_frame: dict[str, float] = {}
        self._close_reason: str | None = None
        self._backfilling = False
        self.last_backoff_s = 0.0
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.last_error: str | None = None

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Keep the connection up until cancelled; only ``on_message`` errors escape."""
        failures = 0
        previous_immediate = False
        while True:
            ended = await self._session(session)
            self.counters["reconnects"] += 1
            stable = ended.lived_s >= self._limits.stable_after_s
            if stable:
                failures = 0
            immediate = ended.reason in _IMMEDIATE and (stable or not previous_immediate)
            previous_immediate = immediate
            delay = 0.0
            if not immediate:
                ceiling = self._limits.backoff_initial_s * 2 ** min(failures, _MAX_DOUBLINGS)
                delay = self._rng.uniform(0.0, min(self._limits.backoff_max_s, ceiling))
                delay = max(delay, ended.retry_after_s)
                failures += 1
            self.last_backoff_s = delay
            log.info(
                "market_stream_reconnecting",
                connection=self.name,
                reason=ended.reason,
                delay_s=round(delay, 3),
            )
            if delay > 0:
                await self._clock.sleep(delay)

    def due_reason(self, now: float) -> str | None:
        """What the watchdog should close this connection for (rotation or staleness)."""
        if self._connected_at is None or self._close_reason is not None or self._backfilling:
            return None
        if now - self._connected_at >= self._limits.max_age_s:
            return ROTATION
        return STALE if self.stale_streams(now) else None

    def stale_streams(self, now: float) -> list[str]:
        if self._connected_at is None:
            return []
        limit = self._limits.stale_after_s
        return [s for s, seen in self._last_frame.items() if now - seen >= limit]

    def request_close(self, reason: str) -> aiohttp.ClientWebSocketResponse | None:
        """Mark the session to end with ``reason``; return the socket to close (the caller
        closes it in a task of its own), or ``None`` when not connected or already closing."""
        ws = self._ws
        if ws is None or self._close_reason is not None:
            return None
        self._close_reason = reason
        counter = {ROTATION: "rotations", STALE: "stale_reconnects"}.get(reason)
        if counter is not None:
            self.counters[counter] += 1
        return ws

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connected": self._connected_at is not None,
            "connected_since_ms": self._connected_since_ms,
            "streams": len(self.streams),
            **self.counters,
            "last_backoff_s": self.last_backoff_s,
            "last_error": self.last_error,
        }

    async def _session(self, session: aiohttp.ClientSession) -> _Ended:
        self._close_reason = None
        started = self._clock.monotonic()
        try:
            ws = await self._connect(session)
        except _Lost as lost:
            return self._lost(lost, started)
        self._ws = ws
        self._connected_at = started = self._clock.monotonic()
        self._connected_since_ms = self._clock.now_ms()
        self._last_frame = dict.fromkeys(self.streams, started)
        log.info("market_stream_connected", connection=self.name, url=self.url)
        try:
            await self._backfill_all()
            reason = await self._read(ws)
            if reason not in _IMMEDIATE:
                self.last_error = reason
            return _Ended(reason, self._clock.monotonic() - started)
        except _Lost as lost:
            return self._lost(lost, started)
        finally:
            self._ws = None
            self._connected_at = None
            self._connected_since_ms = None
            await ws.close()

    def _lost(self, lost: _Lost, started: float) -> _Ended:
        self.last_error = lost.reason
        log.warning("market_stream_lost", connection=self.name, error=lost.reason)
        lived = self._clock.monotonic() - started if self._connected_at is not None else 0.0
        return _Ended("error", lived, lost.retry_after_s)

    async def _connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self._limits.close_timeout_s)
        try:
            async with asyncio.timeout(self._limits.connect_timeout_s):
                return await session.ws_connect(
                    self.url, timeout=timeout, heartbeat=self._limits.heartbeat_s, autoping=True
                )
        except _CONNECTION_ERRORS as exc:
            raise _Lost(f"connect failed: {exc!r}") from exc

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        counters = self.counters
        until_yield = FRAMES_PER_YIELD
        while True:
            try:
                message = await ws.receive()
            except _CONNECTION_ERRORS as exc:
                raise _Lost(f"receive failed: {exc!r}") from exc
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                counters["frames"] += 1
                outcome = await self._handle(message.data)
                if outcome == SERVER_SHUTDOWN:
                    return SERVER_SHUTDOWN
                until_yield -= 1
                if not until_yield or outcome == _BAR_CLOSED:
                    until_yield = FRAMES_PER_YIELD
                    await asyncio.sleep(0)
            elif message.type is aiohttp.WSMsgType.ERROR:
                raise _Lost(f"websocket error: {message.data!r}")
            elif message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                return self._close_reason or f"closed by server (code {ws.close_code})"

    async def _handle(self, raw: bytes | str) -> str | None:
        try:
            frame = decode_market_frame(raw)
        except MalformedFrame as exc:
            self._count_malformed(exc)
            return None
        stream = frame.stream
        if stream in self._last_frame:
            self._last_frame[stream] = self._clock.monotonic()
        message = frame.message
        if isinstance(message, Kline):
            # Every kline frame passes here: delivered inline, without coroutine layers of its
            # own, and with one sequencer lookup telling whether a backfill is due.
            emitted, gap_pending = self._sequencer.accept_from_stream(message)
            for kline in emitted:
                await self._on_message(
                    frame if kline is message else MarketFrame(stream=stream, message=kline)
                )
            if gap_pending:
                await self._backfill(stream, message.symbol, message.interval)
            if emitted and message.closed:
                return _BAR_CLOSED
        elif isinstance(message, BookTicker | MarkPrice):
            await self._on_message(frame)
        elif isinstance(message, ServerShutdown):
            self.counters["server_shutdowns"] += 1
            log.info("market_stream_server_shutdown", connection=self.name)
            return SERVER_SHUTDOWN
        elif isinstance(message, ControlReply):
            self.counters["control_replies"] += 1
        elif isinstance(message, UnknownEvent):
            self.counters["unknown_events"] += 1
        return None

    def _count_malformed(self, error: MalformedFrame) -> None:
        self.counters["malformed"] += 1
        count = self.counters["malformed"]
        # A venue sending garbage sends a lot of it: log a sample, the counter has the rest.
        if count <= _MALFORMED_LOGGED_FIRST or count % _MALFORMED_LOGGED_EVERY == 0:
            log.warning(
                "market_frame_malformed",
                connection=self.name,
                reason=str(error)[:_REASON_CHARS],
                malformed_total=count,
            )

    async def _emit(self, stream: str, kline: Kline) -> None:
        await self._on_message(MarketFrame(stream=stream, message=kline))

    async def _backfill_all(self) -> None:
        for stream, (symbol, interval) in self._series.items():
            if self._sequencer.missing_from(symbol, interval) is not None:
                await self._backfill(stream, symbol, interval)

    async def _backfill(self, stream: str, symbol: str, interval: str) -> None:
        self._backfilling = True
        try:
            await self._fill_from_rest(stream, symbol, interval)
        finally:
            self._backfilling = False
        # The stale clock does not run while we deliberately do not read.
        now = self._clock.monotonic()
        self._last_frame = dict.fromkeys(self._last_frame, now)

    async def _fill_from_rest(self, stream: str, symbol: str, interval: str) -> None:
        """Fetch from the first missing bar until caught up (the bar in progress or nothing
        newer) and no gap is pending; raise ``_Lost`` when that cannot be done now."""
        sequencer = self._sequencer
        if self._fetch_klines is None:
            released = sequencer.skip_gap(symbol, interval)
            if released:
                log.warning("kline_gap_skipped", stream=stream, reason="no REST source")
            for kline in released:
                await self._emit(stream, kline)
            return
        while (start := sequencer.missing_from(symbol, interval)) is not None:
            try:
                answer = await self._fetch_klines(symbol, interval, start)
            except _BACKFILL_ERRORS as exc:
                self.counters["backfill_failures"] += 1
                wait = exc.retry_after_s if isinstance(exc, RateLimitedError) else 0.0
                raise _Lost(f"backfill of {stream} failed: {exc!r}", retry_after_s=wait) from exc
            for kline in sequencer.accept_backfill(answer):
                await self._emit(stream, kline)
            progressed = sequencer.missing_from(symbol, interval) != start
            if sequencer.pending_gap(symbol, interval) is not None:
                if progressed:
                    continue
                self.counters["backfill_failures"] += 1
                raise _Lost(f"backfill of {stream} incomplete: REST has no bars from {start}")
            latest = max(answer, key=lambda kline: kline.open_time_ms, default=None)
            if not progressed or latest is None or not latest.closed:
                return
