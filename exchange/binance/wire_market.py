"""Binance market-data wire schemas (msgspec), stream names, and two tricks for cheap decoding.

Field names are Binance's (``"s"``, ``"k"``, ``"b"``) mapped to readable attribute names.
Prices and quantities stay ``str`` here: they become ``Decimal`` in ``parse_market`` straight
from Binance's text, never through float. Fields not listed are ignored (msgspec's default), so
Binance adding a field never breaks decoding. Structs without ``Any`` fields are ``gc=False``:
decoded JSON cannot form reference cycles and untracked objects make the collector cheaper.

- ``DecimalCache``: a bounded ``str -> Decimal`` intern table. Stream prices repeat a lot
  (a bar's open, high, low and close barely move between intrabar updates, the best bid and
  ask sit on a few ticks), and a dict hit costs a fraction of ``Decimal(text)``. Volumes and
  quantities rarely repeat, so they bypass it (a miss costs more than no cache). Decimals
  are immutable, so sharing them is safe.
- ``frozen_builder``: builds frozen slotted dataclasses without their ``__init__``, which pays
  an ``object.__setattr__`` per field (about 1.8 µs for ``Kline`` on the reference machine).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, field

__all__ = [
    "BOOK_TICKER_EVENT",
    "BOOK_TICKER_FRAME",
    "DECIMALS",
    "DECIMAL_CACHE_LIMIT",
    "FUNDING_INFO",
    "KLINE_EVENT",
    "KLINE_FRAME",
    "KLINE_INTERVALS",
    "MARK_PRICE_EVENT",
    "MARK_PRICE_FRAME",
    "PREMIUM_INDEX",
    "PROBE",
    "REST_BOOK_TICKER",
    "REST_KLINES",
    "SERVER_SHUTDOWN_EVENT",
    "SERVER_TIME",
    "UNSET",
    "BookTickerEvent",
    "BookTickerFrame",
    "DecimalCache",
    "FundingInfoRow",
    "KlineBody",
    "KlineEvent",
    "KlineFrame",
    "MarkPriceEvent",
    "MarkPriceFrame",
    "PremiumIndexRow",
    "Probe",
    "RestBookTickerRow",
    "RestKlineRow",
    "ServerShutdownEvent",
    "ServerTime",
    "frozen_builder",
    "stream_names",
    "strict_decimal",
]

T = TypeVar("T")

DECIMAL_CACHE_LIMIT = 8192
KLINE_INTERVALS = frozenset(  # "1s" exists on spot only
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d"}
    | {"1w", "1M"}
)
_SYMBOL = re.compile(r"[A-Za-z0-9_]+")  # "_" for delivery contracts: BTCUSDT_240628


def strict_decimal(text: str) -> Decimal:
    """``Decimal(text)``, refusing NaN and infinities (a NaN price would poison comparisons)."""
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text[:24]!r}")
    return value


class DecimalCache(dict[str, Decimal]):
    """``cache[text]`` is ``strict_decimal(text)``, remembered until the table is full.

    Cleared wholesale at ``DECIMAL_CACHE_LIMIT`` entries: cheaper than LRU bookkeeping, and the
    prices in play are back in the table after a few frames.
    """

    def __missing__(self, text: str) -> Decimal:
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError(f"not a finite number: {text[:24]!r}")
        if len(self) >= DECIMAL_CACHE_LIMIT:
            self.clear()
        self[text] = value
        return value


DECIMALS = DecimalCache()


def frozen_builder(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for the frozen slotted dataclass ``cls``, several times faster.

    It builds a mutable twin (same fields, same slots, so the same memory layout) through the
    twin's plain ``__init__`` and then re-labels it as ``cls``, which CPython permits exactly
    when the layouts match. The result is an ordinary ``cls`` instance: equal, hashable and
    frozen. Whenever that could differ from calling ``cls`` (validation in ``__post_init__``,
    custom ``__init__``, no slots, a layout CPython refuses) ``cls`` itself is returned.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if (
        params is None
        or not params.frozen
        or not params.init
        or "__slots__" not in cls.__dict__
        or hasattr(cls, "__post_init__")
    ):
        return cls
    own_fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if any(not f.init or f.kw_only for f in own_fields):
        return cls
    twin: type[Any] = dataclasses.make_dataclass(
        f"_Mutable{cls.__name__}",
        [
            (f.name, f.type, field_spec)
            for f in own_fields
            for field_spec in [
                dataclasses.field(default=f.default, default_factory=f.default_factory)
            ]
        ],
        slots=True,
    )
    try:
        object.__new__(twin).__class__ = cls
    except TypeError:
        return cls

    def build(*args: Any) -> T:
        made = twin(*args)
        made.__class__ = cls
        return made  # type: ignore[no-any-return]

    build.__doc__ = f"Positional constructor of {cls.__qualname__} (see frozen_builder)."
    return build


# --- WebSocket market streams --------------------------------------------------------------


class KlineBody(Struct, gc=False):
    open_time_ms: int = field(name="t")
    close_time_ms: int = field(name="T")
    symbol: str = field(name="s")
    interval: str = field(name="i")
    open: str = field(name="o")
    high: str = field(name="h")
    low: str = field(name="l")
    close: str = field(name="c")
    volume: str = field(name="v")
    quote_volume: str = field(name="q")
    trades: int = field(name="n")
    closed: bool = field(name="x")


class KlineEvent(Struct, gc=False):
    event_type: str = field(name="e")
    kline: KlineBody = field(name="k")


class BookTickerEvent(Struct, gc=False):
    """Spot sends no ``e``, ``E`` or ``T``; USD-M futures sends all three."""

    update_id: int = field(name="u")
    symbol: str = field(name="s")
    bid_price: str = field(name="b")
    bid_quantity: str = field(name="B")
    ask_price: str = field(name="a")
    ask_quantity: str = field(name="A")
    event_type: str = field(name="e", default="bookTicker")
    transaction_time_ms: int = field(name="T", default=0)
    event_time_ms: int = field(name="E", default=0)


class MarkPriceEvent(Struct, gc=False):
    event_type: str = field(name="e")
    event_time_ms: int = field(name="E")
    symbol: str = field(name="s")
    mark_price: str = field(name="p")
    index_price: str = field(name="i")
    funding_rate: str = field(name="r")  # "" for symbols without funding (delivery contracts)
    next_funding_time_ms: int = field(name="T")


class ServerShutdownEvent(Struct, gc=False):
    event_time_ms: int = field(name="E", default=0)


class KlineFrame(Struct, gc=False):
    stream: str
    data: KlineEvent


class BookTickerFrame(Struct, gc=False):
    stream: str
    data: BookTickerEvent


class MarkPriceFrame(Struct, gc=False):
    stream: str
    data: MarkPriceEvent


class Probe(Struct):
    """Every key that tells frame kinds apart, typed loosely: the caller checks the types.

    One probe serves the outer frame (``stream``/``data`` envelope, WS-API ``event`` envelope,
    control replies) and the event inside (``e``, or the e-less spot bookTicker shape).
    ``UNSET``, or an empty ``Raw``, means the key was absent. ``Raw`` skips building values
    only tested for presence (``b``/``a`` of a depth update can hold a thousand levels).
    """

    stream: Any = UNSET
    data: Raw = Raw()
    event: Raw = Raw()
    e: Any = UNSET
    id: Any = UNSET
    result: Any = UNSET
    error: Any = UNSET
    code: Any = UNSET
    msg: Any = UNSET
    s: Any = UNSET
    u: Raw = Raw()
    b: Raw = Raw()
    a: Raw = Raw()


# --- REST market endpoints -----------------------------------------------------------------


class RestKlineRow(Struct, array_like=True, gc=False):
    """``[openTime, o, h, l, c, v, closeTime, q, trades, V, Q, ignore]``; trailing columns
    after ``trades`` are ignored, so Binance appending one is harmless."""

    open_time_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    close_time_ms: int
    quote_volume: str
    trades: int


class PremiumIndexRow(Struct, gc=False):
    symbol: str
    mark_price: str = field(name="markPrice")
    index_price: str = field(name="indexPrice")
    funding_rate: str = field(name="lastFundingRate")  # "" for delivery contracts
    next_funding_time_ms: int = field(name="nextFundingTime")
    time_ms: int = field(name="time", default=0)


class FundingInfoRow(Struct, gc=False):
    symbol: str
    interval_hours: Annotated[int, Meta(ge=1)] = field(name="fundingIntervalHours")
    adjusted_cap: str = field(name="adjustedFundingRateCap")
    adjusted_floor: str = field(name="adjustedFundingRateFloor")


class ServerTime(Struct, gc=False):
    server_time_ms: int = field(name="serverTime")


class RestBookTickerRow(Struct, gc=False):
    """Spot has no ``time`` and no ``lastUpdateId``; USD-M futures has both."""

    symbol: str
    bid_price: str = field(name="bidPrice")
    bid_quantity: str = field(name="bidQty")
    ask_price: str = field(name="askPrice")
    ask_quantity: str = field(name="askQty")
    time_ms: int = field(name="time", default=0)
    update_id: int = field(name="lastUpdateId", default=0)


KLINE_FRAME = msgspec.json.Decoder(KlineFrame)
BOOK_TICKER_FRAME = msgspec.json.Decoder(BookTickerFrame)
MARK_PRICE_FRAME = msgspec.json.Decoder(MarkPriceFrame)
KLINE_EVENT = msgspec.json.Decoder(KlineEvent)
BOOK_TICKER_EVENT = msgspec.json.Decoder(BookTickerEvent)
MARK_PRICE_EVENT = msgspec.json.Decoder(MarkPriceEvent)
SERVER_SHUTDOWN_EVENT = msgspec.json.Decoder(ServerShutdownEvent)
PROBE = msgspec.json.Decoder(Probe)
REST_KLINES = msgspec.json.Decoder(list[RestKlineRow])
PREMIUM_INDEX = msgspec.json.Decoder(PremiumIndexRow | list[PremiumIndexRow])
FUNDING_INFO = msgspec.json.Decoder(list[FundingInfoRow])
SERVER_TIME = msgspec.json.Decoder(ServerTime)
REST_BOOK_TICKER = msgspec.json.Decoder(RestBookTickerRow | list[RestBookTickerRow])


# --- stream names -------------------------------------------------------------------------


def stream_names(
    symbols: Iterable[str],
    *,
    intervals: Iterable[str],
    book_ticker: bool,
    mark_price: bool,
) -> list[str]:
    """Stream names to subscribe, per symbol in the order given, without duplicates.

    Symbols are lower-cased as Binance requires; intervals are case-sensitive (``1m`` is one
    minute, ``1M`` one month) and must be Binance kline intervals. ``markPrice@1s`` is the
    futures 1-second mark price stream; it does not exist on spot.
    """
    chosen = list(dict.fromkeys(intervals))
    unknown = [i for i in chosen if i not in KLINE_INTERVALS]
    if unknown:
        raise ValueError(f"unknown kline intervals: {unknown}")
    names: dict[str, None] = {}
    for symbol in symbols:
        if not _SYMBOL.fullmatch(symbol):
            raise ValueError(f"not a Binance symbol: {symbol!r}")
        lower = symbol.lower()
        for interval in chosen:
            names[f"{lower}@kline_{interval}"] = None
        if book_ticker:
            names[f"{lower}@bookTicker"] = None
        if mark_price:
            names[f"{lower}@markPrice@1s"] = None
    return list(names)
