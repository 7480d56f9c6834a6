"""The non-take-up model: LightGBM on profiles, and the scorer that ships with it.

Where it sits: ``train`` fits it; serving and batch scoring load it back (from the MLflow registry)
as a :class:`Scorer`. A learner returns the scorer it evaluated with, so what is evaluated is what
ships (fklearn's idea). Inputs are only the schema's ``FEATURES``: never an id, never a protected
attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from nonrecours.core.config import TrainingConfig
from nonrecours.core.schema import BENEFITS, FEATURES, PROFILES

CATEGORICAL: tuple[str, ...] = tuple(c for c in FEATURES if PROFILES.column(c).dtype == "category")


def model_frame(profiles: pd.DataFrame) -> pd.DataFrame:
    """The model's input matrix: ``FEATURES`` in order, categories fixed by the schema, everything else
    as float (booleans 0/1, missing values NaN). LightGBM rejects string columns and the pyfunc path
    rejects pandas categories (mlflow#12910), so this cast is the one way in, for training and for
    scoring."""
    missing = [c for c in FEATURES if c not in profiles.columns]
    if missing:
        raise ValueError(f"profiles lack feature column(s) {missing}")
    out = {}
    for c in FEATURES:
        col = PROFILES.column(c)
        s = profiles[c]
        if col.dtype == "category":
            out[c] = pd.Categorical(s.astype("object"), categories=list(col.categories or ()))
        elif col.dtype == "bool":
            out[c] = s.astype(bool).astype("float64")
        else:
            out[c] = s.astype("float64")
    return pd.DataFrame(out, index=profiles.index)


@dataclass
class Scorer:
    """A fitted model with what it needs to score: the booster and the typical amounts used when
    the law engine finds no amount on observed data."""

    booster: lgb.Booster
    typical_amount: dict[str, float]
    best_iteration: int = 0
    feature_names: tuple[str, ...] = FEATURES
    params: dict = field(default_factory=dict)

    def predict(self, profiles: pd.DataFrame) -> np.ndarray:
        """Probability that the household is entitled to the benefit and does not claim it."""
        return np.asarray(self.booster.predict(model_frame(profiles), num_iteration=self.best_iteration or None))

    def contributions(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Per-row additive contributions in log-odds (LightGBM ``pred_contrib``, TreeSHAP);
        the last column, ``bias``, is the expected value."""
        raw = self.booster.predict(model_frame(profiles), num_iteration=self.best_iteration or None, pred_contrib=True)
        return pd.DataFrame(raw, columns=[*FEATURES, "bias"], index=profiles.index)

    def estimated_amount(self, profiles: pd.DataFrame) -> np.ndarray:
        """See :func:`estimated_amount`."""
        return estimated_amount(profiles, self.typical_amount)

    def metadata(self) -> dict:
        return {
            "typical_amount": self.typical_amount,
            "best_iteration": self.best_iteration,
            "features": list(self.feature_names),
        }

    @classmethod
    def from_booster(cls, booster: lgb.Booster, metadata: dict) -> Scorer:
        if tuple(metadata["features"]) != FEATURES:
            raise ValueError("the model was trained on other features than this code builds; retrain it")
        return cls(
            booster=booster, typical_amount=metadata["typical_amount"], best_iteration=metadata["best_iteration"]
        )


def estimated_amount(profiles: pd.DataFrame, typical_amount: dict[str, float]) -> np.ndarray:
    """The amount an agent sees: the law engine's on observed data, or, where it finds none (the
    household looks ineligible on what the agency holds), the benefit's typical amount."""
    typical = profiles["benefit"].astype("object").map(typical_amount).to_numpy(dtype=float)
    law = profiles["law_amount"].to_numpy(dtype=float)
    return np.where(law > 0, law, typical)


def typical_amounts(profiles: pd.DataFrame) -> dict[str, float]:
    """Median law-engine amount per benefit among rows found eligible (label-free)."""
    eligible = profiles[profiles["law_eligible"]]
    med = eligible.groupby("benefit", observed=True)["law_amount"].median()
    return {b: float(med.get(b, 0.0)) for b in BENEFITS}


def lgb_params(cfg: TrainingConfig) -> dict:
    return {
        "objective": "binary",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_child_samples": cfg.min_child_samples,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": cfg.bagging_freq,
        "seed": cfg.seed,
        "deterministic": True,
        "num_threads": cfg.num_threads,
        "verbose": -1,
    }


def fit_lightgbm(
    train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray, cfg: TrainingConfig
) -> Scorer:
    """Fit on ``train`` with early stopping on ``valid`` (different households)."""
    params = lgb_params(cfg)
    dtrain = lgb.Dataset(
        model_frame(train), label=y_train.astype(int), categorical_feature=list(CATEGORICAL), free_raw_data=False
    )
    dvalid = lgb.Dataset(model_frame(valid), label=y_valid.astype(int), reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=cfg.max_rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    return Scorer(
        booster=booster, typical_amount=typical_amounts(train), best_iteration=booster.best_iteration, params=params
    )


def fit_lightgbm_dask(
    train: pd.DataFrame, y_train: np.ndarray, cfg: TrainingConfig, scheduler: str, n_rounds: int | None = None
) -> Scorer:
    """The same model trained with ``lightgbm.dask`` on an existing Dask cluster.

    Distributed LightGBM has no early stopping on a held-out set; the number of rounds is the one
    found locally when given, else ``max_rounds``.
    """
    import dask.dataframe as dd
    from dask.distributed import Client
    from lightgbm.dask import DaskLGBMClassifier

    X = model_frame(train)
    with Client(scheduler) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        parts = max(1, n_workers)
        dX = dd.from_pandas(X, npartitions=parts)
        dy = dd.from_pandas(pd.Series(y_train.astype(int), index=X.index), npartitions=parts)
        params = {k: v for k, v in lgb_params(cfg).items() if k not in ("num_threads", "deterministic")}
        clf = DaskLGBMClassifier(client=client, n_estimators=n_rounds or cfg.max_rounds, **params)
        clf.fit(dX, dy, categorical_feature=list(CATEGORICAL))
        booster = clf.to_local().booster_
    return Scorer(booster=booster, typical_amount=typical_amounts(train), best_iteration=0, params=params)
