"""The simulated USD-M algo-order service: conditional orders that wait for a trigger price.

``AlgoOrders`` is the part of ``FuturesEngine`` behind ``POST/GET/DELETE /fapi/v1/algoOrder``
and ``GET /fapi/v1/openAlgoOrders`` (``algoType=CONDITIONAL``: STOP_MARKET, TAKE_PROFIT_MARKET,
STOP, TAKE_PROFIT). Every change is an ``ALGO_UPDATE`` user-data event (``futures_algo_wire``).
Open algo orders hold no margin: they are not in the matching engine until they trigger.

Triggers, as Binance documents them: STOP/STOP_MARKET fire when the working price reaches the
trigger from below for a BUY (price >= trigger) and from above for a SELL (price <= trigger);
TAKE_PROFIT/TAKE_PROFIT_MARKET the other way round. ``workingType`` MARK_PRICE watches the
mark price (``on_mark``; the last price until a mark arrives), CONTRACT_PRICE (the default)
the last trade price of each quote (``on_quote``). A firing order goes TRIGGERING, then places
a MARKET (``*_MARKET``) or LIMIT (STOP/TAKE_PROFIT, at ``price`` with its time in force) order
in the matching engine with ``clientOrderId`` = ``clientAlgoId`` (reduce-only as asked; a
closePosition order becomes a reduce-only MARKET order for the whole position at that moment).
Its ORDER_TRADE_UPDATE events come first, then ALGO_UPDATE TRIGGERED with the order id
(``ai``), and FINISHED (with ``aq``/``ap``) once that order is filled, cancelled or expired.

Behaviour chosen where Binance allows several readings:

* Placement: ``-2021`` "Order would immediately trigger." when the working price (if one is
  known) already satisfies the trigger; trigger and limit prices on the tick grid
  (``-4014``...), quantity filters as MARKET_LOT_SIZE (market types) or LOT_SIZE, MIN_NOTIONAL
  at the limit (else trigger) price unless reduce-only; closePosition only on the ``*_MARKET``
  types and never with ``quantity`` or ``reduceOnly`` (``-1106``); at most 10 open algo
  orders per symbol (MAX_NUM_ALGO_ORDERS, ``-4045``); a clientAlgoId already open ``-4116``;
  TRAILING_STOP_MARKET and GTD are not simulated (``-1130``/``-1115``); positionSide other
  than BOTH ``-4061`` (one-way mode only). A reduce-only order may be placed without a
  position (Binance checks at trigger time).
* The matching engine refusing the triggered order (reduce-only with nothing left to reduce
  ``-2022``, margin ``-2019``, PERCENT_PRICE...): the algo order is REJECTED, ``rm`` carrying
  the engine's message; no order is created.
* closePosition orders (time in force GTE_GTC) are EXPIRED by the system as soon as the
  position is flat (the docs' example of EXPIRED), and when one triggers with no position.
* priceProtect: a firing is skipped while mark and last price differ by more than the
  symbol's ``triggerProtect`` (5 %), as the docs describe.
* Unknown algo order: GET ``-2013`` "Order does not exist.", DELETE ``-2011`` "Unknown order
  sent." (also for one that is no longer NEW), as users report from the live exchange.
* ``algoId`` is one sequence across symbols (the endpoints take no symbol), starting from a
  seed-derived number; a generated clientAlgoId comes from the order store's generator.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.errors import SimError
from exchange.sim.futures_algo_wire import (
    ALGO_FINAL,
    SimAlgoOrder,
    algo_event,
    algo_from_json,
    algo_json,
    algo_to_json,
)
from exchange.sim.futures_orders import OrderFlow
from exchange.sim.futures_params import (
    check_lot,
    check_min_notional,
    check_price,
    decimal_param,
    enum_param,
    int_param,
    mandatory,
    optional_bool,
)
from exchange.sim.futures_records import SimOrder, SimTrade
from exchange.sim.futures_wire import price_str, qty_str

__all__ = ["MAX_OPEN_ALGO_ORDERS", "AlgoOrders", "triggers"]

MAX_OPEN_ALGO_ORDERS: Final = 10  # the catalogue's MAX_NUM_ALGO_ORDERS
_TYPES: Final = (
    "STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET",
    "LIMIT", "MARKET",
)  # fmt: skip
_CLOSE_TYPES: Final = ("STOP_MARKET", "TAKE_PROFIT_MARKET")
_TIFS: Final = ("GTC", "IOC", "FOK", "GTX", "GTD")
_WORKING_TYPES: Final = ("MARK_PRICE", "CONTRACT_PRICE")
_CLIENT_ID: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_TRIGGER_PROTECT: Final = Decimal("0.05")  # the catalogue's triggerProtect
_ZERO: Final = Decimal(0)


def triggers(order_type: str, side: str, trigger: Decimal, price: Decimal) -> bool:
    """Does ``price`` fire a ``side`` order of ``order_type`` with this trigger price?"""
    rising = (side == "BUY") == order_type.startswith("STOP")
    return price >= trigger if rising else price <= trigger


def _reducible(position_amount: Decimal, side: str) -> Decimal:
    if side == "SELL" and position_amount > 0:
        return position_amount
    if side == "BUY" and position_amount < 0:
        return -position_amount
    return _ZERO


def _not_required(name: str) -> SimError:
    return SimError(-1106, f"Parameter '{name}' sent when not required.")


class AlgoOrders(OrderFlow):
    def __init__(self, symbols: Sequence[SimSymbol], **kwargs: Any) -> None:
        super().__init__(symbols, **kwargs)
        self.algos: dict[int, SimAlgoOrder] = {}
        self.next_algo_id = random.Random(f"futures-algo:{self.seed}").randrange(10**12, 10**13)
        self._open_algos: dict[int, SimAlgoOrder] = {}  # NEW, by algo id
        self._working: dict[tuple[str, int], SimAlgoOrder] = {}  # TRIGGERED, by child order

    # --- requests

    def new_algo_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """POST /fapi/v1/algoOrder (WS algoOrder.place)."""
        enum_param(params, "algoType", ("CONDITIONAL",))
        symbol = self.rules(mandatory(params, "symbol"))
        side = enum_param(params, "side", ("BUY", "SELL"))
        order_type = enum_param(params, "type", _TYPES)
        if order_type in ("LIMIT", "MARKET"):
            raise SimError(-1116, "Invalid orderType.")
        if order_type == "TRAILING_STOP_MARKET":
            raise SimError(
                -1130,
                "Data sent for parameter 'type' is not valid: TRAILING_STOP_MARKET is "
                "not simulated.",
            )
        position_side = params.get("positionSide") or "BOTH"
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise SimError(-4060, "Invalid position side.")
        if position_side != "BOTH":
            raise SimError(-4061, "Order's position side does not match user's setting.")
        working_type = enum_param(params, "workingType", _WORKING_TYPES, default="CONTRACT_PRICE")
        reduce_only = optional_bool(params, "reduceOnly")
        close = optional_bool(params, "closePosition")
        price_protect = optional_bool(params, "priceProtect")
        market = order_type.endswith("_MARKET")
        if close:
            if order_type not in _CLOSE_TYPES:
                raise _not_required("closePosition")
            if params.get("quantity"):
                raise _not_required("quantity")
            if reduce_only:
                raise _not_required("reduceOnly")
            quantity = _ZERO
        else:
            required = decimal_param(params, "quantity", required=True)
            assert required is not None
            quantity = required
            check_lot(symbol, quantity, market=market)
        trigger = decimal_param(params, "triggerPrice", required=True)
        assert trigger is not None
        check_price(symbol, trigger)
        if market:
            if params.get("price"):
                raise _not_required("price")
            price = _ZERO
            tif = "GTE_GTC" if close else "GTC"
        else:
            limit = decimal_param(params, "price", required=True)
            assert limit is not None
            check_price(symbol, limit)
            price = limit
            tif = enum_param(params, "timeInForce", _TIFS, default="GTC")
            if tif == "GTD":
                raise SimError(-1115, "Invalid timeInForce.")
        client_id = params.get("clientAlgoId") or ""
        if client_id and not _CLIENT_ID.match(client_id):
            raise SimError(-4015, "Client order id is not valid.")
        open_here = [a for a in self._open_algos.values() if a.symbol == symbol.symbol]
        if client_id and any(a.client_algo_id == client_id for a in self._open_algos.values()):
            raise SimError(-4116, "ClientOrderId is duplicated.")
        if len(open_here) >= MAX_OPEN_ALGO_ORDERS:
            raise SimError(-4045, "Reach max stop order limit.")
        if not close:
            notional = quantity * (price if price > 0 else trigger)
            check_min_notional(symbol, notional, reduce_only=reduce_only)
        working = self._working_price(symbol.symbol, working_type)
        if working is not None and triggers(order_type, side, trigger, working):
            raise SimError(-2021, "Order would immediately trigger.")
        algo = SimAlgoOrder(
            symbol=symbol.symbol,
            algo_id=self.next_algo_id,
            client_algo_id=client_id or self.book.new_client_id(symbol.symbol),
            order_type=order_type,
            side=side,
            quantity=quantity,
            trigger_price=trigger,
            price=price,
            time_in_force=tif,
            working_type=working_type,
            reduce_only=reduce_only,
            close_position=close,
            price_protect=price_protect,
            create_time_ms=now_ms,
            update_time_ms=now_ms,
        )
        self.next_algo_id += 1
        self.algos[algo.algo_id] = algo
        self._open_algos[algo.algo_id] = algo
        self._algo_event(algo, now_ms)
        return algo_json(symbol, algo)

    def query_algo_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """GET /fapi/v1/algoOrder: by algoId or clientAlgoId (the newest with that id)."""
        algo = self._find_algo(params, SimError(-2013, "Order does not exist."))
        return algo_json(self.symbols[algo.symbol], algo, query=True)

    def cancel_algo_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """DELETE /fapi/v1/algoOrder (WS algoOrder.cancel): only a NEW order can be cancelled."""
        unknown = SimError(-2011, "Unknown order sent.")
        algo = self._find_algo(params, unknown)
        if not algo.is_open:
            raise unknown
        self._end_algo(algo, "CANCELED", now_ms)
        return {
            "algoId": algo.algo_id,
            "clientAlgoId": algo.client_algo_id,
            "code": "200",
            "msg": "success",
        }

    def open_algo_orders(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v1/openAlgoOrders: one symbol, or all; oldest first."""
        if params.get("algoType"):
            enum_param(params, "algoType", ("CONDITIONAL",))
        name = params.get("symbol") or None
        if name is not None:
            self.rules(name)
        algo_id = int_param(params, "algoId")
        return [
            algo_json(self.symbols[a.symbol], a, query=True)
            for _, a in sorted(self._open_algos.items())
            if (name is None or a.symbol == name) and algo_id in (None, a.algo_id)
        ]

    def expire_algo_order(self, algo_id: int, now_ms: int, reason: str) -> None:
        """System-led cancellation (EXPIRED) of an open algo order: what Binance does to a
        GTE_GTC order when the position closes, and what tests and tools may impose."""
        algo = self._open_algos.get(algo_id)
        if algo is None:
            raise SimError(-2011, "Unknown order sent.")
        self._end_algo(algo, "EXPIRED", now_ms, reason)

    # --- triggering

    def check_algo_triggers(self, symbol: str, now_ms: int) -> None:
        """Fire the symbol's open algo orders whose working price has reached the trigger."""
        rules = self.symbols[symbol]
        for algo in [a for _, a in sorted(self._open_algos.items()) if a.symbol == symbol]:
            if not algo.is_open:
                continue  # an earlier firing changed the position and expired it
            price = self._working_price(symbol, algo.working_type)
            if price is None or not triggers(algo.order_type, algo.side, algo.trigger_price, price):
                continue
            if algo.price_protect and self._protection_holds(symbol):
                continue
            self._trigger(rules, algo, now_ms)

    def _trigger(self, rules: SimSymbol, algo: SimAlgoOrder, now_ms: int) -> None:
        del self._open_algos[algo.algo_id]
        algo.status = "TRIGGERING"
        algo.trigger_time_ms = algo.update_time_ms = now_ms
        self._algo_event(algo, now_ms)
        quantity = algo.quantity
        if algo.close_position:
            quantity = _reducible(self.ledger.position(algo.symbol).amount, algo.side)
            if quantity == 0:
                self._end_algo(algo, "EXPIRED", now_ms, "No position to close.")
                return
        params = {
            "symbol": algo.symbol,
            "side": algo.side,
            "type": algo.child_type,
            "quantity": qty_str(rules, quantity),
            "newClientOrderId": algo.client_algo_id,
            "newOrderRespType": "RESULT",
        }
        if algo.reduce_only or algo.close_position:
            params["reduceOnly"] = "true"
        if algo.child_type == "LIMIT":
            params["price"] = price_str(rules, algo.price)
            params["timeInForce"] = algo.time_in_force
        try:
            answer = self.new_order(params, now_ms)
        except SimError as refused:
            self._end_algo(algo, "REJECTED", now_ms, refused.msg)
            return
        child = self.book.orders[algo.symbol][int(answer["orderId"])]
        algo.actual_order_id = child.order_id
        algo.status = "TRIGGERED"
        self._follow(algo, child, now_ms)
        self._algo_event(algo, now_ms)
        if child.is_open:
            self._working[(child.symbol, child.order_id)] = algo
        else:
            self._end_algo(algo, "FINISHED", now_ms)

    def _working_price(self, symbol: str, working_type: str) -> Decimal | None:
        if working_type == "MARK_PRICE":
            return self.ledger.marks.get(symbol)
        quote = self.quotes.get(symbol)
        return quote.last if quote is not None else None

    def _protection_holds(self, symbol: str) -> bool:
        mark = self.ledger.marks.get(symbol)
        quote = self.quotes.get(symbol)
        if mark is None or quote is None or mark <= 0:
            return False
        return abs(mark - quote.last) / mark > _TRIGGER_PROTECT

    # --- hooks into the matching engine

    def _order_event(
        self, order: SimOrder, execution: str, now_ms: int, trade: SimTrade | None = None
    ) -> None:
        super()._order_event(order, execution, now_ms, trade)
        if order.is_open:
            return
        algo = self._working.pop((order.symbol, order.order_id), None)
        if algo is not None:
            self._follow(algo, order, now_ms)
            self._end_algo(algo, "FINISHED", now_ms)

    def _expire_stale_reduce_only(self, symbol: str, now_ms: int) -> None:
        super()._expire_stale_reduce_only(symbol, now_ms)
        if self.ledger.position(symbol).amount != 0:
            return
        for _, algo in sorted(self._open_algos.items()):
            if algo.symbol == symbol and algo.close_position:
                self._end_algo(algo, "EXPIRED", now_ms, "Position closed.")

    # --- state

    def _follow(self, algo: SimAlgoOrder, child: SimOrder, now_ms: int) -> None:
        algo.executed_qty = child.executed_qty
        algo.avg_price = child.avg_price
        algo.update_time_ms = now_ms

    def _end_algo(self, algo: SimAlgoOrder, status: str, now_ms: int, reason: str = "") -> None:
        self._open_algos.pop(algo.algo_id, None)
        algo.status = status
        algo.reason = reason
        algo.update_time_ms = now_ms
        self._algo_event(algo, now_ms)

    def _algo_event(self, algo: SimAlgoOrder, now_ms: int) -> None:
        self.events.append(algo_event(self.symbols[algo.symbol], algo, now_ms))

    def _find_algo(self, params: Mapping[str, str], missing: SimError) -> SimAlgoOrder:
        algo_id = int_param(params, "algoId")
        client_id = params.get("clientAlgoId") or ""
        if algo_id is None and not client_id:
            raise SimError(
                -1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!"
            )
        if algo_id is not None:
            found = self.algos.get(algo_id)
            if found is not None and client_id and found.client_algo_id != client_id:
                found = None
        else:
            matches = [a for a in self.algos.values() if a.client_algo_id == client_id]
            found = max(matches, key=lambda a: a.algo_id) if matches else None
        if found is None:
            raise missing
        return found

    def algo_snapshot(self) -> dict[str, Any]:
        return {
            "next_algo_id": self.next_algo_id,
            "orders": [algo_to_json(a) for _, a in sorted(self.algos.items())],
        }

    def restore_algos(self, data: Mapping[str, Any] | None) -> None:
        """Load ``algo_snapshot`` output (None: a state saved before algo orders existed)."""
        if data is None:
            return
        self.next_algo_id = int(data["next_algo_id"])
        for row in data["orders"]:
            algo = algo_from_json(row)
            self.algos[algo.algo_id] = algo
            if algo.is_open:
                self._open_algos[algo.algo_id] = algo
            elif algo.status == "TRIGGERED" and algo.actual_order_id is not None:
                self._working[(algo.symbol, algo.actual_order_id)] = algo
            elif algo.status not in ALGO_FINAL:
                # Saved mid-trigger cannot happen (one call does it all); finish it safely.
                algo.status = "EXPIRED"
