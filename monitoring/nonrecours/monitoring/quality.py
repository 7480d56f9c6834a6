"""Classification quality where outcomes are known, with Evidently's classification preset.

Where it sits: ``nonrecours monitor`` calls :func:`quality_report` when the current window has a
truth (``target``). The rows are the scored profiles (one per household and benefit); the
predicted label is the outreach list (:func:`nonrecours.monitoring.fairness.flagged`, the top of one ranking by
expected unclaimed amount), the probability is ``p_unclaimed``. When the reference window has a
truth too, Evidently tests the current window against it: ROC AUC and recall on the list may not
fall by more than the configured drops. A failed test is a breach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.presets import ClassificationPreset
from evidently.tests import gte

from nonrecours.core.config import MonitoringConfig
from nonrecours.monitoring.fairness import flagged

# Two views of one classification, as Evidently names them. With a probability, Evidently derives
# labels by a 0.5 threshold; the list is a top-k by expected amount, so it is given as labels apart.
LIST, SCORE = "outreach_list", "score"
# (classification, Evidently's metric type) -> our name, for the figures we quote and gate on.
HEADLINE = {
    (LIST, "Recall"): "recall",
    (LIST, "Precision"): "precision",
    (LIST, "Accuracy"): "accuracy",
    (SCORE, "RocAuc"): "roc_auc",
    (SCORE, "LogLoss"): "log_loss",
}


@dataclass
class QualityResult:
    snapshot: Any  # evidently Snapshot (untyped)
    current: dict[str, float]
    reference: dict[str, float] | None
    tests: list[dict]  # view (outreach_list | score), name, description, passed

    @property
    def failed(self) -> list[dict]:
        return [t for t in self.tests if not t["passed"]]


def classification_frame(scored: pd.DataFrame, capacity_share: float) -> pd.DataFrame:
    """Truth, probability and the outreach list's label, one row per household and benefit."""
    return pd.DataFrame(
        {
            "target": scored["target"].to_numpy(dtype=int),
            "p_unclaimed": scored["p_unclaimed"].to_numpy(dtype=float),
            "flagged": flagged(scored, capacity_share).astype(int),
        }
    )


def _definition() -> DataDefinition:
    return DataDefinition(
        numerical_columns=["p_unclaimed"],
        classification=[
            BinaryClassification(name=LIST, target="target", prediction_labels="flagged", pos_label=1),
            BinaryClassification(name=SCORE, target="target", prediction_probas="p_unclaimed", pos_label=1),
        ],
    )


def _run(
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
    list_preset: ClassificationPreset,
    score_preset: ClassificationPreset,
):
    cur = Dataset.from_pandas(current, data_definition=_definition())
    ref = None if reference is None else Dataset.from_pandas(reference, data_definition=_definition())
    return Report([list_preset, score_preset], include_tests=False).run(current_data=cur, reference_data=ref)


def _untested():
    return ClassificationPreset(classification_name=LIST), ClassificationPreset(classification_name=SCORE)


def _headline(snapshot) -> dict[str, float]:
    out = {}
    for m in snapshot.dict()["metrics"]:
        key = (m["config"].get("classification_name"), m["config"]["type"].rsplit(":", 1)[-1])
        if key in HEADLINE and not isinstance(m["value"], dict):
            out[HEADLINE[key]] = float(m["value"])
    return out


def quality_report(
    reference: pd.DataFrame, current: pd.DataFrame, *, cfg: MonitoringConfig, capacity_share: float
) -> QualityResult:
    """Evidently's classification preset on the current window; with a reference truth, tests
    that ROC AUC and recall on the list stay within ``cfg.max_roc_auc_drop`` and
    ``cfg.max_recall_drop`` of the reference's."""
    cur = classification_frame(current, capacity_share)
    if "target" not in reference.columns:
        snapshot = _run(cur, None, *_untested())
        return QualityResult(snapshot, _headline(snapshot), None, [])
    ref = classification_frame(reference, capacity_share)
    baseline = _headline(_run(ref, None, *_untested()))
    snapshot = _run(
        cur,
        ref,
        ClassificationPreset(classification_name=LIST, recall_tests=[gte(baseline["recall"] - cfg.max_recall_drop)]),
        ClassificationPreset(classification_name=SCORE, rocauc_tests=[gte(baseline["roc_auc"] - cfg.max_roc_auc_drop)]),
    )
    tests = [
        {
            "view": t["metric_config"]["params"]["classification_name"],
            "name": t["name"],
            "description": t["description"],
            "passed": str(t["status"]).endswith("SUCCESS"),
        }
        for t in snapshot.dict()["tests"]
    ]
    return QualityResult(snapshot, _headline(snapshot), baseline, tests)
