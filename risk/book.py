"""The risk gate's portfolio view, pure and synchronous (no bus, no clock: times come in as ms).

`RiskBook` keeps positions per (strategy instance, symbol) from the fills the executor stamps,
the last known prices, the orders sent but not final (so a burst of entry signals cannot pass
the limits before the first fill arrives), realised PnL net of fees, equity and the UTC day's
counters. PnL is computed here with average-cost accounting the same way for spot and futures
(never `Fill.realized_pnl`), so paper, live and backtest report the same numbers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.domain import Fill, PositionState, Side, position_after_fill

__all__ = ["DEFAULT_QUOTE_ASSETS", "SEEN_TRADE_IDS", "RiskBook", "RoundTrip"]

DEFAULT_QUOTE_ASSETS: tuple[str, ...] = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB")
# Trade ids remembered to make fills idempotent (and kept in the snapshot): a replayed or
# duplicated fill older than this many trades is no longer recognised.
SEEN_TRADE_IDS = 10_000
DAY_MS = 86_400_000
_ZERO = Decimal(0)
_SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A position of one instance on one symbol went back to flat (or flipped through it)."""

    strategy: str
    symbol: str
    pnl: Decimal  # accumulated since the position opened, net of quote-valued fees
    ts_ms: int


@dataclass(slots=True)
class _Position:
    quantity: Decimal = _ZERO  # signed
    average_price: Decimal = _ZERO
    trip_pnl: Decimal = _ZERO  # realised PnL and fees since the position opened


@dataclass(slots=True)
class _Pending:
    strategy: str
    symbol: str
    side: Side
    quantity: Decimal
    is_entry: bool
    filled: Decimal = _ZERO

    @property
    def remaining(self) -> Decimal:
        return max(self.quantity - self.filled, _ZERO)


def _signed(side: Side, quantity: Decimal) -> Decimal:
    return quantity if side is Side.BUY else -quantity


