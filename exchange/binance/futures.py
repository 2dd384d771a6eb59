"""USDⓈ-M Futures REST endpoints (``/fapi``): typed calls over ``RestTransport``.

Conditional orders (stop, take-profit) go to the algo-order endpoints since Binance moved them
there; ``place_order`` routes by order type so callers never need to know. Account and
position reads use the v3 endpoints. The listenKey calls carry only the API key.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.account import Balance, PositionSnapshot
from app.domain.enums import MarketType
from app.domain.market import BookTicker, Kline, MarkPrice
from app.domain.orders import AlgoOrderUpdated, Fill, OrderUpdated, SubmitOrder
from app.errors import RejectedError
from exchange.binance.market_calls import (
    load_exchange_info,
    load_klines,
    trade_history_params,
)
from exchange.binance.order_params import (
    futures_algo_order_params,
    futures_order_params,
    is_futures_algo,
)
from exchange.binance.parse_account import (
    parse_futures_account,
    parse_futures_algo_order,
    parse_futures_algo_orders,
    parse_futures_balance,
    parse_futures_order,
    parse_futures_orders,
    parse_listen_key,
    parse_my_trades,
    parse_position_risk,
    parse_position_side_dual,
)
from exchange.binance.parse_market import (
    FundingInfo,
    parse_funding_info,
    parse_premium_index,
    parse_rest_book_ticker,
)
from exchange.binance.rest import RestTransport, Security
from exchange.binance.rules import ExchangeInfo

__all__ = ["FuturesClient", "kline_weight"]

# -4046 "No need to change margin type", -4059 "No need to change position side": the account
# is already as asked, which is success for an idempotent set-up call.
_ALREADY_SET = {-4046, -4059}


def kline_weight(limit: int) -> int:
    """Futures klines cost more the more rows are asked for."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


