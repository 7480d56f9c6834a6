"""Fit the model and its baselines on a household split, and score them all on the same test set.

Where it sits: the pure core of ``nonrecours train`` (no MLflow here; :mod:`nonrecours.training.tracking`
logs what this returns). Labels come only from ``build_labels``; features only from profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nonrecours.core.config import TrainingConfig
from nonrecours.core.errors import UserError
from nonrecours.core.schema import AUDIT_GROUPS
from nonrecours.features.profiles import build_labels
from nonrecours.training.baselines import ceiling_probability, fit_logistic, rules_value
from nonrecours.training.metrics import evaluate_slices, group_recall, households_in, worst_recall_gap
from nonrecours.training.model import Scorer, fit_lightgbm, fit_lightgbm_dask
from nonrecours.training.proxies import proxy_audit

HASH_RANGE = np.float64(2**64)
"""pandas' hashes are 64-bit unsigned integers: divided by this, uniform on [0, 1)."""


def split_households(household_ids: pd.Series, cfg: TrainingConfig) -> pd.Series:
    """'train', 'valid' or 'test' per row, the same for every row of a household.

    A household's part depends only on its id and the seed (a hash, not a random stream: a
    stream seeded like the generator's would replay the generator's first draw, the household
    type, and put every test household in one type — seen here).
    """
    ids = household_ids.to_numpy(dtype=np.int64)
    salted = np.char.add(ids.astype(str), f"/split/{cfg.seed}")
    u = pd.util.hash_array(salted.astype(object)) / HASH_RANGE
    part = np.where(u < cfg.test_share, "test", np.where(u < cfg.test_share + cfg.valid_share, "valid", "train"))
    return pd.Series(part, index=household_ids.index, name="split")


@dataclass
class Evaluation:
    scorer: Scorer
    test: pd.DataFrame  # test profiles with labels and every method's probability and value
    metrics: pd.DataFrame  # one row per population x benefit x method
    groups: pd.DataFrame  # recall at k per audited group (model, candidates)
    worst_gap: float
    worst_gap_where: str
    n_train: int
    n_valid: int
    next_metrics: pd.DataFrame | None = None  # the same, on the next quarter's test households
    next_groups: pd.DataFrame | None = None
    proxies: pd.DataFrame | None = None  # how well the model's inputs predict each protected attribute


