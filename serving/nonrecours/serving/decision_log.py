"""The decision log: every household scored, with the model that scored it, and what happened after.

Where it sits: written by scoring (the API and batch worklists), read by monitoring and auditors.
SQLAlchemy Core, SQLite in WAL mode by default, PostgreSQL by URL. One row per household scored:
its pseudonym (a keyed hash, HMAC-SHA256; the raw id is never stored) and the id of the key that
made it, the time, the model name and version, the model's household-level features (what the
reasons quote and drift monitoring compares) and, per benefit, the score, the amount, the reasons
and the benefit-specific features. The protected attributes auditors group by (sex, disability,
nationality group, age band), which never reach the model, sit apart in ``audit_attributes``, a
table only the monitoring role reads (:func:`grant_roles`). :func:`profiles_from_log` rebuilds the
profiles. Rows older than the retention period go by :meth:`DecisionLog.purge`, which the table
``purges`` records.
Every write is committed before the call returns, so an acknowledged score is logged: an outcome
in one transaction, a batch of scores in transactions of :data:`COMMIT_CHUNK` households (a
failure part-way leaves the chunks already committed, and the call raises).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Engine, Row

from nonrecours.core.config import ServingConfig
from nonrecours.core.errors import UserError
from nonrecours.core.schema import (
    BENEFITS,
    ENTITLEMENTS,
    HOUSEHOLDS,
    INDIVIDUALS,
    OUTREACH_RESULTS,
    PER_BENEFIT,
    PROFILES,
    PROTECTED,
    SCORE_COLUMNS,
    validate,
)
from nonrecours.serving.secrets import pseudonym_key, retired_keys

metadata = MetaData()
KEY_ID_LENGTH = 12

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("household_pseudonym", String(64), nullable=False, index=True),
    Column("key_id", String(KEY_ID_LENGTH), nullable=True),
    Column("scored_at", DateTime(timezone=True), nullable=False, index=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(50), nullable=False),
    Column("source", String(20), nullable=False),
    Column("features", JSON, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("input_digest", String(64), nullable=True),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", Integer, ForeignKey("decisions.id"), nullable=False, index=True),
    Column("household_pseudonym", String(64), nullable=False, index=True),
    Column("benefit", String(32), nullable=False),
    Column("contacted", Boolean, nullable=False),
    Column("claimed", Boolean, nullable=True),
    Column("amount_granted", Float, nullable=True),
    Column("outcome_date", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("result", String(20), nullable=True),
    Column("campaign_id", String(40), nullable=True, index=True),
    Column("sender", String(64), nullable=True),
    Column("idempotency_key", String(100), nullable=True, unique=True),
    Column("key_id", String(KEY_ID_LENGTH), nullable=True),
)

assignments = Table(
    "campaign_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(40), nullable=False, index=True),
    Column("decision_id", Integer, ForeignKey("decisions.id"), nullable=False, index=True),
    Column("household_pseudonym", String(64), nullable=False, index=True),
    Column("arm", String(10), nullable=False),
    Column("stratum", Integer, nullable=False),
    Column("propensity", Float, nullable=False),
    Column("benefits", String(200), nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(KEY_ID_LENGTH), nullable=True),
)

AUDIT_PURPOSE = (
    "Purpose: fairness auditing only (per-group recall, EU AI Act art. 10(5)). Protected attributes of the "
    "household scored by decision_id; never a model input; read by the monitoring role only; purged with the decision."
)
audit_attributes = Table(
    "audit_attributes",
    metadata,
    Column("decision_id", Integer, ForeignKey("decisions.id"), primary_key=True),
    *(Column(c, Boolean if PROFILES.column(c).dtype == "bool" else String(40), nullable=True) for c in PROTECTED),
    comment=AUDIT_PURPOSE,
)

purges = Table(
    "purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("purged_at", DateTime(timezone=True), nullable=False),
    Column("before", DateTime(timezone=True), nullable=False),
    Column("decisions", Integer, nullable=False),
    Column("outcomes", Integer, nullable=False),
    Column("assignments", Integer, nullable=False),
    Column("purged_by", String(100), nullable=False),
    comment="Audit trail of retention: every purge of the decision log, with what it removed (rows older than "
    "`before`).",
)
LOG_TABLES = ("decisions", "outcomes", "campaign_assignments", "audit_attributes", "purges")

COMMIT_CHUNK = 5_000
"""Households per transaction when a batch of scores is logged (a worklist of 100,000 at once
would hold one transaction of that size)."""
MIN_KEY_BYTES = 16
SCORES = SCORE_COLUMNS
HOUSEHOLD_LEVEL = tuple(c for c in PROFILES.names if c not in ("household_id", "benefit", *PER_BENEFIT, *PROTECTED))
"""Household-level profile columns a decision row keeps: the model's features (the protected
attributes go to ``audit_attributes``)."""
REUSED_SOURCE = "api-reused"
"""The source of an API decision whose law-engine answer was reused (never itself reused, so a
reuse is never older than the reuse window)."""
TIMEZONE_SLACK = timedelta(days=1)
"""An outcome dated the day before its decision's UTC date is accepted (an overseas agency's
evening is the next UTC day)."""


def pseudonymise(household_id: int | str, key: bytes) -> str:
    """Keyed hash of a household id: stable for one key, not reversible without it."""
    if not key:
        raise ValueError("no pseudonymisation key given")
    return hmac.new(key, str(household_id).encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short public name of a pseudonymisation key (a hash of it under a fixed label), stored
    on every row so that, after a rotation, the rows made with a retired key can be told apart
    and still matched (see :class:`DecisionLog`)."""
    return hashlib.sha256(b"nonrecours-pseudonym-key-id:" + key).hexdigest()[:KEY_ID_LENGTH]


