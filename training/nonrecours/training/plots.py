"""Figures people look at in the MLflow UI: ROC, precision-recall and calibration per benefit,
feature importance, and a SHAP summary from LightGBM's ``pred_contrib``.

Where it sits: called by :mod:`nonrecours.training.tracking`; each function takes data and returns a figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from nonrecours.core.schema import BENEFITS

CURVE_METHODS = {"model": "p_model", "logistic": "p_logistic", "rules": "value_rules", "ceiling": "p_ceiling"}


def _grid(title: str) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(16, 8), constrained_layout=True)
    axes = fig.subplots(2, 4)
    fig.suptitle(title)
    return fig, axes.ravel()


def _curves(test: pd.DataFrame, title: str, curve, xlabel: str, ylabel: str, diagonal: bool) -> Figure:
    """One panel per benefit (candidates), one line per method; ``curve(y, score) -> (x, y)``."""
    fig, axes = _grid(title)
    for ax, b in zip(axes, BENEFITS):
        g = test[(test["benefit"] == b) & test["candidate"]]
        y = g["target"].to_numpy(dtype=bool)
        ax.set_title(f"{b} ({int(y.sum())} positives, base rate {y.mean() if len(y) else 0:.1%})", fontsize=9)
        if diagonal:
            ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        if 0 < y.sum() < len(y):
            for name, col in CURVE_METHODS.items():
                ax.plot(*curve(y, g[col]), label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    return fig


def roc_figure(test: pd.DataFrame) -> Figure:
    return _curves(
        test,
        "ROC per benefit (test households, candidates)",
        lambda y, s: roc_curve(y, s)[:2],
        "false positive rate",
        "true positive rate",
        True,
    )


def pr_figure(test: pd.DataFrame) -> Figure:
    def curve(y, s):
        precision, recall, _ = precision_recall_curve(y, s)
        return recall, precision

    return _curves(
        test, "Precision-recall per benefit (test households, candidates)", curve, "recall", "precision", False
    )


def calibration_figure(test: pd.DataFrame, bins: int = 10) -> Figure:
    """Equal-width probability bins (most rows sit near 0, so equal-count bins would hide the
    upper range); a point per non-empty bin, its size growing with the rows in it."""
    fig, axes = _grid("Calibration per benefit: observed rate against mean predicted probability")
    edges = np.linspace(0, 1, bins + 1)
    for ax, b in zip(axes, BENEFITS):
        g = test[test["benefit"] == b]
        ax.set_title(b)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        for name in ("model", "logistic"):
            p = g[f"p_{name}"].to_numpy()
            y = g["target"].to_numpy(dtype=float)
            which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
            stats = (
                pd.DataFrame({"bin": which, "p": p, "y": y})
                .groupby("bin")
                .agg(p=("p", "mean"), y=("y", "mean"), n=("y", "size"))
            )
            ax.plot(stats["p"], stats["y"], lw=1, label=name)
            ax.scatter(stats["p"], stats["y"], s=8 + 40 * np.sqrt(stats["n"] / max(len(p), 1)))
        ax.set_xlabel("predicted")
        ax.set_ylabel("observed")
        ax.legend(fontsize=7)
    return fig


def importance_figure(importance: pd.Series, title: str) -> Figure:
    top = importance.sort_values().tail(25)
    fig = Figure(figsize=(8, 9), constrained_layout=True)
    ax = fig.subplots()
    ax.barh(top.index, top.to_numpy())
    ax.set_title(title)
    return fig


def shap_summary_figure(contrib: pd.DataFrame, features: pd.DataFrame, max_features: int = 20) -> Figure:
    """Beeswarm-like summary: per feature, each row's contribution, coloured by the feature's
    rank among rows (high values red)."""
    c = contrib.drop(columns="bias")
    order = c.abs().mean().sort_values(ascending=False).index[:max_features][::-1]
    fig = Figure(figsize=(9, 10), constrained_layout=True)
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    for i, name in enumerate(order):
        x = c[name].to_numpy()
        v = features[name]
        color = (v.cat.codes if hasattr(v, "cat") else v).astype(float).rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(x, i + rng.uniform(-0.3, 0.3, len(x)), c=color, cmap="coolwarm", s=3, alpha=0.5)
    ax.set_yticks(range(len(order)), order)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("contribution to the log-odds of an unclaimed entitlement (pred_contrib)")
    ax.set_title("SHAP summary (test sample): red = high feature value")
    return fig


def qini_figure(curves: dict[str, np.ndarray], capacity: int) -> Figure:
    """Qini curves: the additional euros a month contacts cause, cumulated over each policy's
    ranking, against the number of households contacted; the random ranking's diagonal and the
    capacity marked."""
    fig = Figure(figsize=(8, 5), constrained_layout=True)
    ax = fig.subplots()
    for name, curve in curves.items():
        ax.plot(np.arange(len(curve)), curve, label=name)
    if curves:
        last = next(iter(curves.values()))
        ax.plot([0, len(last) - 1], [0, last[-1]], color="grey", lw=0.5, label="random")
    ax.axvline(capacity, color="black", lw=0.5, ls="--", label=f"capacity ({capacity:,})")
    ax.set_xlabel("households contacted, in each policy's order")
    ax.set_ylabel("additional euros a month caused (simulation)")
    ax.set_title("Qini curves on the next quarter")
    ax.legend(fontsize=8)
    return fig


LOOP_LINES = {
    "true played": "the loop's campaign (true)",
    "true prior alone": "the prior played alone (true)",
    "true rules alone": "the rules (true)",
    "true observed-feature limit": "observed-feature limit (true)",
    "true ceiling": "true-effect ceiling",
}


def loop_figure(table: pd.DataFrame) -> Figure:
    """The loop across rounds: the agency's estimate of what each round's contacts caused (with its
    interval) and, in simulation, what they truly caused beside the rules, the prior and the ceilings."""
    fig = Figure(figsize=(9, 5), constrained_layout=True)
    ax = fig.subplots()
    x = table["round"].to_numpy()
    ax.errorbar(
        x,
        table["estimated EUR/month caused"],
        yerr=[table["estimated EUR/month caused"] - table["low"], table["high"] - table["estimated EUR/month caused"]],
        fmt="o",
        color="black",
        capsize=4,
        label="the agency's estimate (90% interval)",
    )
    for column, label in LOOP_LINES.items():
        if column in table.columns:
            ax.plot(x, table[column], marker=".", label=label)
    ax.set_xticks(x)
    ax.set_xlabel("round (one quarter each)")
    ax.set_ylabel("additional EUR a month caused by the round's contacts")
    ax.set_title("The outreach loop, round by round")
    ax.legend(fontsize=8)
    return fig
