"""The simulator's state file: real files in tmp_path, a failing rename, the periodic saver
driven by a ManualClock."""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain.clock import ManualClock
from exchange.sim.state_file import StateFileError, StateSaver, load_state, save_state


def test_round_trip_with_decimals_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    assert load_state(path) is None
    save_state(path, {"balances": {"USDT": Decimal("10.50")}, "orders": [(1, "NEW")], "n": 3})
    assert load_state(path) == {"balances": {"USDT": "10.50"}, "orders": [[1, "NEW"]], "n": 3}
    document = json.loads(path.read_text())
    assert (document["format"], document["version"]) == ("tradebus-sim-state", 1)
    assert [p.name for p in tmp_path.iterdir()] == ["sim.json"]  # no temp file left


@pytest.mark.parametrize(
    ("state", "where"),
    [
        ({"a": {"b": 1.5}}, "/a/b"),
        ({"a": [Decimal("NaN")]}, "/a/0"),
        ({"a": {1: "x"}}, "key 1"),
        ({"a": {1, 2}}, "set"),
    ],
)
def test_refuses_what_json_cannot_hold_exactly(
    tmp_path: Path, state: dict[str, Any], where: str
) -> None:
    path = tmp_path / "sim.json"
    save_state(path, {"old": True})
    with pytest.raises(StateFileError, match=where):
        save_state(path, state)
    assert load_state(path) == {"old": True}


def test_failed_rename_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sim.json"
    save_state(path, {"generation": 1})

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_state(path, {"generation": 2})
    monkeypatch.undo()
    assert load_state(path) == {"generation": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["sim.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"format": "tradebus-sim-state", "vers', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"hello": 1}', "not a simulator state file"),
        (b'{"format": "tradebus-sim-state", "version": 2, "state": {}}', "version 2"),
        (b'{"format": "tradebus-sim-state", "version": 1, "state": []}', "no state object"),
    ],
)
def test_bad_files_raise_with_path_and_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "sim.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match=reason) as caught:
        load_state(path)
    assert caught.value.path == path
    assert str(path) in str(caught.value)


async def test_saver_saves_only_when_dirty_each_interval(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    clock = ManualClock()
    state = {"n": 0}
    saver = StateSaver(path, lambda: dict(state), clock, interval_s=5)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(saver.run())
        await clock.wait_for_sleepers(1)
        clock.advance(5)
        await clock.wait_for_sleepers(1)
        assert saver.saves == 0  # nothing changed yet
        assert load_state(path) is None

        state["n"] = 1
        saver.mark_dirty()
        clock.advance(4)
        await asyncio.sleep(0)
        assert load_state(path) is None  # not before the interval
        clock.advance(1)
        await clock.wait_for_sleepers(1)
        assert load_state(path) == {"n": 1}
        assert (saver.saves, saver.dirty) == (1, False)

        state["n"] = 2
        saver.mark_dirty()
        task.cancel()
    saver.flush()
    assert load_state(path) == {"n": 2}
    saver.flush()  # clean: no second write
    assert saver.saves == 2


async def test_saver_retries_after_a_failed_save(tmp_path: Path) -> None:
    blocked = tmp_path / "missing-dir" / "sim.json"
    clock = ManualClock()
    saver = StateSaver(blocked, lambda: {"n": 1}, clock, interval_s=1)
    saver.mark_dirty()
    async with asyncio.TaskGroup() as group:
        task = group.create_task(saver.run())
        await clock.wait_for_sleepers(1)
        clock.advance(1)
        await clock.wait_for_sleepers(1)
        assert (saver.failures, saver.dirty) == (1, True)
        os.mkdir(blocked.parent)
        clock.advance(1)
        await clock.wait_for_sleepers(1)
        assert (saver.saves, saver.dirty) == (1, False)
        task.cancel()
    assert load_state(blocked) == {"n": 1}


def test_flush_raises_when_it_cannot_save(tmp_path: Path) -> None:
    saver = StateSaver(tmp_path / "no" / "sim.json", lambda: {}, ManualClock(), interval_s=1)
    saver.mark_dirty()
    with pytest.raises(FileNotFoundError):
        saver.flush()
    assert saver.dirty