INPUT_IDS = ("household_id", "person_id", "n_persons")
"""Columns left out of a household's input digest: ids (a batch numbers households its own way,
the API by position) and a count derived from the members."""
_FIELD, _MEMBER = "\x1f", "\x1e"


def _column_text(column: pd.Series) -> np.ndarray:
    """A column's values as the digest reads them (vectorised): equal values give equal text
    whatever table they came from, missing gives ""."""
    missing = column.isna().to_numpy()
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("object")
    if pd.api.types.is_bool_dtype(column.dtype):
        text = np.where(column.fillna(False).to_numpy(dtype=bool), "1", "0")
    elif pd.api.types.is_float_dtype(column.dtype):
        text = column.astype("float64").astype(str).to_numpy()  # each float's repr
    else:
        text = column.astype(str).to_numpy()
    return np.where(missing, "", text).astype(object)


def _row_texts(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    texts = pd.Series([""] * len(frame), index=frame.index, dtype=object)
    for i, c in enumerate(columns):
        texts = texts + (_FIELD if i else "") + _column_text(frame[c])
    return texts


def input_digests(individuals: pd.DataFrame, households: pd.DataFrame, *, key: bytes, law_version: str) -> pd.Series:
    """A keyed digest (HMAC-SHA-256) of each household's inputs, indexed by ``household_id``: its
    households row and its members (in any order), every column but the ids, under the law
    engine's fingerprint (:func:`nonrecours.law.engine.law_version`). Equal digests mean the law
    engine would answer the same, so the API may reuse a stored answer. Keyed like the
    pseudonyms: a digest of personal data without a key could be matched against guesses."""
    if not key:
        raise ValueError("no pseudonymisation key given")
    member_cols = [c for c in INDIVIDUALS.names if c not in INPUT_IDS and c in individuals.columns]
    household_cols = [c for c in HOUSEHOLDS.names if c not in INPUT_IDS and c in households.columns]
    members = pd.DataFrame(
        {
            "household_id": individuals["household_id"].to_numpy(),
            "text": _row_texts(individuals, member_cols).to_numpy(),
        }
    )
    grouped = (
        members.sort_values(["household_id", "text"], kind="stable").groupby("household_id")["text"].agg(_MEMBER.join)
    )
    own = pd.Series(_row_texts(households, household_cols).to_numpy(), index=households["household_id"].to_numpy())
    whole = law_version + _MEMBER + own + _MEMBER + _MEMBER + grouped.reindex(own.index).fillna("")
    return whole.map(lambda t: hmac.new(key, t.encode(), hashlib.sha256).hexdigest()).rename("input_digest")


MS_PER_SECOND = 1_000
SQLITE_BUSY_MS = 30_000
"""How long a SQLite writer waits for another's lock (a local file: no network to time out)."""


def connect(url: str, *, timeout_seconds: float | None = None) -> Engine:
    """An engine with the tables created. SQLite gets WAL mode with full sync, so readers never
    block the writer and a committed write survives a crash; a writer waits up to
    ``SQLITE_BUSY_MS`` for another's lock. PostgreSQL gets a connect and a
    statement timeout, so an unreachable or stuck server fails a write within ``timeout_seconds``
    instead of blocking. Parameters are never put in SQLAlchemy's error messages (they hold
    pseudonyms and personal data). ``timeout_seconds``: ``serving.decision_log_timeout_seconds``
    unless given."""
    if timeout_seconds is None:
        timeout_seconds = ServingConfig().decision_log_timeout_seconds
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    args: dict = {}
    if dialect == "postgresql":
        args = {
            "connect_timeout": max(1, int(timeout_seconds)),
            "options": f"-c statement_timeout={int(timeout_seconds * MS_PER_SECOND)}",
        }
    engine = create_engine(
        url, pool_pre_ping=True, hide_parameters=True, connect_args=args, pool_timeout=timeout_seconds
    )
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection, _record):
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cur.close()

    metadata.create_all(engine)
    _add_missing_columns(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            names = ", ".join(f"'{t}_append_only'" for t in APPEND_ONLY_TABLES)
            present = conn.exec_driver_sql(f"SELECT count(*) FROM pg_trigger WHERE tgname IN ({names})").scalar() or 0
            if present < len(APPEND_ONLY_TABLES):
                for statement in APPEND_ONLY_DDL:
                    conn.exec_driver_sql(statement)
    return engine


ADDED_COLUMNS = {"decisions": ("key_id", "input_digest"), "outcomes": ("key_id",), "campaign_assignments": ("key_id",)}
"""Nullable columns added since the log's first release: a log made before gets them when opened."""


def _add_missing_columns(engine: Engine) -> None:
    """Add :data:`ADDED_COLUMNS` to a log created before them (no row changes: they are NULL on
    the old rows). A role that may not alter the tables is told what to run."""
    from sqlalchemy import inspect

    present = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in ADDED_COLUMNS}
    wanted = [(t, c) for t, cols in ADDED_COLUMNS.items() for c in cols if c not in present[t]]
    statements = [
        f"ALTER TABLE {t} ADD COLUMN {c} {metadata.tables[t].c[c].type.compile(engine.dialect)}" for t, c in wanted
    ]
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    except Exception as exc:  # noqa: BLE001 - re-raised with what to do
        raise RuntimeError(
            f"the decision log predates columns {wanted}; as the tables' owner run: {'; '.join(statements)} "
            f"({type(exc).__name__})"
        ) from None


