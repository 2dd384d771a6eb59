"""The simulator's request authentication against Binance's documented examples and the client.

Exact vectors: ``rest-api.md`` "SIGNED Endpoint Examples for POST /api/v3/order" (examples 1-3,
the third splitting the params between query string and body) and ``web-socket-api.md``
"SIGNED request example (HMAC)". The rest are requests made by the real client pieces in
``exchange.binance.signing``: the verifier is independent code, so the two check each other.
"""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.binance.signing import (
    Ed25519Signer,
    HmacSigner,
    Signer,
    encode_query,
    sign_rest_params,
    ws_api_signature_payload,
)
from exchange.sim.auth import (
    ApiCredential,
    AuthError,
    KeyStore,
    verify_api_key_only,
    verify_rest,
    verify_ws_api,
)

DOCS_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOCS_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOCS_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOCS_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOCS_NOW_MS = 1499827319559 + 100
FULLWIDTH_123456 = "\uff11\uff12\uff13\uff14\uff15\uff16"
ED_API_KEY = "ed25519-key"
NOW_MS = 1_700_000_000_000


def _ed25519_pems() -> tuple[bytes, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


ED_PRIVATE_PEM, ED_PUBLIC_PEM = _ed25519_pems()
HMAC_SIGNER = HmacSigner(DOCS_SECRET)
ED_SIGNER = Ed25519Signer(ED_PRIVATE_PEM)
KEYS = KeyStore(
    [
        ApiCredential(DOCS_API_KEY, "hmac", secret=DOCS_SECRET),
        ApiCredential(ED_API_KEY, "ed25519", public_key_pem=ED_PUBLIC_PEM),
    ]
)
SIGNERS: dict[str, tuple[str, Signer]] = {
    "hmac": (DOCS_API_KEY, HMAC_SIGNER),
    "ed25519": (ED_API_KEY, ED_SIGNER),
}


def _rest(
    query: str, body: str = "", *, api_key: str = DOCS_API_KEY, now_ms: int = DOCS_NOW_MS
) -> ApiCredential:
    return verify_rest(
        query_string=query,
        body=body,
        headers={"X-MBX-APIKEY": api_key},
        keys=KEYS,
        now_ms=now_ms,
    )


def _refused(code: int) -> pytest.RaisesExc[AuthError]:
    return pytest.raises(AuthError, match=f"^{code}: ")


def _signed_query(params: list[tuple[str, object]], key_type: str = "hmac") -> tuple[str, str]:
    api_key, signer = SIGNERS[key_type]
    return api_key, sign_rest_params(params, signer)


def _order(timestamp: int, recv_window: object = 5000) -> list[tuple[str, object]]:
    return [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("quantity", Decimal("0.01000000")),
        ("recvWindow", recv_window),
        ("timestamp", timestamp),
    ]


# --- REST: the documented examples ---------------------------------------------------------


def test_docs_example_as_query_string() -> None:
    credential = _rest(f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}")
    assert credential.api_key == DOCS_API_KEY
    assert credential.key_type == "hmac"


def test_docs_example_as_request_body() -> None:
    assert _rest("", f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}").api_key == DOCS_API_KEY


def test_docs_example_mixed_query_and_body_has_no_ampersand_between_them() -> None:
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    mixed_signature = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    assert _rest(query, f"{body}&signature={mixed_signature}").api_key == DOCS_API_KEY
    # The example-1 signature signs the same params joined with "&": it must not verify here.
    with _refused(-1022):
        _rest(query, f"{body}&signature={DOCS_SIGNATURE}")


def test_docs_non_ascii_symbol_is_signed_percent_encoded() -> None:
    query = (
        "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
        "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        "&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )
    assert _rest(query).api_key == DOCS_API_KEY


def test_hmac_signature_is_not_case_sensitive() -> None:
    assert _rest(f"{DOCS_QUERY}&signature={DOCS_SIGNATURE.upper()}").api_key == DOCS_API_KEY


def test_the_api_key_header_name_is_case_insensitive() -> None:
    credential = verify_rest(
        query_string=f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}",
        body="",
        headers={"x-mbx-apikey": DOCS_API_KEY},
        keys=KEYS,
        now_ms=DOCS_NOW_MS,
    )
    assert credential.api_key == DOCS_API_KEY


# --- REST: refusals --------------------------------------------------------------------------


