"""Domain messages to table rows and back: pure functions, no I/O.

Each table has a ``*_values`` function giving the row's columns as a dict (what the recorder's
writer binds: building a SQLModel instance costs ~70 µs, a dict ~2 µs), a ``*_to_row`` function
wrapping it in the row class, and where the domain needs it back a ``*_from_row`` function.
Enums are stored as their values; Decimals pass through untouched (``ExactDecimal`` keeps them
exact); times stay epoch milliseconds.

What a row cannot give back: an ``OrderUpdated`` read from its row has no ``fill`` and no
``execution_type`` (they describe one event, the row the order's latest state) and its
``ts_ms`` is the row's ``updated_ms``.

Position accounting (``apply_fill``) lives here too, as a pure function: it repeats the rules of
``risk.book.RiskBook.on_fill`` and ``executor.positions.NetPositions.add`` (sibling packages may
not import each other); the three should move together into ``app.domain``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.domain import (
    Alert,
    AlertSeverity,
    Balance,
    Kline,
    OrderDenied,
    OrderOrigin,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    Signal,
    SignalAction,
    SubmitOrder,
    TimeInForce,
    TradingState,
    TradingStateChanged,
)
from app.domain.orders import Fill
from database.models import (
    AlertRow,
    BalanceRow,
    CandleRow,
    FillRow,
    OrderRow,
    PositionRow,
    SignalRow,
    TradingStateRow,
)

__all__ = [
    "CANDLE_INTERVAL",
    "STATUS_RANK",
    "PositionState",
    "alert_from_row",
    "alert_to_row",
    "alert_values",
    "apply_fill",
    "approval_values",
    "balance_to_row",
    "balance_values",
    "candle_from_row",
    "candle_to_row",
    "candle_values",
    "denial_values",
    "fill_from_row",
    "fill_to_row",
    "fill_values",
    "intent_to_row",
    "intent_values",
    "order_from_row",
    "order_to_row",
    "order_values",
    "position_from_row",
    "position_values",
    "signal_from_row",
    "signal_to_row",
    "signal_values",
    "trading_state_from_row",
    "trading_state_to_row",
    "trading_state_values",
]

CANDLE_INTERVAL = "1m"
_ZERO = Decimal(0)

#: How far along its life an order is. The recorder never replaces a stored order state with an
#: incoming one of lower rank at the same filled quantity (a late NEW after FILLED), and never a
#: final state with a non-final one. UNKNOWN (sent, answer lost) comes after PENDING_NEW and
#: before anything the exchange said; every final state shares the top rank.
STATUS_RANK: dict[OrderStatus, int] = {
    OrderStatus.PENDING_NEW: 0,
    OrderStatus.UNKNOWN: 1,
    OrderStatus.NEW: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
    OrderStatus.PENDING_CANCEL: 4,
    OrderStatus.FILLED: 5,
    OrderStatus.CANCELED: 5,
    OrderStatus.REJECTED: 5,
    OrderStatus.EXPIRED: 5,
    OrderStatus.EXPIRED_IN_MATCH: 5,
}


def _value(member: Any) -> Any:
    return None if member is None else member.value


# -- orders ---------------------------------------------------------------------------------------
def order_values(update: OrderUpdated) -> dict[str, Any]:
    """The order's row as of this update (``created_ms`` is this update's time: an upsert keeps
    the stored one)."""
    return {
        "client_order_id": update.client_order_id,
        "exchange_order_id": update.exchange_order_id,
        "strategy": update.strategy,
        "symbol": update.symbol,
        "side": update.side.value,
        "order_type": update.order_type.value,
        "time_in_force": _value(update.time_in_force),
        "purpose": _value(update.purpose),
        "origin": update.origin.value,
        "signal_id": update.signal_id,
        "quantity": update.quantity,
        "price": update.price,
        "stop_price": update.stop_price,
        "reduce_only": update.reduce_only,
        "status": update.status.value,
        "is_open": not update.status.is_final,
        "filled_quantity": update.filled_quantity,
        "average_fill_price": update.average_fill_price,
        "reason": update.reason,
        "created_ms": update.ts_ms,
        "updated_ms": update.ts_ms,
    }


def order_to_row(update: OrderUpdated) -> OrderRow:
    return OrderRow(**order_values(update))


def intent_values(order: SubmitOrder) -> dict[str, Any]:
    """The write-ahead row of an order about to be sent: PENDING_NEW, nothing filled."""
    return {
        "client_order_id": order.client_order_id,
        "exchange_order_id": None,
        "strategy": order.strategy,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "time_in_force": _value(order.time_in_force),
        "purpose": order.purpose.value,
        "origin": OrderOrigin.CLIENT.value,
        "signal_id": order.signal_id,
        "quantity": order.quantity,
        "price": order.price,
        "stop_price": order.stop_price,
        "reduce_only": order.reduce_only,
        "status": OrderStatus.PENDING_NEW.value,
        "is_open": True,
        "filled_quantity": _ZERO,
        "average_fill_price": None,
        "reason": "",
        "created_ms": order.ts_ms,
        "updated_ms": order.ts_ms,
    }


def intent_to_row(order: SubmitOrder) -> OrderRow:
    return OrderRow(**intent_values(order))


def order_from_row(row: OrderRow) -> OrderUpdated:
    return OrderUpdated(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        order_type=OrderType(row.order_type),
        status=OrderStatus(row.status),
        quantity=row.quantity,
        filled_quantity=row.filled_quantity,
        ts_ms=row.updated_ms,
        price=row.price,
        average_fill_price=row.average_fill_price,
        exchange_order_id=row.exchange_order_id,
        reason=row.reason,
        origin=OrderOrigin(row.origin),
        reduce_only=row.reduce_only,
        stop_price=row.stop_price,
        time_in_force=None if row.time_in_force is None else TimeInForce(row.time_in_force),
        strategy=row.strategy,
        signal_id=row.signal_id,
        purpose=None if row.purpose is None else OrderPurpose(row.purpose),
    )


# -- fills ----------------------------------------------------------------------------------------
def fill_values(fill: Fill, *, strategy: str, client_order_id: str | None = None) -> dict[str, Any]:
    """A fill's row. `client_order_id` replaces the fill's own when that is empty (spot
    ``myTrades`` do not carry it; the order update they arrive with does)."""
    return {
        "symbol": fill.symbol,
        "trade_id": fill.trade_id,
        "client_order_id": fill.client_order_id or client_order_id or "",
        "exchange_order_id": fill.exchange_order_id,
        "strategy": strategy,
        "side": fill.side.value,
        "price": fill.price,
        "quantity": fill.quantity,
        "fee": fill.fee,
        "fee_asset": fill.fee_asset,
        "is_maker": fill.is_maker,
        "realized_pnl": fill.realized_pnl,
        "ts_ms": fill.ts_ms,
    }


def fill_to_row(fill: Fill, *, strategy: str, client_order_id: str | None = None) -> FillRow:
    return FillRow(**fill_values(fill, strategy=strategy, client_order_id=client_order_id))


def fill_from_row(row: FillRow) -> Fill:
    return Fill(
        trade_id=row.trade_id,
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        price=row.price,
        quantity=row.quantity,
        fee=row.fee,
        fee_asset=row.fee_asset,
        is_maker=row.is_maker,
        ts_ms=row.ts_ms,
        realized_pnl=row.realized_pnl,
        exchange_order_id=row.exchange_order_id,
    )


# -- positions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PositionState:
    """A strategy instance's net position in one symbol: signed quantity (short < 0), average
    entry price (0 when flat) and the PnL realized so far, fees in the quote asset deducted."""

    quantity: Decimal = _ZERO
    average_price: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO


def _fee_in_quote(fill: Fill) -> Decimal:
    """The fee valued in the symbol's quote asset; 0 when paid in a third asset (BNB), which
    the account's balances show instead."""
    if fill.fee_in_base:
        return fill.fee * fill.price
    if fill.fee_asset and fill.symbol.endswith(fill.fee_asset):
        return fill.fee
    return _ZERO


