"""Agents' accounts for the web page: Argon2id hashes, sign-in, lockout after repeated failures,
and the `nonrecours agents` commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from nonrecours.app.cli import app
from nonrecours.serving.agents import LockedOut, add_agent, agents, list_agents, metadata, sign_in
from nonrecours.serving.decision_log import connect

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
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
    [
        ("carol", "t", "short", "at least 12"),
        ("", "t", PASSWORD, "a name and a team"),
        ("carol", " ", PASSWORD, "a name and a team"),
    ],
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
    added = runner.invoke(
        app, ["agents", "add", "dora", "--team", "ccas-lyon-3", "--password-file", str(secret), "--decision-log", url]
    )
    assert added.exit_code == 0, added.output
    again = runner.invoke(
        app, ["agents", "add", "dora", "--team", "other", "--password-file", str(secret), "--decision-log", url]
    )
    assert again.exit_code == 2 and "already exists" in again.output
    listed = runner.invoke(app, ["agents", "list", "--decision-log", url])
    assert listed.exit_code == 0 and listed.output.split() == ["1", "dora", "ccas-lyon-3"]
    assert all(PASSWORD not in r.output and "argon2" not in r.output for r in (added, again, listed))
    assert sign_in(connect(url), "dora", PASSWORD, **LIMITS) is not None


def test_on_postgresql_the_service_role_signs_agents_in_and_reads_caseloads_and_the_monitoring_role_reads_neither(
    postgres_url,
):
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
            conn.exec_driver_sql(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE "
                f"{role} LOGIN; END IF; END $$"
            )
    create_tables(owner)
    dora = add_agent(owner, "dora", "t", PASSWORD, now=NOW)
    grant_roles(owner, service="nonrecours_service_t", monitoring="nonrecours_monitor_t")
    service, monitor = (
        connect(postgres_url.replace("//nonrecours@", f"//{role}@"))
        for role in ("nonrecours_service_t", "nonrecours_monitor_t")
    )
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


def test_a_caseload_pages_filters_and_follows_outcomes_on_both_databases(engine):
    """serving/caseload.py's queries (pages, filters, the latest outcome as status, the team
    boundary) on SQLite and PostgreSQL, with decisions and outcomes written by the decision log."""
    import pandas as pd
    from sqlalchemy import insert

    from nonrecours.serving.caseload import Filters, assign, household, page
    from nonrecours.serving.caseload import metadata as caseload_metadata
    from nonrecours.serving.decision_log import DecisionLog, Outcome, decisions, pseudonymise

    key = b"a-test-key-of-at-least-16-chars"
    log = DecisionLog(engine, key)
    ids = list(range(1000, 1030))
    with engine.begin() as conn:
        made = (
            conn.execute(
                insert(decisions).returning(decisions.c.id, sort_by_parameter_order=True),
                [
                    {
                        "household_pseudonym": pseudonymise(h, key),
                        "key_id": log.key_id,
                        "scored_at": NOW,
                        "model_name": "m",
                        "model_version": "1",
                        "source": "campaign",
                        "features": {},
                        "scores": {
                            "rsa": {"p_unclaimed": 0.5, "estimated_monthly_amount": 600.0, "reasons": ["r"]},
                            "ppa": {"p_unclaimed": 0.2, "estimated_monthly_amount": 100.0},
                        },
                    }
                    for h in ids
                ],
            )
            .scalars()
            .all()
        )
    campaign = pd.DataFrame(
        {
            "campaign_id": "c-1",
            "household_id": ids,
            "arm": ["contact"] * 25 + ["holdout"] * 5,
            "contacted": [True] * 25 + [False] * 5,
            "rank": range(1, 31),
            "expected_monthly": [300.0 - i for i in range(30)],
            "benefits": ["rsa;ppa" if i % 2 else "ppa" for i in range(30)],
            "decision_id": made,
        }
    )
    depcom = pd.Series(["75056" if i % 3 else "97411" for i in range(30)], index=ids)
    try:
        assert (
            assign(
                engine,
                campaign,
                "nord",
                depcom=depcom,
                basis={1000: {"rsa": {"figures": [], "references": []}}},
                at=NOW,
            )
            == 25
        )  # the holdout is left out
        with pytest.raises(ValueError, match="already assigned"):
            assign(engine, campaign, "nord", depcom=depcom)
        first = page(engine, "nord", None, Filters(), number=1, size=10)
        assert (first.campaign_id, first.total, first.pages) == ("c-1", 25, 3) and [r.rank for r in first.rows] == list(
            range(1, 11)
        )
        assert first.territories == ["75", "974"] and first.rows[0].benefits[0]["p_unclaimed"] == 0.2
        rsa = page(engine, "nord", "c-1", Filters(benefit="rsa", territory="974"), number=1, size=50)
        assert rsa.rows and all(r.territory == "974" and r.benefits[0]["benefit"] == "rsa" for r in rsa.rows)
        target = first.rows[1]
        log.record_outcomes(
            [
                Outcome.from_result(
                    target.household_id,
                    "rsa",
                    "opened",
                    NOW.date(),
                    amount_granted=250.0,
                    decision_id=target.decision_id,
                    sender="agent-1",
                )
            ]
        )
        log.record_outcomes(
            [
                Outcome.from_result(
                    target.household_id, "rsa", "declined", NOW.date(), decision_id=target.decision_id, sender="agent-1"
                )
            ]
        )
        declined = page(engine, "nord", "c-1", Filters(status="declined"), number=1, size=50)
        assert [r.household_id for r in declined.rows] == [target.household_id] and page(
            engine, "nord", "c-1", Filters(status="todo"), number=1, size=50
        ).total == 24
        case = household(engine, "nord", target.decision_id)
        assert case.status == "declined" and [h["status"] for h in case.history] == ["declined", "opened"]
        # a right opened for one benefit is the household's status, whatever another benefit's answer
        log.record_outcomes(
            [
                Outcome.from_result(
                    target.household_id,
                    "ppa",
                    "opened",
                    NOW.date(),
                    amount_granted=90.0,
                    decision_id=target.decision_id,
                    sender="agent-1",
                ),
                Outcome.from_result(
                    target.household_id,
                    "rsa",
                    "not_entitled",
                    NOW.date(),
                    decision_id=target.decision_id,
                    sender="agent-1",
                ),
            ]
        )
        assert household(engine, "nord", target.decision_id).status == "opened"
        assert [
            r.household_id for r in page(engine, "nord", "c-1", Filters(status="opened"), number=1, size=50).rows
        ] == [target.household_id]
        assert (
            household(engine, "sud", target.decision_id) is None
            and page(engine, "sud", None, Filters(), number=1, size=10).campaign_id is None
        )
        later = campaign.assign(campaign_id="c-2", household_id=[i + 100 for i in ids])
        assign(
            engine,
            later,
            "nord",
            depcom=pd.Series(depcom.to_numpy(), index=later["household_id"]),
            at=NOW + timedelta(days=1),
        )
        newest = page(engine, "nord", None, Filters(), number=1, size=10)
        assert (
            newest.campaigns == ["c-2", "c-1"] and newest.campaign_id == "c-2"
        )  # the newest by default, the other in the menu
        assert page(engine, "nord", "c-1", Filters(), number=1, size=10).campaign_id == "c-1"
    finally:
        caseload_metadata.drop_all(engine, checkfirst=True)
        if engine.dialect.name == "postgresql":  # a server shared by the session's tests: leave it as found
            with engine.begin() as conn:
                conn.exec_driver_sql("TRUNCATE outcomes, decisions CASCADE")
