"""Domain messages to table rows and back: pure functions, no I/O.

Each table has a ``*_values`` function giving the row's columns as a dict (what the recorder's
writer binds: building a SQLModel instance costs ~70 µs, a dict ~2 µs), a ``*_to_row`` function
wrapping it in the row class, and where the domain needs it back a ``*_from_row`` function.
Enums are stored as their values; Decimals pass through untouched (``ExactDecimal`` keeps them
exact); times stay epoch milliseconds.

Orders and fills are mapped in ``database.order_mapping`` and re-exported here, so this module
stays the one namespace for every table. The positions table follows ``apply_fill``: the shared
average-cost rule (``app.domain.position_after_fill``) with this table's way of valuing fees.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from app.domain import (
    Alert,
    AlertSeverity,
    Balance,
    Fill,
    Kline,
    OrderDenied,
    PositionState,
    Signal,
    SignalAction,
    TradingState,
    TradingStateChanged,
    position_after_fill,
)
from database.models import (
    AlertRow,
    BalanceRow,
    CandleRow,
    PositionRow,
    SignalRow,
    TradingStateRow,
)
from database.order_mapping import (
    STATUS_RANK,
    fill_from_row,
    fill_to_row,
    fill_values,
    intent_to_row,
    intent_values,
    order_from_row,
    order_to_row,
    order_values,
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


# -- positions ------------------------------------------------------------------------------------
def _fee_in_quote(fill: Fill) -> Decimal:
    """The fee valued in the symbol's quote asset; 0 when paid in a third asset (BNB), which
    the account's balances show instead."""
    if fill.fee_in_base:
        return fill.fee * fill.price
    if fill.fee_asset and fill.symbol.endswith(fill.fee_asset):
        return fill.fee
    return _ZERO


def apply_fill(position: PositionState, fill: Fill) -> PositionState:
    """The position after one fill (the caller feeds each trade once), fees in the quote asset
    (a spot base-asset fee at the fill price) deducted from the realized PnL."""
    return position_after_fill(position, fill, fee=_fee_in_quote(fill)).after


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
        "previous": None if change.previous is None else change.previous.value,
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
