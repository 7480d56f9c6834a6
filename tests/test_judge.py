"""Judging rankings from randomised campaigns: the doubly robust scores recover a known effect,
picks no campaign randomised count for nothing, and the paired and RATE intervals tell a ranking
that targets the effect from one that does not."""

from __future__ import annotations

import numpy as np
import pytest

from nonrecours.training.judge import aipw_scores, autoc, paired_gain, ranking_value


@pytest.fixture(scope="module")
def trial():
    """20,000 units, a contact's effect 10 + 20 x (mean 20), contacts drawn with known propensities
    from 0.1 to 0.9 that depend on x (so a difference of means is biased)."""
    rng = np.random.default_rng(3)
    n = 20_000
    x = rng.random(n)
    tau = 10 + 20 * x
    e = 0.1 + 0.8 * x
    t = rng.random(n) < e
    y0 = 50 + 30 * x + rng.normal(0, 10, n)
    return {"x": x, "tau": tau, "e": e, "t": t, "y": y0 + t * tau, "mu0": 50 + 30 * x, "mu1": 50 + 30 * x + tau}


def test_the_doubly_robust_scores_recover_the_effect_with_either_part_right(trial):
    naive = trial["y"][trial["t"]].mean() - trial["y"][~trial["t"]].mean()
    assert abs(naive - 20) > 5  # the arms differ: comparing them is wrong
    good = aipw_scores(trial["y"], trial["t"], trial["e"], trial["mu0"], trial["mu1"])
    blind = aipw_scores(trial["y"], trial["t"], trial["e"], np.zeros(len(trial["y"])), np.zeros(len(trial["y"])))
    for scores, tolerance in ((good, 0.5), (blind, 3.0)):  # the outcome model only narrows it
        assert abs(np.nanmean(scores) - 20) < tolerance
    wrong_e = aipw_scores(trial["y"], trial["t"], np.full(len(trial["y"]), 0.5), trial["mu0"], trial["mu1"])
    assert abs(np.nanmean(wrong_e) - 20) < 0.5  # the right outcome model rescues wrong propensities


def test_units_no_campaign_randomised_have_no_score_and_count_for_nothing(trial):
    e = trial["e"].copy()
    e[:100] = 1.0  # always contacted: not randomised
    scores = aipw_scores(trial["y"], trial["t"], e, trial["mu0"], trial["mu1"])
    assert np.isnan(scores[:100]).all() and not np.isnan(scores[100:]).any()
    picks = np.zeros(len(e), dtype=bool)
    picks[:100] = True
    assert ranking_value(picks, scores).value == 0.0


def test_a_ranking_by_the_effect_beats_a_random_one_in_pairs_and_on_rate(trial):
    scores = aipw_scores(trial["y"], trial["t"], trial["e"], trial["mu0"], trial["mu1"])
    k = 1_000
    by_effect = np.zeros(len(scores), dtype=bool)
    by_effect[np.argsort(-trial["tau"])[:k]] = True
    at_random = np.zeros(len(scores), dtype=bool)
    at_random[np.random.default_rng(4).choice(len(scores), k, replace=False)] = True
    gain = paired_gain(by_effect, at_random, scores, draws=300)
    assert gain.low > 0 and 5_000 < gain.value < 15_000  # true gain: 1,000 x (29.5 - 20)
    assert paired_gain(by_effect, by_effect, scores, draws=50).value == 0.0
    rate = autoc(trial["tau"], scores, draws=200)
    assert rate.low > 0
    noise = autoc(np.random.default_rng(5).random(len(scores)), scores, draws=200)
    assert noise.straddles_zero
