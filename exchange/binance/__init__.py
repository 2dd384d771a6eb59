"""Binance Spot and USDⓈ-M Futures client: REST, WebSocket API, market and user-data streams.

Binance field names (``"s"``, ``"X"``, ``"z"``) appear only inside this package; everything it
hands out is a domain type from ``app.domain`` or a small typed record defined here.
"""
