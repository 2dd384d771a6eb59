"""The simulated clock that lets time-based code be tested without waiting."""

from __future__ import annotations

import asyncio

import pytest

from app.domain import ManualClock, SystemClock


async def test_sleepers_wake_in_deadline_order_only_when_time_passes() -> None:
    clock = ManualClock(start_ms=1_000)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("b", 2.0), ("a", 1.0), ("c", 3.0))]
    await clock.wait_for_sleepers(3)
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == ["a"]
    clock.advance(10)
    await asyncio.gather(*tasks)
    assert woke == ["a", "b", "c"]
    assert clock.now_ms() == 12_500


def test_time_never_goes_back() -> None:
    clock = ManualClock(start_ms=5_000)
    clock.set_ms(6_000)
    assert clock.now().timestamp() == 6.0
    with pytest.raises(ValueError, match="back"):
        clock.set_ms(1_000)
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)


def test_system_clock_is_utc_and_consistent() -> None:
    clock = SystemClock()
    assert clock.now().utcoffset() is not None
    assert abs(clock.now().timestamp() * 1000 - clock.now_ms()) < 1_000
