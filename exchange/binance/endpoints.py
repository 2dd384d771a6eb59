"""Base URLs for every Binance surface, with presets per environment and the local simulator.

Nothing else in the client builds a host name: every URL comes from an ``Endpoints`` value, so
switching to testnet, demo, a proxy or the simulator is a configuration change only.

Futures market streams are routed by path since 2025: ``/public`` carries high-frequency book
data (``@bookTicker``, ``@depth``), ``/market`` the regular market data (klines, markPrice,
trades, tickers) and ``/private`` user data. A stream sent to the wrong route is silently never
delivered, hence three separate URLs (``exchange.binance.streams.route_for`` picks one).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

Environment = Literal["mainnet", "testnet", "demo"]

__all__ = ["PRESETS", "Endpoints", "Environment", "endpoints_for", "sim_endpoints"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    spot_rest: str
    spot_ws_api: str
    spot_streams: str  # base for /ws/<stream> and /stream?streams=...
    futures_rest: str
    futures_ws_api: str
    futures_public: str  # base for /ws and /stream on the /public route
    futures_market: str  # the /market route: klines, bookTicker, markPrice
    futures_private: str  # the /private route: user data by listenKey

    def with_overrides(self, overrides: dict[str, str | None]) -> Endpoints:
        """Replace the URLs given (``None`` keeps the preset); trailing slashes are dropped."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown endpoint names: {sorted(unknown)}")
        chosen = {k: v.rstrip("/") for k, v in overrides.items() if v is not None}
        return replace(self, **chosen)

    def is_loopback_only(self) -> bool:
        """True when every URL points at this machine (tests and the simulator)."""
        return all(_is_loopback(getattr(self, f.name)) for f in fields(self))


def _is_loopback(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host in {"127.0.0.1", "localhost", "::1"}


PRESETS: dict[Environment, Endpoints] = {
    "mainnet": Endpoints(
        spot_rest="https://api.binance.com",
        spot_ws_api="wss://ws-api.binance.com:443/ws-api/v3",
        spot_streams="wss://stream.binance.com:9443",
        futures_rest="https://fapi.binance.com",
        futures_ws_api="wss://ws-fapi.binance.com/ws-fapi/v1",
        futures_public="wss://fstream.binance.com/public",
        futures_market="wss://fstream.binance.com/market",
        futures_private="wss://fstream.binance.com/private",
    ),
    "testnet": Endpoints(
        spot_rest="https://testnet.binance.vision",
        spot_ws_api="wss://ws-api.testnet.binance.vision/ws-api/v3",
        spot_streams="wss://stream.testnet.binance.vision",
        futures_rest="https://testnet.binancefuture.com",
        futures_ws_api="wss://testnet.binancefuture.com/ws-fapi/v1",
        futures_public="wss://fstream.binancefuture.com/public",
        futures_market="wss://fstream.binancefuture.com/market",
        futures_private="wss://fstream.binancefuture.com/private",
    ),
    "demo": Endpoints(
        spot_rest="https://demo-api.binance.com",
        spot_ws_api="wss://demo-ws-api.binance.com/ws-api/v3",
        spot_streams="wss://demo-stream.binance.com",
        futures_rest="https://demo-fapi.binance.com",
        futures_ws_api="wss://demo-ws-fapi.binance.com/ws-fapi/v1",
        futures_public="wss://demo-fstream.binance.com/public",
        futures_market="wss://demo-fstream.binance.com/market",
        futures_private="wss://demo-fstream.binance.com/private",
    ),
}


def sim_endpoints(host: str = "127.0.0.1", port: int = 8765) -> Endpoints:
    """The simulator serves every surface from one loopback port, on Binance's own paths."""
    http = f"http://{host}:{port}"
    ws = f"ws://{host}:{port}"
    return Endpoints(
        spot_rest=http,
        spot_ws_api=f"{ws}/ws-api/v3",
        spot_streams=ws,
        futures_rest=http,
        futures_ws_api=f"{ws}/ws-fapi/v1",
        futures_public=f"{ws}/fstream/public",
        futures_market=f"{ws}/fstream/market",
        futures_private=f"{ws}/fstream/private",
    )


def endpoints_for(environment: Environment, overrides: dict[str, str | None]) -> Endpoints:
    return PRESETS[environment].with_overrides(overrides)
