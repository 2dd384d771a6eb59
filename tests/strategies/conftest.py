"""Fixtures for the strategy tests: the recorded klines, loaded once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.recorded_data import kline_fixtures  # noqa: F401
from tests.strategies.kline_data import Bars, load_recorded_series

_LOADED: dict[Path, list[Bars]] = {}


@pytest.fixture
def recorded_series(kline_fixtures: Path) -> list[Bars]:  # noqa: F811
    """Every recorded kline series (skips when the recordings are absent)."""
    if kline_fixtures not in _LOADED:
        _LOADED[kline_fixtures] = load_recorded_series(kline_fixtures)
    series = _LOADED[kline_fixtures]
    if not series:
        pytest.skip(f"no kline CSVs found under {kline_fixtures}")
    return series
