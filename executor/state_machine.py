"""The order state machine: which status may follow which, for one order.

Every Binance status (NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED,
EXPIRED_IN_MATCH; PENDING_NEW and PENDING_CANCEL as Binance spells them) plus the states only
we can know: PENDING_NEW (intent accepted, not yet acknowledged), PENDING_CANCEL (cancel sent)
and UNKNOWN (sent, the answer was lost). Execution types do not add states: TRADE and
futures CALCULATED (liquidation, ADL, settlement) carry a fill and a NEW/PARTIALLY_FILLED/
FILLED status, TRADE_PREVENTION ends in EXPIRED_IN_MATCH (or leaves the order open with less
to fill), AMENDMENT (futures modify) and REPLACED keep the order NEW or PARTIALLY_FILLED with
a new price or quantity — so the status alone decides the transition and the fill, when the
event has one, is booked whatever the verdict (a trade is money, whatever else is wrong).

Each (current, reported) pair has one verdict:

- ``APPLY``: the order moves to the reported status (or stays in it with new data, e.g. a
  second partial fill or an amendment).
- ``STALE``: the report is older than what we know — NEW after PARTIALLY_FILLED, a REST
  answer arriving after the stream's fill, a duplicate — and must not move the order back.
- ``REFUSE``: the pair cannot happen to one order (a filled order cancelled, an acknowledged
  order becoming UNKNOWN, anything after REJECTED): logged as ``order_transition_refused``
  and counted by the caller, never applied.

Final states (FILLED, CANCELED, REJECTED, EXPIRED, EXPIRED_IN_MATCH) are final: from them
only earlier open statuses (STALE) and the same status (a duplicate, STALE) are not refused.
The table is written out in full below and in the tests, so a change to it is a deliberate
change to both.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from app.domain.enums import OrderStatus

__all__ = ["OPEN_STATUSES", "TRANSITIONS", "Verdict", "decide", "is_acknowledged"]


class Verdict(StrEnum):
    APPLY = "apply"
    STALE = "stale"
    REFUSE = "refuse"


_A, _S, _R = Verdict.APPLY, Verdict.STALE, Verdict.REFUSE
PN = OrderStatus.PENDING_NEW
NEW = OrderStatus.NEW
PF = OrderStatus.PARTIALLY_FILLED
FIL = OrderStatus.FILLED
PC = OrderStatus.PENDING_CANCEL
CAN = OrderStatus.CANCELED
REJ = OrderStatus.REJECTED
EXP = OrderStatus.EXPIRED
EIM = OrderStatus.EXPIRED_IN_MATCH
UNK = OrderStatus.UNKNOWN

# Column order of every row below.
_COLUMNS: Final = (PN, NEW, PF, FIL, PC, CAN, REJ, EXP, EIM, UNK)

# fmt: off
_ROWS: Final[dict[OrderStatus, tuple[Verdict, ...]]] = {
    #           PN  NEW  PF FIL  PC CAN REJ EXP EIM UNK
    # Not yet acknowledged: anything the exchange says settles it; cancels wait for the ack.
    PN:        (_S, _A, _A, _A, _R, _A, _A, _A, _A, _A),
    # Answer lost: the stream or a query settles it; never back to PENDING_NEW (= re-send).
    UNK:       (_R, _A, _A, _A, _R, _A, _A, _A, _A, _S),
    # Open and acknowledged. REJECTED only ever answers a placement, never an open order.
    NEW:       (_R, _A, _A, _A, _A, _A, _R, _A, _A, _R),
    PF:        (_R, _S, _A, _A, _A, _A, _R, _A, _A, _R),
    # Cancel sent: open statuses are older news (a fill is still booked); any end applies.
    PC:        (_R, _S, _S, _A, _S, _A, _R, _A, _A, _R),
    # Final: only older open statuses (STALE) and duplicates (STALE) are not refused.
    FIL:       (_R, _S, _S, _S, _R, _R, _R, _R, _R, _R),
    CAN:       (_R, _S, _S, _R, _R, _S, _R, _R, _R, _R),
    REJ:       (_R, _R, _R, _R, _R, _R, _S, _R, _R, _R),
    EXP:       (_R, _S, _S, _R, _R, _R, _R, _S, _R, _R),
    EIM:       (_R, _S, _S, _R, _R, _R, _R, _R, _S, _R),
}
# fmt: on

TRANSITIONS: Final[dict[tuple[OrderStatus, OrderStatus], Verdict]] = {
    (current, reported): verdict
    for current, row in _ROWS.items()
    for reported, verdict in zip(_COLUMNS, row, strict=True)
}
if len(TRANSITIONS) != len(OrderStatus) ** 2:  # pragma: no cover - a new status needs a row
    raise RuntimeError("the order transition table must cover every pair of statuses")

OPEN_STATUSES: Final = frozenset({NEW, PF, PC})
_UNACKNOWLEDGED: Final = frozenset({PN, UNK})


def decide(current: OrderStatus, reported: OrderStatus) -> Verdict:
    """The verdict for an order in ``current`` that is reported (or set) to ``reported``."""
    return TRANSITIONS[(current, reported)]


def is_acknowledged(status: OrderStatus) -> bool:
    """The exchange has told us the order's fate at least once (it is past PENDING_NEW and
    UNKNOWN): only such an order can be cancelled or replaced."""
    return status not in _UNACKNOWLEDGED
