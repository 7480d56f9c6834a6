"""The MLflow registry: the tracking store, model versions, aliases and the promotion log.

Where it sits: the I/O side of the gate (:mod:`nonrecours.training.gate`). The registry keeps no
alias history (mlflow#2169), so every decision is also written as tags on the model version and
appended to a JSON-lines log. Every registry lookup is here: the champion (:func:`load_champion`,
for training's gate, the command line, the service and the monitoring), the outreach models'
champion (:func:`outreach_champion`) and a run's outreach models (:func:`load_observed`).
"""

from __future__ import annotations

import fcntl
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from nonrecours.core.config import RegistryConfig, without_password
from nonrecours.core.errors import NotFound, UserError
from nonrecours.training.evaluate import METHODS
from nonrecours.training.gate import CHAMPION
from nonrecours.training.metrics import evaluate_slices
from nonrecours.training.model import Scorer
from nonrecours.training.observed import ObservedModels

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


def mlflow_limits(cfg: RegistryConfig) -> dict[str, str]:
    """MLflow's environment for a process that loads models: no unpickling, and the registry
    section's timeout and retries on every call to a tracking server or artifact store (the
    application layer sets it in its process and in the service's)."""
    timeout = str(cfg.request_timeout_seconds)
    return {
        NO_PICKLE: "false",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": timeout,
        "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": timeout,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(cfg.request_max_retries),
    }


@dataclass(frozen=True)
class Champion:
    """The registered version an alias points to, loaded."""

    name: str
    version: str
    run_id: str
    scorer: Scorer


def load_champion(
    cfg: RegistryConfig, uri: str, *, alias: str = CHAMPION, unless_version: str | None = None
) -> Champion | None:
    """The model ``cfg.model_name@alias`` of the registry at ``uri``, loaded; None when the alias
    still points to ``unless_version`` (nothing new to load); :class:`NotFound` when it points to
    no version."""
    mlflow.set_tracking_uri(uri)
    version = find_alias(MlflowClient(tracking_uri=uri), cfg.model_name, alias)
    if version is None:
        raise NotFound(
            f"no model {cfg.model_name}@{alias} in the registry at {without_password(uri)}: "
            "train one with `nonrecours train` (or promote a version)"
        )
    if unless_version is not None and str(version.version) == unless_version:
        return None
    scorer = load_scorer(f"models:/{cfg.model_name}/{version.version}")
    return Champion(cfg.model_name, str(version.version), str(version.run_id), scorer)


def outreach_champion(cfg: RegistryConfig, uri: str) -> tuple[str, str] | None:
    """The run and registered version of the outreach models' @champion (None when there is none)."""
    client = MlflowClient(tracking_uri=prepare_tracking_store(uri), registry_uri=uri)
    version = find_alias(client, cfg.outreach_model_name, CHAMPION)
    return None if version is None else (str(version.run_id), str(version.version))


def load_observed(run_id: str, uri: str) -> ObservedModels:
    """The need and uplift models a ``train --labels observed`` run logged."""
    mlflow.set_tracking_uri(uri)
    try:
        texts = {
            name: mlflow.artifacts.load_text(f"runs:/{run_id}/{OUTREACH_ARTIFACTS}/{name}.txt")
            for name in ObservedModels.PARTS
        }
    except mlflow.exceptions.MlflowException as exc:
        raise UserError(
            f"--model-run {run_id}: {str(exc).splitlines()[0]} (give the run id `train --labels observed` printed)"
        ) from None
    return ObservedModels.from_strings(texts)


def observed_models_for(cfg: RegistryConfig, uri: str, model_run: str | None) -> tuple[ObservedModels, str]:
    """The need and uplift models to rank by, with the version the decision log records: those of
    run ``model_run``, else the outreach models' @champion."""
    if model_run is not None:
        return load_observed(model_run, uri), str(model_run)
    found = outreach_champion(cfg, uri)
    if found is None:
        raise NotFound(
            f"no {cfg.outreach_model_name}@champion in the registry: run "
            "`nonrecours train --labels observed --campaign ID` (the gate promotes it), or give --model-run RUN"
        )
    return load_observed(found[0], uri), found[1]


class UnsafeModel(ValueError):
    """A registered model this code refuses to load: anything but a LightGBM Booster saved as text."""