APPEND_ONLY_LOCK = 7_310_001
"""Advisory lock key: processes opening the log at once (the service's workers) install the triggers one at a time."""
APPEND_ONLY_TABLES = LOG_TABLES
PURGE_SETTING = "nonrecours.purge"
"""A transaction-local setting under which the triggers let :meth:`DecisionLog.purge` delete old rows (never update)."""
APPEND_ONLY_DDL = (
    f"SELECT pg_advisory_xact_lock({APPEND_ONLY_LOCK})",
    f"""CREATE OR REPLACE FUNCTION nonrecours_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND TG_TABLE_NAME <> 'purges' AND current_setting('{PURGE_SETTING}', true) = 'on' THEN
        RETURN OLD;
      END IF;
      RAISE EXCEPTION USING MESSAGE = 'the decision log is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME
                                      || ' refused';
    END $$""",
    *(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in APPEND_ONLY_TABLES),
    *(
        f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW EXECUTE FUNCTION "
        "nonrecours_append_only()"
        for t in APPEND_ONLY_TABLES
    ),
)
"""On PostgreSQL the database itself refuses to change or delete a row of the log (triggers),
except the deletions of a purge; they are installed once (a role that does not own the tables,
as the service's should be, never needs to). On SQLite append-only rests on this module, which
only inserts and purges."""


WEB_TABLE_GRANTS = (("agents", "SELECT, UPDATE"), ("agent_sessions", "SELECT, INSERT, DELETE"), ("caseload", "SELECT"))


