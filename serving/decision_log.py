"""The decision log: every score given, with the model that gave it, and what happened after.

Where it sits: written by scoring (the API and batch worklists, next stage), read by monitoring
and auditors. SQLAlchemy Core, SQLite in WAL mode by default, PostgreSQL by URL. Household ids
are pseudonymised with a keyed hash (HMAC-SHA256) before they are stored: the raw id never is.
The key comes from outside the code (``NONRECOURS_PSEUDONYM_KEY``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Engine

PSEUDONYM_KEY_ENV = "NONRECOURS_PSEUDONYM_KEY"

metadata = MetaData()

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("household_pseudonym", String(64), nullable=False, index=True),
    Column("scored_at", DateTime(timezone=True), nullable=False, index=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(50), nullable=False),
    Column("benefit", String(32), nullable=False),
    Column("p_unclaimed", Float, nullable=False),
    Column("estimated_monthly_amount", Float, nullable=False),
    Column("expected_unclaimed_monthly", Float, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("features", JSON, nullable=False),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("household_pseudonym", String(64), nullable=False, index=True),
    Column("benefit", String(32), nullable=False),
    Column("contacted", Boolean, nullable=False),
    Column("claimed", Boolean, nullable=True),
    Column("amount_granted", Float, nullable=True),
    Column("outcome_date", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


def pseudonymise(household_id: int | str, key: bytes) -> str:
    """Keyed hash of a household id: stable for one key, not reversible without it."""
    if not key:
        raise ValueError(f"no pseudonymisation key: set {PSEUDONYM_KEY_ENV}")
    return hmac.new(key, str(household_id).encode(), hashlib.sha256).hexdigest()


def key_from_environment() -> bytes:
    key = os.environ.get(PSEUDONYM_KEY_ENV, "")
    if len(key) < 16:
        raise ValueError(f"{PSEUDONYM_KEY_ENV} must hold a secret of at least 16 characters (set it outside the code)")
    return key.encode()


def connect(url: str) -> Engine:
    """An engine with the tables created. SQLite gets WAL mode, so readers never block the
    writer and an acknowledged write survives a crash."""
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection, _record):
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

    metadata.create_all(engine)
    return engine


@dataclass(frozen=True)
class Decision:
    household_id: int | str
    benefit: str
    p_unclaimed: float
    estimated_monthly_amount: float
    reasons: list[str]
    features: dict


@dataclass(frozen=True)
class Outcome:
    household_id: int | str
    benefit: str
    contacted: bool
    claimed: bool | None
    amount_granted: float | None
    outcome_date: date


class DecisionLog:
    """Append-only log; each call is one transaction, committed before it returns."""

    def __init__(self, engine: Engine, key: bytes):
        self.engine = engine
        self.key = key

    def record_decisions(self, items: Iterable[Decision], *, model_name: str, model_version: str, at: datetime | None = None) -> int:
        at = at or datetime.now(timezone.utc)
        rows = [
            {
                "household_pseudonym": pseudonymise(d.household_id, self.key),
                "scored_at": at,
                "model_name": model_name,
                "model_version": str(model_version),
                "benefit": d.benefit,
                "p_unclaimed": float(d.p_unclaimed),
                "estimated_monthly_amount": float(d.estimated_monthly_amount),
                "expected_unclaimed_monthly": float(d.p_unclaimed) * float(d.estimated_monthly_amount),
                "reasons": list(d.reasons),
                # JSON round-trip: numpy scalars and NaN-free plain values only.
                "features": json.loads(json.dumps(d.features, default=float)),
            }
            for d in items
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(decisions), rows)
        return len(rows)

    def record_outcome(self, o: Outcome, *, at: datetime | None = None) -> str:
        pseudonym = pseudonymise(o.household_id, self.key)
        with self.engine.begin() as conn:
            known = conn.execute(select(decisions.c.id).where(decisions.c.household_pseudonym == pseudonym).limit(1)).first()
            if known is None:
                raise LookupError("no decision was logged for this household: an outcome must follow a score")
            conn.execute(
                insert(outcomes).values(
                    household_pseudonym=pseudonym,
                    benefit=o.benefit,
                    contacted=o.contacted,
                    claimed=o.claimed,
                    amount_granted=o.amount_granted,
                    outcome_date=o.outcome_date,
                    recorded_at=at or datetime.now(timezone.utc),
                )
            )
        return pseudonym
