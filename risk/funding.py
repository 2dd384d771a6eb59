"""When futures funding happens, per symbol, read from the mark-price stream (never assumed).

Binance's mark-price events carry the next funding time `T`; funding intervals differ by symbol
(8 h, 4 h, 1 h) and can change, so nothing here knows an interval. When `T` moves forward, the
previous `T` was the last funding. Pure: the gate feeds `MarkPrice` messages and asks with the
current time.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain import MarkPrice

__all__ = ["FundingClock", "fmt_clock", "fmt_duration"]

_DAY_MS = 86_400_000


def fmt_clock(ts_ms: int) -> str:
    """Epoch ms as the UTC time of day, "08:00:00 UTC"."""
    seconds = (ts_ms % _DAY_MS) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d} UTC"


def fmt_duration(ms: int) -> str:
    """A duration rounded down to the second: "45s", "3m12s", "5m", "2h05m00s", "250ms"."""
    if 0 < ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


@dataclass(slots=True)
class _Funding:
    next_ms: int
    last_ms: int | None = None


class FundingClock:
    """Next funding time per symbol, from the mark-price stream (never assumed).

    A symbol without a mark price yet is not gated (`denial` returns None): spot symbols never
    have one, and a futures symbol gets its first mark within seconds of the stream starting,
    so refusing would only block entries at startup on no evidence.
    """

    def __init__(self) -> None:
        self._symbols: dict[str, _Funding] = {}

    def on_mark(self, mark: MarkPrice) -> None:
        """Remember `next_funding_time_ms`; when it moves forward, the old one becomes the last
        funding time. A time that moves back (the symbol's interval was shortened) replaces the
        next one; 0 (no funding: delivery contracts) is ignored."""
        if mark.next_funding_time_ms <= 0:
            return
        known = self._symbols.get(mark.symbol)
        if known is None:
            self._symbols[mark.symbol] = _Funding(mark.next_funding_time_ms)
        elif mark.next_funding_time_ms > known.next_ms:
            known.last_ms = known.next_ms
            known.next_ms = mark.next_funding_time_ms
        else:
            known.next_ms = mark.next_funding_time_ms

    def next_funding_ms(self, symbol: str) -> int | None:
        known = self._symbols.get(symbol)
        return known.next_ms if known is not None else None

    def last_funding_ms(self, symbol: str) -> int | None:
        known = self._symbols.get(symbol)
        return known.last_ms if known is not None else None

    def denial(self, symbol: str, now_ms: int, *, before_ms: int, after_ms: int) -> str | None:
        """Why an entry now falls in the window [funding - before, funding + after), or None.
        None as well for a symbol without a mark price yet (see the class docstring)."""
        known = self._symbols.get(symbol)
        if known is None or (before_ms <= 0 and after_ms <= 0):
            return None
        window = f"(no entries {fmt_duration(before_ms)} before to {fmt_duration(after_ms)} after)"
        # The "next" time may already be past when the stream has not moved it on yet.
        for funding_ms in (known.next_ms, known.last_ms):
            if funding_ms is None or not funding_ms - before_ms <= now_ms < funding_ms + after_ms:
                continue
            if now_ms < funding_ms:
                return (
                    f"funding_window: next funding at {fmt_clock(funding_ms)} in "
                    f"{fmt_duration(funding_ms - now_ms)} {window}"
                )
            return (
                f"funding_window: last funding at {fmt_clock(funding_ms)} "
                f"{fmt_duration(now_ms - funding_ms)} ago {window}"
            )
        return None
