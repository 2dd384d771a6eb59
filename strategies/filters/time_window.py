"""Time-of-day / day-of-week entry filter, in UTC, judged at the signal's time, plus the
helpers that read its windows from config text ("08:00-16:30", "mon-fri").

A window that wraps midnight ("22:00-02:00") belongs to no single day: the weekday judged is
always that of the moment itself. With days mon-fri, Friday 23:00 and Monday 01:00 are
inside, Saturday 01:00 (the tail of Friday night) and Sunday 23:00 are outside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from app.domain import Signal
from strategies.filters.base import Stateless, check_name
from strategies.trade.state import ALLOW, Prices, TradeState, Verdict

__all__ = ["DAY_NAMES", "TimeWindow", "parse_days", "parse_hours"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MINUTES_PER_DAY = 24 * 60
_MS_PER_MINUTE = 60_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(text: str) -> tuple[int, int]:
    """ "HH:MM-HH:MM" (UTC, end exclusive, "24:00" allowed as an end) as minutes of the day;
    the end may come before the start for a window that wraps midnight."""
    match = _HOURS.match(text)
    if match is None:
        raise ValueError(f"hours {text!r}: expected HH:MM-HH:MM, e.g. 08:00-16:30")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or start_m > 59:
        raise ValueError(f"hours {text!r}: the start must be 00:00 to 23:59")
    if end_m > 59 or end_h > 24 or (end_h == 24 and end_m != 0):
        raise ValueError(f"hours {text!r}: the end must be 00:00 to 24:00")
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if start == end:
        raise ValueError(f"hours {text!r}: start equals end; write 00:00-24:00 for all day")
    return start, end


def _day_number(text: str) -> int:
    word = text.strip().lower()
    for names in (DAY_NAMES, _FULL_DAY_NAMES):
        if word in names:
            return names.index(word)
    raise ValueError(f"unknown day {text!r}: use mon, tue, wed, thu, fri, sat or sun")


def parse_days(names: Iterable[str] | str) -> frozenset[int]:
    """Day names ("mon" or "monday", any case) and ranges ("mon-fri", "sat-mon" wraps) as
    weekday numbers, 0 = Monday. A single string may list them with commas."""
    items = names.split(",") if isinstance(names, str) else list(names)
    days: set[int] = set()
    for item in items:
        if "-" in item:
            first_text, _, last_text = item.partition("-")
            first, last = _day_number(first_text), _day_number(last_text)
            days.update((first + offset) % 7 for offset in range((last - first) % 7 + 1))
        else:
            days.add(_day_number(item))
    if not days:
        raise ValueError("days: give at least one day")
    return frozenset(days)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _days_text(days: frozenset[int]) -> str:
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        DAY_NAMES[run[0]] if len(run) == 1 else f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}"
        for run in runs
    )


class TimeWindow(Stateless):
    """Allows entries on `days` (weekday numbers, 0 = Monday; None = every day) within any of
    `hours` ((start_minute, end_minute) of the UTC day, start inclusive, end exclusive,
    start > end wrapping midnight; empty = all day)."""

    __slots__ = ("days", "hours", "name")

    def __init__(
        self,
        days: Iterable[int] | None = None,
        hours: Iterable[tuple[int, int]] = (),
        *,
        name: str = "time_window",
    ) -> None:
        check_name(name)
        self.name = name
        self.days = None if days is None else frozenset(days)
        if self.days is not None:
            if not self.days:
                raise ValueError("days must not be empty (None means every day)")
            if not self.days <= set(range(7)):
                raise ValueError(f"days must be weekday numbers 0-6, got {sorted(self.days)}")
        self.hours = tuple(hours)
        for start, end in self.hours:
            if not (0 <= start < MINUTES_PER_DAY and 0 <= end <= MINUTES_PER_DAY):
                raise ValueError(f"hours ({start}, {end}): minutes must be within 0-1440")
            if start == end:
                raise ValueError(f"hours ({start}, {end}): start equals end")

    @classmethod
    def of(
        cls,
        days: Iterable[str] | str | None = None,
        hours: Iterable[str] = (),
        *,
        name: str = "time_window",
    ) -> TimeWindow:
        """The window from config text: TimeWindow.of("mon-fri", ["08:00-16:30"])."""
        return cls(
            None if days is None else parse_days(days),
            [parse_hours(text) for text in hours],
            name=name,
        )

    def contains(self, ts_ms: int) -> bool:
        weekday = ((ts_ms // 86_400_000) + 3) % 7  # 1970-01-01 was a Thursday
        if self.days is not None and weekday not in self.days:
            return False
        if not self.hours:
            return True
        minute = ts_ms // _MS_PER_MINUTE % MINUTES_PER_DAY
        return any(
            start <= minute < end if start < end else minute >= start or minute < end
            for start, end in self.hours
        )

    def describe(self) -> str:
        parts = []
        if self.days is not None:
            parts.append(_days_text(self.days))
        if self.hours:
            parts.append(",".join(f"{_clock(start)}-{_clock(end)}" for start, end in self.hours))
        return " ".join(parts) or "any time"

    def allow_entry(self, signal: Signal, state: TradeState, prices: Prices) -> Verdict:
        if self.contains(signal.ts_ms):
            return ALLOW
        moment = _EPOCH + timedelta(milliseconds=signal.ts_ms)
        when = f"{DAY_NAMES[moment.weekday()].capitalize()} {moment:%H:%M} UTC"
        return Verdict.refuse(f"{self.name}: {when} outside {self.describe()}")
