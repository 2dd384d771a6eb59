"""The ``[database]`` section: where tradebus records what it did, and how hard it tries.

SQLite by default (one file beside the heartbeat); PostgreSQL through a DSN
(``TRADEBUS_DATABASE__URL=postgresql://user@host/db``). A password never goes in the URL,
which is shown in logs and the heartbeat: it is refused there, and taken from
``database.password`` (``TRADEBUS_DATABASE__PASSWORD``, a secret) or libpq's own
``PGPASSFILE``/``.pgpass``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.fields import SECTION_CONFIG

__all__ = ["DatabaseSettings"]

_SCHEMES = ("sqlite", "postgresql")


class DatabaseSettings(BaseModel):
    model_config = SECTION_CONFIG

    url: str = "sqlite:///status/tradebus.db"
    password: SecretStr | None = None
    # Apply pending migrations when the daemon starts (else it refuses an outdated schema).
    auto_upgrade: bool = True
    # SQLite: how long a writer waits for a lock, and the durability of a commit. NORMAL in
    # WAL mode survives a killed process (the daemon's failure mode); FULL also a power cut.
    busy_timeout_ms: int = Field(default=5_000, ge=0, le=600_000)
    synchronous: Literal["normal", "full"] = "normal"
    # The recorder: rows per transaction, how long a row may wait for its batch, queue bound.
    batch_max_rows: int = Field(default=5_000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=0.25, gt=0, le=60)
    queue_max_rows: int = Field(default=200_000, ge=1_000)
    # A failed write is retried this many times (backoff doubling from retry_initial_s);
    # then the recorder alerts and trading halts rather than running unrecorded.
    write_attempts: int = Field(default=5, ge=1, le=20)
    retry_initial_s: float = Field(default=0.2, gt=0, le=30)
    # Equity and metrics snapshots.
    snapshot_interval_s: float = Field(default=60.0, ge=1)
    # Reconciliation with the exchange: at start (always) and then every this many seconds.
    reconcile_interval_s: float = Field(default=60.0, ge=5)
    # A position the exchange reports differently from the DB: take the exchange's (default,
    # and alert), or halt trading until a human looks.
    position_mismatch: Literal["trust_exchange", "halt"] = "trust_exchange"

    @field_validator("url")
    @classmethod
    def _known_backend_without_password(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (sqlite:///path or postgresql://…)") from None
        if url.get_backend_name() not in _SCHEMES:
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}: use sqlite:/// or postgresql://"
            )
        if url.password is not None:
            raise ValueError(
                "a password in the URL would be shown in logs: put it in database.password "
                "(TRADEBUS_DATABASE__PASSWORD) instead"
            )
        return value
