"""Reading and checking USD-M order request parameters as Binance's futures gateway does.

Every request value arrives as a string (REST query/form value or WS-API value as JSON text).
These helpers turn them into typed values or raise ``SimError`` with the code and message
Binance uses: -1102 for a missing/malformed mandatory parameter, -1100 for a number with
illegal characters, -1111 for too many decimals, -1115/-1116/-1117/-1136 for unknown enum
values, and the symbol filters (PRICE_FILTER -4013/-4002/-4014, LOT_SIZE and MARKET_LOT_SIZE
-4003/-4004/-4005/-4023, MIN_NOTIONAL -4164, PERCENT_PRICE -4016/-4024) as
``exchange.binance.rules`` reads them from the catalogue's exchangeInfo.

Unverified against the live exchange: the order in which Binance runs these checks when a
request breaks several, and the exact wording of the PERCENT_PRICE messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.errors import SimError

__all__ = [
    "PERCENT_DOWN",
    "PERCENT_UP",
    "check_lot",
    "check_min_notional",
    "check_percent_price",
    "check_price",
    "decimal_param",
    "enum_param",
    "int_param",
    "mandatory",
    "optional_bool",
]

_NUMBER: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
# PERCENT_PRICE as the catalogue advertises it (multiplierUp 1.0500 / multiplierDown 0.9500).
PERCENT_UP: Final = Decimal("1.05")
PERCENT_DOWN: Final = Decimal("0.95")
_ENUM_CODES: Final = {
    "side": (-1117, "Invalid side."),
    "type": (-1116, "Invalid orderType."),
    "timeInForce": (-1115, "Invalid timeInForce."),
    "newOrderRespType": (-1136, "Invalid newOrderRespType."),
}


def mandatory(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise SimError(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def decimal_param(params: Mapping[str, str], name: str, *, required: bool) -> Decimal | None:
    raw = mandatory(params, name) if required else params.get(name)
    if raw is None or raw == "":
        return None
    if not _NUMBER.match(raw):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return Decimal(raw)


def int_param(params: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    raw = mandatory(params, name) if required else params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.lstrip("-").isdigit()):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(raw)


def enum_param(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str | None = None
) -> str:
    raw = params.get(name)
    if raw is None or raw == "":
        if default is not None:
            return default
        return mandatory(params, name)
    if raw not in allowed:
        code, msg = _ENUM_CODES.get(
            name, (-1130, f"Data sent for parameter '{name}' is not valid.")
        )
        raise SimError(code, msg)
    return raw


def optional_bool(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() == "true":
        return True
    if raw.lower() == "false":
        return False
    raise SimError(-1130, f"Data sent for parameter '{name}' is not valid.")


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _on_grid(value: Decimal, base: Decimal, step: Decimal) -> bool:
    return step <= 0 or (value - base) % step == 0


def check_price(symbol: SimSymbol, price: Decimal) -> None:
    """PRICE_FILTER and the symbol's price precision."""
    if _decimals(price) > symbol.price_precision:
        raise SimError(-1111, "Precision is over the maximum defined for this asset.")
    if price <= 0:
        raise SimError(-4001, "Price less than 0.")
    if price < symbol.min_price:
        raise SimError(-4013, "Price less than min price.")
    if price > symbol.max_price:
        raise SimError(-4002, "Price greater than max price.")
    if not _on_grid(price, symbol.min_price, symbol.tick_size):
        raise SimError(-4014, "Price not increased by tick size.")


def check_lot(symbol: SimSymbol, quantity: Decimal, *, market: bool) -> None:
    """LOT_SIZE (MARKET_LOT_SIZE for market orders) and the quantity precision."""
    if _decimals(quantity) > symbol.quantity_precision:
        raise SimError(-1111, "Precision is over the maximum defined for this asset.")
    if quantity <= 0:
        raise SimError(-4003, "Quantity less than or equal to zero.")
    if quantity < symbol.min_qty:
        raise SimError(-4004, "Quantity less than min quantity.")
    if quantity > (symbol.market_max_qty if market else symbol.max_qty):
        raise SimError(-4005, "Quantity greater than max quantity.")
    if not _on_grid(quantity, symbol.min_qty, symbol.step_size):
        raise SimError(-4023, "Quantity not increased by step size.")


def check_min_notional(symbol: SimSymbol, notional: Decimal, *, reduce_only: bool) -> None:
    if reduce_only or notional >= symbol.min_notional:
        return
    raise SimError(
        -4164,
        f"Order's notional must be no smaller than {format(symbol.min_notional.normalize(), 'f')}"
        " (unless you choose reduce only).",
    )


def check_percent_price(symbol: SimSymbol, side: str, price: Decimal, mark: Decimal) -> None:
    """PERCENT_PRICE against the mark price: a BUY at most 5 % above, a SELL at least 5 % below."""
    if mark <= 0:
        return
    if side == "BUY" and price > mark * PERCENT_UP:
        cap = (mark * PERCENT_UP).quantize(symbol.tick_size)
        raise SimError(-4016, f"Limit price can't be higher than {cap}.")
    if side == "SELL" and price < mark * PERCENT_DOWN:
        floor = (mark * PERCENT_DOWN).quantize(symbol.tick_size)
        raise SimError(-4024, f"Limit price can't be lower than {floor}.")
