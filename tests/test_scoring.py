"""Batch scoring and worklists: the same features as training, the same scores in one partition or
many, ranked lists written atomically, every household in the decision log."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nonrecours.app.cli import app
from nonrecours.core.config import LawConfig
from nonrecours.core.schema import PROFILES
from nonrecours.law.parameters import load_law_parameters
from nonrecours.serving.decision_log import DecisionLog, connect, pseudonymise
from nonrecours.serving.scoring import (
    WORKLIST_COLUMNS,
    ModelRanker,
    explain,
    score_extract,
    score_tables,
    worklist,
)
from nonrecours.serving.secrets import pseudonym_key, resolve
from nonrecours.training.registry import load_scorer

runner = CliRunner()


@pytest.fixture(scope="module")
def scorer(small_population, tracking_store):
    mlflow.set_tracking_uri(tracking_store)
    return load_scorer("models:/nonrecours/1")


@pytest.fixture(scope="module")
def ranker(scorer):
    return ModelRanker(scorer)


@pytest.fixture(scope="module")
def extract(tables):
    """The first 60 households of the small population, raw tables only."""
    hh = tables["households"].iloc[:60]
    return tables["individuals"][tables["individuals"]["household_id"].isin(hh["household_id"])], hh


def test_serving_builds_the_very_profiles_training_used(extract, tables, scorer, ranker):
    scored = score_tables(*extract, ranker, law=LawConfig(), css=load_law_parameters().css, n_reasons=3, language="en")
    trained_on = tables["profiles"][tables["profiles"]["household_id"].isin(extract[1]["household_id"])].reset_index(
        drop=True
    )
    pd.testing.assert_frame_equal(scored[PROFILES.names].reset_index(drop=True), trained_on)
    np.testing.assert_allclose(scored["p_unclaimed"], scorer.predict(trained_on))
    np.testing.assert_allclose(
        scored["expected_unclaimed_monthly"], scored["p_unclaimed"] * scored["estimated_monthly_amount"]
    )
    # up to three reasons from the model, then one line naming what the law engine estimated, if anything
    estimated = (scored["law_estimated_inputs"].astype(str) != "none").astype(int)
    assert (scored["reasons"].map(len) - estimated).between(1, 3).all()
    assert scored.loc[estimated == 1, "reasons"].map(lambda r: "estimated" in r[-1]).all()
    assert estimated.any() and not estimated.all()


def test_many_partitions_in_worker_processes_give_the_same_scores_as_one(extract, ranker):
    css = load_law_parameters().css
    one = score_tables(*extract, ranker, law=LawConfig(), css=css, n_reasons=2, language="en")
    many = score_extract(
        *extract, ranker, law=LawConfig(workers=2), css=css, n_reasons=2, partition_households=25, language="en"
    )
    pd.testing.assert_frame_equal(one.reset_index(drop=True), many.reset_index(drop=True))


def test_reasons_computed_for_some_rows_afterwards_are_the_ones_a_full_pass_gives(extract, ranker):
    """Batch scoring explains only the rows agents read: explained later, a row's reasons are the
    full pass's (a row's TreeSHAP contributions depend on that row alone); the others stay empty."""
    css = load_law_parameters().css
    full = score_tables(*extract, ranker, law=LawConfig(), css=css, n_reasons=3, language="en")
    bare = score_tables(*extract, ranker, law=LawConfig(), css=css, n_reasons=0, language="en")
    where = (bare["household_id"].isin(bare["household_id"].unique()[::4])).to_numpy()
    later = explain(bare, ranker, 3, where, "en")
    assert later.loc[where, "reasons"].tolist() == full.loc[where, "reasons"].tolist() and all(
        len(r) >= 1 for r in later.loc[where, "reasons"]
    )
    assert all(r == [] for r in later.loc[~where, "reasons"]) and all(r == [] for r in bare["reasons"])
    pd.testing.assert_frame_equal(later.drop(columns="reasons"), full.drop(columns="reasons"))


def test_a_worklist_ranks_households_by_what_one_contact_can_recover(small_population):
    wl = pd.read_csv(small_population / "worklist.csv")
    assert list(wl.columns) == list(WORKLIST_COLUMNS)
    households = pd.read_parquet(small_population / "households.parquet")
    assert set(wl["household_id"]) == set(households["household_id"]) and len(wl) == 8 * len(households)
    totals = wl.groupby("rank")["expected_unclaimed_monthly"].sum().sort_index()
    assert totals.is_monotonic_decreasing and wl.groupby("household_id")["rank"].nunique().eq(1).all()
    assert wl.groupby("rank")["expected_unclaimed_monthly"].apply(lambda s: s.is_monotonic_decreasing).all()
    assert wl["reasons"].str.contains("le score").all()  # in French: serving.language's default


def test_capacity_and_minimum_probability_cut_the_list():
    scored = pd.DataFrame(
        {
            "household_id": [1, 1, 2, 2, 3],
            "benefit": ["rsa", "af", "rsa", "af", "rsa"],
            "p_unclaimed": [0.9, 0.01, 0.5, 0.5, 0.2],
            "estimated_monthly_amount": [100.0, 100, 100, 100, 100],
            "reasons": [["x"]] * 5,
        }
    ).assign(expected_unclaimed_monthly=lambda d: d["p_unclaimed"] * d["estimated_monthly_amount"])
    wl = worklist(scored, capacity=2, min_probability=0.05)
    assert wl["household_id"].tolist() == [2, 2, 1]  # 2 recovers 100 in all, 1 only 91
    assert wl["rank"].tolist() == [1, 1, 2]


def test_scores_on_reused_law_results_are_the_ones_a_full_pass_gives(extract, ranker):
    """The API's reuse: entitlements taken for some households (as the decision log gives them
    back), the law engine run on the others, everything after it on all: the same rows."""
    from nonrecours.law.situation import entitlements_from_observed

    css = load_law_parameters().css
    full = score_tables(*extract, ranker, law=LawConfig(), css=css, n_reasons=3, language="en")
    entitlements = entitlements_from_observed(*extract, law=LawConfig(workers=1), css=css, quiet=True)
    some = entitlements[entitlements["household_id"].isin(extract[1]["household_id"].iloc[::3])]
    partly = score_tables(*extract, ranker, law=LawConfig(), css=css, n_reasons=3, known=some, language="en")
    pd.testing.assert_frame_equal(partly.reset_index(drop=True), full.reset_index(drop=True))
    every = score_tables(*extract, ranker, law=LawConfig(), css=css, n_reasons=3, known=entitlements, language="en")
    pd.testing.assert_frame_equal(every.reset_index(drop=True), full.reset_index(drop=True))


def test_every_household_of_the_demo_run_is_in_the_decision_log(small_population):
    log = DecisionLog(
        connect(f"sqlite:///{small_population / 'decisions.db'}"),
        pseudonym_key(resolve(small_population / "secrets.env", {})),
    )
    everything = log.read()
    assert set(everything["source"]) == {"batch", "campaign"}  # the pipeline ends with two rounds of outreach
    logged = everything[everything["source"] == "batch"]
    ids = pd.read_parquet(small_population / "households.parquet")["household_id"]
    assert len(logged) == len(ids) and set(logged["household_pseudonym"]) == {
        pseudonymise(int(h), log.key) for h in ids
    }
    assert set(logged["model_version"]) == {"1"}
    # each with its input digest, so the API can reuse the law engine's answer
    digests = logged["input_digest"]
    assert digests.notna().all() and digests.str.fullmatch("[0-9a-f]{64}").all() and digests.is_unique


def test_score_writes_a_parquet_worklist_cut_to_capacity_and_logs_it(small_population, tracking_store, tmp_path):
    out = tmp_path / "lists" / "top.parquet"
    db = tmp_path / "d.db"
    args = [
        "score",
        "--input",
        str(small_population),
        "--out",
        str(out),
        "--capacity",
        "10",
        "--tracking-uri",
        tracking_store,
        "--secrets",
        str(small_population / "secrets.env"),
        "--decision-log",
        f"sqlite:///{db}",
        "--workers",
        "1",
        "-q",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    wl = pd.read_parquet(out)
    assert wl["household_id"].nunique() == 10 and wl["rank"].max() == 10
    assert [p.name for p in out.parent.iterdir()] == ["top.parquet"]  # no temporary file left
    assert out.stat().st_mode & 0o777 == 0o600  # raw household ids: the owner's only
    logged = DecisionLog(connect(f"sqlite:///{db}"), b"x" * 16).read()
    assert len(logged) == 1500  # all scored, all logged
    # reasons where they are read: the ten households of the list, in the file and in the log alike
    explained = logged[logged["scores"].map(lambda s: any(b["reasons"] for b in s.values()))]
    assert len(explained) == 10 and wl["reasons"].str.contains("le score").all()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "list.txt"], "must end in .csv or .parquet"),
        (["--secrets", "__none__"], "NONRECOURS_PSEUDONYM_KEY must hold a secret"),
        (["--tracking-uri", "__empty__"], "no model nonrecours@champion"),
    ],
)
def test_score_refuses_clearly(small_population, tracking_store, tmp_path, monkeypatch, extra, message):
    monkeypatch.delenv("NONRECOURS_PSEUDONYM_KEY", raising=False)
    empty = tmp_path / "empty.env"
    empty.write_text("# nothing\n")
    opts = {
        "--out": str(tmp_path / "w.csv"),
        "--secrets": str(small_population / "secrets.env"),
        "--tracking-uri": tracking_store,
    }
    for k, v in zip(extra[::2], extra[1::2]):
        opts[k] = {"__none__": str(empty), "__empty__": f"sqlite:///{tmp_path / 'm.db'}"}.get(v, v)
    args = ["score", "--input", str(small_population), "--decision-log", f"sqlite:///{tmp_path / 'd.db'}", "-q"]
    for k, v in opts.items():
        args += [k, v]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_scoring_partitions_on_a_dask_cluster_give_the_local_result(extract, ranker):
    from dask.distributed import LocalCluster

    css = load_law_parameters().css
    ind, hh = extract
    few = hh.iloc[:6]
    members = ind[ind["household_id"].isin(few["household_id"])]
    local = score_tables(members, few, ranker, law=LawConfig(), css=css, n_reasons=2, language="en")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = score_extract(
            members,
            few,
            ranker,
            law=LawConfig(),
            css=css,
            n_reasons=2,
            language="en",
            partition_households=3,
            scheduler=cluster.scheduler_address,
            quiet=True,
        )
    pd.testing.assert_frame_equal(local.reset_index(drop=True), remote.reset_index(drop=True))


def test_the_production_path_runs_with_every_truth_file_deleted(small_population, tracking_store, tmp_path):
    """An agency holds no truth: entitlements, features and scoring run on a folder holding only
    the extract, and nothing they write carries a column of role `truth`."""
    import shutil

    from nonrecours.core.schema import OUTCOMES, TABLES

    folder = tmp_path / "agency"
    shutil.copytree(
        small_population,
        folder,
        ignore=shutil.ignore_patterns("next_quarter", "fresh", "shifted", "loop", "reports", "*.db", "mlruns"),
    )
    for truth in ("outcomes.parquet", "calibration.json", "world.yaml"):
        (folder / truth).unlink()
    shutil.rmtree(folder / "state")  # the simulator's state: truth too
    for p in ("entitlements.parquet", "profiles.parquet", "worklist.csv"):
        (folder / p).unlink(missing_ok=True)
    assert not list(folder.rglob("outcomes.parquet"))
    common = ["--workers", "1", "-q"]
    for args in (
        ["entitlements", "--input", str(folder), *common],
        ["features", "--input", str(folder)],
        [
            "score",
            "--input",
            str(folder),
            "--out",
            str(folder / "worklist.csv"),
            "--tracking-uri",
            tracking_store,
            "--secrets",
            str(small_population / "secrets.env"),
            "--decision-log",
            f"sqlite:///{tmp_path / 'd.db'}",
            *common,
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args[0], result.output)
    # names that only the truth uses (entitlements share `eligible` and `monthly_amount`, as the law engine's)
    truth = set(OUTCOMES.with_role("truth")) - {c.name for t in TABLES.values() for c in t.columns if c.role != "truth"}
    assert {"claimed", "p_claim", "claim_if_contacted"} <= truth
    for written in ("entitlements.parquet", "profiles.parquet"):
        assert not truth & set(pd.read_parquet(folder / written).columns), written
    assert not truth & set(pd.read_csv(folder / "worklist.csv").columns)
