"""The order executor: consumes ``order.request``, produces ``order.update``.

- ``live``: the live executor component (Binance or the simulator), over a ``VenuePort``
  (``venue_port``); placement with retries and UNKNOWN resolution (``placement``), cancel,
  cancel-replace, futures modify and TTLs (``amend``), HALT/FLATTEN acknowledgements
  (``halt``), the shared apply-and-publish path (``core``, ``stamping``), the order book
  (``tracked``) and the order state machine (``state_machine``); net positions for the
  protective-stop hook (``positions``).
- ``paper``: the paper executor with the same interface (virtual fills and balances).
- ``futures_setup`` / ``protective_stops``: USDⓈ-M account set-up at start, exchange-side stops.
"""
