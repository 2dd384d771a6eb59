"""Builders for trade-management tests: bars with chosen OHLC, contexts, fills."""

from __future__ import annotations

from decimal import Decimal

from app.domain import Fill, Kline, OrderStatus, OrderType, OrderUpdated, Side, Signal, SignalAction
from strategies.context import StrategyContext

STEP = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % STEP


def ohlc(n: int, o: float, h: float, low: float, c: float, symbol: str = "BTCUSDT") -> Kline:
    """The closed 1m bar number `n` (opening at T0 + n minutes)."""
    opened = T0 + n * STEP
    return Kline(
        symbol, "1m", opened, opened + STEP - 1, Decimal(str(o)), Decimal(str(h)),
        Decimal(str(low)), Decimal(str(c)), Decimal(10), Decimal(1000), 10, True,
    )  # fmt: skip


def flat(n: int, price: float = 100.0, symbol: str = "BTCUSDT", spread: float = 0.5) -> Kline:
    return ohlc(n, price, price + spread, price - spread, price, symbol)


def context(symbol: str = "BTCUSDT", instance: str = "t") -> StrategyContext:
    return StrategyContext(strategy=instance, symbol=symbol, interval="1m")


def entry_at(
    ctx: StrategyContext, n: int, *, short: bool = False, confidence: float = 1.0
) -> Signal:
    """The strategy's entry at the close of bar `n`."""
    ctx.now_ms = T0 + (n + 1) * STEP - 1
    action = SignalAction.ENTER_SHORT if short else SignalAction.ENTER_LONG
    return ctx.make_signal(action, "test entry", confidence=confidence)


def filled(
    *,
    side: Side,
    quantity: str,
    price: str,
    trade_id: int,
    ts_ms: int,
    signal_id: str | None = None,
    client_order_id: str = "c-1",
    symbol: str = "BTCUSDT",
    status: OrderStatus = OrderStatus.FILLED,
    fee: str = "0",
    fee_asset: str = "USDT",
    strategy: str = "t",
) -> OrderUpdated:
    fill = Fill(
        trade_id=trade_id,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        price=Decimal(price),
        quantity=Decimal(quantity),
        fee=Decimal(fee),
        fee_asset=fee_asset,
        is_maker=False,
        ts_ms=ts_ms,
    )
    return OrderUpdated(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET,
        status=status,
        quantity=Decimal(quantity),
        filled_quantity=Decimal(quantity),
        ts_ms=ts_ms,
        average_fill_price=Decimal(price),
        fill=fill,
        strategy=strategy,
        signal_id=signal_id,
    )
