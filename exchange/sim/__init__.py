"""Binance-compatible exchange simulator.

A stand-in for Binance Spot and USD-M Futures that tradebus can be run and tested against
without touching the network. Modules so far (this list grows as the simulator does):

- ``price_sources``: where the simulator's prices come from: the ``PriceSource`` protocol,
  ``ReplayMarket`` (recorded klines) and ``intrabar_updates`` (in-progress stream updates).
- ``kline_files``: loading Binance public-data (data.binance.vision) kline CSV and zip files.
- ``synthetic``: ``SyntheticMarket``, a seeded, regime-switching price generator.
"""
