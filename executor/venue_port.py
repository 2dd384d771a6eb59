"""What the live executor needs from a venue, and adapters that make the Binance clients fit.

`VenuePort` is five calls: place, query by origClientOrderId, cancel, replace (spot
cancel-replace, futures modify in place) and the trades of one exchange order. Each returns
domain types only and raises the `app.errors` tree unchanged — the executor decides what a
failure means (retry before the exchange, resolve an unknown outcome, give up).

`venue_port(client)` picks the adapter: `SpotPort` (FULL placement answers carry their
fills) or `FuturesPort` (the RESULT answer has no trade ids: fills come from the stream or
the trade list). Conditional futures orders (stop, take-profit) live in Binance's algo
service with their own ids and states; they are refused here before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.domain.enums import MarketType, Side
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from exchange.binance.futures import FuturesClient
from exchange.binance.order_params import UnsupportedOrder, is_futures_algo
from exchange.binance.spot import SpotClient

__all__ = [
    "FuturesPort",
    "Placed",
    "Replaced",
    "SpotPort",
    "UnsupportedOrder",
    "VenuePort",
    "venue_port",
]


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


def venue_port(client: SpotClient | FuturesClient) -> SpotPort | FuturesPort:
    """The adapter for a Binance client (Spot or USDⓈ-M)."""
    if isinstance(client, SpotClient):
        return SpotPort(client)
    return FuturesPort(client)
