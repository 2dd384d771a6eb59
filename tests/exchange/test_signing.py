"""Request signing against Binance's documented examples, plus formatting and key loading.

Exact vectors (each cited where used):

* REST HMAC: ``rest-api.md`` "SIGNED Endpoint Examples for POST /api/v3/order" (ASCII and the
  non-ASCII symbol, the latter percent-encoded before signing), and the extra
  ``timestamp=1578963600000`` vector of binance/binance-signature-examples' README.
* WebSocket API HMAC: ``web-socket-api.md`` "SIGNED request example (HMAC)" (ASCII and
  non-ASCII).
* Ed25519: the Binance docs print Ed25519 (and RSA) signatures but never publish the private
  key that made them, so those cannot be reproduced. The signer is checked against RFC 8032
  section 7.1 test vectors (pure Ed25519) and by round trip on Binance's payloads.
* RSA: no documented key + signature pair exists; round trip with a generated key.
"""

from __future__ import annotations

import base64
import enum
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.binance.signing import (
    Ed25519Signer,
    HmacSigner,
    RsaSigner,
    encode_query,
    format_value,
    load_signer,
    sign_rest_params,
    ws_api_signature_payload,
)

DOCS_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOCS_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
FULLWIDTH_123456 = "\uff11\uff12\uff13\uff14\uff15\uff16"  # the docs' non-ASCII symbol

REST_ORDER = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", 1),
    ("price", Decimal("0.1")),
    ("recvWindow", 5000),
    ("timestamp", 1499827319559),
]
REST_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)


