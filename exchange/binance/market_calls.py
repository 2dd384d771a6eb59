"""REST calls whose shape Spot and USDⓈ-M share except for the path and weight.

``SpotClient`` and ``FuturesClient`` keep their own typed methods (paths, weights and
parameters differ); the common steps — reading exchangeInfo and installing its rate limits,
fetching klines and judging the open bar by server time, paging trade history — live here once.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.enums import MarketType
from app.domain.market import Kline
from exchange.binance.parse_market import parse_rest_klines
from exchange.binance.ratelimit import parse_rate_limits
from exchange.binance.rest import RestTransport
from exchange.binance.rules import ExchangeInfo, parse_exchange_info

__all__ = ["load_exchange_info", "load_klines", "trade_history_params"]


async def load_exchange_info(
    transport: RestTransport,
    path: str,
    params: Sequence[tuple[str, object]],
    *,
    weight: int,
    market: MarketType,
) -> ExchangeInfo:
    """Symbol rules, and the venue's current rate limits installed into the client's limiter."""
    body = await transport.request("GET", path, params, weight=weight)
    info = parse_exchange_info(body, market)
    rules = parse_rate_limits(info.rate_limits_raw)
    if rules:
        transport.limiter.set_rules(rules)
    return info


async def load_klines(
    transport: RestTransport,
    path: str,
    symbol: str,
    interval: str,
    *,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    weight: int,
) -> list[Kline]:
    """Klines; the last row is ``closed`` only once its close time passed on the server clock."""
    params: list[tuple[str, object]] = [
        ("symbol", symbol),
        ("interval", interval),
        ("startTime", start_ms),
        ("endTime", end_ms),
        ("limit", limit),
    ]
    body = await transport.request("GET", path, params, weight=weight)
    now_ms = transport.server_time.timestamp_ms()
    return parse_rest_klines(body, symbol=symbol, interval=interval, now_ms=now_ms)


def trade_history_params(
    symbol: str, *, from_id: int | None, order_id: int | None, start_ms: int | None, limit: int
) -> list[tuple[str, object]]:
    return [
        ("symbol", symbol),
        ("orderId", order_id),
        ("fromId", from_id),
        ("startTime", start_ms),
        ("limit", limit),
    ]
