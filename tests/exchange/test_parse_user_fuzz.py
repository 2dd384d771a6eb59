"""Hostile input never escapes as anything but the parsers' own malformed errors.

Random bytes, truncated events and valid events with one field swapped for a random JSON
value must either parse (to domain messages) or raise ``MalformedEvent`` /
``MalformedPayload``: never ``KeyError``, ``TypeError``, ``InvalidOperation``, a decimal
overflow or a msgspec error.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import MarketType
from exchange.binance import parse_account as rest
from exchange.binance.parse_user import (
    MalformedEvent,
    UserEvent,
    decode_futures_user_event,
    decode_spot_user_event,
)
from tests.exchange.test_parse_account import ALGO_ORDER, FUTURES_ORDER, SPOT_CANCEL, SPOT_FULL
from tests.exchange.test_parse_user import (
    EXECUTION_REPORT,
    FUTURES_LIMIT_FILL,
    ORDER_TRADE_UPDATE,
    TRADE,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SPOT_EVENTS: list[dict[str, Any]] = [
    {"subscriptionId": 0, "event": EXECUTION_REPORT},
    {"stream": "user", "data": TRADE},
    {"e": "outboundAccountPosition", "E": 1564034571105, "u": 1564034571073,
     "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}]},
    {"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "100.00000000",
     "T": 1573200697068},
    {"e": "eventStreamTerminated", "E": 1728973001334},
]  # fmt: skip
FUTURES_EVENTS: list[dict[str, Any]] = [
    ORDER_TRADE_UPDATE,
    {"stream": "key", "data": FUTURES_LIMIT_FILL},
    {"e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
     "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "122624.1", "cw": "100.1", "bc": "50"}],
           "P": [{"s": "BTCUSDT", "pa": "-10", "ep": "6563.8", "up": "-1423.156",
                  "mt": "cross", "ps": "SHORT"}]}},
    {"e": "TRADE_LITE", "E": 1721895408092, "T": 1721895408214, "s": "BTCUSDT", "q": "0.001",
     "p": "0", "m": False, "c": "z8hc", "S": "BUY", "L": "64089.20", "l": "0.040",
     "t": 109100866, "i": 8886774},
    {"e": "ALGO_UPDATE", "T": 1750515742297, "E": 1750515742303,
     "o": {"caid": "Q5xa", "aid": 2148719, "o": "TAKE_PROFIT", "s": "BNBUSDT", "S": "SELL",
           "ps": "BOTH", "f": "GTC", "q": "0.01", "X": "TRIGGERED", "ai": "88937381063",
           "ap": "750.1", "aq": "0.01", "tp": "750", "p": "750.5", "R": False, "cp": False}},
    {"e": "listenKeyExpired", "E": "1736996475556", "listenKey": "abcdVVxv"},
]  # fmt: skip
REST: list[tuple[Callable[[bytes], object], Any]] = [
    (rest.parse_spot_order, SPOT_FULL),
    (rest.parse_spot_orders, [SPOT_CANCEL, {"orderListId": 1, "orderReports": [SPOT_CANCEL]}]),
    (rest.parse_futures_order, FUTURES_ORDER),
    (rest.parse_futures_algo_orders, [ALGO_ORDER]),
    (rest.parse_cancel_replace, {"code": -2021, "msg": "x", "data": {
        "cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
        "cancelResponse": SPOT_CANCEL, "newOrderResponse": SPOT_FULL}}),
    (partial(rest.parse_my_trades, market=MarketType.USDM), [{
        "id": 1, "orderId": 2, "symbol": "BTCUSDT", "side": "SELL", "price": "1", "qty": "2",
        "commission": "0", "commissionAsset": "USDT", "time": 3, "maker": False,
        "realizedPnl": "0"}]),
    (rest.parse_futures_account, {"assets": [{"asset": "USDT", "walletBalance": "1",
        "crossWalletBalance": "1", "availableBalance": "1"}], "positions": [{
        "symbol": "ADAUSDT", "positionSide": "LONG", "positionAmt": "30",
        "unrealizedProfit": "0.764277", "notional": "12.314277"}]}),
    (rest.parse_position_risk, [{"symbol": "X", "positionAmt": "1", "entryPrice": "2",
        "unRealizedProfit": "3", "leverage": "10", "marginType": "cross",
        "liquidationPrice": "0", "markPrice": "2.5", "positionSide": "BOTH"}]),
]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["NaN", "-Infinity", "1e999999", "-0", "1_0", " 1 ", "", "0", "-1"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place a value sits in a JSON document (the root excluded)."""
    if isinstance(value, dict):
        children: Iterator[tuple[Any, Any]] = iter(value.items())
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return
    for key, child in children:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def replaced(document: Any, path: tuple[Any, ...], new: Any) -> bytes:
    copied = copy.deepcopy(document)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return json.dumps(copied).encode()


def survives(decode: Callable[[bytes], object], raw: bytes) -> None:
    try:
        result = decode(raw)
    except MalformedEvent:
        return
    if isinstance(result, tuple) and decode in DECODERS:
        assert all(isinstance(event, UserEvent) for event in result)


DECODERS: list[Callable[[bytes], tuple[UserEvent, ...]]] = [
    decode_spot_user_event,
    decode_futures_user_event,
]
CASES = [(decode_spot_user_event, e) for e in SPOT_EVENTS] + [
    (decode_futures_user_event, e) for e in FUTURES_EVENTS
]
ALL_CASES: list[tuple[Callable[[bytes], object], Any]] = [*CASES, *REST]


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    for decode in DECODERS:
        survives(decode, raw)
    for parse, _ in REST:
        survives(parse, raw)


@FUZZ
@given(case=st.sampled_from(ALL_CASES), data=st.data())
def test_truncated_documents(case: tuple[Callable[[bytes], object], Any], data: Any) -> None:
    decode, document = case
    raw = json.dumps(document).encode()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    survives(decode, raw[:cut])


@FUZZ
@given(case=st.sampled_from(ALL_CASES), data=st.data())
def test_one_field_replaced(case: tuple[Callable[[bytes], object], Any], data: Any) -> None:
    decode, document = case
    path = data.draw(st.sampled_from(list(paths(document))))
    survives(decode, replaced(document, path, data.draw(json_values)))


def test_every_sample_parses_untouched() -> None:
    """The fuzz starts from valid documents: otherwise it would only test the error path."""
    for decode, document in ALL_CASES:
        decode(json.dumps(document).encode())


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    deep = b'{"subscriptionId": 0, "event": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    for decode in DECODERS:
        survives(decode, deep)
    survives(rest.parse_futures_order, b"[" * 50_000 + b"]" * 50_000)