def test_unknown_or_missing_api_key() -> None:
    signed = f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}"
    with _refused(-2015) as unknown:
        _rest(signed, api_key=DOCS_API_KEY.lower())  # API keys are case-sensitive
    assert (unknown.value.status, unknown.value.msg) == (
        401,
        "Invalid API-key, IP, or permissions for action.",
    )
    with _refused(-2014) as missing:
        verify_rest(query_string=signed, body="", headers={}, keys=KEYS, now_ms=DOCS_NOW_MS)
    assert missing.value.status == 401


def test_a_key_signed_by_another_secret_is_refused() -> None:
    other = KeyStore([ApiCredential(DOCS_API_KEY, "hmac", secret="another-secret")])
    with _refused(-1022) as caught:
        verify_rest(
            query_string=f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}",
            body="",
            headers={"X-MBX-APIKEY": DOCS_API_KEY},
            keys=other,
            now_ms=DOCS_NOW_MS,
        )
    assert caught.value.status == 400
    assert caught.value.body() == {"code": -1022, "msg": "Signature for this request is not valid."}


def test_missing_signature_or_timestamp() -> None:
    with _refused(-1102) as no_signature:
        _rest(DOCS_QUERY)
    assert no_signature.value.msg == (
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
    )
    with _refused(-1102):
        _rest(f"{DOCS_QUERY}&signature=")
    query = "symbol=LTCBTC&recvWindow=5000"
    with _refused(-1102) as no_timestamp:
        _rest(f"{query}&signature={HMAC_SIGNER.sign(query)}")
    assert no_timestamp.value.msg == (
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
    )
    assert no_timestamp.value.status == 400
    query = "symbol=LTCBTC&timestamp=14998273x9559"
    with _refused(-1102):
        _rest(f"{query}&signature={HMAC_SIGNER.sign(query)}")


def test_duplicate_signature_is_refused() -> None:
    with _refused(-1101):
        _rest(f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}", f"signature={DOCS_SIGNATURE}")


@pytest.mark.parametrize("position", range(len(DOCS_QUERY)))
def test_any_single_byte_tamper_of_the_query_fails(position: int) -> None:
    original = DOCS_QUERY[position]
    replacement = "0" if original != "0" else "1"
    tampered = DOCS_QUERY[:position] + replacement + DOCS_QUERY[position + 1 :]
    with pytest.raises(AuthError) as caught:
        _rest(f"{tampered}&signature={DOCS_SIGNATURE}")
    # A tamper that breaks the syntax of timestamp (-1102) or recvWindow (-1130) is refused
    # before the signature is checked; any other is a bad signature.
    if position < DOCS_QUERY.index("recvWindow"):
        assert caught.value.code == -1022
    else:
        assert caught.value.code in (-1022, -1102, -1130)


@pytest.mark.parametrize("position", range(len(DOCS_SIGNATURE)))
def test_any_single_character_tamper_of_the_signature_fails(position: int) -> None:
    original = DOCS_SIGNATURE[position]
    replacement = "0" if original != "0" else "1"
    tampered = DOCS_SIGNATURE[:position] + replacement + DOCS_SIGNATURE[position + 1 :]
    with _refused(-1022):
        _rest(f"{DOCS_QUERY}&signature={tampered}")


def test_non_hex_or_truncated_hmac_signatures_fail() -> None:
    for bad in (DOCS_SIGNATURE[:-1], DOCS_SIGNATURE + "0", "z" * 64, "é" * 64):
        with _refused(-1022):
            _rest(f"{DOCS_QUERY}&signature={quote(bad)}")


# --- REST: timing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_ms", "accepted"),
    [
        # timestamp - serverTime: must be < 1000
        (999, True),
        (1000, False),
        # serverTime - timestamp: must be <= recvWindow (5000)
        (-5000, True),
        (-5001, False),
        (0, True),
    ],
)
def test_timing_boundaries(offset_ms: int, accepted: bool) -> None:
    api_key, query = _signed_query(_order(NOW_MS + offset_ms))
    if accepted:
        assert _rest(query, api_key=api_key, now_ms=NOW_MS).api_key == api_key
        return
    with _refused(-1021) as caught:
        _rest(query, api_key=api_key, now_ms=NOW_MS)
    assert caught.value.status == 400
    assert caught.value.msg == (
        "Timestamp for this request was 1000ms ahead of the server's time."
        if offset_ms > 0
        else "Timestamp for this request is outside of the recvWindow."
    )