def grant_roles(engine: Engine, *, service: str, monitoring: str) -> None:
    """PostgreSQL: give the service's role what scoring and outcomes need (read and append the
    log, append audit attributes it can never read back) and the monitoring role read access to
    everything; nobody else reads the audit attributes. Run once, by the tables' owner."""
    if engine.dialect.name != "postgresql":
        raise ValueError("roles are PostgreSQL's: on SQLite, protect the file itself (mode 600, its own folder)")
    from sqlalchemy import inspect

    scoring = ("decisions", "outcomes", "campaign_assignments")
    quote = engine.dialect.identifier_preparer.quote
    s, m = quote(service), quote(monitoring)
    # The agents' page's tables (serving/agents.py, serving/caseload.py), when there: the service
    # signs agents in (a failed sign-in updates the counter), opens and ends sessions, reads the
    # caseload (raw household ids: the monitoring role gets none of them).
    web = [(t, grant) for t, grant in WEB_TABLE_GRANTS if inspect(engine).has_table(t)]
    with engine.begin() as conn:
        for statement in (
            f"REVOKE ALL ON {', '.join(LOG_TABLES)} FROM PUBLIC",
            f"GRANT SELECT, INSERT ON {', '.join(scoring)} TO {s}",
            f"GRANT INSERT ON audit_attributes TO {s}",
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {s}",
            f"GRANT SELECT ON {', '.join(LOG_TABLES)} TO {m}",
            *(f"REVOKE ALL ON {t} FROM PUBLIC" for t, _ in web),
            *(f"GRANT {grant} ON {t} TO {s}" for t, grant in web),
        ):
            conn.exec_driver_sql(statement)


def _plain(v: object) -> object:
    """A JSON-safe value: numpy scalars as Python ones, NaN/NA as null, categories as text."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v if isinstance(v, (int, str)) else str(v)


def _plain_column(column: pd.Series) -> list:
    """:func:`_plain` over a whole column, vectorised where the dtype allows (a batch of 100,000
    households logs 800,000 rows of some forty values)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = [_plain(c) for c in column.cat.categories]
        return [None if k < 0 else categories[k] for k in column.cat.codes.tolist()]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biu":
        return column.tolist()
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
        values = column.to_numpy(dtype=float)
        plain = values.astype(object)
        plain[np.isnan(values)] = None
        return plain.tolist()
    return [_plain(v) for v in column.tolist()]


@dataclass(frozen=True)
class Outcome:
    """What happened after a contact, as an agent records it. ``result`` (one of
    ``OUTREACH_RESULTS``) is what a campaign's outcome says; ``contacted`` and ``claimed`` follow
    from it. ``decision_id``: the decision it answers (default: the household's latest).
    ``idempotency_key``: a retried post with the same key is recorded once."""

    household_id: int | str
    benefit: str
    contacted: bool
    claimed: bool | None
    amount_granted: float | None
    outcome_date: date
    result: str | None = None
    campaign_id: str | None = None
    decision_id: int | None = None
    idempotency_key: str | None = None
    sender: str | None = None

    @classmethod
    def from_result(
        cls,
        household_id: int | str,
        benefit: str,
        result: str,
        outcome_date: date,
        *,
        amount_granted: float | None = None,
        **links,
    ) -> Outcome:
        if result not in OUTREACH_RESULTS:
            raise ValueError(f"result {result!r} is not one of {list(OUTREACH_RESULTS)}")
        return cls(
            household_id,
            benefit,
            contacted=result != "unreachable",
            claimed=result == "opened",
            amount_granted=amount_granted if result == "opened" else None,
            outcome_date=outcome_date,
            result=result,
            **links,
        )


@dataclass(frozen=True)
class OutcomeReceipt:
    household_pseudonym: str
    decision_id: int
    recorded_at: datetime


@dataclass(frozen=True)
class PurgeReceipt:
    before: datetime
    decisions: int
    outcomes: int
    assignments: int


