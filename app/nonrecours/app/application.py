"""The application: what each command does, over the layers below, with the command line's
parsing and printing left to :mod:`nonrecours.app.cli`.

Where it sits: on top of every layer (with the CLI and the service). It resolves where things
are (tracking store, decision log, secrets) from options, settings and the environment, in that
order; reads and writes the folders; and calls the pure stages. A problem the user can fix
raises :class:`AppError` with what to do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd

from nonrecours.app.environment import Environment
from nonrecours.core.config import Settings, without_password
from nonrecours.core.io import PRIVATE, atomic_path, read_table, write_table, write_text
from nonrecours.core.schema import (
    ENTITLEMENTS,
    HOUSEHOLDS,
    INDIVIDUALS,
    OUTCOMES,
    PROFILES,
    SchemaError,
    Table,
)
from nonrecours.training.model import Scorer
from nonrecours.training.registry import find_alias, load_scorer, prepare_tracking_store


class AppError(Exception):
    """A problem the user can fix; the message says what to do."""


# --- where things are ---------------------------------------------------------------------------


def tracking_uri(option: str | None, settings: Settings, env: Environment) -> str:
    """The tracking store: the option, else ``MLFLOW_TRACKING_URI``, else the settings' (SQLite)."""
    return prepare_tracking_store(option or env.tracking_uri or settings.registry.tracking_uri)


def decision_log_url(option: str | None, settings: Settings, env: Environment) -> str:
    """The decision log: the option, else ``NONRECOURS_DECISION_LOG_URL``, else the settings'."""
    return option or env.decision_log_url or settings.serving.decision_log_url


def read_secrets(path: Path | None, env: Environment) -> dict[str, str]:
    """The secrets file's values with the environment's on top."""
    from nonrecours.serving.secrets import resolve

    try:
        return resolve(path, env.values)
    except ValueError as exc:
        raise AppError(str(exc)) from None


@dataclass(frozen=True)
class Champion:
    """The registered version an alias points to, loaded."""

    name: str
    version: str
    run_id: str
    scorer: Scorer


def mlflow_limits(settings: Settings) -> dict[str, str]:
    """MLflow's environment for a process that loads models: no unpickling, and the registry
    section's timeout and retries on every call to a tracking server or artifact store."""
    from nonrecours.training.registry import NO_PICKLE

    timeout = str(settings.registry.request_timeout_seconds)
    return {NO_PICKLE: "false", "MLFLOW_HTTP_REQUEST_TIMEOUT": timeout, "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": timeout,
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.registry.request_max_retries)}


def load_champion(settings: Settings, uri: str, *, unless_version: str | None = None) -> Champion | None:
    """The model ``registry.model_name@serving.model_alias``, loaded from the registry at ``uri``;
    None when the alias still points to ``unless_version`` (nothing new to load). MLflow's calls
    here run under :func:`mlflow_limits`."""
    import os

    os.environ.update(mlflow_limits(settings))  # NO_PICKLE: belt and braces, load_scorer runs no MLflow loader anyway
    name, alias = settings.registry.model_name, settings.serving.model_alias
    mlflow.set_tracking_uri(uri)
    version = find_alias(mlflow.MlflowClient(tracking_uri=uri), name, alias)
    if version is None:
        raise AppError(f"no model {name}@{alias} in the registry at {without_password(uri)}: train one with `nonrecours train` (or promote a version)")
    if unless_version is not None and str(version.version) == unless_version:
        return None
    return Champion(name, str(version.version), version.run_id, load_scorer(f"models:/{name}/{version.version}"))


def open_decision_log(url: str, secrets_path: Path | None, env: Environment, *, timeout_seconds: float | None = None):
    """The decision log at ``url``, pseudonymising with the key from the secrets (and matching
    under the retired ones)."""
    from nonrecours.serving.decision_log import DEFAULT_TIMEOUT_SECONDS, DecisionLog, connect
    from nonrecours.serving.secrets import pseudonym_key, retired_keys

    try:
        values = read_secrets(secrets_path, env)
        return DecisionLog(connect(url, timeout_seconds=timeout_seconds or DEFAULT_TIMEOUT_SECONDS), pseudonym_key(values), retired_keys(values))
    except ValueError as exc:
        raise AppError(str(exc)) from None