def apply_fill(position: PositionState, fill: Fill) -> PositionState:
    """The position after one fill (the caller feeds each trade once).

    The held quantity moves by `Fill.position_change` (a spot base-asset fee shrinks it; the fee
    is also charged to PnL at the fill price). Opening or adding moves the average entry price;
    reducing realizes (price - average) on the closed part and keeps the average; crossing zero
    opens the remainder at the fill's price.
    """
    old = position.quantity
    delta = fill.position_change
    moved = abs(delta)
    new = old + delta
    realized = position.realized_pnl - _fee_in_quote(fill)
    average = position.average_price
    if old == 0 or (old > 0) == (delta > 0):
        total = abs(old) + moved
        if total:
            average = (abs(old) * average + moved * fill.price) / total
    else:
        closed = min(abs(old), moved)
        direction = 1 if old > 0 else -1
        realized += closed * (fill.price - average) * direction
        if new == 0:
            average = _ZERO
        elif (new > 0) != (old > 0):
            average = fill.price
    return PositionState(new, average, realized)


def position_values(
    strategy: str, symbol: str, position: PositionState, ts_ms: int
) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "symbol": symbol,
        "quantity": position.quantity,
        "average_price": position.average_price,
        "realized_pnl": position.realized_pnl,
        "updated_ms": ts_ms,
    }


def position_from_row(row: PositionRow) -> PositionState:
    return PositionState(row.quantity, row.average_price, row.realized_pnl)


# -- signals and the gate's answers ---------------------------------------------------------------
def signal_values(signal: Signal) -> dict[str, Any]:
    """The signal as emitted; the answer columns stay empty until the gate's answer arrives."""
    return {
        "signal_id": signal.signal_id,
        "strategy": signal.strategy,
        "symbol": signal.symbol,
        "action": signal.action.value,
        "size_hint": signal.size_hint,
        "confidence": signal.confidence,
        "reason": signal.reason,
        # JSON keeps tags that contain commas apart.
        "tags": json.dumps(list(signal.tags)) if signal.tags else "",
        "ts_ms": signal.ts_ms,
        "outcome": "",
        "client_order_id": None,
        "denial_reason": None,
    }


