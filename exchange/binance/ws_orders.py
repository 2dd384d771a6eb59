"""Order entry over the Binance WebSocket API: one signed frame out, one answer back.

Spot (``ws-api/v3``) and USDⓈ-M (``ws-fapi/v1``) take the same order methods as REST under
other names: ``order.place``, ``order.status``, ``order.cancel``, plus ``order.cancelReplace``
on Spot and ``order.modify`` on Futures. Parameters come from ``order_params``, exactly as for
REST, and the ``result`` of an answer has the REST body's shape, so the REST parsers read it.
The connection, signing (sorted params), rate limits, ``-1021`` resync and the error classes are
``WsApiClient``'s; this module only chooses methods, weights and how a lost answer counts.

What a caller may do after a failure:

* ``place_order``, ``cancel_replace`` and ``modify_order`` are never sent twice. A timeout or a
  dropped connection once the frame went out is ``StatusUnknownError``: query the order by its
  client order id before anything else. An unreadable success answer is the same.
* ``cancel_order`` also reports a lost answer as ``StatusUnknownError``, but repeating it is
  safe: the order is canceled at most once, and a repeat of a cancel that did happen is refused
  as ``NotFoundError`` (-2011). The caller may resend it, here or over REST.
* ``query_order`` is a read: a lost answer is ``TransientError`` and it may be resent at will.

Futures conditional orders (stop, take-profit, trailing) are not placed here: Binance moved them
to its algo service, which this client reaches over REST only (``FuturesClient.place_order``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar, cast, overload

import msgspec

from app.domain.enums import MarketType, Side
from app.domain.orders import Fill, OrderUpdated, SubmitOrder
from app.errors import StatusUnknownError
from exchange.binance.order_params import (
    UnsupportedOrder,
    futures_order_params,
    is_futures_algo,
    spot_order_params,
)
from exchange.binance.parse_account import (
    CancelReplaceResult,
    parse_cancel_replace,
    parse_futures_order,
    parse_spot_order,
)
from exchange.binance.rest_payload import MalformedPayload
from exchange.binance.ws_api import WsApiClient

__all__ = ["SpotPlacement", "WsOrderEntry"]

SpotPlacement = tuple[OrderUpdated, tuple[Fill, ...]]
Placement = TypeVar("Placement", bound=SpotPlacement | OrderUpdated)
Parsed = TypeVar("Parsed")


@dataclass(frozen=True, slots=True)
class _Weights:
    """Request weight per method on one venue (placements also count one order)."""

    place: int
    status: int
    cancel: int
    amend: int  # order.cancelReplace on Spot, order.modify on Futures


# Spot: the WS API docs' weights, identical to REST. USDⓈ-M: placement weighs nothing on the
# IP limit (orders only), query and cancel 1, order.modify 1 as its trade page documents.
_WEIGHTS = {
    MarketType.SPOT: _Weights(place=1, status=4, cancel=1, amend=1),
    MarketType.USDM: _Weights(place=0, status=1, cancel=1, amend=1),
}


class WsOrderEntry(Generic[Placement]):
    """Place, query, cancel and amend orders on one ``WsApiClient`` connection.

    The client must be connected and its reader running (``WsApiClient.run``); a request made
    while it is not fails with ``TransientError`` before anything is sent, and the caller may
    then use REST. ``WsOrderEntry(client, MarketType.SPOT).place_order`` returns the order and
    its fills (``newOrderRespType=FULL``); on ``MarketType.USDM`` it returns the order alone.
    """

    @overload
    def __init__(
        self: WsOrderEntry[SpotPlacement],
        client: WsApiClient,
        market: Literal[MarketType.SPOT],
    ) -> None: ...

    @overload
    def __init__(
        self: WsOrderEntry[OrderUpdated],
        client: WsApiClient,
        market: Literal[MarketType.USDM],
    ) -> None: ...

    def __init__(self, client: WsApiClient, market: MarketType) -> None:
        self.client = client
        self.market = market
        self._weights = _WEIGHTS[market]

    @property
    def spot(self) -> bool:
        return self.market is MarketType.SPOT

    async def place_order(self, order: SubmitOrder) -> Placement:
        """Send a new order once. ``StatusUnknownError`` when its outcome was lost."""
        if self.spot:
            params = spot_order_params(order)
        else:
            if is_futures_algo(order):
                raise UnsupportedOrder(
                    f"{order.order_type.value} is a conditional order: the WebSocket API does "
                    "not place those here, send it to the REST algo endpoint "
                    "(POST /fapi/v1/algoOrder through FuturesClient.place_order)"
                )
            params = futures_order_params(order)
        result = await self._send("order.place", params, self._weights.place, orders=1)
        if self.spot:
            placed = self._read(
                "order.place", result, lambda body: parse_spot_order(body, request=order)
            )
            return cast(Placement, placed)
        return cast(Placement, self._read("order.place", result, parse_futures_order))

    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdated:
        """The order's current state (a read: safe to repeat)."""
        result = await self.client.request(
            "order.status",
            {"symbol": symbol, "origClientOrderId": client_order_id},
            signed=True,
            weight=self._weights.status,
        )
        return self._parse_order(_as_json(result))

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderUpdated:
        """Cancel an open order. A lost answer is ``StatusUnknownError``; the caller may send
        the cancel again (a repeat of one that took effect is refused as ``NotFoundError``)."""
        result = await self._send(
            "order.cancel",
            [("symbol", symbol), ("origClientOrderId", client_order_id)],
            self._weights.cancel,
        )
        return self._read("order.cancel", result, self._parse_order)

    async def cancel_replace(
        self, cancel_client_order_id: str, new_order: SubmitOrder
    ) -> CancelReplaceResult:
        """Spot only: cancel one order and place another (``STOP_ON_FAILURE``), sent once.

        A refusal of either half comes back as an error answer (400, or 409 when one half
        succeeded) and raises; the ``data`` telling which half took effect is not kept by
        ``WsApiClient``, so query both orders after a 409.
        """
        if not self.spot:
            raise UnsupportedOrder("cancel-replace is a spot method: use modify_order on futures")
        params = [
            ("cancelReplaceMode", "STOP_ON_FAILURE"),
            ("cancelOrigClientOrderId", cancel_client_order_id),
            *spot_order_params(new_order),
        ]
        result = await self._send("order.cancelReplace", params, self._weights.amend, orders=1)
        return self._read("order.cancelReplace", result, parse_cancel_replace)

    async def modify_order(
        self, symbol: str, client_order_id: str, *, side: Side, quantity: Decimal, price: Decimal
    ) -> OrderUpdated:
        """Futures only: change an open LIMIT order's quantity and price in place, sent once."""
        if self.spot:
            raise UnsupportedOrder("modify is a futures method: use cancel_replace on spot")
        params = [
            ("symbol", symbol),
            ("origClientOrderId", client_order_id),
            ("side", "BUY" if side is Side.BUY else "SELL"),
            ("quantity", quantity),
            ("price", price),
        ]
        result = await self._send("order.modify", params, self._weights.amend, orders=1)
        return self._read("order.modify", result, parse_futures_order)

    # -- helpers -----------------------------------------------------------------------------

    async def _send(
        self, method: str, params: Sequence[tuple[str, object]], weight: int, *, orders: int = 0
    ) -> Any:
        """A request that changes state: never resent here, a lost answer is unknown."""
        return await self.client.request(
            method, dict(params), signed=True, mutating=True, weight=weight, orders=orders
        )

    def _parse_order(self, body: bytes) -> OrderUpdated:
        if self.spot:
            return parse_spot_order(body)[0]
        return parse_futures_order(body)

    @staticmethod
    def _read(method: str, result: Any, parse: Callable[[bytes], Parsed]) -> Parsed:
        """Parse the ``result`` of a request that changed state. The venue said it succeeded,
        so an answer we cannot read leaves the order's state unknown rather than refused."""
        try:
            return parse(_as_json(result))
        except MalformedPayload as error:
            raise StatusUnknownError(
                f"answer unreadable, query the order: {error}", endpoint=method
            ) from error


def _as_json(result: Any) -> bytes:
    """The ``result`` as JSON text again, for the REST parsers (which read text).

    WsApiClient hands over decoded JSON; Binance writes amounts as strings, which come back
    unchanged (a bare JSON number would have been decoded to ``Decimal`` and comes back as its
    exact string, which the parsers read alike). A few µs on a FULL answer: see ws_order bench.
    """
    return msgspec.json.encode(result)
