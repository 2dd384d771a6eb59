"""Request authentication for the simulator: API keys, signatures and timing, as Binance does.

Pure functions over strings and mappings, so the HTTP and WebSocket layers can call them
without this module knowing either. Each check raises :class:`AuthError` carrying the Binance
``code``, ``msg`` and HTTP ``status`` the real exchange answers with.

This is deliberately independent of ``exchange.binance.signing``: the simulator rebuilds each
signature payload from the request as received, so a bug on either side shows up as a failed
verification instead of two copies of the same mistake agreeing.

The rules (Binance Spot docs, "Request security" for REST and WebSocket API):

* REST: the payload is ``totalParams``, the query string followed directly by the request body
  (no ``&`` between them), exactly as received and still percent-encoded, with the
  ``signature`` pair removed. The key comes from the ``X-MBX-APIKEY`` header.
* WebSocket API: every param but ``signature``, sorted by name, ``key=value`` joined by ``&``,
  values as their JSON text, raw UTF-8 (no percent-encoding). ``apiKey`` is a param.
* HMAC signatures are hex and "not case-sensitive"; Ed25519 signatures are base64 and are.
* Timing: ``timestamp`` (milliseconds, or microseconds) must satisfy
  ``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``; recvWindow
  defaults to 5000, allows up to three decimals (microseconds) and may not exceed 60000.

Order of checks: API key, mandatory params, recvWindow, signature, timing. The signature is
checked before the clock so a tampered ``timestamp`` reads as a bad signature (-1022), not as
clock skew (-1021) that the client would "fix" by resyncing.

Unverified (Binance does not document it): that order of checks; -2014 for a missing key
header; -1130 (not -1100) for a malformed recvWindow; the 10**15 cut-off between millisecond
and microsecond timestamps; the refusal of a raw ``+`` in a REST signature (form decoding reads
it as a space, which may be stricter than Binance).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from urllib.parse import unquote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

__all__ = [
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_RECV_WINDOW_MS",
    "ApiCredential",
    "AuthError",
    "KeyStore",
    "verify_api_key_only",
    "verify_rest",
    "verify_ws_api",
]

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
FUTURE_TOLERANCE_MS = 1000
API_KEY_HEADER = "x-mbx-apikey"

# A millisecond timestamp reaches 10**15 only in the year 33658, a microsecond one passed it in
# 2001: the digit count tells the two units apart, as Binance accepts either.
_MICROSECOND_THRESHOLD = 10**15
_TIMESTAMP_TEXT = re.compile(r"[0-9]{1,20}")
_RECV_WINDOW_TEXT = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,3})?")
_HMAC_HEX = re.compile(r"[0-9a-fA-F]{64}")


class AuthError(Exception):
    """A refused request: the Binance error ``code``, its ``msg`` and the HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        """The JSON error body Binance sends: ``{"code": ..., "msg": ...}``."""
        return {"code": self.code, "msg": self.msg}


def _mandatory(name: str) -> AuthError:
    return AuthError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.", 400
    )


def _invalid_value(name: str) -> AuthError:
    return AuthError(-1130, f"Data sent for parameter '{name}' is not valid.", 400)


# Factories, not shared instances: a raised exception collects a traceback, and one instance
# reused across requests would carry the last request's frames along.
def _bad_key_format() -> AuthError:
    return AuthError(-2014, "API-key format invalid.", 401)


def _unknown_key() -> AuthError:
    return AuthError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def _bad_signature() -> AuthError:
    return AuthError(-1022, "Signature for this request is not valid.", 400)


def _duplicate() -> AuthError:
    return AuthError(-1101, "Duplicate values for a parameter detected.", 400)


def _recv_window_too_big() -> AuthError:
    return AuthError(-1131, "recvWindow must be less than 60000", 400)


def _too_old() -> AuthError:
    return AuthError(-1021, "Timestamp for this request is outside of the recvWindow.", 400)


def _too_new() -> AuthError:
    return AuthError(
        -1021, "Timestamp for this request was 1000ms ahead of the server's time.", 400
    )


