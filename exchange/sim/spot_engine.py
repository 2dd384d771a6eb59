"""The simulated Binance Spot matching engine and account.

``SpotEngine`` takes authenticated request parameters (strings, as they arrive over REST or the
WebSocket API) and answers in Binance's exact shapes, or raises ``SimError`` as Binance would.
Orders fill against the simulated market's quotes through ``exchange.sim.matching``: MARKET
and marketable LIMIT orders take liquidity when placed (taker fee), resting LIMIT/LIMIT_MAKER
orders fill at their limit price when a later ``Quote`` reaches them (maker fee). Every change
is reported as an ``executionReport`` and every balance change as an
``outboundAccountPosition``, collected until ``drain_events``.

Everything is deterministic: ids start from values derived from the seed, generated client
order ids are a hash of the seed and a counter, and no clock or randomness is read inside.
``snapshot``/``from_snapshot`` round-trip the whole state.

Simplifications: conditional orders (STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT,
TAKE_PROFIT_LIMIT) are refused with Binance's "... orders are not supported for this symbol."
(-2010); a MARKET order before the symbol's first quote is refused with -2010 "Order book
liquidity is less than symbol minimum quantity."; self-trade prevention never triggers (the
account's orders only meet the quotes, never each other). Planning a placement lives in
``spot_planning``, read-only answers in ``spot_queries``, shapes in ``spot_wire``.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.errors import SimError
from exchange.sim.matching import (
    Fees,
    FillModel,
    Quote,
    resting_fill_quantity,
)
from exchange.sim.order_params_check import (
    both_missing,
    client_id_param,
    enum_param,
    int_param,
    optional,
)
from exchange.sim.spot_orders import Balances, SpotOrder, SpotTrade
from exchange.sim.spot_planning import plan_fills
from exchange.sim.spot_queries import account_response, select_orders, select_trades
from exchange.sim.spot_request import SpotRequest, check_filters, lookup_symbol, parse_new_order
from exchange.sim.spot_wire import (
    account_position,
    ack_response,
    cancel_response,
    execution_report,
    full_response,
    query_response,
    result_response,
    trade_row,
)

__all__ = ["SpotEngine"]

_QUANTUM: Final = Decimal("1e-8")
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INSUFFICIENT: Final = "Account has insufficient balance for requested action."
_CANCEL_REPLACE_MODES: Final = ("STOP_ON_FAILURE", "ALLOW_FAILURE")
_CANCEL_RESTRICTIONS: Final = ("ONLY_NEW", "ONLY_PARTIALLY_FILLED")
_SNAPSHOT_VERSION: Final = 1


def _seeded(seed: int, label: str, low: int, span: int) -> int:
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % span


class SpotEngine:
    """Binance Spot's order endpoints, account and user-data events, simulated."""

    def __init__(
        self,
        symbols: Sequence[SimSymbol],
        *,
        balances: Mapping[str, Decimal],
        fees: Fees = Fees(Decimal("0.001"), Decimal("0.001")),  # noqa: B008 - frozen value
        fill_model: FillModel = FillModel(),  # noqa: B008 - frozen value
        seed: int = 0,
    ) -> None:
        self.fill_model = fill_model
        self.fees = fees
        self._seed = seed
        self._symbols = {s.symbol: s for s in symbols}
        self._balances = Balances.of(balances)
        self._balances.take_changed()
        self._orders: dict[str, dict[int, SpotOrder]] = {s: {} for s in self._symbols}
        self._trades: dict[str, list[SpotTrade]] = {s: [] for s in self._symbols}
        self._next_order_id = {
            s: _seeded(seed, f"order:{s}", 1_000_000_000, 9_000_000_000) for s in self._symbols
        }
        self._next_trade_id = {
            s: _seeded(seed, f"trade:{s}", 100_000_000, 900_000_000) for s in self._symbols
        }
        self._client_seq = 0
        self._ignore_id = _seeded(seed, "ignore", 1_000_000_000, 9_000_000_000)
        self._quotes: dict[str, Quote] = {}
        self._update_ms = 0
        self._events: list[dict[str, Any]] = []

    # ----- requests -------------------------------------------------------------------------

    def new_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """POST /api/v3/order, WS order.place."""
        request = parse_new_order(params, self._symbols)
        return self._place(request, now_ms)

    def query_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """GET /api/v3/order, WS order.status."""
        symbol = lookup_symbol(params, self._symbols)
        order = self._find(symbol.symbol, params, "orderId", "origClientOrderId")
        if order is None:
            raise SimError(-2013, "Order does not exist.")
        return query_response(order)

    def cancel_order(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """DELETE /api/v3/order, WS order.cancel."""
        symbol = lookup_symbol(params, self._symbols)
        cancel_id = client_id_param(params, "newClientOrderId")
        restrictions = optional(params, "cancelRestrictions")
        if restrictions is not None:
            enum_param(params, "cancelRestrictions", _CANCEL_RESTRICTIONS)
        return self._cancel(
            symbol.symbol, params, "orderId", "origClientOrderId", cancel_id, restrictions, now_ms
        )

    def cancel_replace(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """POST /api/v3/order/cancelReplace, WS order.cancelReplace."""
        symbol = lookup_symbol(params, self._symbols)
        mode = enum_param(params, "cancelReplaceMode", _CANCEL_REPLACE_MODES)
        cancel_id = client_id_param(params, "cancelNewClientOrderId")
        restrictions = optional(params, "cancelRestrictions")
        if restrictions is not None:
            enum_param(params, "cancelRestrictions", _CANCEL_RESTRICTIONS)
        if (
            optional(params, "cancelOrderId") is None
            and optional(params, "cancelOrigClientOrderId") is None
        ):
            raise both_missing("cancelOrigClientOrderId", "cancelOrderId")
        # Malformed new-order parameters fail the whole request before anything happens.
        request = parse_new_order(params, self._symbols)
        cancel_body: dict[str, Any] | None = None
        cancel_error: SimError | None = None
        try:
            cancel_body = self._cancel(
                symbol.symbol,
                params,
                "cancelOrderId",
                "cancelOrigClientOrderId",
                cancel_id,
                restrictions,
                now_ms,
            )
        except SimError as exc:
            cancel_error = exc
        if cancel_error is not None and mode == "STOP_ON_FAILURE":
            raise SimError(
                -2022,
                "Order cancel-replace failed.",
                data={
                    "cancelResult": "FAILURE",
                    "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": cancel_error.body(),
                    "newOrderResponse": None,
                },
            )
        new_body: dict[str, Any] | None = None
        new_error: SimError | None = None
        try:
            new_body = self._place(request, now_ms)
        except SimError as exc:
            new_error = exc
        data: dict[str, Any] = {
            "cancelResult": "FAILURE" if cancel_error else "SUCCESS",
            "newOrderResult": "FAILURE" if new_error else "SUCCESS",
            "cancelResponse": cancel_error.body() if cancel_error else cancel_body,
            "newOrderResponse": new_error.body() if new_error else new_body,
        }
        if cancel_error is not None and new_error is not None:
            raise SimError(-2022, "Order cancel-replace failed.", data=data)
        if cancel_error is not None or new_error is not None:
            raise SimError(-2021, "Order cancel-replace partially failed.", status=409, data=data)
        return data

    def open_orders(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /api/v3/openOrders (all symbols when ``symbol`` is not sent)."""
        names = (
            [lookup_symbol(params, self._symbols).symbol]
            if optional(params, "symbol") is not None
            else sorted(self._orders)
        )
        return [
            query_response(o)
            for name in names
            for o in sorted(self._orders[name].values(), key=lambda o: o.order_id)
            if o.is_open
        ]

    def all_orders(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /api/v3/allOrders: every order of one symbol, open or final."""
        symbol = lookup_symbol(params, self._symbols)
        orders = sorted(self._orders[symbol.symbol].values(), key=lambda o: o.order_id)
        return [query_response(o) for o in select_orders(orders, params)]

    def my_trades(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /api/v3/myTrades."""
        symbol = lookup_symbol(params, self._symbols)
        return [trade_row(t) for t in select_trades(self._trades[symbol.symbol], params)]

    def account(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """GET /api/v3/account."""
        return account_response(
            self._balances,
            self.fees,
            update_ms=self._update_ms,
            uid=_seeded(self._seed, "uid", 100_000_000, 900_000_000),
            omit_zero=optional(params, "omitZeroBalances") == "true",
        )

    # ----- market ---------------------------------------------------------------------------

    def on_quote(self, quote: Quote, now_ms: int) -> None:
        """Remember the book for taker orders and fill resting orders the quote reaches."""
        if quote.symbol not in self._symbols:
            return
        self._quotes[quote.symbol] = quote
        step = self._symbols[quote.symbol].step_size
        for order in sorted(self._orders[quote.symbol].values(), key=lambda o: o.order_id):
            if not order.is_open or order.order_type not in ("LIMIT", "LIMIT_MAKER"):
                continue
            qty = resting_fill_quantity(
                side=order.side,
                limit_price=order.price,
                remaining=order.remaining,
                original=order.orig_qty,
                quote=quote,
                model=self.fill_model,
                step_size=step,
            )
            if qty > 0:
                self._fill(order, order.price, qty, maker=True, now_ms=now_ms)
                self._close_if_done(order, now_ms)
                self._emit_balances(now_ms)

    def drain_events(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events

    # ----- placing --------------------------------------------------------------------------

    def _place(self, request: SpotRequest, now_ms: int) -> dict[str, Any]:
        name = request.symbol.symbol
        quote = self._quotes.get(name)
        open_count = sum(1 for o in self._orders[name].values() if o.is_open)
        check_filters(request, quote, open_count)
        if request.client_order_id is not None and any(
            o.is_open and o.client_order_id == request.client_order_id
            for orders in self._orders.values()
            for o in orders.values()
        ):
            raise SimError(-2010, "Duplicate order sent.")
        fills, lock_asset, lock = plan_fills(request, quote, self.fill_model)
        if self._balances.available(lock_asset) < lock:
            raise SimError(-2010, _INSUFFICIENT)
        order = self._register(request, fills, lock_asset, lock, now_ms)
        trades = [self._fill(order, p, q, maker=False, now_ms=now_ms) for p, q in fills]
        if order.is_open and (order.order_type == "MARKET" or order.time_in_force != "GTC"):
            order.status = "EXPIRED"
            order.update_ms = now_ms
            self._report(order, "EXPIRED", now_ms)
        self._close_if_done(order, now_ms)
        self._emit_balances(now_ms)
        if request.resp_type == "ACK":
            return ack_response(order, now_ms)
        if request.resp_type == "RESULT":
            return result_response(order, now_ms)
        return full_response(order, now_ms, trades)

    def _register(
        self,
        request: SpotRequest,
        fills: list[tuple[Decimal, Decimal]],
        lock_asset: str,
        lock: Decimal,
        now_ms: int,
    ) -> SpotOrder:
        name = request.symbol.symbol
        order_id = self._next_order_id[name]
        self._next_order_id[name] += 1
        qty = request.quantity
        if qty is None:  # quoteOrderQty: the quantity is what the budget bought
            qty = sum((q for _, q in fills), Decimal(0))
        order = SpotOrder(
            symbol=name,
            order_id=order_id,
            client_order_id=request.client_order_id or self._generate_client_id(),
            side=request.side,
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            price=request.price or Decimal(0),
            orig_qty=qty,
            quote_order_qty=request.quote_order_qty or Decimal(0),
            stop_price=Decimal(0),
            stp_mode=request.stp_mode,
            time_ms=now_ms,
            update_ms=now_ms,
            working_ms=now_ms,
            locked=lock,
            lock_asset=lock_asset,
        )
        self._orders[name][order_id] = order
        if lock > 0:
            self._balances.lock(lock_asset, lock)
        self._report(order, "NEW", now_ms)
        return order

    # ----- filling and closing --------------------------------------------------------------

    def _fill(
        self, order: SpotOrder, price: Decimal, qty: Decimal, *, maker: bool, now_ms: int
    ) -> SpotTrade:
        s = self._symbols[order.symbol]
        rate = self.fees.maker if maker else self.fees.taker
        value = price * qty
        if order.side == "BUY":
            # A LIMIT BUY locked its limit price; a better fill frees the difference.
            reserved = order.price * qty if order.order_type != "MARKET" else value
            reserved = min(reserved, order.locked)
            commission = (qty * rate).quantize(_QUANTUM, rounding=ROUND_HALF_UP)
            fee_asset = s.base_asset
            self._balances.spend_locked(s.quote_asset, reserved)
            self._balances.add(s.quote_asset, reserved - value)
            self._balances.add(s.base_asset, qty - commission)
        else:
            reserved = min(qty, order.locked)
            commission = (value * rate).quantize(_QUANTUM, rounding=ROUND_HALF_UP)
            fee_asset = s.quote_asset
            self._balances.spend_locked(s.base_asset, reserved)
            self._balances.add(s.base_asset, reserved - qty)
            self._balances.add(s.quote_asset, value - commission)
        order.locked -= reserved
        order.executed_qty += qty
        order.cum_quote += value
        order.status = "FILLED" if order.executed_qty >= order.orig_qty else "PARTIALLY_FILLED"
        order.update_ms = now_ms
        trade = SpotTrade(
            symbol=order.symbol,
            trade_id=self._next_trade_id[order.symbol],
            order_id=order.order_id,
            price=price,
            qty=qty,
            quote_qty=value,
            commission=commission,
            commission_asset=fee_asset,
            time_ms=now_ms,
            is_buyer=order.side == "BUY",
            is_maker=maker,
        )
        self._next_trade_id[order.symbol] += 1
        self._trades[order.symbol].append(trade)
        self._report(order, "TRADE", now_ms, trade=trade)
        return trade

    def _close_if_done(self, order: SpotOrder, now_ms: int) -> None:
        """Give back what a finished order still holds locked."""
        if not order.is_open and order.locked > 0:
            self._balances.unlock(order.lock_asset, order.locked)
            order.locked = Decimal(0)

    def _find(
        self, symbol: str, params: Mapping[str, str], id_key: str, client_key: str
    ) -> SpotOrder | None:
        order_id = int_param(params, id_key)
        client_id = optional(params, client_key)
        if order_id is None and client_id is None:
            raise both_missing(client_key, id_key)
        orders = self._orders[symbol]
        if order_id is not None:
            found = orders.get(order_id)
            if found is None or (client_id is not None and found.client_order_id != client_id):
                return None
            return found
        matches = sorted(
            (o for o in orders.values() if o.client_order_id == client_id),
            key=lambda o: (o.is_open, o.order_id),
        )
        return matches[-1] if matches else None

    def _cancel(
        self,
        symbol: str,
        params: Mapping[str, str],
        id_key: str,
        client_key: str,
        cancel_id: str | None,
        restrictions: str | None,
        now_ms: int,
    ) -> dict[str, Any]:
        order = self._find(symbol, params, id_key, client_key)
        if order is None or not order.is_open:
            raise SimError(-2011, "Unknown order sent.")
        if (restrictions == "ONLY_NEW" and order.status != "NEW") or (
            restrictions == "ONLY_PARTIALLY_FILLED" and order.status != "PARTIALLY_FILLED"
        ):
            raise SimError(-2011, "Order was not canceled due to cancel restrictions.")
        cancel_client_id = cancel_id or self._generate_client_id()
        order.status = "CANCELED"
        order.update_ms = now_ms
        self._close_if_done(order, now_ms)
        self._report(order, "CANCELED", now_ms, cancel_client_id=cancel_client_id)
        self._emit_balances(now_ms)
        return cancel_response(order, cancel_client_id, now_ms)

    # ----- events and ids -------------------------------------------------------------------

    def _report(
        self,
        order: SpotOrder,
        execution: str,
        now_ms: int,
        *,
        trade: SpotTrade | None = None,
        cancel_client_id: str | None = None,
    ) -> None:
        self._ignore_id += 1
        self._events.append(
            execution_report(
                order,
                execution=execution,
                now_ms=now_ms,
                ignore_id=self._ignore_id,
                trade=trade,
                cancel_client_id=cancel_client_id,
            )
        )

    def _emit_balances(self, now_ms: int) -> None:
        changed = self._balances.take_changed()
        if changed:
            self._update_ms = now_ms
            self._events.append(account_position(self._balances, changed, now_ms))

    def _generate_client_id(self) -> str:
        """A 22-character id like the ones Binance generates, derived from seed and counter."""
        self._client_seq += 1
        number = int.from_bytes(
            hashlib.sha256(f"{self._seed}:client:{self._client_seq}".encode()).digest(), "big"
        )
        chars = []
        for _ in range(22):
            number, digit = divmod(number, len(_ALPHABET))
            chars.append(_ALPHABET[digit])
        return "".join(chars)

    # ----- snapshot -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this engine is (JSON-safe)."""
        return {
            "version": _SNAPSHOT_VERSION,
            "seed": self._seed,
            "balances": self._balances.to_json(),
            "orders": [o.to_json() for orders in self._orders.values() for o in orders.values()],
            "trades": [t.to_json() for trades in self._trades.values() for t in trades],
            "next_order_id": dict(self._next_order_id),
            "next_trade_id": dict(self._next_trade_id),
            "client_seq": self._client_seq,
            "ignore_id": self._ignore_id,
            "update_ms": self._update_ms,
            "quotes": [
                {
                    "symbol": q.symbol,
                    "time_ms": q.time_ms,
                    **{
                        k: format(getattr(q, k), "f")
                        for k in ("bid", "ask", "bid_qty", "ask_qty", "last", "volume")
                    },
                }
                for q in self._quotes.values()
            ],
            "events": _jsonable(self._events),
        }

    @classmethod
    def from_snapshot(
        cls,
        data: Mapping[str, Any],
        symbols: Sequence[SimSymbol],
        *,
        fees: Fees,
        fill_model: FillModel,
    ) -> SpotEngine:
        if data.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unknown spot snapshot version {data.get('version')!r}")
        engine = cls(symbols, balances={}, fees=fees, fill_model=fill_model, seed=data["seed"])
        engine._balances = Balances.from_json(data["balances"])
        for raw in data["orders"]:
            order = SpotOrder.from_json(raw)
            engine._orders.setdefault(order.symbol, {})[order.order_id] = order
        for raw in data["trades"]:
            trade = SpotTrade.from_json(raw)
            engine._trades.setdefault(trade.symbol, []).append(trade)
        engine._next_order_id.update(data["next_order_id"])
        engine._next_trade_id.update(data["next_trade_id"])
        engine._client_seq = data["client_seq"]
        engine._ignore_id = data["ignore_id"]
        engine._update_ms = data["update_ms"]
        for q in data["quotes"]:
            engine._quotes[q["symbol"]] = Quote(
                q["symbol"],
                q["time_ms"],
                *(Decimal(q[k]) for k in ("bid", "ask", "bid_qty", "ask_qty", "last", "volume")),
            )
        engine._events = copy.deepcopy(list(data["events"]))
        return engine


def _jsonable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Events hold only str/int/bool/None and nested lists/dicts of them: already JSON-safe.
    return copy.deepcopy(events)
