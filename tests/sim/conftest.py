"""Fixtures for the simulator tests: the recorded Binance klines, when present."""

from tests.recorded_data import kline_fixtures

__all__ = ["kline_fixtures"]
