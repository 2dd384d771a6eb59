"""The simulated USD-M account: USDT wallet, one-way positions, marks, margins and its REST views.

``FuturesAccount`` owns the money side of the futures simulator (the engine owns orders and
matching): the wallet, each symbol's ``Position`` with its leverage and margin type, the last
mark price, and the funding announcements. It renders GET /fapi/v3/account, /fapi/v3/balance
and /fapi/v3/positionRisk.

Simplifications (documented, not Binance's full risk engine): one leverage-bracket table (BTCUSDT's)
serves every symbol for ``maxNotionalValue``; maintenance margin rate is ``0.5 / maxLeverage``
(BTCUSDT's first bracket: 0.4 % at 125x); isolated margin is the entry notional over leverage;
no liquidation happens (the liquidation price is reported only); only USDT is margin — other
wallet assets are listed but not used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.futures_positions import (
    OpenOrderLoad,
    Position,
    initial_margin,
    isolated_wallet,
    money,
    open_order_margin,
    unrealized_pnl,
)
from exchange.sim.futures_wire import money_str, plain, qty_str

__all__ = ["MARGIN_ASSET", "FuturesAccount", "max_notional"]

MARGIN_ASSET: Final = "USDT"
_ZERO: Final = Decimal(0)
# (initial leverage of the bracket, notional cap): BTCUSDT's brackets, used for every symbol.
_BRACKETS: Final = (
    (125, 50_000), (100, 600_000), (75, 3_000_000), (50, 12_000_000), (25, 70_000_000),
    (20, 100_000_000), (10, 230_000_000), (5, 480_000_000), (4, 600_000_000),
    (3, 800_000_000), (2, 1_200_000_000), (1, 1_800_000_000),
)  # fmt: skip


def max_notional(leverage: int) -> Decimal:
    """The largest position notional allowed at ``leverage`` (the bracket table above)."""
    cap = _BRACKETS[0][1]
    for bracket_leverage, notional in _BRACKETS:
        if bracket_leverage >= leverage:
            cap = notional
    return Decimal(cap)


class FuturesAccount:
    def __init__(
        self,
        symbols: Sequence[SimSymbol],
        *,
        wallet: Mapping[str, Decimal],
        default_leverage: int,
    ) -> None:
        self.symbols = {s.symbol: s for s in symbols}
        self.assets: dict[str, Decimal] = dict(wallet)
        self.assets.setdefault(MARGIN_ASSET, _ZERO)
        self.default_leverage = default_leverage
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        # symbol -> (announced next funding time, funding rate announced with it)
        self.funding: dict[str, tuple[int, Decimal]] = {}
        self.update_time_ms = 0

    # --- state

    @property
    def wallet(self) -> Decimal:
        return self.assets[MARGIN_ASSET]

    def add_to_wallet(self, amount: Decimal) -> None:
        self.assets[MARGIN_ASSET] = self.assets[MARGIN_ASSET] + amount

    def position(self, symbol: str) -> Position:
        found = self.positions.get(symbol)
        if found is None:
            rules = self.symbols[symbol]
            leverage = min(self.default_leverage, rules.max_leverage or self.default_leverage)
            found = self.positions[symbol] = Position(symbol, leverage)
        return found

    def mark(self, symbol: str) -> Decimal:
        mark = self.marks.get(symbol)
        if mark is not None:
            return mark
        position = self.positions.get(symbol)
        if position is not None and position.amount != 0:
            return position.entry_price
        return self.symbols[symbol].start_price

    # --- margin arithmetic

    def upnl(self, symbol: str) -> Decimal:
        return unrealized_pnl(self.position(symbol), self.mark(symbol))

    def cross_wallet(self) -> Decimal:
        return self.wallet - sum((isolated_wallet(p) for p in self.positions.values()), _ZERO)

    def cross_upnl(self) -> Decimal:
        return sum(
            (self.upnl(s) for s, p in self.positions.items() if not p.isolated and p.amount),
            _ZERO,
        )

    def position_margin(self, *, cross_only: bool = False) -> Decimal:
        return sum(
            (
                initial_margin(p, self.mark(s))
                for s, p in self.positions.items()
                if not (cross_only and p.isolated)
            ),
            _ZERO,
        )

    def order_margin(self, loads: Mapping[str, Sequence[OpenOrderLoad]]) -> Decimal:
        return sum(
            (open_order_margin(self.position(s), orders) for s, orders in loads.items()), _ZERO
        )

    def available(self, loads: Mapping[str, Sequence[OpenOrderLoad]]) -> Decimal:
        return (
            self.cross_wallet()
            + self.cross_upnl()
            - self.position_margin(cross_only=True)
            - self.order_margin(loads)
        )

    def maint_rate(self, symbol: str) -> Decimal:
        return Decimal("0.5") / (self.symbols[symbol].max_leverage or 125)

    def maint_margin(self, symbol: str) -> Decimal:
        p = self.position(symbol)
        return abs(p.amount) * self.mark(symbol) * self.maint_rate(symbol)

    def liquidation_price(self, symbol: str) -> Decimal:
        """Mark price at which margin balance meets maintenance margin (0: none)."""
        p = self.position(symbol)
        if p.amount == 0:
            return _ZERO
        rate = self.maint_rate(symbol)
        if p.isolated:
            balance = isolated_wallet(p)
            others = _ZERO
        else:
            balance = self.cross_wallet()
            others = sum(
                (
                    self.upnl(s) - self.maint_margin(s)
                    for s, q in self.positions.items()
                    if s != symbol and not q.isolated and q.amount
                ),
                _ZERO,
            )
        # balance + others + amt*(M - entry) = |amt| * M * rate, solved for M
        denominator = p.amount - abs(p.amount) * rate
        price = (p.amount * p.entry_price - balance - others) / denominator
        return max(price, _ZERO)

    def settle_funding(self, symbol: str, mark: Decimal, rate: Decimal) -> Decimal:
        """Book one funding payment: ``-positionAmt * mark * rate``; returns it (0: none)."""
        p = self.positions.get(symbol)
        if p is None or p.amount == 0:
            return _ZERO
        fee = money(-p.amount * mark * rate)
        self.add_to_wallet(fee)
        return fee

    # --- REST views

    def _notional(self, symbol: str) -> Decimal:
        return self.position(symbol).amount * self.mark(symbol)

    def _listed(self, loads: Mapping[str, Sequence[OpenOrderLoad]]) -> list[str]:
        """Symbols with a position or open orders: what the v3 endpoints list."""
        return sorted(s for s, p in self.positions.items() if p.amount != 0 or loads.get(s))

    def _asset_rows(self, loads: Mapping[str, Sequence[OpenOrderLoad]]) -> list[dict[str, Any]]:
        rows = []
        for asset, amount in sorted(self.assets.items()):
            margin = asset == MARGIN_ASSET
            upnl = sum((self.upnl(s) for s in self.positions), _ZERO) if margin else _ZERO
            pos_im = self.position_margin() if margin else _ZERO
            ord_im = self.order_margin(loads) if margin else _ZERO
            available = max(self.available(loads), _ZERO) if margin else amount
            maint = sum((self.maint_margin(s) for s in self.positions), _ZERO) if margin else _ZERO
            rows.append(
                {
                    "asset": asset,
                    "walletBalance": money_str(amount),
                    "unrealizedProfit": money_str(upnl),
                    "marginBalance": money_str(amount + upnl),
                    "maintMargin": money_str(maint),
                    "initialMargin": money_str(pos_im + ord_im),
                    "positionInitialMargin": money_str(pos_im),
                    "openOrderInitialMargin": money_str(ord_im),
                    "crossWalletBalance": money_str(self.cross_wallet() if margin else amount),
                    "crossUnPnl": money_str(self.cross_upnl() if margin else _ZERO),
                    "availableBalance": money_str(available),
                    "maxWithdrawAmount": money_str(available),
                    "updateTime": self.update_time_ms,
                }
            )
        return rows

    def account_json(self, loads: Mapping[str, Sequence[OpenOrderLoad]]) -> dict[str, Any]:
        """GET /fapi/v3/account (single-asset mode: totals count USDT only)."""
        usdt = next(r for r in self._asset_rows(loads) if r["asset"] == MARGIN_ASSET)
        positions = []
        for s in self._listed(loads):
            p = self.position(s)
            im = initial_margin(p, self.mark(s))
            iso = isolated_wallet(p)
            positions.append(
                {
                    "symbol": s,
                    "positionSide": "BOTH",
                    "positionAmt": qty_str(self.symbols[s], p.amount),
                    "unrealizedProfit": money_str(self.upnl(s)),
                    "isolatedMargin": money_str(iso + self.upnl(s) if p.isolated else _ZERO),
                    "notional": money_str(self._notional(s)),
                    "isolatedWallet": money_str(iso),
                    "initialMargin": money_str(im + open_order_margin(p, loads.get(s, ()))),
                    "maintMargin": money_str(self.maint_margin(s)),
                    "updateTime": p.update_time_ms,
                }
            )
        return {
            "totalInitialMargin": usdt["initialMargin"],
            "totalMaintMargin": usdt["maintMargin"],
            "totalWalletBalance": usdt["walletBalance"],
            "totalUnrealizedProfit": usdt["unrealizedProfit"],
            "totalMarginBalance": usdt["marginBalance"],
            "totalPositionInitialMargin": usdt["positionInitialMargin"],
            "totalOpenOrderInitialMargin": usdt["openOrderInitialMargin"],
            "totalCrossWalletBalance": usdt["crossWalletBalance"],
            "totalCrossUnPnl": usdt["crossUnPnl"],
            "availableBalance": usdt["availableBalance"],
            "maxWithdrawAmount": usdt["maxWithdrawAmount"],
            "assets": self._asset_rows(loads),
            "positions": positions,
        }

    def balance_json(self, loads: Mapping[str, Sequence[OpenOrderLoad]]) -> list[dict[str, Any]]:
        """GET /fapi/v3/balance."""
        return [
            {
                "accountAlias": "SgsR",
                "asset": r["asset"],
                "balance": r["walletBalance"],
                "crossWalletBalance": r["crossWalletBalance"],
                "crossUnPnl": r["crossUnPnl"],
                "availableBalance": r["availableBalance"],
                "maxWithdrawAmount": r["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": r["updateTime"],
            }
            for r in self._asset_rows(loads)
        ]

    def position_risk_json(
        self,
        loads: Mapping[str, Sequence[OpenOrderLoad]],
        symbol: str | None,
        bid_ask: Mapping[str, tuple[Decimal, Decimal]],
    ) -> list[dict[str, Any]]:
        """GET /fapi/v3/positionRisk (only symbols with a position or open orders)."""
        rows = []
        for s in self._listed(loads):
            if symbol is not None and s != symbol:
                continue
            rules = self.symbols[s]
            p = self.position(s)
            im = initial_margin(p, self.mark(s))
            oim = open_order_margin(p, loads.get(s, ()))
            iso = isolated_wallet(p)
            bids, asks = bid_ask.get(s, (_ZERO, _ZERO))
            rows.append(
                {
                    "symbol": s,
                    "positionSide": "BOTH",
                    "positionAmt": qty_str(rules, p.amount),
                    "entryPrice": plain(p.entry_price),
                    "breakEvenPrice": plain(p.entry_price),
                    "markPrice": plain(self.mark(s)),
                    "unRealizedProfit": money_str(self.upnl(s)),
                    "liquidationPrice": plain(self.liquidation_price(s)),
                    "isolatedMargin": money_str(iso + self.upnl(s) if p.isolated else _ZERO),
                    "notional": money_str(self._notional(s)),
                    "marginAsset": MARGIN_ASSET,
                    "isolatedWallet": money_str(iso),
                    "initialMargin": money_str(im + oim),
                    "maintMargin": money_str(self.maint_margin(s)),
                    "positionInitialMargin": money_str(im),
                    "openOrderInitialMargin": money_str(oim),
                    "adl": 0,
                    "bidNotional": plain(bids),
                    "askNotional": plain(asks),
                    "updateTime": p.update_time_ms,
                }
            )
        return rows

    def leverage_json(self, symbol: str) -> dict[str, Any]:
        p = self.position(symbol)
        return {
            "leverage": p.leverage,
            "maxNotionalValue": plain(max_notional(p.leverage)),
            "symbol": symbol,
        }
