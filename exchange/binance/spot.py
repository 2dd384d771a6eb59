"""Spot REST endpoints (``/api/v3``): typed calls over ``RestTransport``.

Weights are Binance's documented request weights; ``orders=1`` marks calls that count against
the account's ORDERS limits. Placement and cancel-replace are not idempotent and are never
retried here; cancels and reads are.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from app.domain.account import Balance
from app.domain.enums import MarketType
from app.domain.market import BookTicker, Kline
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from exchange.binance.market_calls import (
    load_exchange_info,
    load_klines,
    trade_history_params,
)
from exchange.binance.order_params import spot_order_params
from exchange.binance.parse_account import (
    CancelReplaceResult,
    parse_cancel_replace,
    parse_my_trades,
    parse_spot_account,
    parse_spot_order,
    parse_spot_orders,
)
from exchange.binance.parse_market import parse_rest_book_ticker
from exchange.binance.rest import RestTransport, Security
from exchange.binance.rules import ExchangeInfo

__all__ = ["SpotClient"]


class SpotClient:
    market = MarketType.SPOT

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport

    async def server_time_ms(self) -> int:
        return await self.transport.fetch_server_time_ms()

    async def exchange_info(self, symbols: Sequence[str] = ()) -> ExchangeInfo:
        """Symbol rules for ``symbols`` (all when empty); also installs the rate-limit rules."""
        params: list[tuple[str, object]] = []
        if symbols:
            params.append(("symbols", _json_list(symbols)))
        return await load_exchange_info(
            self.transport, "/api/v3/exchangeInfo", params, weight=20, market=MarketType.SPOT
        )

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        return await load_klines(
            self.transport,
            "/api/v3/klines",
            symbol,
            interval,
            start_ms=start_ms,
            end_ms=end_ms,
            limit=limit,
            weight=2,
        )

    async def book_tickers(self, symbol: str | None = None) -> list[BookTicker]:
        params = [("symbol", symbol)] if symbol else []
        weight = 2 if symbol else 4
        body = await self.transport.request(
            "GET", "/api/v3/ticker/bookTicker", params, weight=weight
        )
        return parse_rest_book_ticker(body)

    async def account(self) -> tuple[Balance, ...]:
        body = await self.transport.request(
            "GET",
            "/api/v3/account",
            [("omitZeroBalances", True)],
            security=Security.SIGNED,
            weight=20,
        )
        return parse_spot_account(body)

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdated]:
        params = [("symbol", symbol)] if symbol else []
        body = await self.transport.request(
            "GET",
            "/api/v3/openOrders",
            params,
            security=Security.SIGNED,
            weight=6 if symbol else 80,
        )
        return parse_spot_orders(body)

    async def all_orders(
        self, symbol: str, *, from_order_id: int | None = None, limit: int = 1000
    ) -> list[OrderUpdated]:
        """Every order of ``symbol``, open or final, in id order: from ``from_order_id`` on
        when given, else the most recent ``limit`` (at most 1000; page with the last id + 1)."""
        params: list[tuple[str, str | int]] = [("symbol", symbol), ("limit", limit)]
        if from_order_id is not None:
            params.append(("orderId", from_order_id))
        body = await self.transport.request(
            "GET", "/api/v3/allOrders", params, security=Security.SIGNED, weight=20
        )
        return parse_spot_orders(body)

    async def place_order(self, order: SubmitOrder) -> tuple[OrderUpdated, tuple[Fill, ...]]:
        """Send a new order. Raises ``StatusUnknownError`` when the outcome was lost."""
        body = await self.transport.request(
            "POST",
            "/api/v3/order",
            spot_order_params(order),
            security=Security.SIGNED,
            weight=1,
            orders=1,
            idempotent=False,
        )
        return parse_spot_order(body)

    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdated:
        body = await self.transport.request(
            "GET",
            "/api/v3/order",
            [("symbol", symbol), ("origClientOrderId", client_order_id)],
            security=Security.SIGNED,
            weight=4,
        )
        return parse_spot_order(body)[0]

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderUpdated:
        body = await self.transport.request(
            "DELETE",
            "/api/v3/order",
            [("symbol", symbol), ("origClientOrderId", client_order_id)],
            security=Security.SIGNED,
            weight=1,
            idempotent=True,
        )
        return parse_spot_order(body)[0]

    async def cancel_replace(
        self, cancel_client_order_id: str, new_order: SubmitOrder
    ) -> CancelReplaceResult:
        """Atomically cancel one order and place another (``STOP_ON_FAILURE``)."""
        params = [
            ("cancelReplaceMode", "STOP_ON_FAILURE"),
            ("cancelOrigClientOrderId", cancel_client_order_id),
            *spot_order_params(new_order),
        ]
        body = await self.transport.request(
            "POST",
            "/api/v3/order/cancelReplace",
            params,
            security=Security.SIGNED,
            weight=1,
            orders=1,
            idempotent=False,
        )
        return parse_cancel_replace(body)

    async def my_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        order_id: int | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        params = trade_history_params(
            symbol, from_id=from_id, order_id=order_id, start_ms=start_ms, limit=limit
        )
        body = await self.transport.request(
            "GET",
            "/api/v3/myTrades",
            params,
            security=Security.SIGNED,
            weight=5 if order_id is not None else 20,
        )
        return parse_my_trades(body, market=MarketType.SPOT)


def _json_list(values: Sequence[str]) -> str:
    # exchangeInfo takes symbols=["BTCUSDT","ETHUSDT"]; the query encoder percent-encodes it.
    return msgspec.json.encode(list(values)).decode()