def on_log_tables(operation: Callable, url: str, *args, **kwargs):
    """``operation(engine, *args, **kwargs)`` on the decision log at ``url``, for work on the log's
    tables that needs no pseudonymisation key (``purge``, ``grant_roles``); a refused URL or a
    database error is an :class:`AppError` naming the log."""
    from sqlalchemy.exc import SQLAlchemyError

    from nonrecours.serving.decision_log import connect

    try:
        engine = connect(url)
        try:
            return operation(engine, *args, **kwargs)
        finally:
            engine.dispose()
    except (ValueError, SQLAlchemyError) as exc:
        raise AppError(f"decision log {without_password(url)!r}: {operation.__name__} failed ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def read_tables(folder: Path, *tables: Table, hint: str = "") -> list[pd.DataFrame]:
    """The tables of ``folder``, validated; a missing or invalid one is an :class:`AppError`."""
    try:
        return [read_table(folder, t) for t in tables]
    except FileNotFoundError as exc:
        raise AppError(f"{exc}{hint}") from None
    except SchemaError as exc:
        raise AppError(str(exc)) from None


def write_json(obj: dict, path: Path) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=str))


# --- stages -------------------------------------------------------------------------------------


def make_population(settings: Settings, out: Path, *, scheduler: str | None, quiet: bool):
    """Draw the synthetic population of ``scenario`` and write its tables and calibration report."""
    from nonrecours.data.calibration import load_calibration
    from nonrecours.data.generate import generate

    pop = generate(settings.scenario.households, settings.scenario.seed, settings, load_calibration(), scheduler=scheduler, quiet=quiet)
    paths = []
    for i, quarter in enumerate(pop.quarters):
        folder = quarter_folder(out, i)
        folder.mkdir(parents=True, exist_ok=True)
        paths += [write_table(quarter.individuals, folder, INDIVIDUALS), write_table(quarter.households, folder, HOUSEHOLDS), write_table(quarter.outcomes, folder, OUTCOMES)]
        month = settings.law.model_copy(update={"reference_month": quarter.reference_month})
        paths.append(write_json({**quarter.summary, "settings": settings.model_copy(update={"law": month}).model_dump()}, folder / "calibration.json"))
    return pop, paths


NEXT_QUARTER = "next_quarter"
"""A synthetic population's later quarters sit inside the first one's folder: OUT, OUT/next_quarter,
OUT/next_quarter/next_quarter... Each is a complete raw folder."""


def quarter_folder(out: Path, index: int) -> Path:
    """The folder of quarter ``index`` (0: the current one) of a population written to ``out``."""
    for _ in range(index):
        out = out / NEXT_QUARTER
    return out


def population_month(folder: Path) -> str | None:
    """The month a synthetic population in ``folder`` was generated for, if it is one."""
    report = folder / "calibration.json"
    return json.loads(report.read_text())["settings"]["law"]["reference_month"] if report.exists() else None


def with_population_month(settings: Settings, folder: Path) -> Settings:
    """A synthetic population's truth was computed for one month: use it unless the month was set
    (by an option or the settings file)."""
    month = population_month(folder)
    if month is None or "reference_month" in settings.law.model_fields_set:
        return settings
    return settings.model_copy(update={"law": settings.law.model_copy(update={"reference_month": month})})


def compute_entitlements(folder: Path, out: Path, settings: Settings, *, scheduler: str | None, quiet: bool) -> tuple[Path, pd.DataFrame | None]:
    """OpenFisca-France on the observed tables; with the truth at hand, its agreement with it."""
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.law.situation import entitlements_from_observed
    from nonrecours.training.evaluate import compare_with_truth

    individuals, households = read_tables(folder, INDIVIDUALS, HOUSEHOLDS)
    orphans = ~individuals["household_id"].isin(households["household_id"])
    if orphans.any():
        row = individuals[orphans].iloc[0]
        raise AppError(f"{folder / 'individuals.parquet'}: household_id {row['household_id']} (person_id {row['person_id']}) is not in households.parquet")
    result = entitlements_from_observed(individuals, households, law=settings.law, css=load_law_parameters().css, scheduler=scheduler, quiet=quiet)
    path = write_table(result, out, ENTITLEMENTS)
    check = compare_with_truth(result, read_table(folder, OUTCOMES)) if (folder / "outcomes.parquet").exists() else None
    return path, check


def build_features(folder: Path, out: Path) -> Path:
    """Profiles from the observed tables and the entitlements."""
    from nonrecours.features.profiles import build_profiles

    tables = read_tables(folder, INDIVIDUALS, HOUSEHOLDS, ENTITLEMENTS, hint=f" (run `nonrecours entitlements --input {folder}` first)")
    return write_table(build_profiles(*tables), out, PROFILES)


