"""Reading Binance REST bodies: the error every REST parser raises and the checks they share.

Used by ``parse_orders`` and ``parse_account``. A REST parser is wrapped in ``rest_parser`` so
that the stream's value readers (``wire_user``), which raise ``MalformedEvent``, surface as
``MalformedPayload`` instead; every check here raises ``MalformedPayload`` directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import msgspec

from exchange.binance.wire_user import MalformedEvent

__all__ = [
    "MalformedPayload",
    "Payload",
    "RefusalWire",
    "convert",
    "decode_json",
    "expect_array",
    "expect_object",
    "renamed",
    "rest_parser",
    "time_of",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Payload = bytes | str


class MalformedPayload(MalformedEvent):
    """A REST body we cannot read; the message says which field and why."""


class RefusalWire(msgspec.Struct, frozen=True):
    """Binance's ``{"code": ..., "msg": ...}``, as an error or as marginType's success."""

    code: int
    msg: str = ""


def rest_parser(fn: Callable[P, R]) -> Callable[P, R]:
    """Re-raise the shared helpers' ``MalformedEvent`` as ``MalformedPayload``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MalformedPayload:
            raise
        except MalformedEvent as exc:
            raise MalformedPayload(str(exc)) from None

    return wrapper


def decode_json(payload: Payload, what: str) -> Any:
    try:
        return msgspec.json.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedPayload(f"{what}: {exc}") from None


def convert(obj: Any, kind: type[T], what: str) -> T:
    try:
        return msgspec.convert(obj, kind)
    except (msgspec.ValidationError, RecursionError) as exc:
        raise MalformedPayload(f"{what}: {exc}") from None


def expect_object(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedPayload(f"{what}: expected an object, got {type(obj).__name__}")
    return obj


def expect_array(obj: Any, what: str) -> list[Any]:
    if not isinstance(obj, list):
        raise MalformedPayload(f"{what}: expected an array, got {type(obj).__name__}")
    return obj


def renamed(obj: dict[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    """``obj`` with its REST keys replaced by the stream's (``keys``: REST → stream)."""
    return {wire: obj[rest] for rest, wire in keys.items() if rest in obj}


def time_of(obj: dict[str, Any], keys: tuple[str, ...], what: str) -> int:
    """The first of ``keys`` that holds a positive integer time."""
    for key in keys:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    raise MalformedPayload(f"{what}: none of {', '.join(keys)} is a time")
