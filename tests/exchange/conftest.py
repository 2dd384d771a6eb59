"""Fixtures for the exchange-layer tests: the recorded Binance payloads, when present."""

from tests.recorded_data import binance_fixtures, kline_fixtures

__all__ = ["binance_fixtures", "kline_fixtures"]
