"""``nonrecours loop`` for real, on the session's 1,500 households and their champion: the rounds'
folders and table, MLflow, the registry left alone; a loop killed in a round and resumed gives the
rounds an uninterrupted one gives; the agency's side runs with every simulator file out of its
reach; with outcomes that are pure noise the loop never leaves the prior; and the refusals."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from nonrecours.app.cli import app
from nonrecours.core.config import Settings
from nonrecours.core.schema import OUTREACH_RESULTS
from nonrecours.serving.decision_log import DecisionLog
from nonrecours.serving.loop import (
    LOOP_FILE,
    ROUND_FILE,
    SIMULATOR_FILES,
    LoopPlan,
    SimulatedField,
    run_loop,
    tracked_loop,
)
from nonrecours.serving.secrets import resolve

pytestmark = pytest.mark.slow
AGENCY_COLUMNS = ["round", "month", "ranking played", "contacts", "rights opened", "EUR/month recorded", "gate"]
OUTCOME_DATE = date(2026, 1, 5)


def settings() -> Settings:
    return Settings.model_validate({"law": {"workers": 1}})


def open_log(population: Path, folder: Path) -> DecisionLog:
    return DecisionLog.open(f"sqlite:///{folder / 'decisions.db'}", resolve(population / "secrets.env", {}))


@pytest.fixture(scope="module")
def uninterrupted(small_population):
    """The demo's loop (``nonrecours pipeline`` runs it, as ``nonrecours loop`` does): its folder
    and what it was asked."""
    out = small_population / "loop"
    return out, json.loads((out / LOOP_FILE).read_text())["identity"]


def play(population: Path, folder: Path, store: str, asked: dict, field=None, *, rounds=None, resume=False):
    rounds = rounds or len(list((population / "loop").glob(f"round-*/{ROUND_FILE}")))
    plan = LoopPlan(population, folder / "loop", rounds, asked["capacity"], asked["seed"])
    s = settings()
    field = field or SimulatedField(s, OUTCOME_DATE, asked["seed"])
    return run_loop(plan, s, store, open_log(population, folder), field, resume=resume)


def lines(out: Path, rounds: int | None = None) -> pd.DataFrame:
    found = rounds or len(list(out.glob(f"round-*/{ROUND_FILE}")))
    return pd.DataFrame([json.loads((out / f"round-{n}" / ROUND_FILE).read_text()) for n in range(1, found + 1)])


def test_each_round_is_a_complete_quarter_folder_with_its_campaign_and_its_line(uninterrupted):
    out, asked = uninterrupted
    rounds = len(lines(out))
    assert rounds == 3  # the demo's
    for n in range(1, rounds + 2):
        for name in ("individuals.parquet", "households.parquet", "outcomes.parquet", "world.yaml", "state"):
            assert (out / f"round-{n}" / name).exists(), (n, name)
    for n in range(1, rounds + 1):
        folder = out / f"round-{n}"
        for name in ("entitlements.parquet", "profiles.parquet", "campaign.csv", ROUND_FILE, "ranking"):
            assert (folder / name).exists(), (n, name)
        campaign = pd.read_csv(folder / "campaign.csv")
        assert campaign["contacted"].sum() == asked["capacity"]
        assert {"campaign_id", "arm", "propensity", "decision_id"} <= set(campaign.columns)
        assert (folder / "campaign.csv").stat().st_mode & 0o077 == 0  # raw household ids: the owner's only
        outcomes = pd.read_parquet(folder / "outcomes.parquet")
        assert {"p_claim_if_contacted", "p_claim_if_not_contacted", "claim_if_contacted"} <= set(outcomes.columns)
    table = lines(out)
    assert list(table["round"]) == [1, 2, 3]
    assert (table["contacts"] == asked["capacity"]).all()
    assert (table["low"] <= table["estimated EUR/month caused"]).all()
    assert (table["estimated EUR/month caused"] <= table["high"]).all()
    assert (table["true ceiling"] >= table["true observed-feature limit"]).all()
    assert (table["true ceiling"] >= table["true played"]).all()
    assert np.isfinite(table["AUTOC"]).all() and (table["AUTOC se"] > 0).all()  # RATE of the ranking played
    assert table["paired with"].notna().all()
    assert table["month"].is_monotonic_increasing and table["month"].is_unique  # a quarter on, each round


def test_the_loop_is_in_mlflow_and_leaves_the_registry_alone(uninterrupted, tracking_store):
    out, _ = uninterrupted
    client = MlflowClient(tracking_uri=tracking_store, registry_uri=tracking_store)
    parent = json.loads((out / LOOP_FILE).read_text())["mlflow_run"]
    artifacts = {a.path for a in client.list_artifacts(parent, "loop")}
    assert {"loop/rounds.json", "loop/rounds.png"} <= artifacts
    rounds = client.search_runs(
        [client.get_run(parent).info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert sorted(r.data.tags["round"] for r in rounds) == ["1", "2", "3"]
    for r in rounds:
        assert "gate" in r.data.tags and "labels" in r.data.metrics
        assert "paired_with" in r.data.params and "contender_next" in r.data.tags
        assert any(a.path == "ranking" for a in client.list_artifacts(r.info.run_id))
    for run in [*rounds, client.get_run(parent)]:  # no model version of the loop: @champion moves by train's gate only
        assert client.search_model_versions(f"run_id = '{run.info.run_id}'") == []


class Killed(RuntimeError):
    pass


class KilledInRound(SimulatedField):
    """The field, killed while drawing the quarter after round ``at``."""

    def __init__(self, *args, at: int, **kw):
        super().__init__(*args, **kw)
        self.at = at

    def draw_next(self, folder, out, contacted):
        if folder.name == f"round-{self.at}":
            out.mkdir(parents=True)
            (out / "households.parquet").write_text("half written")
            raise Killed(folder.name)
        super().draw_next(folder, out, contacted)


def test_a_loop_killed_in_a_round_and_resumed_gives_the_uninterrupted_rounds(
    uninterrupted, small_population, tracking_store, tmp_path
):
    out, asked = uninterrupted
    killed = KilledInRound(settings(), OUTCOME_DATE, asked["seed"], at=2)
    with pytest.raises(Killed):
        play(small_population, tmp_path, tracking_store, asked, killed)
    assert (tmp_path / "loop" / "round-1" / ROUND_FILE).exists()
    assert not (tmp_path / "loop" / "round-2" / ROUND_FILE).exists()
    with pytest.raises(Exception, match="holds another loop"):
        play(small_population, tmp_path, tracking_store, asked)
    result = play(small_population, tmp_path, tracking_store, asked, resume=True)
    pd.testing.assert_frame_equal(result.table, lines(out), check_dtype=False)
    for n in range(1, len(result.table) + 1):
        mine = pd.read_csv(tmp_path / "loop" / f"round-{n}" / "campaign.csv").drop(columns="decision_id")
        theirs = pd.read_csv(out / f"round-{n}" / "campaign.csv").drop(columns="decision_id")
        pd.testing.assert_frame_equal(mine, theirs)
    # every outcome recorded once, though round 2's field was played before and after the kill
    recorded = open_log(small_population, tmp_path).read_outcomes()
    assert not recorded.duplicated(["decision_id", "benefit"]).any()


class HiddenTruth(SimulatedField):
    """The field keeps the simulator's files of every round folder in its own place, and puts them
    back only while it plays, draws or judges: the agency's side never finds one on disk."""

    def __init__(self, *args, vault: Path, **kw):
        super().__init__(*args, **kw)
        self.vault = vault
        self.hidden_while_learning = 0

    def _hide(self, folder: Path) -> None:
        for round_folder in folder.parent.glob("round-*"):  # a quarter being drawn too (round-N.partial)
            kept = self.vault / round_folder.name.removesuffix(".partial")
            for name in SIMULATOR_FILES:
                path = round_folder / name
                if path.exists():
                    kept.mkdir(parents=True, exist_ok=True)
                    shutil.move(path, kept / name)
                    self.hidden_while_learning += 1

    def _show(self, folder: Path) -> None:
        for kept in (self.vault / folder.name).glob("*") if (self.vault / folder.name).exists() else ():
            shutil.move(kept, folder / kept.name)

    def _around(self, folder: Path, work):
        self._show(folder)
        try:
            return work()
        finally:
            self._hide(folder)

    def month(self, folder):
        return self._around(folder, lambda: super(HiddenTruth, self).month(folder))

    def play(self, folder, campaign, log):
        return self._around(folder, lambda: super(HiddenTruth, self).play(folder, campaign, log))

    def draw_next(self, folder, out, contacted):
        self._around(folder, lambda: super(HiddenTruth, self).draw_next(folder, out, contacted))

    def judge(self, folder, profiles, contacted, rankings, k):
        return None  # the truth's figures are the evaluation's, not the agency's


