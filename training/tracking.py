"""MLflow: one run per training, the model in the registry, and the promotion gate.

Where it sits: the I/O side of ``nonrecours train`` and ``nonrecours promote``. The gate's decision
itself is the pure function :func:`decide`; the registry keeps no alias history (mlflow#2169), so
every decision is also written as tags on the model version and appended to a JSON-lines log.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from nonrecours.config import RegistryConfig, Settings
from training import plots
from training.card import model_card, quality_table
from training.evaluate import METHODS, Evaluation, metric
from training.metrics import evaluate_slices
from training.model import Scorer, model_frame

CHAMPION, CHALLENGER = "champion", "challenger"


def resolve_tracking_uri(option: str | None, cfg: RegistryConfig) -> str:
    """The option, else ``MLFLOW_TRACKING_URI``, else the configured default (SQLite); a SQLite
    store's tables are created before the URI is returned (see :func:`prepare_sqlite_store`)."""
    uri = option or os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri
    if uri.startswith("sqlite:///"):
        prepare_sqlite_store(uri)
    return uri


@functools.cache
def prepare_sqlite_store(uri: str) -> None:
    """Create or upgrade a SQLite store's tables in one process at a time.

    MLflow creates a new store's tables in whichever process opens it first, with no lock
    (its tracking and registry stores, unlike its jobs store). Two processes opening the same new
    file at once — the service's workers, a training run started beside a waiting service —
    break each other's migration (``AttributeError: dimension_attributes``). Here the first
    process creates the tables under a file lock beside the database; the others wait, then
    find them. Once per process and URI.
    """
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / f".{db.name}.init-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def promotion_log_path(cfg: RegistryConfig, tracking_uri: str) -> Path:
    """Where promotion decisions are appended: the configured file, else beside the SQLite store."""
    if cfg.promotion_log:
        return Path(cfg.promotion_log)
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "promotions.jsonl"
    return Path("promotions.jsonl")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class Decision:
    alias: str
    reasons: tuple[str, ...]

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION


def decide(new: pd.DataFrame, champion: pd.DataFrame | None, worst_gap: float, worst_gap_where: str, cfg: RegistryConfig) -> Decision:
    """Champion only if the new model beats the rules baseline (AUC and euros at k, candidates,
    overall), does at least as well as the current champion on the same test set, and its worst
    group recall gap is within the bound. Every failed condition is a reason."""
    reasons = []
    for name in ("roc_auc", "euros_at_k"):
        mine, rules = metric(new, "model", name), metric(new, "rules", name)
        if not mine > rules:
            reasons.append(f"{name} {mine:.4f} does not beat the rules baseline's {rules:.4f}")
        if champion is not None:
            theirs = metric(champion, "model", name)
            if mine < theirs:
                reasons.append(f"{name} {mine:.4f} is below the current champion's {theirs:.4f} on the same test set")
    if worst_gap > cfg.max_group_recall_gap:
        reasons.append(f"group recall gap {worst_gap:.3f} ({worst_gap_where}) exceeds the bound {cfg.max_group_recall_gap:.3f}")
    if reasons:
        return Decision(CHALLENGER, tuple(reasons))
    against = "the rules baseline and the current champion" if champion is not None else "the rules baseline (no champion yet)"
    return Decision(CHAMPION, (f"beats {against}; worst group recall gap {worst_gap:.3f} within {cfg.max_group_recall_gap:.3f}",))


def record_decision(client: MlflowClient, cfg: RegistryConfig, version: str, alias: str, reason: str, *, forced: bool, run_id: str | None = None) -> dict:
    """Set the alias, tag the version, append to the promotion log. Returns the log entry."""
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": cfg.model_name,
        "version": str(version),
        "alias": alias,
        "forced": forced,
        "reason": reason,
        "run_id": run_id,
        "user": os.environ.get("USER", "unknown"),
    }
    previous = None
    if alias == CHAMPION:
        try:
            previous = str(client.get_model_version_by_alias(cfg.model_name, CHAMPION).version)
        except mlflow.exceptions.MlflowException:
            previous = None
    entry["previous_champion"] = previous
    client.set_registered_model_alias(cfg.model_name, alias, str(version))
    for key in ("alias", "forced", "reason", "time", "previous_champion"):
        client.set_model_version_tag(cfg.model_name, str(version), f"promotion.{key}", str(entry[key]))
    log = promotion_log_path(cfg, client.tracking_uri)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:  # append-only: one JSON object per line
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return entry


