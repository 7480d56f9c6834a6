"""What a training run shows: its metrics under their MLflow names and its evaluation files
(tables and figures), as pure functions of the evaluation.

Where it sits: between :mod:`nonrecours.training.evaluate` (what is measured) and
:mod:`nonrecours.training.tracking` (which logs these to MLflow). No MLflow and no file here.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from nonrecours.training import plots
from nonrecours.training.card import quality_table
from nonrecours.training.evaluate import Evaluation, metric
from nonrecours.training.metrics import METRICS
from nonrecours.training.model import model_frame

SHAP_SAMPLE_ROWS = 4000
"""Test rows behind the SHAP summary: TreeSHAP costs as much as a prediction again per row."""


def metric_name(population: str, benefit: str, method: str, name: str) -> str:
    """How a training run names a figure: ``all.overall.model.roc_auc``."""
    return f"{population}.{benefit}.{method}.{name}"


def _named(metrics: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Every known figure of a metrics table under its run name, ``prefix`` first."""
    return {
        prefix + metric_name(row["population"], row["benefit"], row["method"], name): float(row[name])
        for row in metrics.to_dict("records")
        for name in METRICS
        if name != "rows" and pd.notna(row[name])
    }


def run_metrics(ev: Evaluation) -> dict[str, float]:
    """Every metric of every (population, benefit, method) slice, by name, and two summaries:
    the model's share of the ceiling's euros at k and the worst group recall gap."""
    out = _named(ev.metrics)
    ceiling_euros = metric(ev.metrics, "ceiling", "euros_at_k")
    out["candidates.overall.model_share_of_ceiling_euros"] = (
        metric(ev.metrics, "model", "euros_at_k") / ceiling_euros if ceiling_euros else float("nan")
    )
    out["fairness.worst_group_recall_gap"] = ev.worst_gap
    if ev.next_metrics is not None:
        out.update(_named(ev.next_metrics, prefix="next_quarter."))
    for row in [] if ev.proxies is None else ev.proxies.to_dict("records"):
        if pd.notna(row["probe_auc"]):
            out[f"proxy.{row['attribute']}.probe_auc"] = float(row["probe_auc"])
    return out


def held_out_metrics(run_metrics: dict[str, float]) -> dict[str, float]:
    """The model's figures on its own held-out test set (every household and benefit), as its
    training run logged them: ``{"roc_auc": ..., "recall_at_k": ...}``."""
    prefix = metric_name("all", "overall", "model", "")
    return {k.removeprefix(prefix): v for k, v in run_metrics.items() if k.startswith(prefix)}


def evaluation_files(ev: Evaluation) -> tuple[dict[str, pd.DataFrame | pd.Series], dict[str, Figure]]:
    """The run's CSV tables and PNG figures, by file name: frames are written without their index,
    series (one value per feature) with it. TreeSHAP contributions are computed once, on a
    sample of the test rows, for both the table and the figure."""
    gain = pd.Series(ev.scorer.booster.feature_importance("gain"), index=ev.scorer.feature_names, name="gain")
    sample = ev.test.sample(min(len(ev.test), SHAP_SAMPLE_ROWS), random_state=0)
    contrib = ev.scorer.contributions(sample)
    tables = {
        "metrics.csv": ev.metrics,
        "group_recall.csv": ev.groups,
        "quality_vs_baselines.csv": quality_table(ev.metrics),
        "quality_law_eligible.csv": quality_table(ev.metrics, "law_eligible"),
        **(
            {
                "quality_next_quarter.csv": quality_table(ev.next_metrics),
                "group_recall_next_quarter.csv": ev.next_groups,
            }
            if ev.next_metrics is not None
            else {}
        ),
        **({"proxy_audit.csv": ev.proxies} if ev.proxies is not None else {}),
        "feature_importance.csv": gain.sort_values(ascending=False),
        "shap_mean_abs.csv": contrib.abs()
        .mean()
        .drop("bias")
        .sort_values(ascending=False)
        .rename("mean_abs_contribution"),
    }
    figures = {
        "roc.png": plots.roc_figure(ev.test),
        "precision_recall.png": plots.pr_figure(ev.test),
        "calibration.png": plots.calibration_figure(ev.test),
        "feature_importance.png": plots.importance_figure(gain, "LightGBM feature importance (gain)"),
        "shap_summary.png": plots.shap_summary_figure(contrib, model_frame(sample)),
    }
    return tables, figures
