"""Simulation only: what a round of the loop was worth, and what it could have been, from the truth's
potential outcomes of the same quarter.

Where it sits: the evaluation of ``nonrecours loop`` and ``bench.loop`` (the evaluation may read
columns of role ``truth``; the loop's learning and gate never call this). Per round, at the
campaign's capacity K, the true additional euros a month of:

- the campaign played (its contacted households, exploration included);
- other rankings' top K, every one contacted (the rules, the prior played alone);
- the **true-effect ceiling**: the K households whose contact adds most;
- the **observed-feature limit**: a LightGBM model trained on the truth's expected effect
  (``(p_claim_if_contacted - p_claim_if_not_contacted) x monthly_amount``) with the agency's
  features only (the profile's, and its own contact history, as the loop's corrections),
  cross-fitted over households (each household scored by the model that did not see it): the
  most a ranking learnt from the agency's data could reach.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from nonrecours.training.correction import correction_frame, fold_of
from nonrecours.training.model import CATEGORICAL
from nonrecours.training.policies import household_gain, top_households

LIMIT_FOLDS = 2
LIMIT_PARAMS = {
    "objective": "regression",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
}
LIMIT_ROUNDS = 150


def expected_effect(profiles: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Per profile row, the truth's expected euros a month a contact adds."""
    t = truth.assign(benefit=truth["benefit"].astype("object")).set_index(["household_id", "benefit"])
    key = pd.MultiIndex.from_arrays([profiles["household_id"].to_numpy(), profiles["benefit"].astype("object")])
    row = t.reindex(key)
    tau = row["p_claim_if_contacted"].to_numpy(dtype=float) - row["p_claim_if_not_contacted"].to_numpy(dtype=float)
    return np.nan_to_num(tau * row["monthly_amount"].to_numpy(dtype=float))


def observed_feature_limit(profiles: pd.DataFrame, truth: pd.DataFrame, *, seed: int) -> pd.Series:
    """Per household, the cross-fitted prediction of a model of the true effect on the observed
    features (see the module's docstring)."""
    X = correction_frame(profiles)
    y = expected_effect(profiles, truth)
    hid = profiles["household_id"].to_numpy()
    fold = fold_of(hid, seed, LIMIT_FOLDS)
    pred = np.zeros(len(X))
    for f in range(LIMIT_FOLDS):
        train = fold != f
        data = lgb.Dataset(
            X[train], label=y[train], categorical_feature=[*CATEGORICAL, "last_contact"], params={"verbose": -1}
        )
        booster = lgb.train({**LIMIT_PARAMS, "seed": seed}, data, num_boost_round=LIMIT_ROUNDS)
        pred[~train] = np.asarray(booster.predict(X[~train]))
    return pd.Series(pred).groupby(hid).sum()


def round_figures(
    profiles: pd.DataFrame,
    truth: pd.DataFrame,
    contacted: np.ndarray,
    rankings: dict[str, pd.Series],
    capacity: int,
    *,
    seed: int,
) -> dict[str, float]:
    """The true additional euros a month of the campaign played (``contacted``: household ids), of
    each ranking's top ``capacity`` (per household values), of the ceiling and of the
    observed-feature limit."""
    gain = household_gain(truth)

    def top(value: pd.Series) -> float:
        v = value.reindex(gain.index).fillna(-np.inf)
        return float(gain.loc[top_households(v, capacity)].sum())

    out = {"played": float(gain.reindex(contacted).fillna(0.0).sum())}
    out.update({name: top(value) for name, value in rankings.items()})
    out["observed-feature limit"] = top(observed_feature_limit(profiles, truth, seed=seed))
    out["ceiling"] = top(gain)
    return {k: round(v, 2) for k, v in out.items()}
