"""Binance REST answers about balances, positions and account settings → domain types.

Every parser takes the raw body (``bytes`` or ``str``) and raises only ``MalformedPayload``
(a ``MalformedEvent``); unknown fields are ignored. Futures balances follow the user-data
stream's mapping: ``free`` is the wallet balance, ``locked`` 0, ``cross_wallet`` and
``available`` as reported.

The order and trade parsers live in ``parse_orders`` and are re-exported here, so this module
remains the one import for every REST answer about the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec

from app.domain.account import Balance, PositionSnapshot
from exchange.binance.order_mapping import margin_type, position_side
from exchange.binance.parse_orders import (
    CancelReplaceResult,
    Refusal,
    parse_cancel_replace,
    parse_futures_algo_order,
    parse_futures_algo_orders,
    parse_futures_order,
    parse_futures_orders,
    parse_my_trades,
    parse_spot_order,
    parse_spot_orders,
)
from exchange.binance.rest_payload import (
    MalformedPayload,
    Payload,
    RefusalWire,
    convert,
    decode_json,
    expect_object,
    rest_parser,
)
from exchange.binance.wire_user import amount_of, decimal_of, optional_decimal, price_or_none

__all__ = [
    "CancelReplaceResult",
    "LeverageSetting",
    "MalformedPayload",
    "Refusal",
    "SpotAccountInfo",
    "SymbolConfig",
    "parse_cancel_replace",
    "parse_futures_account",
    "parse_futures_algo_order",
    "parse_futures_algo_orders",
    "parse_futures_balance",
    "parse_futures_order",
    "parse_futures_orders",
    "parse_leverage_response",
    "parse_listen_key",
    "parse_margin_type_response",
    "parse_my_trades",
    "parse_position_risk",
    "parse_position_side_dual",
    "parse_spot_account",
    "parse_spot_account_info",
    "parse_spot_order",
    "parse_spot_orders",
    "parse_symbol_config",
]


@dataclass(frozen=True, slots=True)
class SpotAccountInfo:
    balances: tuple[Balance, ...]
    can_trade: bool
    can_withdraw: bool
    can_deposit: bool
    account_type: str
    permissions: tuple[str, ...]
    update_time_ms: int


@dataclass(frozen=True, slots=True)
class LeverageSetting:
    symbol: str
    leverage: int
    max_notional: Decimal | None


@dataclass(frozen=True, slots=True)
class SymbolConfig:
    symbol: str
    margin_type: str | None  # "cross" or "isolated"
    auto_add_margin: bool
    leverage: int
    max_notional: Decimal | None


class _SpotBalance(msgspec.Struct, frozen=True):
    asset: str
    free: str
    locked: str


class _SpotAccount(msgspec.Struct, rename="camel", frozen=True):
    balances: list[_SpotBalance]
    can_trade: bool = False
    can_withdraw: bool = False
    can_deposit: bool = False
    account_type: str = ""
    permissions: list[str] = []
    update_time: int = 0


@rest_parser
def parse_spot_account_info(payload: Payload) -> SpotAccountInfo:
    """GET ``/api/v3/account``: balances plus what the key may do."""
    account = convert(decode_json(payload, "spot account"), _SpotAccount, "spot account")
    balances = tuple(
        Balance(b.asset, amount_of(b.free, "free"), amount_of(b.locked, "locked"))
        for b in account.balances
    )
    return SpotAccountInfo(
        balances, account.can_trade, account.can_withdraw, account.can_deposit,
        account.account_type, tuple(account.permissions), account.update_time,
    )  # fmt: skip


def parse_spot_account(payload: Payload) -> tuple[Balance, ...]:
    """GET ``/api/v3/account`` → balances."""
    return parse_spot_account_info(payload).balances


class _FuturesAsset(msgspec.Struct, rename="camel", frozen=True):
    asset: str
    wallet_balance: str
    cross_wallet_balance: str | None = None
    available_balance: str | None = None


class _AccountPosition(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    position_amt: str
    unrealized_profit: str
    position_side: str | None = None
    entry_price: str | None = None  # v2 only
    notional: str | None = None  # v3
    leverage: str | None = None  # v2 only
    isolated: bool | None = None  # v2 only


class _FuturesAccount(msgspec.Struct, frozen=True):
    assets: list[_FuturesAsset] = []
    positions: list[_AccountPosition] = []


def _leverage(raw: str | int | None) -> int | None:
    if raw is None:
        return None
    value = decimal_of(str(raw), "leverage")
    if value != value.to_integral_value() or value < 0:
        raise MalformedPayload(f"leverage {raw!r} is not a whole number")
    return int(value)


def _entry_price(p: _AccountPosition, quantity: Decimal, pnl: Decimal) -> Decimal:
    if p.entry_price is not None:
        return amount_of(p.entry_price, "entryPrice")
    if quantity == 0:
        return Decimal(0)  # v2 reports flat positions with entry price 0 too
    # v3 dropped entryPrice; notional = qty * mark and pnl = qty * (mark - entry) give it back
    # up to Binance's 8-decimal rounding. parse_position_risk has the reported value.
    return abs((decimal_of(p.notional, "notional") - pnl) / quantity)


@rest_parser
def parse_futures_account(
    payload: Payload,
) -> tuple[tuple[Balance, ...], tuple[PositionSnapshot, ...]]:
    """GET ``/fapi/v2/account`` or ``/fapi/v3/account`` → (balances, positions)."""
    account = convert(decode_json(payload, "futures account"), _FuturesAccount, "futures account")
    balances = tuple(_futures_balance(a.asset, a.wallet_balance, a) for a in account.assets)
    positions = []
    for p in account.positions:
        quantity = decimal_of(p.position_amt, "positionAmt")
        pnl = decimal_of(p.unrealized_profit, "unrealizedProfit")
        positions.append(
            PositionSnapshot(
                p.symbol,
                quantity,
                _entry_price(p, quantity, pnl),
                pnl,
                position_side=position_side(p.position_side),
                margin_type=None if p.isolated is None else ("isolated" if p.isolated else "cross"),
                leverage=_leverage(p.leverage),
            )
        )
    return balances, tuple(positions)


def _futures_balance(asset: str, wallet: str, row: _FuturesAsset | _BalanceRow) -> Balance:
    return Balance(
        asset, decimal_of(wallet, "wallet balance"), Decimal(0),
        cross_wallet=optional_decimal(row.cross_wallet_balance, "crossWalletBalance"),
        available=optional_decimal(row.available_balance, "availableBalance"),
    )  # fmt: skip


class _BalanceRow(msgspec.Struct, rename="camel", frozen=True):
    asset: str
    balance: str
    cross_wallet_balance: str | None = None
    available_balance: str | None = None


@rest_parser
def parse_futures_balance(payload: Payload) -> tuple[Balance, ...]:
    """GET ``/fapi/v2/balance`` or ``/fapi/v3/balance``."""
    rows = convert(decode_json(payload, "futures balance"), list[_BalanceRow], "futures balance")
    return tuple(_futures_balance(r.asset, r.balance, r) for r in rows)


class _PositionRisk(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    position_amt: str
    entry_price: str
    un_realized_profit: str
    position_side: str | None = None
    mark_price: str | None = None
    liquidation_price: str | None = None
    leverage: str | None = None  # v2 only
    margin_type: str | None = None  # v2 only


@rest_parser
def parse_position_risk(payload: Payload) -> tuple[PositionSnapshot, ...]:
    """GET ``/fapi/v2/positionRisk`` or ``/fapi/v3/positionRisk`` (one-way and hedge)."""
    rows = convert(decode_json(payload, "positionRisk"), list[_PositionRisk], "positionRisk")
    return tuple(
        PositionSnapshot(
            r.symbol,
            decimal_of(r.position_amt, "positionAmt"),
            amount_of(r.entry_price, "entryPrice"),
            decimal_of(r.un_realized_profit, "unRealizedProfit"),
            position_side=position_side(r.position_side),
            margin_type=margin_type(r.margin_type),
            leverage=_leverage(r.leverage),
            mark_price=price_or_none(r.mark_price, "markPrice"),
            liquidation_price=price_or_none(r.liquidation_price, "liquidationPrice"),
        )
        for r in rows
    )


class _Leverage(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    leverage: int
    max_notional_value: str | None = None


@rest_parser
def parse_leverage_response(payload: Payload) -> LeverageSetting:
    """POST ``/fapi/v1/leverage``."""
    answer = convert(decode_json(payload, "leverage"), _Leverage, "leverage")
    notional = optional_decimal(answer.max_notional_value, "maxNotionalValue")
    return LeverageSetting(answer.symbol, answer.leverage, notional)


@rest_parser
def parse_margin_type_response(payload: Payload) -> None:
    """POST ``/fapi/v1/marginType`` answers ``{"code": 200, "msg": "success"}``."""
    answer = convert(decode_json(payload, "marginType"), RefusalWire, "marginType")
    if answer.code != 200:
        raise MalformedPayload(f"marginType answered code {answer.code}: {answer.msg}")


@rest_parser
def parse_position_side_dual(payload: Payload) -> bool:
    """GET ``/fapi/v1/positionSide/dual``: True when the account is in hedge mode."""
    body = expect_object(decode_json(payload, "positionSide/dual"), "positionSide/dual")
    return convert(body.get("dualSidePosition"), bool, "dualSidePosition")


@rest_parser
def parse_listen_key(payload: Payload) -> str:
    """POST ``/api/v3/userDataStream`` or ``/fapi/v1/listenKey``."""
    body = expect_object(decode_json(payload, "listenKey"), "listenKey")
    key = convert(body.get("listenKey"), str, "listenKey")
    if not key:
        raise MalformedPayload("listenKey is empty")
    return key


class _SymbolConfig(msgspec.Struct, rename="camel", frozen=True):
    symbol: str
    leverage: int
    margin_type: str | None = None
    is_auto_add_margin: bool = False
    max_notional_value: str | None = None


@rest_parser
def parse_symbol_config(payload: Payload) -> tuple[SymbolConfig, ...]:
    """GET ``/fapi/v1/symbolConfig``."""
    rows = convert(decode_json(payload, "symbolConfig"), list[_SymbolConfig], "symbolConfig")
    return tuple(
        SymbolConfig(
            r.symbol,
            margin_type(r.margin_type),
            r.is_auto_add_margin,
            r.leverage,
            optional_decimal(r.max_notional_value, "maxNotionalValue"),
        )
        for r in rows
    )
