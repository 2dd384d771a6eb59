"""Fixtures for the recorded Binance data beside the repository (``../shared/fixtures``).

A fresh clone has no such folder, so every test that reads it skips cleanly instead of
failing. Conftests import these fixtures to make them available in their folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture
def binance_fixtures() -> Path:
    folder = SHARED_FIXTURES / "binance"
    if not folder.is_dir():
        pytest.skip(f"recorded Binance payloads not present at {folder}")
    return folder


@pytest.fixture
def kline_fixtures() -> Path:
    folder = SHARED_FIXTURES / "klines"
    if not folder.is_dir():
        pytest.skip(f"recorded klines not present at {folder}")
    return folder
