"""Client order ids: deterministic, prefixed, within Binance's newClientOrderId alphabet."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.client_ids import (
    MAX_CLIENT_ID_LENGTH,
    client_order_id,
    flatten_client_order_id,
    is_ours,
)

BINANCE_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
prefixes = st.from_regex(r"\A[A-Za-z0-9_-]{1,8}\Z")


@settings(max_examples=300)
@given(prefix=prefixes, signal_id=st.text(max_size=200))
def test_signal_ids_map_to_valid_stable_ids(prefix: str, signal_id: str) -> None:
    cid = client_order_id(prefix, signal_id)
    assert BINANCE_ID.match(cid)
    assert len(cid) <= MAX_CLIENT_ID_LENGTH
    assert cid.startswith(f"{prefix}-")
    assert client_order_id(prefix, signal_id) == cid  # a re-sent signal: the same intent
    assert is_ours(prefix, cid)


@given(prefix=prefixes, a=st.text(max_size=50), b=st.text(max_size=50))
def test_different_signals_give_different_ids(prefix: str, a: str, b: str) -> None:
    if a != b:
        assert client_order_id(prefix, a) != client_order_id(prefix, b)


@given(
    prefix=prefixes,
    command=st.text(max_size=40),
    strategy=st.text(max_size=40),
    symbol=st.text(max_size=20),
)
def test_flatten_ids_are_valid_and_distinct_from_signal_ids(
    prefix: str, command: str, strategy: str, symbol: str
) -> None:
    cid = flatten_client_order_id(prefix, command, strategy, symbol)
    assert BINANCE_ID.match(cid)
    assert len(cid) <= MAX_CLIENT_ID_LENGTH
    assert cid == flatten_client_order_id(prefix, command, strategy, symbol)
    assert is_ours(prefix, cid)
    # Parts are length-framed: moving a character between parts changes the id.
    assert cid != flatten_client_order_id(prefix, command + strategy, "", symbol) or strategy == ""
    assert cid != client_order_id(prefix, command)


def test_flatten_ids_differ_per_position_and_command() -> None:
    ids = {
        flatten_client_order_id("tb", "cmd-1", "a", "BTCUSDT"),
        flatten_client_order_id("tb", "cmd-1", "b", "BTCUSDT"),
        flatten_client_order_id("tb", "cmd-1", "a", "ETHUSDT"),
        flatten_client_order_id("tb", "cmd-2", "a", "BTCUSDT"),
    }
    assert len(ids) == 4


def test_foreign_ids_are_not_ours() -> None:
    ours = client_order_id("tb", "sig-1")
    assert is_ours("tb", ours)
    assert not is_ours("xx", ours)
    assert not is_ours("tb", "web_123456")
    assert not is_ours("tb", "tb-" + "A" * 26)  # upper case never comes out of the digest
    assert not is_ours("tb", "autoclose-1700000000000")
    assert not is_ours("t", ours)  # a prefix of the prefix is another prefix
    dashed = client_order_id("t-b", "sig-1")
    assert is_ours("t-b", dashed)
    assert not is_ours("b", dashed)


@pytest.mark.parametrize("prefix", ["", "toolongprefix", "t b", "t.b"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        client_order_id(prefix, "sig")
