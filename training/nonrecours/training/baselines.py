"""What the model is measured against: today's rules, a logistic regression, and the ceiling.

Where it sits: computed by ``train`` on the same test households as the model.

- **rules**: the agency's current practice: flag households the law engine finds eligible on its
  own data and that it does not see receiving the benefit, ranked by the estimated amount; never
  CSS without contribution for an RSA recipient, who gets it by default.
- **logistic**: a logistic regression on the same features (one-hot categories, scaled numbers).
- **ceiling**: a score that knows what the agency cannot: true eligibility today and, where the
  agency does not see receipt, the true claim probability. No model on observed data beats it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from nonrecours.training.model import CATEGORICAL, model_frame

LOGISTIC_MAX_ITER = 2000
"""Enough iterations for lbfgs to converge on the standardised profiles (fewer warned here)."""


def rules_value(profiles: pd.DataFrame) -> np.ndarray:
    """Estimated amount where eligible on observed data and not seen receiving; else 0. CSS
    without contribution is attributed to RSA recipients by default: never flagged for them."""
    not_receiving = profiles["receives_this"].fillna(0).to_numpy() < 1
    automatic = (profiles["benefit"].astype("object").to_numpy() == "css_free") & (
        profiles["receives_rsa"].fillna(0).to_numpy() >= 1
    )
    flag = profiles["law_eligible"].to_numpy(dtype=bool) & not_receiving & ~automatic
    return np.where(flag, profiles["law_amount"].to_numpy(dtype=float), 0.0)


def ceiling_probability(profiles: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """P(eligible and unclaimed) given the truth the agency lacks. Where the agency sees receipt,
    claiming is known (receiving = claiming); elsewhere the true claim probability is used."""
    eligible = labels["true_eligible"].to_numpy(dtype=bool)
    seen = profiles["receives_this"].to_numpy(dtype=float)
    p_unclaimed = np.where(np.isnan(seen), 1 - labels["p_claim"].to_numpy(dtype=float), 1 - np.nan_to_num(seen))
    return np.where(eligible, p_unclaimed, 0.0)


def fit_logistic(train: pd.DataFrame, y: np.ndarray, seed: int) -> Callable[[pd.DataFrame], np.ndarray]:
    """Fit and return the predict function (probability of the target)."""
    X = model_frame(train)
    numeric = [c for c in X.columns if c not in CATEGORICAL]
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
                ),
                numeric,
            ),
        ]
    )
    pipe = Pipeline([("pre", pre), ("lr", LogisticRegression(max_iter=LOGISTIC_MAX_ITER, C=1.0, random_state=seed))])
    pipe.fit(X.astype({c: "object" for c in CATEGORICAL}), y.astype(int))

    def predict(profiles: pd.DataFrame) -> np.ndarray:
        return pipe.predict_proba(model_frame(profiles).astype({c: "object" for c in CATEGORICAL}))[:, 1]

    return predict
