"""Client order ids: the identity of an order intent, chosen by the risk gate.

An id is derived from what the order carries out (the signal id, or the flatten command and the
position it closes), never from a counter or the clock: the same signal delivered twice yields
the same id, and the executor places at most one exchange order per id. Binance accepts
``newClientOrderId`` matching ``^[a-zA-Z0-9-_]{1,36}$``; every id here is
``<prefix>-<digest>`` with the prefix at most 8 characters (``config.risk.ClientIdPrefix``) and a
26-character base32 digest (130 bits of blake2b), 35 characters at most.

Pure functions; no channels.
"""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = [
    "MAX_CLIENT_ID_LENGTH",
    "MAX_PREFIX_LENGTH",
    "client_order_id",
    "flatten_client_order_id",
    "is_ours",
]

MAX_CLIENT_ID_LENGTH = 36
MAX_PREFIX_LENGTH = 8
_DIGEST_CHARS = 26  # 16 bytes of blake2b -> 26 base32 characters without padding
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,8}$")
_DIGEST = re.compile(r"^[a-z2-7]{26}$")


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.match(prefix):
        raise ValueError(f"client id prefix {prefix!r} must match [A-Za-z0-9_-]{{1,8}}")


def _digest(*parts: str) -> str:
    # A separator that cannot be confused with part contents keeps ("a|b","c") != ("a","b|c").
    material = "\x1f".join(f"{len(part)}:{part}" for part in parts).encode()
    raw = hashlib.blake2b(material, digest_size=16).digest()
    return base64.b32encode(raw).decode().rstrip("=").lower()


def client_order_id(prefix: str, signal_id: str) -> str:
    """The id of the order that carries out `signal_id`: the same signal, the same id."""
    _check_prefix(prefix)
    return f"{prefix}-{_digest('signal', signal_id)}"


def flatten_client_order_id(prefix: str, command_id: str, strategy: str, symbol: str) -> str:
    """The id of the order closing `strategy`'s position on `symbol` for one flatten command:
    a re-delivered command gives the same ids, a new command new ones."""
    _check_prefix(prefix)
    return f"{prefix}-{_digest('flatten', command_id, strategy, symbol)}"


def is_ours(prefix: str, client_order_id: str) -> bool:
    """Whether `client_order_id` has the shape of an id this gate issues under `prefix`
    (reconciliation adopts such orders; anything else is foreign)."""
    # The digest never holds "-", so the last one separates it even from a prefix with "-".
    head, sep, digest = client_order_id.rpartition("-")
    return sep == "-" and head == prefix and _DIGEST.match(digest) is not None