def training_data(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profiles and the outcomes (labels) in ``folder``."""
    (profiles,) = read_tables(folder, PROFILES, hint=f" (run `nonrecours features --input {folder}` first)")
    (outcomes,) = read_tables(folder, OUTCOMES, hint=" (training needs the truth: a synthetic population or an agency's known outcomes)")
    return profiles, outcomes


def quarter_folders(out: Path) -> list[Path]:
    """The quarters of a population written to ``out`` that exist on disk, the current one first."""
    folders = [out]
    while (folders[-1] / NEXT_QUARTER / "households.parquet").exists():
        folders.append(folders[-1] / NEXT_QUARTER)
    return folders


def next_quarter_data(folder: Path, option: Path | None) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The next quarter's profiles and outcomes: from ``option``, else ``folder/next_quarter`` if
    it holds profiles (None if not: the model is then tested on one quarter only)."""
    later = option or folder / NEXT_QUARTER
    if option is None and not (later / "profiles.parquet").exists():
        return None
    return training_data(later)


def train_model(folder: Path, profiles: pd.DataFrame, outcomes: pd.DataFrame, settings: Settings, uri: str, env: Environment, *, scheduler: str | None,
                next_quarter: tuple[pd.DataFrame, pd.DataFrame] | None = None):
    """Train, evaluate (on the next quarter too, when given), log, register and gate."""
    from nonrecours.training.evaluate import train_and_evaluate
    from nonrecours.training.tracking import TrainingRun, log_training

    try:
        ev = train_and_evaluate(profiles, outcomes, settings.training, min_group_positives=settings.fairness.min_group_positives, scheduler=scheduler,
                                next_quarter=next_quarter, bootstrap=settings.fairness.bootstrap_samples)
    except ValueError as exc:
        raise AppError(str(exc)) from None
    generator = json.loads((folder / "calibration.json").read_text()) if (folder / "calibration.json").exists() else None
    run = TrainingRun(tracking_uri=uri, launched_run_id=env.run_id, user=env.user)
    return log_training(ev, profiles=profiles, settings=settings, run=run, input_dir=folder, generator=generator, scheduler=scheduler)


def promote(version: str, reason: str, settings: Settings, uri: str, env: Environment) -> tuple[dict, Path]:
    """Force ``version`` to champion, on record; returns the log entry and where it was appended."""
    from nonrecours.training.registry import force_promotion, promotion_log_path

    try:
        entry = force_promotion(mlflow.MlflowClient(tracking_uri=uri), settings.registry, version, reason, user=env.user)
    except (ValueError, mlflow.exceptions.MlflowException) as exc:
        raise AppError(str(exc).splitlines()[0]) from None
    return entry, promotion_log_path(settings.registry, uri)


def read_extract(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw tables of an extract: individuals and households."""
    individuals, households = read_tables(folder, INDIVIDUALS, HOUSEHOLDS)
    return individuals, households


def score(individuals: pd.DataFrame, households: pd.DataFrame, champion: Champion, settings: Settings, *, n_reasons: int, scheduler: str | None = None, quiet: bool = False) -> pd.DataFrame:
    """Every household of an extract scored by ``champion``, in partitions."""
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.serving.scoring import score_extract

    return score_extract(individuals, households, champion.scorer, law=settings.law, css=load_law_parameters().css, n_reasons=n_reasons, language=settings.serving.language,
                         partition_households=settings.serving.partition_households, scheduler=scheduler, quiet=quiet)


def input_digests(individuals: pd.DataFrame, households: pd.DataFrame, log, settings: Settings) -> pd.Series:
    """Each household's input digest under ``log``'s key and this law engine (see
    :func:`nonrecours.serving.decision_log.input_digests`), stored with its decision so the API
    can reuse the law engine's answer while the household's inputs do not change."""
    from nonrecours.law.engine import law_version
    from nonrecours.serving.decision_log import input_digests as digests

    return digests(individuals, households, key=log.key, law_version=law_version(settings.law.reference_month))


def log_batch(log, scored: pd.DataFrame, ranked, digests: pd.Series) -> str:
    """Every household a batch scored, in the decision log (source ``batch``) with the model
    ``ranked`` names and each household's input digest; says how many."""
    n = log.record_scored(scored, model_name=ranked.model_name, model_version=ranked.model_version, source="batch", digests=digests)
    return f"decision log: {n:,} households scored by {ranked.model_name} version {ranked.model_version}"


def worklist_path(out: Path) -> Path:
    if out.suffix not in (".csv", ".parquet"):
        raise AppError(f"--out {out}: the worklist must end in .csv or .parquet")
    return out


def write_worklist(table: pd.DataFrame, out: Path) -> Path:
    """The worklist, CSV or Parquet by extension, written to a temporary name then renamed,
    readable by its owner only (it holds raw household ids)."""
    with atomic_path(out, PRIVATE) as tmp:
        if out.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return out


# --- monitoring ---------------------------------------------------------------------------------


def log_window(source: str, since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None] | None:
    """The decision-log window a source names: ``log`` (--since/--until), ``log:START..END`` (ISO
    dates or times, either side may be empty), or None for a folder."""
    if source == "log":
        return since, until
    if not source.startswith("log:"):
        return None
    start, sep, end = source[4:].partition("..")
    if not sep:
        raise AppError(f"{source}: a decision-log window is written log:START..END (for example log:2026-10-01..2026-11-01; either side may be empty)")
    try:
        return (datetime.fromisoformat(start) if start else None), (datetime.fromisoformat(end) if end else None)
    except ValueError as exc:
        raise AppError(f"{source}: {exc}; dates are ISO, for example log:2026-10-01..2026-11-01T12:00") from None


def window_label(source: str, since: datetime | None, until: datetime | None) -> str:
    window = log_window(source, since, until)
    return source if window is None else f"decision log {window[0] or ''}..{window[1] or ''}"


def check_source(source: str, since: datetime | None, until: datetime | None) -> None:
    if log_window(source, since, until) is None and not Path(source).is_dir():
        raise AppError(f"{source}: not a folder of raw tables, nor `log` / `log:START..END`")


@dataclass(frozen=True)
class LogAccess:
    """How to open the decision log, for a monitoring window that reads it."""

    url: str
    secrets_path: Path | None
    env: Environment


def monitoring_window(source: str, champion: Champion, settings: Settings, *, since, until, log: LogAccess, quiet: bool) -> pd.DataFrame:
    """Scored profiles of a source: a raw-data folder (scored now by the champion; with ``target``
    when it holds outcomes.parquet) or a decision-log window, with the outcomes agents recorded."""
    from nonrecours.serving.decision_log import profiles_from_log
    from nonrecours.training.evaluate import join_labels

    window = log_window(source, since, until)
    if window is not None:
        opened = open_decision_log(log.url, log.secrets_path, log.env)
        scored = profiles_from_log(opened.read(*window), opened.read_outcomes(*window))
        if scored.empty:
            raise AppError(f"the decision log holds no decision between {window[0] or 'the start'} and {window[1] or 'now'}")
        return scored
    scored = score(*read_extract(Path(source)), champion, settings, n_reasons=0, quiet=quiet)
    return join_labels(scored, read_table(Path(source), OUTCOMES)) if (Path(source) / "outcomes.parquet").exists() else scored


def monitor(reference: str, current: str, out: Path, settings: Settings, uri: str, *, since, until, log: LogAccess, quiet: bool):
    """The report of ``current`` against ``reference``, written to ``out`` and logged to the
    champion's run; returns the report and the page, data and index paths."""
    from nonrecours.monitoring.report import build_report, write_report
    from nonrecours.training.artifacts import held_out_metrics

    for source in (reference, current):  # both checked before either is scored
        check_source(source, since, until)
    champion = load_champion(settings, uri)
    windows = [monitoring_window(s, champion, settings, since=since, until=until, log=log, quiet=quiet) for s in (reference, current)]
    client = mlflow.MlflowClient(tracking_uri=uri)
    report = build_report(*windows, cfg=settings.monitoring, fairness_cfg=settings.fairness, capacity_share=settings.training.capacity_share,
                          model=f"{champion.name} v{champion.version}", reference_name=window_label(reference, since, until),
                          current_name=window_label(current, since, until), held_out=held_out_metrics(client.get_run(champion.run_id).data.metrics))
    page, data, index = write_report(report, out, settings.serving.language)
    for path in (page, data):
        client.log_artifact(champion.run_id, str(path), artifact_path="monitoring")
    return report, page, index


def write_cards(out: Path, version: str | None, settings: Settings, uri: str) -> list[Path]:
    """Model card and public notice of each registered version (or of ``version``)."""
    import tempfile

    from nonrecours.monitoring.notice import notice

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = settings.registry.model_name
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    versions = [v for v in versions if version is None or str(v.version) == str(version)]
    if not versions:
        raise AppError(f"no registered version {version or ''} of {name} in {without_password(uri)}: train one with `nonrecours train`".replace("  ", " "))
    written = []
    for v in versions:
        with tempfile.TemporaryDirectory() as d:
            card_text = Path(client.download_artifacts(v.run_id, "model_card.md", d)).read_text()
        scorer = load_scorer(f"models:/{name}/{v.version}")
        text = notice(name=name, version=v.version, run_id=v.run_id, scorer=scorer, capacity_share=settings.training.capacity_share)
        written += [write_text(out / f"model_card_v{v.version}.md", card_text), write_text(out / f"notice_v{v.version}.md", text)]
    return written


def write_shifted_copy(fresh: Path, shifted: Path) -> None:
    """``shifted``: the households of ``fresh`` with a third of them paid 30% less, no outcomes
    (the truth drawn before the cut no longer holds)."""
    from nonrecours.data.shift import cut_pay

    individuals, households = read_tables(fresh, INDIVIDUALS, HOUSEHOLDS)
    write_table(cut_pay(individuals, households), shifted, INDIVIDUALS)
    write_table(households, shifted, HOUSEHOLDS)
