"""Every table tradebus records, in one module (SQLModel; the alembic migrations mirror it).

Multi-symbol and multi-strategy throughout: rows carry ``symbol`` and, where an instance owns
them, ``strategy``. Money and quantities are ``ExactDecimal`` (text on SQLite, NUMERIC on
PostgreSQL: exact on both). Times are epoch milliseconds in BIGINT (``*_ms``), as the domain
keeps them. Enums are stored as their string values.

Keys that make recording idempotent, so a replayed or duplicated event never doubles a row:
orders by ``client_order_id``; fills by ``(symbol, trade_id)`` (Binance numbers trades per
symbol); candles by ``(symbol, open_time_ms)``; positions by ``(strategy, symbol)``; balances
by ``asset``; signals by ``signal_id``.

These classes are rows, not domain types: ``database.mapping`` converts in both directions,
and nothing outside ``database/`` sees them.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from database.types import ExactDecimal

__all__ = [
    "AlertRow",
    "BalanceRow",
    "CandleRow",
    "EquitySnapshotRow",
    "FillRow",
    "MetricsSnapshotRow",
    "OrderRow",
    "PositionRow",
    "RunRow",
    "SignalRow",
    "StateDocumentRow",
    "StrategySnapshotRow",
    "TradingStateRow",
    "metadata",
]

metadata = SQLModel.metadata


def _money(*, nullable: bool = False) -> Decimal:
    """A Decimal column (the return type lies to the class body: SQLModel reads the Field)."""
    return Field(sa_type=ExactDecimal, nullable=nullable)  # type: ignore[no-any-return]


def _money_or_none() -> Decimal | None:
    return Field(default=None, sa_type=ExactDecimal, nullable=True)  # type: ignore[no-any-return]


def _bigint(*, index: bool = False) -> int:
    return Field(sa_type=BigInteger, nullable=False, index=index)  # type: ignore[no-any-return]


def _bigint_or_none() -> int | None:
    return Field(default=None, sa_type=BigInteger, nullable=True)  # type: ignore[no-any-return]


class OrderRow(SQLModel, table=True):
    """One exchange order (ours or foreign), from its write-ahead intent to its final state."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_open", "is_open", "symbol"),)

    id: int | None = Field(default=None, primary_key=True)
    client_order_id: str = Field(max_length=64, unique=True)
    exchange_order_id: int | None = _bigint_or_none()
    strategy: str = Field(default="", max_length=64, index=True)
    symbol: str = Field(max_length=32)
    side: str = Field(max_length=8)
    order_type: str = Field(max_length=32)
    time_in_force: str | None = Field(default=None, max_length=8)
    purpose: str | None = Field(default=None, max_length=24)
    origin: str = Field(default="client", max_length=16)
    signal_id: str | None = Field(default=None, max_length=64)
    quantity: Decimal = _money()
    price: Decimal | None = _money_or_none()
    stop_price: Decimal | None = _money_or_none()
    reduce_only: bool = False
    status: str = Field(max_length=24)
    is_open: bool = True
    filled_quantity: Decimal = _money()
    average_fill_price: Decimal | None = _money_or_none()
    reason: str = Field(default="", sa_type=Text)
    created_ms: int = _bigint()
    updated_ms: int = _bigint()


class FillRow(SQLModel, table=True):
    """One exchange trade of one of our orders (unique per symbol and trade id)."""

    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("symbol", "trade_id", name="uq_fills_symbol_trade"),)

    id: int | None = Field(default=None, primary_key=True)
    symbol: str = Field(max_length=32)
    trade_id: int = _bigint()
    client_order_id: str = Field(max_length=64, index=True)
    exchange_order_id: int | None = _bigint_or_none()
    strategy: str = Field(default="", max_length=64)
    side: str = Field(max_length=8)
    price: Decimal = _money()
    quantity: Decimal = _money()
    fee: Decimal = _money()
    fee_asset: str = Field(max_length=16)
    is_maker: bool
    realized_pnl: Decimal | None = _money_or_none()
    ts_ms: int = _bigint(index=True)


class PositionRow(SQLModel, table=True):
    """A strategy instance's net position in one symbol (signed: short < 0)."""

    __tablename__ = "positions"

    strategy: str = Field(primary_key=True, max_length=64)
    symbol: str = Field(primary_key=True, max_length=32)
    quantity: Decimal = _money()
    average_price: Decimal = _money()
    realized_pnl: Decimal = _money()
    updated_ms: int = _bigint()