def test_the_agency_side_runs_with_every_simulator_file_out_of_its_reach(
    uninterrupted, small_population, tracking_store, tmp_path
):
    out, asked = uninterrupted
    field = HiddenTruth(settings(), OUTCOME_DATE, asked["seed"], vault=tmp_path / "vault")
    result = play(small_population, tmp_path, tracking_store, asked, field, rounds=2)
    assert field.hidden_while_learning > 0
    for folder in (tmp_path / "loop").glob("round-*"):
        assert not any((folder / name).exists() for name in SIMULATOR_FILES), folder
    expected = lines(out, 2)[AGENCY_COLUMNS]
    pd.testing.assert_frame_equal(result.table[AGENCY_COLUMNS], expected, check_dtype=False)
    assert "true played" not in result.table.columns


class NoiseField(SimulatedField):
    """A contact changes nothing next quarter (with the agents' records drawn at random: pure noise)."""

    def draw_next(self, folder, out, contacted):
        super().draw_next(folder, out, np.array([], dtype=np.int64))  # nobody's claim follows a contact


def test_with_outcomes_that_are_pure_noise_the_loop_never_leaves_the_prior(
    uninterrupted, small_population, tracking_store, tmp_path, monkeypatch
):
    _, asked = uninterrupted
    import nonrecours.serving.outreach as outreach
    from nonrecours.data import field as sim

    real = sim.field_outcomes

    def noise(campaign, truth):
        records = real(campaign, truth)
        rng = np.random.default_rng(len(records))
        result = rng.choice(list(OUTREACH_RESULTS), len(records))
        amount = np.where(result == "opened", rng.uniform(50, 500, len(records)), np.nan)
        return records.assign(result=result, amount_granted=amount)

    monkeypatch.setattr(outreach, "field_outcomes", noise)
    noise_field = NoiseField(settings(), OUTCOME_DATE, asked["seed"])
    result = play(small_population, tmp_path, tracking_store, asked, noise_field, rounds=3)
    assert (result.table["gate"] == "kept").all(), result.table["gate"].tolist()
    assert result.table["ranking played"].nunique() == 1