def _pem(
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey, password: bytes | None = None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- REST, HMAC: rest-api.md ---------------------------------------------------------------


def test_rest_hmac_ascii_example_from_the_docs() -> None:
    assert encode_query(REST_ORDER) == REST_QUERY
    assert HmacSigner(DOCS_SECRET).sign(REST_QUERY) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    assert sign_rest_params(REST_ORDER, HmacSigner(DOCS_SECRET)) == (
        REST_QUERY + "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_rest_hmac_non_ascii_symbol_is_percent_encoded_before_signing() -> None:
    params = [("symbol", FULLWIDTH_123456), *REST_ORDER[1:]]
    expected_query = (
        "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
        "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert encode_query(params) == expected_query
    assert sign_rest_params(params, HmacSigner(DOCS_SECRET)) == (
        expected_query
        + "&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_hmac_signature_examples_repository_vector() -> None:
    assert HmacSigner(DOCS_SECRET).sign("timestamp=1578963600000") == (
        "d84e6641b1e328e7b418fff030caed655c266299c9355e36ce801ed14631eed4"
    )


def test_rest_query_keeps_the_given_order_and_skips_none() -> None:
    params = {"timestamp": 1, "symbol": "BTCUSDT", "price": None, "side": "SELL"}
    assert encode_query(params) == "timestamp=1&symbol=BTCUSDT&side=SELL"


def test_rest_query_percent_encodes_reserved_characters() -> None:
    # A JSON-array parameter (exchangeInfo "symbols") and a client order id with a space.
    query = encode_query([("symbols", '["BTCUSDT","BNBBTC"]'), ("newClientOrderId", "a b/c")])
    assert query == "symbols=%5B%22BTCUSDT%22%2C%22BNBBTC%22%5D&newClientOrderId=a%20b%2Fc"


def test_ed25519_signature_is_percent_encoded_in_the_query() -> None:
    signer = Ed25519Signer(_pem(ed25519.Ed25519PrivateKey.generate()))
    # Sign until the base64 contains a reserved character (almost always the first time).
    for timestamp in range(1, 50):
        raw = signer.sign(f"timestamp={timestamp}")
        if any(ch in raw for ch in "+/="):
            break
    signed = sign_rest_params({"timestamp": timestamp}, signer)
    query, _, encoded_signature = signed.partition("&signature=")
    assert query == f"timestamp={timestamp}"
    assert not any(ch in encoded_signature for ch in "+/=")
    assert unquote(encoded_signature) == raw


# --- WebSocket API, HMAC: web-socket-api.md -----------------------------------------------


def test_ws_api_hmac_ascii_example_from_the_docs() -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": Decimal("0.01000000"),
        "price": Decimal("52000.00"),
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": DOCS_API_KEY,
        "signature": "------ FILL ME ------",
    }
    payload = ws_api_signature_payload(params)
    assert payload == (
        f"apiKey={DOCS_API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
        "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    assert HmacSigner(DOCS_SECRET).sign(payload) == (
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )


def test_ws_api_hmac_non_ascii_example_is_signed_raw() -> None:
    # The docs' JSON shows quantity 0.01000000 but the payload it signs uses 1.00000000.
    params = {
        "symbol": FULLWIDTH_123456,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": Decimal("1.00000000"),
        "price": Decimal("0.10000000"),
        "recvWindow": 5000,
        "timestamp": 1645423376532,
        "apiKey": DOCS_API_KEY,
    }
    payload = ws_api_signature_payload(params)
    assert f"symbol={FULLWIDTH_123456}&" in payload
    assert HmacSigner(DOCS_SECRET).sign(payload) == (
        "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"
    )


def test_ws_api_payload_sorts_by_name_and_skips_none() -> None:
    payload = ws_api_signature_payload(
        {"timestamp": 2, "timeInForce": "GTC", "b": True, "a": None, "signature": "x"}
    )
    assert payload == "b=true&timeInForce=GTC&timestamp=2"


# --- Ed25519 and RSA ------------------------------------------------------------------------

RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "r",  # the one-byte message 0x72
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
        "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.mark.parametrize(("secret_hex", "message", "signature_hex"), RFC8032_VECTORS)
def test_ed25519_matches_rfc8032_vectors(secret_hex: str, message: str, signature_hex: str) -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret_hex))
    signature = Ed25519Signer(_pem(key)).sign(message)
    assert base64.b64decode(signature, validate=True) == bytes.fromhex(signature_hex)


def test_ed25519_signs_the_docs_ws_payload_verifiably_with_a_passphrase() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = Ed25519Signer(_pem(key, b"pass phrase"), b"pass phrase")
    payload = ws_api_signature_payload({"apiKey": "k", "symbol": FULLWIDTH_123456, "timestamp": 1})
    signature = signer.sign(payload)
    assert len(signature) == 88  # 64 bytes as padded base64
    assert signature.endswith("==")
    key.public_key().verify(base64.b64decode(signature), payload.encode("utf-8"))


def test_rsa_round_trip(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = RsaSigner(_pem(rsa_key))
    signature = signer.sign(REST_QUERY)
    rsa_key.public_key().verify(
        base64.b64decode(signature, validate=True),
        REST_QUERY.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert signer.sign(REST_QUERY) == signature  # PKCS#1 v1.5 is deterministic


def test_ed25519_signer_refuses_an_rsa_key(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = _pem(rsa_key)
    with pytest.raises(ValueError, match="not an Ed25519 private key") as caught:
        Ed25519Signer(pem)
    assert pem.decode().splitlines()[1] not in str(caught.value)


def test_rsa_signer_refuses_an_ed25519_key() -> None:
    with pytest.raises(ValueError, match="not an RSA private key"):
        RsaSigner(_pem(ed25519.Ed25519PrivateKey.generate()))


def test_signer_reprs_hide_the_key() -> None:
    assert DOCS_SECRET not in repr(HmacSigner(DOCS_SECRET))
    assert repr(HmacSigner(DOCS_SECRET)) == "HmacSigner()"


# --- format_value ---------------------------------------------------------------------------


class _Binance(enum.Enum):
    GTC = "GTC"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("1.50"), "1.50"),
        (Decimal("52000.00"), "52000.00"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.5"), "-0.5"),
        (Decimal("123456789.123456789"), "123456789.123456789"),
        (True, "true"),
        (False, "false"),
        (5000, "5000"),
        ("BTCUSDT", "BTCUSDT"),
        (_Binance.GTC, "GTC"),
    ],
)
def test_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected


def test_floats_never_reach_the_wire() -> None:
    with pytest.raises(TypeError, match="float"):
        format_value(0.1)
    with pytest.raises(TypeError, match="float"):
        encode_query({"price": 0.1})
    with pytest.raises(TypeError, match="float"):
        ws_api_signature_payload({"price": 0.1})


def test_non_finite_decimals_and_other_types_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        format_value(Decimal("NaN"))
    with pytest.raises(TypeError, match="list"):
        format_value(["BTCUSDT"])


# --- load_signer ----------------------------------------------------------------------------


def test_load_signer_builds_each_key_type(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    hmac_signer = load_signer("hmac", secret=DOCS_SECRET, private_key_file=None, passphrase=None)
    assert hmac_signer.key_type == "hmac"
    assert hmac_signer.sign(REST_QUERY).startswith("c8db5682")

    ed_pem = _pem(ed25519.Ed25519PrivateKey.generate(), b"pw")
    from_text = load_signer(
        "ed25519", secret=ed_pem.decode(), private_key_file=None, passphrase="pw"
    )
    assert from_text.key_type == "ed25519"

    key_file = tmp_path / "rsa.pem"
    key_file.write_bytes(_pem(rsa_key))
    from_file = load_signer("rsa", secret=None, private_key_file=key_file, passphrase=None)
    assert from_file.key_type == "rsa"
    assert from_file.sign("x") == RsaSigner(_pem(rsa_key)).sign("x")


SECRET_LOOKING_TEXT = "sEcReT-do-not-print-0123456789abcdef"


@pytest.mark.parametrize(
    ("key_type", "secret", "setting", "reason"),
    [
        ("hmac", None, "exchange.api_secret", "required"),
        ("hmac", "", "exchange.api_secret", "required"),
        ("ed25519", SECRET_LOOKING_TEXT, "exchange.api_secret", "not a PEM"),
        ("rsa", SECRET_LOOKING_TEXT, "exchange.api_secret", "not a PEM"),
        ("ed25519", None, "exchange.api_secret", "needs a PEM private key"),
        ("dsa", SECRET_LOOKING_TEXT, "exchange.key_type", "unknown key type"),
    ],
)
def test_load_signer_errors_name_the_setting_not_the_secret(
    key_type: str, secret: str | None, setting: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        load_signer(key_type, secret=secret, private_key_file=None, passphrase=None)
    message = str(caught.value)
    assert message.startswith(setting)
    assert SECRET_LOOKING_TEXT not in message
    assert caught.value.__cause__ is None


def test_load_signer_wrong_key_kind_hides_the_pem(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = _pem(rsa_key).decode()
    with pytest.raises(ValueError, match=r"^exchange\.api_secret: not an Ed25519") as caught:
        load_signer("ed25519", secret=pem, private_key_file=None, passphrase=None)
    assert all(line not in str(caught.value) for line in pem.splitlines()[1:-1])


def test_load_signer_passphrase_problems() -> None:
    pem = _pem(ed25519.Ed25519PrivateKey.generate(), b"right").decode()
    with pytest.raises(ValueError, match=r"encrypted: set exchange\.private_key_passphrase"):
        load_signer("ed25519", secret=pem, private_key_file=None, passphrase=None)
    with pytest.raises(ValueError, match="passphrase is wrong") as caught:
        load_signer("ed25519", secret=pem, private_key_file=None, passphrase="wrong")
    assert "wrong" not in str(caught.value).replace("is wrong", "")
    plain = _pem(ed25519.Ed25519PrivateKey.generate()).decode()
    with pytest.raises(ValueError, match="not encrypted"):
        load_signer("ed25519", secret=plain, private_key_file=None, passphrase="extra")


def test_load_signer_key_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ValueError, match=r"^exchange\.private_key_file: cannot read"):
        load_signer("ed25519", secret=None, private_key_file=missing, passphrase=None)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(SECRET_LOOKING_TEXT)
    with pytest.raises(ValueError, match=r"^exchange\.private_key_file: not a PEM") as caught:
        load_signer("rsa", secret=None, private_key_file=garbage, passphrase=None)
    assert SECRET_LOOKING_TEXT not in str(caught.value)
    with pytest.raises(ValueError, match="not both"):
        load_signer("rsa", secret="x", private_key_file=garbage, passphrase=None)
    with pytest.raises(ValueError, match="not used with key_type 'hmac'"):
        load_signer("hmac", secret=DOCS_SECRET, private_key_file=garbage, passphrase=None)


# --- encode_query against the plain algorithm -------------------------------------------------


def reference_encode_query(params: list[tuple[str, object]]) -> str:
    """The algorithm encode_query had before its fast path: quote() every key and value."""
    return "&".join(
        f"{quote(key, safe='')}={quote(format_value(value), safe='')}"
        for key, value in params
        if value is not None
    )


class _Tif(enum.StrEnum):
    GTC = "GTC"
    ODD = "a b+/=%é"


# Deliberately not a StrEnum: str() of this member is "_MixinSide.BUY", its value "BUY".
class _MixinSide(str, enum.Enum):  # noqa: UP042
    BUY = "BUY"


class _Count(enum.IntEnum):
    TWO = 2


# Every character class the encoder treats differently: unreserved ASCII, reserved ASCII, the
# percent sign itself, spaces, non-ASCII (BMP and astral) and control characters.
_TRICKY = st.text(alphabet="aZ09-_.~ +/=%&?#:;,@!$'()*[]\"\t\né€\u00a0\uff11😀", max_size=12)
_KEYS = _TRICKY | st.text(max_size=12) | st.sampled_from(["symbol", "newClientOrderId", ""])
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False),
    _TRICKY,
    st.text(max_size=20),
    st.sampled_from([_Tif.GTC, _Tif.ODD, _MixinSide.BUY, _Count.TWO, _Binance.GTC]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_KEYS, _VALUES), max_size=8), st.booleans())
def test_encode_query_is_byte_identical_to_quoting_everything(
    pairs: list[tuple[str, object]], as_mapping: bool
) -> None:
    params = dict(pairs) if as_mapping else pairs
    expected = reference_encode_query(list(params.items()) if as_mapping else pairs)
    assert encode_query(params) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-7, "-7"),
        (_Count.TWO, "2"),
        (_MixinSide.BUY, "BUY"),
        (_Tif.ODD, "a%20b%2B%2F%3D%25%C3%A9"),
        ("~._-", "~._-"),
        ("", ""),
        (Decimal("-1E-3"), "-0.001"),
    ],
)
def test_encode_query_values_that_look_like_fast_path_cases(value: object, expected: str) -> None:
    # bool is an int and the enums are str/int: none may skip format_value's rules.
    assert encode_query([("k", value)]) == f"k={expected}"
