"""Strategies: pure, symbol-bound decision logic and the machinery that runs it.

- `base` — the Strategy API (`Strategy`, `StrategyParams`, `Timer`);
- `context` — the symbol-bound door every event and signal passes through;
- `runner` — drives one strategy object for one symbol, identically in every mode;
- `worker` — the daemon component: many symbols per instance, bus in and out;
- `indicators/` — incremental O(1) indicators; `vwap_reversion`, `momentum` — the built-ins;
- `registry` — built-ins plus `tradebus.strategies` entry points.
"""