class DecisionLog:
    """Append-only log; every write is committed before the call returns (scores in chunks of
    :data:`COMMIT_CHUNK` households, an outcome in one transaction).

    ``key`` pseudonymises what is written; ``retired`` keys (earlier ones, after a rotation) only
    match: an outcome for a household scored under a retired key still finds its decision, since
    a household's pseudonyms under every key are looked up. Each row stores its key's
    :func:`key_id`."""

    def __init__(self, engine: Engine, key: bytes, retired: Sequence[bytes] = ()):
        if len(key) < MIN_KEY_BYTES or any(len(k) < MIN_KEY_BYTES for k in retired):
            raise ValueError("the pseudonymisation key must hold at least 16 bytes")
        self.engine = engine
        self.key = key
        self.keys = (key, *(k for k in retired if k != key))
        self.key_ids = tuple(key_id(k) for k in self.keys)
        self.key_id = self.key_ids[0]

    @classmethod
    def open(cls, url: str, secrets: Mapping[str, str], *, timeout_seconds: float | None = None) -> DecisionLog:
        """The log at ``url``, pseudonymising with the secrets' key (and matching under the retired
        ones); a refused URL or key is a :class:`UserError`."""

        try:
            return cls(
                connect(url, timeout_seconds=timeout_seconds), pseudonym_key(dict(secrets)), retired_keys(dict(secrets))
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def pseudonyms(self, household_id: int | str) -> list[str]:
        """The household's pseudonym under the current key, then under each retired one."""
        return [pseudonymise(household_id, k) for k in self.keys]

    def rows(
        self,
        scored: pd.DataFrame,
        *,
        model_name: str,
        model_version: str,
        source: str | Mapping,
        at: datetime | None = None,
        ids: Sequence | None = None,
        digests: Mapping | None = None,
    ) -> list[dict]:
        """Decision-log rows, one per household, from scoring's long output (one row per
        household and benefit). The household's id is ``household_id``, or ``ids[household_id]``
        when the rows are numbered by position. Each row's ``audit`` (the protected attributes,
        when ``scored`` has them) goes to ``audit_attributes``, not ``decisions``. ``digests``
        (by ``household_id``, see :func:`input_digests`) lets a later request with the same
        inputs reuse the law engine's answer. ``source`` is one for all, or one per ``household_id``."""
        at = at or datetime.now(UTC)
        out: dict[object, dict] = {}
        cols = [c for c in (*HOUSEHOLD_LEVEL, *PER_BENEFIT, *SCORES) if c in scored.columns]
        missing = sorted((set(HOUSEHOLD_LEVEL) | set(SCORES)) - set(cols))
        if missing:
            raise ValueError(f"scored rows lack column(s) {missing}")
        audited = [c for c in PROTECTED if c in scored.columns]
        columns = [_plain_column(scored[c]) for c in (*cols, *audited)]
        for hid, benefit, *values in zip(
            scored["household_id"].tolist(), scored["benefit"].astype("object").tolist(), *columns
        ):
            record = dict(zip((*cols, *audited), values))
            row = out.get(hid)
            if row is None:
                row = out[hid] = {
                    "household_pseudonym": pseudonymise(_plain(hid if ids is None else ids[hid]), self.key),  # type: ignore[arg-type]  # an id
                    "key_id": self.key_id,
                    "scored_at": at,
                    "model_name": model_name,
                    "model_version": str(model_version),
                    "source": source if isinstance(source, str) else source[hid],
                    "features": {c: record[c] for c in HOUSEHOLD_LEVEL},
                    "scores": {},
                    "audit": {c: record[c] for c in audited} or None,
                    "input_digest": None if digests is None else digests.get(hid),
                }
            row["scores"][str(benefit)] = {c: record[c] for c in (*PER_BENEFIT, *SCORES)}
        return list(out.values())

    @staticmethod
    def _insert(conn, rows: list[dict]) -> list[int]:
        """Insert decision rows and their audit attributes; the new decision ids, in order."""
        ids = (
            conn.execute(
                insert(decisions).returning(decisions.c.id, sort_by_parameter_order=True),
                [{k: v for k, v in r.items() if k != "audit"} for r in rows],
            )
            .scalars()
            .all()
        )
        audit = [{"decision_id": i, **r["audit"]} for i, r in zip(ids, rows) if r.get("audit")]
        if audit:
            conn.execute(insert(audit_attributes), audit)
        return [int(i) for i in ids]

    def record_scored(
        self,
        scored: pd.DataFrame,
        *,
        model_name: str,
        model_version: str,
        source: str | Mapping,
        at: datetime | None = None,
        ids: Sequence | None = None,
        digests: Mapping | None = None,
        chunk: int = COMMIT_CHUNK,
    ) -> int:
        """Append one row per household in ``scored`` (see :meth:`rows`); returns the number of
        households logged. Chunks of ``chunk`` households are committed one after the other."""
        rows = self.rows(
            scored, model_name=model_name, model_version=model_version, source=source, at=at, ids=ids, digests=digests
        )
        for start in range(0, len(rows), chunk):
            with self.engine.begin() as conn:
                self._insert(conn, rows[start : start + chunk])
        return len(rows)

    def reusable_entitlements(
        self, household_ids: Sequence, digests: Sequence[str], *, since: datetime
    ) -> tuple[pd.DataFrame, dict[int, tuple[int, datetime]]]:
        """The law engine's stored answers for households whose inputs have not changed: for
        position ``i``, the latest decision since ``since`` that ran the law engine (not itself a
        reuse) on household ``household_ids[i]`` (under any key) with input digest ``digests[i]``.
        Returns their entitlements in ``ENTITLEMENTS`` form, numbered by position, and per
        position found the decision's id and when the law engine ran."""
        wanted = {(p, d): i for i, (hid, d) in enumerate(zip(household_ids, digests)) for p in self.pseudonyms(hid)}
        found: dict[int, Row] = {}  # the latest decision row of each household reused
        if wanted:
            query = (
                select(
                    decisions.c.id,
                    decisions.c.household_pseudonym,
                    decisions.c.input_digest,
                    decisions.c.scored_at,
                    decisions.c.features,
                    decisions.c.scores,
                )
                .where(
                    decisions.c.household_pseudonym.in_({p for p, _ in wanted}),
                    decisions.c.input_digest.in_(set(digests)),
                    decisions.c.scored_at >= _utc(since),
                    decisions.c.source != REUSED_SOURCE,
                )
                .order_by(decisions.c.id.desc())
            )
            with self.engine.connect() as conn:
                for row in conn.execute(query):
                    found.setdefault(wanted.get((row.household_pseudonym, row.input_digest), -1), row)
        found.pop(-1, None)
        records = [
            {
                "household_id": i,
                "benefit": b,
                "eligible": bool(row.scores[b]["law_eligible"]),
                "monthly_amount": float(row.scores[b]["law_amount"]),
                "estimated_inputs": row.features["law_estimated_inputs"],
            }
            for i, row in sorted(found.items())
            for b in BENEFITS
        ]
        table = validate(pd.DataFrame(records, columns=ENTITLEMENTS.names), ENTITLEMENTS)
        return table, {i: (int(row.id), _utc(row.scored_at)) for i, row in found.items()}

    def ping(self) -> None:
        """Raise unless the database answers (within the engine's timeouts)."""
        with self.engine.connect() as conn:
            conn.execute(select(1))

    def record_outcome(self, o: Outcome, *, at: datetime | None = None) -> OutcomeReceipt:
        """Store an outcome against the decision it answers (``o.decision_id``, else the
        household's latest); LookupError if the household was never scored or the decision is not
        its own, ValueError if the outcome is dated before the decision. A post whose idempotency
        key was seen returns the first receipt, unrecorded."""
        return self.record_outcomes([o], at=at)[0]

    def record_outcomes(self, batch: Sequence[Outcome], *, at: datetime | None = None) -> list[OutcomeReceipt]:
        """:meth:`record_outcome` for many, in one transaction: all are recorded or none."""
        at = at or datetime.now(UTC)
        receipts = []
        with self.engine.begin() as conn:
            for o in batch:
                mine = self.pseudonyms(o.household_id)
                if o.idempotency_key is not None:
                    seen = conn.execute(
                        select(outcomes.c.decision_id, outcomes.c.household_pseudonym, outcomes.c.recorded_at).where(
                            outcomes.c.idempotency_key == o.idempotency_key
                        )
                    ).first()
                    if seen is not None:
                        if seen.household_pseudonym not in mine:
                            raise ValueError(
                                f"idempotency_key {o.idempotency_key!r} was already used for another household"
                            )
                        receipts.append(
                            OutcomeReceipt(seen.household_pseudonym, int(seen.decision_id), seen.recorded_at)
                        )
                        continue
                decision_id, pseudonym, scored_at = self._decision_of(conn, o, mine)
                if o.outcome_date < _utc(scored_at).date() - TIMEZONE_SLACK:
                    raise ValueError(
                        f"outcome_date: {o.outcome_date} is before the decision it answers (decision "
                        f"{decision_id}, scored {_utc(scored_at).date()})"
                    )
                conn.execute(
                    insert(outcomes).values(
                        decision_id=decision_id,
                        household_pseudonym=pseudonym,
                        key_id=self.key_ids[mine.index(pseudonym)],  # the key the decision was made with
                        benefit=o.benefit,
                        contacted=o.contacted,
                        claimed=o.claimed,
                        amount_granted=o.amount_granted,
                        outcome_date=o.outcome_date,
                        recorded_at=at,
                        result=o.result,
                        campaign_id=o.campaign_id,
                        sender=o.sender,
                        idempotency_key=o.idempotency_key,
                    )
                )
                receipts.append(OutcomeReceipt(pseudonym, int(decision_id), at))
        return receipts

    @staticmethod
    def _decision_of(conn, o: Outcome, pseudonyms: list[str]) -> tuple[int, str, datetime]:
        """The decision an outcome answers, the pseudonym it was logged under, and its time."""
        query = select(decisions.c.id, decisions.c.household_pseudonym, decisions.c.scored_at)
        if o.decision_id is not None:
            found = conn.execute(query.where(decisions.c.id == o.decision_id)).first()
            if found is None or found.household_pseudonym not in pseudonyms:
                raise LookupError(
                    f"household_id: decision {o.decision_id} is not one of this household's"
                )  # no raw id: messages reach logs
        else:
            found = conn.execute(
                query.where(decisions.c.household_pseudonym.in_(pseudonyms)).order_by(decisions.c.id.desc()).limit(1)
            ).first()
            if found is None:
                raise LookupError(
                    "household_id: no decision was logged for this household; an outcome must follow a score"
                )
        return int(found.id), found.household_pseudonym, found.scored_at

    def record_campaign(
        self,
        scored: pd.DataFrame,
        campaign: pd.DataFrame,
        *,
        model_name: str,
        model_version: str,
        at: datetime | None = None,
        ids: Sequence | None = None,
    ) -> pd.Series:
        """Log a campaign: one decision per campaign household (its scores, ``source``
        ``campaign``) and its assignment (arm, stratum, propensity, benefits to check), committed
        together. Returns the decision id per ``household_id``. With ``ids``, ``household_id``
        is a position and ``ids[household_id]`` the household's id (as in :meth:`rows`)."""
        at = at or datetime.now(UTC)
        rows = self.rows(
            scored[scored["household_id"].isin(campaign["household_id"])],
            model_name=model_name,
            model_version=model_version,
            source="campaign",
            at=at,
            ids=ids,
        )
        c = campaign.set_index("household_id")
        external = c.index if ids is None else [ids[h] for h in c.index]
        ordered = [rows[i] for i in _order(rows, external, self.key)]
        with self.engine.begin() as conn:
            decided = dict(zip(c.index, self._insert(conn, ordered)))
            conn.execute(
                insert(assignments),
                [
                    {
                        "campaign_id": str(a.campaign_id),
                        "decision_id": decided[hid],
                        "household_pseudonym": row["household_pseudonym"],
                        "key_id": self.key_id,
                        "arm": str(a.arm),
                        "stratum": int(a.stratum),
                        "propensity": float(a.propensity),
                        "benefits": str(a.benefits),
                        "assigned_at": at,
                    }
                    for hid, row, a in zip(c.index, ordered, c.itertuples())
                ],
            )
        return pd.Series(decided, name="decision_id", dtype="int64").rename_axis("household_id")

    def read_campaign(self, campaign_id: str) -> pd.DataFrame:
        """A campaign's assignments with their decisions' time and model, in log order."""
        query = (
            select(assignments, decisions.c.model_name, decisions.c.model_version, decisions.c.scored_at)
            .join(decisions, decisions.c.id == assignments.c.decision_id)
            .where(assignments.c.campaign_id == campaign_id)
            .order_by(assignments.c.id)
        )
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all())
        if frame.empty:
            raise LookupError(f"campaign {campaign_id!r} is not in the decision log")
        return frame

    @staticmethod
    def _window(query, since: datetime | None, until: datetime | None):
        if since is not None:
            query = query.where(decisions.c.scored_at >= since)
        if until is not None:
            query = query.where(decisions.c.scored_at < until)
        return query

    def read(self, since: datetime | None = None, until: datetime | None = None, *, audit: bool = True) -> pd.DataFrame:
        """Decisions scored in ``[since, until)``, one row per household, in log order; with
        ``audit`` (monitoring's role), an ``audit`` column holds each one's protected attributes."""
        if not audit:
            query = self._window(select(decisions).order_by(decisions.c.id), since, until)
            names = [c.name for c in decisions.columns]
        else:
            protected = [audit_attributes.c[c] for c in PROTECTED]
            query = self._window(
                select(decisions, *protected)
                .outerjoin(audit_attributes, audit_attributes.c.decision_id == decisions.c.id)
                .order_by(decisions.c.id),
                since,
                until,
            )
            names = [c.name for c in decisions.columns] + list(PROTECTED)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=names)
        if audit:
            frame["audit"] = (
                [dict(zip(PROTECTED, values)) for values in zip(*(frame[c] for c in PROTECTED))] if len(frame) else []
            )
            frame = frame.drop(columns=list(PROTECTED))
        return frame

    def read_outcomes(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Outcomes of the decisions scored in ``[since, until)``: the latest recorded per decision
        and benefit (a later record corrects an earlier one)."""
        window = self._window(select(decisions.c.id), since, until)
        query = select(outcomes).where(outcomes.c.decision_id.in_(window.scalar_subquery())).order_by(outcomes.c.id)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in outcomes.columns])
        return frame.drop_duplicates(["decision_id", "benefit"], keep="last").reset_index(drop=True)


def purge(engine: Engine, before: datetime, *, by: str) -> PurgeReceipt:
    """Delete the decisions scored before ``before`` with their outcomes, campaign assignments
    and audit attributes, in one transaction, and record the purge (time, cut-off, counts, who)
    in ``purges``, which is never purged. Needs no pseudonymisation key."""
    before = _utc(before)
    old = select(decisions.c.id).where(decisions.c.scored_at < before).scalar_subquery()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"SELECT set_config('{PURGE_SETTING}', 'on', true)"))
        counts = {}
        for name, table in (("outcomes", outcomes), ("assignments", assignments), ("audit", audit_attributes)):
            counts[name] = conn.execute(delete(table).where(table.c.decision_id.in_(old))).rowcount
        counts["decisions"] = conn.execute(delete(decisions).where(decisions.c.scored_at < before)).rowcount
        receipt = PurgeReceipt(before, counts["decisions"], counts["outcomes"], counts["assignments"])
        conn.execute(
            insert(purges).values(
                purged_at=datetime.now(UTC),
                before=before,
                decisions=receipt.decisions,
                outcomes=receipt.outcomes,
                assignments=receipt.assignments,
                purged_by=by,
            )
        )
    return receipt


def read_purges(engine: Engine) -> pd.DataFrame:
    """The purge audit trail, oldest first."""
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(select(purges).order_by(purges.c.id)).mappings().all(),
            columns=[c.name for c in purges.columns],
        )


def _utc(t: datetime) -> datetime:
    """A time as UTC (SQLite gives back naive times, which the log wrote in UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _order(rows: list[dict], household_ids, key: bytes) -> list[int]:
    """Positions in ``rows`` (one per household, keyed by pseudonym) of ``household_ids``, in order."""
    where = {r["household_pseudonym"]: i for i, r in enumerate(rows)}
    return [where[pseudonymise(_plain(h), key)] for h in household_ids]  # type: ignore[arg-type]  # an id


def profiles_from_log(logged: pd.DataFrame, recorded: pd.DataFrame | None = None) -> pd.DataFrame:
    """The long profiles (``PROFILES`` form, validated) and scores back from decision-log rows.
    ``household_id`` is the decision's id (the log holds no household id); the pseudonym, model
    version and time come along. With ``recorded`` (:meth:`DecisionLog.read_outcomes`), each row
    also gets ``contacted``, ``claimed`` and ``amount_granted``, empty where none was recorded."""
    records = []
    for row in logged.itertuples(index=False):
        for benefit, s in row.scores.items():
            records.append(
                {
                    "household_id": row.id,
                    "benefit": benefit,
                    **row.features,
                    **(getattr(row, "audit", None) or {}),
                    **s,
                    "household_pseudonym": row.household_pseudonym,
                    "model_version": row.model_version,
                    "scored_at": row.scored_at,
                }
            )
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    for c in PROFILES.names:
        if PROFILES.column(c).dtype in ("float64",) and c in frame:
            frame[c] = frame[c].astype("float64")  # nulls back to NaN
    profiles = validate(frame, PROFILES)
    extra = frame[[c for c in frame.columns if c not in PROFILES.names]].reset_index(drop=True)
    out = pd.concat([profiles, extra], axis=1)
    if recorded is None:
        return out
    follow = recorded.rename(columns={"decision_id": "household_id"})[
        ["household_id", "benefit", "contacted", "claimed", "amount_granted"]
    ]
    out = out.merge(
        follow.astype({"benefit": "object"}), on=["household_id", "benefit"], how="left", validate="one_to_one"
    )
    for c in ("contacted", "claimed"):
        out[c] = out[c].astype("boolean")
    out["benefit"] = out["benefit"].astype(profiles["benefit"].dtype)
    return out
