"""Public market-data answers of the simulator: exchangeInfo, klines, book and mark prices.

Shared by both markets; each answer comes from the market's ``MarketTimeline`` (history and
last prices) and its catalogue, in the shapes of ``GET /api/v3/...`` and ``/fapi/v1/...``.
Parameters are checked as Binance checks them (``-1121`` unknown symbol, ``-1100``/``-1102``
malformed or missing values, ``limit`` capped at 1000 for spot and 1500 for futures klines).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from app.domain.market import Kline
from exchange.sim.catalog import SimSymbol, funding_info, futures_exchange_info, spot_exchange_info
from exchange.sim.errors import SimError
from exchange.sim.gateway import Access, Operation
from exchange.sim.order_params_check import int_param, mandatory
from exchange.sim.timeline import MarketTimeline

__all__ = ["MarketData"]

_FUNDING_PRECISION: Final = Decimal("0.00000001")


class MarketData:
    def __init__(
        self,
        *,
        symbols: Sequence[SimSymbol],
        timeline: MarketTimeline,
        futures: bool,
    ) -> None:
        self._symbols = {s.symbol: s for s in symbols}
        self._ordered = list(symbols)
        self._timeline = timeline
        self._futures = futures
        self._max_klines = 1500 if futures else 1000

    # -- operations --------------------------------------------------------------------------

    def operations(self) -> dict[str, Operation]:
        """Operations by name; REST paths and WS-API methods both map onto these."""
        ops = {
            "ping": Operation("ping", Access.NONE, 1, lambda p, now, key: {}),
            "time": Operation("time", Access.NONE, 1, lambda p, now, key: {"serverTime": now}),
            "exchangeInfo": Operation(
                "exchangeInfo", Access.NONE, 1 if self._futures else 20, self.exchange_info
            ),
            "klines": Operation("klines", Access.NONE, self._klines_weight, self.klines),
            "ticker.book": Operation(
                "ticker.book",
                Access.NONE,
                _one_or_all(2, 5 if self._futures else 4),
                self.book_ticker,
            ),
        }
        if self._futures:
            ops["premiumIndex"] = Operation(
                "premiumIndex", Access.NONE, _one_or_all(1, 10), self.premium_index
            )
            ops["fundingInfo"] = Operation(
                "fundingInfo", Access.NONE, 1, lambda p, now, key: funding_info(self._ordered)
            )
        return ops

    def exchange_info(self, params: Mapping[str, str], now_ms: int, _key: str | None) -> Any:
        if self._futures:  # /fapi/v1/exchangeInfo takes no parameters
            return futures_exchange_info(self._ordered, server_time_ms=now_ms)
        chosen = self._ordered
        if "symbol" in params:
            chosen = [self._symbol(params["symbol"])]
        elif "symbols" in params:
            chosen = [self._symbol(name) for name in _symbol_list(params["symbols"])]
        return spot_exchange_info(chosen, server_time_ms=now_ms)

    def klines(self, params: Mapping[str, str], now_ms: int, _key: str | None) -> Any:
        symbol = self._symbol(mandatory(params, "symbol")).symbol
        interval = mandatory(params, "interval")
        wanted = int_param(params, "limit")
        limit = 500 if wanted is None else wanted
        if not 1 <= limit <= self._max_klines:
            raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
        if interval not in self._timeline.intervals(symbol):
            raise SimError(-1120, "Invalid interval.")
        start = int_param(params, "startTime")
        end = int_param(params, "endTime")
        bars = self._timeline.klines(symbol, interval, start_ms=start, end_ms=end, limit=limit)
        return [_kline_row(bar) for bar in bars]

    def book_ticker(self, params: Mapping[str, str], now_ms: int, _key: str | None) -> Any:
        if "symbol" in params:
            return self._book(self._symbol(params["symbol"]).symbol, now_ms)
        return [
            self._book(s.symbol, now_ms) for s in self._ordered if s.symbol in self._timeline.quotes
        ]

    def premium_index(self, params: Mapping[str, str], now_ms: int, _key: str | None) -> Any:
        if "symbol" in params:
            return self._premium(self._symbol(params["symbol"]).symbol, now_ms)
        return [
            self._premium(s.symbol, now_ms)
            for s in self._ordered
            if s.symbol in self._timeline.marks
        ]

    # -- pieces ------------------------------------------------------------------------------

    def _klines_weight(self, params: Mapping[str, str]) -> int:
        if not self._futures:
            return 2
        try:
            limit = int(params.get("limit", "500"))
        except ValueError:
            return 1
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def _symbol(self, name: str) -> SimSymbol:
        found = self._symbols.get(name)
        if found is None:
            raise SimError(-1121, "Invalid symbol.")
        return found

    def _book(self, symbol: str, now_ms: int) -> dict[str, Any]:
        quote = self._timeline.quotes.get(symbol)
        if quote is None:
            raise SimError(-1121, "Invalid symbol.")
        book: dict[str, Any] = {"symbol": symbol}
        if self._futures:
            book["lastUpdateId"] = quote.time_ms
        book |= {
            "bidPrice": quote.bid,
            "bidQty": quote.bid_qty,
            "askPrice": quote.ask,
            "askQty": quote.ask_qty,
        }
        if self._futures:
            book["time"] = now_ms
        return book

    def _premium(self, symbol: str, now_ms: int) -> dict[str, Any]:
        mark = self._timeline.marks.get(symbol)
        if mark is None:
            raise SimError(-1121, "Invalid symbol.")
        return {
            "symbol": symbol,
            "markPrice": mark.mark_price,
            "indexPrice": mark.index_price,
            "estimatedSettlePrice": mark.mark_price,
            "lastFundingRate": mark.funding_rate.quantize(_FUNDING_PRECISION),
            "interestRate": Decimal("0.00010000"),
            "nextFundingTime": mark.next_funding_time_ms,
            "time": now_ms,
        }


def _kline_row(bar: Kline) -> list[Any]:
    taker_volume = bar.volume / 2
    taker_quote = bar.quote_volume / 2
    return [
        bar.open_time_ms,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.close_time_ms,
        bar.quote_volume,
        bar.trades,
        taker_volume.quantize(bar.volume) if bar.volume else taker_volume,
        taker_quote.quantize(bar.quote_volume) if bar.quote_volume else taker_quote,
        "0",
    ]


def _one_or_all(one: int, every: int) -> Callable[[Mapping[str, str]], int]:
    return lambda params: one if "symbol" in params else every


def _symbol_list(text: str) -> list[str]:
    try:
        names = json.loads(text)
    except ValueError:
        raise SimError(-1100, "Illegal characters found in parameter 'symbols'.") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SimError(-1100, "Illegal characters found in parameter 'symbols'.")
    return names
