"""Domain types: small immutable messages and enums, stdlib only. Everything depends on this
package; it depends on nothing of ours."""

from app.domain.account import AccountUpdated, Balance, PositionSnapshot
from app.domain.clock import Clock, ManualClock, SystemClock
from app.domain.enums import (
    AlertSeverity,
    ControlAction,
    MarketType,
    Mode,
    OrderStatus,
    OrderType,
    Side,
    SignalAction,
    TimeInForce,
    TradingState,
)
from app.domain.market import BookTicker, Kline, MarkPrice
from app.domain.orders import (
    CancelOrder,
    Fill,
    OrderDenied,
    OrderEvent,
    OrderRequest,
    OrderUpdated,
    SubmitOrder,
)
from app.domain.signals import Signal
from app.domain.system import Alert, ControlCommand, TradingStateChanged

__all__ = [
    "AccountUpdated",
    "Alert",
    "AlertSeverity",
    "Balance",
    "BookTicker",
    "CancelOrder",
    "Clock",
    "ControlAction",
    "ControlCommand",
    "Fill",
    "Kline",
    "ManualClock",
    "MarkPrice",
    "MarketType",
    "Mode",
    "OrderDenied",
    "OrderEvent",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdated",
    "PositionSnapshot",
    "Side",
    "Signal",
    "SignalAction",
    "SubmitOrder",
    "SystemClock",
    "TimeInForce",
    "TradingState",
    "TradingStateChanged",
]
