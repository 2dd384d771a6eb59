"""What the live executor needs from a venue, and adapters that make the Binance clients fit.

`VenuePort` is five order calls — place, query by origClientOrderId, cancel, replace (spot
cancel-replace, futures modify in place), the trades of one exchange order — and four account
calls for reconciliation (`executor.reconciliation`): open orders, trades since a trade id
(paged until exhausted), balances and (futures) positions. Each returns domain types only and
raises the `app.errors` tree unchanged — the executor decides what a failure means (retry
before the exchange, resolve an unknown outcome, give up, refuse to trade).

`venue_port(client)` picks the adapter: `SpotPort` (FULL placement answers carry their
fills) or `FuturesPort` (the RESULT answer has no trade ids: fills come from the stream or
the trade list). Conditional futures orders (stop, take-profit) live in Binance's algo
service with their own ids and states; they are refused here before anything is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from app.domain.account import Balance, PositionSnapshot
from app.domain.enums import MarketType, Side
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from exchange.binance.futures import FuturesClient
from exchange.binance.order_params import UnsupportedOrder, is_futures_algo
from exchange.binance.spot import SpotClient

__all__ = [
    "TRADE_PAGE",
    "FuturesPort",
    "Placed",
    "Replaced",
    "SpotPort",
    "UnsupportedOrder",
    "VenuePort",
    "venue_port",
]


# Binance's largest myTrades/userTrades page.
TRADE_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class Placed:
    """A placement answer: the order's state and the fills the answer carried."""

    update: OrderUpdated
    fills: tuple[Fill, ...] = ()


@dataclass(frozen=True, slots=True)
class Replaced:
    """A cancel-replace (or modify) answer. Either part may have failed: its error message is
    set and its order is None."""

    canceled: OrderUpdated | None
    new_order: OrderUpdated | None
    new_fills: tuple[Fill, ...] = ()
    cancel_error: str | None = None
    new_order_error: str | None = None


class VenuePort(Protocol):
    """The executor's view of one market. Every call may raise `app.errors.VenueError`;
    `place` and `replace` raise `UnsupportedOrder` before sending anything they cannot
    express."""

    @property
    def market(self) -> MarketType: ...

    async def place(self, order: SubmitOrder) -> Placed: ...

    async def query(self, symbol: str, client_order_id: str) -> OrderUpdated: ...

    async def cancel(self, symbol: str, client_order_id: str) -> OrderUpdated: ...

    async def replace(self, cancel_client_order_id: str, new_order: SubmitOrder) -> Replaced:
        """Spot: atomically cancel one order and place `new_order` (a new client id).
        Futures: modify the order in place (`new_order` carries its id, price, quantity)."""
        ...

    async def trades(self, symbol: str, exchange_order_id: int) -> list[Fill]:
        """The account's trades of one exchange order (client order id left empty)."""
        ...

    async def open_orders(self, symbol: str) -> list[OrderUpdated]:
        """Every order of the account open on `symbol` (ours or not)."""
        ...

    async def trades_since(self, symbol: str, from_trade_id: int) -> list[Fill]:
        """Every trade of the account on `symbol` with an id >= `from_trade_id`, oldest
        first (client order id left empty: correlate by exchange order id)."""
        ...

    async def balances(self) -> tuple[Balance, ...]: ...

    async def positions(self) -> tuple[PositionSnapshot, ...]:
        """Futures positions (spot has none: empty)."""
        ...


