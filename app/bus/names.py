"""Channel names and subscription patterns.

Names are dot-separated tokens (`market.kline.BTCUSDT`). Patterns follow NATS subjects: `*`
matches exactly one token, a final `>` matches one or more (`signal.*`, `market.>`).
"""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
ANY_ONE = "*"
ANY_REST = ">"


class InvalidName(ValueError):
    pass


@lru_cache(maxsize=4096)
def split_name(name: str) -> tuple[str, ...]:
    tokens = tuple(name.split("."))
    for token in tokens:
        if not _TOKEN.match(token):
            raise InvalidName(f"channel name {name!r}: token {token!r} must match [A-Za-z0-9_-]+")
    return tokens


@lru_cache(maxsize=1024)
def split_pattern(pattern: str) -> tuple[str, ...]:
    tokens = tuple(pattern.split("."))
    for index, token in enumerate(tokens):
        if token == ANY_REST and index != len(tokens) - 1:
            raise InvalidName(f"pattern {pattern!r}: '>' may only be the last token")
        if token not in (ANY_ONE, ANY_REST) and not _TOKEN.match(token):
            raise InvalidName(f"pattern {pattern!r}: token {token!r} is neither a name nor * or >")
    return tokens


def is_pattern(text: str) -> bool:
    return any(token in (ANY_ONE, ANY_REST) for token in text.split("."))


def matches(pattern: str, name: str) -> bool:
    """Whether a concrete channel name is selected by a pattern."""
    return tokens_overlap(split_pattern(pattern), split_name(name))


def tokens_overlap(left: tuple[str, ...], right: tuple[str, ...]) -> bool:
    """Whether some concrete name could match both token lists (each may hold wildcards)."""
    for index, token in enumerate(left):
        if token == ANY_REST:
            return len(right) > index
        if index >= len(right):
            return False
        other = right[index]
        if other == ANY_REST:
            return True
        if token != ANY_ONE and other != ANY_ONE and token != other:
            return False
    return len(left) == len(right)