def check_model_spec(spec: dict, model_uri: str) -> str:
    """The data file of an ``MLmodel`` spec that names the native LightGBM flavour of a
    ``Booster`` (a text file LightGBM parses itself); :class:`UnsafeModel` for anything else,
    whatever the other flavours say. Pure."""
    flavour = (spec.get("flavors") or {}).get(SAFE_FLAVOUR)
    if not isinstance(flavour, dict) or flavour.get("model_class") != SAFE_MODEL_CLASS:
        found = flavour.get("model_class") if isinstance(flavour, dict) else sorted(spec.get("flavors") or {})
        raise UnsafeModel(
            f"{model_uri}: refused, its MLmodel names {found!r}; only the {SAFE_FLAVOUR} flavour with "
            f"model_class {SAFE_MODEL_CLASS} is loaded (never a pickle)"
        )
    data = str(flavour.get("data", ""))
    if not data or Path(data).name != data or Path(data).suffix != SAFE_MODEL_SUFFIX:
        raise UnsafeModel(
            f"{model_uri}: refused, its model file {data!r} is not a {SAFE_MODEL_SUFFIX} file beside the MLmodel"
        )
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


def record_decision(
    client: MlflowClient,
    cfg: RegistryConfig,
    version: str,
    alias: str,
    reason: str,
    *,
    forced: bool,
    user: str,
    run_id: str | None = None,
    name: str | None = None,
) -> dict:
    """Set the alias, tag the version, append to the promotion log. Returns the log entry.
    ``name``: the registered model (default: ``cfg.model_name``)."""
    name = name or cfg.model_name
    previous = find_alias(client, name, CHAMPION) if alias == CHAMPION else None
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
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


def register_outreach_models(
    client: MlflowClient, cfg: RegistryConfig, run, *, alias: str, reason: str, user: str
) -> tuple[str, dict]:
    """Register the need and uplift models a ``train --labels observed`` run logged (its
    ``models/`` artifacts: plain LightGBM text, no MLflow flavour) as a new version of
    ``cfg.outreach_model_name``, and record the gate's decision. Returns the version and the
    promotion-log entry."""
    name = cfg.outreach_model_name
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(
            name,
            description="Need and uplift models learnt from campaign outcomes (`nonrecours train --labels observed`).",
        )
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/{OUTREACH_ARTIFACTS}", run_id=run.info.run_id
    ).version
    return str(version), record_decision(
        client, cfg, str(version), alias, reason, forced=False, user=user, run_id=run.info.run_id, name=name
    )


def champion_metrics(
    client: MlflowClient, cfg: RegistryConfig, test: pd.DataFrame, capacity_share: float
) -> tuple[pd.DataFrame | None, str | None]:
    """The current champion re-scored on this run's test set (None when there is no champion)."""
    try:
        champion = load_champion(cfg, client.tracking_uri)
    except NotFound:
        return None, None
    assert champion is not None  # no unless_version was given
    rescored = test.assign(p_model=champion.scorer.predict(test))
    rescored["value_model"] = rescored["p_model"] * champion.scorer.estimated_amount(rescored)
    return evaluate_slices(rescored, {"model": METHODS["model"]}, capacity_share), champion.version


def promote(cfg: RegistryConfig, uri: str, version: str, reason: str, *, user: str) -> tuple[dict, Path]:
    """``nonrecours promote``: :func:`force_promotion`, a refusal said as a :class:`UserError`;
    returns the log entry and where it was appended."""
    try:
        entry = force_promotion(MlflowClient(tracking_uri=uri), cfg, version, reason, user=user)
    except (ValueError, mlflow.exceptions.MlflowException) as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    return entry, promotion_log_path(cfg, uri)


def force_promotion(client: MlflowClient, cfg: RegistryConfig, version: str, reason: str, *, user: str) -> dict:
    """``nonrecours promote``: make ``version`` the champion whatever the gate said, on record."""
    if not reason.strip():
        raise ValueError("a forced promotion needs a reason (--reason), for the record")
    mv = client.get_model_version(cfg.model_name, str(version))
    return record_decision(client, cfg, str(version), CHAMPION, reason, forced=True, user=user, run_id=mv.run_id)
