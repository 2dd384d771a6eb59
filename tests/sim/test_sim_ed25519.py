"""Ed25519 keys against the running simulator: the real client signs, the simulator checks
the signature over the bytes as sent, and a wrong key or a tampered request is refused."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.domain import OrderStatus, OrderType, Side
from app.domain.clock import ManualClock
from app.errors import VenueError
from config import load_settings
from exchange.binance.signing import Ed25519Signer
from exchange.sim.auth import ApiCredential
from tests.sim.harness import START_MS, TEST_OPTIONS, btc_order, running_sim, spot_client

ED_KEY = "tradebus-ed25519-test-key"


def _key_pair() -> tuple[bytes, bytes]:
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


async def test_an_ed25519_key_places_and_queries_an_order() -> None:
    private_pem, public_pem = _key_pair()
    credential = ApiCredential(ED_KEY, "ed25519", public_key_pem=public_pem)
    options = replace(TEST_OPTIONS, api_keys=(*TEST_OPTIONS.api_keys, credential))
    clock = ManualClock(START_MS)
    signer = Ed25519Signer(private_pem)
    async with (
        running_sim(options, clock=clock) as sim,
        spot_client(sim, clock, api_key=ED_KEY, signer=signer) as client,
    ):
        update, _ = await client.place_order(btc_order("ed-1", Side.BUY, OrderType.MARKET, "0.001"))
        assert update.status is OrderStatus.FILLED
        queried = await client.query_order("BTCUSDT", "ed-1")
        assert queried.filled_quantity == Decimal("0.001")


async def test_a_signature_by_another_ed25519_key_is_refused() -> None:
    _, public_pem = _key_pair()
    other_private, _ = _key_pair()
    credential = ApiCredential(ED_KEY, "ed25519", public_key_pem=public_pem)
    options = replace(TEST_OPTIONS, api_keys=(credential,))
    clock = ManualClock(START_MS)
    async with (
        running_sim(options, clock=clock) as sim,
        spot_client(sim, clock, api_key=ED_KEY, signer=Ed25519Signer(other_private)) as client,
    ):
        with pytest.raises(VenueError) as refused:
            await client.account()
        assert refused.value.code == -1022


def test_the_sim_section_registers_ed25519_keys(tmp_path: Path) -> None:
    from app.sim_venue import sim_options

    _, public_pem = _key_pair()
    key_file = tmp_path / "ed.pem"
    key_file.write_bytes(public_pem)
    settings = load_settings(
        None, overrides={"sim.ed25519_keys": {ED_KEY: str(key_file)}}, env={}, dotenv_file=None
    )
    keys = {c.api_key: c for c in sim_options(settings).api_keys}
    assert keys[ED_KEY].key_type == "ed25519"
    assert keys[ED_KEY].public_key_pem == public_pem
    assert len(keys) == 2  # the built-in HMAC test key stays
