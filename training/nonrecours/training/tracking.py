"""MLflow: one run per training, the model in the registry, and the gate's decision on record.

Where it sits: the I/O side of ``nonrecours train``. It logs what the pure parts computed —
:mod:`nonrecours.training.evaluate` (the evaluation), :mod:`nonrecours.training.artifacts` (its
metrics and files), :mod:`nonrecours.training.gate` (the decision) — and registers through
:mod:`nonrecours.training.registry`. Nothing is read from the environment here: under
``mlflow run``, the application layer passes the run MLflow opened.
"""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from nonrecours.core.config import Settings
from nonrecours.training.artifacts import evaluation_files, run_metrics
from nonrecours.training.card import model_card
from nonrecours.training.evaluate import Evaluation
from nonrecours.training.gate import Decision, decide
from nonrecours.training.model import model_frame
from nonrecours.training.registry import champion_metrics, record_decision

SIGNATURE_ROWS = 200
"""Test rows the model's signature is inferred from (enough to see every column's type)."""
FIGURE_DPI = 90
GIT_TIMEOUT_SECONDS = 10


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            check=False,
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class TrainingRun:
    """Where a run goes: the tracking store, and the run ``mlflow run`` opened, if any."""

    tracking_uri: str
    launched_run_id: str | None
    user: str


@dataclass
class TrainOutcome:
    run_id: str
    version: str
    decision: Decision
    experiment_id: str
    tracking_uri: str
    quality: dict[str, pd.DataFrame]  # titled tables: the model against the baselines and the ceiling


def _log_inputs(
    ev: Evaluation,
    profiles: pd.DataFrame,
    settings: Settings,
    input_dir: Path,
    generator: dict | None,
    scheduler: str | None,
) -> None:
    """Parameters, the generator's report and the train and test profiles as MLflow datasets."""
    mlflow.set_tags({"mlflow.source.git.commit": git_commit(), "trainer": "lightgbm.dask" if scheduler else "lightgbm"})
    mlflow.log_params({f"training.{k}": v for k, v in settings.training.model_dump().items()})
    mlflow.log_params(
        {
            "law.reference_month": settings.law.reference_month,
            "best_iteration": ev.scorer.best_iteration,
            "n_features": len(ev.scorer.feature_names),
        }
    )
    if generator:
        mlflow.log_params(
            {"generator.seed": generator.get("seed"), "generator.households": generator.get("households")}
        )
        mlflow.log_dict(generator, "generator/calibration.json")
    test_ids = set(ev.test["household_id"])
    source = str((input_dir / "profiles.parquet").resolve())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        for name, frame, context in (
            ("profiles-train-valid", profiles[~profiles["household_id"].isin(test_ids)], "training"),
            ("profiles-test", profiles[profiles["household_id"].isin(test_ids)], "test"),
        ):
            dataset = mlflow.data.from_pandas(frame, source=source, name=name)  # type: ignore[attr-defined]  # lazily re-exported
            mlflow.log_input(dataset, context=context)


def _log_evaluation(ev: Evaluation) -> pd.DataFrame:
    """Metrics and evaluation files; returns the quality tables (model against baselines), by title."""
    mlflow.log_metrics(run_metrics(ev))
    tables, figures = evaluation_files(ev)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, table in tables.items():
            table.to_csv(d / name, index=isinstance(table, pd.Series))
        for name, fig in figures.items():
            fig.savefig(d / name, dpi=FIGURE_DPI)
        mlflow.log_artifacts(str(d), artifact_path="evaluation")
    titled = {
        "Test households, candidates (not seen receiving): model against baselines and ceiling": (
            "quality_vs_baselines.csv"
        ),
        "Test households, rows the law engine finds eligible on the agency's data": "quality_law_eligible.csv",
        "The same test households, next quarter (candidates)": "quality_next_quarter.csv",
    }
    return {title: tables[name] for title, name in titled.items() if name in tables}


