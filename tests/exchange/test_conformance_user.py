"""Every recorded user-data event and account/order REST answer, read and checked field by
field against its own raw JSON (skips when the shared fixtures are absent)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain import (
    AccountUpdated,
    AlgoOrderUpdated,
    Balance,
    BalanceChanged,
    ExecutionType,
    Fill,
    MarketType,
    OrderOrigin,
    OrderType,
    OrderUpdated,
    PositionSnapshot,
    QuickFill,
    TimeInForce,
)
from exchange.binance import parse_account as rest
from exchange.binance.parse_user import (
    EXECUTION_TYPES,
    FUTURES_ORDER_TYPES,
    ORDER_STATUSES,
    SIDES,
    SPOT_ORDER_TYPES,
    ListenKeyExpired,
    UnknownUserEvent,
    UserEvent,
    decode_futures_user_event,
    decode_spot_user_event,
)

SPOT_EVENTS = ["ws/ws_spot_execution_report_*.json", "nautilus_rust/spot/user_data_json/*.json"]
FUTURES_EVENTS = [
    "ws/ws_futures_order_update_*.json",
    "ws/ws_futures_algo_update_*.json",
    "ws/ws_futures_trade_lite.json",
    "nautilus_rust/futures/user_data_json/*.json",
]
# Orders the exchange made itself, by file name; every other order is a client's.
EXCHANGE_MADE = {
    "ws_spot_execution_report_calculated.json": OrderOrigin.LIQUIDATION,
    "ws_futures_order_update_adl.json": OrderOrigin.ADL,
    "ws_futures_order_update_adl_filled.json": OrderOrigin.ADL,
    "ws_futures_order_update_liquidation.json": OrderOrigin.LIQUIDATION,
    "ws_futures_order_update_liquidation_zero_qty.json": OrderOrigin.LIQUIDATION,
    "ws_futures_order_update_settlement.json": OrderOrigin.SETTLEMENT,
    "order_update_adl.json": OrderOrigin.ADL,
    "order_update_calculated.json": OrderOrigin.LIQUIDATION,
    "order_update_calculated_pending.json": OrderOrigin.LIQUIDATION,
    "order_update_delivery.json": OrderOrigin.DELIVERY,
    "order_update_insurance.json": OrderOrigin.INSURANCE,
    "order_update_settlement.json": OrderOrigin.SETTLEMENT,
}
UNKNOWN_FIELD = {"zz_added_by_binance_later": {"nested": [1, "x", None]}}


def files(root: Path, patterns: list[str]) -> Iterator[Path]:
    for pattern in patterns:
        found = sorted(root.glob(pattern))
        assert found, f"no fixture matches {pattern}"
        yield from found


def inner(raw: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = raw.get("event") or raw.get("data") or raw
    return event


def with_unknown_field(raw: dict[str, Any]) -> bytes:
    """The same frame with a field no parser knows, at the event and at the order level."""
    event = inner(raw) | UNKNOWN_FIELD
    if isinstance(event.get("o"), dict):
        event["o"] = event["o"] | UNKNOWN_FIELD
    return json.dumps(event).encode()


def dec(raw: str | None) -> Decimal:
    return Decimal(raw or "0")


def positive(raw: str | None) -> Decimal | None:
    return dec(raw) if raw and dec(raw) > 0 else None


def tif(raw: str | None) -> TimeInForce | None:
    return TimeInForce[raw] if raw is not None and raw in TimeInForce.__members__ else None


def expected_spot_order(d: dict[str, Any], origin: OrderOrigin) -> OrderUpdated:
    client_id = d["C"] or d["c"]
    fill = None
    if d["x"] == "TRADE" and dec(d["l"]) > 0 and dec(d["L"]) > 0:
        fill = Fill(
            d["t"], client_id, d["s"], SIDES[d["S"]], Decimal(d["L"]), Decimal(d["l"]),
            dec(d["n"]), d["N"] or "", d["m"], d["T"], exchange_order_id=d["i"],
        )  # fmt: skip
    filled, quote = Decimal(d["z"]), dec(d.get("Z"))
    reason = d["r"] if d["r"] != "NONE" else d.get("eR", "")
    return OrderUpdated(
        client_id, d["s"], SIDES[d["S"]], SPOT_ORDER_TYPES[d["o"]], ORDER_STATUSES[d["X"]],
        Decimal(d["q"]), filled, d["E"], price=positive(d["p"]),
        average_fill_price=quote / filled if filled and quote else None,
        exchange_order_id=d["i"], fill=fill, reason=reason,
        execution_type=EXECUTION_TYPES[d["x"]], origin=origin,
        stop_price=positive(d.get("P")), time_in_force=tif(d.get("f")),
    )  # fmt: skip


def expected_futures_order(d: dict[str, Any], origin: OrderOrigin) -> OrderUpdated:
    o = d["o"]
    order_type = FUTURES_ORDER_TYPES[o["o"]]
    fill = None
    if o["x"] in ("TRADE", "CALCULATED") and dec(o["l"]) > 0 and dec(o["L"]) > 0:
        fill = Fill(
            o["t"], o["c"], o["s"], SIDES[o["S"]], Decimal(o["L"]), Decimal(o["l"]),
            dec(o.get("n")), o.get("N") or "", o["m"], o["T"], realized_pnl=Decimal(o["rp"]),
            exchange_order_id=o["i"],
        )  # fmt: skip
    trailing = order_type is OrderType.TRAILING_STOP_MARKET
    return OrderUpdated(
        o["c"], o["s"], SIDES[o["S"]], order_type, ORDER_STATUSES[o["X"]], Decimal(o["q"]),
        Decimal(o["z"]), d["E"], price=positive(o["p"]), average_fill_price=positive(o["ap"]),
        exchange_order_id=o["i"], fill=fill, execution_type=EXECUTION_TYPES[o["x"]],
        origin=origin, reduce_only=o["R"], stop_price=positive(o["AP"] if trailing else o["sp"]),
        time_in_force=tif(o["f"]),
    )  # fmt: skip


def expected_algo(o: dict[str, Any], ts_ms: int) -> AlgoOrderUpdated:
    return AlgoOrderUpdated(
        o["caid"], o["aid"], o["s"], SIDES[o["S"]], FUTURES_ORDER_TYPES[o["o"]],
        o["X"].lower(), Decimal(o["q"]), ts_ms, trigger_price=positive(o["tp"]),
        price=positive(o["p"]), reduce_only=o["R"],
        exchange_order_id=int(o["ai"]) if o.get("ai") else None, reason=o.get("rm", ""),
        filled_quantity=dec(o.get("aq")), average_fill_price=positive(o.get("ap")),
        close_position=o["cp"], position_side=o["ps"], time_in_force=tif(o["f"]),
    )  # fmt: skip


def expected_event(d: dict[str, Any], name: str) -> UserEvent:
    origin = EXCHANGE_MADE.get(name, OrderOrigin.CLIENT)
    match d["e"]:
        case "executionReport":
            return expected_spot_order(d, origin)
        case "ORDER_TRADE_UPDATE":
            return expected_futures_order(d, origin)
        case "outboundAccountPosition":
            balances = tuple(Balance(b["a"], Decimal(b["f"]), Decimal(b["l"])) for b in d["B"])
            return AccountUpdated(d["E"], "outboundAccountPosition", balances)
        case "balanceUpdate":
            return BalanceChanged(d["a"], Decimal(d["d"]), d["E"], d["T"])
        case "ACCOUNT_UPDATE":
            a = d["a"]
            balances = tuple(
                Balance(b["a"], Decimal(b["wb"]), Decimal(0), cross_wallet=Decimal(b["cw"]))
                for b in a["B"]
            )
            positions = tuple(
                PositionSnapshot(p["s"], Decimal(p["pa"]), Decimal(p["ep"]), Decimal(p["up"]),
                                 position_side=p["ps"], margin_type=p["mt"])
                for p in a["P"]
            )  # fmt: skip
            return AccountUpdated(d["E"], a["m"], balances, positions)
        case "TRADE_LITE":
            return QuickFill(
                d["c"], d["s"], SIDES[d["S"]], Decimal(d["L"]), Decimal(d["l"]), d["t"],
                d["i"], d["m"], d["T"],
            )  # fmt: skip
        case "ALGO_UPDATE":
            return expected_algo(d["o"], d["E"])
        case other:
            return UnknownUserEvent(other)


@pytest.mark.parametrize(
    ("patterns", "decode"),
    [(SPOT_EVENTS, decode_spot_user_event), (FUTURES_EVENTS, decode_futures_user_event)],
    ids=["spot", "futures"],
)
def test_every_recorded_event(
    binance_fixtures: Path,
    patterns: list[str],
    decode: Callable[[bytes], tuple[UserEvent, ...]],
) -> None:
    kinds: set[type] = set()
    for path in files(binance_fixtures, patterns):
        raw = json.loads(path.read_bytes())
        events = decode(path.read_bytes())
        assert events == (expected_event(inner(raw), path.name),), path.name
        assert decode(with_unknown_field(raw)) == events, path.name
        kinds.add(type(events[0]))
    spot = decode is decode_spot_user_event
    assert kinds >= ({OrderUpdated, AccountUpdated, BalanceChanged, UnknownUserEvent} if spot
                     else {OrderUpdated, AccountUpdated, QuickFill, AlgoOrderUpdated})  # fmt: skip


def test_list_status_is_not_consumed(binance_fixtures: Path) -> None:
    path = binance_fixtures / "nautilus_rust/spot/user_data_json/list_status_wrapped.json"
    assert decode_spot_user_event(path.read_bytes()) == (UnknownUserEvent("listStatus"),)


def test_recorded_fills_and_origins_are_as_documented(binance_fixtures: Path) -> None:
    """Spot-checks that the field-by-field walk above cannot pass vacuously."""
    ws = binance_fixtures / "ws"
    (liquidated,) = decode_futures_user_event(
        (ws / "ws_futures_order_update_liquidation.json").read_bytes()
    )
    assert isinstance(liquidated, OrderUpdated)
    assert liquidated.origin is OrderOrigin.LIQUIDATION
    assert liquidated.execution_type is ExecutionType.CALCULATED
    assert liquidated.fill is not None
    assert liquidated.fill.realized_pnl == Decimal("-100.00")
    (l_zero,) = decode_spot_user_event(
        (ws / "ws_spot_execution_report_trade_l_zero.json").read_bytes()
    )
    assert isinstance(l_zero, OrderUpdated)
    assert l_zero.fill is None  # price 0 is never booked


def test_hand_built_listen_key_expired_from_the_usdm_docs() -> None:
    key = "WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv"
    raw = json.dumps({"e": "listenKeyExpired", "E": "1736996475556", "listenKey": key})
    assert decode_futures_user_event(raw) == (ListenKeyExpired(1736996475556, "VVxv"),)


def rest_order_time(d: dict[str, Any], keys: tuple[str, ...]) -> int:
    return int(next(d[k] for k in keys if d.get(k)))


def expected_rest_spot_order(d: dict[str, Any]) -> OrderUpdated:
    filled, quote = Decimal(d["executedQty"]), Decimal(d["cummulativeQuoteQty"])
    return OrderUpdated(
        d.get("origClientOrderId") or d["clientOrderId"], d["symbol"], SIDES[d["side"]],
        SPOT_ORDER_TYPES[d["type"]], ORDER_STATUSES[d["status"]], Decimal(d["origQty"]),
        filled, rest_order_time(d, ("transactTime", "updateTime")), price=positive(d["price"]),
        average_fill_price=quote / filled if filled and quote else None,
        exchange_order_id=d["orderId"], stop_price=positive(d.get("stopPrice")),
        time_in_force=tif(d["timeInForce"]),
    )  # fmt: skip


def expected_rest_futures_order(d: dict[str, Any]) -> OrderUpdated:
    order_type = FUTURES_ORDER_TYPES[d["type"]]
    trailing = order_type is OrderType.TRAILING_STOP_MARKET
    return OrderUpdated(
        d["clientOrderId"], d["symbol"], SIDES[d["side"]], order_type,
        ORDER_STATUSES[d["status"]], Decimal(d["origQty"]), Decimal(d["executedQty"]),
        d["updateTime"], price=positive(d["price"]), average_fill_price=positive(d["avgPrice"]),
        exchange_order_id=d["orderId"], reduce_only=d["reduceOnly"],
        stop_price=positive(d["activatePrice"] if trailing else d["stopPrice"]),
        time_in_force=tif(d["timeInForce"]),
    )  # fmt: skip


def expected_position(d: dict[str, Any]) -> PositionSnapshot:
    return PositionSnapshot(
        d["symbol"], Decimal(d["positionAmt"]), Decimal(d["entryPrice"]),
        Decimal(d.get("unRealizedProfit") or d["unrealizedProfit"]),
        position_side=d["positionSide"],
        margin_type={"cross": "cross", "isolated": "isolated"}.get(d.get("marginType", ""))
        or (("isolated" if d["isolated"] else "cross") if "isolated" in d else None),
        leverage=int(d["leverage"]), mark_price=positive(d.get("markPrice")),
        liquidation_price=positive(d.get("liquidationPrice")),
    )  # fmt: skip


def futures_balance(asset: str, wallet: str, d: dict[str, Any]) -> Balance:
    return Balance(asset, Decimal(wallet), Decimal(0),
                   cross_wallet=Decimal(d["crossWalletBalance"]),
                   available=Decimal(d["availableBalance"]))  # fmt: skip


def check_spot_order_list(raw: list[dict[str, Any]], parsed: list[OrderUpdated]) -> None:
    flat = [r for item in raw for r in item.get("orderReports", [item])]
    assert parsed == [expected_rest_spot_order(d) for d in flat]
    assert len(flat) > len(raw) or all("orderReports" not in i for i in raw)


def check_rest(name: str, raw: Any, payload: bytes) -> None:
    match name:
        case "account_response.json" | "http_spot_wallet_account.json":
            info = rest.parse_spot_account_info(payload)
            assert info.balances == tuple(
                Balance(b["asset"], Decimal(b["free"]), Decimal(b["locked"]))
                for b in raw["balances"]
            )
            assert (info.can_trade, info.permissions) == (raw["canTrade"],
                                                          tuple(raw["permissions"]))  # fmt: skip
        case "account_trades_response.json":
            assert rest.parse_my_trades(payload, market=MarketType.SPOT) == [
                Fill(t["id"], "", t["symbol"], SIDES["BUY" if t["isBuyer"] else "SELL"],
                     Decimal(t["price"]), Decimal(t["qty"]), Decimal(t["commission"]),
                     t["commissionAsset"], t["isMaker"], t["time"], exchange_order_id=t["orderId"])
                for t in raw
            ]  # fmt: skip
        case "http_futures_account_trades.json":
            assert rest.parse_my_trades(payload, market=MarketType.USDM) == [
                Fill(t["id"], "", t["symbol"], SIDES[t["side"]], Decimal(t["price"]),
                     Decimal(t["qty"]), Decimal(t["commission"]), t["commissionAsset"],
                     t["maker"], t["time"], realized_pnl=Decimal(t["realizedPnl"]),
                     exchange_order_id=t["orderId"])
                for t in raw
            ]  # fmt: skip
        case (
            "all_orders_response.json"
            | "open_orders_response.json"
            | ("cancel_open_orders_response.json")
        ):
            check_spot_order_list(raw, rest.parse_spot_orders(payload))
        case (
            "cancel_order_response.json" | "order_response.json" | ("new_order_full_response.json")
        ) if "orderListId" in raw:
            update, fills = rest.parse_spot_order(payload)
            assert update == expected_rest_spot_order(raw)
            assert fills == tuple(
                Fill(f["tradeId"], raw["clientOrderId"], raw["symbol"], SIDES[raw["side"]],
                     Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["commission"]),
                     f["commissionAsset"], False, raw["transactTime"],
                     exchange_order_id=raw["orderId"])
                for f in raw.get("fills", [])
            )  # fmt: skip
        case "order_response.json":
            assert rest.parse_futures_order(payload) == expected_rest_futures_order(raw)
        case "http_futures_account_orders.json":
            assert rest.parse_futures_orders(payload) == [
                expected_rest_futures_order(d) for d in raw
            ]
        case "account_info_v2.json":
            balances, positions = rest.parse_futures_account(payload)
            assert balances == tuple(
                futures_balance(a["asset"], a["walletBalance"], a) for a in raw["assets"]
            )
            assert positions == tuple(expected_position(p) for p in raw["positions"])
        case "balance.json":
            assert rest.parse_futures_balance(payload) == tuple(
                futures_balance(b["asset"], b["balance"], b) for b in raw
            )
        case (
            "position_risk.json"
            | "http_futures_account_positions_hedge.json"
            | ("http_futures_account_positions_one_way.json")
        ):
            assert rest.parse_position_risk(payload) == tuple(expected_position(p) for p in raw)
        case "open_algo_orders.json":
            assert rest.parse_futures_algo_orders(payload) == [
                AlgoOrderUpdated(
                    a["clientAlgoId"], a["algoId"], a["symbol"], SIDES[a["side"]],
                    FUTURES_ORDER_TYPES[a["type"]], a["algoStatus"].lower(),
                    Decimal(a["quantity"]), a["updateTime"],
                    trigger_price=positive(a["triggerPrice"]), reduce_only=a["reduceOnly"],
                    position_side=a["positionSide"], time_in_force=tif(a["timeInForce"]),
                )
                for a in raw
            ]  # fmt: skip
        case "http_futures_account_position_side_dual.json":
            assert rest.parse_position_side_dual(payload) is raw["dualSidePosition"]
        case "http_futures_account_symbol_config.json":
            configs = rest.parse_symbol_config(payload)
            assert [(c.symbol, c.leverage, c.auto_add_margin, c.margin_type) for c in configs] == [
                (r["symbol"], r["leverage"], r["isAutoAddMargin"],
                 {"CROSSED": "cross", "ISOLATED": "isolated"}[r["marginType"]])
                for r in raw
            ]  # fmt: skip
        case "http_spot_streams_listen_key.json":
            assert rest.parse_listen_key(payload) == raw["listenKey"]
        case _:
            pytest.fail(f"no REST check for {name}")


SPOT_REST = [
    f"nautilus_rust/spot/http_json/{name}.json"
    for name in (
        "account_response", "account_trades_response", "all_orders_response",
        "cancel_order_response", "cancel_open_orders_response", "new_order_full_response",
        "open_orders_response", "order_response",
    )
]  # fmt: skip
OTHER_REST = [
    "nautilus_rust/futures/http_json/*.json",
    "rest/http_futures_account_*.json",
    "rest/http_spot_wallet_account.json",
    "rest_legacy/http_spot_streams_listen_key.json",
]


def test_every_recorded_rest_answer(binance_fixtures: Path) -> None:
    checked = 0
    for path in files(binance_fixtures, SPOT_REST + OTHER_REST):
        payload = path.read_bytes()
        check_rest(path.name, json.loads(payload), payload)
        checked += 1
    assert checked == 21
