"""USDⓈ-M account set-up at start: position mode, margin type and leverage from config.

Runs once, before the executor accepts its first order (consumes and produces no channels):
the risk gate sizes positions and the executor sends reduce-only exits assuming the account is
in the configured mode, so a set-up the exchange refuses stops the daemon
(``FuturesSetupError``, a ``FatalVenueError``) rather than letting it trade in the wrong mode.

Idempotent: the position mode is read first and only changed when it differs; "no need to
change margin type" (-4046) is success (the client swallows it); setting the same leverage
again is harmless. A second run therefore changes nothing.

The venue answers, not we, decide what is possible: Binance refuses a position-mode change
while any position or open order exists (-4067/-4068), a margin-type change with a position or
open orders on the symbol (-4047/-4048), and a leverage whose notional cap is below the open
position (-2027). Those refusals name the symbol and setting in the raised error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import structlog

from app.errors import FatalVenueError, RejectedError, VenueError
from config.executor import FuturesSetupSettings
from exchange.binance.futures import FuturesClient

__all__ = ["FuturesAccountSetup", "FuturesSetupError", "SymbolSetup", "prepare_futures_account"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Config words → Binance's marginType values.
_MARGIN_TYPES: Final = {"cross": "CROSSED", "isolated": "ISOLATED"}
# Why Binance refuses a setting, in words an operator can act on.
_REASONS: Final = {
    -4067: "open orders exist; cancel them first",
    -4068: "positions exist; close them first",
    -4047: "open orders exist on the symbol; cancel them first",
    -4048: "a position exists on the symbol; close it first",
    -2027: "the open position exceeds the notional cap at this leverage",
    -4028: "the leverage is not valid for the symbol",
}


class FuturesSetupError(FatalVenueError):
    """The exchange refused a configured account setting: the daemon must not start."""

    def __init__(self, setting: str, symbol: str | None, wanted: object, error: VenueError):
        where = f"{symbol} " if symbol else ""
        reason = error.venue_message
        if error.code in _REASONS:
            reason = f"{_REASONS[error.code]} (exchange said: {error.venue_message})"
        super().__init__(
            f"futures set-up refused: cannot set {where}{setting} to {wanted}: {reason}",
            code=error.code,
            http_status=error.http_status,
            endpoint=error.endpoint,
        )
        self.setting = setting
        self.symbol = symbol
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class SymbolSetup:
    symbol: str
    leverage: int
    margin_type: str  # "cross" or "isolated", as configured


@dataclass(frozen=True, slots=True)
class FuturesAccountSetup:
    """What was applied; `position_mode_changed` is False when the account already matched."""

    hedge_mode: bool
    position_mode_changed: bool
    symbols: tuple[SymbolSetup, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "hedge_mode": self.hedge_mode,
            "position_mode_changed": self.position_mode_changed,
            "symbols": {
                s.symbol: {"leverage": s.leverage, "margin_type": s.margin_type}
                for s in self.symbols
            },
        }


def leverage_for(settings: FuturesSetupSettings, symbol: str) -> int:
    return settings.symbol_leverage.get(symbol, settings.leverage)


async def prepare_futures_account(
    client: FuturesClient, settings: FuturesSetupSettings, symbols: Sequence[str]
) -> FuturesAccountSetup:
    """Apply the position mode, then margin type and leverage per symbol (see module doc)."""
    changed = await _position_mode(client, settings.hedge_mode)
    unused = sorted(set(settings.symbol_leverage) - set(symbols))
    if unused:
        log.warning("futures_leverage_override_unused", symbols=unused)
    applied = []
    for symbol in dict.fromkeys(symbols):  # keeps order, drops repeats
        margin = _MARGIN_TYPES[settings.margin_type]
        await _apply(
            "margin type", symbol, settings.margin_type, client.set_margin_type(symbol, margin)
        )
        leverage = leverage_for(settings, symbol)
        await _apply("leverage", symbol, leverage, client.set_leverage(symbol, leverage))
        applied.append(SymbolSetup(symbol, leverage, settings.margin_type))
        log.info(
            "futures_symbol_prepared",
            symbol=symbol,
            leverage=leverage,
            margin_type=settings.margin_type,
        )
    setup = FuturesAccountSetup(settings.hedge_mode, changed, tuple(applied))
    log.info("futures_account_prepared", **setup.as_dict())
    return setup


async def _position_mode(client: FuturesClient, hedge_mode: bool) -> bool:
    """Make the account's position mode `hedge_mode`; True when it had to be changed."""
    current = await _apply("position mode", None, "read", client.hedge_mode())
    if current == hedge_mode:
        return False
    wanted = "hedge" if hedge_mode else "one-way"
    log.warning("futures_position_mode_changing", current=current, wanted=wanted)
    await _apply("position mode", None, wanted, client.set_hedge_mode(hedge_mode))
    return True


async def _apply(setting: str, symbol: str | None, wanted: object, call: Awaitable[T]) -> T:
    """Await one set-up call; a refusal becomes `FuturesSetupError`, other failures (network,
    rate limit: the transport has already retried them) keep their class and get a note
    naming the symbol and setting."""
    try:
        return await call
    except RejectedError as error:
        raise FuturesSetupError(setting, symbol, wanted, error) from error
    except VenueError as error:
        error.add_note(f"while setting {symbol or 'account'} {setting} to {wanted}")
        log.error(
            "futures_setup_failed", setting=setting, symbol=symbol, wanted=wanted, error=str(error)
        )
        raise
