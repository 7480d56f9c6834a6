"""The ``nonrecours`` command: one entry point per pipeline stage, plus ``pipeline`` that chains them.

Where it sits: the only place that reads configuration (defaults, ``--config`` YAML, options) and
touches the file system; stages below it take data frames and typed settings.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table as RichTable

from nonrecours.config import without_password

app = typer.Typer(
    help="Find households probably entitled to a French benefit that they do not claim.\n\n"
    "Stages: generate (synthetic population) -> entitlements (OpenFisca-France on what an agency "
    "observes). Every stage accepts the same folder as --input and --out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for the tables when the output is a file or a CI log rather than a terminal.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", help="YAML file with settings sections (scenario, law, training, registry, serving; see nonrecours/config.py); options given here win.", exists=True, dir_okay=False),
]
SchedulerOpt = Annotated[
    Optional[str],
    typer.Option("--scheduler", help="Dask scheduler address (tcp://host:8786) to run the law engine's partitions on a cluster; default: local processes."),
]
MonthOpt = Annotated[
    Optional[str],
    typer.Option("--reference-month", help="Month of the entitlements, YYYY-MM (default: the month a synthetic population in the folder was generated for, else 2025-06)."),
]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=1, help="Local worker processes when no scheduler is given (default 2).")]
PartitionOpt = Annotated[Optional[int], typer.Option("--partition-size", min=1, help="Households per OpenFisca simulation (default 10000); memory per worker grows with it.")]
SecretsOpt = Annotated[
    Optional[Path],
    typer.Option("--secrets", help="File of KEY=value secrets (NONRECOURS_PSEUDONYM_KEY, NONRECOURS_API_KEYS), as `nonrecours keys` writes; the environment wins over it.", exists=True, dir_okay=False),
]
DecisionLogOpt = Annotated[
    Optional[str],
    typer.Option("--decision-log", help="SQLAlchemy URL of the decision log (default: $NONRECOURS_DECISION_LOG_URL, else sqlite:///decisions.db; PostgreSQL: postgresql+psycopg://user:pass@host/db)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")]


def _settings(config, **overrides):
    from pydantic import ValidationError

    from nonrecours.config import load_settings

    try:
        return load_settings(config, **overrides)
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None


def _write_json(obj: dict, path: Path) -> None:
    from nonrecours.io import write_text

    write_text(path, json.dumps(obj, indent=2, default=str))


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@app.command()
def generate(
    households: Annotated[int, typer.Option("--households", "-n", min=1, help="Number of households to draw.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same files.")] = 2026,
    out: Annotated[Path, typer.Option("--out", help="Folder to write individuals, households and outcomes Parquet files into.")] = Path("demo"),
    observed_benefits: Annotated[
        Optional[str],
        typer.Option("--observed-benefits", help="Comma-separated benefits whose receipt the data holder sees (default: rsa,ppa,aide_logement,af,aah, a CAF-like holder)."),
    ] = None,
    reference_month: MonthOpt = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    partition_size: PartitionOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Draw a synthetic population: the observed tables an agency would hold, and the truth.

    Writes individuals.parquet and households.parquet (observed), outcomes.parquet (true
    eligibility, amount, claim and claim probability per household and benefit) and
    calibration.json (the population next to the published figures it is tuned to).
    """
    from data.calibration import load_calibration
    from data.generate import generate as draw
    from nonrecours.io import write_table
    from nonrecours.schema import HOUSEHOLDS, INDIVIDUALS, OUTCOMES

    settings = _settings(
        config,
        scenario__observed_benefits=tuple(b.strip() for b in observed_benefits.split(",") if b.strip()) if observed_benefits is not None else None,
        law__reference_month=reference_month,
        law__workers=workers,
        law__partition_size=partition_size,
    )
    pop = draw(households, seed, settings, load_calibration(), scheduler=scheduler, quiet=quiet)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        write_table(pop.individuals, out, INDIVIDUALS),
        write_table(pop.households, out, HOUSEHOLDS),
        write_table(pop.outcomes, out, OUTCOMES),
    ]
    summary = {**pop.summary, "settings": settings.model_dump()}
    _write_json(summary, out / "calibration.json")
    if not quiet:
        _print_calibration(pop.summary)
    for p in [*paths, out / "calibration.json"]:
        typer.echo(str(p))


