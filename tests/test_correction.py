"""A prior plus a shrunk correction, and the gate that decides on it: the correction is exactly zero
with no labels, moves less with fewer labels, learns a part's difference from labelled outcomes,
and the gate switches only on a paired gain whose lower bound is above zero, never on noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nonrecours.core.config import LoopConfig
from nonrecours.serving.loop_agency import contender_of, gate
from nonrecours.training.correction import (
    LEARNERS,
    OPEN_RESULTS,
    Prior,
    contact_history,
    fold_of,
    learn,
    starting_point,
    without_opened,
)
from nonrecours.training.gate import Choice, decide_paired, gate_bound
from nonrecours.training.judge import Interval

RULES = Prior("rules")
ALPHA = LoopConfig().gate_alpha


def labelled_rows(profiles: pd.DataFrame, n_households: int, seed: int, *, reach=None) -> pd.DataFrame:
    """Rows as :func:`~nonrecours.training.observed.observed_rows` gives them for a randomised
    campaign of ``n_households`` (half contacted): a checked benefit is open where the rules flag
    it; ``reach(rows)`` gives each row's chance that a contact reaches the household (pure noise
    when None: a flat 0.5, the same for everyone, and claims as likely with or without a contact)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(profiles["household_id"].unique(), size=n_households, replace=False)
    rows = profiles[profiles["household_id"].isin(chosen)].copy()
    contacted_households = set(rng.choice(chosen, size=n_households // 2, replace=False))
    contacted = rows["household_id"].isin(contacted_households).to_numpy()
    flagged = RULES.open_probability(rows) > 0.5
    is_open = flagged & (rng.random(len(rows)) < 0.7)
    p_reach = np.full(len(rows), 0.5) if reach is None else reach(rows)
    reached = rng.random(len(rows)) < p_reach
    claims = rng.random(len(rows)) < 0.4
    result = np.where(
        ~is_open, "not_entitled", np.where(~reached, "unreachable", np.where(claims, "opened", "declined"))
    )
    claimed_next = np.where(contacted, (result == "opened").astype(float), (rng.random(len(rows)) < 0.05) & is_open)
    if reach is None:  # noise: a contact changes nothing
        claimed_next = (rng.random(len(rows)) < 0.1).astype(float)
        result = np.where(rng.random(len(rows)) < 0.5, "opened", rng.choice(list(OPEN_RESULTS), len(rows)))
    return rows.assign(
        arm=np.where(contacted, "contact", "holdout"),
        propensity=0.5,
        contacted=contacted,
        result=np.where(contacted, result, None),
        claimed_next=claimed_next.astype(float),
        round=1,
        unit=rows["household_id"].to_numpy(),
    )


@pytest.fixture(scope="module")
def profiles(tables):
    return tables["profiles"]


def young_reached_rarely(rows: pd.DataFrame) -> np.ndarray:
    return np.where(rows["head_age"].to_numpy(dtype=float) < 40, 0.1, 0.9)


def household_values(model, profiles: pd.DataFrame) -> pd.Series:
    return pd.Series(model.value(profiles)).groupby(profiles["household_id"].to_numpy()).sum()


def test_with_no_recorded_outcome_every_learner_gives_the_prior_exactly(profiles):
    rows = labelled_rows(profiles, 200, seed=1, reach=young_reached_rarely).assign(result=None)
    prior = starting_point(RULES, 0).value(profiles)
    for learner in LEARNERS:
        model = learn(rows, RULES, learner, seed=0)
        assert model.is_prior and model.labels == 0
        np.testing.assert_array_equal(model.value(profiles), prior)
        np.testing.assert_array_equal(model.value(profiles, held_out=True), prior)


def test_the_boosted_correction_learns_where_contacts_fail_and_moves_less_with_fewer_labels(profiles):
    """Contacts reach 10% of the households whose head is under 40 and 90% of the others: the
    reach part learns the gap from enough labels, and stays the prior's constant with few."""
    young = profiles["head_age"].to_numpy(dtype=float) < 40
    gap = {}
    for n in (40, 400, profiles["household_id"].nunique()):
        rows = labelled_rows(profiles, n, seed=2, reach=young_reached_rarely)
        reach = learn(rows, RULES, "boosted", seed=0).parts_of(profiles)["reach"]
        gap[n] = float(reach[~young].mean() - reach[young].mean())
    small, medium, everyone = gap.values()
    assert small == pytest.approx(0, abs=1e-12) and medium == pytest.approx(0, abs=1e-12)  # too few: no tree helps
    assert 0.6 < everyone <= 0.8 + 0.05  # every household labelled: most of the true gap of 0.8


def test_the_recalibration_is_shrunk_to_the_pooled_rate_for_a_benefit_few_labels_reveal(profiles):
    rows = labelled_rows(profiles, 600, seed=3, reach=young_reached_rarely)
    model = learn(rows, RULES, "recalibrated", seed=0)
    p = model.parts
    for b, rate in p.reach_by_benefit.items():
        m = (rows["benefit"].astype("object") == b) & rows["contacted"] & rows["result"].isin(OPEN_RESULTS)
        raw = float((rows.loc[m, "result"] != "unreachable").mean()) if m.any() else p.reach
        assert min(raw, p.reach) - 1e-9 <= rate <= max(raw, p.reach) + 1e-9  # between its own rate and the pool's


def test_each_household_is_judged_by_fits_that_never_saw_its_fold(profiles):
    rows = labelled_rows(profiles, 900, seed=4, reach=young_reached_rarely)
    model = learn(rows, RULES, "boosted", seed=0)
    fold = fold_of(rows["unit"].to_numpy(), 0)
    assert set(np.unique(fold)) == {0, 1, 2}
    assert np.array_equal(fold, fold_of(rows["unit"].to_numpy(), 0))  # the same household, the same fold
    held = model.value(profiles, held_out=True)
    assert not np.allclose(held, model.value(profiles))
    assert model.open.folds and all(b is None or b.num_trees() > 0 for b in model.open.folds)


def test_the_contact_history_says_what_the_last_contact_found():
    rows = pd.DataFrame(
        {
            "unit": [1, 1, 2, 2, 3, 4, 1],
            "round": [1, 1, 1, 1, 1, 1, 2],
            "contacted": [True, True, True, True, True, False, True],
            "result": ["declined", "not_entitled", "unreachable", "opened", "not_entitled", None, "unreachable"],
        }
    )
    history = contact_history(rows, np.array([1, 2, 3, 4, 5]), now=3)
    assert history["last_contact"].tolist() == ["unreachable", "opened", "no_right", "never", "never"]
    assert history["quarters_since_contact"].tolist()[:3] == [1.0, 2.0, 2.0]
    assert np.isnan(history.loc[[4, 5], "quarters_since_contact"]).all()  # a holdout household was never contacted
    before = contact_history(rows, np.array([1]), now=2)  # in round 2, round 2's own outcomes are not known yet
    assert before.loc[1, "last_contact"] == "declined" and before.loc[1, "quarters_since_contact"] == 1.0


def interval(value: float, se: float) -> Interval:
    return Interval(value, value - 1.645 * se, value + 1.645 * se, se, 1000)


def test_the_gate_switches_only_on_a_lower_bound_above_zero_and_keeps_what_nothing_beats():
    straddling = {"boosted": interval(500.0, 400.0), "rules": interval(-200.0, 50.0)}
    kept = decide_paired("champion v1", straddling, alpha=ALPHA)
    assert not kept.switched and kept.ranking == "champion v1"
    assert "kept" in kept.reasons[0]
    clear = {"boosted": interval(500.0, 100.0), "recalibrated": interval(900.0, 150.0), "rules": interval(-1.0, 1.0)}
    chosen = decide_paired("champion v1", clear, alpha=ALPHA)
    assert chosen.switched and chosen.ranking == "recalibrated"  # the largest lower bound
    assert gate_bound(clear["recalibrated"], 3, ALPHA) > 0 > gate_bound(straddling["boosted"], 2, ALPHA)
    # the rules in play, every challenger below them: the rules stay
    assert not decide_paired(
        "rules", {"boosted": interval(-300.0, 100.0), "prior alone": interval(0.0, 0.0)}, alpha=ALPHA
    ).switched
    # a gain one test alone would take is refused when five candidates were tried (Bonferroni)
    lone = interval(2.0, 1.0)
    assert decide_paired("rules", {"a": lone}, alpha=ALPHA).switched
    others = {name: interval(-1.0, 1.0) for name in "bcde"}
    assert not decide_paired("rules", {"a": lone, **others}, alpha=ALPHA).switched


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_with_labels_that_are_pure_noise_the_gate_keeps_the_prior(profiles, seed):
    rows = pd.concat(
        [labelled_rows(profiles, 500, seed=seed + 100 * r).assign(round=r) for r in (1, 2, 3)], ignore_index=True
    )
    incumbent = starting_point(RULES, seed)
    candidates = {learner: learn(rows, RULES, learner, seed=seed) for learner in LEARNERS}
    gains, choice, _ = gate(
        incumbent, candidates, rows, {r: profiles for r in (1, 2, 3)}, 50, seed, alpha=ALPHA, region=len(profiles)
    )
    assert set(gains) == set(LEARNERS)
    assert not choice.switched, choice.reasons


def test_the_prior_in_play_is_no_challenger_of_itself_and_the_best_estimate_is_the_next_contender(profiles):
    rows = pd.concat([labelled_rows(profiles, 500, seed=5).assign(round=1)], ignore_index=True)
    incumbent = starting_point(RULES, 0)
    candidates = {"boosted": learn(rows, RULES, "boosted", seed=0), "prior alone": starting_point(RULES, 0)}
    gains, choice, _ = gate(incumbent, candidates, rows, {1: profiles}, 50, 0, alpha=ALPHA, region=len(profiles))
    assert set(gains) == {"boosted"}  # the prior alone, already in play, widens no bound
    assert f"at {1 - ALPHA:.2%}" in choice.reasons[-1]  # one challenger: tested at the whole alpha

    kept = Choice("rules", False, ())
    ahead, behind = interval(3.0, 1.0), interval(-1.0, 1.0)
    models = {"a": candidates["boosted"], "b": incumbent}
    assert contender_of(models, {"a": ahead, "b": behind}, kept) is models["a"]
    assert contender_of(models, {"a": behind, "b": behind}, kept) is None  # nothing ahead: no pairing
    assert contender_of(models, {"a": ahead}, Choice("a", True, ())) is None  # a switch plays alone


def test_a_benefit_an_earlier_contact_opened_is_not_ranked_or_labelled_again():
    profiles = pd.DataFrame({"household_id": [1, 1, 2], "benefit": pd.Categorical(["rsa", "af", "rsa"])})
    rows = pd.DataFrame({"unit": [1, 1, 2], "benefit": ["rsa", "af", "rsa"], "result": ["opened", "declined", None]})
    kept = without_opened(profiles, rows)
    assert list(zip(kept["household_id"], kept["benefit"].astype(str))) == [(1, "af"), (2, "rsa")]
    assert without_opened(profiles, rows.assign(result="declined")).equals(profiles)