def test_recv_window_defaults_to_5000() -> None:
    params = [("symbol", "BTCUSDT"), ("timestamp", NOW_MS - 5000)]
    assert _rest(sign_rest_params(params, HMAC_SIGNER), now_ms=NOW_MS)
    with _refused(-1021):
        _rest(sign_rest_params(params, HMAC_SIGNER), now_ms=NOW_MS + 1)


def test_recv_window_limit_and_format() -> None:
    assert _rest(sign_rest_params(_order(NOW_MS - 60000, 60000), HMAC_SIGNER), now_ms=NOW_MS)
    with _refused(-1131) as caught:
        _rest(sign_rest_params(_order(NOW_MS, 60001), HMAC_SIGNER), now_ms=NOW_MS)
    assert (caught.value.msg, caught.value.status) == ("recvWindow must be less than 60000", 400)
    with _refused(-1131):
        _rest(sign_rest_params(_order(NOW_MS, "60000.001"), HMAC_SIGNER), now_ms=NOW_MS)
    for malformed in ("abc", "-1", "1.2345", ""):
        with _refused(-1130):
            _rest(sign_rest_params(_order(NOW_MS, malformed), HMAC_SIGNER), now_ms=NOW_MS)


def test_microsecond_timestamp_and_fractional_recv_window() -> None:
    now_us = NOW_MS * 1000
    # 1500.5 ms window: 1500500 us old is inside, 1500501 us is not.
    inside = _order(now_us - 1_500_500, "1500.5")
    assert _rest(sign_rest_params(inside, HMAC_SIGNER), now_ms=NOW_MS)
    with _refused(-1021):
        _rest(sign_rest_params(_order(now_us - 1_500_501, "1500.5"), HMAC_SIGNER), now_ms=NOW_MS)
    with _refused(-1021):
        _rest(sign_rest_params(_order(now_us + 1_000_000), HMAC_SIGNER), now_ms=NOW_MS)
    assert _rest(sign_rest_params(_order(now_us + 999_999), HMAC_SIGNER), now_ms=NOW_MS)


def test_a_tampered_timestamp_is_a_bad_signature_not_clock_skew() -> None:
    query = sign_rest_params(_order(NOW_MS), HMAC_SIGNER)
    stale = query.replace(f"timestamp={NOW_MS}", f"timestamp={NOW_MS - 10_000}")
    with _refused(-1022):
        _rest(stale, now_ms=NOW_MS)


# --- REST: requests made by the client -------------------------------------------------------


@pytest.mark.parametrize("key_type", ["hmac", "ed25519"])
def test_client_signed_requests_verify(key_type: str) -> None:
    params = [("symbol", FULLWIDTH_123456), ("newClientOrderId", "a b/c+d"), *_order(NOW_MS)]
    api_key, query = _signed_query(params, key_type)
    assert "%EF%BC%91" in query
    credential = _rest(query, api_key=api_key, now_ms=NOW_MS)
    assert (credential.api_key, credential.key_type) == (api_key, key_type)


def test_client_query_split_between_query_string_and_body_verifies() -> None:
    params = _order(NOW_MS)
    head, tail = encode_query(params[:2]), encode_query(params[2:])
    signature = HMAC_SIGNER.sign(head + tail)
    assert _rest(head, f"{tail}&signature={signature}", now_ms=NOW_MS)


def test_ed25519_signature_tamper_and_raw_plus_fail() -> None:
    for timestamp in range(NOW_MS, NOW_MS + 50):
        raw = ED_SIGNER.sign(encode_query(_order(timestamp)))
        if "+" in raw:
            break
    query = encode_query(_order(timestamp))
    assert _rest(f"{query}&signature={quote(raw, safe='')}", api_key=ED_API_KEY, now_ms=NOW_MS)
    # Unencoded, "+" reads as a space in a form: the client must percent-encode the signature.
    with _refused(-1022):
        _rest(f"{query}&signature={raw}", api_key=ED_API_KEY, now_ms=NOW_MS)
    flipped = ("B" if raw[0] == "A" else "A") + raw[1:]
    with _refused(-1022):
        _rest(f"{query}&signature={quote(flipped, safe='')}", api_key=ED_API_KEY, now_ms=NOW_MS)
    with _refused(-1022):
        _rest(f"{query}&signature=not-base64!", api_key=ED_API_KEY, now_ms=NOW_MS)


def test_ed25519_key_cannot_verify_an_hmac_signature() -> None:
    query = sign_rest_params(_order(NOW_MS), HMAC_SIGNER)
    with _refused(-1022):
        _rest(query, api_key=ED_API_KEY, now_ms=NOW_MS)


