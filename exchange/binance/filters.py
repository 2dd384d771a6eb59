"""Symbol rules read from Binance ``exchangeInfo`` (Spot ``/api/v3``, USD-M ``/fapi/v1``).

This module is the data half of ``exchange.binance.rules``: the parser, which builds the frozen
records of ``exchange.binance.filter_records`` (re-exported here). Import them from
``exchange.binance.rules``, which re-exports everything public here.

Every number comes from the JSON string exactly (``Decimal("0.00001000")``), never through a
float. A symbol whose known filters cannot be read is skipped with a reason instead of being
half-parsed: a symbol without rules is one the risk gate refuses, which is the safe outcome.
Unknown filter types and unknown fields are tolerated, because Binance adds them without notice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec

from app.domain.enums import MarketType
from exchange.binance.filter_records import (
    ExchangeInfo,
    LotSize,
    MinNotional,
    Notional,
    PercentPrice,
    PercentPriceBySide,
    PriceFilter,
    SymbolRules,
    TrailingDelta,
)

__all__ = [
    "ExchangeInfo",
    "ExchangeInfoError",
    "LotSize",
    "MinNotional",
    "Notional",
    "PercentPrice",
    "PercentPriceBySide",
    "PriceFilter",
    "SymbolRules",
    "TrailingDelta",
    "parse_exchange_info",
]


class ExchangeInfoError(ValueError):
    """The payload as a whole is not an exchangeInfo answer (not an object, no symbol list)."""


class _MalformedError(ValueError):
    """One symbol entry cannot be read; the message is the reason recorded in ``skipped``."""


_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def parse_exchange_info(
    payload: bytes | str | Mapping[str, Any], market: MarketType
) -> ExchangeInfo:
    """Parse a Spot or USD-M exchangeInfo body; malformed symbols are skipped, not fatal.

    Raises ``ExchangeInfoError`` only when the payload as a whole is unusable. A mapping that
    already holds floats (e.g. from ``json.loads``) has those fields rejected as malformed:
    Binance sends every decimal as a string, and a float would already have lost digits.
    """
    document = _decode(payload)
    raw_symbols = document.get("symbols")
    if not isinstance(raw_symbols, list):
        raise ExchangeInfoError("exchangeInfo has no 'symbols' list")
    symbols: dict[str, SymbolRules] = {}
    skipped: list[tuple[str, str]] = []
    for index, entry in enumerate(raw_symbols):
        name = entry.get("symbol") if isinstance(entry, Mapping) else None
        label = name if isinstance(name, str) and name else f"#{index}"
        if label in symbols:
            skipped.append((label, "duplicate symbol entry; the first one is kept"))
            continue
        try:
            symbols[label] = _parse_symbol(entry, market)
        except (_MalformedError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            skipped.append((label, _describe(exc)))
    rate_limits = document.get("rateLimits")
    if not isinstance(rate_limits, list):
        rate_limits = []
    server_time = document.get("serverTime")
    return ExchangeInfo(
        market=market,
        symbols=symbols,
        rate_limits_raw=tuple(r for r in rate_limits if isinstance(r, Mapping)),
        server_time_ms=server_time if _is_int(server_time) else None,
        skipped=tuple(skipped),
    )


def _decode(payload: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(payload, Mapping):
        return payload
    try:
        document = _DECODER.decode(payload)
    except msgspec.DecodeError as exc:
        raise ExchangeInfoError(f"exchangeInfo is not valid JSON: {exc}") from exc
    if not isinstance(document, Mapping):
        raise ExchangeInfoError("exchangeInfo is not a JSON object")
    return document


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _MalformedError):
        return str(exc)
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"


def _parse_symbol(entry: object, market: MarketType) -> SymbolRules:
    if not isinstance(entry, Mapping):
        raise _MalformedError(f"symbol entry is a {type(entry).__name__}, not an object")
    raw_order_types = entry.get("orderTypes", [])
    if not isinstance(raw_order_types, list) or not all(
        isinstance(t, str) for t in raw_order_types
    ):
        raise _MalformedError("orderTypes is not a list of strings")
    raw_filters = entry.get("filters", [])
    if not isinstance(raw_filters, list):
        raise _MalformedError("filters is not a list")
    parsed: dict[str, Any] = {}
    filter_types: list[str] = []
    unknown: list[str] = []
    for raw in raw_filters:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("filterType"), str):
            raise _MalformedError("a filter has no filterType")
        kind = raw["filterType"]
        filter_types.append(kind)
        reader = _FILTER_READERS.get(kind)
        if reader is None:
            unknown.append(kind)
            continue
        try:
            parsed.update(reader(raw, market))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise _MalformedError(f"filter {kind}: {_describe(exc)}") from exc
    futures = market is MarketType.USDM
    return SymbolRules(
        symbol=_text(entry, "symbol"),
        market=market,
        status=_text(entry, "status"),
        base_asset=_text(entry, "baseAsset"),
        quote_asset=_text(entry, "quoteAsset"),
        order_types=frozenset(raw_order_types),
        contract_type=_optional(entry, "contractType", _string) if futures else None,
        price_precision=_optional(entry, "pricePrecision", _int) if futures else None,
        quantity_precision=_optional(entry, "quantityPrecision", _int) if futures else None,
        trigger_protect=_optional(entry, "triggerProtect", _decimal) if futures else None,
        liquidation_fee=_optional(entry, "liquidationFee", _decimal) if futures else None,
        market_take_bound=_optional(entry, "marketTakeBound", _decimal) if futures else None,
        filter_types=tuple(filter_types),
        unknown_filters=tuple(unknown),
        **parsed,
    )


# --- field readers: each raises on a wrong type so the symbol is skipped with a clear reason.


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise _MalformedError(f"field {key!r} is not a non-empty string: {value!r}")
    return value


def _string(raw: Mapping[str, Any], key: str) -> str:
    # contractType is "" for some delisted futures symbols: empty is a value, not an error.
    value = raw[key]
    if not isinstance(value, str):
        raise _MalformedError(f"field {key!r} is not a string: {value!r}")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(raw: Mapping[str, Any], key: str) -> int:
    value = raw[key]
    # Futures sends multiplierDecimal as "4" where the docs show 4: accept both spellings.
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not _is_int(value):
        raise _MalformedError(f"field {key!r} is not an integer: {value!r}")
    return int(value)


def _decimal(raw: Mapping[str, Any], key: str) -> Decimal:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _MalformedError(f"field {key!r} is not a decimal string: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise _MalformedError(f"field {key!r} is not a number: {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise _MalformedError(f"field {key!r} is negative or not finite: {value!r}")
    return number


def _bool(raw: Mapping[str, Any], key: str) -> bool:
    value = raw[key]
    if not isinstance(value, bool):
        raise _MalformedError(f"field {key!r} is not a boolean: {value!r}")
    return value


_T = TypeVar("_T")


def _optional(
    raw: Mapping[str, Any], key: str, read: Callable[[Mapping[str, Any], str], _T]
) -> _T | None:
    return read(raw, key) if key in raw and raw[key] is not None else None


# --- filter readers: raw filter object -> SymbolRules keyword arguments.

_Reader = Callable[[Mapping[str, Any], str], Any]
_FilterReader = Callable[[Mapping[str, Any], MarketType], dict[str, Any]]


def _maybe_int(raw: Mapping[str, Any], key: str) -> int | None:
    return _optional(raw, key, _int)


def _record(target: str, build: Callable[..., Any], *fields: tuple[str, _Reader]) -> _FilterReader:
    """A reader that builds ``build(*values)`` from the named fields, for one SymbolRules slot."""

    def read(raw: Mapping[str, Any], _: MarketType) -> dict[str, Any]:
        return {target: build(*(reader(raw, key) for key, reader in fields))}

    return read


def _count(target: str, spot_key: str) -> _FilterReader:
    """Order-count filters: spot names the field after the filter, futures calls it ``limit``."""

    def read(raw: Mapping[str, Any], _: MarketType) -> dict[str, Any]:
        return {target: _int(raw, spot_key if spot_key in raw else "limit")}

    return read


def _min_notional(raw: Mapping[str, Any], market: MarketType) -> dict[str, Any]:
    if market is MarketType.USDM or "notional" in raw:
        return {"min_notional": MinNotional(_decimal(raw, "notional"))}
    values = (_decimal(raw, "minNotional"), _bool(raw, "applyToMarket"))
    return {"min_notional": MinNotional(*values, _maybe_int(raw, "avgPriceMins"))}


_LOT_FIELDS = (("minQty", _decimal), ("maxQty", _decimal), ("stepSize", _decimal))
_FILTER_READERS: Mapping[str, _FilterReader] = {
    "PRICE_FILTER": _record(
        "price_filter",
        PriceFilter,
        ("minPrice", _decimal),
        ("maxPrice", _decimal),
        ("tickSize", _decimal),
    ),
    "LOT_SIZE": _record("lot_size", LotSize, *_LOT_FIELDS),
    "MARKET_LOT_SIZE": _record("market_lot_size", LotSize, *_LOT_FIELDS),
    "MIN_NOTIONAL": _min_notional,
    "NOTIONAL": _record(
        "notional",
        Notional,
        ("minNotional", _decimal),
        ("applyMinToMarket", _bool),
        ("maxNotional", _decimal),
        ("applyMaxToMarket", _bool),
        ("avgPriceMins", _int),
    ),
    "PERCENT_PRICE": _record(
        "percent_price",
        PercentPrice,
        ("multiplierUp", _decimal),
        ("multiplierDown", _decimal),
        ("avgPriceMins", _maybe_int),
        ("multiplierDecimal", _maybe_int),
    ),
    "PERCENT_PRICE_BY_SIDE": _record(
        "percent_price_by_side",
        PercentPriceBySide,
        ("bidMultiplierUp", _decimal),
        ("bidMultiplierDown", _decimal),
        ("askMultiplierUp", _decimal),
        ("askMultiplierDown", _decimal),
        ("avgPriceMins", _int),
    ),
    "TRAILING_DELTA": _record(
        "trailing_delta",
        TrailingDelta,
        ("minTrailingAboveDelta", _int),
        ("maxTrailingAboveDelta", _int),
        ("minTrailingBelowDelta", _int),
        ("maxTrailingBelowDelta", _int),
    ),
    "MAX_NUM_ORDERS": _count("max_num_orders", "maxNumOrders"),
    "MAX_NUM_ALGO_ORDERS": _count("max_num_algo_orders", "maxNumAlgoOrders"),
    "MAX_NUM_ICEBERG_ORDERS": _count("max_num_iceberg_orders", "maxNumIcebergOrders"),
    "ICEBERG_PARTS": _record("iceberg_parts", int, ("limit", _int)),
    "MAX_POSITION": _record("max_position", Decimal, ("maxPosition", _decimal)),
}
