"""The order state machine, pair by pair, against a table written out here independently.

`A` the order moves (or takes the report's new data), `S` the report is older than what we
know (ignored; a fill it carries is still booked), `R` impossible for one order (refused,
logged and counted). Every one of the 100 (from, to) pairs is asserted.
"""

from __future__ import annotations

import pytest

from app.domain.enums import OrderStatus
from executor.state_machine import TRANSITIONS, Verdict, decide, is_acknowledged

S = OrderStatus
COLUMNS = [
    S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED,
    S.REJECTED, S.EXPIRED, S.EXPIRED_IN_MATCH, S.UNKNOWN,
]  # fmt: skip
# from \ to:   PN NEW PF FIL PC CAN REJ EXP EIM UNK
TABLE = {
    S.PENDING_NEW:      "S A A A R A A A A A",
    S.UNKNOWN:          "R A A A R A A A A S",
    S.NEW:              "R A A A A A R A A R",
    S.PARTIALLY_FILLED: "R S A A A A R A A R",
    S.PENDING_CANCEL:   "R S S A S A R A A R",
    S.FILLED:           "R S S S R R R R R R",
    S.CANCELED:         "R S S R R S R R R R",
    S.REJECTED:         "R R R R R R S R R R",
    S.EXPIRED:          "R S S R R R R S R R",
    S.EXPIRED_IN_MATCH: "R S S R R R R R S R",
}  # fmt: skip
VERDICTS = {"A": Verdict.APPLY, "S": Verdict.STALE, "R": Verdict.REFUSE}
PAIRS = [
    (current, reported, VERDICTS[mark])
    for current, row in TABLE.items()
    for reported, mark in zip(COLUMNS, row.split(), strict=True)
]


def test_the_table_covers_every_pair_of_statuses() -> None:
    assert set(TABLE) == set(OrderStatus)
    assert set(COLUMNS) == set(OrderStatus)
    assert len(PAIRS) == len(OrderStatus) ** 2 == len(TRANSITIONS)


@pytest.mark.parametrize(("current", "reported", "expected"), PAIRS)
def test_transition(current: OrderStatus, reported: OrderStatus, expected: Verdict) -> None:
    assert decide(current, reported) is expected


@pytest.mark.parametrize("final", [s for s in OrderStatus if s.is_final])
def test_final_states_are_final(final: OrderStatus) -> None:
    assert all(decide(final, other) is not Verdict.APPLY for other in OrderStatus)


def test_unknown_is_only_entered_from_pending_new_and_never_left_for_a_resend() -> None:
    entering = [s for s in OrderStatus if decide(s, S.UNKNOWN) is Verdict.APPLY]
    assert entering == [S.PENDING_NEW]
    assert decide(S.UNKNOWN, S.PENDING_NEW) is Verdict.REFUSE


def test_older_reports_never_move_an_order_backwards() -> None:
    rank = {S.NEW: 1, S.PARTIALLY_FILLED: 2, S.FILLED: 3}
    for current, a in rank.items():
        for reported, b in rank.items():
            if b < a:
                assert decide(current, reported) is Verdict.STALE


def test_acknowledged() -> None:
    assert not is_acknowledged(S.PENDING_NEW)
    assert not is_acknowledged(S.UNKNOWN)
    assert all(is_acknowledged(s) for s in OrderStatus if s not in (S.PENDING_NEW, S.UNKNOWN))
