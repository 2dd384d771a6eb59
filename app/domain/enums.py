"""Enumerations shared by every layer. Values are the lower-case words used in config and logs."""

from enum import StrEnum


class Mode(StrEnum):
    """Where orders go. The same strategy, risk and executor code runs in all three."""

    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"


class MarketType(StrEnum):
    SPOT = "spot"
    USDM = "usdm"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    LIMIT_MAKER = "limit_maker"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT_MARKET = "take_profit_market"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP_MARKET = "trailing_stop_market"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTX = "gtx"  # post-only
    GTD = "gtd"  # good till a date (futures)


class OrderStatus(StrEnum):
    """Every Binance order status, plus the states only we can know."""

    PENDING_NEW = "pending_new"  # ours: intent recorded, not yet acknowledged
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    EXPIRED_IN_MATCH = "expired_in_match"
    UNKNOWN = "unknown"  # ours: sent, but the exchange's answer was lost

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
    }
)


class ExecutionType(StrEnum):
    """What happened to an order in one exchange event (Binance's `x`)."""

    NEW = "new"
    TRADE = "trade"
    CANCELED = "canceled"
    REPLACED = "replaced"
    REJECTED = "rejected"
    EXPIRED = "expired"
    TRADE_PREVENTION = "trade_prevention"  # self-trade prevention expired part of the order
    AMENDMENT = "amendment"  # futures: price/quantity modified in place
    CALCULATED = "calculated"  # futures: liquidation or ADL execution


class OrderOrigin(StrEnum):
    """Who created the order: an API client (us or anyone with a key), or the exchange itself."""

    CLIENT = "client"
    LIQUIDATION = "liquidation"  # futures client id `autoclose-...` or order type LIQUIDATION
    ADL = "adl"  # auto-deleveraging: client id `adl_autoclose...` or legacy status NEW_ADL
    SETTLEMENT = "settlement"  # delisting settlement: client id `settlement_autoclose-...`
    DELIVERY = "delivery"  # delivery close-out: client id `delivery_autoclose-...`/`delivery-...`
    INSURANCE = "insurance"  # liquidation through the insurance fund: legacy NEW_INSURANCE


class SignalAction(StrEnum):
    ENTER_LONG = "enter_long"
    ENTER_SHORT = "enter_short"
    EXIT_LONG = "exit_long"
    EXIT_SHORT = "exit_short"


class TradingState(StrEnum):
    """The risk gate's state: what kinds of orders may leave it."""

    ACTIVE = "active"
    REDUCING = "reducing"  # only exits and reduce-only orders
    HALTED = "halted"  # only exits and reduce-only orders; nothing new


class OrderPurpose(StrEnum):
    """Why the risk gate sent an order. Only ENTRY can grow a position: in REDUCING and HALTED
    nothing else leaves the gate, and spot (which has no reduceOnly flag) relies on it."""

    ENTRY = "entry"
    EXIT = "exit"  # a strategy's or trade management's exit, never more than the position
    FLATTEN = "flatten"  # the kill switch closing a position
    PROTECTIVE_STOP = "protective_stop"  # exchange-side stop guarding a filled entry


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ControlAction(StrEnum):
    HALT = "halt"
    RESUME = "resume"
    FLATTEN = "flatten"
    SHUTDOWN = "shutdown"
