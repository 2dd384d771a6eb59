"""Cost of decoding one Binance market frame into a domain type, per call.

Frames are realistic sequences, each decoded once per pass in arrival order:
    kline       combined kline_1m frames from the cryptofeed USD-M capture, replayed with
                volume, quote volume and trade count advanced on every replay (as intrabar
                updates do), so the decimal cache only ever sees repeats that happen live;
                a seeded random walk of such frames when the capture is absent
    bookTicker  combined frames from the hftbacktest Spot and USD-M captures (random walk
                when absent)
    markPrice   a seeded random walk of combined markPrice@1s frames
Each call is timed alone (perf_counter_ns around it; the timer's own cost is printed), and the
variants being compared are interleaved in blocks so background load hits them alike. Prints
median and p99 in ns with the decimal intern cache, without it (every cached lookup made plain
``Decimal(text)``; the cache serves kline open/high/low/close, bookTicker bid/ask prices and
the funding rate), and for klines a naive reference decoder.

    python bench/decode.py [--calls 200000] [--bytes]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from app.domain.market import Kline
from exchange.binance import parse_market
from exchange.binance.parse_market import decode_market_frame

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "binance"
WARMUP = 20_000
BLOCK = 5_000
TARGET_NS = 2000


class NoCache:
    """``no_cache[text]`` is plain ``Decimal(text)``: the type itself as ``__getitem__`` adds
    only the subscript dispatch (about 10 ns), and it even skips the finite check."""

    __getitem__ = Decimal


def _replayed(event: dict[str, Any], replay: int) -> dict[str, Any]:
    k = dict(event["k"])
    for key in ("v", "q"):
        value = Decimal(k[key])
        exponent = int(value.as_tuple().exponent)
        k[key] = str(value + Decimal(replay) * Decimal(1).scaleb(exponent))
    k["n"] += replay
    return {**event, "E": event["E"] + replay, "k": k}


def kline_frames(count: int) -> tuple[list[str], str]:
    capture = FIXTURES / "cryptofeed_sample_data" / "BINANCE_FUTURES.ws.1.0"
    if capture.is_file():
        lines = capture.read_text().splitlines()[1:]
        originals = [json.loads(line.split(": ", 1)[1]) for line in lines if "@kline_" in line]
        source = f"{len(originals)} recorded frames from {capture.name}, replayed"
    else:
        originals = _synthetic_klines(400)
        source = "seeded random walk (capture absent)"
    frames = []
    for i in range(count):
        frame = originals[i % len(originals)]
        data = _replayed(frame["data"], i // len(originals))
        frames.append(json.dumps({"stream": frame["stream"], "data": data}, separators=(",", ":")))
    return frames, source


def _synthetic_klines(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    price, open_price, volume, start = Decimal("61800.10"), Decimal("61800.10"), Decimal(0), 0
    high = low = price
    frames = []
    for i in range(count):
        if i % 60 == 0:
            start, open_price, high, low, volume = i * 1000, price, price, price, Decimal(0)
        price += Decimal(rng.randint(-3, 3)) / 10
        high, low = max(high, price), min(low, price)
        volume += Decimal(rng.randint(1, 500)) / 1000
        k = {"t": start, "T": start + 59_999, "s": "BTCUSDT", "i": "1m", "o": str(open_price)}
        k |= {"c": str(price), "h": str(high), "l": str(low), "v": str(volume)}
        k |= {"n": i, "x": False, "q": str((volume * price).quantize(Decimal("0.00001")))}
        event = {"e": "kline", "E": start + i, "s": "BTCUSDT", "k": k}
        frames.append({"stream": "btcusdt@kline_1m", "data": event})
    return frames


def book_ticker_frames(count: int) -> tuple[list[str], str]:
    frames: list[str] = []
    captures = sorted((FIXTURES / "hftbacktest_ws_capture").glob("*/*.gz"))
    for capture in captures:
        with gzip.open(capture, "rt") as lines:
            frames += [line.split(" ", 1)[1] for line in lines if "@bookTicker" in line]
    if frames:
        kept = frames[:count]
        return kept, f"{len(kept)} recorded frames from {len(captures)} files, replayed"
    rng = random.Random(11)
    bid = Decimal("61800.10")
    for i in range(count):
        bid += Decimal(rng.randint(-2, 2)) / 10
        data = {"e": "bookTicker", "u": i, "s": "BTCUSDT", "b": str(bid), "a": str(bid + 1)}
        data |= {"B": str(Decimal(rng.randint(1, 9000)) / 1000), "A": str(rng.randint(1, 9))}
        data |= {"T": i, "E": i}
        frames.append(json.dumps({"stream": "btcusdt@bookTicker", "data": data}))
    return frames, "seeded random walk (captures absent)"


def mark_price_frames(count: int) -> tuple[list[str], str]:
    rng = random.Random(13)
    mark, index, rate = Decimal("61800.1"), Decimal("61790.3"), Decimal("0.00010000")
    frames = []
    for i in range(count):
        mark += Decimal(rng.randint(-9999, 9999)) / 10**5
        index += Decimal(rng.randint(-9999, 9999)) / 10**5
        if i % 60 == 0:
            rate += Decimal(rng.randint(-5, 5)) / 10**8
        data = {"e": "markPriceUpdate", "E": 1723161256000 + i * 1000, "s": "BTCUSDT"}
        data |= {"p": f"{mark:.8f}", "i": f"{index:.8f}", "P": f"{index:.8f}", "r": f"{rate:.8f}"}
        data |= {"T": 1723190400000}
        frames.append(json.dumps({"stream": "btcusdt@markPrice@1s", "data": data}))
    return frames, "seeded random walk"


class _NaiveKlineBody(msgspec.Struct):
    t: int
    T: int
    s: str
    i: str
    o: str
    c: str
    h: str
    low: str = msgspec.field(name="l")
    v: str
    n: int
    x: bool
    q: str


class _NaiveKlineEvent(msgspec.Struct):
    k: _NaiveKlineBody


class _NaiveKlineFrame(msgspec.Struct):
    stream: str
    data: _NaiveKlineEvent


_NAIVE = msgspec.json.Decoder(_NaiveKlineFrame)


def naive_kline(raw: str | bytes) -> Kline:
    """Reference only: typed structs, then Decimal() and the dataclass constructor."""
    k = _NAIVE.decode(raw).data.k
    return Kline(
        k.s,
        k.i,
        k.t,
        k.T,
        Decimal(k.o),
        Decimal(k.h),
        Decimal(k.low),
        Decimal(k.c),
        Decimal(k.v),
        Decimal(k.q),
        k.n,
        k.x,
    )


class Variant:
    """One way of decoding, timed call by call; ``decimals`` replaces the module's cache."""

    def __init__(self, label: str, decode: Callable[[Any], object], decimals: Any = None) -> None:
        self.label, self.decode, self.decimals = label, decode, decimals
        self.samples: list[int] = []

    def run(self, frames: list[Any], timed: bool) -> None:
        namespace = vars(parse_market)
        shipped = namespace["DECIMALS"]
        namespace["DECIMALS"] = shipped if self.decimals is None else self.decimals
        try:
            decode, clock, samples = self.decode, time.perf_counter_ns, self.samples
            for frame in frames:
                start = clock()
                decode(frame)
                end = clock()
                if timed:
                    samples.append(end - start)
        finally:
            namespace["DECIMALS"] = shipped

    def report(self) -> int:
        ordered = sorted(self.samples)
        median = int(statistics.median(ordered))
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"  {self.label:<44} median {median:6,d} ns   p99 {p99:7,d} ns")
        return median


