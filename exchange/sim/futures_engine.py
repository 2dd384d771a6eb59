"""The simulator's USD-M Futures matching engine and account (``FuturesEngine``).

Requests arrive as Binance's string parameters (already authenticated) with the server time;
answers are Binance's JSON shapes, refusals ``SimError`` with Binance's code and message. Fills
come from ``exchange.sim.matching`` (shared with spot): an order that crosses the current quote
takes liquidity, a resting LIMIT fills as maker in ``on_quote``. Money and positions live in
``futures_account``; user-data events (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE) queue until
``drain_events``.

Behaviour chosen where Binance allows several readings (see the report in the module tests):

* LIMIT GTX that would take liquidity: refused with -5022 (no order recorded, no event), as the
  USD-M error page describes GTX_ORDER_REJECT; FOK that cannot fill entirely: -5021 likewise.
* MARKET remainder and IOC remainder: EXPIRED. GTC remainder rests.
* No quote yet for a MARKET order: -4131 (Binance's answer when there is no counterparty price).
* STOP/TAKE_PROFIT/TRAILING types on ``/fapi/v1/order``: -4120 (Binance moved them to the
  algo-order API, simulated by ``futures_algo``: its triggers are checked on every quote and
  mark price, after resting orders matched);
  ``closePosition`` on MARKET/LIMIT: -1106. GTD time in force: -1115 (not simulated).
* Hedge mode: GET positionSide/dual answers false; POST false answers -4059, POST true runs
  Binance's checks (-4068 position, -4067 open orders) and is then refused with -1000 and a
  message saying the simulator supports one-way mode only. positionSide LONG/SHORT: -4061.
* Funding: when a MarkTick's time reaches the previously announced next funding time, each
  position pays ``-positionAmt * markPrice * fundingRate`` (the rate announced with that time,
  the new tick's mark price) into the wallet: ACCOUNT_UPDATE reason FUNDING_FEE (balance only
  for cross positions, plus the position for isolated ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from exchange.sim.catalog import SimSymbol
from exchange.sim.futures_algo import AlgoOrders
from exchange.sim.futures_book import OrderBook
from exchange.sim.futures_control import AccountControl
from exchange.sim.futures_positions import Position
from exchange.sim.matching import Fees, FillModel, MarkTick, Quote

__all__ = ["FuturesEngine"]

_DEFAULT_FEES: Final = Fees(Decimal("0.0002"), Decimal("0.0005"))
_DEFAULT_FILL_MODEL: Final = FillModel()


class FuturesEngine(AlgoOrders, AccountControl):
    """A USD-M account in one-way mode on a set of perpetual symbols (see module docstring)."""

    def __init__(
        self,
        symbols: Sequence[SimSymbol],
        *,
        wallet: Mapping[str, Decimal],
        fees: Fees = _DEFAULT_FEES,
        fill_model: FillModel = _DEFAULT_FILL_MODEL,
        seed: int = 0,
        default_leverage: int = 20,
    ) -> None:
        super().__init__(
            symbols,
            wallet=wallet,
            fees=fees,
            fill_model=fill_model,
            seed=seed,
            default_leverage=default_leverage,
        )

    # --- market input

    def on_quote(self, quote: Quote, now_ms: int) -> None:
        """Remember the book; fill resting orders the quote reaches (as makers)."""
        if quote.symbol not in self.symbols:
            return
        self.quotes[quote.symbol] = quote
        if quote.symbol not in self.mark_seen:
            # Until a mark price stream arrives, the last trade price stands in for it.
            self.ledger.marks[quote.symbol] = quote.last
        self.match_resting(quote, now_ms)
        self.check_algo_triggers(quote.symbol, now_ms)

    def on_mark(self, mark: MarkTick, now_ms: int) -> None:
        """New mark price (unrealised PnL); settle funding when a funding time has passed."""
        if mark.symbol not in self.symbols:
            return
        announced = self.ledger.funding.get(mark.symbol)
        self.ledger.marks[mark.symbol] = mark.mark_price
        self.mark_seen.add(mark.symbol)
        if announced is not None and mark.time_ms >= announced[0]:
            fee = self.ledger.settle_funding(mark.symbol, mark.mark_price, announced[1])
            if fee != 0:
                self.ledger.update_time_ms = now_ms
                position = self.ledger.position(mark.symbol)
                shown = [position] if position.isolated else []
                self.emit_account_update("FUNDING_FEE", now_ms, shown, balance_change=fee)
        self.ledger.funding[mark.symbol] = (mark.next_funding_time_ms, mark.funding_rate)
        self.check_algo_triggers(mark.symbol, now_ms)

    def drain_events(self) -> list[dict[str, Any]]:
        """User-data events since the last drain, oldest first (inner event objects)."""
        events, self.events = self.events, []
        return events

    # --- account views

    def account(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """GET /fapi/v3/account."""
        return self.ledger.account_json(self.book.loads())

    def balance(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v3/balance."""
        return self.ledger.balance_json(self.book.loads())

    def position_risk(self, params: Mapping[str, str], now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v3/positionRisk (symbol optional)."""
        symbol = params.get("symbol") or None
        if symbol is not None:
            self.rules(symbol)
        notionals = {s: self.book.side_notionals(s) for s in self.symbols}
        return self.ledger.position_risk_json(self.book.loads(), symbol, notionals)

    # --- snapshot

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue, JSON-safe (Decimals as strings)."""
        acc = self.ledger
        return {
            "seed": self.seed,
            "assets": {a: str(v) for a, v in acc.assets.items()},
            "default_leverage": acc.default_leverage,
            "update_time_ms": acc.update_time_ms,
            "positions": {
                s: {
                    "leverage": p.leverage,
                    "isolated": p.isolated,
                    "amount": str(p.amount),
                    "entry_price": str(p.entry_price),
                    "accumulated_realized": str(p.accumulated_realized),
                    "update_time_ms": p.update_time_ms,
                }
                for s, p in acc.positions.items()
            },
            "marks": {s: str(v) for s, v in acc.marks.items()},
            "mark_seen": sorted(self.mark_seen),
            "funding": {s: [t, str(r)] for s, (t, r) in acc.funding.items()},
            "quotes": {
                s: {
                    "time_ms": q.time_ms,
                    "bid": str(q.bid),
                    "ask": str(q.ask),
                    "bid_qty": str(q.bid_qty),
                    "ask_qty": str(q.ask_qty),
                    "last": str(q.last),
                    "volume": str(q.volume),
                }
                for s, q in self.quotes.items()
            },
            "book": self.book.to_json(),
            "algo": self.algo_snapshot(),
            "events": list(self.events),
        }

    @classmethod
    def from_snapshot(
        cls,
        data: Mapping[str, Any],
        symbols: Sequence[SimSymbol],
        *,
        fees: Fees,
        fill_model: FillModel,
    ) -> FuturesEngine:
        engine = cls(
            symbols,
            wallet={a: Decimal(v) for a, v in data["assets"].items()},
            fees=fees,
            fill_model=fill_model,
            seed=int(data["seed"]),
            default_leverage=int(data["default_leverage"]),
        )
        acc = engine.ledger
        acc.update_time_ms = int(data["update_time_ms"])
        for s, p in data["positions"].items():
            acc.positions[s] = Position(
                s,
                int(p["leverage"]),
                bool(p["isolated"]),
                Decimal(p["amount"]),
                Decimal(p["entry_price"]),
                Decimal(p["accumulated_realized"]),
                int(p["update_time_ms"]),
            )
        acc.marks = {s: Decimal(v) for s, v in data["marks"].items()}
        engine.mark_seen = set(data["mark_seen"])
        acc.funding = {s: (int(t), Decimal(r)) for s, (t, r) in data["funding"].items()}
        for s, q in data["quotes"].items():
            engine.quotes[s] = Quote(
                s, int(q["time_ms"]), Decimal(q["bid"]), Decimal(q["ask"]),
                Decimal(q["bid_qty"]), Decimal(q["ask_qty"]), Decimal(q["last"]),
                Decimal(q["volume"]),
            )  # fmt: skip
        engine.book = OrderBook.from_json(data["book"], list(engine.symbols))
        engine.restore_algos(data.get("algo"))
        engine.events = [dict(e) for e in data["events"]]
        return engine
