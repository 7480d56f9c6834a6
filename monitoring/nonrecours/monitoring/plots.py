"""Figures of the monitoring report: a metric per audited group with its bootstrap interval, so an
auditor sees at a glance which group the outreach list reaches least.

Where it sits: :mod:`nonrecours.monitoring.report` embeds them in the HTML page as PNG data; each function
takes a table and returns a figure.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def group_figure(table: pd.DataFrame, metric: str, title: str, threshold_gap: float | None = None) -> Figure:
    """One panel per attribute, one point per group with its 90% interval (``<metric>_low`` /
    ``_high``). Ungated groups (too few positives) are drawn hollow. With ``threshold_gap``, the
    band below the best gated group's value down to the allowed gap is shaded."""
    attributes = list(dict.fromkeys(table["attribute"]))
    cols = min(4, len(attributes))
    rows = -(-len(attributes) // cols)
    fig = Figure(figsize=(4 * cols, 3.4 * rows), constrained_layout=True)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True)).ravel()
    for ax in axes[len(attributes) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    for ax, attribute in zip(axes, attributes):
        g = table[table["attribute"] == attribute].reset_index(drop=True)
        x = np.arange(len(g))
        value = g[metric].to_numpy(dtype=float)
        low = np.clip(value - g[f"{metric}_low"].to_numpy(dtype=float), 0, None)
        high = np.clip(g[f"{metric}_high"].to_numpy(dtype=float) - value, 0, None)
        gated = g["gated"].to_numpy(dtype=bool) if "gated" in g else np.ones(len(g), dtype=bool)
        ax.errorbar(x, value, yerr=np.nan_to_num(np.vstack([low, high])), fmt="none", ecolor="grey", capsize=3)
        ax.scatter(x[gated], value[gated], color="C0", zorder=3)
        ax.scatter(x[~gated], value[~gated], facecolors="none", edgecolors="C0", zorder=3)
        if threshold_gap is not None and gated.any() and np.isfinite(value[gated]).any():
            best = np.nanmax(value[gated])
            ax.axhspan(best - threshold_gap, best, color="C2", alpha=0.12, lw=0)
        ax.set_xticks(x, g["group"], rotation=40, ha="right", fontsize=8)
        ax.set_title(attribute, fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.set_xlim(-0.5, len(g) - 0.5)
    for ax in axes[::cols]:
        ax.set_ylabel(metric.replace("_", " "))
    return fig


def png_data_uri(fig: Figure) -> str:
    """The figure as a ``data:`` URI, so the page stays one self-contained file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