def test_verify_api_key_only() -> None:
    assert verify_api_key_only({"X-Mbx-ApiKey": ED_API_KEY}, KEYS).key_type == "ed25519"
    with _refused(-2015):
        verify_api_key_only({"X-MBX-APIKEY": "nope"}, KEYS)
    with _refused(-2014):
        verify_api_key_only({"X-MBX-APIKEY": ""}, KEYS)


# --- WebSocket API ---------------------------------------------------------------------------


def test_ws_api_docs_example() -> None:
    # web-socket-api.md "SIGNED request example (HMAC)", decoded as the server would decode it.
    frame = (
        '{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTC",'
        '"quantity":"0.01000000","price":"52000.00","recvWindow":100,'
        f'"timestamp":1645423376532,"apiKey":"{DOCS_API_KEY}",'
        '"signature":"aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"}'
    )
    params = json.loads(frame, parse_float=Decimal)
    assert verify_ws_api(params=params, keys=KEYS, now_ms=1645423376532 + 100).api_key == (
        DOCS_API_KEY
    )
    with _refused(-1021):
        verify_ws_api(params=params, keys=KEYS, now_ms=1645423376532 + 101)


def test_ws_api_docs_non_ascii_example_is_verified_raw() -> None:
    params = {
        "symbol": FULLWIDTH_123456,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1.00000000",
        "price": "0.10000000",
        "recvWindow": 5000,
        "timestamp": 1645423376532,
        "apiKey": DOCS_API_KEY,
        "signature": "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd",
    }
    assert verify_ws_api(params=params, keys=KEYS, now_ms=1645423376532)


def _ws_params(key_type: str, extra: dict[str, object] | None = None) -> dict[str, object]:
    api_key, signer = SIGNERS[key_type]
    params: dict[str, object] = {
        "symbol": "BTCUSDT",
        "quantity": Decimal("52000.00"),
        "reduceOnly": False,
        "apiKey": api_key,
        "recvWindow": 5000,
        "timestamp": NOW_MS,
        **(extra or {}),
    }
    params["signature"] = signer.sign(ws_api_signature_payload(params))
    return params


@pytest.mark.parametrize("key_type", ["hmac", "ed25519"])
def test_ws_api_client_requests_verify_after_a_json_round_trip(key_type: str) -> None:
    # As ws_api.py sends them: decimals as JSON strings, integers and booleans as JSON.
    params = _ws_params(key_type)
    wire = {k: format(v, "f") if isinstance(v, Decimal) else v for k, v in params.items()}
    decoded = json.loads(json.dumps(wire), parse_float=Decimal)
    assert verify_ws_api(params=decoded, keys=KEYS, now_ms=NOW_MS).key_type == key_type
    decoded["reduceOnly"] = True
    with _refused(-1022):
        verify_ws_api(params=decoded, keys=KEYS, now_ms=NOW_MS)


def test_ws_api_numbers_keep_their_written_digits() -> None:
    params = _ws_params("hmac")
    params["quantity"] = json.loads("52000.00", parse_float=Decimal)
    assert verify_ws_api(params=params, keys=KEYS, now_ms=NOW_MS)
    params["quantity"] = Decimal("52000.0")
    with _refused(-1022):
        verify_ws_api(params=params, keys=KEYS, now_ms=NOW_MS)


def test_ws_api_refusals() -> None:
    params = _ws_params("hmac")
    with _refused(-1102):
        verify_ws_api(
            params={k: v for k, v in params.items() if k != "apiKey"}, keys=KEYS, now_ms=NOW_MS
        )
    with _refused(-2015):
        verify_ws_api(params={**params, "apiKey": "nope"}, keys=KEYS, now_ms=NOW_MS)
    with _refused(-1102):
        verify_ws_api(
            params={k: v for k, v in params.items() if k != "signature"}, keys=KEYS, now_ms=NOW_MS
        )
    with _refused(-1102):
        verify_ws_api(params={**params, "timestamp": True}, keys=KEYS, now_ms=NOW_MS)
    with _refused(-1131):
        verify_ws_api(params={**params, "recvWindow": 60001}, keys=KEYS, now_ms=NOW_MS)
    with _refused(-1130):
        verify_ws_api(params={**params, "symbols": ["BTCUSDT"]}, keys=KEYS, now_ms=NOW_MS)
    with _refused(-1021):
        verify_ws_api(params=params, keys=KEYS, now_ms=NOW_MS + 5001)
    with _refused(-1021):
        verify_ws_api(params=params, keys=KEYS, now_ms=NOW_MS - 1000)
    assert verify_ws_api(params=params, keys=KEYS, now_ms=NOW_MS - 999)