def join_labels(profiles: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    labels = build_labels(outcomes).astype({"benefit": "object"})
    out = profiles.astype({"benefit": "object"}).merge(
        labels, on=["household_id", "benefit"], how="left", validate="1:1"
    )
    if out["target"].isna().any():
        row = out[out["target"].isna()].iloc[0]
        raise UserError(
            f"outcomes lack household_id={row['household_id']} benefit={row['benefit']!r}: the profiles and "
            "outcomes come from different populations"
        )
    out["benefit"] = pd.Categorical(out["benefit"], categories=profiles["benefit"].cat.categories)
    return out


def score_methods(test: pd.DataFrame, scorer: Scorer, logistic) -> pd.DataFrame:
    """Probability and value columns for every method, on the same rows."""
    est = scorer.estimated_amount(test)
    p_model = scorer.predict(test)
    p_logit = logistic(test)
    p_ceiling = ceiling_probability(test, test)
    return test.assign(
        candidate=test["receives_this"].fillna(0).to_numpy() < 1,
        estimated_amount=est,
        p_model=p_model,
        value_model=p_model * est,
        p_logistic=p_logit,
        value_logistic=p_logit * est,
        value_rules=rules_value(test),
        p_ceiling=p_ceiling,
        value_ceiling=p_ceiling * test["true_amount"].to_numpy(dtype=float),
    )


METHODS = {
    "model": ("p_model", "value_model"),
    "logistic": ("p_logistic", "value_logistic"),
    "rules": (None, "value_rules"),
    "ceiling": ("p_ceiling", "value_ceiling"),
}


def train_and_evaluate(
    profiles: pd.DataFrame,
    outcomes: pd.DataFrame,
    cfg: TrainingConfig,
    *,
    min_group_positives: int,
    scheduler: str | None = None,
    next_quarter: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    bootstrap: int = 0,
) -> Evaluation:
    """Fit on the train households, stop early on the valid ones, and score the model, the
    baselines and the ceiling on the test ones; with ``next_quarter`` (its profiles and outcomes),
    also on the same test households one quarter later."""
    data = join_labels(profiles, outcomes)
    split = split_households(data["household_id"], cfg)
    train, valid, test = (data[split == s].reset_index(drop=True) for s in ("train", "valid", "test"))
    if min(len(train), len(valid), len(test)) == 0:
        raise UserError(
            f"too few households to split into train/valid/test ({data['household_id'].nunique()}); generate more"
        )
    y_train = train["target"].to_numpy(dtype=bool)
    scorer = fit_lightgbm(train, y_train, valid, valid["target"].to_numpy(dtype=bool), cfg)
    if scheduler:
        scorer = fit_lightgbm_dask(
            pd.concat([train, valid], ignore_index=True),
            np.concatenate([y_train, valid["target"].to_numpy(dtype=bool)]),
            cfg,
            scheduler,
            n_rounds=scorer.best_iteration or None,
        )
    logistic = fit_logistic(train, y_train, cfg.seed)
    scored = score_methods(test, scorer, logistic)
    metrics, groups = assess(scored, cfg.capacity_share, min_group_positives, bootstrap)
    gap, where = worst_recall_gap(groups)
    ev = Evaluation(
        scorer, scored, metrics, groups, gap, where, len(train), len(valid), proxies=proxy_audit(train, test, cfg)
    )
    if next_quarter is not None:
        later = join_labels(*next_quarter)
        later = later[split_households(later["household_id"], cfg) == "test"].reset_index(drop=True)
        if len(later):
            ev.next_metrics, ev.next_groups = assess(
                score_methods(later, scorer, logistic), cfg.capacity_share, min_group_positives, bootstrap
            )
    return ev


def assess(
    scored: pd.DataFrame, capacity_share: float, min_group_positives: int, bootstrap: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every method's metrics and the model's recall per audited group (with ``bootstrap``
    intervals), at the same capacity."""
    metrics = evaluate_slices(scored, METHODS, capacity_share)
    candidates = scored[scored["candidate"]]
    groups = group_recall(
        candidates,
        "value_model",
        list(AUDIT_GROUPS),
        capacity_share,
        min_group_positives,
        households_in(len(scored)),
        bootstrap=bootstrap,
    )
    return metrics, groups


def metric(
    metrics: pd.DataFrame, method: str, name: str, population: str = "candidates", benefit: str = "overall"
) -> float:
    """Read one metric by name (never by position)."""
    row = metrics[
        (metrics["population"] == population) & (metrics["benefit"] == benefit) & (metrics["method"] == method)
    ]
    return float(row[name].iloc[0]) if len(row) else float("nan")


def compare_with_truth(observed: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per benefit: how often the law engine on observed data agrees with true eligibility.

    The gap is what makes prediction worth doing: people the agency's data say are not entitled
    but are (``missed``), and the reverse (``spurious``).
    """
    both = observed.merge(outcomes, on=["household_id", "benefit"], suffixes=("_observed", "_true"), validate="1:1")
    g = both.groupby("benefit", observed=True)
    table = pd.DataFrame(
        {
            "truly_eligible": g["eligible_true"].sum(),
            "eligible_on_observed": g["eligible_observed"].sum(),
            "agreement": g.apply(lambda d: (d["eligible_true"] == d["eligible_observed"]).mean(), include_groups=False),
            "missed": g.apply(lambda d: (d["eligible_true"] & ~d["eligible_observed"]).sum(), include_groups=False),
            "spurious": g.apply(lambda d: (~d["eligible_true"] & d["eligible_observed"]).sum(), include_groups=False),
        }
    )
    return table.reset_index()
