"""Shared fixtures for the simulator tests.

``../shared/fixtures/klines`` holds real Binance public-data kline files beside the
repository; a fresh clone has no such folder, so every test that reads it skips cleanly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


@pytest.fixture
def kline_fixtures() -> Path:
    folder = SHARED_FIXTURES / "klines"
    if not folder.is_dir():
        pytest.skip(f"recorded klines not present at {folder}")
    return folder
