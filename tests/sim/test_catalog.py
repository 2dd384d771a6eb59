"""The simulator's catalogue, read back through the real client's exchangeInfo parsers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from app.domain.enums import MarketType, OrderType, Side
from exchange.binance.ratelimit_rules import (
    DEFAULT_SPOT_RULES,
    DEFAULT_USDM_RULES,
    parse_rate_limits,
)
from exchange.binance.rules import SymbolRules, check_order, parse_exchange_info, round_order
from exchange.sim.catalog import (
    FUTURES_ORDER_TYPES,
    SPOT_ORDER_TYPES,
    SimSymbol,
    default_symbol,
    funding_info,
    futures_exchange_info,
    spot_exchange_info,
)

NOW_MS = 1_763_700_000_000
SPOT = [
    default_symbol("BTCUSDT", MarketType.SPOT),
    default_symbol("ETHUSDT", MarketType.SPOT),
    default_symbol("SOLUSDT", MarketType.SPOT, start_price=Decimal("142.37")),
    default_symbol("PEPEUSDT", MarketType.SPOT, start_price=Decimal("0.00000712")),
    default_symbol("XRPUSDC", MarketType.SPOT, start_price=Decimal("0.52")),
]
FUTURES = [
    default_symbol("BTCUSDT", MarketType.USDM),
    default_symbol("ETHUSDT", MarketType.USDM),
    default_symbol("SOLUSDT", MarketType.USDM, start_price=Decimal("142.37")),
    default_symbol("DOGEUSDT", MarketType.USDM, start_price=Decimal("0.1234")),
]


def _wire(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _spot_rules() -> dict[str, SymbolRules]:
    info = parse_exchange_info(
        _wire(spot_exchange_info(SPOT, server_time_ms=NOW_MS)), MarketType.SPOT
    )
    assert info.skipped == ()
    return info.symbols


def _futures_rules() -> dict[str, SymbolRules]:
    body = _wire(futures_exchange_info(FUTURES, server_time_ms=NOW_MS))
    info = parse_exchange_info(body, MarketType.USDM)
    assert info.skipped == ()
    assert info.server_time_ms == NOW_MS
    return info.symbols


def test_btcusdt_presets_match_binance() -> None:
    spot = default_symbol("BTCUSDT", MarketType.SPOT)
    futures = default_symbol("BTCUSDT", MarketType.USDM)
    assert (spot.tick_size, spot.step_size, spot.base_asset, spot.quote_asset) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        "BTC",
        "USDT",
    )
    assert (futures.tick_size, futures.step_size) == (Decimal("0.10"), Decimal("0.001"))
    assert (futures.price_precision, futures.quantity_precision) == (2, 3)
    assert futures.contract_type == "PERPETUAL"
    assert futures.funding_interval_hours == 8
    assert futures.max_leverage == 125
    assert spot.contract_type is None
    assert spot.max_leverage is None


def test_start_price_overrides_preset_price_only() -> None:
    symbol = default_symbol("BTCUSDT", MarketType.SPOT, start_price=Decimal("43000.5"))
    assert symbol.start_price == Decimal("43000.5")
    assert symbol.tick_size == Decimal("0.01")


@pytest.mark.parametrize(
    ("price", "tick", "step"),
    [
        (Decimal("142.37"), Decimal("0.01"), Decimal("0.001")),
        (Decimal("0.52"), Decimal("0.00001"), Decimal("1")),
        (Decimal("2.5"), Decimal("0.0001"), Decimal("0.1")),
        (Decimal("0.00000712"), Decimal("0.00000001"), Decimal("1")),
    ],
)
def test_generic_spot_grid_follows_start_price(
    price: Decimal, tick: Decimal, step: Decimal
) -> None:
    symbol = default_symbol("ABCUSDT", MarketType.SPOT, start_price=price)
    assert (symbol.tick_size, symbol.step_size, symbol.min_qty) == (tick, step, step)
    assert symbol.base_asset == "ABC"
    # the grid resolves the start price to at least ~3 significant digits (8-decimal floor)
    assert symbol.tick_size * 100 <= price


def test_generic_futures_grid_is_coarser_than_spot() -> None:
    symbol = default_symbol("PEPEUSDT", MarketType.USDM, start_price=Decimal("0.00000712"))
    assert symbol.tick_size == Decimal("1e-7")
    assert symbol.step_size == Decimal(1)


@pytest.mark.parametrize("name", ["ETHBTC", "USDT", "btcusdt", "BTC-USDT"])
def test_unsupported_symbols_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="no default rules"):
        default_symbol(name, MarketType.SPOT)


def test_non_positive_start_price_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        default_symbol("ABCUSDT", MarketType.SPOT, start_price=Decimal(0))


def test_market_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="usdm symbol"):
        spot_exchange_info(FUTURES, server_time_ms=NOW_MS)


def _assert_rules_match(rules: SymbolRules, sim: SimSymbol) -> None:
    assert rules.status == sim.status == "TRADING"
    assert (rules.base_asset, rules.quote_asset) == (sim.base_asset, sim.quote_asset)
    assert rules.price_filter is not None
    assert rules.lot_size is not None
    assert rules.price_filter.tick_size == sim.tick_size
    assert rules.price_filter.min_price == sim.min_price
    assert rules.price_filter.max_price == sim.max_price
    assert rules.lot_size.step_size == sim.step_size
    assert rules.lot_size.min_qty == sim.min_qty
    assert rules.lot_size.max_qty == sim.max_qty
    assert rules.max_num_orders == 200
    assert rules.unknown_filters == ()


@pytest.mark.parametrize("sim", SPOT, ids=lambda s: s.symbol)
def test_spot_round_trip_through_client_parser(sim: SimSymbol) -> None:
    rules = _spot_rules()[sim.symbol]
    _assert_rules_match(rules, sim)
    assert rules.notional is not None
    assert rules.notional.min_notional == sim.min_notional
    assert rules.notional.apply_min_to_market
    assert rules.min_notional is None
    assert rules.percent_price is None
    assert rules.percent_price_by_side is not None
    assert rules.percent_price_by_side.bid_multiplier_up == Decimal(5)
    assert rules.trailing_delta is not None
    assert rules.market_lot_size is not None
    assert rules.market_lot_size.max_qty == sim.market_max_qty
    assert rules.order_types == frozenset(SPOT_ORDER_TYPES)
    assert rules.max_num_algo_orders == 5


@pytest.mark.parametrize("sim", FUTURES, ids=lambda s: s.symbol)
def test_futures_round_trip_through_client_parser(sim: SimSymbol) -> None:
    rules = _futures_rules()[sim.symbol]
    _assert_rules_match(rules, sim)
    assert rules.min_notional is not None
    assert rules.min_notional.min_notional == sim.min_notional
    assert rules.notional is None
    assert rules.percent_price is not None
    assert rules.percent_price.multiplier_decimal == 4
    assert rules.contract_type == "PERPETUAL"
    assert (rules.price_precision, rules.quantity_precision) == (
        sim.price_precision,
        sim.quantity_precision,
    )
    assert rules.liquidation_fee == sim.liquidation_fee
    assert rules.market_take_bound == sim.market_take_bound
    assert rules.order_types == frozenset(FUTURES_ORDER_TYPES)
    assert rules.max_num_algo_orders == 10


def test_spot_shape_has_todays_fields() -> None:
    document = spot_exchange_info(SPOT[:1], server_time_ms=NOW_MS)
    assert document["timezone"] == "UTC"
    assert document["exchangeFilters"] == []
    entry = document["symbols"][0]
    assert "timeInForce" not in entry
    assert entry["isSpotTradingAllowed"] is True
    assert entry["permissionSets"] == [["SPOT"]]
    assert entry["defaultSelfTradePreventionMode"] in entry["allowedSelfTradePreventionModes"]
    filters = {f["filterType"]: f for f in entry["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert {"PERCENT_PRICE_BY_SIDE", "MAX_NUM_ALGO_ORDERS", "TRAILING_DELTA"} <= filters.keys()
    assert "MIN_NOTIONAL" not in filters
    assert "PERCENT_PRICE" not in filters


def test_futures_shape_has_todays_fields() -> None:
    document = futures_exchange_info(FUTURES[:1], server_time_ms=NOW_MS)
    assert [a["asset"] for a in document["assets"]] == ["USDT"]
    entry = document["symbols"][0]
    assert entry["pair"] == "BTCUSDT"
    assert entry["timeInForce"] == ["GTC", "IOC", "FOK", "GTX", "GTD"]
    assert entry["deliveryDate"] > entry["onboardDate"]
    filters = {f["filterType"]: f for f in entry["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
    assert filters["MIN_NOTIONAL"] == {"filterType": "MIN_NOTIONAL", "notional": "100"}


def _rate_limits(document: dict[str, Any]) -> list[dict[str, Any]]:
    limits = document["rateLimits"]
    assert isinstance(limits, list)
    return limits


def test_rate_limits_parse_to_the_documented_rules() -> None:
    spot = parse_rate_limits(_rate_limits(spot_exchange_info(SPOT, server_time_ms=NOW_MS)))
    futures_doc = futures_exchange_info(FUTURES, server_time_ms=NOW_MS)
    futures = parse_rate_limits(_rate_limits(futures_doc))
    assert set(spot) == set(DEFAULT_SPOT_RULES)
    assert set(futures) == set(DEFAULT_USDM_RULES)
    assert len(spot) == 4
    assert len(futures) == 3


def _leaves(value: object, path: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def test_no_number_on_the_wire_is_a_float() -> None:
    documents = [
        spot_exchange_info(SPOT, server_time_ms=NOW_MS),
        futures_exchange_info(FUTURES, server_time_ms=NOW_MS),
        {"funding": funding_info(FUTURES)},
    ]
    checked = 0
    for document in documents:
        decoded = msgspec.json.decode(_wire(document))  # floats would come back as float
        for path, leaf in _leaves(decoded):
            assert not isinstance(leaf, float), path
            if isinstance(leaf, str) and leaf[:1].isdigit():
                Decimal(leaf)  # every numeric-looking string is a valid decimal
                checked += 1
    assert checked > 50


def test_funding_info_lists_only_perpetuals() -> None:
    entries = funding_info([*SPOT, *FUTURES])
    assert [e["symbol"] for e in entries] == [s.symbol for s in FUTURES]
    assert entries[0] == {
        "symbol": "BTCUSDT",
        "adjustedFundingRateCap": "0.02000000",
        "adjustedFundingRateFloor": "-0.02000000",
        "fundingIntervalHours": 8,
        "disclaimer": False,
    }


def test_client_rounding_and_checks_work_on_sim_rules() -> None:
    spot = _spot_rules()["BTCUSDT"]
    quantity, price = round_order(
        spot,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.0012345"),
        price=Decimal("60000.129"),
    )
    assert (quantity, price) == (Decimal("0.00123"), Decimal("60000.12"))
    assert price is not None

    def check(quantity: Decimal, price: Decimal) -> str | None:
        violation = check_order(
            spot,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=quantity,
            price=price,
            reference_price=Decimal(60_000),
        )
        return None if violation is None else violation.filter

    assert check(quantity, price) is None
    assert check(Decimal("0.00005"), price) == "NOTIONAL"
    assert check(quantity, Decimal("60000.123")) == "PRICE_FILTER"
    assert check(quantity, Decimal(400_000)) == "PERCENT_PRICE_BY_SIDE"  # over 5x


def test_client_checks_futures_min_notional_and_market_step() -> None:
    futures = _futures_rules()["BTCUSDT"]
    quantity, _ = round_order(
        futures,
        side=Side.SELL,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.0019"),
        price=None,
    )
    assert quantity == Decimal("0.001")
    small = check_order(
        futures,
        side=Side.SELL,
        order_type=OrderType.MARKET,
        quantity=quantity,
        price=None,
        reference_price=Decimal(60_000),
    )
    assert small is not None
    assert small.filter == "MIN_NOTIONAL"
    fine = check_order(
        futures,
        side=Side.SELL,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.002"),
        price=None,
        reference_price=Decimal(60_000),
    )
    assert fine is None