def compare(variants: list[Variant], frames: list[Any], calls: int) -> None:
    """Interleave the variants block by block over the same frames, so background load on a
    shared machine hits them alike; each variant decodes every frame once, in order."""
    for variant in variants:
        variant.run(frames[:WARMUP], timed=False)
    gc.collect()
    timed = frames[WARMUP : WARMUP + calls]
    for start in range(0, len(timed), BLOCK):
        for variant in variants:
            variant.run(timed[start : start + BLOCK], timed=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--bytes", action="store_true", help="feed bytes instead of str")
    arguments = parser.parse_args()
    calls = arguments.calls
    clock = time.perf_counter_ns
    timer = statistics.median([-clock() + clock() for _ in range(100_000)])
    print(f"{calls:,} timed calls per line after {WARMUP:,} warm-up calls; timer cost {timer} ns")
    print("input:", "bytes" if arguments.bytes else "str (what aiohttp hands out for TEXT)")
    medians = {}
    for name, build in (
        ("kline", kline_frames),
        ("bookTicker", book_ticker_frames),
        ("markPrice", mark_price_frames),
    ):
        texts, source = build(calls + WARMUP)
        frames: list[Any] = [t.encode() for t in texts] if arguments.bytes else texts
        if len(frames) < calls + WARMUP:  # fewer recorded frames than calls: replay them
            frames = (frames * (1 + (calls + WARMUP) // len(frames)))[: calls + WARMUP]
        print(f"({name}) {source}")
        variants = [
            Variant("decode_market_frame, decimal cache", decode_market_frame),
            Variant("decode_market_frame, no decimal cache", decode_market_frame, NoCache()),
        ]
        if name == "kline":
            variants.append(Variant("naive reference (Decimal(), constructor)", naive_kline))
        compare(variants, frames, calls)
        medians[name] = variants[0].report()
        for variant in variants[1:]:
            variant.report()
    verdict = "met" if medians["kline"] <= TARGET_NS else "NOT met on this machine"
    print(f"target: kline decode median <= {TARGET_NS} ns  ({medians['kline']} ns: {verdict})")


if __name__ == "__main__":
    main()