def _print_calibration(summary: dict) -> None:
    t = RichTable(title=f"Non-take-up among the eligible ({summary['households']:,} households, seed {summary['seed']})")
    for col in ("benefit", "eligible households", "mean €/month", "non-take-up", "target"):
        t.add_column(col)
    for b, v in summary["benefits"].items():
        target = f"{v['ntu_target']:.2f}" + (" (assumption)" if v["target_is_assumption"] else "")
        sim = "-" if v["ntu"] is None else f"{v['ntu']:.2f}"
        amount = "-" if v["mean_monthly_amount"] is None else f"{v['mean_monthly_amount']:.0f}"
        t.add_row(b, f"{v['eligible_households']:,} ({v['eligible_share']:.1%})", amount, sim, target)
    console.print(t)
    console.print("sources of the targets: calibration.json and data/calibration.yaml")
    console.print(f"poverty rate {summary['poverty_rate']:.1%} (INSEE: about {summary['poverty_rate_target']:.1%})")


@app.command()
def entitlements(
    input: Annotated[Path, typer.Option("--input", help="Folder holding individuals.parquet and households.parquet (observed tables).", exists=True, file_okay=False)] = Path("demo"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write entitlements.parquet into (default: the --input folder).")] = None,
    reference_month: MonthOpt = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    partition_size: PartitionOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Compute eligibility and monthly amounts with OpenFisca-France on the observed tables.

    Writes entitlements.parquet (household_id, benefit, eligible, monthly_amount). When the
    folder also holds outcomes.parquet (a synthetic population), prints how often the law engine
    on observed data agrees with the truth.
    """
    from data.calibration import load_calibration
    from features.entitlements import compare_with_truth, entitlements_from_observed
    from nonrecours.io import read_table, write_table
    from nonrecours.schema import ENTITLEMENTS, HOUSEHOLDS, INDIVIDUALS, OUTCOMES, SchemaError

    generated = input / "calibration.json"
    if reference_month is None and generated.exists():
        # A synthetic population carries the month its truth was computed for; use the same one.
        reference_month = json.loads(generated.read_text())["settings"]["law"]["reference_month"]
    settings = _settings(config, law__reference_month=reference_month, law__workers=workers, law__partition_size=partition_size)
    out = out or input
    try:
        individuals = read_table(input, INDIVIDUALS)
        households = read_table(input, HOUSEHOLDS)
    except (SchemaError, FileNotFoundError) as exc:
        _fail(str(exc))
    orphans = ~individuals["household_id"].isin(households["household_id"])
    if orphans.any():
        row = individuals[orphans].iloc[0]
        _fail(f"{input / 'individuals.parquet'}: household_id {row['household_id']} (person_id {row['person_id']}) is not in households.parquet")
    result = entitlements_from_observed(individuals, households, law=settings.law, css=load_calibration().css, scheduler=scheduler, quiet=quiet)
    path = write_table(result, out, ENTITLEMENTS)
    if (input / "outcomes.parquet").exists() and not quiet:
        check = compare_with_truth(result, read_table(input, OUTCOMES))
        console.print(_frame_table(check, "Law engine on observed data vs the truth (eligible households)"))
    typer.echo(str(path))


def _frame_table(df: pd.DataFrame, title: str) -> RichTable:
    t = RichTable(title=title)
    for col in df.columns:
        t.add_column(str(col))
    for row in df.itertuples(index=False):
        t.add_row(*[(f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}") if isinstance(v, float) else str(v) for v in row])
    return t


@app.command()
def features(
    input: Annotated[Path, typer.Option("--input", help="Folder holding individuals.parquet, households.parquet and entitlements.parquet.", exists=True, file_okay=False)] = Path("demo"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write profiles.parquet into (default: the --input folder).")] = None,
) -> None:
    """Build household profiles: one row per household and benefit, from the observed tables and
    the law engine's entitlements. No label is read. Protected attributes stay in the table for
    auditing and never reach the model."""
    from features.profiles import build_profiles
    from nonrecours.io import read_table, write_table
    from nonrecours.schema import ENTITLEMENTS, HOUSEHOLDS, INDIVIDUALS, PROFILES, SchemaError

    try:
        tables = [read_table(input, t) for t in (INDIVIDUALS, HOUSEHOLDS, ENTITLEMENTS)]
    except FileNotFoundError as exc:
        _fail(f"{exc} (run `nonrecours entitlements --input {input}` first)" if "entitlements" in str(exc) else str(exc))
    except SchemaError as exc:
        _fail(str(exc))
    typer.echo(str(write_table(build_profiles(*tables), out or input, PROFILES)))


TrackingOpt = Annotated[
    Optional[str],
    typer.Option("--tracking-uri", help="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db (local artifacts in ./mlruns)."),
]


@app.command()
def train(
    input: Annotated[Path, typer.Option("--input", help="Folder holding profiles.parquet and outcomes.parquet.", exists=True, file_okay=False)] = Path("demo"),
    tracking_uri: TrackingOpt = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address: train with lightgbm.dask on that cluster (the local run still finds the number of rounds).")] = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train the non-take-up model, compare it with the rules baseline, a logistic regression and
    the ceiling on the same test households, log everything to MLflow, register the model as
    `nonrecours`, and run the promotion gate (alias `champion` or `challenger`)."""
    import json as _json

    from nonrecours.io import read_table
    from nonrecours.schema import OUTCOMES, PROFILES, SchemaError
    from training.evaluate import train_and_evaluate
    from training.tracking import log_training, resolve_tracking_uri

    settings = _settings(config)
    try:
        profiles = read_table(input, PROFILES)
        outcomes = read_table(input, OUTCOMES)
    except FileNotFoundError as exc:
        hint = f" (run `nonrecours features --input {input}` first)" if "profiles" in str(exc) else " (training needs the truth: a synthetic population or an agency's known outcomes)"
        _fail(f"{exc}{hint}")
    except SchemaError as exc:
        _fail(str(exc))
    if not quiet:
        console.print(f"training on {profiles['household_id'].nunique():,} households ({len(profiles):,} household-benefit rows)")
    try:
        ev = train_and_evaluate(profiles, outcomes, settings.training, min_group_positives=settings.registry.min_group_positives, scheduler=scheduler)
    except ValueError as exc:
        _fail(str(exc))
    generator = _json.loads((input / "calibration.json").read_text()) if (input / "calibration.json").exists() else None
    uri = resolve_tracking_uri(tracking_uri, settings.registry)
    result = log_training(ev, profiles=profiles, settings=settings, tracking_uri=uri, input_dir=input, generator=generator, scheduler=scheduler)
    if not quiet:
        console.print(_frame_table(result.quality, "Test households, candidates: model against baselines and ceiling"))
    verdict = "[bold green]champion[/]" if result.decision.promoted else "[bold yellow]challenger[/]"
    console.print(f"{settings.registry.model_name} version {result.version} -> {verdict}: " + "; ".join(result.decision.reasons))
    typer.echo(f"run {result.run_id}")


@app.command()
def promote(
    version: Annotated[str, typer.Option("--version", help="Registered model version to make champion.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the gate is overridden (required; recorded for auditors).")],
    tracking_uri: TrackingOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Force a version to `champion`, whatever the gate said. The reason is recorded as tags on the
    version and in the append-only promotion log."""
    import mlflow

    from training.tracking import force_promotion, resolve_tracking_uri

    settings = _settings(config)
    uri = resolve_tracking_uri(tracking_uri, settings.registry)
    try:
        entry = force_promotion(mlflow.MlflowClient(tracking_uri=uri), settings.registry, version, reason)
    except (ValueError, mlflow.exceptions.MlflowException) as exc:
        _fail(str(exc).splitlines()[0])
    from training.tracking import promotion_log_path

    log = promotion_log_path(settings.registry, uri)
    console.print(f"{entry['model']} version {entry['version']} is now champion (forced; previous: {entry['previous_champion']}); recorded in {log}")


def _decision_log_url(option: str | None, settings) -> str:
    return option or os.environ.get("NONRECOURS_DECISION_LOG_URL") or settings.serving.decision_log_url


@app.command()
def keys(
    out: Annotated[Path, typer.Option("--out", help="Secrets file to create (mode 600). An existing file is left untouched.")] = Path("secrets.env"),
) -> None:
    """Create a secrets file with a fresh pseudonymisation key and API key, for `score` and `serve`
    (--secrets FILE). Keep the pseudonymisation key: with another one, outcomes no longer link to
    earlier scores."""
    from serving.secrets import new_secrets_file

    written = new_secrets_file(out)
    console.print(f"{'wrote' if written else 'kept the existing'} {out}")
    typer.echo(str(out))


@app.command()
def score(
    input: Annotated[Path, typer.Option("--input", help="Folder holding the raw tables individuals.parquet and households.parquet (an agency extract).", exists=True, file_okay=False)] = Path("demo"),
    out: Annotated[Path, typer.Option("--out", help="Worklist to write: .csv or .parquet (written to a temporary name, then renamed).")] = Path("demo/worklist.csv"),
    capacity: Annotated[Optional[int], typer.Option("--capacity", min=1, help="Keep the first K households (what the team can contact); default: all.")] = None,
    min_probability: Annotated[float, typer.Option("--min-probability", min=0, max=1, help="Drop rows with p_unclaimed below this (households stay ranked on all their benefits).")] = 0.0,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    tracking_uri: TrackingOpt = None,
    decision_log: DecisionLogOpt = None,
    secrets: SecretsOpt = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not write the decision log (for a dry run only: agents must not work from an unlogged list).")] = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score a whole extract with the champion model and write a ranked worklist.

    Columns: rank, household_id, benefit, p_unclaimed, estimated_monthly_amount,
    expected_unclaimed_monthly, reasons. Households are ranked by their total expected unclaimed
    amount, benefits within a household by theirs. Every household scored goes to the decision
    log (pseudonymised) with the model version. Large extracts run in partitions over local
    processes or a Dask cluster (--scheduler), with the same code as the API.
    """
    import mlflow

    from data.calibration import load_calibration
    from nonrecours.io import read_table
    from nonrecours.schema import HOUSEHOLDS, INDIVIDUALS, SchemaError
    from serving.scoring import score_extract, worklist
    from serving.secrets import pseudonym_key, resolve
    from training.tracking import load_scorer, resolve_tracking_uri

    if out.suffix not in (".csv", ".parquet"):
        _fail(f"--out {out}: the worklist must end in .csv or .parquet")
    settings = _settings(config, law__workers=workers)
    log = None
    if not no_log:
        from serving.decision_log import DecisionLog, connect

        try:
            log = DecisionLog(connect(_decision_log_url(decision_log, settings)), pseudonym_key(resolve(secrets)))
        except ValueError as exc:
            _fail(str(exc))
    try:
        individuals = read_table(input, INDIVIDUALS)
        households = read_table(input, HOUSEHOLDS)
    except (SchemaError, FileNotFoundError) as exc:
        _fail(str(exc))
    uri = resolve_tracking_uri(tracking_uri, settings.registry)
    mlflow.set_tracking_uri(uri)
    name, alias = settings.registry.model_name, settings.serving.model_alias
    try:
        version = str(mlflow.MlflowClient(tracking_uri=uri).get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        _fail(f"no model {name}@{alias} in the registry at {without_password(uri)}: train one with `nonrecours train` (or promote a version)")
    scorer = load_scorer(f"models:/{name}/{version}")
    scored = score_extract(
        individuals, households, scorer, law=settings.law, css=load_calibration().css, n_reasons=settings.serving.reasons_per_score,
        partition_households=settings.serving.partition_households, scheduler=scheduler, quiet=quiet,
    )
    if log is not None:
        n = log.record_scored(scored, model_name=name, model_version=version, source="batch")
        if not quiet:
            console.print(f"decision log: {n:,} households scored by {name} version {version}")
    table = worklist(scored, capacity=capacity, min_probability=min_probability)
    from nonrecours.io import atomic_path

    with atomic_path(out) as tmp:
        if out.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    if not quiet:
        top = table.drop_duplicates("household_id").head(5)
        console.print(_frame_table(top[["rank", "household_id", "benefit", "p_unclaimed", "expected_unclaimed_monthly"]], f"Worklist: {table['household_id'].nunique():,} households, first five (model {name} v{version})"))
    typer.echo(str(out))


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", help="Port of the HTTP API.")] = 3000,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    tracking_uri: TrackingOpt = None,
    decision_log: DecisionLogOpt = None,
    secrets: SecretsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Start the scoring API (BentoML) with the champion model.

    POST /score and POST /outcomes need 'Authorization: Bearer <key>' (NONRECOURS_API_KEYS);
    /healthz, /livez, /readyz, /metrics and /docs.json are open. With no champion yet, the
    service starts, logs why it is not ready and answers 503 on /readyz until one is trained.
    Once ready, it checks every serving.champion_refresh_seconds (60) whether the champion alias
    moved and swaps the new version in without a restart.
    Example request: serving/examples/households.json.
    """
    from serving.secrets import api_keys, pseudonym_key, resolve

    settings = _settings(config)
    try:
        values = resolve(secrets)
        pseudonym_key(values)
        api_keys(values)
    except ValueError as exc:
        _fail(str(exc))
    from training.tracking import resolve_tracking_uri

    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = resolve_tracking_uri(tracking_uri, settings.registry)
    env["NONRECOURS_DECISION_LOG_URL"] = _decision_log_url(decision_log, settings)
    # The log's tables are created here, once, before the workers start: several workers creating
    # them at the same moment on a new database would race; a wrong URL fails now, said plainly.
    from serving.decision_log import connect

    shown = without_password(env["NONRECOURS_DECISION_LOG_URL"])
    try:
        connect(env["NONRECOURS_DECISION_LOG_URL"]).dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to open the log stops the start, with the reason
        _fail(f"decision log {shown!r}: cannot open it ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
              "expected a SQLAlchemy URL such as sqlite:///decisions.db or postgresql+psycopg://user@host/nonrecours")
    if secrets is not None:
        env["NONRECOURS_SECRETS_FILE"] = str(secrets.resolve())
    if config is not None:
        env["NONRECOURS_CONFIG"] = str(config.resolve())
    console.print(f"scoring API on http://{host}:{port} (decision log: {shown}, registry: {without_password(env['MLFLOW_TRACKING_URI'])})")
    args = [sys.executable, "-m", "bentoml", "serve", "serving.service:Scoring", "--port", str(port), "--host", host]
    os.execvpe(args[0], args, env)


def _log_window(source: str, since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None] | None:
    """The decision-log window a source names: ``log`` (--since/--until), ``log:START..END`` (ISO
    dates or times, either side may be empty), or None for a folder."""
    if source == "log":
        return since, until
    if not source.startswith("log:"):
        return None
    start, sep, end = source[4:].partition("..")
    if not sep:
        _fail(f"{source}: a decision-log window is written log:START..END (for example log:2026-10-01..2026-11-01; either side may be empty)")
    try:
        return (datetime.fromisoformat(start) if start else None), (datetime.fromisoformat(end) if end else None)
    except ValueError as exc:
        _fail(f"{source}: {exc}; dates are ISO, for example log:2026-10-01..2026-11-01T12:00")


def _window_label(source: str, since: datetime | None, until: datetime | None) -> str:
    window = _log_window(source, since, until)
    return source if window is None else f"decision log {window[0] or ''}..{window[1] or ''}"


def _monitoring_window(source: str, *, scorer, settings, since, until, decision_log, secrets, quiet) -> pd.DataFrame:
    """Scored profiles of a source: a raw-data folder (scored now by the champion; with ``target``
    when it holds outcomes.parquet) or a decision-log window (``log`` with --since/--until, or
    ``log:START..END``), with the outcomes agents recorded."""
    from data.calibration import load_calibration
    from nonrecours.io import read_table
    from nonrecours.schema import HOUSEHOLDS, INDIVIDUALS, OUTCOMES, SchemaError
    from serving.scoring import score_extract

    window = _log_window(source, since, until)
    if window is not None:
        since, until = window
        from serving.decision_log import DecisionLog, connect, profiles_from_log
        from serving.secrets import pseudonym_key, resolve

        try:
            log = DecisionLog(connect(_decision_log_url(decision_log, settings)), pseudonym_key(resolve(secrets)))
        except ValueError as exc:
            _fail(str(exc))
        scored = profiles_from_log(log.read(since, until), log.read_outcomes(since, until))
        if scored.empty:
            _fail(f"the decision log holds no decision between {since or 'the start'} and {until or 'now'}")
        return scored
    folder = Path(source)
    if not folder.is_dir():
        _fail(f"{source}: not a folder of raw tables, nor `log` / `log:START..END`")
    try:
        individuals, households = read_table(folder, INDIVIDUALS), read_table(folder, HOUSEHOLDS)
    except (SchemaError, FileNotFoundError) as exc:
        _fail(str(exc))
    scored = score_extract(individuals, households, scorer, law=settings.law, css=load_calibration().css, n_reasons=0,
                           partition_households=settings.serving.partition_households, quiet=quiet)
    if (folder / "outcomes.parquet").exists():
        from training.evaluate import join_labels

        scored = join_labels(scored, read_table(folder, OUTCOMES))
    return scored


@app.command()
def monitor(
    reference: Annotated[str, typer.Option("--reference", help="Reference window: a folder of raw tables (individuals/households, with outcomes.parquet when known), `log` (the decision log between --since and --until) or `log:START..END` (e.g. log:2026-10-01..2026-11-01).")],
    current: Annotated[str, typer.Option("--current", help="Current window: a folder of raw tables, `log` or `log:START..END`, as for --reference.")],
    out: Annotated[Path, typer.Option("--out", help="Folder of reports: report-<time>.html and .json, and index.html listing them all.")] = Path("reports"),
    since: Annotated[Optional[datetime], typer.Option("--since", help="Start of the decision-log window (with `log`).")] = None,
    until: Annotated[Optional[datetime], typer.Option("--until", help="End of the decision-log window, excluded (with `log`).")] = None,
    tracking_uri: TrackingOpt = None,
    decision_log: DecisionLogOpt = None,
    secrets: SecretsOpt = None,
    workers: WorkersOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Drift (Evidently), fairness (fairlearn) and, where outcomes are known, classification
    quality (Evidently) of the champion between two windows, against the thresholds of the
    `monitoring` settings; for a decision-log window, the outcomes agents recorded per group. Prints a verdict and exits 1 when a threshold is
    breached (0 when none is), so a scheduler can alert. The report is also logged to the
    champion's MLflow run."""
    import mlflow

    from monitoring.report import build_report, write_report
    from training.tracking import held_out_metrics, load_scorer, resolve_tracking_uri

    settings = _settings(config, law__workers=workers)
    for source in (reference, current):  # both checked before either is scored
        if _log_window(source, since, until) is None and not Path(source).is_dir():
            _fail(f"{source}: not a folder of raw tables, nor `log` / `log:START..END`")
    uri = resolve_tracking_uri(tracking_uri, settings.registry)
    mlflow.set_tracking_uri(uri)
    name, alias = settings.registry.model_name, settings.serving.model_alias
    try:
        version = mlflow.MlflowClient(tracking_uri=uri).get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        _fail(f"no model {name}@{alias} in the registry at {without_password(uri)}: train one with `nonrecours train`")
    scorer = load_scorer(f"models:/{name}/{version.version}")
    windows = [_monitoring_window(s, scorer=scorer, settings=settings, since=since, until=until, decision_log=decision_log, secrets=secrets, quiet=quiet) for s in (reference, current)]
    client = mlflow.MlflowClient(tracking_uri=uri)
    report = build_report(*windows, cfg=settings.monitoring, capacity_share=settings.training.capacity_share,
                          model=f"{name} v{version.version}", reference_name=_window_label(reference, since, until), current_name=_window_label(current, since, until),
                          held_out=held_out_metrics(client.get_run(version.run_id).data.metrics))
    page, data, index = write_report(report, out)
    for path in (page, data):
        client.log_artifact(version.run_id, str(path), artifact_path="monitoring")
    colour = "green" if report.verdict == "pass" else "red"
    console.print(f"[bold {colour}]{report.verdict.upper()}[/]: " + ("; ".join(report.failures) or "no threshold breached"))
    console.print(f"report: {page}\nindex:  {index}")
    typer.echo(str(index))
    if report.failures:
        raise typer.Exit(code=1)


@app.command()
def card(
    out: Annotated[Path, typer.Option("--out", help="Folder to write model_card_v<N>.md and notice_v<N>.md into.")] = Path("reports/cards"),
    version: Annotated[Optional[str], typer.Option("--version", help="One registered version; default: every version.")] = None,
    tracking_uri: TrackingOpt = None,
    config: ConfigOpt = None,
) -> None:
    """For each registered version: the model card (from its training run) and the public notice
    of the algorithm in French (CRPA L312-1-3): purpose, data used, main parameters and their
    weights, excluded uses, how a person asks for the explanation of their own score."""
    import mlflow

    from monitoring.notice import notice
    from nonrecours.io import write_text
    from training.tracking import load_scorer, resolve_tracking_uri

    settings = _settings(config)
    uri = resolve_tracking_uri(tracking_uri, settings.registry)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = settings.registry.model_name
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    if version is not None:
        versions = [v for v in versions if str(v.version) == str(version)]
    if not versions:
        _fail(f"no registered version {version or ''} of {name} in {without_password(uri)}: train one with `nonrecours train`".replace("  ", " "))
    out.mkdir(parents=True, exist_ok=True)
    for v in versions:
        with tempfile.TemporaryDirectory() as d:
            card_text = Path(client.download_artifacts(v.run_id, "model_card.md", d)).read_text()
        scorer = load_scorer(f"models:/{name}/{v.version}")
        text = notice(name=name, version=v.version, run_id=v.run_id, scorer=scorer, capacity_share=settings.training.capacity_share)
        for filename, content in ((f"model_card_v{v.version}.md", card_text), (f"notice_v{v.version}.md", text)):
            typer.echo(str(write_text(out / filename, content)))


@app.command()
def pipeline(
    households: Annotated[int, typer.Option("--households", "-n", min=1, help="Number of households to draw.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 2026,
    out: Annotated[Path, typer.Option("--out", help="Folder for every output of the run.")] = Path("demo"),
    tracking_uri: TrackingOpt = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run the whole pipeline on the embedded defaults, in one folder: generate -> entitlements ->
    features -> train (with the promotion gate) -> score (worklist.csv, decision log
    decisions.db, secrets in secrets.env) -> monitor two more windows against it: a fresh draw
    (another seed, in fresh/) and the same households with a third of them paid 30% less
    (shifted/), in reports/index.html. Ends with how to
    open the MLflow UI and call the API."""
    generate(households=households, seed=seed, out=out, observed_benefits=None, reference_month=None, scheduler=scheduler, workers=workers, partition_size=None, config=config, quiet=quiet)
    entitlements(input=out, out=out, reference_month=None, scheduler=scheduler, workers=workers, partition_size=None, config=config, quiet=quiet)
    features(input=out, out=out)
    train(input=out, tracking_uri=tracking_uri, scheduler=None, config=config, quiet=quiet)
    import mlflow

    from training.tracking import resolve_tracking_uri

    settings = _settings(config)
    uri = resolve_tracking_uri(tracking_uri, settings.registry)
    secrets_file = out / "secrets.env"
    keys(out=secrets_file)
    log_url = f"sqlite:///{(out / 'decisions.db').resolve()}"
    try:
        mlflow.MlflowClient(tracking_uri=uri).get_model_version_by_alias(settings.registry.model_name, settings.serving.model_alias)
    except mlflow.exceptions.MlflowException:
        # A small population can leave the first model a challenger: no model to score with.
        console.print(f"[bold yellow]no worklist[/]: no {settings.registry.model_name}@{settings.serving.model_alias} yet (the gate kept this model a challenger); promote one with `nonrecours promote`, then run `nonrecours score`")
    else:
        score(
            input=out, out=out / "worklist.csv", capacity=None, min_probability=0.0, scheduler=scheduler, workers=workers, tracking_uri=tracking_uri,
            decision_log=log_url, secrets=secrets_file, no_log=False, config=config, quiet=quiet,
        )
        # Two more windows monitored against this one: a fresh draw (another seed, outcomes known),
        # and the same households after a pay cut (outcomes unknown: the truth drawn before the
        # cut no longer holds, so none is kept).
        from data.shift import cut_pay
        from nonrecours.io import read_table, write_table
        from nonrecours.schema import HOUSEHOLDS, INDIVIDUALS

        fresh, shifted = out / "fresh", out / "shifted"
        generate(households=households, seed=seed + 1, out=fresh, observed_benefits=None, reference_month=None, scheduler=scheduler, workers=workers, partition_size=None, config=config, quiet=True)
        fresh_households = read_table(fresh, HOUSEHOLDS)
        write_table(cut_pay(read_table(fresh, INDIVIDUALS), fresh_households), shifted, INDIVIDUALS)
        write_table(fresh_households, shifted, HOUSEHOLDS)
        reports = out / "reports"
        for current, expected in ((fresh, "another draw of the same population: expected to pass"), (shifted, "a third of these households lost 30% of their pay: drift is expected")):
            console.print(f"monitoring {current} against {out} ({expected})")
            try:
                monitor(reference=str(out), current=str(current), out=reports, since=None, until=None, tracking_uri=tracking_uri, decision_log=log_url, secrets=secrets_file, workers=workers, config=config, quiet=quiet)
            except typer.Exit as verdict:
                if verdict.exit_code != 1:
                    raise
        console.print(f"monitoring reports: {(reports / 'index.html').resolve()}")
    console.print(f"[bold green]done[/]: everything is in {out.resolve()} (worklist: {out / 'worklist.csv'})")
    console.print(f"open the MLflow UI with:  .venv/bin/mlflow ui --backend-store-uri {uri} --port 5000")
    console.print(
        f"start the scoring API with:  .venv/bin/nonrecours serve --secrets {secrets_file} --decision-log {log_url}"
        + (f" --tracking-uri {uri}" if tracking_uri else ""),
        soft_wrap=True,
    )
    console.print(
        f"then score the example:  curl -s -X POST localhost:3000/score -H \"Authorization: Bearer $(grep API_KEYS {secrets_file} | cut -d= -f2)\" "
        "-H 'Content-Type: application/json' -d @serving/examples/households.json",
        soft_wrap=True,
    )


@app.command()
def schema() -> None:
    """Print the data contract (every table, column, type, role, unit and meaning) as Markdown."""
    from nonrecours.schema import to_markdown

    typer.echo(to_markdown())
