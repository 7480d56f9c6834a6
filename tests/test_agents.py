"""Agents' accounts for the web page: Argon2id hashes, sign-in, lockout after repeated failures,
and the `nonrecours agents` commands."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from nonrecours.app.cli import app
from nonrecours.serving.agents import LockedOut, add_agent, agents, list_agents, metadata, sign_in
from nonrecours.serving.decision_log import connect

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
LIMITS = {"max_failures": 5, "lockout": timedelta(minutes=15)}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        e = connect(f"sqlite:///{tmp_path / 'decisions.db'}")
    else:
        e = connect(request.getfixturevalue("postgres_url"))
    yield e
    metadata.drop_all(e, checkfirst=True)
    e.dispose()


def test_a_password_is_stored_as_an_argon2id_hash_and_signs_its_agent_in(engine):
    alice = add_agent(engine, "alice", "ccas-lyon-3", PASSWORD, now=NOW)
    with engine.connect() as conn:
        stored = conn.execute(select(agents.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert sign_in(engine, "alice", PASSWORD, now=NOW, **LIMITS) == alice and alice.team == "ccas-lyon-3"
    assert sign_in(engine, "alice", PASSWORD + "!", now=NOW, **LIMITS) is None
    assert sign_in(engine, "nobody", PASSWORD, now=NOW, **LIMITS) is None


def test_repeated_failures_lock_the_account_even_against_the_right_password_until_the_lockout_ends(engine):
    add_agent(engine, "bob", "caf-69", PASSWORD, now=NOW)
    for i in range(4):
        assert sign_in(engine, "bob", f"wrong {i}", now=NOW, **LIMITS) is None
    assert sign_in(engine, "bob", PASSWORD, now=NOW, **LIMITS) is not None  # a success resets the count
    for i in range(5):
        assert sign_in(engine, "bob", f"wrong {i}", now=NOW, **LIMITS) is None
    with pytest.raises(LockedOut) as locked:
        sign_in(engine, "bob", PASSWORD, now=NOW + timedelta(minutes=14), **LIMITS)
    assert locked.value.until == NOW + timedelta(minutes=15)
    assert sign_in(engine, "bob", PASSWORD, now=NOW + timedelta(minutes=16), **LIMITS) is not None


@pytest.mark.parametrize(
    ("name", "team", "password", "message"),
    [("carol", "t", "short", "at least 12"), ("", "t", PASSWORD, "a name and a team"), ("carol", " ", PASSWORD, "a name and a team")],
)
def test_a_bad_account_is_refused_with_what_to_fix(engine, name, team, password, message):
    with pytest.raises(ValueError, match=message):
        add_agent(engine, name, team, password)
    assert list_agents(engine) == []


def test_the_command_line_adds_and_lists_agents_never_printing_a_password(tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    runner = CliRunner()
    added = runner.invoke(app, ["agents", "add", "dora", "--team", "ccas-lyon-3", "--password-file", str(secret), "--decision-log", url])
    assert added.exit_code == 0, added.output
    again = runner.invoke(app, ["agents", "add", "dora", "--team", "other", "--password-file", str(secret), "--decision-log", url])
    assert again.exit_code == 2 and "already exists" in again.output
    listed = runner.invoke(app, ["agents", "list", "--decision-log", url])
    assert listed.exit_code == 0 and listed.output.split() == ["1", "dora", "ccas-lyon-3"]
    assert all(PASSWORD not in r.output and "argon2" not in r.output for r in (added, again, listed))
    assert sign_in(connect(url), "dora", PASSWORD, **LIMITS) is not None


def test_on_postgresql_the_service_role_signs_agents_in_and_reads_caseloads_and_the_monitoring_role_reads_neither(postgres_url):
    """`nonrecours grant-roles` covers the web page's tables: the service's role checks a password
    (and counts a failure), opens and ends sessions and reads the caseload, but cannot delete an
    account or change a caseload; the monitoring role reads no raw household id."""
    from sqlalchemy.exc import DBAPIError

    from nonrecours.serving.agents import close_session, open_session, session_of
    from nonrecours.serving.caseload import caseload, create_tables
    from nonrecours.serving.caseload import metadata as caseload_metadata
    from nonrecours.serving.decision_log import grant_roles

    owner = connect(postgres_url)
    with owner.begin() as conn:
        for role in ("nonrecours_service_t", "nonrecours_monitor_t"):
            conn.exec_driver_sql(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END $$")
    create_tables(owner)
    dora = add_agent(owner, "dora", "t", PASSWORD, now=NOW)
    grant_roles(owner, service="nonrecours_service_t", monitoring="nonrecours_monitor_t")
    service, monitor = (connect(postgres_url.replace("//nonrecours@", f"//{role}@")) for role in ("nonrecours_service_t", "nonrecours_monitor_t"))
    try:
        assert sign_in(service, "dora", "wrong password!", **LIMITS) is None
        assert sign_in(service, "dora", PASSWORD, **LIMITS) == dora
        token, _ = open_session(service, dora, lifetime=timedelta(hours=1))
        assert session_of(service, token).agent == dora
        close_session(service, token)
        with service.connect() as conn:
            assert conn.execute(select(caseload)).all() == []
        with pytest.raises(DBAPIError, match="permission denied"), service.begin() as conn:
            conn.execute(agents.delete())
        with pytest.raises(DBAPIError, match="permission denied"), service.begin() as conn:
            conn.execute(caseload.update().values(rank=1))
        with pytest.raises(DBAPIError, match="permission denied"), monitor.connect() as conn:
            conn.execute(select(caseload))
    finally:
        for e in (service, monitor):
            e.dispose()
        caseload_metadata.drop_all(owner, checkfirst=True)
        metadata.drop_all(owner, checkfirst=True)
        owner.dispose()
