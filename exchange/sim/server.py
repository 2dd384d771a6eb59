"""``SimExchange``: the whole simulator on one loopback port, built from ``SimOptions``.

Binance's surfaces, on Binance's paths (``exchange.binance.endpoints.sim_endpoints`` points
the real client at them):

- REST ``/api/v3/...`` (spot) and ``/fapi/v1|v3/...`` (USD-M);
- WebSocket API ``/ws-api/v3`` (spot, with the user-data subscription) and ``/ws-fapi/v1``;
- market streams ``/stream`` and ``/ws/<name>`` (spot), ``/fstream/public|market/...``
  (futures), and the futures user-data stream ``/fstream/private/ws?listenKey=...``;
- the admin API ``/sim/admin/...`` (faults, status) that ``tradebus sim fault`` talks to.

Each market has its own engine, market timeline and pump; spot and futures symbols of the
same name follow the same synthetic path (same seed), as a perpetual tracks its spot market.

Time: the server clock (``/time``, order and event times) is the given ``Clock`` plus any
injected skew; market time (kline and mark-price times) is simulated. A synthetic market at
speed 1 runs on the wall clock ("live": after a restart it catches up to now, the market
having moved meanwhile); any other speed, and every replay, continues where it stopped.

State: with ``state_file`` set, engines and market positions are saved every
``state_save_interval_s`` and on shutdown, and a new ``SimExchange`` continues from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from app.domain.clock import Clock
from app.domain.enums import MarketType
from exchange.binance.endpoints import Endpoints, sim_endpoints
from exchange.binance.kline_gaps import interval_ms
from exchange.sim.admin import add_admin_routes
from exchange.sim.auth import KeyStore
from exchange.sim.catalog import SimSymbol, default_symbol
from exchange.sim.faults import FaultInjector, FaultKind, FaultRule
from exchange.sim.futures_engine import FuturesEngine
from exchange.sim.gateway import SimGateway, Venue
from exchange.sim.kline_files import load_klines_file
from exchange.sim.market_api import MarketData
from exchange.sim.market_feed import SimMarketFeed, SymbolMarket, book_quantity_unit
from exchange.sim.options import SimOptions
from exchange.sim.price_sources import PriceSource, ReplayMarket
from exchange.sim.private_stream import SimPrivateStreamServer
from exchange.sim.rest_server import RestRoute, SimRestServer
from exchange.sim.routes import (
    FUTURES_REST,
    FUTURES_WS_API,
    SPOT_REST,
    SPOT_WS_API,
    futures_operations,
    spot_operations,
)
from exchange.sim.spot_engine import SpotEngine
from exchange.sim.state_file import StateFileError, StateSaver, load_state, save_state
from exchange.sim.stream_server import SimStreamServer
from exchange.sim.synthetic import SyntheticMarket
from exchange.sim.timeline import MarketTimeline
from exchange.sim.usage import FUTURES_USAGE, SPOT_USAGE, UsageMeter
from exchange.sim.user_hub import ListenKeys, UserEventHub
from exchange.sim.ws_api_server import SimWsApiServer

__all__ = ["SimExchange", "bind_socket"]

log = structlog.get_logger(__name__)

_STATE_VERSION: Final = 1


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port), bound now so the port is
    known (and reserved) before anything connects."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Market:
    """One market's moving parts: engine, timeline, streams, gateway and user-data hub."""

    def __init__(
        self,
        *,
        venue: Venue,
        engine: SpotEngine | FuturesEngine,
        feed: SimMarketFeed,
        symbols: Sequence[SimSymbol],
        clock: Clock,
        faults: FaultInjector,
        options: SimOptions,
        start_ms: int,
        step_ms: int,
    ) -> None:
        self.venue = venue
        self.engine = engine
        self.hub = UserEventHub()

        def server_now_ms() -> int:
            return clock.now_ms() + faults.clock_skew_ms(venue)

        self.server_now_ms = server_now_ms
        on_mark = engine.on_mark if isinstance(engine, FuturesEngine) else None
        self.timeline = MarketTimeline(
            feed,
            engine,
            server_now_ms=server_now_ms,
            publish=self.hub.publish,
            on_mark=on_mark,
        )
        self.streams = SimStreamServer(
            self.timeline,
            clock=clock,
            speed=options.speed,
            start_ms=start_ms,
            step_ms=step_ms,
            server_now_ms=server_now_ms,
        )
        self.gateway = SimGateway(
            venue=venue,
            clock=clock,
            faults=faults,
            usage=UsageMeter(SPOT_USAGE if venue is Venue.SPOT else FUTURES_USAGE),
            hub=self.hub,
            drain_events=engine.drain_events,
            server_now_ms=server_now_ms,
        )
        self.market_data = MarketData(
            symbols=symbols, timeline=self.timeline, futures=venue is Venue.FUTURES
        )


