"""Fairness per audited group, with fairlearn's ``MetricFrame``: who the outreach list reaches.

Where it sits: ``nonrecours monitor`` calls :func:`fairness_table` on scored profiles with known
outcomes. Evidently has no fairness metrics, and its ``GroupBy`` returns the overall value for
every group on classification metrics (measured), so the per-group figures come from here.

The list is one ranking of every row by expected unclaimed amount, cut at the capacity (top k).
Per group: selection rate (share flagged), recall (of the people missing an entitlement, the share
flagged: exclusion is the harm measured first), precision (of those flagged, the share really
missing one) and calibration gap (mean score minus observed rate), with bootstrap intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from nonrecours.schema import AUDIT_GROUPS
from training.metrics import top_k



def _recall(y_true, y_pred) -> float:
    pos = y_true.astype(bool)
    return float(y_pred[pos].mean()) if pos.any() else float("nan")


def _precision(y_true, y_pred) -> float:
    sel = y_pred.astype(bool)
    return float(y_true[sel].mean()) if sel.any() else float("nan")


def _selection_rate(y_true, y_pred) -> float:
    return float(np.mean(y_pred)) if len(y_pred) else float("nan")


METRICS = {"selection_rate": _selection_rate, "recall": _recall, "precision": _precision}


def flagged(scored: pd.DataFrame, capacity_share: float) -> np.ndarray:
    """The outreach list: the top ``capacity_share`` of rows by expected unclaimed amount."""
    value = scored["expected_unclaimed_monthly"].to_numpy(dtype=float)
    return top_k(value, int(np.ceil(capacity_share * len(value))))


def fairness_table(scored: pd.DataFrame, *, capacity_share: float, min_positives: int, bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """One row per (attribute, group): rows, positives, the metrics, their 90% bootstrap interval
    and ``gated`` (enough positives to count against the threshold). ``scored`` needs
    ``target`` (truth), ``p_unclaimed``, ``expected_unclaimed_monthly`` and the audited columns."""
    y = scored["target"].to_numpy(dtype=bool)
    pred = flagged(scored, capacity_share)
    p = scored["p_unclaimed"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    rows = []
    for attribute in AUDIT_GROUPS:
        groups = scored[attribute].astype("object").astype(str).to_numpy()
        frame = MetricFrame(metrics=METRICS, y_true=y, y_pred=pred, sensitive_features=pd.Series(groups, name=attribute))
        by_group = frame.by_group
        for group in by_group.index:
            idx = np.flatnonzero(groups == group)
            yy, pp, ff = y[idx], p[idx], pred[idx]
            draws = {m: [] for m in METRICS}
            for _ in range(bootstrap):
                b = rng.integers(0, len(idx), len(idx))
                for m, fn in METRICS.items():
                    draws[m].append(fn(yy[b], ff[b]))
            row = {"attribute": attribute, "group": str(group), "rows": len(idx), "positives": int(yy.sum())}
            for m in METRICS:
                row[m] = float(by_group.loc[group, m])
                lo, hi = np.nanpercentile(draws[m], [5, 95]) if np.isfinite(draws[m]).any() else (np.nan, np.nan)
                row[f"{m}_low"], row[f"{m}_high"] = float(lo), float(hi)
            row["calibration_gap"] = float(pp.mean() - yy.mean())
            row["gated"] = row["positives"] >= min_positives
            rows.append(row)
    return pd.DataFrame(rows)


def recall_gaps(table: pd.DataFrame) -> pd.DataFrame:
    """Per attribute: best minus worst recall among gated groups, and which groups."""
    out = []
    for attribute, g in table[table["gated"]].groupby("attribute", sort=False):
        if len(g) < 2:
            continue
        lo, hi = g.loc[g["recall"].idxmin()], g.loc[g["recall"].idxmax()]
        out.append({"attribute": attribute, "gap": float(hi["recall"] - lo["recall"]), "lowest": lo["group"], "highest": hi["group"]})
    return pd.DataFrame(out, columns=["attribute", "gap", "lowest", "highest"])
