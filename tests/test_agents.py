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