class SimExchange:
    def __init__(
        self,
        options: SimOptions,
        *,
        clock: Clock,
        sock: socket.socket | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._sock = sock
        self.keys = KeyStore(options.api_keys)
        self.faults = FaultInjector(
            seed=options.fault_seed if options.fault_seed is not None else options.seed,
            clock=clock,
        )
        state = load_state(options.state_file) if options.state_file is not None else None
        if state is not None:
            _check_state(state, options)
        now_ms = clock.now_ms()
        bar_ms = interval_ms(options.interval)
        if bar_ms is None:
            raise ValueError(f"unsupported interval {options.interval!r}")
        origin_ms = (
            int(state["origin_ms"])
            if state is not None
            else options.start_ms
            if options.start_ms is not None
            else now_ms - now_ms % bar_ms - options.history_bars * bar_ms
        )
        self.origin_ms = origin_ms
        live = options.speed == 1.0 and not any(f.klines_file for f in options.feeds.values())
        step_ms = max(1, bar_ms // options.updates_per_bar)
        self.spot = self._build_market(Venue.SPOT, state, origin_ms, now_ms, live, step_ms)
        self.futures = self._build_market(Venue.FUTURES, state, origin_ms, now_ms, live, step_ms)
        self.listen_keys = ListenKeys(seed=options.seed)
        self.private = SimPrivateStreamServer(
            clock=clock,
            hub=self.futures.hub,
            listen_keys=self.listen_keys,
            server_now_ms=self.futures.server_now_ms,
        )
        self._ws_apis = self._build_ws_apis()
        self._register_fault_actions()
        self.saver = (
            StateSaver(options.state_file, self.snapshot, clock, options.state_save_interval_s)
            if options.state_file is not None
            else None
        )
        self.port: int | None = sock.getsockname()[1] if sock is not None else None
        self._runner: web.AppRunner | None = None

    # -- building ------------------------------------------------------------------------------

    def _build_market(
        self,
        venue: Venue,
        state: Mapping[str, Any] | None,
        origin_ms: int,
        now_ms: int,
        live: bool,
        step_ms: int,
    ) -> _Market:
        options = self.options
        futures = venue is Venue.FUTURES
        names = options.futures_symbols if futures else options.spot_symbols
        market_type = MarketType.USDM if futures else MarketType.SPOT
        symbols = [
            default_symbol(
                name,
                market_type,
                start_price=options.feeds[name].start_price if name in options.feeds else None,
            )
            for name in names
        ]
        sources = {s.symbol: self._source(s, origin_ms) for s in symbols}
        feed = SimMarketFeed(
            sources,
            {
                s.symbol: SymbolMarket(
                    tick_size=s.tick_size,
                    futures=futures,
                    spread_ticks=options.spread_ticks,
                    book_quantity_unit=book_quantity_unit(s.start_price, s.step_size),
                )
                for s in symbols
            },
            seed=options.seed,
            updates_per_bar=options.updates_per_bar,
        )
        saved = state.get(venue.value) if state is not None else None
        engine: SpotEngine | FuturesEngine
        if saved is not None and futures:
            engine = FuturesEngine.from_snapshot(
                saved["engine"], symbols, fees=options.futures_fees, fill_model=options.fill_model
            )
        elif saved is not None:
            engine = SpotEngine.from_snapshot(
                saved["engine"], symbols, fees=options.spot_fees, fill_model=options.fill_model
            )
        elif futures:
            engine = FuturesEngine(
                symbols,
                wallet=options.futures_wallet,
                fees=options.futures_fees,
                fill_model=options.fill_model,
                seed=options.seed,
                default_leverage=options.default_leverage,
            )
        else:
            engine = SpotEngine(
                symbols,
                balances=options.spot_balances,
                fees=options.spot_fees,
                fill_model=options.fill_model,
                seed=options.seed,
            )
        bar_ms = step_ms * options.updates_per_bar
        if live:
            resume_ms = now_ms
        elif saved is not None:
            resume_ms = int(saved["market_ms"])
        else:
            first_open = min(_first_open_ms(source, origin_ms) for source in sources.values())
            resume_ms = first_open + options.history_bars * bar_ms
        market = _Market(
            venue=venue,
            engine=engine,
            feed=feed,
            symbols=symbols,
            clock=self._clock,
            faults=self.faults,
            options=options,
            start_ms=resume_ms,
            step_ms=step_ms,
        )
        market.timeline.fast_forward(resume_ms)
        return market

    def _source(self, symbol: SimSymbol, origin_ms: int) -> PriceSource:
        options = self.options
        feed = options.feeds.get(symbol.symbol)
        if feed is not None and feed.klines_file is not None:
            klines = load_klines_file(
                feed.klines_file, symbol=symbol.symbol, interval=options.interval
            )
            return ReplayMarket(klines, loop=feed.loop)
        bar_ms = interval_ms(options.interval)
        assert bar_ms is not None
        return SyntheticMarket(
            symbol.symbol,
            seed=hash_seed(options.seed, symbol.symbol),
            start_price=symbol.start_price,
            tick_size=symbol.tick_size,
            interval_ms=bar_ms,
            start_ms=origin_ms,
        )

    def _build_ws_apis(self) -> dict[Venue, SimWsApiServer]:
        spot_ops = spot_operations(self.spot.engine, self.spot.market_data)  # type: ignore[arg-type]
        futures_ops = futures_operations(
            self.futures.engine,  # type: ignore[arg-type]
            self.futures.market_data,
            self.listen_keys,
        )
        self._rest_routes = [
            RestRoute(method, path, spot_ops[name], self.spot.gateway)
            for method, path, name in SPOT_REST
        ] + [
            RestRoute(method, path, futures_ops[name], self.futures.gateway)
            for method, path, name in FUTURES_REST
        ]
        spot_ws = SimWsApiServer(
            clock=self._clock,
            keys=self.keys,
            gateway=self.spot.gateway,
            operations={method: spot_ops[name] for method, name in SPOT_WS_API.items()},
            hub=self.spot.hub,
        )
        futures_ws = SimWsApiServer(
            clock=self._clock,
            keys=self.keys,
            gateway=self.futures.gateway,
            operations={method: futures_ops[name] for method, name in FUTURES_WS_API.items()},
        )
        return {Venue.SPOT: spot_ws, Venue.FUTURES: futures_ws}

    def _register_fault_actions(self) -> None:
        faults = self.faults

        def markets(rule: FaultRule) -> list[_Market]:
            return [m for m in (self.spot, self.futures) if rule.market in (None, m.venue)]

        async def drop(rule: FaultRule) -> None:
            for market in markets(rule):
                market.streams.drop_all()
                self._ws_api(market.venue).drop_all()
                if market.venue is Venue.FUTURES:
                    self.private.drop_all()

        async def stall(rule: FaultRule) -> None:
            for market in markets(rule):
                market.streams.stall(rule.stall_s)

        async def shutdown(rule: FaultRule) -> None:
            for market in markets(rule):
                await market.streams.send_server_shutdown()
                await self._ws_api(market.venue).send_server_shutdown()
                if market.venue is Venue.FUTURES:
                    await self.private.send_server_shutdown()

        async def expire_listen_keys(rule: FaultRule) -> None:
            self.private.expire_all()

        faults.on_action(FaultKind.DROP_STREAMS, drop)
        faults.on_action(FaultKind.STALL_STREAMS, stall)
        faults.on_action(FaultKind.SERVER_SHUTDOWN, shutdown)
        faults.on_action(FaultKind.LISTEN_KEY_EXPIRED, expire_listen_keys)

        def apply_partial_fills() -> None:
            for market in (self.spot, self.futures):
                fraction = faults.partial_fill_fraction(market.venue)
                market.engine.fill_model = replace(
                    self.options.fill_model, partial_fraction=fraction
                )

        faults.on_change(apply_partial_fills)

    def _ws_api(self, venue: Venue) -> SimWsApiServer:
        return self._ws_apis[venue]

    def application(self) -> web.Application:
        app = web.Application()
        SimRestServer(clock=self._clock, keys=self.keys, routes=self._rest_routes).add_routes(app)
        self._ws_apis[Venue.SPOT].add_routes(app, "/ws-api/v3")
        self._ws_apis[Venue.FUTURES].add_routes(app, "/ws-fapi/v1")
        self.spot.streams.add_routes(app)
        self.futures.streams.add_routes(app, "/fstream/public")
        self.futures.streams.add_routes(app, "/fstream/market")
        self.private.add_routes(app, "/fstream/private")
        add_admin_routes(app, self.faults, status=self.status)
        return app

    # -- running -------------------------------------------------------------------------------

    @property
    def endpoints(self) -> Endpoints:
        if self.port is None:
            raise RuntimeError("the simulator is not listening yet")
        return sim_endpoints(self.options.host, self.port)

    async def start(self) -> None:
        """Start listening (the pumps are not running yet: see ``run``)."""
        sock = self._sock or bind_socket(self.options.host, self.options.port)
        self._sock = sock
        self.port = sock.getsockname()[1]
        runner = web.AppRunner(
            self.application(), handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, sock).start()
        log.info("sim_listening", host=self.options.host, port=self.port)

    async def stop(self) -> None:
        """Stop listening and save the state a last time (after ``run`` was cancelled)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            self._save_final()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[SimExchange]:
        """Listening for the duration of the block (the pumps are not running: see ``run``)."""
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def run(self) -> None:
        """The pumps, key expiry and state saving, until cancelled (the owner's task group)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.spot.streams.run())
            group.create_task(self.futures.streams.run())
            group.create_task(self.private.run())
            if self.saver is not None:
                group.create_task(self._save_periodically(self.saver))

    async def serve_forever(self) -> None:
        """Listen and run until cancelled: ``tradebus sim`` and the embedded default."""
        async with self.serving():
            await self.run()

    async def _save_periodically(self, saver: StateSaver) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(saver.run())
            while True:
                saver.mark_dirty()
                await self._clock.sleep(self.options.state_save_interval_s)

    def _save_final(self) -> None:
        if self.options.state_file is None:
            return
        try:
            save_state(self.options.state_file, self.snapshot())
        except (OSError, StateFileError) as exc:
            log.error("sim_state_save_failed", error=str(exc))

    # -- state and status ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "sim_version": _STATE_VERSION,
            "seed": self.options.seed,
            "interval": self.options.interval,
            "origin_ms": self.origin_ms,
            "spot_symbols": list(self.options.spot_symbols),
            "futures_symbols": list(self.options.futures_symbols),
            **{
                market.venue.value: {
                    "market_ms": market.timeline.now_ms,
                    "engine": market.engine.snapshot(),
                }
                for market in (self.spot, self.futures)
            },
        }

    def status(self) -> dict[str, object]:
        return {
            "port": self.port,
            "seed": self.options.seed,
            "speed": self.options.speed,
            **{
                market.venue.value: {
                    "market_ms": market.timeline.now_ms,
                    "stream_connections": market.streams.connection_count,
                    "frames_sent": market.timeline.frames_sent,
                    "requests": market.gateway.requests,
                    "errors": market.gateway.errors,
                    "user_events": market.hub.published,
                    "user_subscribers": market.hub.subscriber_count,
                }
                for market in (self.spot, self.futures)
            },
            "faults": self.faults.snapshot(),
        }


def hash_seed(seed: int, symbol: str) -> int:
    """A per-symbol seed that is stable across runs (``hash()`` of a str is not)."""
    value = seed
    for char in symbol:
        value = (value * 131 + ord(char)) % (2**61 - 1)
    return value


def _first_open_ms(source: PriceSource, origin_ms: int) -> int:
    return source.first_open_ms if isinstance(source, ReplayMarket) else origin_ms


def _check_state(state: Mapping[str, Any], options: SimOptions) -> None:
    expected = {
        "sim_version": _STATE_VERSION,
        "seed": options.seed,
        "interval": options.interval,
        "spot_symbols": list(options.spot_symbols),
        "futures_symbols": list(options.futures_symbols),
    }
    for name, value in expected.items():
        if state.get(name) != value:
            path = options.state_file or Path("?")
            raise StateFileError(
                path,
                f"it was written with {name}={state.get(name)!r}, the simulator now has "
                f"{value!r}; start with the same settings, or remove the file to start afresh",
            )