class RiskBook:
    """The gate's portfolio view: positions per (strategy, symbol) from stamped fills, prices,
    pending (sent, not final) orders, PnL, equity, the UTC day's counters."""

    def __init__(
        self, *, capital: Decimal, quote_assets: tuple[str, ...] = DEFAULT_QUOTE_ASSETS
    ) -> None:
        self._capital = capital
        # Longest first, so FDUSD wins over USD-like shorter suffixes.
        self._quote_assets = tuple(sorted(quote_assets, key=len, reverse=True))
        self._positions: dict[tuple[str, str], _Position] = {}
        self._prices: dict[str, Decimal] = {}
        self._pending: dict[str, _Pending] = {}
        self._realised = _ZERO
        self.fees_other: dict[str, Decimal] = {}
        self._seen: set[tuple[str, int]] = set()
        self._seen_order: deque[tuple[str, int]] = deque()
        self._day: int | None = None
        self._day_open_equity = capital
        self._entries_today: dict[str, int] = {}
        self._quantity_today: dict[str, Decimal] = {}
        self._last_entry_ms: dict[str, int] = {}

    # -- fills -------------------------------------------------------------------------------

    def quote_asset(self, symbol: str) -> str | None:
        """The symbol's quote asset: the longest configured quote asset it ends with."""
        for asset in self._quote_assets:
            if symbol.endswith(asset) and len(symbol) > len(asset):
                return asset
        return None

    def _fee_in_quote(self, fill: Fill) -> Decimal | None:
        """The fee valued in the quote asset, or None when it is paid in a third asset."""
        quote = self.quote_asset(fill.symbol)
        if quote is None:
            return None
        if fill.fee_asset == quote:
            return fill.fee
        if fill.fee_in_base:
            return fill.fee * fill.price
        return None

    def _remember(self, key: tuple[str, int]) -> None:
        self._seen.add(key)
        self._seen_order.append(key)
        while len(self._seen_order) > SEEN_TRADE_IDS:
            self._seen.discard(self._seen_order.popleft())

    def on_fill(self, *, strategy: str, fill: Fill) -> RoundTrip | None:
        """Book one fill; idempotent per (symbol, trade_id). Returns the round trip when the
        instance's position on the symbol returns to 0 or crosses it."""
        key = (fill.symbol, fill.trade_id)
        if key in self._seen:
            return None
        self._remember(key)
        if fill.symbol not in self._prices:
            # Only as a first price: a late fill (reconciliation after a restart) must not
            # overwrite a fresher mark/mid.
            self._prices[fill.symbol] = fill.price
        fee = self._fee_in_quote(fill)
        if fee is None:
            if fill.fee:
                self.fees_other[fill.fee_asset] = (
                    self.fees_other.get(fill.fee_asset, _ZERO) + fill.fee
                )
            fee = _ZERO
        self._realised -= fee
        position = self._positions.setdefault((strategy, fill.symbol), _Position())
        # Quantity and average by the shared rule (a spot fee taken in the base asset shrinks
        # what is held; that fee is also charged, at the fill price, to PnL above). The book
        # keeps its own PnL: the gross part from `change`, fees split per round trip here.
        change = position_after_fill(PositionState(position.quantity, position.average_price), fill)
        trip: RoundTrip | None = None
        if not change.reduced:
            position.trip_pnl -= fee
        else:
            self._realised += change.closed_pnl
            closed = change.closed_quantity
            # A flipping fill's fee is shared pro rata between the closed and the new position.
            moved = abs(fill.position_change)
            closing_fee = fee if closed == moved else fee * closed / moved
            position.trip_pnl += change.closed_pnl - closing_fee
            if change.closed_out:
                trip = RoundTrip(strategy, fill.symbol, position.trip_pnl, fill.ts_ms)
                position.trip_pnl = -(fee - closing_fee)
        position.quantity = change.after.quantity
        position.average_price = change.after.average_price
        if position.quantity == 0:
            del self._positions[(strategy, fill.symbol)]
        return trip

    # -- prices and positions ----------------------------------------------------------------

    def on_price(self, symbol: str, price: Decimal) -> None:
        if price > 0:
            self._prices[symbol] = price

    def price(self, symbol: str) -> Decimal | None:
        return self._prices.get(symbol)

    def position(self, strategy: str, symbol: str) -> Decimal:
        found = self._positions.get((strategy, symbol))
        return found.quantity if found is not None else _ZERO

    def average_price(self, strategy: str, symbol: str) -> Decimal | None:
        found = self._positions.get((strategy, symbol))
        return found.average_price if found is not None else None

    def net_position(self, symbol: str) -> Decimal:
        return sum(
            (p.quantity for (_, s), p in self._positions.items() if s == symbol), start=_ZERO
        )

    def positions(self) -> dict[tuple[str, str], Decimal]:
        return {key: p.quantity for key, p in self._positions.items() if p.quantity != 0}

    def replace_positions(
        self,
        positions: Mapping[tuple[str, str], tuple[Decimal, Decimal]],
        folded_trades: Iterable[tuple[str, int]] = (),
    ) -> list[str]:
        """Take (quantity, average price) per (strategy, symbol) as the truth (reconciliation:
        the database and the exchange agreed on them); anything not given is flat. The fills
        `folded_trades` names are already in them: booked later, they are ignored. Realised
        PnL stays; a position whose quantity changed starts a new trip. Returns what changed."""
        for trade in folded_trades:
            if trade not in self._seen:
                self._remember(trade)
        changed: list[str] = []
        for key in sorted(set(self._positions) | set(positions)):
            quantity, average = positions.get(key, (_ZERO, _ZERO))
            held = self._positions.get(key)
            if held is not None and (held.quantity, held.average_price) == (quantity, average):
                continue
            before = _ZERO if held is None else held.quantity
            if before != quantity:
                changed.append(f"{key[0]}/{key[1]} {before} -> {quantity}")
            if quantity == 0:
                self._positions.pop(key, None)
            elif held is not None and held.quantity == quantity:
                held.average_price = average
            else:
                self._positions[key] = _Position(quantity, average)
        return changed

    # -- pending orders ----------------------------------------------------------------------

    def add_pending(
        self,
        *,
        client_order_id: str,
        strategy: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        is_entry: bool,
    ) -> None:
        self._pending[client_order_id] = _Pending(strategy, symbol, side, quantity, is_entry)

    def update_pending(
        self, client_order_id: str, *, filled_quantity: Decimal, final: bool
    ) -> None:
        """Unknown ids are ignored; a final order no longer counts."""
        pending = self._pending.get(client_order_id)
        if pending is None:
            return
        if final:
            del self._pending[client_order_id]
        else:
            pending.filled = max(pending.filled, filled_quantity)

    def pending_ids(self) -> list[str]:
        return list(self._pending)

    def pending_entry_quantity(self, symbol: str, side: Side) -> Decimal:
        return sum(
            (
                p.remaining
                for p in self._pending.values()
                if p.is_entry and p.symbol == symbol and p.side is side
            ),
            start=_ZERO,
        )

    def _pending_signed(self, symbol: str) -> Decimal:
        return self.pending_entry_quantity(symbol, Side.BUY) - self.pending_entry_quantity(
            symbol, Side.SELL
        )

    def _pending_pairs(self) -> set[tuple[str, str]]:
        return {
            (p.strategy, p.symbol) for p in self._pending.values() if p.is_entry and p.remaining
        }

    # -- exposure and equity -----------------------------------------------------------------

    def symbol_notional(
        self, symbol: str, *, extra_quantity: Decimal = _ZERO, price: Decimal | None = None
    ) -> Decimal:
        """|net + pending entries signed + extra| x price (`price` overrides the book's; 0 when
        unpriced)."""
        price = price if price is not None else self._prices.get(symbol)
        if price is None:
            return _ZERO
        return (
            abs(self.net_position(symbol) + self._pending_signed(symbol) + extra_quantity) * price
        )

    def exposure(
        self,
        *,
        extra: Mapping[str, Decimal] | None = None,
        prices: Mapping[str, Decimal] | None = None,
    ) -> Decimal:
        """Σ over symbols of |net + pending entries signed + extra[symbol]| x price; `prices`
        overrides the book's prices; unpriced symbols count 0."""
        extra = extra or {}
        prices = prices or {}
        symbols: set[str] = {s for _, s in self._positions}
        symbols.update(p.symbol for p in self._pending.values() if p.is_entry)
        symbols.update(extra)
        return sum(
            (
                self.symbol_notional(s, extra_quantity=extra.get(s, _ZERO), price=prices.get(s))
                for s in symbols
            ),
            start=_ZERO,
        )

    def open_positions(self, *, include_pending: bool = False) -> int:
        """(strategy, symbol) pairs with a non-zero position (and, if asked, with an entry
        order still working)."""
        pairs = set(self._positions)
        if include_pending:
            pairs |= self._pending_pairs()
        return len(pairs)

    def holders(self, symbol: str, *, include_pending: bool = False) -> int:
        pairs = set(self._positions)
        if include_pending:
            pairs |= self._pending_pairs()
        return sum(1 for _, s in pairs if s == symbol)

    def has_pending_entry(self, strategy: str, symbol: str) -> bool:
        return (strategy, symbol) in self._pending_pairs()

    @property
    def capital(self) -> Decimal:
        return self._capital

    @property
    def realised_pnl(self) -> Decimal:
        return self._realised

    def unrealised_pnl(self) -> Decimal:
        total = _ZERO
        for (_, symbol), p in self._positions.items():
            price = self._prices.get(symbol)
            if price is not None:
                total += p.quantity * (price - p.average_price)
        return total

    def equity(self) -> Decimal:
        return self._capital + self._realised + self.unrealised_pnl()

    # -- the UTC day -------------------------------------------------------------------------

    def roll_day(self, now_ms: int) -> None:
        """At a new UTC day: record the opening equity and clear the day's counters."""
        day = now_ms // DAY_MS
        if self._day is not None and day <= self._day:
            return
        self._day = day
        self._day_open_equity = self.equity()
        self._entries_today.clear()
        self._quantity_today.clear()

    @property
    def day(self) -> int | None:
        """The UTC day (epoch ms // 86,400,000) of the last `roll_day`; None before the first."""
        return self._day

    def day_pnl(self) -> Decimal:
        return self.equity() - self._day_open_equity

    @property
    def day_open_equity(self) -> Decimal:
        return self._day_open_equity

    def record_entry_sent(self, *, symbol: str, quantity: Decimal, now_ms: int) -> None:
        self.roll_day(now_ms)
        self._entries_today[symbol] = self._entries_today.get(symbol, 0) + 1
        self._quantity_today[symbol] = self._quantity_today.get(symbol, _ZERO) + quantity
        self._last_entry_ms[symbol] = now_ms

    def entries_today(self, symbol: str) -> int:
        return self._entries_today.get(symbol, 0)

    def quantity_today(self, symbol: str) -> Decimal:
        return self._quantity_today.get(symbol, _ZERO)

    def last_entry_ms(self, symbol: str) -> int | None:
        return self._last_entry_ms.get(symbol)

    # -- persistence -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """JSON-safe state (Decimals as strings), including the last trade ids seen."""
        return {
            "version": _SNAPSHOT_VERSION,
            "positions": [
                {
                    "strategy": strategy,
                    "symbol": symbol,
                    "quantity": str(p.quantity),
                    "average_price": str(p.average_price),
                    "trip_pnl": str(p.trip_pnl),
                }
                for (strategy, symbol), p in self._positions.items()
            ],
            "prices": {s: str(p) for s, p in self._prices.items()},
            "pending": [
                {
                    "client_order_id": cid,
                    "strategy": p.strategy,
                    "symbol": p.symbol,
                    "side": p.side.value,
                    "quantity": str(p.quantity),
                    "filled": str(p.filled),
                    "is_entry": p.is_entry,
                }
                for cid, p in self._pending.items()
            ],
            "realised_pnl": str(self._realised),
            "fees_other": {a: str(f) for a, f in self.fees_other.items()},
            "day": self._day,
            "day_open_equity": str(self._day_open_equity),
            "entries_today": dict(self._entries_today),
            "quantity_today": {s: str(q) for s, q in self._quantity_today.items()},
            "last_entry_ms": dict(self._last_entry_ms),
            "seen_trade_ids": list(self._seen_order),
        }

    @classmethod
    def restore(
        cls,
        data: Mapping[str, object],
        *,
        capital: Decimal,
        quote_assets: tuple[str, ...] = DEFAULT_QUOTE_ASSETS,
    ) -> RiskBook:
        """Rebuild a book from `snapshot()`; ValueError when the data does not fit."""
        try:
            return cls._restore(data, capital=capital, quote_assets=quote_assets)
        except (KeyError, TypeError, AttributeError, InvalidOperation, ValueError) as exc:
            raise ValueError(f"bad risk book snapshot: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _restore(
        cls, data: Mapping[str, object], *, capital: Decimal, quote_assets: tuple[str, ...]
    ) -> RiskBook:
        if data.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        book = cls(capital=capital, quote_assets=quote_assets)
        for row in _rows(data["positions"]):
            quantity = _dec(row["quantity"])
            if quantity:
                book._positions[(_str(row["strategy"]), _str(row["symbol"]))] = _Position(
                    quantity, _dec(row["average_price"]), _dec(row["trip_pnl"])
                )
        book._prices = {_str(s): _dec(p) for s, p in _mapping(data["prices"]).items()}
        for row in _rows(data["pending"]):
            book._pending[_str(row["client_order_id"])] = _Pending(
                _str(row["strategy"]),
                _str(row["symbol"]),
                Side(_str(row["side"])),
                _dec(row["quantity"]),
                _bool(row["is_entry"]),
                _dec(row["filled"]),
            )
        book._realised = _dec(data["realised_pnl"])
        book.fees_other = {_str(a): _dec(f) for a, f in _mapping(data["fees_other"]).items()}
        day = data["day"]
        book._day = None if day is None else _int(day)
        book._day_open_equity = _dec(data["day_open_equity"])
        book._entries_today = {_str(s): _int(n) for s, n in _mapping(data["entries_today"]).items()}
        book._quantity_today = {
            _str(s): _dec(q) for s, q in _mapping(data["quantity_today"]).items()
        }
        book._last_entry_ms = {_str(s): _int(t) for s, t in _mapping(data["last_entry_ms"]).items()}
        for item in _list(data["seen_trade_ids"])[-SEEN_TRADE_IDS:]:
            symbol, trade_id = _list(item)
            book._remember((_str(symbol), _int(trade_id)))
        return book


def _dec(value: object) -> Decimal:
    result = Decimal(_str(value))
    if not result.is_finite():
        raise ValueError(f"{value!r} is not finite")
    return result


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a boolean")
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list")
    return value


def _mapping(value: object) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{value!r} is not a mapping")
    return value


def _rows(value: object) -> Iterable[Mapping[object, object]]:
    return [_mapping(row) for row in _list(value)]
