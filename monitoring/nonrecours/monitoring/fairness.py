"""Fairness per audited group, with fairlearn's ``MetricFrame`` (through the one metrics module,
:func:`nonrecours.training.metrics.group_metrics`): who the outreach list reaches.

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

from nonrecours.core.schema import AUDIT_GROUPS
from nonrecours.training.metrics import (
    GROUP_METRICS,
    bootstrap_interval,
    group_metrics,
    in_schema_order,
    outreach_list,
)


def flagged(scored: pd.DataFrame, capacity_share: float) -> np.ndarray:
    """The outreach list: ``capacity_share`` of the households, the top rows by expected unclaimed amount."""
    return outreach_list(scored["expected_unclaimed_monthly"].to_numpy(dtype=float), capacity_share)


def fairness_table(
    scored: pd.DataFrame, *, capacity_share: float, min_positives: int, bootstrap: int, seed: int = 0
) -> pd.DataFrame:
    """One row per (attribute, group): rows, positives, the metrics, their 90% bootstrap interval
    and ``gated`` (enough positives to count against the threshold). ``scored`` needs
    ``p_unclaimed``, ``expected_unclaimed_monthly``, the audited columns and, for everything but
    the selection rate, ``target`` (truth). Without it (a decision-log window), recall, precision,
    calibration and positives are empty and no group is gated: who the list selects is all that
    can be said."""
    known = "target" in scored.columns
    pred = flagged(scored, capacity_share)
    y = scored["target"].to_numpy(dtype=bool) if known else None
    p = scored["p_unclaimed"].to_numpy(dtype=float)
    table = group_metrics(scored, pred, y, AUDIT_GROUPS)
    rng = np.random.default_rng(seed)
    rows = []
    for row in table.to_dict("records"):
        idx = np.flatnonzero(scored[row["attribute"]].astype("object").astype(str).to_numpy() == row["group"])
        yy, pp, ff = (y[idx] if y is not None else pred[idx]), p[idx], pred[idx]
        out = {k: row[k] for k in ("attribute", "group", "rows", "positives")}
        for m, fn in GROUP_METRICS.items():
            lo, hi = (
                bootstrap_interval(fn, yy, ff, draws=bootstrap, rng=rng)
                if known or m == "selection_rate"
                else (np.nan, np.nan)
            )
            out[m], out[f"{m}_low"], out[f"{m}_high"] = row[m], lo, hi
        out["calibration_gap"] = float(pp.mean() - yy.mean()) if known else np.nan
        out["gated"] = known and out["positives"] >= min_positives
        rows.append(out)
    return pd.DataFrame(rows)


def follow_up_table(scored: pd.DataFrame, *, bootstrap: int, seed: int = 0) -> pd.DataFrame:
    """What agents recorded after outreach (the decision log's outcomes), per audited group: rows
    with an outcome, the share reached, and among those reached with a known result the share who
    claimed (with its 90% bootstrap interval). ``scored`` needs ``contacted`` and ``claimed``
    (empty where nothing was recorded). Not a recall: only contacted households have outcomes,
    so who the list missed stays unknown; the table shows whether outreach works alike for every
    group."""
    recorded = scored[scored["contacted"].notna()]
    rng = np.random.default_rng(seed)
    rows = []
    for attribute in AUDIT_GROUPS:
        groups = recorded[attribute].astype("object").astype(str)
        for group in in_schema_order(recorded[attribute], set(groups)):
            g = recorded[groups == group]
            reached = g[g["contacted"].astype(bool)]
            known = reached["claimed"].dropna().astype(bool).to_numpy()
            lo, hi = bootstrap_interval(np.mean, known, draws=bootstrap, rng=rng)
            rows.append(
                {
                    "attribute": attribute,
                    "group": group,
                    "outcomes": len(g),
                    "reached_share": len(reached) / len(g),
                    "results_known": len(known),
                    "claimed_share": float(known.mean()) if len(known) else np.nan,
                    "claimed_low": lo,
                    "claimed_high": hi,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "attribute",
            "group",
            "outcomes",
            "reached_share",
            "results_known",
            "claimed_share",
            "claimed_low",
            "claimed_high",
        ],
    )
