"""Request signing for Binance: the three key types, parameter formatting and the two payloads.

Binance signs different strings on its two request surfaces:

* REST (``SIGNED`` endpoints): the query string exactly as sent, each ``key=value`` pair
  UTF-8 percent-encoded, in the order sent. The docs' worked example signs
  ``symbol=%EF%BC%91…`` for a symbol of full-width digits (U+FF11…), so non-ASCII text is
  encoded *before* signing. The signature is appended as ``&signature=…``, itself
  percent-encoded (Ed25519 and RSA signatures are base64 and contain ``+``, ``/`` and ``=``).
* WebSocket API: every param except ``signature``, sorted by name, ``key=value`` joined by
  ``&``, *not* percent-encoded: the raw UTF-8 bytes are signed.

The query string this module returns must reach the wire byte for byte: an HTTP client that
re-quotes URLs (aiohttp does unless given ``yarl.URL(..., encoded=True)``) would break the
signature.

Values are formatted by :func:`format_value`: ``Decimal`` in plain notation, ``bool`` as
``true``/``false``, enums by value. A ``float`` is refused outright: binary floats must never
decide a price or quantity that reaches the exchange.

Secrets never appear in messages or ``repr``: errors name the setting and the reason only.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

__all__ = [
    "Ed25519Signer",
    "HmacSigner",
    "RsaSigner",
    "Signer",
    "encode_query",
    "format_value",
    "load_signer",
    "sign_rest_params",
    "ws_api_signature_payload",
]

Params = Mapping[str, object] | Sequence[tuple[str, object]]

_SECRET_SETTING = "exchange.api_secret"
_KEY_FILE_SETTING = "exchange.private_key_file"
_PASSPHRASE_SETTING = "exchange.private_key_passphrase"

# Exactly the characters ``quote(..., safe="")`` leaves alone: text made only of them is its own
# encoding, so the hot path (every order) can skip quote()'s encode/decode round trip.
# ``[0-9]`` rather than ``\d``, which would also match non-ASCII digits.
_is_unreserved = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


class Signer(Protocol):
    """Signs a payload string; ``key_type`` is ``"hmac"``, ``"ed25519"`` or ``"rsa"``."""

    key_type: str

    def sign(self, payload: str) -> str: ...


class HmacSigner:
    """HMAC-SHA256 over the UTF-8 payload, as lowercase hex."""

    key_type = "hmac"

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the HMAC secret is empty")
        self._key = secret.encode("utf-8")

    def sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner()"


class Ed25519Signer:
    """Ed25519 signature of the UTF-8 payload, standard base64 with padding."""

    key_type = "ed25519"

    def __init__(self, private_key_pem: bytes, passphrase: bytes | None = None) -> None:
        key = _load_private_key(private_key_pem, passphrase)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"not an Ed25519 private key (found {_key_kind(key)})")
        self._key = key

    def sign(self, payload: str) -> str:
        return base64.b64encode(self._key.sign(payload.encode("utf-8"))).decode("ascii")

    def __repr__(self) -> str:
        return "Ed25519Signer()"


class RsaSigner:
    """RSASSA-PKCS1-v1_5 with SHA-256 of the UTF-8 payload, standard base64 with padding."""

    key_type = "rsa"

    def __init__(self, private_key_pem: bytes, passphrase: bytes | None = None) -> None:
        key = _load_private_key(private_key_pem, passphrase)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError(f"not an RSA private key (found {_key_kind(key)})")
        self._key = key

    def sign(self, payload: str) -> str:
        signature = self._key.sign(payload.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def __repr__(self) -> str:
        return "RsaSigner()"


def _load_private_key(pem: bytes, passphrase: bytes | None) -> object:
    # cryptography's own messages are generic, but we replace them anyway so that no library
    # change can ever echo key bytes into a log line; `from None` drops the original too.
    if b"-----BEGIN" not in pem:
        raise ValueError("not a PEM private key (no '-----BEGIN' line)")
    try:
        return load_pem_private_key(pem, password=passphrase)
    except TypeError:
        if passphrase is None:
            raise ValueError(f"the private key is encrypted: set {_PASSPHRASE_SETTING}") from None
        raise ValueError(
            f"the private key is not encrypted: leave {_PASSPHRASE_SETTING} unset"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a readable PEM private key, or the passphrase is wrong") from None


def _key_kind(key: object) -> str:
    return type(key).__name__.removeprefix("_").replace("PrivateKey", " key")


def load_signer(
    key_type: str,
    *,
    secret: str | None,
    private_key_file: Path | None,
    passphrase: str | None,
) -> Signer:
    """Build the signer the configuration asks for.

    HMAC takes ``secret`` as the key itself. Ed25519 and RSA take a PEM private key, either as
    the text of ``secret`` or from ``private_key_file`` (exactly one of the two). Every error is
    a ``ValueError`` naming the setting at fault and why, never its value.
    """
    if key_type == "hmac":
        if private_key_file is not None:
            raise ValueError(f"{_KEY_FILE_SETTING}: not used with key_type 'hmac'; unset it")
        if not secret:
            raise ValueError(f"{_SECRET_SETTING}: required for key_type 'hmac'")
        return HmacSigner(secret)
    if key_type not in ("ed25519", "rsa"):
        raise ValueError(f"exchange.key_type: unknown key type {key_type!r}")

    if secret and private_key_file is not None:
        raise ValueError(
            f"{_SECRET_SETTING}: set either it or {_KEY_FILE_SETTING} for key_type "
            f"{key_type!r}, not both"
        )
    if private_key_file is not None:
        setting = _KEY_FILE_SETTING
        try:
            pem = private_key_file.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ValueError(f"{setting}: cannot read {private_key_file}: {reason}") from None
    elif secret:
        setting = _SECRET_SETTING
        pem = secret.encode("utf-8")
    else:
        raise ValueError(
            f"{_SECRET_SETTING}: key_type {key_type!r} needs a PEM private key here or in "
            f"{_KEY_FILE_SETTING}"
        )

    password = passphrase.encode("utf-8") if passphrase else None
    try:
        if key_type == "ed25519":
            return Ed25519Signer(pem, password)
        return RsaSigner(pem, password)
    except ValueError as exc:
        raise ValueError(f"{setting}: {exc}") from None


def format_value(value: object) -> str:
    """Render one parameter value the way Binance expects it on the wire.

    ``Decimal`` in plain notation keeping the digits given (``Decimal("1E-8")`` gives
    ``"0.00000001"``, ``Decimal("1.50")`` stays ``"1.50"``); ``bool`` as ``true``/``false``;
    an enum by its value; ``int`` and ``str`` as they are. ``float`` raises ``TypeError``.
    """
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, enum.Enum):  # before str/int: StrEnum and IntEnum are both
        return format_value(value.value)
    if isinstance(value, float):
        raise TypeError("float parameter refused: use Decimal or int, floats never reach the wire")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite Decimal parameter: {value}")
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"unsupported parameter type {type(value).__name__}")


def encode_query(params: Params) -> str:
    """The REST query string: pairs in the order given, ``None`` values skipped, keys and values
    UTF-8 percent-encoded (everything but ``A-Z a-z 0-9 - _ . ~``)."""
    items = params.items() if isinstance(params, Mapping) else params
    encoded: list[str] = []
    for key, value in items:
        if value is None:
            continue
        # Exact type checks: a str subclass (a str-mixin enum) may format differently, and a
        # bool is an int; both take the general path.
        if type(key) is not str or _is_unreserved(key) is None:
            key = quote(key, safe="")
        if type(value) is str:
            text = value if _is_unreserved(value) is not None else quote(value, safe="")
        elif type(value) is int:
            text = str(value)  # digits and "-": nothing to encode
        else:
            text = format_value(value)
            if _is_unreserved(text) is None:
                text = quote(text, safe="")
        encoded.append(f"{key}={text}")
    return "&".join(encoded)


def sign_rest_params(params: Params, signer: Signer) -> str:
    """The signed REST query string: :func:`encode_query` plus ``&signature=`` (encoded)."""
    query = encode_query(params)
    signature = quote(signer.sign(query), safe="")
    return f"{query}&signature={signature}" if query else f"signature={signature}"


def ws_api_signature_payload(params: Mapping[str, object]) -> str:
    """The WebSocket API signature payload: all params except ``signature`` (and ``None``
    values, which the request must omit too), sorted by name, raw UTF-8, not percent-encoded.

    The JSON request must carry each value as the same text: decimals as JSON strings
    (``format_value`` of the ``Decimal``), integers as JSON numbers, booleans as ``true``/
    ``false``.
    """
    return "&".join(
        f"{key}={format_value(params[key])}"
        for key in sorted(params)
        if key != "signature" and params[key] is not None
    )
