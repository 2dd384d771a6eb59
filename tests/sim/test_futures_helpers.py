"""Shared builders for the futures engine tests: symbols, quotes, JSON as the server sends it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from app.domain.enums import MarketType
from exchange.sim.catalog import SimSymbol, default_symbol
from exchange.sim.futures_engine import FuturesEngine
from exchange.sim.matching import MarkTick, Quote

D = Decimal
BTC = default_symbol("BTCUSDT", MarketType.USDM)
ETH = default_symbol("ETHUSDT", MarketType.USDM)
SYMBOLS: list[SimSymbol] = [BTC, ETH]


def engine(wallet: str = "10000", **kwargs: Any) -> FuturesEngine:
    return FuturesEngine(SYMBOLS, wallet={"USDT": D(wallet)}, **kwargs)


def quote(
    bid: str = "60000.00",
    ask: str = "60000.10",
    *,
    qty: str = "5",
    last: str | None = None,
    volume: str = "0",
    symbol: str = "BTCUSDT",
    time_ms: int = 1_000,
) -> Quote:
    return Quote(symbol, time_ms, D(bid), D(ask), D(qty), D(qty), D(last or bid), D(volume))


def mark(price: str, *, time_ms: int, next_ms: int, rate: str = "0.0001") -> MarkTick:
    return MarkTick("BTCUSDT", time_ms, D(price), D(price), D(rate), next_ms)


def params(**values: str) -> dict[str, str]:
    return {"symbol": "BTCUSDT", **values}


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        raise TypeError("float in a simulator answer")
    return value


def wire(obj: object) -> str:
    """The JSON text the simulator's server would send for ``obj``."""
    return json.dumps(_jsonable(obj))
