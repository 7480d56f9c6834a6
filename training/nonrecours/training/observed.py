"""Learning from what an agency observes: its campaigns' outcomes and its next extract.

Where it sits: the pure core of ``nonrecours train --labels observed``. No column of role
``truth`` is read here: the rows come from the decision log (the features logged with each
decision, the campaign's arm and propensity, the outcomes agents recorded) and from the next
quarter's extract (who is seen receiving a benefit three months on).

One row per campaign household and benefit it was checked for (not seen receiving; CSS without
contribution never for an RSA recipient). Two labels:

- ``opened`` (contacted rows only): the agent recorded a right opened. The **need** model learns
  P(opened | contacted) from it.
- ``claimed_next`` (every row whose claim the agency can see): a claim by next quarter. A
  contacted household: a right opened; unreached, or found already claiming a benefit the
  extract shows (a claim filed and not yet paid), what the next extract shows, as for the same
  household held out (a pending claim is paid by then: a claim in both arms); found already
  claiming a benefit the agency never sees paid, no new claim (as the outcome model counts the
  uncontacted's).
  A household not contacted (holdout, pool): a benefit it is seen receiving next quarter. Benefits
  the agency never sees paid (CSS, ASPA for a CAF) have no such label for the uncontacted.

The **uplift** model is a T-learner on LightGBM: P(claimed_next | contacted, x) on the contacted
rows minus P(claimed_next | not contacted, x) on the holdout and the pool, each row weighted by the
inverse of its probability of the arm it got (:mod:`nonrecours.serving.campaign`), so that the
contacts concentrated at the top of the last ranking do not stand for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from nonrecours.core.config import TrainingConfig
from nonrecours.core.errors import UserError
from nonrecours.core.schema import CONTACTED_ARMS
from nonrecours.training.model import CATEGORICAL, Scorer, lgb_params, model_frame

MIN_ROWS_PER_MODEL = 20
"""Below this many labelled rows (or with one class only) a model is not fitted: say so."""
SMALL_DATA_LEAVES = 7
"""Campaign labels are few (1% of households a quarter): shallow trees."""
SMALL_DATA_MIN_CHILD = 10
SMALL_DATA_ROUNDS = 150


class NotEnoughLabels(UserError, ValueError):
    """Too few observed outcomes to fit a model; the message says how many and what to do."""


def observed_rows(
    profiles: pd.DataFrame, campaign: pd.DataFrame, outcomes: pd.DataFrame, next_receipt: pd.DataFrame
) -> pd.DataFrame:
    """Training rows from what the agency holds.

    ``profiles``: the logged profiles of the campaign's decisions (``household_id`` is the
    household's key in ``campaign``), one row per household and benefit. ``campaign``:
    ``household_id, arm, propensity, benefits``. ``outcomes``: ``household_id, benefit, result``
    (the latest per pair). ``next_receipt``: ``household_id, benefit, receives_next`` (1/0, NA
    where the agency does not see the benefit), from the next extract.
    """
    c = campaign.set_index("household_id")
    checked = (
        campaign[["household_id", "benefits"]].assign(benefit=campaign["benefits"].str.split(";")).explode("benefit")
    )
    checked = checked[checked["benefit"].fillna("") != ""][["household_id", "benefit"]]
    rows = profiles.assign(benefit=profiles["benefit"].astype("object")).merge(
        checked, on=["household_id", "benefit"], how="inner"
    )
    rows["arm"] = rows["household_id"].map(c["arm"].astype("object"))
    rows["propensity"] = rows["household_id"].map(c["propensity"]).astype(float)
    rows["contacted"] = rows["arm"].isin(CONTACTED_ARMS)
    res = outcomes.assign(benefit=outcomes["benefit"].astype("object")).set_index(["household_id", "benefit"])["result"]
    key = pd.MultiIndex.from_frame(rows[["household_id", "benefit"]])
    rows["result"] = res.reindex(key).to_numpy()
    nxt = next_receipt.assign(benefit=next_receipt["benefit"].astype("object")).set_index(["household_id", "benefit"])[
        "receives_next"
    ]
    seen_next = nxt.reindex(key).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    recorded = rows["result"].notna().to_numpy()
    opened = (rows["result"] == "opened").to_numpy()
    contacted = rows["contacted"].to_numpy()
    rows["opened"] = np.where(contacted & recorded, opened.astype(float), np.nan)
    unreached = (rows["result"] == "unreachable").to_numpy()
    as_held_out = unreached | ((rows["result"] == "already_receiving").to_numpy() & ~np.isnan(seen_next))
    claimed_next = np.where(
        contacted, np.where(opened, 1.0, np.where(as_held_out, seen_next, np.where(recorded, 0.0, np.nan))), seen_next
    )
    rows["claimed_next"] = claimed_next
    rows["benefit"] = pd.Categorical(
        rows["benefit"], categories=profiles["benefit"].cat.categories if hasattr(profiles["benefit"], "cat") else None
    )
    return rows.reset_index(drop=True)


def _fit(rows: pd.DataFrame, y: np.ndarray, weight: np.ndarray, cfg: TrainingConfig, what: str) -> lgb.Booster:
    if len(rows) < MIN_ROWS_PER_MODEL or len(np.unique(y)) < 2:
        raise NotEnoughLabels(
            f"{what}: {len(rows)} labelled rows with {int(y.sum())} positives; at least {MIN_ROWS_PER_MODEL} "
            "rows of both kinds are needed. "
            "Record more outcomes (nonrecours outreach, or POST /outcomes) or run a larger campaign."
        )
    params = {
        **lgb_params(cfg),
        "num_leaves": SMALL_DATA_LEAVES,
        "min_child_samples": SMALL_DATA_MIN_CHILD,
        "min_data_per_group": SMALL_DATA_MIN_CHILD,
        "cat_smooth": SMALL_DATA_MIN_CHILD,
    }
    data = lgb.Dataset(
        model_frame(rows),
        label=y.astype(int),
        weight=weight,
        categorical_feature=list(CATEGORICAL),
        free_raw_data=False,
    )
    return lgb.train(params, data, num_boost_round=SMALL_DATA_ROUNDS)


@dataclass
class ObservedModels:
    """The need model and the uplift model's two halves, fitted on observed labels."""

    need: lgb.Booster
    treated: lgb.Booster
    control: lgb.Booster
    n_contacted: int
    n_control: int

    PARTS = ("need", "treated", "control")

    def to_strings(self) -> dict[str, str]:
        """The three boosters as LightGBM model text (what the MLflow run keeps)."""
        return {name: getattr(self, name).model_to_string() for name in self.PARTS}

    @classmethod
    def from_strings(cls, texts: dict[str, str]) -> ObservedModels:
        return cls(**{name: lgb.Booster(model_str=texts[name]) for name in cls.PARTS}, n_contacted=0, n_control=0)

    def need_scorer(self, typical_amount: dict[str, float]) -> Scorer:
        """The need model as a :class:`~nonrecours.training.model.Scorer`: its reasons come from
        its TreeSHAP contributions, like the champion's."""
        return Scorer(booster=self.need, typical_amount=typical_amount)

    def p_need(self, profiles: pd.DataFrame) -> np.ndarray:
        """P(a right is opened | contacted)."""
        return np.asarray(self.need.predict(model_frame(profiles)))

    def uplift(self, profiles: pd.DataFrame) -> np.ndarray:
        """P(claim by next quarter | contacted) - P(claim by next quarter | not contacted)."""
        X = model_frame(profiles)
        return np.asarray(self.treated.predict(X)) - np.asarray(self.control.predict(X))


