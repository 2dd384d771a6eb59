"""tradebus: a self-hosted asyncio trading daemon for Binance Spot and USD-M Futures."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tradebus")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
