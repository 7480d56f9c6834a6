"""Drift of the model's inputs and scores between a reference and a current window, with Evidently.

Where it sits: ``nonrecours monitor`` calls :func:`drift_report` on two scored populations (one
row per household and benefit, as scoring or the decision log give them). Drift is measured per
household, not per row, so that a household counts once: its household-level features, and per
benefit its score and the law engine's amount. Column types come from the schema module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from nonrecours.core.schema import BENEFITS, FEATURES, PER_BENEFIT, PROFILES


def household_frame(scored: pd.DataFrame) -> pd.DataFrame:
    """One row per household: household-level features, then ``p_<benefit>`` and ``law_amount_<benefit>``."""
    first = scored.drop_duplicates("household_id").set_index("household_id")
    base = first[[c for c in FEATURES if c not in ("benefit", *PER_BENEFIT)]].copy()
    wide = scored.pivot(index="household_id", columns="benefit", values=["p_unclaimed", "law_amount"])
    for b in BENEFITS:
        base[f"p_{b}"] = wide[("p_unclaimed", b)].reindex(base.index).astype(float)
        base[f"law_amount_{b}"] = wide[("law_amount", b)].reindex(base.index).astype(float)
    for c in base.columns:
        if c in PROFILES.names and PROFILES.column(c).dtype in ("category", "bool", "boolean"):
            base[c] = base[c].astype("object").astype(str)
    return base.reset_index(drop=True)


def definition(frame: pd.DataFrame) -> DataDefinition:
    """Column types from the schema: categories and flags categorical, everything else numerical."""
    categorical = [
        c for c in frame.columns if c in PROFILES.names and PROFILES.column(c).dtype in ("category", "bool", "boolean")
    ]
    return DataDefinition(
        numerical_columns=[c for c in frame.columns if c not in categorical], categorical_columns=categorical
    )


@dataclass
class DriftResult:
    snapshot: Any  # evidently Snapshot (untyped): save_html / dict
    share: float  # share of columns Evidently finds drifted
    drifted: list[str]
    columns: int
    breached: bool


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, *, max_drift_share: float) -> DriftResult:
    """Evidently's data-drift preset on the household frames; breached when the share of drifted
    columns exceeds ``max_drift_share``. Evidently picks each column's test by type and sample size
    (for more than 1,000 rows: Wasserstein distance for numbers, Jensen-Shannon for categories)."""
    ref, cur = household_frame(reference), household_frame(current)
    # Receipt of a benefit the data holder cannot see is empty throughout: nothing to compare.
    seen = [c for c in ref.columns if ref[c].notna().any() and cur[c].notna().any()]
    ref, cur = ref[seen], cur[seen]
    dd = definition(ref)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(cur, data_definition=dd),
        reference_data=Dataset.from_pandas(ref, data_definition=dd),
    )
    share, drifted = 0.0, []
    for m in snapshot.dict()["metrics"]:
        config = m["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            value, threshold = float(m["value"]), float(config["threshold"])
            is_p_value = "p_value" in config["method"]
            if (value < threshold) if is_p_value else (value >= threshold):
                drifted.append(config["column"])
    return DriftResult(snapshot, share, drifted, len(ref.columns), share > max_drift_share)
