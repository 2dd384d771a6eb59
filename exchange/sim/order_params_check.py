"""Reading order-request parameters the way Binance's gateway does, with its error answers.

Requests reach the engines as plain strings (REST query/form values or WebSocket-API values
already turned into text). These helpers pull one parameter out, check it is present, well
formed, a known enum value, not more precise than the asset allows, and raise the ``SimError``
Binance answers otherwise. They are shared by the spot and futures engines so both refuse
malformed requests with the same codes and wording.

Wording follows the spot errors.md (-1100 with the legal-range regex, -1102, -1106, -1111,
-1115/-1116/-1117); the exact legal-range text of -1100 is as reported by users, unverified.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Final

from exchange.sim.errors import SimError

__all__ = [
    "CLIENT_ID_PATTERN",
    "both_missing",
    "client_id_param",
    "decimal_param",
    "enum_param",
    "int_param",
    "mandatory",
    "not_required",
    "optional",
]

_DECIMAL_RE: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INT_RE: Final = re.compile(r"^-?[0-9]{1,19}$")
CLIENT_ID_PATTERN: Final = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
_CLIENT_ID_RE: Final = re.compile(CLIENT_ID_PATTERN)

# Enum parameters with a dedicated code; others get -1100 with their legal range.
_ENUM_ERRORS: Final[Mapping[str, tuple[int, str]]] = {
    "side": (-1117, "Invalid side."),
    "type": (-1116, "Invalid orderType."),
    "timeInForce": (-1115, "Invalid timeInForce."),
}


def optional(params: Mapping[str, str], name: str) -> str | None:
    """The value, or None when absent or empty (Binance treats both as not sent)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    return value


def mandatory(params: Mapping[str, str], name: str) -> str:
    value = optional(params, name)
    if value is None:
        raise SimError(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def both_missing(first: str, second: str) -> SimError:
    return SimError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def not_required(params: Mapping[str, str], *names: str) -> None:
    """-1106 for the first of ``names`` that was sent although the order type takes none."""
    for name in names:
        if optional(params, name) is not None:
            raise SimError(-1106, f"Parameter '{name}' sent when not required.")


def enum_param(
    params: Mapping[str, str], name: str, allowed: Collection[str], *, default: str | None = None
) -> str:
    value = optional(params, name)
    if value is None:
        if default is not None:
            return default
        return mandatory(params, name)
    if value not in allowed:
        code, msg = _ENUM_ERRORS.get(
            name,
            (
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is "
                f"'{'|'.join(sorted(allowed))}'.",
            ),
        )
        raise SimError(code, msg)
    return value


def decimal_param(
    params: Mapping[str, str], name: str, *, max_decimals: int, required: bool = True
) -> Decimal | None:
    """A non-negative decimal as Binance accepts it (no sign, no exponent, <= 20+20 digits)."""
    raw = mandatory(params, name) if required else optional(params, name)
    if raw is None:
        return None
    if not _DECIMAL_RE.match(raw):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '{_DECIMAL_RANGE}'.",
        )
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:  # unreachable after the regex; kept as a guard
        raise SimError(-1100, f"Illegal characters found in parameter '{name}'.") from exc
    fraction = raw.partition(".")[2].rstrip("0")
    if len(fraction) > max_decimals:
        raise SimError(-1111, f"Parameter '{name}' has too much precision.")
    return value


def int_param(params: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    raw = mandatory(params, name) if required else optional(params, name)
    if raw is None:
        return None
    if not _INT_RE.match(raw):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(raw)


def client_id_param(params: Mapping[str, str], name: str) -> str | None:
    value = optional(params, name)
    if value is not None and not _CLIENT_ID_RE.match(value):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            f"'{CLIENT_ID_PATTERN}'.",
        )
    return value