class BalanceRow(SQLModel, table=True):
    """The account's balance of one asset as the exchange last reported it."""

    __tablename__ = "balances"

    asset: str = Field(primary_key=True, max_length=16)
    free: Decimal = _money()
    locked: Decimal = _money()
    updated_ms: int = _bigint()


class SignalRow(SQLModel, table=True):
    """Every signal a strategy emitted, with what the risk gate made of it."""

    __tablename__ = "signals"

    signal_id: str = Field(primary_key=True, max_length=64)
    strategy: str = Field(max_length=64, index=True)
    symbol: str = Field(max_length=32)
    action: str = Field(max_length=16)
    size_hint: Decimal | None = _money_or_none()
    confidence: float = 1.0
    reason: str = Field(default="", sa_type=Text)
    tags: str = Field(default="", sa_type=Text)
    ts_ms: int = _bigint(index=True)
    # "approved" (an order left the gate), "denied", or "" (no answer recorded yet).
    outcome: str = Field(default="", max_length=16)
    client_order_id: str | None = Field(default=None, max_length=64)
    denial_reason: str | None = Field(default=None, sa_type=Text)


class CandleRow(SQLModel, table=True):
    """A closed 1-minute bar (the only interval recorded: others derive from it)."""

    __tablename__ = "candles_1m"

    symbol: str = Field(primary_key=True, max_length=32)
    open_time_ms: int = Field(primary_key=True, sa_type=BigInteger)
    close_time_ms: int = _bigint()
    open: Decimal = _money()
    high: Decimal = _money()
    low: Decimal = _money()
    close: Decimal = _money()
    volume: Decimal = _money()
    quote_volume: Decimal = _money()
    trades: int = Field(sa_type=BigInteger)


class RunRow(SQLModel, table=True):
    """One daemon run: when it started and stopped, how, and which version."""

    __tablename__ = "runs"

    id: int | None = Field(default=None, primary_key=True)
    started_ms: int = _bigint()
    stopped_ms: int | None = _bigint_or_none()
    exit_status: str | None = Field(default=None, max_length=32)
    exit_reason: str = Field(default="", sa_type=Text)
    version: str = Field(max_length=32)
    mode: str = Field(max_length=16)
    instance_name: str = Field(max_length=64)


class TradingStateRow(SQLModel, table=True):
    """Every change of the risk gate's trading state (the latest row is the current one)."""

    __tablename__ = "trading_state"

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(max_length=16)
    previous: str | None = Field(default=None, max_length=16)
    reason: str = Field(default="", sa_type=Text)
    ts_ms: int = _bigint(index=True)


class EquitySnapshotRow(SQLModel, table=True):
    __tablename__ = "equity_snapshots"

    id: int | None = Field(default=None, primary_key=True)
    ts_ms: int = _bigint(index=True)
    equity: Decimal = _money()
    realized_pnl: Decimal = _money()
    unrealized_pnl: Decimal = _money()
    exposure: Decimal = _money()
    open_positions: int = 0


class MetricsSnapshotRow(SQLModel, table=True):
    """The heartbeat's figures at one instant, as JSON (they change shape between versions)."""

    __tablename__ = "metrics_snapshots"

    id: int | None = Field(default=None, primary_key=True)
    ts_ms: int = _bigint(index=True)
    document: str = Field(sa_type=Text)


class AlertRow(SQLModel, table=True):
    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    ts_ms: int = _bigint(index=True)
    severity: str = Field(max_length=16)
    source: str = Field(max_length=64)
    title: str = Field(sa_type=Text)
    detail: str = Field(default="", sa_type=Text)


class StrategySnapshotRow(SQLModel, table=True):
    """A strategy instance's own state for one symbol (``Strategy.snapshot``), as JSON."""

    __tablename__ = "strategy_snapshots"

    strategy: str = Field(primary_key=True, max_length=64)
    symbol: str = Field(primary_key=True, max_length=32)
    document: str = Field(sa_type=Text)
    updated_ms: int = _bigint()


class StateDocumentRow(SQLModel, table=True):
    """A component's whole saved state as one JSON document, under its name (the risk gate's
    trading state, guards and book: ``risk.state_store``). Names ending ``.corrupt-<ms>`` are
    documents that could not be read back, kept for a post-mortem."""

    __tablename__ = "state_documents"

    name: str = Field(primary_key=True, max_length=64)
    document: str = Field(sa_type=Text)
    saved_ms: int = _bigint()