def signal_to_row(signal: Signal) -> SignalRow:
    return SignalRow(**signal_values(signal))


def signal_from_row(row: SignalRow) -> Signal:
    return Signal(
        strategy=row.strategy,
        symbol=row.symbol,
        action=SignalAction(row.action),
        ts_ms=row.ts_ms,
        signal_id=row.signal_id,
        size_hint=row.size_hint,
        confidence=row.confidence,
        reason=row.reason,
        tags=tuple(json.loads(row.tags)) if row.tags else (),
    )


def _answer(
    signal_id: str,
    strategy: str,
    symbol: str,
    ts_ms: int,
    outcome: str,
    client_order_id: str | None,
    denial_reason: str | None,
) -> dict[str, Any]:
    """A signal row carrying only the gate's answer. The answer may be recorded before its
    signal (they travel on different channels): the row then holds placeholders (action "")
    that the signal's own upsert fills in, and the signal's upsert never touches the answer."""
    return {
        "signal_id": signal_id,
        "strategy": strategy,
        "symbol": symbol,
        "action": "",
        "size_hint": None,
        "confidence": 1.0,
        "reason": "",
        "tags": "",
        "ts_ms": ts_ms,
        "outcome": outcome,
        "client_order_id": client_order_id,
        "denial_reason": denial_reason,
    }


def denial_values(denied: OrderDenied) -> dict[str, Any] | None:
    """The "denied" answer for the signal it names (None: no signal id to attach it to)."""
    if denied.signal_id is None:
        return None
    return _answer(
        denied.signal_id, denied.strategy, denied.symbol, denied.ts_ms, "denied",
        denied.client_order_id, denied.reason,
    )  # fmt: skip


def approval_values(
    *, signal_id: str | None, strategy: str, symbol: str, client_order_id: str, ts_ms: int
) -> dict[str, Any] | None:
    """The "approved" answer: an order carrying the signal left the gate."""
    if signal_id is None:
        return None
    return _answer(signal_id, strategy, symbol, ts_ms, "approved", client_order_id, None)


# -- candles, balances, trading state, alerts ------------------------------------------------------
def candle_values(kline: Kline) -> dict[str, Any]:
    """A closed 1-minute bar's row; anything else is refused (only closed 1m bars are kept)."""
    if not kline.closed or kline.interval != CANDLE_INTERVAL:
        raise ValueError(
            f"only closed {CANDLE_INTERVAL} bars are recorded, not "
            f"{kline.interval} closed={kline.closed}"
        )
    return {
        "symbol": kline.symbol,
        "open_time_ms": kline.open_time_ms,
        "close_time_ms": kline.close_time_ms,
        "open": kline.open,
        "high": kline.high,
        "low": kline.low,
        "close": kline.close,
        "volume": kline.volume,
        "quote_volume": kline.quote_volume,
        "trades": kline.trades,
    }


def candle_to_row(kline: Kline) -> CandleRow:
    return CandleRow(**candle_values(kline))


def candle_from_row(row: CandleRow) -> Kline:
    return Kline(
        row.symbol, CANDLE_INTERVAL, row.open_time_ms, row.close_time_ms, row.open, row.high,
        row.low, row.close, row.volume, row.quote_volume, row.trades, True,
    )  # fmt: skip


def balance_values(balance: Balance, ts_ms: int) -> dict[str, Any]:
    return {
        "asset": balance.asset,
        "free": balance.free,
        "locked": balance.locked,
        "updated_ms": ts_ms,
    }


def balance_to_row(balance: Balance, ts_ms: int) -> BalanceRow:
    return BalanceRow(**balance_values(balance, ts_ms))


def trading_state_values(change: TradingStateChanged) -> dict[str, Any]:
    return {
        "state": change.state.value,
        "previous": _value(change.previous),
        "reason": change.reason,
        "ts_ms": change.ts_ms,
    }


def trading_state_to_row(change: TradingStateChanged) -> TradingStateRow:
    return TradingStateRow(**trading_state_values(change))


def trading_state_from_row(row: TradingStateRow) -> TradingStateChanged:
    previous = None if row.previous is None else TradingState(row.previous)
    return TradingStateChanged(TradingState(row.state), previous, row.reason, row.ts_ms)


def alert_values(alert: Alert) -> dict[str, Any]:
    return {
        "ts_ms": alert.ts_ms,
        "severity": alert.severity.value,
        "source": alert.source,
        "title": alert.title,
        "detail": alert.detail,
    }


def alert_to_row(alert: Alert) -> AlertRow:
    return AlertRow(**alert_values(alert))


def alert_from_row(row: AlertRow) -> Alert:
    return Alert(AlertSeverity(row.severity), row.source, row.title, row.ts_ms, row.detail)
