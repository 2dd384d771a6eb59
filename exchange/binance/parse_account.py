"""Binance REST answers about orders, trades, balances and positions → domain types.

Order answers are translated to the user-data stream's keys and read by the same code as the
stream (``parse_user``), so an order means the same thing whichever way it arrived. Every
parser takes the raw body (``bytes`` or ``str``) and raises only ``MalformedPayload`` (a
``MalformedEvent``); unknown fields are ignored.

Futures balances follow the stream's mapping: ``free`` is the wallet balance, ``locked`` 0,
``cross_wallet`` and ``available`` as reported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import msgspec

from app.domain.account import Balance, PositionSnapshot
from app.domain.enums import MarketType, OrderStatus, Side
from app.domain.orders import AlgoOrderUpdated, Fill, OrderUpdated, SubmitOrder
from exchange.binance.parse_user import (
    SIDES,
    AlgoOrderWire,
    FuturesOrderWire,
    MalformedEvent,
    SpotExecutionWire,
    algo_order,
    amount_of,
    decimal_of,
    futures_order_update,
    lookup,
    margin_type,
    optional_decimal,
    position_side,
    price_or_none,
    spot_order_update,
)

__all__ = [
    "CancelReplaceResult",
    "LeverageSetting",
    "MalformedPayload",
    "Refusal",
    "SpotAccountInfo",
    "SymbolConfig",
    "parse_cancel_replace",
    "parse_futures_account",
    "parse_futures_algo_order",
    "parse_futures_algo_orders",
    "parse_futures_balance",
    "parse_futures_order",
    "parse_futures_orders",
    "parse_leverage_response",
    "parse_listen_key",
    "parse_margin_type_response",
    "parse_my_trades",
    "parse_position_risk",
    "parse_position_side_dual",
    "parse_spot_account",
    "parse_spot_account_info",
    "parse_spot_order",
    "parse_spot_orders",
    "parse_symbol_config",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Payload = bytes | str


class MalformedPayload(MalformedEvent):
    """A REST body we cannot read; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error object inside a 2xx/409 body (cancel-replace): Binance's code and message."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class CancelReplaceResult:
    """``POST /api/v3/order/cancelReplace``; results are lower case: success, failure or
    not_attempted. The 409 partial-failure body (``{"code", "msg", "data"}``) reads the same."""

    cancel_result: str
    new_order_result: str
    canceled: OrderUpdated | None = None
    new_order: OrderUpdated | None = None
    new_fills: tuple[Fill, ...] = ()
    cancel_error: Refusal | None = None
    new_order_error: Refusal | None = None


@dataclass(frozen=True, slots=True)
class SpotAccountInfo:
    balances: tuple[Balance, ...]
    can_trade: bool
    can_withdraw: bool
    can_deposit: bool
    account_type: str
    permissions: tuple[str, ...]
    update_time_ms: int


@dataclass(frozen=True, slots=True)
class LeverageSetting:
    symbol: str
    leverage: int
    max_notional: Decimal | None


@dataclass(frozen=True, slots=True)
class SymbolConfig:
    symbol: str
    margin_type: str | None  # "cross" or "isolated"
    auto_add_margin: bool
    leverage: int
    max_notional: Decimal | None