def _wire_side(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


class SpotPort:
    def __init__(self, client: SpotClient) -> None:
        self.client = client

    @property
    def market(self) -> MarketType:
        return MarketType.SPOT

    async def place(self, order: SubmitOrder) -> Placed:
        update, fills = await self.client.place_order(order)
        return Placed(update, fills)

    async def query(self, symbol: str, client_order_id: str) -> OrderUpdated:
        return await self.client.query_order(symbol, client_order_id)

    async def cancel(self, symbol: str, client_order_id: str) -> OrderUpdated:
        return await self.client.cancel_order(symbol, client_order_id)

    async def replace(self, cancel_client_order_id: str, new_order: SubmitOrder) -> Replaced:
        result = await self.client.cancel_replace(cancel_client_order_id, new_order)
        return Replaced(
            canceled=result.canceled,
            new_order=result.new_order,
            new_fills=result.new_fills,
            cancel_error=None if result.cancel_error is None else result.cancel_error.message,
            new_order_error=(
                None if result.new_order_error is None else result.new_order_error.message
            ),
        )

    async def trades(self, symbol: str, exchange_order_id: int) -> list[Fill]:
        return await self.client.my_trades(symbol, order_id=exchange_order_id)

    async def open_orders(self, symbol: str) -> list[OrderUpdated]:
        return await self.client.open_orders(symbol)

    async def trades_since(self, symbol: str, from_trade_id: int) -> list[Fill]:
        return await _paged(
            lambda from_id: self.client.my_trades(symbol, from_id=from_id, limit=TRADE_PAGE),
            from_trade_id,
        )

    async def balances(self) -> tuple[Balance, ...]:
        return await self.client.account()

    async def positions(self) -> tuple[PositionSnapshot, ...]:
        return ()


class FuturesPort:
    def __init__(self, client: FuturesClient) -> None:
        self.client = client

    @property
    def market(self) -> MarketType:
        return MarketType.USDM

    async def place(self, order: SubmitOrder) -> Placed:
        if is_futures_algo(order):
            raise UnsupportedOrder(
                f"{order.order_type.value} is a conditional futures order: it goes to the "
                "algo-order endpoint (protective stops), not through the order executor"
            )
        update = await self.client.place_order(order)
        if not isinstance(update, OrderUpdated):  # pragma: no cover - guarded above
            raise UnsupportedOrder("the venue answered with a conditional order")
        return Placed(update)

    async def query(self, symbol: str, client_order_id: str) -> OrderUpdated:
        return await self.client.query_order(symbol, client_order_id)

    async def cancel(self, symbol: str, client_order_id: str) -> OrderUpdated:
        return await self.client.cancel_order(symbol, client_order_id)

    async def replace(self, cancel_client_order_id: str, new_order: SubmitOrder) -> Replaced:
        if new_order.price is None:
            raise UnsupportedOrder("a futures modify needs a price")
        update = await self.client.modify_order(
            new_order.symbol,
            cancel_client_order_id,
            side=_wire_side(new_order.side),
            quantity=new_order.quantity,
            price=new_order.price,
        )
        return Replaced(canceled=None, new_order=update)

    async def trades(self, symbol: str, exchange_order_id: int) -> list[Fill]:
        return await self.client.user_trades(symbol, order_id=exchange_order_id)

    async def open_orders(self, symbol: str) -> list[OrderUpdated]:
        return await self.client.open_orders(symbol)

    async def trades_since(self, symbol: str, from_trade_id: int) -> list[Fill]:
        return await _paged(
            lambda from_id: self.client.user_trades(symbol, from_id=from_id, limit=TRADE_PAGE),
            from_trade_id,
        )

    async def balances(self) -> tuple[Balance, ...]:
        return await self.client.balances()

    async def positions(self) -> tuple[PositionSnapshot, ...]:
        return await self.client.position_risk()


async def _paged(page: Callable[[int], Awaitable[list[Fill]]], from_trade_id: int) -> list[Fill]:
    """Trades from `from_trade_id` on, one full page after another until a short one."""
    trades: list[Fill] = []
    next_id = from_trade_id
    while True:
        batch = await page(next_id)
        trades.extend(batch)
        if len(batch) < TRADE_PAGE:
            return trades
        next_id = max(t.trade_id for t in batch) + 1


def venue_port(client: SpotClient | FuturesClient) -> SpotPort | FuturesPort:
    """The adapter for a Binance client (Spot or USDⓈ-M)."""
    if isinstance(client, SpotClient):
        return SpotPort(client)
    return FuturesPort(client)
