"""The ``[risk]`` section: the risk gate's limits, guards, order shaping and state file.

Every limit is optional (unset = not checked) unless it has a default that is always safe.
Money is in the quote asset of the traded symbols (USDT on the default config). A check that
refuses names itself in the denial reason (``max_position_notional: ...``), so the reason in
the log, on ``order.update`` and in the strategy's ``on_order`` tells which limit it was.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from config.exchange import Symbol
from config.fields import SECTION_CONFIG

__all__ = ["OrderShapeSettings", "RiskGuardSettings", "RiskLimitSettings", "RiskSettings"]

Money = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(gt=0, le=10_000, allow_inf_nan=False)]
Quantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
# What newClientOrderId accepts, shortened so the id stays within 36 characters.
ClientIdPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,8}$")]


class RiskLimitSettings(BaseModel):
    """Pre-trade checks on entries (``risk.limits``). Exits and reduce-only orders skip them."""

    model_config = SECTION_CONFIG

    # Notional of one symbol's net position (all instances) after the order.
    max_position_notional: Money | None = None
    # Sum over symbols of |net position| x price after the order.
    max_total_exposure: Money | None = None
    # The same sum as a percentage of equity (100 = 1x).
    max_exposure_pct_equity: Percent | None = None
    # Open positions: (instance, symbol) pairs with a non-zero position.
    max_open_positions: int | None = Field(default=None, ge=1)
    # Instances holding a position on one symbol at the same time.
    max_positions_per_symbol: int | None = Field(default=None, ge=1)
    # Loss since the start of the UTC day, realised + unrealised, absolute and/or % of the
    # day's opening equity: entries are denied once it is reached.
    daily_loss_limit: Money | None = None
    daily_loss_limit_pct: Percent | None = None
    # Per symbol and UTC day: entry orders sent, and their total quantity.
    max_trades_per_day: int | None = Field(default=None, ge=1)
    max_quantity_per_day: dict[Symbol, Quantity] = Field(default_factory=dict)
    # Minimum time between two entry orders on one symbol.
    cooldown_s: float = Field(default=0.0, ge=0)
    # Orders of every purpose leave at most at this share of the exchange's ORDERS limits
    # (rateLimits from exchangeInfo), so the gate refuses before the exchange would.
    order_rate_share: float = Field(default=0.5, gt=0, le=1)
    # Futures: no new entries from `before` minutes ahead of the next funding time (read from
    # the mark-price stream) until `after` minutes past it. 0/0 turns the gate off.
    funding_window_before_min: float = Field(default=5.0, ge=0, le=240)
    funding_window_after_min: float = Field(default=1.0, ge=0, le=240)


class RiskGuardSettings(BaseModel):
    """Runtime guards that change the trading state (``risk.guards``)."""

    model_config = SECTION_CONFIG

    # N losing round trips in a row (any instance) → HALTED for the cooldown, then ACTIVE.
    consecutive_losses: int | None = Field(default=None, ge=1)
    consecutive_loss_cooldown_min: float = Field(default=60.0, gt=0)
    # Drawdown of equity from its high-water mark, in %: the breaker moves to `drawdown_action`
    # and stays there until an operator resumes.
    max_drawdown_pct: Percent | None = None
    drawdown_action: Literal["reducing", "halted"] = "halted"
    # Equity below this halts trading (equity monitoring); unset: only reported.
    min_equity: Money | None = None


class OrderShapeSettings(BaseModel):
    """How an approved signal becomes an order (``risk.orders``)."""

    model_config = SECTION_CONFIG

    entry_type: Literal["market", "limit"] = "market"
    # LIMIT entries rest on the passive side of the book, `limit_offset_bps` away from it (a buy
    # at bid x (1 - offset), a sell at ask x (1 + offset)), and are cancelled by the executor
    # after `limit_ttl_s` unfilled. Exits and flattening are always MARKET.
    limit_offset_bps: Decimal = Field(default=Decimal(0), ge=0, le=1000, allow_inf_nan=False)
    limit_ttl_s: float = Field(default=60.0, gt=0)
    # Entries without a size hint: this much quote asset at the last price; unset: denied.
    default_entry_notional: Money | None = Decimal(100)
    # Client order ids start with this; reconciliation adopts orders that carry it.
    client_id_prefix: ClientIdPrefix = "tb"


class RiskSettings(BaseModel):
    """The risk gate (``risk``)."""

    model_config = SECTION_CONFIG

    # Starting equity when the venue reports none (paper, backtest, before the first account
    # update); PnL from fills is added to it.
    capital: Money = Decimal(10_000)
    limits: RiskLimitSettings = Field(default_factory=RiskLimitSettings)
    guards: RiskGuardSettings = Field(default_factory=RiskGuardSettings)
    orders: OrderShapeSettings = Field(default_factory=OrderShapeSettings)
    # Trading state (ACTIVE/REDUCING/HALTED, reason, guard cooldowns) and the risk book survive
    # restarts in the database (table state_documents). This file is where versions before the
    # database kept them: read once while the database holds no state (an upgrade), then
    # renamed `<name>.imported`. A gate built without a database (tests, tools) uses it.
    state_file: Path = Path("status/risk_state.json")
