"""Order entry, matching and fills of the futures engine (POST/PUT/DELETE/GET /fapi/v1/order).

``OrderFlow`` is the part of ``FuturesEngine`` that accepts, checks, matches, amends and cancels
orders and books fills into the account. Time-in-force semantics follow Binance USD-M:
MARKET and IOC remainders expire, GTC rests, FOK fills entirely or is refused (-5021), GTX is
refused when it would take (-5022). Reduce-only orders never grow or flip a position: they are
refused (-2022) when there is nothing to reduce, their fills are capped at the position size,
and a resting reduce-only order expires once the position it would reduce is gone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.errors import SimError
from exchange.sim.futures_account import max_notional
from exchange.sim.futures_params import (
    check_lot,
    check_min_notional,
    check_percent_price,
    check_price,
    decimal_param,
    enum_param,
    mandatory,
    optional_bool,
)
from exchange.sim.futures_positions import OpenOrderLoad, apply_fill, money
from exchange.sim.futures_queries import OrderQueries
from exchange.sim.futures_records import SimOrder, SimTrade
from exchange.sim.futures_wire import order_event, order_json
from exchange.sim.matching import Quote, crosses, resting_fill_quantity, taker_fills

__all__ = ["OrderFlow"]

_ORDER_TYPES: Final = (
    "LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)  # fmt: skip
_TIFS: Final = ("GTC", "IOC", "FOK", "GTX", "GTD")
_CLIENT_ID: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_ZERO: Final = Decimal(0)


def _reduces(position_amount: Decimal, side: str) -> Decimal:
    """How much a ``side`` order can reduce the position by (0: it would not reduce)."""
    if side == "SELL" and position_amount > 0:
        return position_amount
    if side == "BUY" and position_amount < 0:
        return -position_amount
    return _ZERO


class OrderFlow(OrderQueries):
    # --- requests

    def new_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """POST /fapi/v1/order (WS order.place): MARKET or LIMIT, one-way mode."""
        symbol = self.rules(mandatory(params, "symbol"))
        side = enum_param(params, "side", ("BUY", "SELL"))
        order_type = enum_param(params, "type", _ORDER_TYPES)
        if order_type not in ("LIMIT", "MARKET"):
            raise SimError(
                -4120,
                "Order type not supported for this endpoint. "
                "Please use the Algo Order API endpoints instead.",
            )
        if optional_bool(params, "closePosition"):
            raise SimError(-1106, "Parameter 'closePosition' sent when not required.")
        position_side = params.get("positionSide") or "BOTH"
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise SimError(-4060, "Invalid position side.")
        if position_side != "BOTH":
            raise SimError(-4061, "Order's position side does not match user's setting.")
        resp_type = enum_param(params, "newOrderRespType", ("ACK", "RESULT"), default="ACK")
        reduce_only = optional_bool(params, "reduceOnly")
        quantity = decimal_param(params, "quantity", required=True)
        assert quantity is not None
        market = order_type == "MARKET"
        if market:
            if params.get("price"):
                raise SimError(-1106, "Parameter 'price' sent when not required.")
            tif = "GTC"  # Binance shows MARKET orders with GTC
            price = _ZERO
        else:
            tif = enum_param(params, "timeInForce", _TIFS)
            if tif == "GTD":
                raise SimError(-1115, "Invalid timeInForce.")
            limit = decimal_param(params, "price", required=True)
            assert limit is not None
            price = limit
            check_price(symbol, price)
        check_lot(symbol, quantity, market=market)
        client_id = params.get("newClientOrderId") or ""
        if client_id:
            if not _CLIENT_ID.match(client_id):
                raise SimError(-4015, "Client order id is not valid.")
            if self.book.open_client_id_taken(symbol.symbol, client_id):
                raise SimError(-4116, "ClientOrderId is duplicated.")
        quote = self.quotes.get(symbol.symbol)
        ref_price = price
        if market:
            if quote is None:
                raise SimError(
                    -4131,
                    "The counterparty's best price does not meet the PERCENT_PRICE filter limit.",
                )
            ref_price = quote.ask if side == "BUY" else quote.bid
        check_min_notional(symbol, quantity * ref_price, reduce_only=reduce_only)
        if not market and (symbol.symbol in self.ledger.marks):
            check_percent_price(symbol, side, price, self.ledger.mark(symbol.symbol))
        position = self.ledger.position(symbol.symbol)
        if reduce_only and _reduces(position.amount, side) == 0:
            raise SimError(-2022, "ReduceOnly Order is rejected.")
        takes = quote is not None and (market or crosses(side, price, quote))
        if tif == "GTX" and takes:
            raise SimError(
                -5022,
                "Due to the order could not be executed as maker, "
                "the Post Only order will be rejected.",
            )
        if tif == "FOK" and not self._fok_fillable(
            symbol, side, quantity, price, quote, reduce_only
        ):
            raise SimError(
                -5021,
                "Due to the order could not be filled immediately, "
                "the FOK order has been rejected.",
            )
        if not reduce_only:
            self._check_margin(symbol, side, quantity, ref_price)
        order = SimOrder(
            symbol=symbol.symbol,
            order_id=self.book.new_order_id(symbol.symbol),
            client_order_id=client_id or self.book.new_client_id(symbol.symbol),
            side=side,
            order_type=order_type,
            time_in_force=tif,
            orig_qty=quantity,
            price=price,
            reduce_only=reduce_only,
            time_ms=now_ms,
            update_time_ms=now_ms,
        )
        self.book.add(order)
        self._order_event(order, "NEW", now_ms)
        ack = order_json(symbol, order)
        if takes and quote is not None:
            self._take(symbol, order, quote, now_ms)
        if order.is_open and (market or tif in ("IOC", "FOK")):
            self._finish(order, "EXPIRED", now_ms)
        return ack if resp_type == "ACK" else order_json(symbol, order)

    def cancel_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """DELETE /fapi/v1/order (WS order.cancel): -2011 for an unknown or finished order."""
        symbol = self.rules(mandatory(params, "symbol"))
        order = self.book.find(symbol.symbol, params, -2011)
        if not order.is_open:
            raise SimError(-2011, "Unknown order sent.")
        self._finish(order, "CANCELED", now_ms)
        return order_json(symbol, order)

    def modify_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """PUT /fapi/v1/order (WS order.modify): new price and quantity of an open LIMIT order.

        As documented by Binance: a refused amendment leaves the order as it was; the order is
        canceled instead when the new quantity is not above the filled quantity, or when a GTX
        order's new price would take liquidity. A price that now crosses fills as a taker.
        """
        symbol = self.rules(mandatory(params, "symbol"))
        side = enum_param(params, "side", ("BUY", "SELL"))
        quantity = decimal_param(params, "quantity", required=True)
        price = decimal_param(params, "price", required=True)
        assert quantity is not None
        assert price is not None
        order = self.book.find(symbol.symbol, params, -2013)
        if not order.is_open:
            raise SimError(-2013, "Order does not exist.")
        if order.order_type != "LIMIT":
            raise SimError(-5025, "Only limit order is supported.")
        if side != order.side:
            raise SimError(-1130, "Data sent for parameter 'side' is not valid.")
        check_price(symbol, price)
        check_lot(symbol, quantity, market=False)
        if quantity == order.orig_qty and price == order.price:
            raise SimError(-5027, "No need to modify the order.")
        check_min_notional(symbol, quantity * price, reduce_only=order.reduce_only)
        if symbol.symbol in self.ledger.marks:
            check_percent_price(symbol, side, price, self.ledger.mark(symbol.symbol))
        quote = self.quotes.get(symbol.symbol)
        takes = quote is not None and crosses(side, price, quote)
        if quantity <= order.executed_qty or (order.time_in_force == "GTX" and takes):
            self._finish(order, "CANCELED", now_ms)
            return order_json(symbol, order)
        if not order.reduce_only:
            extra = max(quantity - order.orig_qty, _ZERO)
            if extra > 0 or price != order.price:
                self._check_margin(
                    symbol, side, quantity - order.executed_qty, price, replacing=order
                )
        order.orig_qty = quantity
        order.price = price
        order.update_time_ms = now_ms
        self._order_event(order, "AMENDMENT", now_ms)
        if takes and quote is not None:
            self._take(symbol, order, quote, now_ms)
        return order_json(symbol, order)

    # --- matching

    def match_resting(self, quote: Quote, now_ms: int) -> None:
        """Fill the symbol's resting orders this quote reaches, oldest first, as makers."""
        symbol = self.symbols[quote.symbol]
        for order in list(self.book.open_orders(quote.symbol)):
            if not order.is_open or order.order_type != "LIMIT":
                continue
            qty = resting_fill_quantity(
                side=order.side,
                limit_price=order.price,
                remaining=order.remaining,
                original=order.orig_qty,
                quote=quote,
                model=self.fill_model,
                step_size=symbol.step_size,
            )
            if qty > 0:
                self._fill(symbol, order, order.price, qty, maker=True, now_ms=now_ms)

    def _take(self, symbol: SimSymbol, order: SimOrder, quote: Quote, now_ms: int) -> None:
        fills = taker_fills(
            side=order.side,
            quantity=order.remaining,
            limit_price=None if order.order_type == "MARKET" else order.price,
            quote=quote,
            model=self.fill_model,
            tick_size=symbol.tick_size,
            step_size=symbol.step_size,
        )
        for price, qty in fills:
            if not order.is_open:
                break
            self._fill(symbol, order, price, qty, maker=False, now_ms=now_ms)

    def _fok_fillable(
        self,
        symbol: SimSymbol,
        side: str,
        quantity: Decimal,
        price: Decimal,
        quote: Quote | None,
        reduce_only: bool,
    ) -> bool:
        if quote is None or not crosses(side, price, quote):
            return False
        if reduce_only and quantity > _reduces(self.ledger.position(symbol.symbol).amount, side):
            return False
        fills = taker_fills(
            side=side, quantity=quantity, limit_price=price, quote=quote,
            model=self.fill_model, tick_size=symbol.tick_size, step_size=symbol.step_size,
        )  # fmt: skip
        return sum((q for _, q in fills), _ZERO) >= quantity

    def _fill(
        self,
        symbol: SimSymbol,
        order: SimOrder,
        price: Decimal,
        qty: Decimal,
        *,
        maker: bool,
        now_ms: int,
    ) -> None:
        position = self.ledger.position(symbol.symbol)
        if order.reduce_only:
            qty = min(qty, _reduces(position.amount, order.side))
            if qty <= 0:
                self._finish(order, "EXPIRED", now_ms)
                return
        effect = apply_fill(position, order.side, qty, price)
        position.update_time_ms = now_ms
        quote_qty = price * qty
        commission = money(quote_qty * (self.fees.maker if maker else self.fees.taker))
        self.ledger.add_to_wallet(effect.realized_pnl - commission)
        self.ledger.update_time_ms = now_ms
        order.executed_qty += qty
        order.cum_quote += quote_qty
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        order.update_time_ms = now_ms
        trade = SimTrade(
            symbol=symbol.symbol,
            trade_id=self.book.new_trade_id(symbol.symbol),
            order_id=order.order_id,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            realized_pnl=effect.realized_pnl,
            maker=maker,
            time_ms=now_ms,
        )
        self.book.trades[symbol.symbol].append(trade)
        self._order_event(order, "TRADE", now_ms, trade)
        self.emit_account_update("ORDER", now_ms, [position])
        self._expire_stale_reduce_only(symbol.symbol, now_ms)

    def _expire_stale_reduce_only(self, symbol: str, now_ms: int) -> None:
        amount = self.ledger.position(symbol).amount
        for other in list(self.book.open_orders(symbol)):
            if other.reduce_only and _reduces(amount, other.side) == 0:
                self._finish(other, "EXPIRED", now_ms)

    def _finish(self, order: SimOrder, status: str, now_ms: int) -> None:
        order.status = status
        order.update_time_ms = now_ms
        self._order_event(order, status, now_ms)

    def _order_event(
        self, order: SimOrder, execution: str, now_ms: int, trade: SimTrade | None = None
    ) -> None:
        bids, asks = self.book.side_notionals(order.symbol)
        self.events.append(
            order_event(
                self.symbols[order.symbol],
                order,
                execution=execution,
                now_ms=now_ms,
                bids_notional=bids,
                asks_notional=asks,
                trade=trade,
            )
        )

    # --- margin

    def _check_margin(
        self,
        symbol: SimSymbol,
        side: str,
        quantity: Decimal,
        price: Decimal,
        *,
        replacing: SimOrder | None = None,
    ) -> None:
        """-2019 when the order's extra initial margin exceeds the available balance;
        -2027 when the position it could open exceeds the leverage's notional cap."""
        loads = self.book.loads()
        if replacing is not None:
            loads[symbol.symbol] = [
                OpenOrderLoad(o.side, o.remaining, o.price, o.reduce_only)
                for o in self.book.open_orders(symbol.symbol)
                if o is not replacing
            ]
        before = self.ledger.order_margin(loads)
        available = self.ledger.available(loads)
        with_order = dict(loads)
        with_order[symbol.symbol] = [
            *loads.get(symbol.symbol, []),
            OpenOrderLoad(side, quantity, price),
        ]
        extra = self.ledger.order_margin(with_order) - before
        if extra > 0 and extra > available:
            raise SimError(-2019, "Margin is insufficient.")
        position = self.ledger.position(symbol.symbol)
        signed = quantity if side == "BUY" else -quantity
        if abs(position.amount + signed) * price > max_notional(position.leverage):
            raise SimError(-2027, "Exceeded the maximum allowable position at current leverage.")
