"""Binance-compatible exchange simulator.

A stand-in for Binance Spot and USD-M Futures that tradebus can be run and tested against
without touching the network. Modules so far (this list grows as the simulator does):

- ``price_sources``: where the simulator's prices come from: the ``PriceSource`` protocol,
  ``ReplayMarket`` (recorded klines) and ``intrabar_updates`` (in-progress stream updates).
- ``kline_files``: loading Binance public-data (data.binance.vision) kline CSV and zip files.
- ``synthetic``: ``SyntheticMarket``, a seeded, regime-switching price generator.
- ``catalog``: the simulated symbols and their exchangeInfo / fundingInfo answers.
- ``replies``: Binance-shaped answers (error codes and messages, 429/418, usage headers).
- ``auth``: request verification as Binance does it (HMAC/Ed25519, timestamp, recvWindow).
- ``market_feed``: price sources → kline, bookTicker and markPrice frames over simulated time.
- ``stream_server``: the ``/stream`` and ``/ws/<name>`` market-stream WebSocket routes.

Not built yet: the REST and WebSocket-API server, matching and accounts, user-data streams,
fault injection, persisted state, ``tradebus sim`` and the embedded default in ``tradebus run``.
"""
