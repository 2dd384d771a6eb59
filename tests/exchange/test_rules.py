"""Symbol rules: exchangeInfo parsing on recorded payloads, rounding, and every filter check."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain.enums import MarketType, OrderType, Side
from exchange.binance.rules import (
    ExchangeInfoError,
    FilterViolation,
    LotSize,
    MinNotional,
    Notional,
    PercentPrice,
    PercentPriceBySide,
    PriceFilter,
    SymbolRules,
    binance_order_type,
    check_order,
    format_decimal,
    is_market_like,
    parse_exchange_info,
    round_order,
    round_price,
    round_quantity,
)

D = Decimal
SPOT_SMALL = "rest/http_spot_market_exchange_info.json"
FUTURES_SMALL = "rest/http_futures_market_exchange_info.json"
SPOT_FULL = "cryptofeed_sample_data/derived/spot_api_v3_exchangeInfo_20211012.json"
USDM_FULL = "cryptofeed_sample_data/derived/usdm_fapi_v1_exchangeInfo_20210721.json"
NO_FILTERS = "nautilus_rust/spot/http_json/exchange_info_response.json"

# (filterType, JSON key) -> how to reach the parsed value, for comparing against the raw JSON.
FIELD_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("PRICE_FILTER", "minPrice"): ("price_filter", "min_price"),
    ("PRICE_FILTER", "maxPrice"): ("price_filter", "max_price"),
    ("PRICE_FILTER", "tickSize"): ("price_filter", "tick_size"),
    ("LOT_SIZE", "minQty"): ("lot_size", "min_qty"),
    ("LOT_SIZE", "maxQty"): ("lot_size", "max_qty"),
    ("LOT_SIZE", "stepSize"): ("lot_size", "step_size"),
    ("MARKET_LOT_SIZE", "minQty"): ("market_lot_size", "min_qty"),
    ("MARKET_LOT_SIZE", "maxQty"): ("market_lot_size", "max_qty"),
    ("MARKET_LOT_SIZE", "stepSize"): ("market_lot_size", "step_size"),
    ("MIN_NOTIONAL", "minNotional"): ("min_notional", "min_notional"),
    ("MIN_NOTIONAL", "notional"): ("min_notional", "min_notional"),
    ("MIN_NOTIONAL", "applyToMarket"): ("min_notional", "apply_to_market"),
    ("MIN_NOTIONAL", "avgPriceMins"): ("min_notional", "avg_price_mins"),
    ("NOTIONAL", "minNotional"): ("notional", "min_notional"),
    ("NOTIONAL", "applyMinToMarket"): ("notional", "apply_min_to_market"),
    ("NOTIONAL", "maxNotional"): ("notional", "max_notional"),
    ("NOTIONAL", "applyMaxToMarket"): ("notional", "apply_max_to_market"),
    ("NOTIONAL", "avgPriceMins"): ("notional", "avg_price_mins"),
    ("PERCENT_PRICE", "multiplierUp"): ("percent_price", "multiplier_up"),
    ("PERCENT_PRICE", "multiplierDown"): ("percent_price", "multiplier_down"),
    ("PERCENT_PRICE", "avgPriceMins"): ("percent_price", "avg_price_mins"),
    ("PERCENT_PRICE", "multiplierDecimal"): ("percent_price", "multiplier_decimal"),
    ("PERCENT_PRICE_BY_SIDE", "bidMultiplierUp"): ("percent_price_by_side", "bid_multiplier_up"),
    ("PERCENT_PRICE_BY_SIDE", "bidMultiplierDown"): (
        "percent_price_by_side",
        "bid_multiplier_down",
    ),
    ("PERCENT_PRICE_BY_SIDE", "askMultiplierUp"): ("percent_price_by_side", "ask_multiplier_up"),
    ("PERCENT_PRICE_BY_SIDE", "askMultiplierDown"): (
        "percent_price_by_side",
        "ask_multiplier_down",
    ),
    ("PERCENT_PRICE_BY_SIDE", "avgPriceMins"): ("percent_price_by_side", "avg_price_mins"),
    ("TRAILING_DELTA", "minTrailingAboveDelta"): ("trailing_delta", "min_trailing_above_delta"),
    ("TRAILING_DELTA", "maxTrailingAboveDelta"): ("trailing_delta", "max_trailing_above_delta"),
    ("TRAILING_DELTA", "minTrailingBelowDelta"): ("trailing_delta", "min_trailing_below_delta"),
    ("TRAILING_DELTA", "maxTrailingBelowDelta"): ("trailing_delta", "max_trailing_below_delta"),
    ("ICEBERG_PARTS", "limit"): ("iceberg_parts",),
    ("MAX_NUM_ORDERS", "maxNumOrders"): ("max_num_orders",),
    ("MAX_NUM_ORDERS", "limit"): ("max_num_orders",),
    ("MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders"): ("max_num_algo_orders",),
    ("MAX_NUM_ALGO_ORDERS", "limit"): ("max_num_algo_orders",),
    ("MAX_NUM_ICEBERG_ORDERS", "maxNumIcebergOrders"): ("max_num_iceberg_orders",),
    ("MAX_POSITION", "maxPosition"): ("max_position",),
}
# futures symbol key -> (attribute, how the raw JSON value must be read)
FUTURES_SYMBOL_FIELDS = {
    "contractType": ("contract_type", str),
    "pricePrecision": ("price_precision", int),
    "quantityPrecision": ("quantity_precision", int),
    "triggerProtect": ("trigger_protect", D),
    "liquidationFee": ("liquidation_fee", D),
    "marketTakeBound": ("market_take_bound", D),
}


def load(folder: Path, relative: str) -> tuple[bytes, dict[str, Any]]:
    body = (folder / relative).read_bytes()
    return body, json.loads(body)


def assert_matches_raw(rules: SymbolRules, raw: dict[str, Any], market: MarketType) -> int:
    """Compare every known field of one symbol with its raw JSON; returns how many were compared."""
    assert rules.symbol == raw["symbol"]
    assert rules.market is market
    assert rules.status == raw["status"]
    assert rules.base_asset == raw["baseAsset"]
    assert rules.quote_asset == raw["quoteAsset"]
    assert rules.order_types == frozenset(raw["orderTypes"])
    assert rules.filter_types == tuple(f["filterType"] for f in raw["filters"])
    compared = 0
    for raw_filter in raw["filters"]:
        kind = raw_filter["filterType"]
        for key, raw_value in raw_filter.items():
            if key == "filterType" or kind in rules.unknown_filters:
                continue
            path = FIELD_PATHS[(kind, key)]
            value: Any = rules
            for attribute in path:
                value = getattr(value, attribute)
            if kind == "PERCENT_PRICE" and key == "multiplierDecimal":
                assert value == int(raw_value)
            elif isinstance(raw_value, bool | int):
                assert value == raw_value, (rules.symbol, kind, key)
                assert type(value) is type(raw_value)
            else:
                assert value == D(raw_value), (rules.symbol, kind, key)
                # Same digits as sent, trailing zeros included: proof it never went via float.
                assert str(value) == str(D(raw_value))
            compared += 1
    if market is MarketType.USDM:
        for key, (attribute, read) in FUTURES_SYMBOL_FIELDS.items():
            assert getattr(rules, attribute) == read(raw[key]), (rules.symbol, key)
            compared += 1
    return compared


# --- recorded payloads


@pytest.mark.parametrize(
    ("relative", "market", "count"),
    [
        (SPOT_SMALL, MarketType.SPOT, 2),
        (FUTURES_SMALL, MarketType.USDM, 3),
        (SPOT_FULL, MarketType.SPOT, 1695),
        (USDM_FULL, MarketType.USDM, 122),
        (NO_FILTERS, MarketType.SPOT, 1),
    ],
)
def test_every_recorded_symbol_parses_and_matches_its_raw_json(
    binance_fixtures: Path, relative: str, market: MarketType, count: int
) -> None:
    body, raw = load(binance_fixtures, relative)
    info = parse_exchange_info(body, market)
    assert info.skipped == ()
    assert len(info.symbols) == count == len(raw["symbols"])
    assert info.server_time_ms == raw["serverTime"]
    assert list(info.rate_limits_raw) == raw["rateLimits"]
    assert info.market is market
    compared = sum(assert_matches_raw(info.symbols[s["symbol"]], s, market) for s in raw["symbols"])
    assert compared >= (0 if relative == NO_FILTERS else count * 10)


def test_full_spot_btcusdt_against_raw_json(binance_fixtures: Path) -> None:
    body, raw = load(binance_fixtures, SPOT_FULL)
    btc = parse_exchange_info(body, MarketType.SPOT).symbols["BTCUSDT"]
    raw_btc = next(s for s in raw["symbols"] if s["symbol"] == "BTCUSDT")
    by_type = {f["filterType"]: f for f in raw_btc["filters"]}
    assert btc.price_filter == PriceFilter(
        D(by_type["PRICE_FILTER"]["minPrice"]),
        D(by_type["PRICE_FILTER"]["maxPrice"]),
        D(by_type["PRICE_FILTER"]["tickSize"]),
    )
    assert btc.lot_size is not None
    assert btc.lot_size.step_size == D(by_type["LOT_SIZE"]["stepSize"]) == D("0.00001")
    assert btc.market_lot_size is not None
    assert btc.market_lot_size.max_qty == D(by_type["MARKET_LOT_SIZE"]["maxQty"])
    assert btc.min_notional == MinNotional(D("10"), apply_to_market=True, avg_price_mins=5)
    assert btc.percent_price == PercentPrice(D("5"), D("0.2"), avg_price_mins=5)
    assert (btc.max_num_orders, btc.max_num_algo_orders, btc.iceberg_parts) == (200, 5, 10)
    assert btc.notional is None
    assert btc.contract_type is None
    assert btc.unknown_filters == ()
    # A real order on real rules: 0.0001 BTC at 60000 is 6 USDT, under the 10 USDT minimum.
    violation = check_order(
        btc, side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.0001"), price=D("60000.00")
    )
    assert violation == FilterViolation(
        "MIN_NOTIONAL", "MIN_NOTIONAL: notional 6 below minNotional 10"
    )
    assert round_order(
        btc,
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        quantity=D("0.123456"),
        price=D("60000.001"),
    ) == (D("0.12345"), D("60000.01"))


def test_full_spot_statuses_optional_filters_and_max_position(binance_fixtures: Path) -> None:
    body, raw = load(binance_fixtures, SPOT_FULL)
    symbols = parse_exchange_info(body, MarketType.SPOT).symbols
    raw_by_name = {s["symbol"]: s for s in raw["symbols"]}
    breaks = [name for name, s in raw_by_name.items() if s["status"] == "BREAK"]
    assert len(breaks) == 433
    assert all(symbols[name].status == "BREAK" for name in breaks)
    without_market_lot = [
        name
        for name, s in raw_by_name.items()
        if "MARKET_LOT_SIZE" not in {f["filterType"] for f in s["filters"]}
    ]
    assert len(without_market_lot) == 1695 - 1614
    assert all(symbols[name].market_lot_size is None for name in without_market_lot)
    assert sum(r.max_position is not None for r in symbols.values()) == 40
    assert symbols["BTCUPUSDT"].max_position is not None
    broken = symbols[breaks[0]]
    assert check_order(
        broken, side=Side.BUY, order_type=OrderType.MARKET, quantity=D(1), price=None
    ) == FilterViolation("STATUS", f"STATUS: symbol {breaks[0]} is BREAK, not TRADING")


def test_full_usdm_pending_symbol_and_empty_contract_type(binance_fixtures: Path) -> None:
    body, raw = load(binance_fixtures, USDM_FULL)
    symbols = parse_exchange_info(body, MarketType.USDM).symbols
    pending = symbols["BTCSTUSDT"]
    assert pending.status == "PENDING_TRADING"
    assert pending.contract_type == ""  # delisted-style symbol: empty, yet still parsed
    violation = check_order(
        pending, side=Side.SELL, order_type=OrderType.MARKET, quantity=D(1), price=None
    )
    assert violation is not None
    assert violation.filter == "STATUS"
    btc = symbols["BTCUSDT"]
    raw_btc = next(s for s in raw["symbols"] if s["symbol"] == "BTCUSDT")
    raw_notional = next(f for f in raw_btc["filters"] if f["filterType"] == "MIN_NOTIONAL")
    assert btc.min_notional == MinNotional(D(raw_notional["notional"]))
    assert btc.percent_price == PercentPrice(D("1.1500"), D("0.8500"), multiplier_decimal=4)
    assert (btc.price_precision, btc.quantity_precision) == (2, 3)


def test_futures_small_fixture_has_quarterly_contract(binance_fixtures: Path) -> None:
    body, _ = load(binance_fixtures, FUTURES_SMALL)
    symbols = parse_exchange_info(body, MarketType.USDM).symbols
    assert symbols["BTCUSDT_220325"].contract_type == "CURRENT_QUARTER"
    btc = symbols["BTCUSDT"]
    assert btc.trigger_protect == D("0.0500")
    assert btc.market_take_bound == D("0.30")
    # Futures MIN_NOTIONAL is 10 here; a market order is priced at the caller's mark price.
    small: dict[str, Any] = dict(
        side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.001"), price=None
    )
    violation = check_order(btc, **small, reference_price=D("9000"))
    assert violation == FilterViolation(
        "MIN_NOTIONAL", "MIN_NOTIONAL: notional 9 below minNotional 10"
    )
    assert check_order(btc, **small, reference_price=D("9000"), reduce_only=True) is None
    assert check_order(btc, **small) is None  # no mark price: the check is skipped


def test_symbol_without_filters_is_never_rounded_nor_blocked(binance_fixtures: Path) -> None:
    body, _ = load(binance_fixtures, NO_FILTERS)
    eth = parse_exchange_info(body, MarketType.SPOT).symbols["ETHBTC"]
    assert eth.filter_types == ()
    assert eth.price_filter is None
    assert eth.lot_size is None
    assert round_quantity(eth, D("1.23456789123")) == D("1.23456789123")
    assert round_price(eth, D("0.0712345"), Side.BUY) == D("0.0712345")
    order: dict[str, Any] = dict(side=Side.BUY, quantity=D("0.000001"), price=D("0.07"))
    assert check_order(eth, order_type=OrderType.LIMIT, **order) is None
    assert check_order(eth, order_type=OrderType.STOP_MARKET, **order) is None


# --- inline payloads (post-2023 filters, malformed entries)

POST_2023_SPOT: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 1700000000000,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
    ],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BNBUSDT",
            "status": "TRADING",
            "baseAsset": "BNB",
            "quoteAsset": "USDT",
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT"],
            "someNewFlag": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "100000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00100000",
                    "maxQty": "100000.00000000",
                    "stepSize": "0.00100000",
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "1000.00000000",
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": 10,
                    "maxTrailingAboveDelta": 2000,
                    "minTrailingBelowDelta": 10,
                    "maxTrailingBelowDelta": 2000,
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": "1.2",
                    "bidMultiplierDown": "0.2",
                    "askMultiplierUp": "5",
                    "askMultiplierDown": "0.8",
                    "avgPriceMins": 1,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "10.00000000",
                    "applyMinToMarket": False,
                    "maxNotional": "10000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 25},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
                {"filterType": "MAX_NUM_ICEBERG_ORDERS", "maxNumIcebergOrders": 5},
                {"filterType": "MAX_NUM_ORDER_AMENDS", "maxNumOrderAmends": 10},
                {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": 20},
            ],
        }
    ],
}


def test_post_2023_spot_filters_from_the_docs() -> None:
    info = parse_exchange_info(json.dumps(POST_2023_SPOT), MarketType.SPOT)
    assert info.skipped == ()
    assert info.server_time_ms == 1700000000000
    raw = POST_2023_SPOT["symbols"][0]
    bnb = info.symbols["BNBUSDT"]
    assert assert_matches_raw(bnb, raw, MarketType.SPOT) > 20
    assert bnb.unknown_filters == ("MAX_NUM_ORDER_AMENDS", "MAX_NUM_ORDER_LISTS")
    assert bnb.notional == Notional(D("10"), False, D("10000"), False, 5)
    assert bnb.percent_price_by_side == PercentPriceBySide(D("1.2"), D("0.2"), D("5"), D("0.8"), 1)
    assert bnb.trailing_delta is not None
    assert bnb.trailing_delta.max_trailing_below_delta == 2000
    assert bnb.min_notional is None
    assert bnb.percent_price is None
    # applyMinToMarket false: a tiny market order passes NOTIONAL, a tiny limit order does not.
    tiny: dict[str, Any] = dict(side=Side.BUY, quantity=D("0.001"), reference_price=D("300"))
    assert check_order(bnb, order_type=OrderType.MARKET, price=None, **tiny) is None
    assert check_order(bnb, order_type=OrderType.LIMIT, price=D("300"), **tiny) == FilterViolation(
        "NOTIONAL", "NOTIONAL: notional 0.3 below minNotional 10"
    )
    # bid band 0.2..1.2 of 300: 361 is too high to buy but fine to sell (ask band 0.8..5).
    high: dict[str, Any] = dict(
        order_type=OrderType.LIMIT, quantity=D("1"), price=D("361"), reference_price=D("300")
    )
    assert check_order(bnb, side=Side.BUY, **high) == FilterViolation(
        "PERCENT_PRICE_BY_SIDE",
        "PERCENT_PRICE_BY_SIDE: buy price 361 above 360 (reference 300 * bidMultiplierUp 1.2)",
    )
    assert check_order(bnb, side=Side.SELL, **high) is None


def malformed_payload() -> dict[str, Any]:
    good = POST_2023_SPOT["symbols"][0]
    bad_step = json.loads(json.dumps(good))
    bad_step["symbol"] = "BADSTEP"
    bad_step["filters"][1]["stepSize"] = "abc"
    no_status = {k: v for k, v in good.items() if k != "status"} | {"symbol": "NOSTATUS"}
    return {
        "serverTime": 1,
        "rateLimits": "not a list",
        "symbols": [
            good,
            bad_step,
            no_status,
            {"symbol": "NOFILTERS", "status": "TRADING", "baseAsset": "A", "quoteAsset": "B",
             "filters": {"filterType": "LOT_SIZE"}},
            {"symbol": "NOTYPE", "status": "TRADING", "baseAsset": "A", "quoteAsset": "B",
             "filters": [{"minQty": "1"}]},
            {"symbol": "NEGATIVE", "status": "TRADING", "baseAsset": "A", "quoteAsset": "B",
             "filters": [{"filterType": "PRICE_FILTER", "minPrice": "-1", "maxPrice": "0",
                          "tickSize": "0.1"}]},
            "just a string",
            good,
        ],
    }  # fmt: skip


def test_malformed_symbols_are_skipped_with_reasons_while_others_parse() -> None:
    info = parse_exchange_info(json.dumps(malformed_payload()).encode(), MarketType.SPOT)
    assert list(info.symbols) == ["BNBUSDT"]
    assert info.rate_limits_raw == ()
    assert dict(info.skipped) == {
        "BADSTEP": "filter LOT_SIZE: field 'stepSize' is not a number: 'abc'",
        "NOSTATUS": "missing field 'status'",
        "NOFILTERS": "filters is not a list",
        "NOTYPE": "a filter has no filterType",
        "NEGATIVE": "filter PRICE_FILTER: field 'minPrice' is negative or not finite: '-1'",
        "#6": "symbol entry is a str, not an object",
        "BNBUSDT": "duplicate symbol entry; the first one is kept",
    }


def test_floats_in_a_mapping_are_refused_not_rounded() -> None:
    payload = json.loads(json.dumps(POST_2023_SPOT))
    payload["symbols"][0]["filters"][0]["tickSize"] = 0.01
    info = parse_exchange_info(payload, MarketType.SPOT)
    assert info.symbols == {}
    assert info.skipped == (
        ("BNBUSDT", "filter PRICE_FILTER: field 'tickSize' is not a decimal string: 0.01"),
    )


def test_json_numbers_in_bytes_are_read_exactly() -> None:
    payload = json.dumps(POST_2023_SPOT).replace('"0.01000000"', "0.01000000", 1)
    bnb = parse_exchange_info(payload, MarketType.SPOT).symbols["BNBUSDT"]
    assert bnb.price_filter is not None
    assert str(bnb.price_filter.min_price) == "0.01000000"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'{"symbols": {}}', "{}"])
def test_unusable_payload_raises(payload: bytes | str) -> None:
    with pytest.raises(ExchangeInfoError):
        parse_exchange_info(payload, MarketType.SPOT)


# --- hand-made rules for rounding and checks


def spot_rules(**changes: Any) -> SymbolRules:
    base = SymbolRules(
        symbol="BTCUSDT",
        market=MarketType.SPOT,
        status="TRADING",
        base_asset="BTC",
        quote_asset="USDT",
        order_types=frozenset({"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"}),
        price_filter=PriceFilter(D("0.01"), D("1000000"), D("0.01")),
        lot_size=LotSize(D("0.0001"), D("9000"), D("0.0001")),
        market_lot_size=LotSize(D("0"), D("112.2"), D("0")),
    )
    return replace(base, **changes)


def futures_rules(**changes: Any) -> SymbolRules:
    base = SymbolRules(
        symbol="BTCUSDT",
        market=MarketType.USDM,
        status="TRADING",
        base_asset="BTC",
        quote_asset="USDT",
        order_types=frozenset({"LIMIT", "MARKET", "STOP", "STOP_MARKET", "TRAILING_STOP_MARKET"}),
        price_filter=PriceFilter(D("556.72"), D("1000000"), D("0.01")),
        lot_size=LotSize(D("0.001"), D("1000"), D("0.001")),
        market_lot_size=LotSize(D("0.001"), D("120"), D("0.001")),
        min_notional=MinNotional(D("5")),
    )
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("step", "quantity", "rounded"),
    [
        ("0.0001", "0.1234", "0.1234"),  # exact multiple unchanged
        ("0.0001", "0.12349999", "0.1234"),
        ("0.00000001", "1.123456789", "1.12345678"),
        ("0.00000001", "0.00000001", "0.00000001"),
        ("1", "17.9", "17"),
        ("10", "179", "170"),
        ("10", "170", "170"),
        ("0.5", "2.74", "2.5"),
        ("0.00100000", "5", "5.000"),  # trailing zeros of the step do not widen the result
    ],
)
def test_round_quantity_rounds_down_to_step(step: str, quantity: str, rounded: str) -> None:
    rules = spot_rules(lot_size=LotSize(D(step), D("1000000"), D(step)))
    result = round_quantity(rules, D(quantity))
    assert result == D(rounded)
    assert format_decimal(result) == rounded


def test_round_quantity_anchors_at_min_qty_and_uses_market_step() -> None:
    odd = spot_rules(lot_size=LotSize(D("0.15"), D("100"), D("0.1")))
    assert round_quantity(odd, D("0.52")) == D("0.45")  # 0.15 + 3 * 0.1
    assert round_quantity(odd, D("0.12")) == D("0.1")  # below min: plain grid, fails later
    market = futures_rules(market_lot_size=LotSize(D("0.01"), D("120"), D("0.01")))
    assert round_quantity(market, D("0.0567")) == D("0.056")
    assert round_quantity(market, D("0.0567"), market_order=True) == D("0.05")
    # Spot MARKET_LOT_SIZE step 0 means "use LOT_SIZE's step".
    assert round_quantity(spot_rules(), D("0.00019"), market_order=True) == D("0.0001")
    with pytest.raises(ValueError, match="quantity"):
        round_quantity(spot_rules(), D("-1"))


@pytest.mark.parametrize(
    ("tick", "price", "side", "rounded"),
    [
        ("0.01", "1.005", Side.BUY, "1.00"),
        ("0.01", "1.005", Side.SELL, "1.01"),
        ("0.01", "1.01", Side.BUY, "1.01"),
        ("0.01", "1.01", Side.SELL, "1.01"),
        ("0.5", "100.3", Side.BUY, "100.0"),
        ("0.5", "100.3", Side.SELL, "100.5"),
        ("0.5", "100.5", Side.SELL, "100.5"),
        ("10", "12345", Side.BUY, "12340"),
        ("10", "12345", Side.SELL, "12350"),
        ("0.00000001", "0.123456789", Side.SELL, "0.12345679"),
    ],
)
def test_round_price_goes_to_the_passive_side(
    tick: str, price: str, side: Side, rounded: str
) -> None:
    rules = spot_rules(price_filter=PriceFilter(D(0), D(0), D(tick)))
    result = round_price(rules, D(price), side)
    assert result == D(rounded)
    assert format_decimal(result) == rounded


def test_round_price_with_tick_zero_or_min_anchor() -> None:
    disabled = spot_rules(price_filter=PriceFilter(D(0), D(0), D(0)))
    assert round_price(disabled, D("1.23456"), Side.BUY) == D("1.23456")
    anchored = spot_rules(price_filter=PriceFilter(D("0.03"), D(0), D("0.02")))
    assert round_price(anchored, D("0.10"), Side.BUY) == D("0.09")
    assert round_price(anchored, D("0.10"), Side.SELL) == D("0.11")
    assert round_price(anchored, D("0.001"), Side.BUY) == D("0")  # below min: never negative


def test_a_finer_market_step_governs_market_orders_alone() -> None:
    # Assumed, not verified against Binance: a market order rounded to MARKET_LOT_SIZE's own
    # step is not also held to LOT_SIZE's step (the two are equal in every recorded futures
    # symbol, and spot's MARKET_LOT_SIZE step is 0).
    rules = futures_rules(market_lot_size=LotSize(D("0.001"), D("120"), D("0.0005")))
    quantity = round_quantity(rules, D("0.0017"), market_order=True)
    assert quantity == D("0.0015")
    order: dict[str, Any] = {"side": Side.BUY, "quantity": quantity, "price": None}
    assert check_order(rules, order_type=OrderType.MARKET, **order) is None
    limit = check_order(rules, order_type=OrderType.LIMIT, **{**order, "price": D(10000)})
    assert limit == FilterViolation(
        "LOT_SIZE", "LOT_SIZE: quantity 0.0015 is not a multiple of stepSize 0.001"
    )


def test_round_order_uses_the_market_step_for_market_like_types() -> None:
    rules = futures_rules(market_lot_size=LotSize(D("0.01"), D("120"), D("0.01")))
    common: dict[str, Any] = dict(side=Side.BUY, quantity=D("0.0567"), price=None)
    assert round_order(rules, order_type=OrderType.STOP_MARKET, **common) == (D("0.05"), None)
    assert round_order(rules, order_type=OrderType.LIMIT, **common) == (D("0.056"), None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1E-8"), "0.00000001"),
        (D("1E+3"), "1000"),
        (D("0.00010000"), "0.00010000"),
        (D("123.45"), "123.45"),
        (D("-0"), "0"),
        (D("0E-8"), "0.00000000"),
        (D("1.23E+5"), "123000"),
        (D("12345678901234567890123456789.123456789"), "12345678901234567890123456789.123456789"),
    ],
)
def test_format_decimal_never_uses_an_exponent(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


@pytest.mark.parametrize("value", [D("NaN"), D("Infinity"), D("-Infinity")])
def test_format_decimal_refuses_non_finite(value: Decimal) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        format_decimal(value)


def test_order_type_mapping_is_explicit_for_both_markets() -> None:
    spot = {t: binance_order_type(MarketType.SPOT, t) for t in OrderType}
    futures = {t: binance_order_type(MarketType.USDM, t) for t in OrderType}
    assert spot == {
        OrderType.MARKET: "MARKET",
        OrderType.LIMIT: "LIMIT",
        OrderType.LIMIT_MAKER: "LIMIT_MAKER",
        OrderType.STOP_MARKET: "STOP_LOSS",
        OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
        OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT",
        OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
        OrderType.TRAILING_STOP_MARKET: None,
    }
    assert futures == {
        OrderType.MARKET: "MARKET",
        OrderType.LIMIT: "LIMIT",
        OrderType.LIMIT_MAKER: "LIMIT",
        OrderType.STOP_MARKET: "STOP_MARKET",
        OrderType.STOP_LIMIT: "STOP",
        OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT_MARKET",
        OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT",
        OrderType.TRAILING_STOP_MARKET: "TRAILING_STOP_MARKET",
    }
    assert {t for t in OrderType if is_market_like(t)} == {
        OrderType.MARKET,
        OrderType.STOP_MARKET,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TRAILING_STOP_MARKET,
    }


LIMIT_BUY: dict[str, Any] = {"side": Side.BUY, "order_type": OrderType.LIMIT}
MARKET_BUY: dict[str, Any] = {"side": Side.BUY, "order_type": OrderType.MARKET, "price": None}
NOTIONAL_5_TO_10000 = Notional(D("5"), True, D("10000"), True, 5)

VIOLATIONS: list[tuple[str, SymbolRules, dict[str, Any], str]] = [
    ("status", spot_rules(status="HALT"), {**MARKET_BUY, "quantity": D(1)},
     "STATUS: symbol BTCUSDT is HALT, not TRADING"),
    ("type not listed", spot_rules(), {**MARKET_BUY, "order_type": OrderType.TAKE_PROFIT_MARKET,
     "quantity": D(1)},
     "ORDER_TYPE: TAKE_PROFIT is not allowed on BTCUSDT "
     "(allowed: LIMIT, LIMIT_MAKER, MARKET, STOP_LOSS_LIMIT)"),
    ("type missing on spot", spot_rules(), {**MARKET_BUY, "quantity": D(1),
     "order_type": OrderType.TRAILING_STOP_MARKET},
     "ORDER_TYPE: trailing_stop_market does not exist on spot"),
    ("zero quantity", spot_rules(), {**MARKET_BUY, "quantity": D(0)},
     "QUANTITY: quantity 0 must be positive"),
    ("limit without price", spot_rules(), {**LIMIT_BUY, "quantity": D(1), "price": None},
     "PRICE: a limit order needs a price"),
    ("negative price", spot_rules(), {**LIMIT_BUY, "quantity": D(1), "price": D(-1)},
     "PRICE: price -1 must be positive"),
    ("below minPrice", spot_rules(), {**LIMIT_BUY, "quantity": D(1), "price": D("0.001")},
     "PRICE_FILTER: price 0.001 below minPrice 0.01"),
    ("above maxPrice", spot_rules(), {**LIMIT_BUY, "quantity": D(1), "price": D("1000000.01")},
     "PRICE_FILTER: price 1000000.01 above maxPrice 1000000"),
    ("off tick", spot_rules(), {**LIMIT_BUY, "quantity": D(1), "price": D("1.005")},
     "PRICE_FILTER: price 1.005 is not a multiple of tickSize 0.01"),
    ("stop price off tick", spot_rules(), {**LIMIT_BUY, "order_type": OrderType.STOP_LIMIT,
     "quantity": D(1), "price": D("1.00"), "stop_price": D("1.015")},
     "PRICE_FILTER: stopPrice 1.015 is not a multiple of tickSize 0.01"),
    ("below minQty", spot_rules(), {**LIMIT_BUY, "quantity": D("0.00001"), "price": D(1)},
     "LOT_SIZE: quantity 0.00001 below minQty 0.0001"),
    ("above maxQty", spot_rules(), {**LIMIT_BUY, "quantity": D("9000.0001"), "price": D(1)},
     "LOT_SIZE: quantity 9000.0001 above maxQty 9000"),
    ("off step", spot_rules(), {**LIMIT_BUY, "quantity": D("0.00015"), "price": D(1)},
     "LOT_SIZE: quantity 0.00015 is not a multiple of stepSize 0.0001"),
    ("above market maxQty", spot_rules(), {**MARKET_BUY, "quantity": D("150")},
     "MARKET_LOT_SIZE: quantity 150 above maxQty 112.2"),
    ("below market minQty", futures_rules(market_lot_size=LotSize(D("0.01"), D(120), D("0.01"))),
     {**MARKET_BUY, "quantity": D("0.005")},
     "MARKET_LOT_SIZE: quantity 0.005 below minQty 0.01"),
    ("off market step", futures_rules(market_lot_size=LotSize(D("0.01"), D(120), D("0.01"))),
     {**MARKET_BUY, "quantity": D("0.015")},
     "MARKET_LOT_SIZE: quantity 0.015 is not a multiple of stepSize 0.01"),
    ("futures min notional", futures_rules(), {**LIMIT_BUY, "quantity": D("0.001"),
     "price": D("4990")}, "MIN_NOTIONAL: notional 4.99 below minNotional 5"),
    ("spot legacy min notional on market", spot_rules(min_notional=MinNotional(D(10), True, 5)),
     {**MARKET_BUY, "quantity": D("0.0001"), "reference_price": D(60000)},
     "MIN_NOTIONAL: notional 6 below minNotional 10"),
    ("notional below", spot_rules(notional=NOTIONAL_5_TO_10000), {**LIMIT_BUY,
     "quantity": D("0.0499"), "price": D(100)}, "NOTIONAL: notional 4.99 below minNotional 5"),
    ("notional above", spot_rules(notional=NOTIONAL_5_TO_10000), {**LIMIT_BUY,
     "quantity": D("100.01"), "price": D(100)}, "NOTIONAL: notional 10001 above maxNotional 10000"),
    ("notional above on market", spot_rules(notional=NOTIONAL_5_TO_10000), {**MARKET_BUY,
     "quantity": D("100.01"), "reference_price": D(100)},
     "NOTIONAL: notional 10001 above maxNotional 10000"),
    ("percent price above", spot_rules(percent_price=PercentPrice(D(5), D("0.2"), 5)),
     {**LIMIT_BUY, "quantity": D(1), "price": D("500.01"), "reference_price": D(100)},
     "PERCENT_PRICE: price 500.01 above 500 (reference 100 * multiplierUp 5)"),
    ("percent price below", futures_rules(percent_price=PercentPrice(D("1.1500"), D("0.8500"))),
     {**LIMIT_BUY, "side": Side.SELL, "quantity": D(1), "price": D("849.99"),
      "reference_price": D(1000)},
     "PERCENT_PRICE: price 849.99 below 850 (reference 1000 * multiplierDown 0.85)"),
    ("by side sell below", spot_rules(percent_price_by_side=PercentPriceBySide(
     D("1.2"), D("0.2"), D(5), D("0.8"), 1)), {**LIMIT_BUY, "side": Side.SELL, "quantity": D(1),
     "price": D("79.99"), "reference_price": D(100)},
     "PERCENT_PRICE_BY_SIDE: sell price 79.99 below 80 (reference 100 * askMultiplierDown 0.8)"),
    ("max orders", spot_rules(max_num_orders=200), {**MARKET_BUY, "quantity": D(1),
     "open_orders": 200}, "MAX_NUM_ORDERS: 200 orders already open, limit 200"),
    ("max algo orders", futures_rules(max_num_algo_orders=10), {**MARKET_BUY,
     "order_type": OrderType.STOP_MARKET, "quantity": D(1), "open_algo_orders": 10},
     "MAX_NUM_ALGO_ORDERS: 10 algo orders already open, limit 10"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "order", "reason"), [case[1:] for case in VIOLATIONS], ids=[c[0] for c in VIOLATIONS]
)
def test_every_violation_reason(rules: SymbolRules, order: dict[str, Any], reason: str) -> None:
    violation = check_order(rules, **order)
    assert violation is not None
    assert violation.reason == reason
    assert violation.filter == reason.split(":")[0]


PASSES: list[tuple[str, SymbolRules, dict[str, Any]]] = [
    ("plain limit", spot_rules(), {**LIMIT_BUY, "quantity": D("0.0002"), "price": D("1.01")}),
    ("market order without reference skips notional",
     spot_rules(min_notional=MinNotional(D(10), True, 5)), {**MARKET_BUY, "quantity": D("0.0001")}),
    ("applyToMarket false", spot_rules(min_notional=MinNotional(D(10), False, 5)),
     {**MARKET_BUY, "quantity": D("0.0001"), "reference_price": D(1)}),
    ("applyMaxToMarket false", spot_rules(notional=replace(NOTIONAL_5_TO_10000,
     apply_max_to_market=False)), {**MARKET_BUY, "quantity": D(100), "reference_price": D(200)}),
    ("maxNotional 0 means none", spot_rules(notional=replace(NOTIONAL_5_TO_10000,
     max_notional=D(0))), {**LIMIT_BUY, "quantity": D(8000), "price": D(1000)}),
    ("percent price without reference", spot_rules(percent_price=PercentPrice(D(5), D("0.2"), 5)),
     {**LIMIT_BUY, "quantity": D(1), "price": D(999)}),
    ("percent price skipped for market", spot_rules(percent_price=PercentPrice(D(5), D("0.2"))),
     {**MARKET_BUY, "quantity": D(1), "reference_price": D(1)}),
    ("percent price at the bound", spot_rules(percent_price=PercentPrice(D(5), D("0.2"), 5)),
     {**LIMIT_BUY, "quantity": D(1), "price": D(500), "reference_price": D(100)}),
    ("by side buy within bid band", spot_rules(percent_price_by_side=PercentPriceBySide(
     D("1.2"), D("0.2"), D(5), D("0.8"), 1)), {**LIMIT_BUY, "quantity": D(1), "price": D(120),
     "reference_price": D(100)}),
    ("one below max orders", spot_rules(max_num_orders=200), {**MARKET_BUY, "quantity": D(1),
     "open_orders": 199}),
    ("algo limit ignores plain orders", futures_rules(max_num_algo_orders=10), {**MARKET_BUY,
     "quantity": D(1), "open_algo_orders": 10}),
    ("futures reduce-only under min notional", futures_rules(), {**LIMIT_BUY,
     "quantity": D("0.001"), "price": D("4990"), "reduce_only": True}),
    ("market price ignored for market orders", spot_rules(), {**MARKET_BUY,
     "quantity": D("0.0001"), "price": D("1.005")}),
    ("empty order type list", spot_rules(order_types=frozenset()), {**MARKET_BUY,
     "order_type": OrderType.TAKE_PROFIT_MARKET, "quantity": D(1)}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "order"), [case[1:] for case in PASSES], ids=[c[0] for c in PASSES]
)
def test_orders_that_pass(rules: SymbolRules, order: dict[str, Any]) -> None:
    assert check_order(rules, **order) is None


def test_reference_price_must_be_positive() -> None:
    with pytest.raises(ValueError, match="reference_price"):
        check_order(spot_rules(), **MARKET_BUY, quantity=D(1), reference_price=D(0))
