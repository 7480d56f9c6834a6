"""The decision log (groundwork of the serving stage): pseudonymised, append-only, WAL SQLite."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text

from serving.decision_log import Decision, DecisionLog, Outcome, connect, decisions, key_from_environment, outcomes, pseudonymise

KEY = b"a-test-key-of-at-least-16-chars"


def decision(household_id=42, benefit="rsa", p=0.8, amount=500.0) -> Decision:
    return Decision(household_id, benefit, p, amount, ["already receives housing aid"], {"head_age": 40, "tenure": "private_renter"})


@pytest.fixture
def log(tmp_path):
    return DecisionLog(connect(f"sqlite:///{tmp_path / 'decisions.db'}"), KEY)


def test_a_scored_household_is_stored_under_a_keyed_pseudonym_never_its_id(log, tmp_path):
    log.record_decisions([decision(household_id=123456789)], model_name="nonrecours", model_version="3")
    with log.engine.connect() as conn:
        row = conn.execute(select(decisions)).mappings().one()
    assert row["household_pseudonym"] == pseudonymise(123456789, KEY) != pseudonymise(123456789, b"another-key-of-16-chars")
    assert "123456789" not in str(dict(row))
    assert row["model_version"] == "3" and row["expected_unclaimed_monthly"] == pytest.approx(400.0)
    assert b"123456789" not in (tmp_path / "decisions.db").read_bytes()


def test_sqlite_runs_in_wal_mode(log):
    with log.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_an_outcome_is_linked_to_the_scored_household(log):
    log.record_decisions([decision()], model_name="nonrecours", model_version="1")
    pseudonym = log.record_outcome(Outcome(42, "rsa", True, True, 560.0, date(2026, 11, 2)))
    with log.engine.connect() as conn:
        row = conn.execute(select(outcomes)).mappings().one()
    assert row["household_pseudonym"] == pseudonym == pseudonymise(42, KEY) and row["claimed"]


def test_an_outcome_for_a_household_never_scored_is_refused_and_nothing_is_written(log):
    with pytest.raises(LookupError, match="no decision"):
        log.record_outcome(Outcome(7, "rsa", True, None, None, date(2026, 11, 2)))
    with log.engine.connect() as conn:
        assert conn.execute(select(outcomes)).first() is None


def test_the_key_must_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("NONRECOURS_PSEUDONYM_KEY", "short")
    with pytest.raises(ValueError, match="at least 16"):
        key_from_environment()
    monkeypatch.setenv("NONRECOURS_PSEUDONYM_KEY", "x" * 32)
    assert key_from_environment() == b"x" * 32
