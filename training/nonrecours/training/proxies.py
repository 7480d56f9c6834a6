"""The proxy audit: how well the model's inputs predict each protected attribute.

Where it sits: computed by ``train`` (:func:`nonrecours.training.evaluate.train_and_evaluate`) and
shown in the model card. Protected attributes never reach the model, but the model is not blind:
``receives_aah`` stands for disability, a single-parent household for a woman, age bands are
read straight from ages. A probe classifier (LightGBM, on the model's own inputs, one row per
household) is fitted on the training households and its ROC AUC measured on the test ones: 0.5
means the inputs say nothing of the attribute, 1.0 that they give it away.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from nonrecours.core.config import TrainingConfig
from nonrecours.training.model import model_frame

PROBES = {
    "head_sex": ("F", "reference person is a woman"),
    "any_disability": (True, "a member has a recorded disability"),
    "head_nationality_group": ("non_eu", "reference person is a non-EU national"),
    "age_band": ("65_plus", "reference person is 65 or older"),
}
"""Attribute: (the group probed, in words)."""
PROBE_ROUNDS = 100
PROBE_LEAVES = 15
PROBE_LEARNING_RATE = 0.1
"""A small, quick probe: it only has to find what the inputs say of the attribute."""


def _households(profiles: pd.DataFrame) -> pd.DataFrame:
    """One row per household: its first benefit's row (household features are the same on every row)."""
    return profiles.drop_duplicates("household_id").reset_index(drop=True)


def proxy_audit(train: pd.DataFrame, test: pd.DataFrame, cfg: TrainingConfig) -> pd.DataFrame:
    """Per protected attribute probed: the group, its share, and the probe's test ROC AUC (NaN
    where a side has no member of the group)."""
    a, b = _households(train), _households(test)
    xa, xb = model_frame(a), model_frame(b)
    rows = []
    for attribute, (group, words) in PROBES.items():
        ya = (a[attribute].astype("object") == group).to_numpy()
        yb = (b[attribute].astype("object") == group).to_numpy()
        auc = float("nan")
        if 0 < ya.sum() < len(ya) and 0 < yb.sum() < len(yb):
            params = {
                "objective": "binary",
                "num_leaves": PROBE_LEAVES,
                "learning_rate": PROBE_LEARNING_RATE,
                "verbose": -1,
                "seed": cfg.seed,
                "num_threads": cfg.num_threads,
            }
            probe = lgb.train(params, lgb.Dataset(xa, ya.astype(int)), num_boost_round=PROBE_ROUNDS)
            auc = float(roc_auc_score(yb, probe.predict(xb)))
        rows.append(
            {
                "attribute": attribute,
                "group": str(group),
                "meaning": words,
                "share": float(np.mean(yb)) if len(yb) else float("nan"),
                "probe_auc": auc,
            }
        )
    return pd.DataFrame(rows)