def load_scorer(model_uri: str) -> Scorer:
    """A registered model back as a :class:`Scorer` (native LightGBM flavour plus our metadata)."""
    booster = mlflow.lightgbm.load_model(model_uri)
    info = mlflow.models.get_model_info(model_uri)
    return Scorer.from_booster(booster, info.metadata or {})


def champion_metrics(client: MlflowClient, cfg: RegistryConfig, test: pd.DataFrame, capacity_share: float) -> tuple[pd.DataFrame | None, str | None]:
    """The current champion re-scored on this run's test set (None when there is no champion)."""
    try:
        version = client.get_model_version_by_alias(cfg.model_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None, None
    scorer = load_scorer(f"models:/{cfg.model_name}@{CHAMPION}")
    rescored = test.assign(p_model=scorer.predict(test))
    rescored["value_model"] = rescored["p_model"] * scorer.estimated_amount(rescored)
    return evaluate_slices(rescored, {"model": METHODS["model"]}, capacity_share), str(version.version)


def metric_name(population: str, benefit: str, method: str, name: str) -> str:
    """How a training run names a figure: ``all.overall.model.roc_auc``."""
    return f"{population}.{benefit}.{method}.{name}"


def _flat_metrics(metrics: pd.DataFrame) -> dict[str, float]:
    out = {}
    for row in metrics.to_dict("records"):
        for name in ("roc_auc", "pr_auc", "brier", "ece", "precision_at_k", "recall_at_k", "euros_at_k", "euros_share_at_k", "positives"):
            value = row[name]
            if pd.notna(value):
                out[metric_name(row["population"], row["benefit"], row["method"], name)] = float(value)
    return out


def held_out_metrics(run_metrics: dict[str, float]) -> dict[str, float]:
    """The model's figures on its own held-out test set (every household and benefit), as its
    training run logged them: ``{"roc_auc": ..., "recall_at_k": ...}``."""
    prefix = metric_name("all", "overall", "model", "")
    return {k.removeprefix(prefix): v for k, v in run_metrics.items() if k.startswith(prefix)}


@dataclass
class TrainOutcome:
    run_id: str
    version: str
    decision: Decision
    experiment_id: str
    tracking_uri: str
    quality: pd.DataFrame


def log_training(
    ev: Evaluation,
    *,
    profiles: pd.DataFrame,
    settings: Settings,
    tracking_uri: str,
    input_dir: Path,
    generator: dict | None,
    scheduler: str | None,
) -> TrainOutcome:
    cfg = settings.registry
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched:
        # Under `mlflow run`, the run exists already, in the experiment `mlflow run` chose.
        experiment_id = client.get_run(launched).info.experiment_id
        run_name = None
    else:
        experiment_id = mlflow.set_experiment(cfg.experiment).experiment_id
        run_name = f"train-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags({"mlflow.source.git.commit": git_commit(), "trainer": "lightgbm.dask" if scheduler else "lightgbm"})
        mlflow.log_params({f"training.{k}": v for k, v in settings.training.model_dump().items()})
        mlflow.log_params({"law.reference_month": settings.law.reference_month, "best_iteration": ev.scorer.best_iteration, "n_features": len(ev.scorer.feature_names)})
        if generator:
            mlflow.log_params({"generator.seed": generator.get("seed"), "generator.households": generator.get("households")})
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
                mlflow.log_input(mlflow.data.from_pandas(frame, source=source, name=name), context=context)

        mlflow.log_metrics(_flat_metrics(ev.metrics))
        ceiling_euros = metric(ev.metrics, "ceiling", "euros_at_k")
        mlflow.log_metrics(
            {
                "candidates.overall.model_share_of_ceiling_euros": metric(ev.metrics, "model", "euros_at_k") / ceiling_euros if ceiling_euros else float("nan"),
                "fairness.worst_group_recall_gap": ev.worst_gap,
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            ev.metrics.to_csv(d / "metrics.csv", index=False)
            ev.groups.to_csv(d / "group_recall.csv", index=False)
            quality = quality_table(ev.metrics)
            quality.to_csv(d / "quality_vs_baselines.csv", index=False)
            for name, fig in (("roc", plots.roc_figure(ev.test)), ("precision_recall", plots.pr_figure(ev.test)), ("calibration", plots.calibration_figure(ev.test))):
                fig.savefig(d / f"{name}.png", dpi=90)
            gain = pd.Series(ev.scorer.booster.feature_importance("gain"), index=ev.scorer.feature_names)
            gain.sort_values(ascending=False).to_csv(d / "feature_importance.csv", header=["gain"])
            plots.importance_figure(gain, "LightGBM feature importance (gain)").savefig(d / "feature_importance.png", dpi=90)
            sample = ev.test.sample(min(len(ev.test), 4000), random_state=0)
            contrib = ev.scorer.contributions(sample)
            contrib.abs().mean().drop("bias").sort_values(ascending=False).to_csv(d / "shap_mean_abs.csv", header=["mean_abs_contribution"])
            plots.shap_summary_figure(contrib, model_frame(sample)).savefig(d / "shap_summary.png", dpi=90)
            mlflow.log_artifacts(str(d), artifact_path="evaluation")

        X = model_frame(ev.test.head(200))
        # Native LightGBM flavour: the pyfunc path rejects pandas categories (mlflow#12910),
        # so the serving-input check through pyfunc is skipped; load with load_scorer().
        info = mlflow.lightgbm.log_model(
            ev.scorer.booster,
            name="model",
            signature=infer_signature(X, ev.scorer.predict(ev.test.head(200))),
            input_example=X.head(5),
            registered_model_name=cfg.model_name,
            metadata=ev.scorer.metadata(),
            # Given, not inferred: inference predicts through pyfunc, which fails the same way.
            pip_requirements=[f"lightgbm=={lgb.__version__}", f"pandas=={pd.__version__}", f"numpy=={np.__version__}"],
            validate_serving_input=False,
        )
        version = str(info.registered_model_version)
        champ, champ_version = champion_metrics(client, cfg, ev.test, settings.training.capacity_share)
        decision = decide(ev.metrics, champ, ev.worst_gap, ev.worst_gap_where, cfg)
        card = model_card(
            name=f"{cfg.model_name} v{version}",
            run_id=run.info.run_id,
            scorer=ev.scorer,
            metrics=ev.metrics,
            groups=ev.groups,
            worst_gap=ev.worst_gap,
            worst_gap_where=ev.worst_gap_where,
            data={
                "input": str(input_dir),
                "rows": len(profiles),
                "households": profiles["household_id"].nunique(),
                "n_train": ev.n_train,
                "n_valid": ev.n_valid,
                "n_test": len(ev.test),
                "population": "synthetic, seed {seed}, {households} households".format(**generator) if generator else "an agency extract",
            },
            capacity_share=settings.training.capacity_share,
        )
        mlflow.log_text(card, "model_card.md")
        mlflow.log_dict({"alias": decision.alias, "reasons": list(decision.reasons), "champion_compared": champ_version}, "promotion_decision.json")
        record_decision(client, cfg, version, decision.alias, "; ".join(decision.reasons), forced=False, run_id=run.info.run_id)
    return TrainOutcome(run.info.run_id, version, decision, experiment_id, tracking_uri, quality)


def force_promotion(client: MlflowClient, cfg: RegistryConfig, version: str, reason: str) -> dict:
    """``nonrecours promote``: make ``version`` the champion whatever the gate said, on record."""
    if not reason.strip():
        raise ValueError("a forced promotion needs a reason (--reason), for the record")
    mv = client.get_model_version(cfg.model_name, str(version))
    return record_decision(client, cfg, str(version), CHAMPION, reason, forced=True, run_id=mv.run_id)

