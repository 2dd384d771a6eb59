"""Signal -> order shaping: side, quantity, order type and price, rounded onto the symbol's grid
and checked against its filters before anything is sent.

Pure functions plus `PriceBoard`, the gate's view of the last prices; no channels. A shaping
function returns the `SubmitOrder` or a `Denial` whose reason starts with the name of what
refused it (``price: ...``, ``size: ...``, ``filter LOT_SIZE: ...``).

- Entries: quantity = the signal's size hint, else ``default_entry_notional / price``; MARKET,
  or LIMIT resting on the passive side ``limit_offset_bps`` away from the best bid/ask (the last
  price when no book ticker was seen), GTC, with the executor's TTL.
- Exits and flattening: MARKET, never more than the caller says is held (the caller clips to the
  instance's position); reduceOnly on futures, which spot does not have.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from app.domain import (
    BookTicker,
    MarketType,
    OrderPurpose,
    OrderType,
    Side,
    Signal,
    SignalAction,
    SubmitOrder,
    TimeInForce,
)
from config.risk import OrderShapeSettings
from exchange.binance.rules import SymbolRules, check_order, round_order

__all__ = [
    "ClosingOrders",
    "Denial",
    "PriceBoard",
    "ShapedEntry",
    "close_order",
    "closing_side",
    "entry_side",
    "exit_side",
    "shape_entry",
]

_BPS = Decimal(10_000)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Denial:
    """A refusal; `reason` starts with the check's name, which `check` returns."""

    reason: str

    @property
    def check(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class ShapedEntry:
    """An entry order ready to send, the price it was valued at (the limit price for LIMIT,
    else the last price) and, for a symbol not TRADING, the STATUS filter's complaint — kept
    aside so the symbol-status pre-trade check can deny it under its own name."""

    order: SubmitOrder
    price: Decimal
    status_violation: str | None = None


@dataclass(slots=True)
class _Quote:
    bid: Decimal | None = None
    ask: Decimal | None = None
    close: Decimal | None = None
    mark: Decimal | None = None


class PriceBoard:
    """Last prices per symbol. `price` prefers the book mid, then the last closed bar's close,
    then the mark price: the mid is the freshest where it exists, closes the only thing a
    backtest has, and the mark a futures fallback."""

    def __init__(self) -> None:
        self._quotes: dict[str, _Quote] = {}

    def _quote(self, symbol: str) -> _Quote:
        quote = self._quotes.get(symbol)
        if quote is None:
            quote = self._quotes[symbol] = _Quote()
        return quote

    def on_book(self, book: BookTicker) -> Decimal | None:
        """Record a book ticker; returns its mid (None for a one-sided or empty book)."""
        quote = self._quote(book.symbol)
        quote.bid = book.bid_price if book.bid_price > 0 else None
        quote.ask = book.ask_price if book.ask_price > 0 else None
        if quote.bid is None or quote.ask is None:
            return None
        return (quote.bid + quote.ask) / 2

    def on_close(self, symbol: str, price: Decimal) -> None:
        if price > 0:
            self._quote(symbol).close = price

    def on_mark(self, symbol: str, price: Decimal) -> None:
        if price > 0:
            self._quote(symbol).mark = price

    def price(self, symbol: str) -> Decimal | None:
        quote = self._quotes.get(symbol)
        if quote is None:
            return None
        if quote.bid is not None and quote.ask is not None:
            return (quote.bid + quote.ask) / 2
        return quote.close if quote.close is not None else quote.mark

    def best(self, symbol: str, side: Side) -> Decimal | None:
        """The passive side of the book for an order on `side`: the bid for a buy, the ask for
        a sell."""
        quote = self._quotes.get(symbol)
        if quote is None:
            return None
        return quote.bid if side is Side.BUY else quote.ask


def entry_side(action: SignalAction) -> Side:
    return Side.BUY if action is SignalAction.ENTER_LONG else Side.SELL


def exit_side(action: SignalAction) -> Side:
    """The side that closes: selling closes a long, buying closes a short."""
    return Side.SELL if action is SignalAction.EXIT_LONG else Side.BUY


def closing_side(position: Decimal) -> Side:
    return Side.SELL if position > 0 else Side.BUY


@dataclass(slots=True)
class _Closing:
    strategy: str
    symbol: str
    quantity: Decimal
    filled: Decimal = _ZERO


class ClosingOrders:
    """Exit and flatten orders in flight, so the next close of the same position is clipped to
    what they leave: two exits of a whole position must not sell it twice (on spot, which has
    no reduceOnly, the second would sell holdings that are not this instance's)."""

    def __init__(self) -> None:
        self._orders: dict[str, _Closing] = {}

    def add(self, client_order_id: str, strategy: str, symbol: str, quantity: Decimal) -> None:
        self._orders[client_order_id] = _Closing(strategy, symbol, quantity)

    def update(self, client_order_id: str, *, filled_quantity: Decimal, final: bool) -> None:
        closing = self._orders.get(client_order_id)
        if closing is None:
            return
        if final:
            del self._orders[client_order_id]
        else:
            closing.filled = max(closing.filled, filled_quantity)

    def in_flight(self, strategy: str, symbol: str) -> Decimal:
        """What the instance's closes in flight on `symbol` will still take off its position."""
        return sum(
            (
                max(c.quantity - c.filled, _ZERO)
                for c in self._orders.values()
                if c.strategy == strategy and c.symbol == symbol
            ),
            start=_ZERO,
        )

    def closable(self, position: Decimal, side: Side, strategy: str, symbol: str) -> Decimal:
        """How much an order on `side` may close of `position` (signed): nothing unless it is
        the closing side, and never more than the position less the closes in flight."""
        if position == 0 or side is not closing_side(position):
            return _ZERO
        return max(abs(position) - self.in_flight(strategy, symbol), _ZERO)

    def __len__(self) -> int:
        return len(self._orders)

    def snapshot(self) -> list[dict[str, str]]:
        return [
            {
                "client_order_id": cid,
                "strategy": c.strategy,
                "symbol": c.symbol,
                "quantity": str(c.quantity),
                "filled": str(c.filled),
            }
            for cid, c in self._orders.items()
        ]

    def restore(self, rows: list[dict[str, str]]) -> None:
        """Take a `snapshot()`; KeyError/ValueError/ArithmeticError when it does not fit."""
        orders = {
            row["client_order_id"]: _Closing(
                row["strategy"], row["symbol"], Decimal(row["quantity"]), Decimal(row["filled"])
            )
            for row in rows
        }
        self._orders = orders


def _limit_price(
    board: PriceBoard, symbol: str, side: Side, last: Decimal, offset_bps: Decimal
) -> Decimal:
    base = board.best(symbol, side) or last
    offset = offset_bps / _BPS
    return base * (1 - offset) if side is Side.BUY else base * (1 + offset)


def _rounded_to_zero(rules: SymbolRules, quantity: Decimal, *, market: bool) -> Denial:
    lot, name = rules.lot_size, "LOT_SIZE"
    market_lot = rules.market_lot_size
    if market and market_lot is not None and market_lot.step_size > 0:
        lot, name = market_lot, "MARKET_LOT_SIZE"
    step = "" if lot is None else f" (stepSize {lot.step_size.normalize():f})"
    return Denial(f"filter {name}: quantity {quantity.normalize():f} rounds down to 0{step}")


def shape_entry(
    signal: Signal,
    *,
    market: MarketType,
    rules: SymbolRules | None,
    settings: OrderShapeSettings,
    board: PriceBoard,
    client_order_id: str,
    now_ms: int,
) -> ShapedEntry | Denial:
    side = entry_side(signal.action)
    symbol = signal.symbol
    if market is MarketType.SPOT and side is Side.SELL:
        return Denial("market: spot cannot open a short")
    last = board.price(symbol)
    if last is None:
        return Denial(f"price: no price seen for {symbol} yet")
    if signal.size_hint is not None:
        if not (signal.size_hint.is_finite() and signal.size_hint > 0):
            return Denial(f"size: size hint {signal.size_hint} is not a positive quantity")
        quantity = signal.size_hint
    elif settings.default_entry_notional is not None:
        quantity = settings.default_entry_notional / last
    else:
        return Denial("size: no size hint and no risk.orders.default_entry_notional")
    if rules is None:
        return Denial(f"symbol_status: no exchange rules for {symbol}")
    limit = settings.entry_type == "limit"
    order_type = OrderType.LIMIT if limit else OrderType.MARKET
    price = _limit_price(board, symbol, side, last, settings.limit_offset_bps) if limit else None
    quantity, price = round_order(
        rules, side=side, order_type=order_type, quantity=quantity, price=price
    )
    if quantity <= 0:
        return _rounded_to_zero(rules, signal.size_hint or quantity, market=not limit)
    status_violation = None
    checked = rules
    if rules.status != "TRADING":
        # Judged by the symbol-status check under its own name; the other filters still apply.
        status_violation = f"filter STATUS: symbol {symbol} is {rules.status}, not TRADING"
        checked = dataclasses.replace(rules, status="TRADING")
    violation = check_order(
        checked,
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        reference_price=last,
    )
    if violation is not None:
        return Denial(f"filter {violation.reason}")
    order = SubmitOrder(
        client_order_id=client_order_id,
        strategy=signal.strategy,
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        ts_ms=now_ms,
        price=price,
        time_in_force=TimeInForce.GTC if limit else None,
        reduce_only=False,
        signal_id=signal.signal_id,
        purpose=OrderPurpose.ENTRY,
        ttl_ms=round(settings.limit_ttl_s * 1000) if limit else None,
    )
    return ShapedEntry(
        order=order, price=price if price is not None else last, status_violation=status_violation
    )


def close_order(
    *,
    strategy: str,
    symbol: str,
    side: Side,
    quantity: Decimal,
    purpose: OrderPurpose,
    market: MarketType,
    rules: SymbolRules | None,
    reference_price: Decimal | None,
    client_order_id: str,
    now_ms: int,
    signal_id: str | None = None,
) -> SubmitOrder | Denial:
    """A MARKET order closing `quantity` (already clipped to what is held) of a position."""
    if rules is None:
        return Denial(f"filter STATUS: no exchange rules for {symbol}")
    rounded, _ = round_order(
        rules, side=side, order_type=OrderType.MARKET, quantity=quantity, price=None
    )
    if rounded <= 0:
        return _rounded_to_zero(rules, quantity, market=True)
    reduce_only = market is MarketType.USDM
    violation = check_order(
        rules,
        side=side,
        order_type=OrderType.MARKET,
        quantity=rounded,
        price=None,
        reference_price=reference_price,
        reduce_only=reduce_only,
    )
    if violation is not None:
        return Denial(f"filter {violation.reason}")
    return SubmitOrder(
        client_order_id=client_order_id,
        strategy=strategy,
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET,
        quantity=rounded,
        ts_ms=now_ms,
        reduce_only=reduce_only,
        signal_id=signal_id,
        purpose=purpose,
    )
