"""The model's behaviour: invariances, minimum functionality, directions from published gradients,
and quality against the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from nonrecours.core.config import TrainingConfig
from nonrecours.training.evaluate import metric, split_households


def test_the_household_split_keeps_each_household_in_one_part_and_mixes_types(tables):
    p = tables["profiles"]
    split = split_households(p["household_id"], TrainingConfig())
    assert (split.groupby(p["household_id"]).nunique() == 1).all()
    test_types = p.loc[split == "test", "household_type"].astype(str).unique()
    assert len(test_types) >= 4  # a split that replays the generator's stream would give one type
    assert split_households(p["household_id"].iloc[::-1], TrainingConfig()).sort_index().equals(split.sort_index())


def test_scores_do_not_change_with_household_id_or_row_order(evaluation):
    t = evaluation.test.head(400)
    base = evaluation.scorer.predict(t)
    shuffled = t.sample(frac=1, random_state=1)
    relabelled = t.assign(household_id=t["household_id"] + 10**9)
    assert np.allclose(evaluation.scorer.predict(relabelled), base)
    assert np.allclose(evaluation.scorer.predict(shuffled), base[[t.index.get_loc(i) for i in shuffled.index]])


def test_scores_do_not_change_with_protected_attributes(evaluation):
    t = evaluation.test.head(400)
    flipped = t.assign(
        head_sex=t["head_sex"].map({"F": "M", "M": "F"}).astype(t["head_sex"].dtype),
        head_nationality_group="non_eu",
        any_disability=~t["any_disability"],
        age_band="65_plus",
    )
    assert np.allclose(evaluation.scorer.predict(flipped), evaluation.scorer.predict(t))


def test_a_household_already_receiving_the_benefit_is_not_flagged_for_it(evaluation):
    t = evaluation.test
    eligible_not_receiving = t[(t["benefit"] == "rsa") & t["law_eligible"] & (t["receives_this"] == 0)].head(50)
    assert len(eligible_not_receiving) > 0
    receiving = eligible_not_receiving.assign(receives_this=1.0, receives_rsa=1.0)
    assert (evaluation.scorer.predict(receiving) < evaluation.scorer.predict(eligible_not_receiving)).all()
    assert evaluation.scorer.predict(receiving).mean() < 0.2 * evaluation.scorer.predict(eligible_not_receiving).mean()


def test_the_model_beats_the_rules_baseline_overall(evaluation):
    for name in ("roc_auc", "euros_at_k"):
        assert metric(evaluation.metrics, "model", name) > metric(evaluation.metrics, "rules", name), name


def test_no_method_beats_the_ceiling_on_euros(evaluation):
    ceiling = metric(evaluation.metrics, "ceiling", "euros_at_k")
    for method in ("model", "logistic", "rules"):
        assert metric(evaluation.metrics, method, "euros_at_k") <= ceiling + 1e-6, method


def test_probabilities_are_calibrated(evaluation):
    assert metric(evaluation.metrics, "model", "ece", population="all") < 0.02


def test_estimated_amount_falls_back_to_the_typical_amount_where_the_law_engine_finds_none(evaluation):
    t = evaluation.test
    row = t[(t["benefit"] == "rsa") & ~t["law_eligible"]].head(1)
    assert evaluation.scorer.estimated_amount(row)[0] == pytest.approx(evaluation.scorer.typical_amount["rsa"])
    assert evaluation.scorer.typical_amount["rsa"] > 100