def _rest(fn: Callable[P, R]) -> Callable[P, R]:
    """Re-raise the shared helpers' ``MalformedEvent`` as ``MalformedPayload``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MalformedPayload:
            raise
        except MalformedEvent as exc:
            raise MalformedPayload(str(exc)) from None

    return wrapper


def _json(payload: Payload, what: str) -> Any:
    try:
        return msgspec.json.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedPayload(f"{what}: {exc}") from None


def _convert(obj: Any, kind: type[T], what: str) -> T:
    try:
        return msgspec.convert(obj, kind)
    except (msgspec.ValidationError, RecursionError) as exc:
        raise MalformedPayload(f"{what}: {exc}") from None


def _object(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedPayload(f"{what}: expected an object, got {type(obj).__name__}")
    return obj


def _array(obj: Any, what: str) -> list[Any]:
    if not isinstance(obj, list):
        raise MalformedPayload(f"{what}: expected an array, got {type(obj).__name__}")
    return obj


def _renamed(obj: dict[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    return {wire: obj[rest] for rest, wire in keys.items() if rest in obj}


def _time_of(obj: dict[str, Any], keys: tuple[str, ...], what: str) -> int:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    raise MalformedPayload(f"{what}: none of {', '.join(keys)} is a time")


# REST key → executionReport key. `origClientOrderId` (our id on a cancel) becomes `C`.
_SPOT_ORDER_KEYS = {
    "symbol": "s", "orderId": "i", "clientOrderId": "c", "origClientOrderId": "C",
    "side": "S", "type": "o", "timeInForce": "f", "origQty": "q", "price": "p",
    "stopPrice": "P", "status": "X", "executedQty": "z", "cummulativeQuoteQty": "Z",
}  # fmt: skip
_SPOT_TIMES = ("transactTime", "updateTime", "time", "workingTime")
# REST key → ORDER_TRADE_UPDATE order key.
_FUTURES_ORDER_KEYS = {
    "symbol": "s", "orderId": "i", "clientOrderId": "c", "side": "S", "type": "o",
    "origType": "ot", "timeInForce": "f", "origQty": "q", "price": "p", "avgPrice": "ap",
    "stopPrice": "sp", "activatePrice": "AP", "status": "X", "executedQty": "z",
    "reduceOnly": "R",
}  # fmt: skip
_FUTURES_TIMES = ("updateTime", "time")
# REST key → ALGO_UPDATE order key; the docs say `orderType`, some answers say `type`.
_ALGO_KEYS = {
    "clientAlgoId": "caid", "algoId": "aid", "symbol": "s", "side": "S", "orderType": "o",
    "type": "o", "algoStatus": "X", "quantity": "q", "triggerPrice": "tp", "price": "p",
    "reduceOnly": "R", "closePosition": "cp", "actualOrderId": "ai", "executedQty": "aq",
    "avgPrice": "ap", "positionSide": "ps", "timeInForce": "f",
}  # fmt: skip
_ALGO_TIMES = ("updateTime", "createTime")


class _SpotOrderFill(msgspec.Struct, rename="camel", frozen=True):
    trade_id: int
    price: str
    qty: str
    commission: str
    commission_asset: str


def _spot_order(obj: Any, request: SubmitOrder | None = None) -> OrderUpdated:
    order = _object(obj, "spot order")
    ts_ms = _time_of(order, _SPOT_TIMES, "spot order")
    if "status" not in order:
        if request is None:
            raise MalformedPayload("an ACK answer carries no order state: pass its request")
        # newOrderRespType=ACK carries only ids: the order was accepted, the rest is ours.
        order_id = _convert(order.get("orderId"), int, "spot order id")
        return OrderUpdated(
            request.client_order_id, request.symbol, request.side, request.order_type,
            OrderStatus.NEW, request.quantity, Decimal(0), ts_ms, price=request.price,
            exchange_order_id=order_id, stop_price=request.stop_price,
            time_in_force=request.time_in_force,
        )  # fmt: skip
    wire = _renamed(order, _SPOT_ORDER_KEYS) | {"E": ts_ms}
    return spot_order_update(_convert(wire, SpotExecutionWire, "spot order"))


@_rest
def parse_spot_order(
    payload: Payload, *, request: SubmitOrder | None = None
) -> tuple[OrderUpdated, tuple[Fill, ...]]:
    """POST (ACK/RESULT/FULL), GET or DELETE ``/api/v3/order``; FULL also yields its fills.

    An ACK answer needs the ``request`` it answers. Fills of a new order are always taker.
    """
    return _spot_order_and_fills(_json(payload, "spot order"), request)


def _spot_order_and_fills(
    body: Any, request: SubmitOrder | None = None
) -> tuple[OrderUpdated, tuple[Fill, ...]]:
    update = _spot_order(body, request)
    raw_fills = _convert(body.get("fills", []), list[_SpotOrderFill], "spot order fills")
    fills = tuple(
        Fill(
            f.trade_id,
            update.client_order_id,
            update.symbol,
            update.side,
            amount_of(f.price, "fill price"),
            amount_of(f.qty, "fill qty"),
            decimal_of(f.commission, "fill commission"),
            f.commission_asset,
            False,
            update.ts_ms,
            exchange_order_id=update.exchange_order_id,
        )
        for f in raw_fills
    )
    return update, fills


@_rest
def parse_spot_orders(payload: Payload) -> list[OrderUpdated]:
    """GET openOrders/allOrders, DELETE openOrders (order lists contribute their reports)."""
    updates: list[OrderUpdated] = []
    for item in _array(_json(payload, "spot orders"), "spot orders"):
        reports = _object(item, "spot order").get("orderReports")
        for report in [item] if reports is None else _array(reports, "orderReports"):
            updates.append(_spot_order(report))
    return updates


def _refusal_or_order(obj: Any, what: str) -> tuple[dict[str, Any] | None, Refusal | None]:
    if obj is None:
        return None, None
    body = _object(obj, what)
    if "code" in body and "status" not in body:
        error = _convert(body, _Refusal, what)
        return None, Refusal(error.code, error.msg)
    return body, None


class _Refusal(msgspec.Struct, frozen=True):
    code: int
    msg: str = ""


# Tuples, not sets: a hostile body may put an unhashable value where the result belongs.
_CANCEL_RESULTS = ("SUCCESS", "FAILURE")
_NEW_ORDER_RESULTS = ("SUCCESS", "FAILURE", "NOT_ATTEMPTED")


@_rest
def parse_cancel_replace(payload: Payload) -> CancelReplaceResult:
    """The success body, or the error body whose ``data`` holds the same fields."""
    body = _object(_json(payload, "cancel-replace"), "cancel-replace")
    if "cancelResult" not in body and isinstance(body.get("data"), dict):
        body = body["data"]
    cancel_result = body.get("cancelResult")
    new_result = body.get("newOrderResult")
    if cancel_result not in _CANCEL_RESULTS or new_result not in _NEW_ORDER_RESULTS:
        raise MalformedPayload(f"cancel-replace results {cancel_result!r}/{new_result!r}")
    canceled, cancel_error = _refusal_or_order(body.get("cancelResponse"), "cancelResponse")
    placed, new_error = _refusal_or_order(body.get("newOrderResponse"), "newOrderResponse")
    new_order: OrderUpdated | None = None
    new_fills: tuple[Fill, ...] = ()
    if placed is not None:
        new_order, new_fills = _spot_order_and_fills(placed)
    return CancelReplaceResult(
        cancel_result=cancel_result.lower(),
        new_order_result=new_result.lower(),
        canceled=None if canceled is None else _spot_order(canceled),
        new_order=new_order,
        new_fills=new_fills,
        cancel_error=cancel_error,
        new_order_error=new_error,
    )


def _futures_order(obj: Any) -> OrderUpdated:
    order = _object(obj, "futures order")
    ts_ms = _time_of(order, _FUTURES_TIMES, "futures order")
    wire = _convert(_renamed(order, _FUTURES_ORDER_KEYS), FuturesOrderWire, "futures order")
    return futures_order_update(wire, ts_ms)


@_rest
def parse_futures_order(payload: Payload) -> OrderUpdated:
    """POST, PUT (modify), GET or DELETE ``/fapi/v1/order``."""
    return _futures_order(_json(payload, "futures order"))


@_rest
def parse_futures_orders(payload: Payload) -> list[OrderUpdated]:
    """GET ``/fapi/v1/openOrders`` or ``allOrders``."""
    return [_futures_order(o) for o in _array(_json(payload, "futures orders"), "orders")]


def _algo(obj: Any) -> AlgoOrderUpdated:
    order = _object(obj, "algo order")
    ts_ms = _time_of(order, _ALGO_TIMES, "algo order")
    return algo_order(_convert(_renamed(order, _ALGO_KEYS), AlgoOrderWire, "algo order"), ts_ms)


@_rest
def parse_futures_algo_order(payload: Payload) -> AlgoOrderUpdated:
    """POST or GET ``/fapi/v1/algoOrder`` (the DELETE answer carries ids only: not this)."""
    return _algo(_json(payload, "algo order"))


@_rest
def parse_futures_algo_orders(payload: Payload) -> list[AlgoOrderUpdated]:
    """GET ``/fapi/v1/openAlgoOrders`` or ``allAlgoOrders``."""
    return [_algo(o) for o in _array(_json(payload, "algo orders"), "algo orders")]


class _SpotTrade(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    id: int
    order_id: int
    price: str
    qty: str
    commission: str
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


class _FuturesTrade(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    id: int
    order_id: int
    side: str
    price: str
    qty: str
    commission: str
    commission_asset: str
    time: int
    maker: bool
    realized_pnl: str | None = None


@_rest
def parse_my_trades(payload: Payload, *, market: MarketType) -> list[Fill]:
    """Spot ``myTrades`` / futures ``userTrades``. Neither carries the client order id: the
    fills have ``client_order_id == ""`` and callers correlate by ``exchange_order_id``."""
    body = _json(payload, "trades")
    if market is MarketType.SPOT:
        return [
            Fill(
                t.id,
                "",
                t.symbol,
                Side.BUY if t.is_buyer else Side.SELL,
                amount_of(t.price, "price"),
                amount_of(t.qty, "qty"),
                decimal_of(t.commission, "commission"),
                t.commission_asset,
                t.is_maker,
                t.time,
                exchange_order_id=t.order_id,
            )
            for t in _convert(body, list[_SpotTrade], "spot trades")
        ]
    return [
        Fill(
            t.id,
            "",
            t.symbol,
            lookup(SIDES, t.side, "side"),
            amount_of(t.price, "price"),
            amount_of(t.qty, "qty"),
            decimal_of(t.commission, "commission"),
            t.commission_asset,
            t.maker,
            t.time,
            realized_pnl=optional_decimal(t.realized_pnl, "realizedPnl"),
            exchange_order_id=t.order_id,
        )
        for t in _convert(body, list[_FuturesTrade], "futures trades")
    ]


class _SpotBalance(msgspec.Struct, frozen=True):
    asset: str
    free: str
    locked: str


class _SpotAccount(msgspec.Struct, rename="camel", frozen=True):
    balances: list[_SpotBalance]
    can_trade: bool = False
    can_withdraw: bool = False
    can_deposit: bool = False
    account_type: str = ""
    permissions: list[str] = []
    update_time: int = 0


@_rest
def parse_spot_account_info(payload: Payload) -> SpotAccountInfo:
    """GET ``/api/v3/account``: balances plus what the key may do."""
    account = _convert(_json(payload, "spot account"), _SpotAccount, "spot account")
    balances = tuple(
        Balance(b.asset, amount_of(b.free, "free"), amount_of(b.locked, "locked"))
        for b in account.balances
    )
    return SpotAccountInfo(
        balances, account.can_trade, account.can_withdraw, account.can_deposit,
        account.account_type, tuple(account.permissions), account.update_time,
    )  # fmt: skip


def parse_spot_account(payload: Payload) -> tuple[Balance, ...]:
    """GET ``/api/v3/account`` → balances."""
    return parse_spot_account_info(payload).balances


class _FuturesAsset(msgspec.Struct, rename="camel", frozen=True):
    asset: str
    wallet_balance: str
    cross_wallet_balance: str | None = None
    available_balance: str | None = None


class _AccountPosition(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    position_amt: str
    unrealized_profit: str
    position_side: str | None = None
    entry_price: str | None = None  # v2 only
    notional: str | None = None  # v3
    leverage: str | None = None  # v2 only
    isolated: bool | None = None  # v2 only


class _FuturesAccount(msgspec.Struct, frozen=True):
    assets: list[_FuturesAsset] = []
    positions: list[_AccountPosition] = []


def _leverage(raw: str | int | None) -> int | None:
    if raw is None:
        return None
    value = decimal_of(str(raw), "leverage")
    if value != value.to_integral_value() or value < 0:
        raise MalformedPayload(f"leverage {raw!r} is not a whole number")
    return int(value)


def _entry_price(p: _AccountPosition, quantity: Decimal, pnl: Decimal) -> Decimal:
    if p.entry_price is not None:
        return amount_of(p.entry_price, "entryPrice")
    if quantity == 0:
        return Decimal(0)  # v2 reports flat positions with entry price 0 too
    # v3 dropped entryPrice; notional = qty * mark and pnl = qty * (mark - entry) give it back
    # up to Binance's 8-decimal rounding. parse_position_risk has the reported value.
    return abs((decimal_of(p.notional, "notional") - pnl) / quantity)


@_rest
def parse_futures_account(
    payload: Payload,
) -> tuple[tuple[Balance, ...], tuple[PositionSnapshot, ...]]:
    """GET ``/fapi/v2/account`` or ``/fapi/v3/account`` → (balances, positions)."""
    account = _convert(_json(payload, "futures account"), _FuturesAccount, "futures account")
    balances = tuple(_futures_balance(a.asset, a.wallet_balance, a) for a in account.assets)
    positions = []
    for p in account.positions:
        quantity = decimal_of(p.position_amt, "positionAmt")
        pnl = decimal_of(p.unrealized_profit, "unrealizedProfit")
        positions.append(
            PositionSnapshot(
                p.symbol,
                quantity,
                _entry_price(p, quantity, pnl),
                pnl,
                position_side=position_side(p.position_side),
                margin_type=None if p.isolated is None else ("isolated" if p.isolated else "cross"),
                leverage=_leverage(p.leverage),
            )
        )
    return balances, tuple(positions)


def _futures_balance(asset: str, wallet: str, row: _FuturesAsset | _BalanceRow) -> Balance:
    return Balance(
        asset, decimal_of(wallet, "wallet balance"), Decimal(0),
        cross_wallet=optional_decimal(row.cross_wallet_balance, "crossWalletBalance"),
        available=optional_decimal(row.available_balance, "availableBalance"),
    )  # fmt: skip


class _BalanceRow(msgspec.Struct, rename="camel", frozen=True):
    asset: str
    balance: str
    cross_wallet_balance: str | None = None
    available_balance: str | None = None


@_rest
def parse_futures_balance(payload: Payload) -> tuple[Balance, ...]:
    """GET ``/fapi/v2/balance`` or ``/fapi/v3/balance``."""
    rows = _convert(_json(payload, "futures balance"), list[_BalanceRow], "futures balance")
    return tuple(_futures_balance(r.asset, r.balance, r) for r in rows)


class _PositionRisk(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    position_amt: str
    entry_price: str
    un_realized_profit: str
    position_side: str | None = None
    mark_price: str | None = None
    liquidation_price: str | None = None
    leverage: str | None = None  # v2 only
    margin_type: str | None = None  # v2 only


@_rest
def parse_position_risk(payload: Payload) -> tuple[PositionSnapshot, ...]:
    """GET ``/fapi/v2/positionRisk`` or ``/fapi/v3/positionRisk`` (one-way and hedge)."""
    rows = _convert(_json(payload, "positionRisk"), list[_PositionRisk], "positionRisk")
    return tuple(
        PositionSnapshot(
            r.symbol,
            decimal_of(r.position_amt, "positionAmt"),
            amount_of(r.entry_price, "entryPrice"),
            decimal_of(r.un_realized_profit, "unRealizedProfit"),
            position_side=position_side(r.position_side),
            margin_type=margin_type(r.margin_type),
            leverage=_leverage(r.leverage),
            mark_price=price_or_none(r.mark_price, "markPrice"),
            liquidation_price=price_or_none(r.liquidation_price, "liquidationPrice"),
        )
        for r in rows
    )


class _Leverage(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    leverage: int
    max_notional_value: str | None = None


@_rest
def parse_leverage_response(payload: Payload) -> LeverageSetting:
    """POST ``/fapi/v1/leverage``."""
    answer = _convert(_json(payload, "leverage"), _Leverage, "leverage")
    notional = optional_decimal(answer.max_notional_value, "maxNotionalValue")
    return LeverageSetting(answer.symbol, answer.leverage, notional)


@_rest
def parse_margin_type_response(payload: Payload) -> None:
    """POST ``/fapi/v1/marginType`` answers ``{"code": 200, "msg": "success"}``."""
    answer = _convert(_json(payload, "marginType"), _Refusal, "marginType")
    if answer.code != 200:
        raise MalformedPayload(f"marginType answered code {answer.code}: {answer.msg}")


@_rest
def parse_position_side_dual(payload: Payload) -> bool:
    """GET ``/fapi/v1/positionSide/dual``: True when the account is in hedge mode."""
    body = _object(_json(payload, "positionSide/dual"), "positionSide/dual")
    return _convert(body.get("dualSidePosition"), bool, "dualSidePosition")


@_rest
def parse_listen_key(payload: Payload) -> str:
    """POST ``/api/v3/userDataStream`` or ``/fapi/v1/listenKey``."""
    body = _object(_json(payload, "listenKey"), "listenKey")
    key = _convert(body.get("listenKey"), str, "listenKey")
    if not key:
        raise MalformedPayload("listenKey is empty")
    return key


class _SymbolConfig(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    leverage: int
    margin_type: str | None = None
    is_auto_add_margin: bool = False
    max_notional_value: str | None = None


@_rest
def parse_symbol_config(payload: Payload) -> tuple[SymbolConfig, ...]:
    """GET ``/fapi/v1/symbolConfig``."""
    rows = _convert(_json(payload, "symbolConfig"), list[_SymbolConfig], "symbolConfig")
    return tuple(
        SymbolConfig(
            r.symbol,
            margin_type(r.margin_type),
            r.is_auto_add_margin,
            r.leverage,
            optional_decimal(r.max_notional_value, "maxNotionalValue"),
        )
        for r in rows
    )