def synthetic_example(X: pd.DataFrame) -> pd.DataFrame:
    """One made-up row in ``X``'s columns and types, for the model's ``input_example``: each
    column's median (numbers) or most frequent value (categories, flags). No household's row
    goes into MLflow, where anyone who reads the registry would see it."""
    row = {}
    for c in X.columns:
        col = X[c]
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == bool or col.dtype == object:
            row[c] = pd.Series([col.mode(dropna=True).iloc[0] if col.notna().any() else None], dtype=col.dtype)
        elif col.dtype.kind in "iu":
            row[c] = pd.Series([round(col.median())], dtype=col.dtype)
        else:
            row[c] = pd.Series([col.median()], dtype=col.dtype)
    return pd.concat(row, axis=1).set_axis(X.columns, axis=1)


def _register(ev: Evaluation, model_name: str) -> str:
    """Log the model in MLflow's native LightGBM flavour and register it; returns its version."""
    head = ev.test.head(SIGNATURE_ROWS)
    X = model_frame(head)
    # Native LightGBM flavour: the pyfunc path rejects pandas categories (mlflow#12910),
    # so the serving-input check through pyfunc is skipped; load with registry.load_scorer().
    info = mlflow.lightgbm.log_model(
        ev.scorer.booster,
        name="model",
        signature=infer_signature(X, ev.scorer.predict(head)),
        input_example=synthetic_example(X),
        registered_model_name=model_name,
        metadata=ev.scorer.metadata(),
        # Given, not inferred: inference predicts through pyfunc, which fails the same way.
        pip_requirements=[f"lightgbm=={lgb.__version__}", f"pandas=={pd.__version__}", f"numpy=={np.__version__}"],
        validate_serving_input=False,
    )
    return str(info.registered_model_version)


def _card_data(ev: Evaluation, profiles: pd.DataFrame, input_dir: Path, generator: dict | None) -> dict:
    return {
        "input": str(input_dir),
        "rows": len(profiles),
        "households": profiles["household_id"].nunique(),
        "n_train": ev.n_train,
        "n_valid": ev.n_valid,
        "n_test": len(ev.test),
        "population": "synthetic, seed {seed}, {households} households".format(**generator)
        if generator
        else "an agency extract",
    }


def log_training(
    ev: Evaluation,
    *,
    profiles: pd.DataFrame,
    settings: Settings,
    run: TrainingRun,
    input_dir: Path,
    generator: dict | None,
    scheduler: str | None,
) -> TrainOutcome:
    """One MLflow run: inputs, evaluation, the registered model, the gate's decision (against the
    current champion re-scored on this test set) and the model card."""
    cfg = settings.registry
    mlflow.set_tracking_uri(run.tracking_uri)
    client = MlflowClient(tracking_uri=run.tracking_uri)
    if run.launched_run_id:  # under `mlflow run`, the run exists already, in the experiment it chose
        experiment_id, run_name = client.get_run(run.launched_run_id).info.experiment_id, None
    else:
        experiment_id, run_name = (
            mlflow.set_experiment(cfg.experiment).experiment_id,
            f"train-{datetime.now(UTC):%Y%m%d-%H%M%S}",
        )
    with mlflow.start_run(run_id=run.launched_run_id, run_name=run_name) as active:
        _log_inputs(ev, profiles, settings, input_dir, generator, scheduler)
        quality = _log_evaluation(ev)
        version = _register(ev, cfg.model_name)
        champ, champ_version = champion_metrics(client, cfg, ev.test, settings.training.capacity_share)
        decision = decide(ev.metrics, champ, ev.worst_gap, ev.worst_gap_where, settings.fairness.max_group_recall_gap)
        card = model_card(
            name=f"{cfg.model_name} v{version}",
            run_id=active.info.run_id,
            scorer=ev.scorer,
            metrics=ev.metrics,
            groups=ev.groups,
            worst_gap=ev.worst_gap,
            worst_gap_where=ev.worst_gap_where,
            data=_card_data(ev, profiles, input_dir, generator),
            capacity_share=settings.training.capacity_share,
            next_metrics=ev.next_metrics,
            proxies=ev.proxies,
        )
        mlflow.log_text(card, "model_card.md")
        mlflow.log_dict(
            {"alias": decision.alias, "reasons": list(decision.reasons), "champion_compared": champ_version},
            "promotion_decision.json",
        )
        record_decision(
            client,
            cfg,
            version,
            decision.alias,
            "; ".join(decision.reasons),
            forced=False,
            user=run.user,
            run_id=active.info.run_id,
        )
    return TrainOutcome(active.info.run_id, version, decision, experiment_id, run.tracking_uri, quality)
