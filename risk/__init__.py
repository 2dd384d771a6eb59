"""The risk gate: every strategy signal becomes one approved order or one named denial.

Consumes `signal.*`, `order.update`, `account.update`, `market.kline.*`, `market.book.*`,
`market.mark.*` and `system.control`; produces `order.request`, `OrderDenied` on
`order.update`, `risk.state`, `system.alert` and `system.ack`.

- `gate` — the component (`RiskGate`): handlers, trading state application, kill switch,
  persistence, heartbeat section.
- `orders` — signal → order shaping: size, type, passive limit price, rounding and exchange
  filters; the closes in flight that clip every exit.
- `client_ids` — deterministic, prefixed `newClientOrderId`s (the identity of an intent).
- `state_store` — the JSON state file that carries a halt across restarts.
- Pure core: `book` (positions, PnL, equity, pending orders), `checks` (pre-trade checks),
  `guards` (consecutive losses, drawdown, minimum equity), `trading_state` (ACTIVE / REDUCING /
  HALTED), `order_rate` (a share of the exchange's ORDERS limits), `funding` (funding times
  from the mark-price stream).
"""

from risk.client_ids import client_order_id, flatten_client_order_id, is_ours
from risk.gate import FOREIGN, RiskGate

__all__ = ["FOREIGN", "RiskGate", "client_order_id", "flatten_client_order_id", "is_ours"]
