"""``ExactDecimal`` keeps every amount exact on SQLite (text) and PostgreSQL (NUMERIC).

Rows go through a real table of a real database (``db_settings``: SQLite file and PostgreSQL
schema) and come back through a fresh connection, so nothing is answered from memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from config.database import DatabaseSettings
from database.engine import make_engine
from database.types import ExactDecimal

amounts_metadata = MetaData()
amounts = Table(
    "amounts",
    amounts_metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", ExactDecimal(), nullable=True),
)

EXACT_VALUES = [
    Decimal("0.00000001"),
    Decimal("1E-8"),
    Decimal("123456789012.123456789"),
    Decimal("-98765.4321"),
    Decimal("-0.00000001"),
    Decimal("0"),
    Decimal("1.10000000"),
    Decimal("50000"),
    # More digits than the default 28-digit context: still exact (nothing does arithmetic).
    Decimal("12345678901234567890.12345678901234567890"),
    Decimal("0.1"),
]


@pytest.fixture
def engine(db_settings: DatabaseSettings) -> Iterator[Engine]:
    engine = make_engine(db_settings)
    amounts_metadata.create_all(engine)
    yield engine
    engine.dispose()


def store_and_load(engine: Engine, values: list[Decimal | None]) -> list[Any]:
    with engine.begin() as connection:
        connection.execute(amounts.delete())
        connection.execute(insert(amounts), [{"id": i, "amount": v} for i, v in enumerate(values)])
    engine.dispose()  # a new connection: what comes back was read from the database
    with engine.connect() as connection:
        return list(connection.scalars(select(amounts.c.amount).order_by(amounts.c.id)))


def test_amounts_round_trip_exactly(engine: Engine) -> None:
    loaded = store_and_load(engine, [*EXACT_VALUES, None])

    assert loaded[-1] is None
    for value, back in zip(EXACT_VALUES, loaded, strict=False):
        assert isinstance(back, Decimal)
        assert back == value
        assert back.as_tuple().sign == value.as_tuple().sign


def test_sqlite_keeps_the_exact_text_trailing_zeros_included(tmp_path: Any) -> None:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 't.db'}"))
    amounts_metadata.create_all(engine)
    try:
        loaded = store_and_load(engine, list(EXACT_VALUES))
        assert [str(value) for value in loaded] == [str(value) for value in EXACT_VALUES]
        with engine.connect() as connection:
            raw = connection.exec_driver_sql("SELECT amount, typeof(amount) FROM amounts").all()
        assert ("1.10000000", "text") in raw
        assert ("1E-8", "text") in raw
    finally:
        engine.dispose()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
            lambda d: len(d.as_tuple().digits) <= 38 and -30 <= int(d.as_tuple().exponent) <= 20
        ),
        min_size=1,
        max_size=20,
    )
)
def test_any_finite_amount_round_trips(engine: Engine, values: list[Decimal]) -> None:
    assert store_and_load(engine, list(values)) == values


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (0.1, TypeError, "takes Decimal, not float"),
        (Decimal("NaN"), ValueError, "not a finite amount: NaN"),
        (Decimal("sNaN"), ValueError, "not a finite amount"),
        (Decimal("Infinity"), ValueError, "not a finite amount: Infinity"),
        (Decimal("-Infinity"), ValueError, "not a finite amount: -Infinity"),
    ],
)
def test_floats_and_non_finite_values_are_refused(
    engine: Engine, value: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(StatementError) as caught, engine.begin() as connection:
        connection.execute(insert(amounts), [{"id": 1, "amount": value}])
    assert isinstance(caught.value.orig, error)
    assert words in str(caught.value.orig)
    with engine.connect() as connection:
        assert list(connection.scalars(select(amounts.c.amount))) == []