def fit_observed(rows: pd.DataFrame, cfg: TrainingConfig) -> ObservedModels:
    """Fit the need model and the T-learner's two models on :func:`observed_rows`' rows."""
    contacted = rows["contacted"].to_numpy(dtype=bool)
    p = rows["propensity"].to_numpy(dtype=float)
    need_rows = rows[contacted & rows["opened"].notna().to_numpy()]
    need = _fit(
        need_rows,
        need_rows["opened"].to_numpy(dtype=float),
        1 / need_rows["propensity"].to_numpy(dtype=float),
        cfg,
        "need model (contacted households)",
    )
    known = rows["claimed_next"].notna().to_numpy()
    treated_rows = rows[contacted & known]
    control_rows = rows[~contacted & known]
    treated = _fit(
        treated_rows,
        treated_rows["claimed_next"].to_numpy(dtype=float),
        1 / p[contacted & known],
        cfg,
        "uplift, contacted half",
    )
    control = _fit(
        control_rows,
        control_rows["claimed_next"].to_numpy(dtype=float),
        1 / (1 - p[~contacted & known]),
        cfg,
        "uplift, uncontacted half (holdout and pool)",
    )
    return ObservedModels(
        need=need, treated=treated, control=control, n_contacted=len(treated_rows), n_control=len(control_rows)
    )