class FuturesClient:
    market = MarketType.USDM

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport

    async def server_time_ms(self) -> int:
        return await self.transport.fetch_server_time_ms()

    async def exchange_info(self) -> ExchangeInfo:
        return await load_exchange_info(
            self.transport, "/fapi/v1/exchangeInfo", (), weight=1, market=MarketType.USDM
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
            "/fapi/v1/klines",
            symbol,
            interval,
            start_ms=start_ms,
            end_ms=end_ms,
            limit=limit,
            weight=kline_weight(limit),
        )

    async def book_tickers(self, symbol: str | None = None) -> list[BookTicker]:
        params = [("symbol", symbol)] if symbol else []
        body = await self.transport.request(
            "GET", "/fapi/v1/ticker/bookTicker", params, weight=2 if symbol else 5
        )
        return parse_rest_book_ticker(body)

    async def premium_index(self, symbol: str | None = None) -> list[MarkPrice]:
        params = [("symbol", symbol)] if symbol else []
        body = await self.transport.request(
            "GET", "/fapi/v1/premiumIndex", params, weight=1 if symbol else 10
        )
        return parse_premium_index(body, now_ms=self.transport.server_time.timestamp_ms())

    async def funding_info(self) -> dict[str, FundingInfo]:
        body = await self.transport.request("GET", "/fapi/v1/fundingInfo", weight=1)
        return parse_funding_info(body)

    async def account(self) -> tuple[tuple[Balance, ...], tuple[PositionSnapshot, ...]]:
        body = await self.transport.request(
            "GET", "/fapi/v3/account", security=Security.SIGNED, weight=5
        )
        return parse_futures_account(body)

    async def balances(self) -> tuple[Balance, ...]:
        body = await self.transport.request(
            "GET", "/fapi/v3/balance", security=Security.SIGNED, weight=5
        )
        return parse_futures_balance(body)

    async def position_risk(self, symbol: str | None = None) -> tuple[PositionSnapshot, ...]:
        params = [("symbol", symbol)] if symbol else []
        body = await self.transport.request(
            "GET", "/fapi/v3/positionRisk", params, security=Security.SIGNED, weight=5
        )
        return parse_position_risk(body)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        await self.transport.request(
            "POST",
            "/fapi/v1/leverage",
            [("symbol", symbol), ("leverage", leverage)],
            security=Security.SIGNED,
            idempotent=True,  # setting the same value twice is harmless
        )

    async def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """``ISOLATED`` or ``CROSSED``; already being that type counts as success."""
        await self._setup_call(
            "/fapi/v1/marginType", [("symbol", symbol), ("marginType", margin_type.upper())]
        )

    async def hedge_mode(self) -> bool:
        body = await self.transport.request(
            "GET", "/fapi/v1/positionSide/dual", security=Security.SIGNED, weight=30
        )
        return parse_position_side_dual(body)

    async def set_hedge_mode(self, enabled: bool) -> None:
        await self._setup_call("/fapi/v1/positionSide/dual", [("dualSidePosition", enabled)])

    async def _setup_call(self, path: str, params: Sequence[tuple[str, object]]) -> None:
        try:
            await self.transport.request(
                "POST", path, params, security=Security.SIGNED, idempotent=True
            )
        except RejectedError as error:
            if error.code not in _ALREADY_SET:
                raise

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdated]:
        params = [("symbol", symbol)] if symbol else []
        body = await self.transport.request(
            "GET",
            "/fapi/v1/openOrders",
            params,
            security=Security.SIGNED,
            weight=1 if symbol else 40,
        )
        return parse_futures_orders(body)

    async def place_order(self, order: SubmitOrder) -> OrderUpdated | AlgoOrderUpdated:
        """MARKET/LIMIT to ``/fapi/v1/order``, conditional types to ``/fapi/v1/algoOrder``."""
        if is_futures_algo(order):
            body = await self.transport.request(
                "POST",
                "/fapi/v1/algoOrder",
                futures_algo_order_params(order),
                security=Security.SIGNED,
                orders=1,
                idempotent=False,
            )
            return parse_futures_algo_order(body)
        body = await self.transport.request(
            "POST",
            "/fapi/v1/order",
            futures_order_params(order),
            security=Security.SIGNED,
            weight=0,  # futures placement counts against the order limits, not IP weight
            orders=1,
            idempotent=False,
        )
        return parse_futures_order(body)

    async def modify_order(
        self, symbol: str, client_order_id: str, *, side: str, quantity: object, price: object
    ) -> OrderUpdated:
        """Change a LIMIT order's price/quantity in place (keeps queue position rules)."""
        body = await self.transport.request(
            "PUT",
            "/fapi/v1/order",
            [
                ("symbol", symbol),
                ("origClientOrderId", client_order_id),
                ("side", side),
                ("quantity", quantity),
                ("price", price),
            ],
            security=Security.SIGNED,
            orders=1,
            idempotent=False,
        )
        return parse_futures_order(body)

    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdated:
        body = await self.transport.request(
            "GET",
            "/fapi/v1/order",
            [("symbol", symbol), ("origClientOrderId", client_order_id)],
            security=Security.SIGNED,
        )
        return parse_futures_order(body)

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderUpdated:
        body = await self.transport.request(
            "DELETE",
            "/fapi/v1/order",
            [("symbol", symbol), ("origClientOrderId", client_order_id)],
            security=Security.SIGNED,
            idempotent=True,
        )
        return parse_futures_order(body)

    async def query_algo_order(self, client_algo_id: str) -> AlgoOrderUpdated:
        body = await self.transport.request(
            "GET",
            "/fapi/v1/algoOrder",
            [("clientAlgoId", client_algo_id)],
            security=Security.SIGNED,
        )
        return parse_futures_algo_order(body)

    async def cancel_algo_order(self, client_algo_id: str) -> None:
        """Cancel a conditional order. The answer only echoes the ids; the new state arrives
        as ALGO_UPDATE on the user stream (or via ``query_algo_order``)."""
        await self.transport.request(
            "DELETE",
            "/fapi/v1/algoOrder",
            [("clientAlgoId", client_algo_id)],
            security=Security.SIGNED,
            idempotent=True,
        )

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrderUpdated]:
        params = [("symbol", symbol)] if symbol else []
        body = await self.transport.request(
            "GET",
            "/fapi/v1/openAlgoOrders",
            params,
            security=Security.SIGNED,
            weight=1 if symbol else 40,
        )
        return parse_futures_algo_orders(body)

    async def user_trades(
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
            "GET", "/fapi/v1/userTrades", params, security=Security.SIGNED, weight=5
        )
        return parse_my_trades(body, market=MarketType.USDM)

    async def create_listen_key(self) -> str:
        body = await self.transport.request(
            "POST", "/fapi/v1/listenKey", security=Security.API_KEY, idempotent=True
        )
        return parse_listen_key(body)

    async def keepalive_listen_key(self) -> None:
        """Extends the key's life by 60 minutes; -1125 means it is gone (NotFoundError)."""
        await self.transport.request(
            "PUT", "/fapi/v1/listenKey", security=Security.API_KEY, idempotent=True
        )

    async def close_listen_key(self) -> None:
        await self.transport.request(
            "DELETE", "/fapi/v1/listenKey", security=Security.API_KEY, idempotent=True
        )
