"""Evaluation metrics: pure functions of labels and scores.

Where it sits: used by ``train`` for the model, the baselines and the ceiling, and by the
promotion gate. "At k" metrics rank rows by the *value* an agent would see (expected unclaimed
euros) and flag the top ``k``; threshold-free metrics use the probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

METRICS = ("roc_auc", "pr_auc", "brier", "ece", "precision_at_k", "recall_at_k", "euros_at_k", "euros_share_at_k", "positives", "rows")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-count bins, weighted by bin size."""
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    chunks = np.array_split(order, min(bins, len(y)))
    return float(sum(len(c) * abs(y[c].mean() - p[c].mean()) for c in chunks if len(c)) / len(y))


def top_k(value: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` highest values; ties broken by position, so results are stable."""
    flagged = np.zeros(len(value), dtype=bool)
    if k > 0:
        flagged[np.argsort(-value, kind="stable")[:k]] = True
    return flagged


def evaluate(y: np.ndarray, p: np.ndarray | None, value: np.ndarray, unclaimed: np.ndarray, capacity_share: float) -> dict[str, float]:
    """Metrics for one slice. ``p`` is None for a method without probabilities (the rules)."""
    y = np.asarray(y, dtype=bool)
    n = len(y)
    k = int(np.ceil(capacity_share * n))
    flagged = top_k(np.asarray(value, dtype=float), k)
    positives = int(y.sum())
    both = positives > 0 and positives < n
    score = np.asarray(value if p is None else p, dtype=float)
    euros = float(unclaimed[flagged].sum())
    total = float(unclaimed.sum())
    return {
        "roc_auc": float(roc_auc_score(y, score)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, score)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)) if p is not None and n else float("nan"),
        "ece": expected_calibration_error(y, np.asarray(p)) if p is not None else float("nan"),
        "precision_at_k": float(y[flagged].mean()) if k else float("nan"),
        "recall_at_k": float(y[flagged].sum() / positives) if positives else float("nan"),
        "euros_at_k": euros,
        "euros_share_at_k": euros / total if total else float("nan"),
        "positives": float(positives),
        "rows": float(n),
    }


def evaluate_slices(frame: pd.DataFrame, methods: dict[str, tuple[str | None, str]], capacity_share: float) -> pd.DataFrame:
    """Every method on every slice: population (all pairs, candidates) x benefit (each, overall).

    ``frame`` has ``target``, ``unclaimed_amount``, ``benefit``, ``candidate`` and, per method,
    the columns named in ``methods`` as ``{method: (probability column or None, value column)}``.
    Returns one row per (population, benefit, method) with the :data:`METRICS` columns.
    """
    rows = []
    for population, part in (("all", frame), ("candidates", frame[frame["candidate"]])):
        slices = [("overall", part)] + [(str(b), g) for b, g in part.groupby("benefit", observed=True)]
        for benefit, g in slices:
            for method, (p_col, v_col) in methods.items():
                m = evaluate(
                    g["target"].to_numpy(),
                    None if p_col is None else g[p_col].to_numpy(dtype=float),
                    g[v_col].to_numpy(dtype=float),
                    g["unclaimed_amount"].to_numpy(dtype=float),
                    capacity_share,
                )
                rows.append({"population": population, "benefit": benefit, "method": method, **m})
    return pd.DataFrame(rows)


def group_recall(frame: pd.DataFrame, value_col: str, groups: list[str], capacity_share: float, min_positives: int) -> pd.DataFrame:
    """Recall at k per group: of the people missing an entitlement, the share the ranking flags.

    One ranking over the whole frame (the outreach list is one list), then recall within each
    group of each attribute. ``gated`` says whether the group has enough positives to count.
    """
    k = int(np.ceil(capacity_share * len(frame)))
    flagged = top_k(frame[value_col].to_numpy(dtype=float), k)
    y = frame["target"].to_numpy(dtype=bool)
    rows = []
    for attribute in groups:
        for group, idx in frame.groupby(attribute, observed=True).indices.items():
            pos = int(y[idx].sum())
            rows.append(
                {
                    "attribute": attribute,
                    "group": str(group),
                    "rows": len(idx),
                    "positives": pos,
                    "recall_at_k": float(flagged[idx][y[idx]].mean()) if pos else float("nan"),
                    "selection_rate": float(flagged[idx].mean()),
                    "gated": pos >= min_positives,
                }
            )
    return pd.DataFrame(rows)


def worst_recall_gap(groups: pd.DataFrame) -> tuple[float, str]:
    """Largest best-minus-worst recall within one attribute, among gated groups, and where."""
    gated = groups[groups["gated"]]
    worst, where = 0.0, "none"
    for attribute, g in gated.groupby("attribute"):
        if len(g) < 2:
            continue
        gap = float(g["recall_at_k"].max() - g["recall_at_k"].min())
        if gap > worst:
            lo = g.loc[g["recall_at_k"].idxmin(), "group"]
            hi = g.loc[g["recall_at_k"].idxmax(), "group"]
            worst, where = gap, f"{attribute}: {lo} vs {hi}"
    return worst, where
