"""``nonrecours monitor``: the report of a current window against a reference, written, indexed and
logged to the champion's MLflow run.

Where it sits: over :mod:`nonrecours.monitoring.report` (the report, pure, and its pages); the
windows come scored from :mod:`nonrecours.serving.windows`.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.monitoring.report import MonitoringReport, build_report, write_report
from nonrecours.training.artifacts import held_out_metrics
from nonrecours.training.registry import Champion


def monitor(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    names: tuple[str, str],
    champion: Champion,
    settings: Settings,
    uri: str,
    out: Path,
) -> tuple[MonitoringReport, Path, Path]:
    """The report of ``current`` against ``reference`` (scored windows, named by ``names``), written
    to ``out`` and logged to the champion's run; returns the report, its page and the index."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    report = build_report(
        reference,
        current,
        cfg=settings.monitoring,
        fairness_cfg=settings.fairness,
        capacity_share=settings.training.capacity_share,
        model=f"{champion.name} v{champion.version}",
        reference_name=names[0],
        current_name=names[1],
        held_out=held_out_metrics(client.get_run(champion.run_id).data.metrics),
    )
    page, data, index = write_report(report, out, settings.serving.language)
    for path in (page, data):
        client.log_artifact(champion.run_id, str(path), artifact_path="monitoring")
    return report, page, index
