"""Small builders for domain messages used across tests."""

from __future__ import annotations

from decimal import Decimal

from app.domain import (
    Alert,
    AlertSeverity,
    BookTicker,
    Kline,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    Signal,
    SignalAction,
    SubmitOrder,
)


def kline(
    symbol: str = "BTCUSDT", open_time_ms: int = 0, close: str = "1", *, closed: bool = True
) -> Kline:
    price = Decimal(close)
    return Kline(
        symbol, "1m", open_time_ms, open_time_ms + 59_999, price, price, price, price,
        Decimal(1), price, 1, closed,
    )  # fmt: skip


def book(symbol: str = "BTCUSDT", bid: str = "1", ts_ms: int = 0) -> BookTicker:
    return BookTicker(symbol, Decimal(bid), Decimal(1), Decimal(bid) + 1, Decimal(1), ts_ms)


def signal(strategy: str = "s1", n: int = 0, symbol: str = "BTCUSDT") -> Signal:
    return Signal(strategy, symbol, SignalAction.ENTER_LONG, n, f"{strategy}-{n}")


def order(n: int = 0) -> SubmitOrder:
    return SubmitOrder(f"tb-{n}", "s1", "BTCUSDT", Side.BUY, OrderType.MARKET, Decimal(1), n)


def update(n: int = 0) -> OrderUpdated:
    return OrderUpdated(
        f"tb-{n}", "BTCUSDT", Side.BUY, OrderType.MARKET, OrderStatus.NEW, Decimal(1), Decimal(0), n
    )


def alert(n: int = 0) -> Alert:
    return Alert(AlertSeverity.WARNING, "test", f"alert {n}", n)
