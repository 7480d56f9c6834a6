"""Campaigns with a randomised holdout, the field's outcomes, and learning from them without the
truth: the pure parts on made-up rows, then the whole loop through the CLI on a generated
population whose truth files are deleted before training."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nonrecours.app.cli import app
from nonrecours.core.schema import BENEFITS, OUTCOMES, TABLES
from nonrecours.data.field import field_outcomes
from nonrecours.serving.campaign import CampaignPlan, pair_disagreements, plan_campaign
from nonrecours.training.gate import CHALLENGER, CHAMPION
from nonrecours.training.observed import observed_rows
from nonrecours.training.policies import holdout_effect, household_gain, ipw_value, true_gain

runner = CliRunner()


def plan(**given) -> CampaignPlan:
    """A campaign design with the settings' defaults for what is not given."""
    from nonrecours.core.config import CampaignConfig

    c = CampaignConfig()
    return CampaignPlan(
        **{
            "holdout_share": c.holdout_share,
            "exploration_share": c.exploration_share,
            "strata": c.strata,
            "seed": 0,
            **given,
        }
    )


def scored(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Made-up scored rows: ``n`` households x two benefits, half of them eligible on the
    agency's data and not receiving."""
    rng = np.random.default_rng(seed)
    hid = np.repeat(np.arange(1, n + 1), 2)
    benefit = np.tile(["rsa", "aide_logement"], n)
    eligible = rng.random(2 * n) < 0.5
    return pd.DataFrame(
        {
            "household_id": hid,
            "benefit": pd.Categorical(benefit, categories=list(BENEFITS)),
            "law_eligible": eligible,
            "law_amount": np.where(eligible, 300.0, 0.0),
            "receives_this": np.where(rng.random(2 * n) < 0.2, 1.0, 0.0),
            "receives_rsa": 0.0,
            "expected_unclaimed_monthly": rng.random(2 * n) * 100,
        }
    )


def test_a_campaign_fills_the_capacity_keeps_a_stratified_holdout_and_explores_below_the_cut():
    rows = scored()
    design = plan(capacity=100, holdout_share=0.2, exploration_share=0.1, strata=5, seed=1)
    c = plan_campaign(rows, design)
    arms = c["arm"].astype(str).value_counts()
    assert arms["contact"] + arms["explore"] == 100 and arms["explore"] == 10
    assert arms["holdout"] == 23  # 90 contacts from the top need ceil(90 / 0.8) = 113 households
    top = c[c["arm"].astype(str).isin(["contact", "holdout"])]
    assert sorted(top["rank"]) == list(range(1, 114))  # the top of the ranking, nothing skipped
    per_stratum = top.groupby("stratum")["arm"].apply(lambda a: (a.astype(str) == "holdout").mean())
    assert per_stratum.between(0.15, 0.25).all()  # the same share in every rank stratum
    below = c[c["arm"].astype(str).isin(["explore", "pool"])]
    assert (below["rank"] > 113).all()
    open_ = rows.assign(o=rows["law_eligible"] & (rows["receives_this"] < 1)).groupby("household_id")["o"].any()
    assert open_.reindex(below["household_id"]).all()  # the pool: eligible on the agency's data
    assert np.isclose(below["propensity"], 10 / len(below)).all() and np.isclose(top["propensity"], 0.8).all()
    assert c["campaign_id"].nunique() == 1
    again = plan_campaign(rows, design)
    assert (again["arm"].astype(str).to_numpy() == c["arm"].astype(str).to_numpy()).all()
    other = plan_campaign(rows, plan(capacity=100, seed=2))
    assert set(other.loc[other["arm"].astype(str) == "holdout", "household_id"]) != set(
        c.loc[c["arm"].astype(str) == "holdout", "household_id"]
    )


def test_a_band_keeps_exploration_just_below_the_cut_with_a_larger_chance_each():
    rows = scored()
    wide = plan_campaign(rows, plan(capacity=100, holdout_share=0.1, exploration_share=0.1, seed=1))
    narrow = plan_campaign(rows, plan(capacity=100, holdout_share=0.1, exploration_share=0.1, seed=1, band=100))
    below = narrow[narrow["arm"].astype(str).isin(["explore", "pool"])]
    assert below["rank"].between(101, 200).all()  # 90 contacts from a top of 100, then the band of 100 ranks
    assert (narrow["arm"].astype(str) == "explore").sum() == 10
    p_wide = wide.loc[wide["arm"].astype(str) == "pool", "propensity"].iloc[0]
    assert np.isclose(below["propensity"], 10 / len(below)).all() and below["propensity"].iloc[0] > 5 * p_wide
    top = narrow[narrow["arm"].astype(str).isin(["contact", "holdout"])]
    same = wide[wide["arm"].astype(str).isin(["contact", "holdout"])]
    pd.testing.assert_frame_equal(
        top.drop(columns="campaign_id"), same.drop(columns="campaign_id")
    )  # the top as before


def test_pairing_with_a_challenger_draws_half_and_half_where_the_two_rankings_disagree():
    campaign = plan_campaign(scored(), plan(capacity=100, holdout_share=0.1, exploration_share=0.1, seed=1, band=100))
    by_rank = campaign.set_index("rank")["household_id"]
    in_band = [r for r in range(101, 201) if r in by_rank.index][:30]
    picks = by_rank.loc[[*range(31, 101), *in_band]].to_numpy()  # drops ranks 1-30, takes 30 of the band
    paired = pair_disagreements(campaign, picks, seed=3)
    disputed = paired["rank"].isin([*range(1, 31), *in_band]).to_numpy()
    assert paired["contacted"].sum() == campaign["contacted"].sum() == 100  # the capacity kept
    pd.testing.assert_frame_equal(paired[~disputed], campaign[~disputed])  # agreement untouched
    contacts = campaign.loc[disputed, "contacted"].sum()
    assert paired.loc[disputed, "contacted"].sum() == contacts
    assert np.allclose(paired.loc[disputed, "propensity"], contacts / 60)
    assert 0.4 < contacts / 60 < 0.6
    assert set(paired.loc[disputed, "arm"].astype(str)) == {"explore", "pool"}
    # each disputed household is contacted with the propensity written, over the pairing's draws
    draws = np.array(
        [pair_disagreements(campaign, picks, seed=s).loc[disputed, "contacted"].to_numpy() for s in range(400)]
    )
    assert np.abs(draws.mean(axis=0) - contacts / 60).max() < 0.1
    assert pair_disagreements(campaign, by_rank.loc[1:100].to_numpy(), seed=3).equals(campaign)  # no dispute


def test_a_campaign_refuses_what_cannot_be_planned():
    with pytest.raises(ValueError, match=r"campaign\.holdout_share: Input should be less than or equal to 0\.9"):
        plan(capacity=10, holdout_share=1.0)
    with pytest.raises(ValueError, match="capacity"):
        plan(capacity=0)
    with pytest.raises(ValueError, match="no column"):
        plan_campaign(scored(10), plan(capacity=2), value="uplift")


def test_the_field_records_what_an_agent_would_find():
    campaign = pd.DataFrame(
        {"household_id": [1, 2, 3], "arm": ["contact", "explore", "holdout"], "benefits": ["rsa;ppa;af", "rsa", "rsa"]}
    )
    truth = pd.DataFrame(
        {
            "household_id": [1, 1, 1, 2, 3],
            "benefit": ["rsa", "ppa", "af", "rsa", "rsa"],
            "eligible": [True, False, True, True, True],
            "claimed": [False, False, True, False, False],
            "monthly_amount": [500.0, 0.0, 140.0, 300.0, 200.0],
            "reached_if_contacted": [True, False, False, False, True],
            "claim_if_contacted": [True, False, True, False, True],
        }
    )
    got = field_outcomes(campaign, truth).set_index(["household_id", "benefit"])
    assert got.loc[(1, "rsa"), "result"] == "opened" and got.loc[(1, "rsa"), "amount_granted"] == 500.0
    assert got.loc[(1, "ppa"), "result"] == "not_entitled" and got.loc[(1, "af"), "result"] == "already_receiving"
    assert got.loc[(2, "rsa"), "result"] == "unreachable" and np.isnan(got.loc[(2, "rsa"), "amount_granted"])
    assert 3 not in got.index.get_level_values(0)  # the holdout is not contacted
    with pytest.raises(ValueError, match="same population"):
        field_outcomes(campaign.assign(household_id=[1, 2, 99]).iloc[[2]].assign(arm="contact"), truth)


def test_observed_labels_come_from_the_agents_records_and_the_next_extract():
    profiles = pd.DataFrame(
        {
            "household_id": [1, 1, 2, 3, 4, 5],
            "benefit": pd.Categorical(["rsa", "af", "rsa", "rsa", "css_free", "rsa"], categories=list(BENEFITS)),
        }
    )
    campaign = pd.DataFrame(
        {
            "household_id": [1, 2, 3, 4, 5],
            "arm": ["contact", "contact", "holdout", "pool", "contact"],
            "propensity": [0.8, 0.8, 0.8, 0.05, 0.8],
            "benefits": ["rsa;af", "rsa", "rsa", "css_free", "rsa"],
        }
    )
    recorded = pd.DataFrame(
        {
            "household_id": [1, 1, 2, 5],
            "benefit": ["rsa", "af", "rsa", "rsa"],
            "result": ["opened", "declined", "unreachable", "already_receiving"],
        }
    )
    receipt = pd.DataFrame(
        {
            "household_id": [1, 1, 2, 3, 4, 5],
            "benefit": ["rsa", "af", "rsa", "rsa", "css_free", "rsa"],
            "receives_next": pd.array([0, 0, 1, 1, None, 1], dtype="Float64"),
        }
    )
    rows = observed_rows(profiles, campaign, recorded, receipt).set_index(["household_id", "benefit"])
    assert rows.loc[(1, "rsa"), "opened"] == 1 and rows.loc[(1, "rsa"), "claimed_next"] == 1
    assert rows.loc[(1, "af"), "opened"] == 0 and rows.loc[(1, "af"), "claimed_next"] == 0
    assert (
        rows.loc[(2, "rsa"), "opened"] == 0 and rows.loc[(2, "rsa"), "claimed_next"] == 1
    )  # unreached, claimed on its own
    assert (
        np.isnan(rows.loc[(3, "rsa"), "opened"]) and rows.loc[(3, "rsa"), "claimed_next"] == 1
    )  # the holdout: the next extract
    assert np.isnan(rows.loc[(4, "css_free"), "claimed_next"])  # a benefit the agency never sees paid: no label
    assert rows.loc[(5, "rsa"), "claimed_next"] == 1  # a claim found filed, paid next quarter: as if held out


def test_policy_gains_and_the_agency_s_own_estimates():
    truth = pd.DataFrame(
        {
            "household_id": [1, 2, 3, 4],
            "claim_if_contacted": [True, True, False, True],
            "claim_if_not_contacted": [False, True, False, False],
            "monthly_amount": [100.0, 500.0, 50.0, 10.0],
        }
    )
    gain = household_gain(truth)
    assert gain.to_dict() == {1: 100.0, 2: 0.0, 3: 0.0, 4: 10.0}
    table, curves = true_gain(
        {"good": pd.Series([4.0, 1, 2, 3], index=[1, 2, 3, 4]), "bad": pd.Series([1.0, 4, 3, 2], index=[1, 2, 3, 4])},
        gain,
        1,
    )
    t = table.set_index("policy")
    assert t.loc["good", "additional_monthly"] == 100 and t.loc["bad", "additional_monthly"] == 0
    assert t.loc["good", "auuc"] > 0 > t.loc["bad", "auuc"] and curves["good"][-1] == curves["bad"][-1] == 110
    rng = np.random.default_rng(0)
    n = 4000
    campaign = pd.DataFrame(
        {"household_id": np.arange(n), "arm": np.where(rng.random(n) < 0.2, "holdout", "contact"), "propensity": 0.8}
    )
    campaign["contacted"] = campaign["arm"] == "contact"
    euros = pd.Series(
        np.where(campaign["contacted"], 30.0, 10.0) * (rng.random(n) < 0.5), index=campaign["household_id"]
    )
    effect = holdout_effect(campaign, euros)
    assert effect.low < 10 < effect.high and effect.low > 0  # true effect: 0.5 x (30 - 10)
    ipw = ipw_value(campaign, euros, pd.Series(rng.random(n), index=campaign["household_id"]), 1000)
    assert ipw.low < 10_000 < ipw.high  # 1,000 contacts x 10 EUR
    # picks the campaign never randomised count as nothing: half of them outside it, half the value
    outside = pd.Series(rng.random(2 * n), index=np.arange(2 * n))
    half = ipw_value(campaign, euros, outside, 1000)
    assert half.n < 600 and half.low < 5_000 < half.high and half.high < 10_000


@pytest.fixture(scope="module")
def agency_loop(small_population, tracking_store, tmp_path_factory):
    """A copy of the small population, a campaign ranked by the rules, the field played, and every
    truth file deleted afterwards."""
    folder = tmp_path_factory.mktemp("loop") / "pop"
    shutil.copytree(
        small_population, folder, ignore=shutil.ignore_patterns("fresh", "shifted", "reports", "*.db", "mlruns")
    )
    log = f"sqlite:///{folder.parent / 'decisions.db'}"
    common = ["--decision-log", log, "--secrets", str(small_population / "secrets.env")]
    result = runner.invoke(
        app,
        [
            "campaign",
            "--input",
            str(folder),
            "--capacity",
            "150",
            "--holdout",
            "0.3",
            "--exploration",
            "0.3",
            "--seed",
            "3",
            "--ranking",
            "rules",
            "--out",
            str(folder / "campaign.csv"),
            "--tracking-uri",
            tracking_store,
            "--workers",
            "1",
            "-q",
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    outreach = [["outreach", "--input", str(folder), "--campaign", str(folder / "campaign.csv"), *common]] * 2
    outputs = [runner.invoke(app, args) for args in outreach]
    assert all(r.exit_code == 0 for r in outputs), outputs[0].output
    return folder, common, outputs


def test_the_campaign_is_logged_with_its_arms_and_the_field_recorded_once(agency_loop):
    from nonrecours.serving.decision_log import DecisionLog, connect

    folder, common, outputs = agency_loop
    campaign = pd.read_csv(folder / "campaign.csv")
    arms = campaign["arm"].value_counts()
    assert arms["contact"] + arms["explore"] == 150 and arms["explore"] == 45 and arms["holdout"] == 45
    from nonrecours.serving.secrets import pseudonym_key, read_secrets_file

    log = DecisionLog(connect(common[1]), pseudonym_key(read_secrets_file(folder / "secrets.env")))
    assigned = log.read_campaign(str(campaign["campaign_id"].iloc[0]))
    assert len(assigned) == len(campaign) and set(assigned["decision_id"]) == set(campaign["decision_id"])
    recorded = log.read_outcomes()
    assert len(recorded) > 150 and set(recorded["result"]) <= {
        "unreachable",
        "opened",
        "not_entitled",
        "declined",
        "already_receiving",
    }
    assert {"opened", "unreachable"} <= set(recorded["result"])
    with log.engine.connect() as conn:
        from sqlalchemy import func, select

        from nonrecours.serving.decision_log import outcomes

        assert conn.execute(select(func.count()).select_from(outcomes)).scalar() == len(
            recorded
        )  # the second run recorded nothing
    assert "already recorded" in outputs[1].output or "0 new" in outputs[1].output


def test_training_on_observed_labels_runs_with_every_truth_file_deleted_and_reads_no_truth_column(
    agency_loop, tracking_store, monkeypatch
):
    folder, common, _ = agency_loop
    for truth in folder.rglob("outcomes.parquet"):
        truth.unlink()
    for summary in [*folder.rglob("calibration.json"), *folder.rglob("world.yaml")]:
        summary.unlink()
    for state in folder.rglob("state"):  # the simulator's state: truth too
        shutil.rmtree(state)
    truth_only = set(OUTCOMES.with_role("truth")) - {
        c.name for t in TABLES.values() for c in t.columns if c.role != "truth"
    }
    seen: list[str] = []
    real = pd.read_parquet

    def spy(path, *a, **kw):
        frame = real(path, *a, **kw)
        seen.extend(frame.columns)
        return frame

    monkeypatch.setattr(pd, "read_parquet", spy)
    campaign_id = pd.read_csv(folder / "campaign.csv")["campaign_id"].iloc[0]
    result = result_train = runner.invoke(
        app,
        [
            "train",
            "--labels",
            "observed",
            "--campaign",
            campaign_id,
            "--input",
            str(folder),
            "--tracking-uri",
            tracking_store,
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen and not truth_only & set(seen)
    import mlflow

    mlflow.set_tracking_uri(tracking_store)
    runs = mlflow.search_runs(
        experiment_names=["nonrecours"], filter_string=f"tags.campaign_id = '{campaign_id}'", output_format="list"
    )
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    assert metrics["rows_contacted"] > 100 and metrics["rows_uncontacted"] > 100
    assert "holdout effect" in result.output
    # the next round, ranked by what a contact adds, still without the truth; reasons from the need model
    run_id = result.output.strip().splitlines()[-1].removeprefix("run ")
    nxt = folder / "next_quarter"
    result = runner.invoke(
        app,
        [
            "campaign",
            "--input",
            str(nxt),
            "--ranking",
            "uplift",
            "--model-run",
            run_id,
            "--capacity",
            "50",
            "--out",
            str(nxt / "campaign.csv"),
            "--tracking-uri",
            tracking_store,
            "--workers",
            "1",
            "-q",
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    assert not truth_only & set(seen)
    second = pd.read_csv(nxt / "campaign.csv")
    assert second["contacted"].sum() == 50 and second["campaign_id"].iloc[0] != campaign_id
    from nonrecours.serving.decision_log import DecisionLog, connect
    from nonrecours.serving.secrets import pseudonym_key, read_secrets_file

    log = DecisionLog(connect(common[1]), pseudonym_key(read_secrets_file(folder / "secrets.env")))
    decided = log.read().set_index("id").loc[second["decision_id"]]
    assert (decided["model_name"] == "observed-uplift").all() and (decided["model_version"] == run_id).all()
    top = decided.iloc[0]["scores"]
    assert any(s["reasons"] for s in top.values())
    # The gate registered the models and decided on the observable (off-policy) estimates alone.
    client = mlflow.MlflowClient(tracking_store)
    version = client.search_model_versions(f"run_id = '{run_id}'")[0]
    incumbents = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/gate/incumbents_ipw.json"))
    ipw_low = client.get_run(run_id).data.metrics["uplift_ipw_low"]
    beats = all(ipw_low >= e["value"] for e in incumbents.values() if e["value"] == e["value"])
    assert version.name == "nonrecours-outreach" and version.tags["promotion.alias"] == (
        CHAMPION if beats else CHALLENGER
    )
    assert (
        f"nonrecours-outreach version {version.version} -> {'champion' if beats else 'challenger'}"
        in result_train.output
    )
    assert set(incumbents) >= {"the rules"} and any(
        k.startswith("the ranking that chose the campaign") for k in incumbents
    )
    if not beats:
        missing = runner.invoke(
            app,
            [
                "score",
                "--input",
                str(nxt),
                "--ranking",
                "uplift",
                "--out",
                str(nxt / "w.csv"),
                "--tracking-uri",
                tracking_store,
                *common,
            ],
        )
        assert missing.exit_code == 2 and "nonrecours-outreach@champion" in missing.output
        client.set_registered_model_alias(
            "nonrecours-outreach", CHAMPION, version.version
        )  # as an operator would, on record elsewhere
    # The worklist ranked by the outreach champion's uplift: its version in the decision log.
    result = runner.invoke(
        app,
        [
            "score",
            "--input",
            str(nxt),
            "--ranking",
            "uplift",
            "--capacity",
            "20",
            "--out",
            str(nxt / "w.csv"),
            "--tracking-uri",
            tracking_store,
            "--workers",
            "1",
            "-q",
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    ranked = pd.read_csv(nxt / "w.csv")
    assert 1 <= ranked["rank"].nunique() <= 20 and ranked["rank"].max() <= 20
    batch = log.read()
    assert (
        batch[batch["source"] == "batch"].tail(ranked["household_id"].nunique())["model_name"] == "observed-uplift"
    ).all()
    assert (batch[batch["source"] == "batch"].tail(1)["model_version"] == str(version.version)).all()