def test_the_loop_refuses_what_it_cannot_do_and_says_what_it_starts_from(small_population, tmp_path):
    runner = CliRunner()
    common = [
        "loop",
        "--input",
        str(small_population),
        "--out",
        str(tmp_path / "loop"),
        "--decision-log",
        f"sqlite:///{tmp_path / 'decisions.db'}",
        "--secrets",
        str(small_population / "secrets.env"),
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'empty.db'}",
    ]
    too_many = runner.invoke(app, [*common, "--capacity", "5000"], env={"COLUMNS": "250"})
    assert too_many.exit_code == 2
    assert "starts from the rules" in too_many.output
    assert "--capacity 5,000 is more than the 1,500 households" in too_many.output
    assert not (tmp_path / "loop").exists()  # refused before anything is written
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    taken = runner.invoke(app, [*common[:3], "--out", str(tmp_path / "other"), *common[5:]], env={"COLUMNS": "250"})
    assert taken.exit_code == 2 and "not empty and holds no loop" in taken.output
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_a_resumed_loop_must_be_the_same_loop(uninterrupted, small_population, tracking_store):
    out, asked = uninterrupted
    plan = LoopPlan(small_population, out, 3, asked["capacity"] + 1, asked["seed"])
    s = settings()
    with pytest.raises(Exception, match=f"capacity: {asked['capacity']} there, {asked['capacity'] + 1} here"):
        tracked_loop(
            plan,
            s,
            tracking_store,
            open_log(small_population, out.parent),
            SimulatedField(s, OUTCOME_DATE, asked["seed"]),
            resume=True,
        )
