"""The ``[executor]`` section: how orders are placed and followed up, the futures account set-up,
exchange-side protective stops, and the paper executor's fill model.

``mode = "live"`` places real orders on the venue (Binance or the simulator); ``mode = "paper"``
fills them virtually against live book tickers and klines (``[executor.paper]``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from config.exchange import Symbol
from config.fields import SECTION_CONFIG

__all__ = ["ExecutorSettings", "FuturesSetupSettings", "PaperSettings", "ProtectiveStopSettings"]

Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
FeeRate = Annotated[Decimal, Field(ge=0, le=Decimal("0.01"), allow_inf_nan=False)]
Asset = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,12}$")]


def _default_paper_balances() -> dict[str, Decimal]:
    return {"USDT": Decimal(10_000)}


class FuturesSetupSettings(BaseModel):
    """USDⓈ-M account settings applied at start, before the first order (``executor.futures``)."""

    model_config = SECTION_CONFIG

    leverage: int = Field(default=1, ge=1, le=125)
    # Per-symbol override of `leverage`.
    symbol_leverage: dict[Symbol, Annotated[int, Field(ge=1, le=125)]] = Field(default_factory=dict)
    margin_type: Literal["cross", "isolated"] = "isolated"
    # One-way mode is what the risk gate and reduce-only exits assume; hedge mode is refused
    # at start unless allowed here (then positions are tracked per side by the exchange).
    hedge_mode: bool = False


class ProtectiveStopSettings(BaseModel):
    """Exchange-side stops placed when an entry fills (``executor.protective_stops``): they
    protect the position while the daemon is down. Futures through the algo-order endpoint
    (STOP_MARKET, reduce-only); spot has no reduce-only stop and is refused at start."""

    model_config = SECTION_CONFIG

    enabled: bool = False
    # Distance from the average entry price, in %.
    stop_pct: Decimal = Field(default=Decimal(5), gt=0, le=50, allow_inf_nan=False)
    working_type: Literal["mark_price", "contract_price"] = "mark_price"


class PaperSettings(BaseModel):
    """The paper executor's virtual venue (``executor.paper``)."""

    model_config = SECTION_CONFIG

    balances: dict[Asset, Amount] = Field(default_factory=_default_paper_balances)
    maker_fee: FeeRate = Decimal("0.001")
    taker_fee: FeeRate = Decimal("0.001")
    # MARKET orders fill at the opposite side of the book plus this much adverse slippage.
    slippage_bps: Decimal = Field(default=Decimal(2), ge=0, le=1000, allow_inf_nan=False)
    # Time between the order and its acknowledgement/fill, in the daemon's clock.
    latency_ms: int = Field(default=50, ge=0, le=60_000)


class ExecutorSettings(BaseModel):
    """The order executor (``executor``)."""

    model_config = SECTION_CONFIG

    # Empty: "paper" in paper mode, "live" in live mode (backtest uses paper fills). "live" in
    # paper mode sends orders to the simulator (venue "sim" only). "off": shadow mode, signals
    # are published but no risk gate or executor runs, so nothing trades.
    mode: Literal["", "live", "paper", "off"] = ""
    # Placement failed before reaching the exchange (connection refused, 429, our own rate
    # budget): retried with the same client order id, at most this many times in all.
    max_send_attempts: int = Field(default=5, ge=1, le=20)
    retry_backoff_initial_s: float = Field(default=0.2, gt=0)
    retry_backoff_max_s: float = Field(default=5.0, gt=0)
    # An order whose placement answer was lost (UNKNOWN) is looked up by origClientOrderId
    # with this backoff until the user-data stream or a query settles it.
    unknown_query_initial_s: float = Field(default=0.5, gt=0)
    unknown_query_max_s: float = Field(default=10.0, gt=0)
    # "Order does not exist" is final only once this long has passed since the send: the
    # exchange may answer a query before the order it just accepted is visible.
    not_found_grace_s: float = Field(default=10.0, gt=0)
    # How often resting LIMIT orders are checked against their TTL.
    ttl_check_interval_s: float = Field(default=1.0, gt=0)
    futures: FuturesSetupSettings = Field(default_factory=FuturesSetupSettings)
    protective_stops: ProtectiveStopSettings = Field(default_factory=ProtectiveStopSettings)
    paper: PaperSettings = Field(default_factory=PaperSettings)
