"""The MLflow registry: the tracking store, model versions, aliases and the promotion log.

Where it sits: the I/O side of the gate (:mod:`nonrecours.training.gate`). The registry keeps no
alias history (mlflow#2169), so every decision is also written as tags on the model version and
appended to a JSON-lines log. The one champion lookup (:func:`find_alias`) serves training, the
application layer and the service.
"""

from __future__ import annotations

import fcntl
import functools
import json
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from nonrecours.core.config import RegistryConfig
from nonrecours.training.evaluate import METHODS
from nonrecours.training.gate import CHAMPION
from nonrecours.training.metrics import evaluate_slices
from nonrecours.training.model import Scorer

SAFE_FLAVOUR, SAFE_MODEL_CLASS, SAFE_MODEL_SUFFIX = "lightgbm", "lightgbm.basic.Booster", ".lgb"
"""The one model format :func:`load_scorer` accepts: LightGBM's own text, no pickle."""
NO_PICKLE = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"

OUTREACH_ARTIFACTS = "models"
"""The artifact folder of a ``train --labels observed`` run that holds its models."""


def prepare_tracking_store(uri: str) -> str:
    """``uri``, with a SQLite store's tables created first (see :func:`prepare_sqlite_store`)."""
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


def find_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``name@alias`` points to, or None when there is none."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


class UnsafeModel(ValueError):
    """A registered model this code refuses to load: anything but a LightGBM Booster saved as text."""


def check_model_spec(spec: dict, model_uri: str) -> str:
    """The data file of an ``MLmodel`` spec that names the native LightGBM flavour of a
    ``Booster`` (a text file LightGBM parses itself); :class:`UnsafeModel` for anything else,
    whatever the other flavours say. Pure."""
    flavour = (spec.get("flavors") or {}).get(SAFE_FLAVOUR)
    if not isinstance(flavour, dict) or flavour.get("model_class") != SAFE_MODEL_CLASS:
        found = flavour.get("model_class") if isinstance(flavour, dict) else sorted(spec.get("flavors") or {})
        raise UnsafeModel(f"{model_uri}: refused, its MLmodel names {found!r}; only the {SAFE_FLAVOUR} flavour with model_class {SAFE_MODEL_CLASS} is loaded (never a pickle)")
    data = str(flavour.get("data", ""))
    if not data or Path(data).name != data or Path(data).suffix != SAFE_MODEL_SUFFIX:
        raise UnsafeModel(f"{model_uri}: refused, its model file {data!r} is not a {SAFE_MODEL_SUFFIX} file beside the MLmodel")
    return data


def load_scorer(model_uri: str) -> Scorer:
    """A registered model back as a :class:`Scorer` (native LightGBM Booster plus our metadata).

    No MLflow loader runs: whoever can write to the registry or its artifact store could make one
    unpickle, or import, code of their choosing. The artifacts are downloaded, the ``MLmodel``
    file is read with YAML's safe loader and checked (:func:`check_model_spec`), and the
    Booster's text is parsed by LightGBM. (The application layer also switches MLflow's pickle
    deserialization off in every process that loads a model: ``NO_PICKLE``.)"""
    import tempfile

    import lightgbm as lgb
    import yaml

    with tempfile.TemporaryDirectory(prefix="nonrecours-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        spec = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8")) or {}
        data = check_model_spec(spec, model_uri)
        booster = lgb.Booster(model_file=str(local / data))
    return Scorer.from_booster(booster, spec.get("metadata") or {})


def record_decision(client: MlflowClient, cfg: RegistryConfig, version: str, alias: str, reason: str, *, forced: bool, user: str, run_id: str | None = None,
                    name: str | None = None) -> dict:
    """Set the alias, tag the version, append to the promotion log. Returns the log entry.
    ``name``: the registered model (default: ``cfg.model_name``)."""
    name = name or cfg.model_name
    previous = find_alias(client, name, CHAMPION) if alias == CHAMPION else None
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": name,
        "version": str(version),
        "alias": alias,
        "forced": forced,
        "reason": reason,
        "run_id": run_id,
        "user": user,
        "previous_champion": None if previous is None else str(previous.version),
    }
    client.set_registered_model_alias(name, alias, str(version))
    for key in ("alias", "forced", "reason", "time", "previous_champion"):
        client.set_model_version_tag(name, str(version), f"promotion.{key}", str(entry[key]))
    log = promotion_log_path(cfg, client.tracking_uri)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:  # append-only: one JSON object per line
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return entry


def register_outreach_models(client: MlflowClient, cfg: RegistryConfig, run, *, alias: str, reason: str, user: str) -> tuple[str, dict]:
    """Register the need and uplift models a ``train --labels observed`` run logged (its
    ``models/`` artifacts: plain LightGBM text, no MLflow flavour) as a new version of
    ``cfg.outreach_model_name``, and record the gate's decision. Returns the version and the
    promotion-log entry."""
    name = cfg.outreach_model_name
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name, description="Need and uplift models learnt from campaign outcomes (`nonrecours train --labels observed`).")
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/{OUTREACH_ARTIFACTS}", run_id=run.info.run_id).version
    return str(version), record_decision(client, cfg, str(version), alias, reason, forced=False, user=user, run_id=run.info.run_id, name=name)


def champion_metrics(client: MlflowClient, cfg: RegistryConfig, test: pd.DataFrame, capacity_share: float) -> tuple[pd.DataFrame | None, str | None]:
    """The current champion re-scored on this run's test set (None when there is no champion)."""
    version = find_alias(client, cfg.model_name, CHAMPION)
    if version is None:
        return None, None
    scorer = load_scorer(f"models:/{cfg.model_name}/{version.version}")
    rescored = test.assign(p_model=scorer.predict(test))
    rescored["value_model"] = rescored["p_model"] * scorer.estimated_amount(rescored)
    return evaluate_slices(rescored, {"model": METHODS["model"]}, capacity_share), str(version.version)


def force_promotion(client: MlflowClient, cfg: RegistryConfig, version: str, reason: str, *, user: str) -> dict:
    """``nonrecours promote``: make ``version`` the champion whatever the gate said, on record."""
    if not reason.strip():
        raise ValueError("a forced promotion needs a reason (--reason), for the record")
    mv = client.get_model_version(cfg.model_name, str(version))
    return record_decision(client, cfg, str(version), CHAMPION, reason, forced=True, user=user, run_id=mv.run_id)
