"""Fixtures for the simulator tests: the recorded Binance klines and payloads, when present."""

from tests.recorded_data import binance_fixtures, kline_fixtures

__all__ = ["binance_fixtures", "kline_fixtures"]
