"""The decision log: one row per household scored, pseudonymised, append-only; SQLite (WAL) and a
real PostgreSQL server behave the same."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, text

from nonrecours.core.schema import PROFILES
from nonrecours.serving.decision_log import (
    REUSED_SOURCE,
    DecisionLog,
    Outcome,
    audit_attributes,
    connect,
    decisions,
    grant_roles,
    input_digests,
    key_id,
    outcomes,
    profiles_from_log,
    pseudonymise,
    purge,
    read_purges,
)

KEY = b"a-test-key-of-at-least-16-chars"
TODAY = datetime.now(UTC).date()


def scored_rows(profiles: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Profiles with made-up scores (what nonrecours.serving.scoring adds)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=len(profiles))
    amount = np.where(profiles["law_amount"] > 0, profiles["law_amount"], 100.0)
    out = profiles.assign(p_unclaimed=p, estimated_monthly_amount=amount, expected_unclaimed_monthly=p * amount)
    out["reasons"] = [["pay fell by 40% against last year's monthly average (raises the score)"]] * len(out)
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'decisions.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = connect(url)
    yield DecisionLog(engine, KEY)
    if request.param == "postgresql":  # one server for the session: leave it empty
        with engine.begin() as conn:  # TRUNCATE: the append-only triggers refuse DELETE
            conn.exec_driver_sql("TRUNCATE outcomes, campaign_assignments, audit_attributes, purges, decisions")
    engine.dispose()


@pytest.fixture(scope="module")
def some_profiles(tables):
    ids = tables["profiles"]["household_id"].drop_duplicates().iloc[:40]
    return tables["profiles"][tables["profiles"]["household_id"].isin(ids)].reset_index(drop=True)


def test_one_row_per_household_under_a_keyed_pseudonym_never_the_id(log, some_profiles):
    n = log.record_scored(scored_rows(some_profiles), model_name="nonrecours", model_version="3", source="batch")
    logged = log.read()
    ids = some_profiles["household_id"].unique()
    assert n == len(logged) == len(ids)
    assert set(logged["household_pseudonym"]) == {pseudonymise(int(h), KEY) for h in ids}
    assert pseudonymise(int(ids[0]), KEY) != pseudonymise(int(ids[0]), b"another-key-of-16-chars")
    assert (logged["model_version"] == "3").all() and (logged["source"] == "batch").all()
    assert all(len(s) == 8 for s in logged["scores"])
    raw = str(logged[["features", "scores"]].to_dict("records"))
    assert f"'household_id': {int(ids[0])}" not in raw


def test_the_log_gives_back_the_profiles_and_scores_that_were_scored(log, some_profiles):
    scored = scored_rows(some_profiles)
    log.record_scored(scored, model_name="nonrecours", model_version="1", source="api")
    back = profiles_from_log(log.read())
    assert len(back) == len(scored)
    id_of = dict(zip(back["household_pseudonym"], back["household_id"]))
    expected = scored.assign(household_id=scored["household_id"].map(lambda h: id_of[pseudonymise(int(h), KEY)]))
    key = ["household_id", "benefit"]
    a = back.sort_values(key).reset_index(drop=True)
    b = expected.sort_values(key).reset_index(drop=True)
    for c in [c for c in PROFILES.names if c != "household_id"]:
        pd.testing.assert_series_equal(a[c], b[c].astype(a[c].dtype), check_names=False, obj=c)
    np.testing.assert_allclose(a["expected_unclaimed_monthly"], b["expected_unclaimed_monthly"])
    assert a["reasons"].map(len).eq(1).all()


def test_rows_numbered_by_position_are_logged_under_the_callers_ids(log, some_profiles):
    one = some_profiles[some_profiles["household_id"] == some_profiles["household_id"].iloc[0]]
    twice = pd.concat([one.assign(household_id=0), one.assign(household_id=1)])
    log.record_scored(scored_rows(twice), model_name="nonrecours", model_version="1", source="api", ids=[555, 555])
    logged = log.read()
    assert len(logged) == 2 and set(logged["household_pseudonym"]) == {pseudonymise(555, KEY)}


def test_an_outcome_is_linked_to_the_households_latest_decision(log, some_profiles):
    scored = scored_rows(some_profiles)
    hid = int(scored["household_id"].iloc[0])
    log.record_scored(scored, model_name="nonrecours", model_version="1", source="batch")
    log.record_scored(scored[scored["household_id"] == hid], model_name="nonrecours", model_version="2", source="api")
    receipt = log.record_outcome(Outcome(hid, "rsa", True, True, 560.0, TODAY))
    with log.engine.connect() as conn:
        row = conn.execute(select(outcomes)).mappings().one()
        version = conn.execute(select(decisions.c.model_version).where(decisions.c.id == row["decision_id"])).scalar()
    assert row["household_pseudonym"] == receipt.household_pseudonym == pseudonymise(hid, KEY)
    assert version == "2" and row["claimed"] and row["amount_granted"] == 560.0


def test_an_outcome_for_a_household_never_scored_is_refused_and_nothing_is_written(log):
    with pytest.raises(LookupError, match="household_id: no decision"):
        log.record_outcome(Outcome(7, "rsa", True, None, None, TODAY))
    with log.engine.connect() as conn:
        assert conn.execute(select(outcomes)).first() is None


def test_a_time_window_reads_only_the_decisions_inside_it(log, some_profiles):
    scored = scored_rows(some_profiles)
    first = scored["household_id"].iloc[0]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    log.record_scored(scored[scored["household_id"] == first], model_name="m", model_version="1", source="api", at=t0)
    log.record_scored(
        scored[scored["household_id"] != first],
        model_name="m",
        model_version="1",
        source="api",
        at=t0 + timedelta(days=2),
    )
    assert len(log.read(until=t0 + timedelta(days=1))) == 1
    assert len(log.read(since=t0 + timedelta(days=1))) == some_profiles["household_id"].nunique() - 1


def test_outcomes_of_a_window_come_back_on_their_rows_the_latest_record_winning(log, some_profiles):
    scored = scored_rows(some_profiles)
    ids = scored["household_id"].unique()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    log.record_scored(scored[scored["household_id"] == ids[0]], model_name="m", model_version="1", source="api", at=t0)
    log.record_scored(
        scored[scored["household_id"] != ids[0]],
        model_name="m",
        model_version="1",
        source="api",
        at=t0 + timedelta(days=2),
    )
    log.record_outcome(Outcome(int(ids[0]), "rsa", True, None, None, date(2026, 1, 5)))  # outside the window below
    log.record_outcome(Outcome(int(ids[1]), "rsa", True, None, None, date(2026, 1, 5)))
    log.record_outcome(Outcome(int(ids[1]), "rsa", True, True, 400.0, date(2026, 2, 1)))  # corrects the first
    log.record_outcome(Outcome(int(ids[2]), "css_free", False, None, None, date(2026, 1, 5)))
    since = t0 + timedelta(days=1)
    recorded = log.read_outcomes(since=since)
    assert len(recorded) == 2
    back = profiles_from_log(log.read(since=since), recorded)
    assert len(back) == len(scored[scored["household_id"] != ids[0]])
    who = dict(zip(back["household_pseudonym"], back["household_id"]))

    def row(hid, b):
        return back[(back["household_id"] == who[pseudonymise(int(hid), KEY)]) & (back["benefit"] == b)].iloc[0]

    assert row(ids[1], "rsa")["claimed"] and row(ids[1], "rsa")["amount_granted"] == 400.0
    assert not row(ids[2], "css_free")["contacted"] and pd.isna(row(ids[2], "css_free")["claimed"])
    assert back["contacted"].notna().sum() == 2 and back["benefit"].dtype == some_profiles["benefit"].dtype


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'd.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_short_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 16"):
        DecisionLog(connect(f"sqlite:///{tmp_path / 'd.db'}"), b"short")


def test_secrets_come_from_the_environment_over_the_file(tmp_path):
    from nonrecours.serving.secrets import (
        API_KEYS,
        PSEUDONYM_KEY,
        api_keys,
        new_secrets_file,
        pseudonym_key,
        resolve,
    )

    path = tmp_path / "secrets.env"
    assert new_secrets_file(path) and not new_secrets_file(path)  # never overwritten
    assert path.stat().st_mode & 0o777 == 0o600
    from_file = resolve(path, {})
    assert len(pseudonym_key(from_file)) >= 32 and len(api_keys(from_file)) == 1
    strong = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, 43 distinct
    assert pseudonym_key(resolve(path, {PSEUDONYM_KEY: strong, "OTHER": "y"})) == strong.encode()
    for weak in ("short", "x" * 20, "ab" * 30):  # too short; long but one or two characters repeated
        with pytest.raises(ValueError, match="at least 32 random bytes"):
            pseudonym_key(resolve(path, {PSEUDONYM_KEY: weak}))
    with pytest.raises(ValueError, match="NONRECOURS_API_KEYS"):
        api_keys({API_KEYS: "tooshort"})


def test_a_campaign_is_logged_with_its_arms_and_outcomes_answer_its_decisions_once(log, some_profiles):
    """Every campaign household gets a decision and an assignment; an outcome names the decision it
    answers (not merely the latest), a retried post with the same idempotency key is recorded
    once, and a decision of another household is refused."""
    from nonrecours.serving.campaign import CampaignPlan, plan_campaign

    scored = scored_rows(some_profiles)
    campaign = plan_campaign(
        scored, CampaignPlan(capacity=10, holdout_share=0.3, exploration_share=0.2, strata=5, seed=4)
    )
    ids = log.record_campaign(scored, campaign, model_name="nonrecours", model_version="3")
    assigned = log.read_campaign(str(campaign["campaign_id"].iloc[0]))
    assert len(assigned) == len(campaign) == len(ids) and set(assigned["decision_id"]) == set(ids)
    assert (
        set(assigned["arm"]) <= {"contact", "holdout", "explore", "pool"} and (assigned["model_version"] == "3").all()
    )
    first, other = (int(h) for h in campaign["household_id"].iloc[:2])
    log.record_scored(
        scored[scored["household_id"] == first], model_name="nonrecours", model_version="4", source="api"
    )  # a re-score after the campaign
    o = Outcome.from_result(
        first,
        "rsa",
        "opened",
        TODAY,
        amount_granted=500.0,
        campaign_id="c1",
        decision_id=int(ids[first]),
        idempotency_key="k-0000001",
    )
    receipt = log.record_outcome(o)
    again = log.record_outcome(o)
    assert receipt.decision_id == again.decision_id == int(ids[first])  # the campaign's decision, not the re-score
    recorded = log.read_outcomes()
    assert len(recorded) == 1 and recorded["result"].iloc[0] == "opened" and recorded["claimed"].iloc[0]
    with pytest.raises(LookupError, match="not one of this household"):
        log.record_outcome(Outcome.from_result(other, "rsa", "declined", TODAY, decision_id=int(ids[first])))
    with pytest.raises(ValueError, match="another household"):
        log.record_outcome(Outcome.from_result(other, "rsa", "declined", TODAY, idempotency_key="k-0000001"))
    with pytest.raises(LookupError, match="not in the decision log"):
        log.read_campaign("nope")


def test_on_postgresql_the_database_refuses_to_change_or_delete_a_logged_row(postgres_url, some_profiles):
    from sqlalchemy import update
    from sqlalchemy.exc import DBAPIError

    engine = connect(postgres_url)
    log = DecisionLog(engine, KEY)
    try:
        log.record_scored(scored_rows(some_profiles), model_name="m", model_version="1", source="batch")
        with pytest.raises(DBAPIError, match="append-only: UPDATE on decisions refused"), engine.begin() as conn:
            conn.execute(update(decisions).values(model_version="forged"))
        with pytest.raises(DBAPIError, match="append-only: DELETE on decisions refused"), engine.begin() as conn:
            conn.execute(decisions.delete())
        assert (log.read()["model_version"] == "1").all() and len(log.read()) > 0
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE outcomes, campaign_assignments, audit_attributes, purges, decisions")
        engine.dispose()


def test_protected_attributes_sit_apart_from_the_scoring_rows_and_come_back_for_monitoring(log, some_profiles):
    """The decision row keeps the model's features only; sex, disability, nationality group and age
    band go to ``audit_attributes`` (with its purpose in the schema), from which monitoring's read
    puts them back on the profiles."""
    from nonrecours.core.schema import PROTECTED

    log.record_scored(scored_rows(some_profiles), model_name="m", model_version="1", source="batch")
    plain = log.read(audit=False)
    assert not any(c in row for row in plain["features"] for c in PROTECTED)
    assert not any(c in str(row) for row in plain["scores"] for c in PROTECTED)
    with log.engine.connect() as conn:
        audit = pd.DataFrame(conn.execute(select(audit_attributes)).mappings().all())
    assert len(audit) == len(plain) and set(audit["decision_id"]) == set(plain["id"])
    assert "fairness auditing only" in audit_attributes.comment
    back = profiles_from_log(log.read())
    first = some_profiles.drop_duplicates("household_id").set_index("household_id")
    who = {pseudonymise(int(h), KEY): h for h in first.index}
    by_decision = dict(zip(plain["id"], plain["household_pseudonym"]))
    for c in PROTECTED:
        expected = back["household_id"].map(lambda d, c=c: first.loc[who[by_decision[d]], c])
        assert (back[c].astype(str) == expected.astype(str)).all(), c


def test_after_a_key_rotation_outcomes_still_find_decisions_made_under_the_retired_key(log, some_profiles):
    scored = scored_rows(some_profiles)
    hid = int(scored["household_id"].iloc[0])
    log.record_scored(scored[scored["household_id"] == hid], model_name="m", model_version="1", source="api")
    new_key = b"the-next-key-of-at-least-32-bytes-000000000"
    rotated = DecisionLog(log.engine, new_key, retired=[KEY])
    receipt = rotated.record_outcome(Outcome(hid, "rsa", True, True, 500.0, TODAY))
    assert receipt.household_pseudonym == pseudonymise(hid, KEY)  # linked to the old decision
    rotated.record_scored(scored[scored["household_id"] == hid], model_name="m", model_version="2", source="api")
    logged = rotated.read()
    assert list(logged["key_id"]) == [key_id(KEY), key_id(new_key)] and key_id(KEY) != key_id(new_key)
    with log.engine.connect() as conn:
        assert conn.execute(select(outcomes.c.key_id)).scalar() == key_id(KEY)
    latest = rotated.record_outcome(Outcome(hid, "rsa", True, True, 510.0, TODAY))
    assert latest.decision_id == int(logged["id"].iloc[1])  # the latest decision, across keys
    with pytest.raises(LookupError, match="no decision"):  # without the retired key, the history is unlinked
        DecisionLog(log.engine, new_key).record_outcome(
            Outcome(int(scored["household_id"].iloc[-1]), "rsa", True, None, None, TODAY)
        )


def test_an_outcome_dated_before_its_decision_is_refused(log, some_profiles):
    scored = scored_rows(some_profiles)
    hid = int(scored["household_id"].iloc[0])
    log.record_scored(
        scored[scored["household_id"] == hid],
        model_name="m",
        model_version="1",
        source="api",
        at=datetime(2026, 3, 10, 9, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="outcome_date: 2026-03-01 is before the decision"):
        log.record_outcome(Outcome(hid, "rsa", True, None, None, date(2026, 3, 1)))
    assert log.read_outcomes().empty
    log.record_outcome(Outcome(hid, "rsa", True, None, None, date(2026, 3, 9)))  # a day's slack for time zones
    assert len(log.read_outcomes()) == 1


def test_a_purge_removes_what_is_older_than_the_cut_off_and_is_itself_recorded(log, some_profiles):
    scored = scored_rows(some_profiles)
    ids = scored["household_id"].unique()
    old, recent = datetime(2023, 1, 5, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)
    log.record_scored(
        scored[scored["household_id"].isin(ids[:10])], model_name="m", model_version="1", source="api", at=old
    )
    log.record_scored(
        scored[~scored["household_id"].isin(ids[:10])], model_name="m", model_version="1", source="api", at=recent
    )
    log.record_outcome(Outcome(int(ids[0]), "rsa", True, None, None, date(2023, 2, 1)))
    log.record_outcome(Outcome(int(ids[20]), "rsa", True, None, None, date(2026, 2, 1)))
    receipt = purge(log.engine, datetime(2024, 1, 1, tzinfo=UTC), by="test")
    assert (receipt.decisions, receipt.outcomes) == (10, 1)
    left = log.read()
    assert len(left) == len(ids) - 10 and left["audit"].map(bool).all()
    assert len(log.read_outcomes()) == 1
    with log.engine.connect() as conn:
        assert conn.execute(select(audit_attributes)).mappings().all().__len__() == len(ids) - 10
    trail = read_purges(log.engine)
    assert len(trail) == 1 and trail["decisions"].iloc[0] == 10 and trail["purged_by"].iloc[0] == "test"


def test_on_postgresql_only_the_monitoring_role_reads_the_audit_attributes(postgres_url, some_profiles):
    """The service's role appends scores and their audit attributes but cannot read the latter,
    nor update a row; the monitoring role reads them."""
    from sqlalchemy.exc import DBAPIError

    owner = connect(postgres_url)
    with owner.begin() as conn:
        for role in ("nonrecours_service_t", "nonrecours_monitor_t"):
            conn.exec_driver_sql(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE "
                f"{role} LOGIN; END IF; END $$"
            )
    grant_roles(owner, service="nonrecours_service_t", monitoring="nonrecours_monitor_t")
    as_role = lambda role: connect(postgres_url.replace("//nonrecours@", f"//{role}@"))  # noqa: E731
    service, monitor = as_role("nonrecours_service_t"), as_role("nonrecours_monitor_t")
    try:
        log = DecisionLog(service, KEY)
        log.record_scored(scored_rows(some_profiles), model_name="m", model_version="1", source="batch")
        hid = int(some_profiles["household_id"].iloc[0])
        log.record_outcome(Outcome(hid, "rsa", True, None, None, TODAY))
        assert len(log.read(audit=False)) == some_profiles["household_id"].nunique()
        with pytest.raises(DBAPIError, match="permission denied"):
            log.read()
        with pytest.raises(DBAPIError, match="permission denied"), service.begin() as conn:
            conn.execute(audit_attributes.delete())
        seen = DecisionLog(monitor, KEY).read()
        assert seen["audit"].map(lambda a: a["head_sex"] is not None).all()
    finally:
        for e in (service, monitor):
            e.dispose()
        with owner.begin() as conn:
            conn.exec_driver_sql("TRUNCATE outcomes, campaign_assignments, audit_attributes, purges, decisions")
        owner.dispose()


def test_a_households_input_digest_is_the_same_from_a_batch_extract_and_from_a_request(tables):
    """The digest the API computes on a request (members in any order) matches the one batch
    scoring stored for the same household; any changed input, another key or another law engine
    gives another digest."""
    from nonrecours.serving.request import Household, from_tables, to_tables

    ids = tables["households"]["household_id"].iloc[:40]
    individuals = tables["individuals"][tables["individuals"]["household_id"].isin(ids)]
    households = tables["households"][tables["households"]["household_id"].isin(ids)]
    batch = input_digests(individuals, households, key=KEY, law_version="law-1")
    bodies = from_tables(individuals, households)
    for body in bodies:
        body["members"] = body["members"][::-1]
    api = input_digests(*to_tables([Household.model_validate(b) for b in bodies]), key=KEY, law_version="law-1")
    assert api.tolist() == batch.loc[[b["household_id"] for b in bodies]].tolist() and batch.is_unique

    several = next(b for b in bodies if len(b["members"]) > 1)
    changed = copy.deepcopy(bodies)
    target = next(b for b in changed if b["household_id"] == several["household_id"])
    target["members"][-1]["age"] += 1
    again = input_digests(*to_tables([Household.model_validate(b) for b in changed]), key=KEY, law_version="law-1")
    differs = again.to_numpy() != api.to_numpy()
    assert differs.sum() == 1 and bodies[int(np.flatnonzero(differs)[0])]["household_id"] == several["household_id"]
    assert not set(input_digests(individuals, households, key=KEY[::-1], law_version="law-1")) & set(batch)
    assert not set(input_digests(individuals, households, key=KEY, law_version="law-2")) & set(batch)


def test_the_law_engines_answer_is_reused_only_for_unchanged_inputs_within_the_window(log, some_profiles):
    """A logged answer comes back, to the cent, for the households whose digest matches, within
    the window, from a decision that ran the law engine (not itself a reuse), under any key."""
    from nonrecours.core.schema import ENTITLEMENTS

    rows = scored_rows(some_profiles)
    ids = rows["household_id"].drop_duplicates().tolist()
    digests = {h: f"{h:064x}" for h in ids}
    week_ago = datetime.now(UTC) - timedelta(days=7)
    log.record_scored(rows, model_name="m", model_version="1", source="batch", at=week_ago, digests=digests)
    asked = [ids[0], ids[1], ids[2]]
    known, found = log.reusable_entitlements(
        asked, [digests[ids[0]], "0" * 64, digests[ids[2]]], since=week_ago - timedelta(days=1)
    )
    assert sorted(found) == [0, 2] and all(
        at == week_ago.replace(microsecond=at.microsecond) for _, at in found.values()
    )
    expected = rows[rows["household_id"].isin([ids[0], ids[2]])]
    assert known[ENTITLEMENTS.names[1:]].astype(str).to_numpy().tolist() == (
        expected.rename(
            columns={
                "law_eligible": "eligible",
                "law_amount": "monthly_amount",
                "law_estimated_inputs": "estimated_inputs",
            }
        )[ENTITLEMENTS.names[1:]]
        .astype(str)
        .to_numpy()
        .tolist()
    )
    assert known["household_id"].tolist() == [0] * 8 + [2] * 8 and list(known["monthly_amount"]) == list(
        expected["law_amount"]
    )
    assert not log.reusable_entitlements(asked, [digests[h] for h in asked], since=week_ago + timedelta(hours=1))[1]
    # a reuse is logged as such and never reused itself
    log.record_scored(
        rows[rows["household_id"] == ids[3]], model_name="m", model_version="1", source=REUSED_SOURCE, digests=digests
    )
    assert not log.reusable_entitlements([ids[3]], [digests[ids[3]]], since=week_ago + timedelta(hours=1))[1]
    # after a key rotation the old decisions still match (the caller's digest decides)
    rotated = DecisionLog(log.engine, b"another-key-of-at-least-16-chars", retired=[KEY])
    assert sorted(
        rotated.reusable_entitlements(asked, [digests[h] for h in asked], since=week_ago - timedelta(days=1))[1]
    ) == [0, 1, 2]


def test_a_log_made_before_the_added_columns_gets_them_and_keeps_its_rows(tmp_path, some_profiles):
    """A decision log written by an earlier release (no key_id, no input_digest) is opened, not
    refused: the columns are added, NULL on the old rows, and new rows fill them."""
    from sqlalchemy import create_engine, inspect

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, household_pseudonym VARCHAR(64) NOT "
            "NULL, scored_at DATETIME NOT NULL, "
            "model_name VARCHAR(200) NOT NULL, model_version VARCHAR(50) NOT NULL, source VARCHAR(20) NOT "
            "NULL, features JSON NOT NULL, scores JSON NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO decisions (household_pseudonym, scored_at, model_name, model_version, source, "
            "features, scores) "
            "VALUES ('p', '2026-01-01 00:00:00', 'm', '1', 'batch', '{}', '{}')"
        )
    old.dispose()
    log = DecisionLog(connect(url), KEY)
    assert {"key_id", "input_digest"} <= {c["name"] for c in inspect(log.engine).get_columns("decisions")}
    rows = scored_rows(some_profiles)
    log.record_scored(
        rows,
        model_name="m",
        model_version="2",
        source="batch",
        digests={h: "d" * 64 for h in rows["household_id"].unique()},
    )
    logged = log.read()
    assert (
        logged.loc[0, "household_pseudonym"] == "p"
        and pd.isna(logged.loc[0, "input_digest"])
        and pd.isna(logged.loc[0, "key_id"])
    )
    assert (logged["input_digest"].iloc[1:] == "d" * 64).all() and len(logged) == 1 + rows["household_id"].nunique()