# --- key store -------------------------------------------------------------------------------


def test_credentials_are_checked_and_hide_the_secret() -> None:
    credential = ApiCredential("k", "hmac", secret=DOCS_SECRET)
    assert DOCS_SECRET not in repr(credential)
    with pytest.raises(ValueError, match="needs a secret"):
        ApiCredential("k", "hmac")
    with pytest.raises(ValueError, match="needs a public key"):
        ApiCredential("k", "ed25519", secret="x")
    store = KeyStore([credential])
    assert "k" in store
    assert len(store) == 1
    store.remove("k")
    assert store.get("k") is None


# --- property: anything the client signs verifies, any one-character change does not -------

_RESERVED = {"signature", "timestamp", "recvWindow", "apiKey"}
_NAMES = st.text(min_size=1, max_size=8).filter(lambda name: name not in _RESERVED)
_TEXT = st.text(
    alphabet=st.sampled_from("aZ09-_.~ +/=%&?#é€\u00a0\uff11😀\t"), min_size=1, max_size=10
)
_PARAMS = st.dictionaries(_NAMES, _TEXT, min_size=1, max_size=5)


def _flip(text: str, index: int) -> str:
    position = index % len(text)
    replacement = "a" if text[position] != "a" else "b"
    return text[:position] + replacement + text[position + 1 :]


@settings(max_examples=150, deadline=None)
@given(_PARAMS, st.sampled_from(["hmac", "ed25519"]), st.integers(min_value=0), st.data())
def test_rest_client_signed_params_verify_and_any_flip_fails(
    params: dict[str, str], key_type: str, index: int, data: st.DataObject
) -> None:
    api_key, signer = SIGNERS[key_type]
    pairs: list[tuple[str, object]] = [*params.items(), ("timestamp", NOW_MS)]
    assert _rest(sign_rest_params(pairs, signer), api_key=api_key, now_ms=NOW_MS)

    victim = data.draw(st.sampled_from(sorted(params)))
    signature = signer.sign(encode_query(pairs))
    tampered = [(k, _flip(v, index) if k == victim else v) for k, v in params.items()]
    query = encode_query([*tampered, ("timestamp", NOW_MS)])
    with _refused(-1022):
        _rest(f"{query}&signature={quote(signature, safe='')}", api_key=api_key, now_ms=NOW_MS)


@settings(max_examples=150, deadline=None)
@given(_PARAMS, st.sampled_from(["hmac", "ed25519"]), st.integers(min_value=0), st.data())
def test_ws_api_client_signed_params_verify_and_any_flip_fails(
    params: dict[str, str], key_type: str, index: int, data: st.DataObject
) -> None:
    signed = _ws_params(key_type, dict(params))
    decoded = json.loads(json.dumps(signed, default=str), parse_float=Decimal)
    assert verify_ws_api(params=decoded, keys=KEYS, now_ms=NOW_MS)

    victim = data.draw(st.sampled_from(sorted(params)))
    decoded[victim] = _flip(decoded[victim], index)
    with _refused(-1022):
        verify_ws_api(params=decoded, keys=KEYS, now_ms=NOW_MS)


def test_query_string_timestamp_wins_over_the_body() -> None:
    fresh, stale = f"timestamp={NOW_MS}", f"timestamp={NOW_MS - 10_000}"
    signature = HMAC_SIGNER.sign(fresh + stale)
    assert _rest(fresh, f"{stale}&signature={signature}", now_ms=NOW_MS)
    signature = HMAC_SIGNER.sign(stale + fresh)
    with _refused(-1021):
        _rest(stale, f"{fresh}&signature={signature}", now_ms=NOW_MS)


def test_ws_api_exponent_numbers_are_signed_as_written() -> None:
    payload = f"apiKey={DOCS_API_KEY}&quantity=1E-8&timestamp={NOW_MS}"
    frame = (
        f'{{"apiKey":"{DOCS_API_KEY}","quantity":1E-8,"timestamp":{NOW_MS},'
        f'"signature":"{HMAC_SIGNER.sign(payload)}"}}'
    )
    params = json.loads(frame, parse_float=Decimal)
    assert verify_ws_api(params=params, keys=KEYS, now_ms=NOW_MS)
