"""The pre-trade checks on entries, as one pure function over the gate's state.

`entry_denial` returns the first failing check as "<check>: <detail with numbers>" or None.
Exits, flattening and protective stops never come here: they only shrink positions. The gate
component (risk/gate.py) builds the `ProposedEntry`, calls this, and on None sends the order,
adds it to the book's pending orders and records it (`record_entry_sent`, the order rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from app.domain import Side
from config.risk import RiskLimitSettings
from risk.book import RiskBook
from risk.funding import FundingClock, fmt_duration
from risk.order_rate import OrderRateLimit

__all__ = ["CHECK_NAMES", "ProposedEntry", "entry_denial", "fmt_money", "fmt_quantity"]

CHECK_NAMES: tuple[str, ...] = (
    "symbol_status",
    "order_rate",
    "cooldown",
    "funding_window",
    "max_trades_per_day",
    "max_quantity_per_day",
    "max_position_notional",
    "max_total_exposure",
    "max_exposure_pct_equity",
    "max_open_positions",
    "max_positions_per_symbol",
    "daily_loss_limit",
    "daily_loss_limit_pct",
)

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


def fmt_money(value: Decimal, places: int = 2) -> str:
    """Grouped, at most `places` decimals, no trailing zeros: 9010 -> "9,010", 9.90 -> "9.9"."""
    text = f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt_quantity(value: Decimal) -> str:
    """A quantity exactly, without exponent or trailing zeros: "0.0012"."""
    text = f"{value.normalize():f}"
    return "0" if text == "-0" else text


@dataclass(frozen=True, slots=True)
class ProposedEntry:
    """An entry the gate is about to send; `price` is the reference price for its notional."""

    strategy: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal

    def __post_init__(self) -> None:
        # An entry without a positive size or price cannot be judged: a bug in the caller.
        if not (self.quantity.is_finite() and self.quantity > 0):
            raise ValueError(f"entry quantity must be positive, not {self.quantity}")
        if not (self.price.is_finite() and self.price > 0):
            raise ValueError(f"entry reference price must be positive, not {self.price}")

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is Side.BUY else -self.quantity


def entry_denial(
    entry: ProposedEntry,
    *,
    book: RiskBook,
    limits: RiskLimitSettings,
    now_ms: int,
    symbol_status: str | None,
    order_rate: OrderRateLimit,
    funding: FundingClock | None,
) -> str | None:
    """The first failing check (in `CHECK_NAMES` order) as "<check>: <detail>", or None.

    The notional checks count the book's pending entries and this entry, on the net position
    of the symbol over all instances: an entry that does not increase a notional (it reduces
    the net, e.g. instance A is long and B enters short) is never refused by that limit, even
    when the result is still above it; otherwise the result after the entry is judged.
    """
    book.roll_day(now_ms)
    return (
        _status(entry, symbol_status)
        or order_rate.denial(now_ms)
        or _cooldown(entry, book, limits, now_ms)
        or _funding(entry, limits, now_ms, funding)
        or _day_counts(entry, book, limits)
        or _exposure(entry, book, limits)
        or _slots(entry, book, limits)
        or _loss(book, limits)
    )


def _status(entry: ProposedEntry, symbol_status: str | None) -> str | None:
    if symbol_status is None:
        return f"symbol_status: no exchange rules for {entry.symbol}"
    if symbol_status != "TRADING":
        return f"symbol_status: {entry.symbol} is {symbol_status}, not TRADING"
    return None


def _cooldown(
    entry: ProposedEntry, book: RiskBook, limits: RiskLimitSettings, now_ms: int
) -> str | None:
    cooldown_ms = round(limits.cooldown_s * 1000)
    last = book.last_entry_ms(entry.symbol)
    if cooldown_ms <= 0 or last is None or now_ms - last >= cooldown_ms:
        return None
    return (
        f"cooldown: last entry on {entry.symbol} {fmt_duration(now_ms - last)} ago, "
        f"{fmt_duration(cooldown_ms)} between entries"
    )


def _funding(
    entry: ProposedEntry, limits: RiskLimitSettings, now_ms: int, funding: FundingClock | None
) -> str | None:
    if funding is None:
        return None
    return funding.denial(
        entry.symbol,
        now_ms,
        before_ms=round(limits.funding_window_before_min * 60_000),
        after_ms=round(limits.funding_window_after_min * 60_000),
    )


def _day_counts(entry: ProposedEntry, book: RiskBook, limits: RiskLimitSettings) -> str | None:
    symbol = entry.symbol
    trades = book.entries_today(symbol)
    if limits.max_trades_per_day is not None and trades >= limits.max_trades_per_day:
        return (
            f"max_trades_per_day: {trades} entries on {symbol} today (UTC), "
            f"limit {limits.max_trades_per_day}"
        )
    max_quantity = limits.max_quantity_per_day.get(symbol)
    done = book.quantity_today(symbol)
    if max_quantity is not None and done + entry.quantity > max_quantity:
        return (
            f"max_quantity_per_day: {fmt_quantity(done)} {symbol} entered today (UTC) + "
            f"{fmt_quantity(entry.quantity)} would be {fmt_quantity(done + entry.quantity)}, "
            f"limit {fmt_quantity(max_quantity)}"
        )
    return None


def _exposure(entry: ProposedEntry, book: RiskBook, limits: RiskLimitSettings) -> str | None:
    symbol, price = entry.symbol, {entry.symbol: entry.price}
    before = book.symbol_notional(symbol, price=entry.price)
    after = book.symbol_notional(symbol, extra_quantity=entry.signed_quantity, price=entry.price)
    grows = after > before
    limit = limits.max_position_notional
    if limit is not None and grows and after > limit:
        return (
            f"max_position_notional: {symbol} net notional would be {fmt_money(after)} "
            f"(now {fmt_money(before)}), limit {fmt_money(limit)}"
        )
    total_before = book.exposure(prices=price)
    total_after = book.exposure(extra={symbol: entry.signed_quantity}, prices=price)
    grows = total_after > total_before
    limit = limits.max_total_exposure
    if limit is not None and grows and total_after > limit:
        return (
            f"max_total_exposure: exposure would be {fmt_money(total_after)} "
            f"(now {fmt_money(total_before)}), limit {fmt_money(limit)}"
        )
    pct_limit = limits.max_exposure_pct_equity
    if pct_limit is not None and grows:
        equity = book.equity()
        if equity <= 0:
            return f"max_exposure_pct_equity: equity is {fmt_money(equity)}, not positive"
        pct = total_after / equity * _HUNDRED
        if pct > pct_limit:
            return (
                f"max_exposure_pct_equity: exposure would be {fmt_money(total_after)}, "
                f"{fmt_money(pct)}% of equity {fmt_money(equity)}, limit {fmt_money(pct_limit)}%"
            )
    return None


def _slots(entry: ProposedEntry, book: RiskBook, limits: RiskLimitSettings) -> str | None:
    # Only an entry that opens a new (instance, symbol) position takes a slot; an entry order
    # still working already holds one, so a burst of signals cannot pass before the fills.
    if book.position(entry.strategy, entry.symbol) != 0 or book.has_pending_entry(
        entry.strategy, entry.symbol
    ):
        return None
    limit = limits.max_open_positions
    open_now = book.open_positions(include_pending=True)
    if limit is not None and open_now >= limit:
        return (
            f"max_open_positions: {open_now} positions open (with working entries), limit {limit}"
        )
    limit = limits.max_positions_per_symbol
    holders = book.holders(entry.symbol, include_pending=True)
    if limit is not None and holders >= limit:
        return (
            f"max_positions_per_symbol: {holders} instances hold {entry.symbol} "
            f"(with working entries), limit {limit}"
        )
    return None


def _loss(book: RiskBook, limits: RiskLimitSettings) -> str | None:
    loss = -book.day_pnl()
    limit = limits.daily_loss_limit
    if limit is not None and loss >= limit:
        return (
            f"daily_loss_limit: loss today (UTC, realised + unrealised) {fmt_money(loss)}, "
            f"limit {fmt_money(limit)}"
        )
    pct_limit = limits.daily_loss_limit_pct
    if pct_limit is None:
        return None
    opening = book.day_open_equity
    if opening <= 0:
        return f"daily_loss_limit_pct: day opening equity is {fmt_money(opening)}, not positive"
    pct = loss / opening * _HUNDRED
    if pct >= pct_limit:
        return (
            f"daily_loss_limit_pct: loss today (UTC, realised + unrealised) {fmt_money(loss)}, "
            f"{fmt_money(pct)}% of the day's opening equity {fmt_money(opening)}, "
            f"limit {fmt_money(pct_limit)}%"
        )
    return None