@dataclass(frozen=True)
class ApiCredential:
    """One API key: HMAC keys carry the ``secret``, Ed25519 keys the ``public_key_pem``."""

    api_key: str
    key_type: Literal["hmac", "ed25519"]
    secret: str | None = None
    public_key_pem: bytes | None = None

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("the API key is empty")
        if self.key_type == "hmac":
            if not self.secret or self.public_key_pem is not None:
                raise ValueError("an HMAC credential needs a secret and no public key")
        elif self.key_type == "ed25519":
            if self.public_key_pem is None or self.secret is not None:
                raise ValueError("an Ed25519 credential needs a public key and no secret")
        else:
            raise ValueError(f"unknown key type {self.key_type!r}")

    def __repr__(self) -> str:
        # The secret must never reach a log line through a repr.
        return f"ApiCredential(api_key={self.api_key!r}, key_type={self.key_type!r})"


class KeyStore:
    """The simulator's registered API keys, looked up by the exact (case-sensitive) key."""

    def __init__(self, credentials: Iterable[ApiCredential] = ()) -> None:
        self._credentials: dict[str, ApiCredential] = {}
        self._public_keys: dict[str, Ed25519PublicKey] = {}
        for credential in credentials:
            self.add(credential)

    def add(self, credential: ApiCredential) -> None:
        """Register (or replace) a key; an Ed25519 PEM is parsed now, so it fails here."""
        if credential.key_type == "ed25519":
            assert credential.public_key_pem is not None  # enforced by ApiCredential
            public_key = load_pem_public_key(credential.public_key_pem)
            if not isinstance(public_key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 public key")
            self._public_keys[credential.api_key] = public_key
        else:
            self._public_keys.pop(credential.api_key, None)
        self._credentials[credential.api_key] = credential

    def remove(self, api_key: str) -> None:
        """Revoke a key; later requests with it get -2015."""
        self._credentials.pop(api_key, None)
        self._public_keys.pop(api_key, None)

    def get(self, api_key: str) -> ApiCredential | None:
        return self._credentials.get(api_key)

    def public_key(self, api_key: str) -> Ed25519PublicKey | None:
        return self._public_keys.get(api_key)

    def __contains__(self, api_key: object) -> bool:
        return api_key in self._credentials

    def __len__(self) -> int:
        return len(self._credentials)


# --- entry points ----------------------------------------------------------------------------


def verify_api_key_only(headers: Mapping[str, str], keys: KeyStore) -> ApiCredential:
    """For endpoints that need the key but no signature (listenKey management)."""
    return _lookup(_header(headers, API_KEY_HEADER), keys)


def verify_rest(
    *, query_string: str, body: str, headers: Mapping[str, str], keys: KeyStore, now_ms: int
) -> ApiCredential:
    """Authenticate a signed REST request as received; returns the caller's credential.

    ``query_string`` is the raw text after ``?`` and ``body`` the raw
    ``application/x-www-form-urlencoded`` body (empty for GET), both still percent-encoded.
    """
    credential = verify_api_key_only(headers, keys)
    query_pairs = list(_form_pairs(query_string))
    body_pairs = list(_form_pairs(body))
    signatures = [value for name, value in (*query_pairs, *body_pairs) if name == "signature"]
    if not signatures or not signatures[0]:
        raise _mandatory("signature")
    if len(signatures) > 1:
        raise _duplicate()
    # The query string wins when a parameter is sent in both places.
    first_values: dict[str, str] = {}
    for name, value in (*query_pairs, *body_pairs):
        first_values.setdefault(name, value)
    timestamp_us = _timestamp_us(first_values.get("timestamp"))
    recv_window = _recv_window(first_values.get("recvWindow"))
    payload = _without_signature(query_string) + _without_signature(body)
    _check_signature(credential, keys, payload, signatures[0])
    _check_timing(timestamp_us, recv_window, now_ms)
    return credential


def verify_ws_api(*, params: Mapping[str, object], keys: KeyStore, now_ms: int) -> ApiCredential:
    """Authenticate a signed WebSocket API request from its decoded JSON ``params``.

    Decode the frame with ``json.loads(text, parse_float=Decimal)`` so a number such as
    ``52000.00`` keeps the digits it was sent (and signed) with; a ``float`` is rendered with
    ``repr``, which loses trailing zeros.
    """
    api_key = params.get("apiKey")
    if not isinstance(api_key, str) or not api_key:
        raise _mandatory("apiKey")
    credential = _lookup(api_key, keys)
    signature = params.get("signature")
    if not isinstance(signature, str) or not signature:
        raise _mandatory("signature")
    timestamp_us = _timestamp_us(_ws_scalar_or_none(params, "timestamp"))
    recv_window = _recv_window(_ws_scalar_or_none(params, "recvWindow"))
    payload = "&".join(
        f"{name}={_json_text(name, params[name])}" for name in sorted(params) if name != "signature"
    )
    _check_signature(credential, keys, payload, signature)
    _check_timing(timestamp_us, recv_window, now_ms)
    return credential


# --- API key ---------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], lower_name: str) -> str | None:
    # HTTP header names are case-insensitive; a plain dict is not, so look by hand.
    for name, value in headers.items():
        if name.lower() == lower_name:
            return value
    return None


def _lookup(api_key: str | None, keys: KeyStore) -> ApiCredential:
    if not api_key:
        raise _bad_key_format()
    credential = keys.get(api_key)
    if credential is None:
        raise _unknown_key()
    return credential


# --- REST payload ----------------------------------------------------------------------------


def _form_pairs(text: str) -> Iterator[tuple[str, str]]:
    """Decoded (name, value) pairs of a form-encoded string; ``+`` is a space, as in forms.

    A base64 signature sent with a raw ``+`` therefore fails to verify, as it should: the client
    must percent-encode it.
    """
    for segment in text.split("&"):
        if segment:
            name, _, value = segment.partition("=")
            yield unquote_plus(name), unquote_plus(value)


def _without_signature(text: str) -> str:
    return "&".join(
        segment
        for segment in text.split("&")
        if unquote_plus(segment.partition("=")[0]) != "signature"
    )


# --- WebSocket API payload -------------------------------------------------------------------


def _json_text(name: str, value: object) -> str:
    """The JSON text a scalar was sent as: strings raw, numbers as written, booleans lowercase."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    # null, arrays and objects have no agreed text form in the signature payload.
    raise _invalid_value(name)


def _ws_scalar_or_none(params: Mapping[str, object], name: str) -> str | None:
    if name not in params:
        return None
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal | float):
        return ""  # present but not a number: reported as malformed by the caller
    return _json_text(name, value)


# --- signature -------------------------------------------------------------------------------


def _check_signature(
    credential: ApiCredential, keys: KeyStore, payload: str, signature: str
) -> None:
    message = payload.encode("utf-8")
    if credential.key_type == "hmac":
        assert credential.secret is not None  # enforced by ApiCredential
        if _HMAC_HEX.fullmatch(signature) is None:
            raise _bad_signature()
        expected = hmac.new(credential.secret.encode("utf-8"), message, hashlib.sha256)
        # Binance: HMAC signatures are not case-sensitive.
        if not hmac.compare_digest(expected.hexdigest().encode(), signature.lower().encode()):
            raise _bad_signature()
        return
    public_key = keys.public_key(credential.api_key)
    if public_key is None:
        raise _unknown_key()
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        public_key.verify(raw, message)
    except (UnicodeEncodeError, binascii.Error, InvalidSignature):
        raise _bad_signature() from None


# --- timing ----------------------------------------------------------------------------------


def _timestamp_us(text: str | None) -> int:
    if text is None or _TIMESTAMP_TEXT.fullmatch(text) is None:
        raise _mandatory("timestamp")
    value = int(text)
    return value if value >= _MICROSECOND_THRESHOLD else value * 1000


def _recv_window(text: str | None) -> Decimal:
    if text is None:
        return Decimal(DEFAULT_RECV_WINDOW_MS)
    if _RECV_WINDOW_TEXT.fullmatch(text) is None:
        raise _invalid_value("recvWindow")
    window = Decimal(text)
    if window > MAX_RECV_WINDOW_MS:
        raise _recv_window_too_big()
    return window


def _check_timing(timestamp_us: int, recv_window_ms: Decimal, now_ms: int) -> None:
    # In microseconds, so a microsecond timestamp and a fractional recvWindow compare exactly.
    server_us = now_ms * 1000
    if timestamp_us >= server_us + FUTURE_TOLERANCE_MS * 1000:
        raise _too_new()
    if server_us - timestamp_us > recv_window_ms * 1000:
        raise _too_old()
