"""Agents' accounts: who may sign in to the agents' web page, in which team, and when an account
is locked after repeated failures.

Where it sits: beside the decision log, in the same database (the ``agents`` table; not one of
the append-only log tables, since a failed sign-in updates its counter). ``nonrecours agents add``
creates an account; the web page (:mod:`nonrecours.app.web`) signs agents in through :func:`sign_in`, and the
agent's id is the ``sender`` of the outcomes they record.

Passwords are hashed with Argon2id (``argon2-cffi``, its defaults: 64 MiB, 3 passes, 4 lanes,
about 0.15 s on this project's 2-core machine), never stored or logged. After
``max_failures`` wrong passwords in a row an account is locked for ``lockout``; a right password
during the lockout is refused too, and a success resets the counter. An unknown name costs the
same hash as a known one, so timing does not tell which names exist.

A signed-in agent's session (:func:`open_session`, table ``agent_sessions``) is a random token
the browser keeps in a cookie; the table keeps its SHA-256, the session's CSRF token and its end.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, delete, insert, or_, select, update
from sqlalchemy.engine import Engine

MIN_PASSWORD_LENGTH = 12
"""ANSSI's guidance for a password alone protecting personal data asks for at least 12 characters."""
MAX_NAME_LENGTH = 100

metadata = MetaData()
agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_NAME_LENGTH), nullable=False, unique=True),
    Column("team", String(MAX_NAME_LENGTH), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("failed_signins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    comment="Agents of the web page: Argon2id password hashes, their team, and the sign-in lockout state.",
)


@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    team: str


class LockedOut(Exception):
    """Too many failed sign-ins: the account refuses every password until ``until``."""

    def __init__(self, until: datetime):
        super().__init__(f"too many failed sign-ins; try again after {until:%H:%M} UTC")
        self.until = until


@cache
def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _hasher().hash("an unknown agent's password is checked against this")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def create_table(engine: Engine) -> None:
    """The ``agents`` and ``agent_sessions`` tables, if missing (the decision log's
    :func:`connect` does not know them)."""
    metadata.create_all(engine, checkfirst=True)


def add_agent(engine: Engine, name: str, team: str, password: str, *, now: datetime | None = None) -> Agent:
    """Create an account; a name already taken, an empty team or a short password is refused."""
    create_table(engine)
    name, team = name.strip(), team.strip()
    if not name or not team or len(name) > MAX_NAME_LENGTH or len(team) > MAX_NAME_LENGTH:
        raise ValueError(f"an agent needs a name and a team of 1 to {MAX_NAME_LENGTH} characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password has {len(password)} characters; give at least {MIN_PASSWORD_LENGTH}")
    with engine.begin() as conn:
        if conn.execute(select(agents.c.id).where(agents.c.name == name)).first() is not None:
            raise ValueError(f"an agent named {name!r} already exists")
        new_id = conn.execute(
            insert(agents).returning(agents.c.id),
            {
                "name": name,
                "team": team,
                "password_hash": _hasher().hash(password),
                "created_at": now or datetime.now(UTC),
                "failed_signins": 0,
            },
        ).scalar_one()
    return Agent(int(new_id), name, team)


def sign_in(
    engine: Engine, name: str, password: str, *, now: datetime | None = None, max_failures: int, lockout: timedelta
) -> Agent | None:
    """The agent if ``password`` is theirs, else None (a wrong name or password alike). Raises
    :class:`LockedOut` while the account is locked, whatever the password. The table must exist
    (:func:`create_table`, done by adding an agent): no DDL check on every sign-in."""
    from argon2.exceptions import VerificationError

    now = _utc(now or datetime.now(UTC))
    with engine.begin() as conn:
        row = conn.execute(select(agents).where(agents.c.name == name.strip())).first()
        if row is None:
            with contextlib.suppress(VerificationError):
                _hasher().verify(_dummy_hash(), password)
            return None
        if row.locked_until is not None and _utc(row.locked_until) > now:
            raise LockedOut(_utc(row.locked_until))
        try:
            _hasher().verify(row.password_hash, password)
        except VerificationError:
            failures = row.failed_signins + 1
            locked = now + lockout if failures >= max_failures else None
            conn.execute(
                update(agents)
                .where(agents.c.id == row.id)
                .values(failed_signins=0 if locked else failures, locked_until=locked)
            )
            return None
        values: dict = {"failed_signins": 0, "locked_until": None}
        if _hasher().check_needs_rehash(row.password_hash):
            values["password_hash"] = _hasher().hash(password)
        conn.execute(update(agents).where(agents.c.id == row.id).values(**values))
    return Agent(int(row.id), row.name, row.team)


def list_agents(engine: Engine) -> list[Agent]:
    create_table(engine)
    with engine.connect() as conn:
        return [
            Agent(int(r.id), r.name, r.team)
            for r in conn.execute(select(agents.c.id, agents.c.name, agents.c.team).order_by(agents.c.name))
        ]


sessions = Table(
    "agent_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("agent_id", Integer, nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    comment="Signed-in agents' sessions: a hash of the cookie's token (never the token), the form token, the expiry.",
)
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    agent: Agent
    csrf: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    engine: Engine, agent: Agent, *, lifetime: timedelta, now: datetime | None = None
) -> tuple[str, Session]:
    """A new session for a signed-in agent: the cookie's token (only its hash is stored) and the
    session, whose ``csrf`` token every form of the page carries."""
    now = _utc(now or datetime.now(UTC))
    token, csrf = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)
    with engine.begin() as conn:
        conn.execute(
            insert(sessions),
            {
                "token_hash": _token_hash(token),
                "agent_id": agent.id,
                "csrf": csrf,
                "created_at": now,
                "expires_at": now + lifetime,
            },
        )
    return token, Session(agent, csrf, now + lifetime)


def session_of(engine: Engine, token: str, *, now: datetime | None = None) -> Session | None:
    """The live session a cookie's token opens, or None (unknown, expired or signed out)."""
    now = _utc(now or datetime.now(UTC))
    query = select(sessions.c.csrf, sessions.c.expires_at, agents.c.id, agents.c.name, agents.c.team).join(
        agents, agents.c.id == sessions.c.agent_id
    )
    with engine.connect() as conn:
        row = conn.execute(query.where(sessions.c.token_hash == _token_hash(token))).first()
    if row is None or _utc(row.expires_at) <= now:
        return None
    return Session(Agent(int(row.id), row.name, row.team), row.csrf, _utc(row.expires_at))


def close_session(engine: Engine, token: str, *, now: datetime | None = None) -> None:
    """Sign out: the session's row goes, and with it every expired one."""
    now = _utc(now or datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(
            delete(sessions).where(or_(sessions.c.token_hash == _token_hash(token), sessions.c.expires_at <= now))
        )
