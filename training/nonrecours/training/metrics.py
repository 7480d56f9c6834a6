"""Evaluation metrics: pure functions of labels and scores.

Where it sits: the one metrics module, used by ``train`` for the model, the baselines and the
ceiling, by the promotion gate, and by monitoring (:mod:`nonrecours.monitoring.fairness`,
:mod:`nonrecours.monitoring.quality`). "At k" metrics rank rows by the *value* an agent would see
(expected unclaimed euros) and flag the top ``k`` (:func:`outreach_list`); threshold-free metrics
use the probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from nonrecours.core.schema import BENEFITS

METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "precision_at_k",
    "recall_at_k",
    "euros_at_k",
    "euros_share_at_k",
    "positives",
    "rows",
)


CALIBRATION_BINS = 10
"""Equal-count bins of the expected calibration error."""


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
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


def households_in(rows: int) -> int:
    """Households in a table of one row per household and benefit."""
    return int(np.ceil(rows / len(BENEFITS)))


def outreach_list(value: np.ndarray, capacity_share: float, households: int | None = None) -> np.ndarray:
    """The outreach list: a mask of the top ``k`` rows by ``value``, ``k`` = ``capacity_share`` of
    the ``households`` ranked (default: those of ``value``, one row per household and benefit), at
    least one as soon as there is a row. The one cut every "at k" figure uses: a quarter's
    contacts, one per row flagged."""
    value = np.asarray(value, dtype=float)
    n = households_in(len(value)) if households is None else households
    return top_k(value, int(np.ceil(capacity_share * n)) if len(value) else 0)


def evaluate(
    y: np.ndarray,
    p: np.ndarray | None,
    value: np.ndarray,
    unclaimed: np.ndarray,
    capacity_share: float,
    households: int | None = None,
) -> dict[str, float]:
    """Metrics for one slice. ``p`` is None for a method without probabilities (the rules);
    ``households``: how many the capacity is a share of (default: the slice's)."""
    y = np.asarray(y, dtype=bool)
    n = len(y)
    flagged = outreach_list(value, capacity_share, households)
    k = int(flagged.sum())
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


def evaluate_slices(
    frame: pd.DataFrame, methods: dict[str, tuple[str | None, str]], capacity_share: float
) -> pd.DataFrame:
    """Every method on every slice: population x benefit (each, overall). Populations: ``all``
    pairs, ``candidates`` (not seen receiving) and ``law_eligible`` (the rows the law engine finds
    eligible on the agency's data).

    ``frame`` has ``target``, ``unclaimed_amount``, ``benefit``, ``candidate``, ``law_eligible``
    and, per method, the columns named in ``methods`` as ``{method: (probability column or None,
    value column)}``. Every slice's outreach list is ``capacity_share`` of the frame's households
    (one quarter's contacts), so "at k" figures compare across slices.
    Returns one row per (population, benefit, method) with the :data:`METRICS` columns.
    """
    rows = []
    households = households_in(len(frame))
    eligible = frame["law_eligible"].to_numpy(dtype=bool)
    for population, part in (
        ("all", frame),
        ("candidates", frame[frame["candidate"]]),
        ("law_eligible", frame[eligible]),
    ):
        slices = [("overall", part)] + [(str(b), g) for b, g in part.groupby("benefit", observed=True)]
        for benefit, g in slices:
            for method, (p_col, v_col) in methods.items():
                m = evaluate(
                    g["target"].to_numpy(),
                    None if p_col is None else g[p_col].to_numpy(dtype=float),
                    g[v_col].to_numpy(dtype=float),
                    g["unclaimed_amount"].to_numpy(dtype=float),
                    capacity_share,
                    households,
                )
                rows.append({"population": population, "benefit": benefit, "method": method, **m})
    return pd.DataFrame(rows)


def _recall(y_true, y_pred) -> float:
    positive = np.asarray(y_true, dtype=bool)
    return float(np.asarray(y_pred)[positive].mean()) if positive.any() else float("nan")


def _precision(y_true, y_pred) -> float:
    selected = np.asarray(y_pred, dtype=bool)
    return float(np.asarray(y_true)[selected].mean()) if selected.any() else float("nan")


def _selection_rate(y_true, y_pred) -> float:
    return float(np.mean(y_pred)) if len(y_pred) else float("nan")


GROUP_METRICS = {"selection_rate": _selection_rate, "recall": _recall, "precision": _precision}
"""Of the outreach list, per group: the share flagged; of the people missing an entitlement, the
share flagged (exclusion, the harm measured first); of those flagged, the share really missing one."""


def in_schema_order(column: pd.Series, present) -> list[str]:
    """The groups present, in the column's declared category order (age bands in age order), then
    any undeclared ones sorted."""
    present = {str(g) for g in present}
    declared = [str(c) for c in column.cat.categories] if isinstance(column.dtype, pd.CategoricalDtype) else []
    return [g for g in declared if g in present] + sorted(present - set(declared))


def group_metrics(frame: pd.DataFrame, flagged: np.ndarray, y: np.ndarray | None, attributes) -> pd.DataFrame:
    """Per (attribute, group), in the schema's order: ``rows``, ``positives`` and the
    :data:`GROUP_METRICS` of the outreach list ``flagged``, computed by fairlearn's ``MetricFrame``.
    Without ``y`` (no truth: a decision-log window) only the selection rate, and no positives."""
    from fairlearn.metrics import MetricFrame

    flagged = np.asarray(flagged, dtype=bool)
    known = y is not None
    # Without a truth the selection rate, which reads only the predictions, is the one metric;
    # fairlearn still wants a y_true, so the predictions stand in for it.
    truth = np.asarray(y, dtype=bool) if known else flagged
    metrics = GROUP_METRICS if known else {"selection_rate": _selection_rate}
    rows = []
    for attribute in attributes:
        groups = frame[attribute].astype("object").astype(str).to_numpy()
        by_group = MetricFrame(
            metrics=metrics, y_true=truth, y_pred=flagged, sensitive_features=pd.Series(groups, name=attribute)
        ).by_group
        for group in in_schema_order(frame[attribute], by_group.index):
            idx = np.flatnonzero(groups == group)
            row = {
                "attribute": attribute,
                "group": group,
                "rows": len(idx),
                "positives": int(truth[idx].sum()) if known else np.nan,
            }
            row.update({m: float(by_group.loc[group, m]) if m in metrics else np.nan for m in GROUP_METRICS})
            rows.append(row)
    return pd.DataFrame(rows, columns=["attribute", "group", "rows", "positives", *GROUP_METRICS])


INTERVAL_LEVEL = 0.90
"""Coverage of each group's bootstrap interval."""


def bootstrap_interval(
    statistic, *columns: np.ndarray, draws: int, rng: np.random.Generator, level: float = INTERVAL_LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*columns)``, rows resampled with replacement
    ``draws`` times; (nan, nan) for an empty group or when no draw gives a number."""
    n = len(columns[0])
    if n == 0 or draws == 0:
        return np.nan, np.nan
    values = np.array(
        [statistic(*(c[b] for c in columns)) for b in (rng.integers(0, n, n) for _ in range(draws))], dtype=float
    )
    if not np.isfinite(values).any():
        return np.nan, np.nan
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def group_recall(
    frame: pd.DataFrame,
    value_col: str,
    groups: list[str],
    capacity_share: float,
    min_positives: int,
    households: int | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Recall at k per group: of the people missing an entitlement, the share the ranking flags,
    with its bootstrap interval (``recall_low``, ``recall_high``; empty when ``bootstrap`` is 0).

    One ranking over the whole frame (the outreach list is one list), then :func:`group_metrics`
    within each group of each attribute. ``gated`` says whether the group has enough positives to
    count."""
    flagged = outreach_list(frame[value_col].to_numpy(dtype=float), capacity_share, households)
    y = frame["target"].to_numpy(dtype=bool)
    table = group_metrics(frame, flagged, y, groups)
    table = table.rename(columns={"recall": "recall_at_k"}).drop(columns="precision")
    rng = np.random.default_rng(seed)
    intervals = []
    for attribute, group in zip(table["attribute"], table["group"]):
        idx = np.flatnonzero(frame[attribute].astype("object").astype(str).to_numpy() == group)
        intervals.append(bootstrap_interval(_recall, y[idx], flagged[idx], draws=bootstrap, rng=rng))
    table["recall_low"], table["recall_high"] = [i[0] for i in intervals], [i[1] for i in intervals]
    overall = _recall(y, flagged)
    # At a small capacity every recall is small, and so is any gap between two: the ratio to the
    # overall recall says how much less likely a group's missed rights are to be flagged.
    table["recall_ratio"] = table["recall_at_k"] / overall if overall else np.nan
    table["gated"] = table["positives"] >= min_positives
    return table[
        [
            "attribute",
            "group",
            "rows",
            "positives",
            "recall_at_k",
            "recall_low",
            "recall_high",
            "recall_ratio",
            "selection_rate",
            "gated",
        ]
    ]


def recall_gaps(groups: pd.DataFrame, recall: str = "recall_at_k") -> pd.DataFrame:
    """Per attribute: best minus worst ``recall`` among its gated groups (two at least), and
    which groups. ``groups`` has ``attribute``, ``group``, ``gated`` and the ``recall`` column."""
    out = []
    for attribute, g in groups[groups["gated"]].groupby("attribute", sort=False):
        if len(g) < 2:
            continue
        lo, hi = g.loc[g[recall].idxmin()], g.loc[g[recall].idxmax()]
        out.append(
            {
                "attribute": attribute,
                "gap": float(hi[recall] - lo[recall]),
                "lowest": lo["group"],
                "highest": hi["group"],
            }
        )
    return pd.DataFrame(out, columns=["attribute", "gap", "lowest", "highest"])


def worst_recall_gap(groups: pd.DataFrame, recall: str = "recall_at_k") -> tuple[float, str]:
    """The largest of :func:`recall_gaps` and where (the first attribute by name on a tie), or
    ``(0.0, "none")`` when no attribute has two gated groups."""
    worst, where = 0.0, "none"
    for row in recall_gaps(groups, recall).sort_values("attribute", kind="stable").itertuples(index=False):
        if row.gap > worst:
            worst, where = row.gap, f"{row.attribute}: {row.lowest} vs {row.highest}"
    return worst, where
