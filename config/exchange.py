"""The ``[exchange]`` section: venue, market, credentials, endpoints and client behaviour.

Endpoint URLs default to the preset of ``environment`` (see ``exchange.binance.endpoints``);
any single URL can be overridden under ``[exchange.endpoints]`` (a proxy, a regional mirror,
the simulator on another port). Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_settings import NoDecode

from app.domain.enums import MarketType
from config.fields import (
    SECTION_CONFIG,
    OptionalPath,
    OptionalSecret,
    SettingsIssues,
    empty_to_none,
    split_list,
    upper,
)

__all__ = ["EndpointOverrides", "ExchangeSettings", "SettingsIssues"]

SYMBOL_PATTERN = r"^[A-Z0-9]{2,20}$"
Symbol = Annotated[str, BeforeValidator(upper), StringConstraints(pattern=SYMBOL_PATTERN)]
HttpUrl = Annotated[
    str | None,
    BeforeValidator(empty_to_none),
    StringConstraints(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$"),
]
WsUrl = Annotated[
    str | None,
    BeforeValidator(empty_to_none),
    StringConstraints(pattern=r"^wss?://[^\s/?#]+(/[^\s?#]*)?$"),
]
KlineInterval = Literal[
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h",
    "6h", "8h", "12h", "1d", "3d", "1w", "1M",
]  # fmt: skip


class EndpointOverrides(BaseModel):
    """Per-URL overrides of the environment's preset; unset means "use the preset"."""

    model_config = SECTION_CONFIG

    spot_rest: HttpUrl = None
    spot_ws_api: WsUrl = None
    spot_streams: WsUrl = None
    futures_rest: HttpUrl = None
    futures_ws_api: WsUrl = None
    futures_public: WsUrl = None
    futures_market: WsUrl = None
    futures_private: WsUrl = None


class ExchangeSettings(BaseModel):
    """Venue, market, credentials and client behaviour (``exchange``)."""

    model_config = SECTION_CONFIG

    venue: Literal["sim", "binance"] = "sim"
    market: MarketType = MarketType.SPOT
    environment: Literal["mainnet", "testnet", "demo"] = "testnet"
    endpoints: EndpointOverrides = Field(default_factory=EndpointOverrides)
    api_key: OptionalSecret = None
    # HMAC: the secret key. Ed25519/RSA: the PEM private key itself (or use private_key_file).
    api_secret: OptionalSecret = None
    key_type: Literal["hmac", "ed25519", "rsa"] = "hmac"
    private_key_file: OptionalPath = None
    private_key_passphrase: OptionalSecret = None
    # NoDecode: the validator parses strings itself, so env vars may be CSV or a JSON list.
    symbols: Annotated[
        tuple[Symbol, ...], NoDecode, BeforeValidator(split_list), Field(min_length=1)
    ] = ("BTCUSDT", "ETHUSDT")
    kline_intervals: Annotated[
        tuple[KlineInterval, ...], NoDecode, BeforeValidator(split_list), Field(min_length=1)
    ] = ("1m",)
    book_ticker: bool = True
    recv_window_ms: int = Field(default=5000, ge=1, le=60000)
    request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    time_sync_interval_s: float = Field(default=300.0, ge=10)
    # Fraction of the IP's request/order budget this bot may use (several bots on one IP).
    rate_limit_share: float = Field(default=0.8, gt=0, le=1)
    stream_stale_after_s: float = Field(default=60.0, gt=0)
    stream_max_age_s: float = Field(default=23 * 3600.0, gt=60, lt=24 * 3600)
    reconnect_backoff_initial_s: float = Field(default=0.5, gt=0)
    reconnect_backoff_max_s: float = Field(default=30.0, gt=0)
    listen_key_keepalive_s: float = Field(default=1800.0, ge=60, le=3000)

    @model_validator(mode="after")
    def _consistent(self) -> ExchangeSettings:
        issues: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for index, symbol in enumerate(self.symbols):
            if symbol in seen:
                issues.append((f"symbols.{index}", f"duplicate of symbols.{seen[symbol]}"))
            else:
                seen[symbol] = index
        if len(set(self.kline_intervals)) != len(self.kline_intervals):
            issues.append(("kline_intervals", "contains duplicates"))
        if self.reconnect_backoff_max_s < self.reconnect_backoff_initial_s:
            issues.append(
                ("reconnect_backoff_max_s", "must be at least reconnect_backoff_initial_s")
            )
        if self.key_type == "hmac" and self.private_key_file is not None:
            issues.append(
                ("private_key_file", "only used with key_type 'ed25519' or 'rsa', not 'hmac'")
            )
        if (
            self.key_type != "hmac"
            and self.private_key_file is not None
            and self.api_secret is not None
        ):
            issues.append(("private_key_file", "give the private key once: file or api_secret"))
        if issues:
            raise SettingsIssues(tuple(issues))
        return self

    @property
    def has_signing_key(self) -> bool:
        return self.api_secret is not None or self.private_key_file is not None
