"""The command line: help that answers, one folder for every stage, bad input refused clearly."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from nonrecours.app.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command, words",
    [
        ([], ["generate", "entitlements", "pipeline", "score", "serve"]),
        (["generate"], ["--households", "--seed", "--out", "--scheduler", "--observed-benefits"]),
        (["entitlements"], ["--input", "--out", "--scheduler", "--reference-month"]),
        (["pipeline"], ["--households", "--out"]),
        (["score"], ["--input", "--out", "--capacity", "--scheduler", "--decision-log", "--secrets", "worklist"]),
        (["serve"], ["--port", "--secrets", "--decision-log", "/readyz", "Bearer"]),
        (["keys"], ["--out", "pseudonymisation key", "--rotate"]),
        (["purge"], ["--before", "retention", "purges"]),
        (["grant-roles"], ["--service-role", "--monitoring-role"]),
    ],
)
def test_every_command_has_help_naming_its_options(command, words):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    for w in words:
        assert w in result.output


def test_the_pipeline_writes_everything_into_one_folder(small_population):
    names = {p.name for p in small_population.iterdir()}
    assert {
        "individuals.parquet",
        "households.parquet",
        "outcomes.parquet",
        "entitlements.parquet",
        "calibration.json",
    } <= names
    assert not any(n.endswith(".tmp") for n in names)


def test_the_pipeline_ends_with_a_report_on_a_fresh_draw_and_one_on_its_pay_cut_copy(small_population):
    import json

    reports = sorted(
        (small_population / "reports").glob("report-*.json"), key=lambda p: json.loads(p.read_text())["current"]
    )
    fresh, shifted = (json.loads(p.read_text()) for p in reports)
    assert fresh["current"].endswith("fresh") and shifted["current"].endswith("shifted")
    # the monitored windows are drawn at the pipeline's size (--households), with the next seed
    sizes = {f: len(pd.read_parquet(small_population / f / "households.parquet")) for f in (".", "fresh", "shifted")}
    assert sizes == {".": 1500, "fresh": 1500, "shifted": 1500}
    assert json.loads((small_population / "fresh" / "calibration.json").read_text())["seed"] == 8
    # the fresh draw keeps its outcomes: recall per group and Evidently's quality tests
    assert fresh["recall_gaps"] is not None and len(fresh["classification"]["tests"]) == 2
    # the pay-cut copy has none (its truth was drawn before the cut): drift, and no recall claimed
    assert not (small_population / "shifted" / "outcomes.parquet").exists()
    assert (
        shifted["verdict"] == "fail" and shifted["failures"][0].startswith("drift:") and shifted["recall_gaps"] is None
    )
    index = (small_population / "reports" / "index.html").read_text()
    assert all(p.with_suffix(".html").name in index for p in reports)


def test_the_pipeline_ends_with_three_rounds_of_the_agency_s_loop(small_population, tracking_store):
    from nonrecours.serving.decision_log import DecisionLog, connect
    from nonrecours.serving.secrets import pseudonym_key, read_secrets_file

    loop = small_population / "loop"
    campaigns = [pd.read_csv(loop / f"round-{n}" / "campaign.csv") for n in (1, 2, 3)]
    assert not (loop / "round-4" / "campaign.csv").exists() and (loop / "round-4" / "households.parquet").exists()
    log = DecisionLog(
        connect(f"sqlite:///{small_population / 'decisions.db'}"),
        pseudonym_key(read_secrets_file(small_population / "secrets.env")),
    )
    logged = [log.read_campaign(str(c["campaign_id"].iloc[0])) for c in campaigns]
    assert all(r["model_name"].str.startswith("loop: ").all() for r in logged)
    assert logged[0]["model_name"].iloc[0] == "loop: champion v1"  # round 1 plays the prior
    recorded = log.read_outcomes()
    assert {c["campaign_id"].iloc[0] for c in campaigns} <= set(recorded["campaign_id"].dropna())
    # 5% of the 1,500 households a round (the fixture's training.capacity_share)
    assert all(int(c["contacted"].sum()) == 75 for c in campaigns)


def test_entitlements_can_write_to_another_folder(small_population, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("individuals.parquet", "households.parquet"):
        shutil.copy(small_population / name, src / name)
    # Keep it quick: only the first 50 households.
    hh = pd.read_parquet(src / "households.parquet").head(50)
    ind = pd.read_parquet(src / "individuals.parquet")
    hh.to_parquet(src / "households.parquet")
    ind[ind["household_id"].isin(hh["household_id"])].to_parquet(src / "individuals.parquet")
    result = runner.invoke(
        app, ["entitlements", "--input", str(src), "--out", str(tmp_path / "out"), "-q", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "out" / "entitlements.parquet")) == 50 * 8


def _broken_copy(small_population, tmp_path, mutate):
    for name in ("individuals.parquet", "households.parquet"):
        shutil.copy(small_population / name, tmp_path / name)
    ind = pd.read_parquet(tmp_path / "individuals.parquet")
    mutate(ind)
    ind.to_parquet(tmp_path / "individuals.parquet")
    return runner.invoke(app, ["entitlements", "--input", str(tmp_path), "-q"])


def test_a_negative_pay_is_refused_naming_the_column_and_the_person(small_population, tmp_path):
    def negative(ind):
        ind.loc[3, "known_pay_monthly"] = -100.0

    result = _broken_copy(small_population, tmp_path, negative)
    assert result.exit_code == 2
    assert "known_pay_monthly" in result.output and "person_id=" in result.output
    assert not (tmp_path / "entitlements.parquet").exists()


def test_an_age_of_250_is_refused(small_population, tmp_path):
    def old(ind):
        ind.loc[0, "age"] = 250

    result = _broken_copy(small_population, tmp_path, old)
    assert result.exit_code == 2 and "age" in result.output and "maximum 120" in result.output


def test_a_person_in_an_unknown_household_is_refused(small_population, tmp_path):
    def orphan(ind):
        ind.loc[0, "household_id"] = 10**9

    result = _broken_copy(small_population, tmp_path, orphan)
    assert result.exit_code == 2 and "1000000000" in result.output


def test_a_missing_table_is_named(tmp_path):
    result = runner.invoke(app, ["entitlements", "--input", str(tmp_path), "-q"])
    assert result.exit_code == 2 and "individuals.parquet" in result.output


def test_an_unknown_observed_benefit_is_refused(tmp_path):
    result = runner.invoke(app, ["generate", "-n", "5", "--out", str(tmp_path), "--observed-benefits", "rsa,rmi"])
    assert result.exit_code == 2 and "rmi" in result.output


def test_serve_refuses_a_decision_log_it_cannot_open_without_printing_its_password(tmp_path):
    runner.invoke(app, ["keys", "--out", str(tmp_path / "secrets.env")])
    url = "postgresql+psycopg://agent:hunter2-secret@127.0.0.1:1/nonrecours"  # nothing listens on port 1
    result = runner.invoke(
        app,
        [
            "serve",
            "--secrets",
            str(tmp_path / "secrets.env"),
            "--decision-log",
            url,
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "decision log" in result.output and "127.0.0.1:1" in result.output and "cannot open it" in result.output
    assert "hunter2-secret" not in result.output and "***" in result.output


def test_rotating_the_pseudonym_key_keeps_the_old_one_as_retired_and_the_file_private(tmp_path):
    from nonrecours.serving.secrets import API_KEYS, PSEUDONYM_KEY, RETIRED_KEYS, read_secrets_file

    secrets = tmp_path / "secrets.env"
    assert runner.invoke(app, ["keys", "--out", str(secrets)]).exit_code == 0
    before = read_secrets_file(secrets)
    for _ in range(2):
        result = runner.invoke(app, ["keys", "--out", str(secrets), "--rotate"])
        assert result.exit_code == 0, result.output
    after = read_secrets_file(secrets)
    retired = after[RETIRED_KEYS].split(",")
    assert (
        after[PSEUDONYM_KEY] not in (before[PSEUDONYM_KEY], *retired)
        and retired[1] == before[PSEUDONYM_KEY]
        and len(retired) == 2
    )
    assert after[API_KEYS] == before[API_KEYS] and secrets.stat().st_mode & 0o777 == 0o600
    missing = runner.invoke(app, ["keys", "--out", str(tmp_path / "none.env"), "--rotate"])
    assert missing.exit_code == 2 and "no secrets file" in missing.output


def test_purge_applies_the_retention_period_and_records_itself(small_population, tmp_path):
    import shutil

    from nonrecours.serving.decision_log import connect, decisions, read_purges

    db = tmp_path / "decisions.db"
    shutil.copy(small_population / "decisions.db", db)
    url = f"sqlite:///{db}"
    engine = connect(url)
    with engine.connect() as conn:
        logged = conn.execute(decisions.select()).fetchall().__len__()
    assert logged > 0
    kept = runner.invoke(app, ["purge", "--decision-log", url])  # everything is recent: the two-year default keeps it
    assert kept.exit_code == 0 and "purged 0 decision(s)" in kept.output, kept.output
    gone = runner.invoke(app, ["purge", "--decision-log", url, "--before", "2999-01-01"])
    assert gone.exit_code == 0 and f"purged {logged:,} decision(s)" in gone.output, gone.output
    trail = read_purges(engine)
    assert list(trail["decisions"]) == [0, logged] and trail["before"].iloc[0].year < 2999
    refused = runner.invoke(
        app, ["grant-roles", "--service-role", "a", "--monitoring-role", "b", "--decision-log", url]
    )
    assert refused.exit_code == 2 and "roles are" in refused.output and "PostgreSQL's" in refused.output
