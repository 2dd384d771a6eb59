"""Domain types: small immutable messages and enums, stdlib only. Everything depends on this
package; it depends on nothing of ours."""

from app.domain.account import (
    AccountEvent,
    AccountUpdated,
    Balance,
    BalanceChanged,
    PositionSnapshot,
)
from app.domain.clock import Clock, ManualClock, SystemClock
from app.domain.enums import (
    AlertSeverity,
    ControlAction,
    ExecutionType,
    MarketType,
    Mode,
    OrderOrigin,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Side,
    SignalAction,
    TimeInForce,
    TradingState,
)
from app.domain.market import BookTicker, Kline, MarkPrice
from app.domain.orders import (
    AlgoOrderUpdated,
    CancelOrder,
    Fill,
    OrderDenied,
    OrderEvent,
    OrderRequest,
    OrderUpdated,
    QuickFill,
    ReplaceOrder,
    SubmitOrder,
)
from app.domain.signals import Signal
from app.domain.system import Alert, ControlAcknowledged, ControlCommand, TradingStateChanged

__all__ = [
    "AccountEvent",
    "AccountUpdated",
    "Alert",
    "AlertSeverity",
    "AlgoOrderUpdated",
    "Balance",
    "BalanceChanged",
    "BookTicker",
    "CancelOrder",
    "Clock",
    "ControlAcknowledged",
    "ControlAction",
    "ControlCommand",
    "ExecutionType",
    "Fill",
    "Kline",
    "ManualClock",
    "MarkPrice",
    "MarketType",
    "Mode",
    "OrderDenied",
    "OrderEvent",
    "OrderOrigin",
    "OrderPurpose",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdated",
    "PositionSnapshot",
    "QuickFill",
    "ReplaceOrder",
    "Side",
    "Signal",
    "SignalAction",
    "SubmitOrder",
    "SystemClock",
    "TimeInForce",
    "TradingState",
    "TradingStateChanged",
]
