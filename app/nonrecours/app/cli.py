"""The ``nonrecours`` command: one entry point per pipeline stage, plus ``pipeline`` that chains them.

Where it sits: the top of the application layer. Each command parses its options, builds the
settings once (defaults of :mod:`nonrecours.core.config`, then ``--config``, then options), calls
:mod:`nonrecours.app.application` and prints. Options whose default is a setting show that
setting's default and description in ``--help``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table as RichTable

from nonrecours.app import application as appl
from nonrecours.app.environment import Environment
from nonrecours.core.config import ScenarioConfig, Settings, field_help, without_password

app = typer.Typer(
    help="Find households probably entitled to a French benefit that they do not claim.\n\n"
    "Stages: generate (synthetic population) -> entitlements (OpenFisca-France on what an agency "
    "observes) -> features -> train (MLflow, promotion gate) -> score (worklist, decision log) -> "
    "monitor. Every stage accepts the same folder as --input and --out; `pipeline` runs them all.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for the tables when the output is a file or a CI log rather than a terminal.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", help=f"YAML file with settings sections ({', '.join(Settings.model_fields)}; see nonrecours/core/config.py); options given here win.", exists=True, dir_okay=False),
]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address (tcp://host:8786) to run the law engine's partitions on a cluster; default: local processes.")]
MonthOpt = Annotated[Optional[str], typer.Option("--reference-month", help=field_help("law", "reference_month"))]
PopulationMonthOpt = Annotated[Optional[str], typer.Option("--reference-month", help=field_help("law", "reference_month") + " A synthetic population's own month is used when neither this nor --config sets one.")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=1, help=field_help("law", "workers"))]
PartitionOpt = Annotated[Optional[int], typer.Option("--partition-size", min=1, help=field_help("law", "partition_size"))]
SecretsOpt = Annotated[
    Optional[Path],
    typer.Option("--secrets", help="File of KEY=value secrets (NONRECOURS_PSEUDONYM_KEY, NONRECOURS_API_KEYS), as `nonrecours keys` writes; the environment wins over it.", exists=True, dir_okay=False),
]
DecisionLogOpt = Annotated[Optional[str], typer.Option("--decision-log", help=field_help("serving", "decision_log_url") + " --decision-log overrides both.")]
TrackingOpt = Annotated[Optional[str], typer.Option("--tracking-uri", help=field_help("registry", "tracking_uri"))]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")]
HouseholdsOpt = Annotated[Optional[int], typer.Option("--households", "-n", min=1, help=field_help("scenario", "households"))]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help=field_help("scenario", "seed"))]
InputOpt = Annotated[Path, typer.Option("--input", help="Folder holding the tables the command reads (see its description).", exists=True, file_okay=False)]
OutDirOpt = Annotated[Optional[Path], typer.Option("--out", help="Folder to write into (default: the --input folder).")]


def _settings(config: Path | None, **overrides):
    from pydantic import ValidationError

    from nonrecours.core.config import load_settings

    try:
        return load_settings(config, **overrides)
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None


def _run(step: Callable, *args, **kwargs):
    """``step(*args, **kwargs)``; a problem the user can fix is printed and exits 2."""
    try:
        return step(*args, **kwargs)
    except appl.AppError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from None


def _frame_table(df: pd.DataFrame, title: str) -> RichTable:
    t = RichTable(title=title)
    for col in df.columns:
        t.add_column(str(col))
    for row in df.itertuples(index=False):
        t.add_row(*["-" if v is None or v != v else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}") if isinstance(v, float) else str(v) for v in row])
    return t


def _print_calibration(summary: dict) -> None:
    from nonrecours.data.summary import calibration_tables

    for title, table in calibration_tables(summary).items():
        console.print(_frame_table(table, title))
    auc, over = summary["claim_auc"]["overall"], summary["overpayments"]
    console.print(f"truth claim AUC within benefit {auc:.3f} (bound {summary['claim_auc_bound']}: published studies explain little of who claims)")
    console.print(f"paid households no longer entitled: {over['by_benefit'].get('overall', {}).get('not_entitled_share')} ({over['note']}); "
                  f"claims pending {over['pending']:,}, refused {over['refused']:,}")
    console.print(f"poverty rate {summary['poverty_rate']:.1%} (INSEE: about {summary['poverty_rate_target']:.1%}); sources: calibration.json and data/calibration.yaml")


@app.command()
def generate(
    households: HouseholdsOpt = None,
    seed: SeedOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Folder to write individuals, households and outcomes Parquet files into.")] = Path("demo"),
    observed_benefits: Annotated[Optional[str], typer.Option("--observed-benefits", help="Comma-separated. " + field_help("scenario", "observed_benefits"))] = None,
    quarters: Annotated[Optional[int], typer.Option("--quarters", min=1, help=field_help("scenario", "quarters"))] = None,
    reference_month: MonthOpt = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    partition_size: PartitionOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Draw a synthetic population over consecutive quarters: the extracts an agency would hold,
    and the truth.

    Per quarter (the current one in --out, the next in OUT/next_quarter; `scenario.quarters`):
    individuals.parquet and households.parquet (the agency's extract: what it holds depends on
    what it pays), outcomes.parquet (true eligibility and amount, claim status and what is paid,
    claim probability, reason for not claiming, potential outcomes of a contact) and
    calibration.json (the population next to the published figures it is tuned to, printed here).
    """
    benefits = None if observed_benefits is None else tuple(b.strip() for b in observed_benefits.split(",") if b.strip())
    settings = _settings(config, scenario__households=households, scenario__seed=seed, scenario__observed_benefits=benefits, scenario__quarters=quarters,
                         law__reference_month=reference_month, law__workers=workers, law__partition_size=partition_size)
    pop, paths = _run(appl.make_population, settings, out, scheduler=scheduler, quiet=quiet)
    if not quiet:
        _print_calibration(pop.summary)
    for p in paths:
        typer.echo(str(p))


@app.command()
def entitlements(
    input: InputOpt = Path("demo"),
    out: OutDirOpt = None,
    reference_month: PopulationMonthOpt = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    partition_size: PartitionOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Compute eligibility and monthly amounts with OpenFisca-France on the observed tables
    (individuals.parquet and households.parquet in --input).

    Writes entitlements.parquet (household_id, benefit, eligible, monthly_amount). When the
    folder also holds outcomes.parquet (a synthetic population), prints how often the law engine
    on observed data agrees with the truth.
    """
    settings = _settings(config, law__reference_month=reference_month, law__workers=workers, law__partition_size=partition_size)
    settings = appl.with_population_month(settings, input)
    path, check = _run(appl.compute_entitlements, input, out or input, settings, scheduler=scheduler, quiet=quiet)
    if check is not None and not quiet:
        console.print(_frame_table(check, "Law engine on observed data vs the truth (eligible households)"))
    typer.echo(str(path))


@app.command()
def features(input: InputOpt = Path("demo"), out: OutDirOpt = None) -> None:
    """Build household profiles (profiles.parquet): one row per household and benefit, from the
    observed tables and entitlements.parquet in --input. No label is read. Protected attributes
    stay in the table for auditing and never reach the model."""
    typer.echo(str(_run(appl.build_features, input, out or input)))


@app.command()
def train(
    input: InputOpt = Path("demo"),
    next_quarter: Annotated[Optional[Path], typer.Option("--next-quarter", help="A later quarter of the same households (profiles.parquet and outcomes.parquet): the model is also tested on its test households. Default: INPUT/next_quarter when it holds profiles.")] = None,
    tracking_uri: TrackingOpt = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address: train with lightgbm.dask on that cluster (the local run still finds the number of rounds).")] = None,
    labels: Annotated[str, typer.Option("--labels", help="`truth`: the simulation's outcomes.parquet (the oracle model). `observed`: what an agency holds: "
                                        "a campaign's recorded outcomes (--campaign) and the next extract's claims; no truth file is read.")] = "truth",
    campaign: Annotated[Optional[str], typer.Option("--campaign", help="With --labels observed: the campaign id (`nonrecours campaign` prints it; the campaign file's campaign_id).")] = None,
    next_extract: Annotated[Optional[Path], typer.Option("--next-extract", help="With --labels observed: the next quarter's extract (default: INPUT/next_quarter).")] = None,
    decision_log: DecisionLogOpt = None,
    secrets: SecretsOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train the non-take-up model on profiles.parquet and outcomes.parquet in --input, compare it
    with the rules baseline, a logistic regression and the ceiling on the same test households,
    log everything to MLflow, register the model, and run the promotion gate (alias `champion`
    or `challenger`). With a next quarter, the same test households are scored three months on.

    With --labels observed: learn from what an agency observes instead — the need model
    (P(right opened | contacted)) and the uplift model (a T-learner: P(claim | contacted) -
    P(claim | not contacted), inverse-propensity weighted) from a campaign's outcomes in the
    decision log and the next extract; prints the campaign's effect estimated from its holdout and
    the uplift ranking's off-policy value, and in simulation (when the next quarter's truth is on
    disk) every policy's true additional euros."""
    settings, env = _settings(config), Environment.from_os()
    if labels != "truth":
        return _train_observed(labels, input, campaign, next_extract, settings, env, tracking_uri=tracking_uri, decision_log=decision_log, secrets=secrets, quiet=quiet)
    profiles, outcomes = _run(appl.training_data, input)
    later = _run(appl.next_quarter_data, input, next_quarter)
    if not quiet:
        console.print(f"training on {profiles['household_id'].nunique():,} households ({len(profiles):,} household-benefit rows)")
    result = _run(appl.train_model, input, profiles, outcomes, settings, appl.tracking_uri(tracking_uri, settings, env), env, scheduler=scheduler, next_quarter=later)
    if not quiet:
        for title, table in result.quality.items():
            console.print(_frame_table(table, title))
    verdict = "[bold green]champion[/]" if result.decision.promoted else "[bold yellow]challenger[/]"
    console.print(f"{settings.registry.model_name} version {result.version} -> {verdict}: " + "; ".join(result.decision.reasons))
    typer.echo(f"run {result.run_id}")


def _refuse(message: str) -> None:
    raise appl.AppError(message)


def _train_observed(labels: str, input: Path, campaign: str | None, next_extract: Path | None, settings, env: Environment, *, tracking_uri, decision_log, secrets, quiet: bool) -> None:
    from nonrecours.app.outreach import train_observed

    if labels != "observed":
        _run(_refuse, f"--labels {labels!r}: expected `truth` or `observed`")
    if campaign is None:
        _run(_refuse, "--labels observed needs --campaign ID: the campaign whose outcomes to learn from (its id is in the campaign file)")
    log = _run(appl.open_decision_log, appl.decision_log_url(decision_log, settings, env), secrets, env)
    result = _run(train_observed, input, campaign, log, settings, appl.tracking_uri(tracking_uri, settings, env), next_extract=next_extract, quiet=quiet, user=env.user)
    h, o = result.holdout, result.off_policy
    console.print(f"observed labels: {len(result.rows):,} household-benefit rows ({result.models.n_contacted:,} contacted, {result.models.n_control:,} not)")
    console.print(f"campaign's holdout effect: {h.value:+,.2f} EUR a month per contacted household (90% interval {h.low:+,.2f} to {h.high:+,.2f}; {h.n:,} households)")
    console.print(f"uplift ranking, off-policy (IPW) estimate of its additional euros a month: {o.value:,.0f} (90% interval {o.low:,.0f} to {o.high:,.0f}; {o.n:,} covered households)")
    verdict = "[bold green]champion[/]" if result.decision.promoted else "[bold yellow]challenger[/]"
    console.print(f"{settings.registry.outreach_model_name} version {result.version} -> {verdict} (gate on the off-policy estimates): " + "; ".join(result.decision.reasons), soft_wrap=True)
    if result.simulation is not None and not quiet:
        console.print(_frame_table(result.simulation.table, "Simulation only, next quarter's truth (not used by the gate): additional euros a month each policy's contacts cause"))
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
    settings, env = _settings(config), Environment.from_os()
    entry, log = _run(appl.promote, version, reason, settings, appl.tracking_uri(tracking_uri, settings, env), env)
    console.print(f"{entry['model']} version {entry['version']} is now champion (forced; previous: {entry['previous_champion']}); recorded in {log}")


@app.command()
def keys(
    out: Annotated[Path, typer.Option("--out", help="Secrets file to create (mode 600). An existing file is left untouched unless --rotate.")] = Path("secrets.env"),
    rotate: Annotated[bool, typer.Option("--rotate", help="Give the existing file a new pseudonymisation key; the old one moves to NONRECOURS_PSEUDONYM_KEYS_RETIRED, "
                                         "so outcomes still find the decisions made under it. Restart the service afterwards.")] = False,
) -> None:
    """Create a secrets file with a fresh pseudonymisation key and API key, for `score` and `serve`
    (--secrets FILE), or rotate its pseudonymisation key (--rotate). Keep every key: without the
    one a row was made with (current or retired), outcomes no longer link to earlier scores."""
    from nonrecours.serving.secrets import new_secrets_file, rotate_pseudonym_key

    if rotate:
        if not out.exists():
            _run(_refuse, f"--rotate: no secrets file {out} to rotate (create one with `nonrecours keys --out {out}`)")
        _run(rotate_pseudonym_key, out)
        console.print(f"rotated the pseudonymisation key in {out}; the previous one is kept as retired")
    else:
        written = new_secrets_file(out)
        console.print(f"{'wrote' if written else 'kept the existing'} {out}")
    typer.echo(str(out))


@app.command()
def score(
    input: InputOpt = Path("demo"),
    out: Annotated[Path, typer.Option("--out", help="Worklist to write: .csv or .parquet (written to a temporary name, then renamed).")] = Path("demo/worklist.csv"),
    capacity: Annotated[Optional[int], typer.Option("--capacity", min=1, help="Keep the first K households (what the team can contact); default: all.")] = None,
    min_probability: Annotated[float, typer.Option("--min-probability", min=0, max=1, help="Drop rows with p_unclaimed below this (households stay ranked on all their benefits).")] = 0.0,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    tracking_uri: TrackingOpt = None,
    decision_log: DecisionLogOpt = None,
    secrets: SecretsOpt = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not write the decision log (for a dry run only: agents must not work from an unlogged list).")] = False,
    ranking: Annotated[Optional[str], typer.Option("--ranking", help=field_help("campaign", "ranking"))] = None,
    model_run: Annotated[Optional[str], typer.Option("--model-run", help="With --ranking need or uplift: an MLflow run of `train --labels observed` (default: the outreach models' @champion).")] = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score a whole extract (individuals.parquet and households.parquet in --input) and write a
    ranked worklist: by the champion model, or by --ranking: the rules, or the need or uplift
    model learnt from campaign outcomes (expected additional euros a month).

    Columns: rank, household_id, benefit, p_unclaimed, estimated_monthly_amount,
    expected_unclaimed_monthly, reasons. Households are ranked by their total expected amount,
    benefits within a household by theirs. Every household scored goes to the decision log
    (pseudonymised, with the model version and a keyed digest of its inputs, so the API answers
    it without OpenFisca while they do not change); reasons are computed for the worklist's rows
    (with --capacity, only those). Partitions run over local processes or Dask (--scheduler)."""
    from nonrecours.app.outreach import rank_extract, worklist_of

    _run(appl.worklist_path, out)
    settings, env = _settings(config, law__workers=workers, campaign__ranking=ranking), Environment.from_os()
    log = None if no_log else _run(appl.open_decision_log, appl.decision_log_url(decision_log, settings, env), secrets, env)
    individuals, households = _run(appl.read_extract, input)
    ranked = _run(rank_extract, individuals, households, settings, appl.tracking_uri(tracking_uri, settings, env), ranking=settings.campaign.ranking,
                  scheduler=scheduler, quiet=quiet, model_run=model_run, explain_all=capacity is None)
    scored, table = worklist_of(ranked, capacity=capacity, min_probability=min_probability)
    if log is not None:
        _say(quiet, appl.log_batch(log, scored, ranked, appl.input_digests(individuals, households, log, settings)))
    appl.write_worklist(table, out)
    _print_worklist(table, ranked.model_name, ranked.model_version, quiet=quiet)
    typer.echo(str(out))


@app.command()
def campaign(
    input: InputOpt = Path("demo"),
    out: Annotated[Path, typer.Option("--out", help="Campaign file to write: .csv or .parquet (every campaign household with its arm, propensity and decision id).")] = Path("demo/campaign.csv"),
    capacity: Annotated[Optional[int], typer.Option("--capacity", min=1, help="Contacts the team can make. Default: training.capacity_share of the extract's households.")] = None,
    holdout: Annotated[Optional[float], typer.Option("--holdout", min=0, max=0.9, help=field_help("campaign", "holdout_share"))] = None,
    exploration: Annotated[Optional[float], typer.Option("--exploration", min=0, max=0.9, help=field_help("campaign", "exploration_share"))] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the holdout and exploration draws (recorded with the campaign).")] = 0,
    ranking: Annotated[Optional[str], typer.Option("--ranking", help=field_help("campaign", "ranking"))] = None,
    model_run: Annotated[Optional[str], typer.Option("--model-run", help="With --ranking need or uplift: the MLflow run of `train --labels observed`.")] = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    tracking_uri: TrackingOpt = None,
    decision_log: DecisionLogOpt = None,
    secrets: SecretsOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Pick the households to contact from the current extract, with a randomised holdout.

    The extract is ranked (the champion model, or the rules at cold start); contacts go to the top
    of the ranking but a random share of it (--holdout, drawn within rank strata), which is not
    contacted so that the campaign's effect can be measured; a share of the contacts
    (--exploration) goes at random to households below the cut that the law engine finds eligible,
    so the next model does not learn only from this one's choices. Every campaign household is
    logged (decision log) with its arm, stratum and probability of contact. Agents contact the
    rows whose `contacted` is true; `nonrecours outreach` plays them in simulation."""
    from nonrecours.app.outreach import run_campaign

    settings, env = _settings(config, law__workers=workers, campaign__holdout_share=holdout, campaign__exploration_share=exploration, campaign__ranking=ranking), Environment.from_os()
    _run(appl.worklist_path, out)
    log = _run(appl.open_decision_log, appl.decision_log_url(decision_log, settings, env), secrets, env)
    result = _run(run_campaign, input, capacity, seed, settings, appl.tracking_uri(tracking_uri, settings, env), log, ranking=settings.campaign.ranking, scheduler=scheduler,
                  quiet=quiet, model_run=model_run)
    appl.write_worklist(result.table, out)
    _print_campaign(result, result.capacity, quiet)
    typer.echo(str(out))


def _print_campaign(result, k: int, quiet: bool) -> None:
    from nonrecours.serving.campaign import campaign_summary

    cid = result.table["campaign_id"].iloc[0]
    if not quiet:
        console.print(_frame_table(campaign_summary(result.table), f"Campaign {cid}: {k:,} contacts, ranked by {result.model_name} v{result.model_version}"))
    console.print(f"campaign {cid}: {int(result.table['contacted'].sum()):,} households to contact, logged in the decision log")


@app.command()
def outreach(
    input: InputOpt = Path("demo"),
    campaign: Annotated[Path, typer.Option("--campaign", help="The campaign file `nonrecours campaign` wrote.")] = Path("demo/campaign.csv"),
    outcome_date: Annotated[Optional[datetime], typer.Option("--date", formats=["%Y-%m-%d"], help="Date of the outcomes (default: today).")] = None,
    decision_log: DecisionLogOpt = None,
    secrets: SecretsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Simulation only: play the field for a campaign. For each contacted household and each
    benefit the campaign lists for it, what an agent would record — unreachable, right opened
    (with the amount), not entitled after checking, declined, already receiving — from the truth's
    potential outcomes (--input's outcomes.parquet), recorded through the same code as POST
    /outcomes. Running it twice records nothing new (idempotency keys)."""
    from nonrecours.app.outreach import play_field, read_campaign_file, today

    settings, env = _settings(config), Environment.from_os()
    log = _run(appl.open_decision_log, appl.decision_log_url(decision_log, settings, env), secrets, env)
    table = _run(read_campaign_file, campaign)
    before = len(log.read_outcomes())
    records = _run(play_field, input, table, log, outcome_date=outcome_date.date() if outcome_date else today())
    added = len(log.read_outcomes()) - before
    counts = records["result"].value_counts().rename_axis("result").reset_index(name="household-benefits")
    console.print(_frame_table(counts, f"Field outcomes of campaign {table['campaign_id'].iloc[0]}"))
    console.print(f"{added:,} new outcome(s) recorded" + ("" if added else " (all already recorded)"))


@app.command()
def purge(
    before: Annotated[Optional[datetime], typer.Option("--before", formats=["%Y-%m-%d"], help="Remove decisions scored before this date (default: today minus serving.decision_log_retention_days).")] = None,
    decision_log: DecisionLogOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Apply the retention period: delete the decisions scored before --before with their outcomes,
    campaign assignments and audit attributes, in one transaction, and record the purge (time,
    cut-off, counts, operating-system user) in the log's `purges` table, which is never purged. On
    PostgreSQL the append-only triggers let only this through. Needs no secret."""
    from nonrecours.app.outreach import today
    from nonrecours.serving.decision_log import purge as purge_log

    settings, env = _settings(config), Environment.from_os()
    cut = before.date() if before else today() - pd.Timedelta(days=settings.serving.decision_log_retention_days)
    url = appl.decision_log_url(decision_log, settings, env)
    receipt = _run(appl.on_log_tables, purge_log, url, datetime(cut.year, cut.month, cut.day), by=env.user)
    console.print(f"purged {receipt.decisions:,} decision(s), {receipt.outcomes:,} outcome(s) and {receipt.assignments:,} campaign assignment(s) "
                  f"scored before {cut}; recorded in `purges` of {without_password(url)}")


agents_app = typer.Typer(help="Agents' accounts for the web page: one per agent, in a team (the campaigns they see).", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


@agents_app.command("add")
def agents_add(
    name: Annotated[str, typer.Argument(help="The agent's sign-in name (unique).")],
    team: Annotated[str, typer.Option("--team", help="The agent's team: they see the campaigns assigned to it.")],
    password_file: Annotated[Optional[Path], typer.Option("--password-file", help="Read the password from this file's first line (for scripts); default: asked twice, not echoed.",
                                                          exists=True, dir_okay=False)] = None,
    decision_log: DecisionLogOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create an agent's account in the decision log's database. The password (12 characters or
    more) is stored as an Argon2id hash, never in clear, and never printed."""
    from nonrecours.serving.agents import add_agent

    settings, env = _settings(config), Environment.from_os()
    password = password_file.read_text().splitlines()[0] if password_file else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    agent = _run(appl.on_log_tables, add_agent, appl.decision_log_url(decision_log, settings, env), name, team, password)
    console.print(f"agent {agent.name!r} (id {agent.id}) added to team {agent.team!r}")


@agents_app.command("list")
def agents_list(decision_log: DecisionLogOpt = None, config: ConfigOpt = None) -> None:
    """The agents' accounts: id, name, team (never a password or its hash)."""
    from nonrecours.serving.agents import list_agents

    settings, env = _settings(config), Environment.from_os()
    for agent in _run(appl.on_log_tables, list_agents, appl.decision_log_url(decision_log, settings, env)):
        typer.echo(f"{agent.id}\t{agent.name}\t{agent.team}")


@agents_app.command("assign")
def agents_assign(
    campaign_file: Annotated[Path, typer.Argument(help="The campaign file `nonrecours campaign` wrote (.csv or .parquet).", exists=True, dir_okay=False)],
    team: Annotated[str, typer.Option("--team", help="The team whose agents will see the campaign's contacted households.")],
    input: Annotated[Path, typer.Option("--input", help="The extract the campaign was made from (its folder): the households' territory and the law engine's inputs.",
                                        exists=True, file_okay=False)] = Path("demo"),
    decision_log: DecisionLogOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Give a campaign to a team: its contacted households (never the holdout) appear on the team's
    agents' caseload page, ranked as the campaign ranked them, each benefit with its legal basis
    computed now by OpenFisca-France on the extract."""
    from nonrecours.app.outreach import assign_campaign

    settings, env = _settings(config), Environment.from_os()
    cid, added = _run(assign_campaign, campaign_file, input, team, settings, appl.decision_log_url(decision_log, settings, env), quiet=quiet)
    console.print(f"campaign {cid}: {added:,} households to contact assigned to team {team!r}")


@agents_app.command("unassign")
def agents_unassign(
    campaign_id: Annotated[str, typer.Argument(help="The campaign's id (in its file's campaign_id column).")],
    team: Annotated[str, typer.Option("--team", help="The team to take it from.")],
    decision_log: DecisionLogOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Take a campaign off a team's caseload when its outreach is over (the outcomes recorded stay
    in the decision log)."""
    from nonrecours.serving.caseload import unassign

    settings, env = _settings(config), Environment.from_os()
    removed = _run(appl.on_log_tables, unassign, appl.decision_log_url(decision_log, settings, env), campaign_id, team)
    console.print(f"campaign {campaign_id}: {removed:,} households taken off team {team!r}'s caseload")


@app.command("grant-roles")
def grant_roles(
    service_role: Annotated[str, typer.Option("--service-role", help="PostgreSQL role the API and batch scoring connect as.")],
    monitoring_role: Annotated[str, typer.Option("--monitoring-role", help="PostgreSQL role `nonrecours monitor` and auditors connect as.")],
    decision_log: DecisionLogOpt = None,
    config: ConfigOpt = None,
) -> None:
    """PostgreSQL, once, as the tables' owner: let the service's role read and append the log and
    append audit attributes it can never read back, and the monitoring role read everything;
    revoke the rest from PUBLIC. Neither role can update or delete a row."""
    from nonrecours.serving.caseload import create_tables
    from nonrecours.serving.decision_log import grant_roles as grant

    settings, env = _settings(config), Environment.from_os()
    url = appl.decision_log_url(decision_log, settings, env)
    _run(appl.on_log_tables, create_tables, url)  # the agents' page's tables, so that the grants cover them
    _run(appl.on_log_tables, grant, url, service=service_role, monitoring=monitoring_role)
    console.print(f"granted: {service_role} scores and records outcomes, {monitoring_role} reads the audit attributes ({without_password(url)})")


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        console.print(text)


def _print_worklist(table: pd.DataFrame, model_name: str, model_version: str, shown: int = 5, *, quiet: bool = False) -> None:
    if quiet:
        return
    top = table.drop_duplicates("household_id").head(shown)
    console.print(_frame_table(top[["rank", "household_id", "benefit", "p_unclaimed", "expected_unclaimed_monthly"]],
                               f"Worklist: {table['household_id'].nunique():,} households, first five (model {model_name} v{model_version})"))


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
    moved and swaps the new version in without a restart. Workers, request limits and batching
    come from the settings (--config). Example request: serving/examples/households.json.
    """
    from nonrecours.app.service import serve_command

    settings, env = _settings(config), Environment.from_os()
    command = _run(serve_command, settings, env, port=port, host=host, config=config, secrets_file=secrets,
                   tracking_uri=appl.tracking_uri(tracking_uri, settings, env), decision_log_url=appl.decision_log_url(decision_log, settings, env))
    console.print(f"scoring API on http://{host}:{port} (decision log: {without_password(command.decision_log_url)}, registry: {without_password(command.tracking_uri)})")
    os.execvpe(command.args[0], command.args, command.env)


def _log_access(decision_log: str | None, secrets: Path | None, settings, env: Environment) -> appl.LogAccess:
    return appl.LogAccess(appl.decision_log_url(decision_log, settings, env), secrets, env)


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
    `monitoring` and `fairness` settings; for a decision-log window, the outcomes agents recorded
    per group. Prints a verdict and exits 1 when a threshold is breached (0 when none is, 2 on bad
    input), so a scheduler can alert. The report is also logged to the champion's MLflow run."""
    settings, env = _settings(config, law__workers=workers), Environment.from_os()
    report, page, index = _run(appl.monitor, reference, current, out, settings, appl.tracking_uri(tracking_uri, settings, env), since=since, until=until,
                               log=_log_access(decision_log, secrets, settings, env), quiet=quiet)
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
    settings, env = _settings(config), Environment.from_os()
    for path in _run(appl.write_cards, out, version, settings, appl.tracking_uri(tracking_uri, settings, env)):
        typer.echo(str(path))


@app.command()
def pipeline(
    households: HouseholdsOpt = None,
    seed: SeedOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for every output of the run.")] = Path("demo"),
    tracking_uri: TrackingOpt = None,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run the whole pipeline on the embedded defaults, in one folder: generate (two quarters: OUT
    and OUT/next_quarter) -> entitlements -> features (both quarters) -> train (tested on the
    held-out households and on the same ones next quarter, with the promotion gate) -> score (worklist.csv, decision log
    decisions.db, secrets in secrets.env) -> monitor two more windows against it: a fresh draw
    (the next seed, in fresh/) and the same households with a third of them paid 30% less
    (shifted/), in reports/index.html -> two rounds of outreach: a campaign from the champion
    (campaign.csv), the field played, a retrain on observed labels only, a campaign on the next
    quarter ranked by its uplift model, the field; each round's additional euros printed. Ends with
    how to open the MLflow UI and call the API."""
    settings, env = _settings(config, scenario__households=households, scenario__seed=seed), Environment.from_os()
    common = dict(scheduler=scheduler, workers=workers, config=config, quiet=quiet)
    generate(households=households, seed=seed, out=out, observed_benefits=None, quarters=None, reference_month=None, partition_size=None, **common)
    for quarter in appl.quarter_folders(out):
        entitlements(input=quarter, out=quarter, reference_month=None, partition_size=None, **common)
        features(input=quarter, out=quarter)
    train(input=out, next_quarter=None, tracking_uri=tracking_uri, scheduler=None, config=config, quiet=quiet)
    uri = appl.tracking_uri(tracking_uri, settings, env)
    secrets_file, log_url = out / "secrets.env", f"sqlite:///{(out / 'decisions.db').resolve()}"
    keys(out=secrets_file)
    try:
        appl.load_champion(settings, uri)
    except appl.AppError:  # a small population can leave the first model a challenger: no model to score with
        console.print(f"[bold yellow]no worklist[/]: no {settings.registry.model_name}@{settings.serving.model_alias} yet (the gate kept this model a challenger); "
                      "promote one with `nonrecours promote`, then run `nonrecours score`")
    else:
        score(input=out, out=out / "worklist.csv", capacity=None, min_probability=0.0, tracking_uri=tracking_uri, decision_log=log_url, secrets=secrets_file, no_log=False, **common)
        _pipeline_monitoring(out, settings.scenario, tracking_uri=tracking_uri, log_url=log_url, secrets_file=secrets_file, **common)
        _pipeline_rounds(out, settings, tracking_uri=tracking_uri, log_url=log_url, secrets_file=secrets_file, **common)
    _print_next_steps(out, uri, tracking_uri, secrets_file, log_url)
    _print_web_page(out, settings, log_url)


def _pipeline_rounds(out: Path, settings: Settings, *, tracking_uri, log_url: str, secrets_file: Path, scheduler, workers, config, quiet) -> None:
    """Two rounds of outreach: a campaign from the champion, the field, a retrain on observed
    labels only, then a campaign ranked by its uplift model on the next quarter, and the field."""
    from nonrecours.app.outreach import play_field, read_campaign_file, round_gain, today, train_observed

    env = Environment.from_os()
    log = _run(appl.open_decision_log, log_url, secrets_file, env)
    uri = appl.tracking_uri(tracking_uri, settings, env)
    links = dict(tracking_uri=tracking_uri, decision_log=log_url, secrets=secrets_file, scheduler=scheduler, workers=workers, config=config, quiet=True)
    run_id = None
    for i, (folder, ranking) in enumerate(((out, "champion"), (out / appl.NEXT_QUARTER, "uplift")), start=1):
        if not (folder / "households.parquet").exists():
            break
        campaign(input=folder, out=folder / "campaign.csv", capacity=None, holdout=None, exploration=None, seed=settings.scenario.seed + i, ranking=ranking,
                 model_run=run_id if ranking == "uplift" else None, **links)
        table = _run(read_campaign_file, folder / "campaign.csv")
        _run(play_field, folder, table, log, outcome_date=today())
        gain = _run(round_gain, folder, table)
        said = f"round {i} ({ranking}): {int(table['contacted'].sum()):,} contacts"
        if gain is not None:
            said += f" caused {gain.value:,.0f} EUR a month of claims (simulation, 90% interval {gain.low:,.0f} to {gain.high:,.0f})"
        if i == 1:
            try:
                result = train_observed(folder, str(table["campaign_id"].iloc[0]), log, settings, uri, next_extract=None, quiet=True, user=env.user)
            except appl.AppError as exc:  # a small population's campaign may give too few labels to learn from
                console.print(f"{said}; no retrain on observed labels: {exc}", soft_wrap=True)
                break
            run_id, h = result.run_id, result.holdout
            said += f"; the agency's holdout estimate: {h.value:+,.2f} EUR a month per contact (90% interval {h.low:+,.2f} to {h.high:+,.2f}); retrained on observed labels: run {run_id}, {settings.registry.outreach_model_name} version {result.version} {result.decision.alias} by the gate"
        else:
            said += "; the agency's holdout estimate needs the following quarter's extract"
        console.print(said, soft_wrap=True)


def _pipeline_monitoring(out: Path, scenario: ScenarioConfig, *, tracking_uri, log_url: str, secrets_file: Path, scheduler, workers, config, quiet) -> None:
    """Two more windows monitored against ``out``: a fresh draw (the next seed, outcomes known) and
    the same households after a pay cut (outcomes unknown: the truth drawn before the cut no
    longer holds)."""
    fresh, shifted, reports = out / "fresh", out / "shifted", out / "reports"
    generate(households=scenario.households, seed=scenario.seed + 1, out=fresh, observed_benefits=None, quarters=1, reference_month=None, scheduler=scheduler, workers=workers, partition_size=None, config=config, quiet=True)
    _run(appl.write_shifted_copy, fresh, shifted)
    for current, expected in ((fresh, "another draw of the same population: expected to pass"), (shifted, "a third of these households lost 30% of their pay: drift is expected")):
        console.print(f"monitoring {current} against {out} ({expected})")
        try:
            monitor(reference=str(out), current=str(current), out=reports, since=None, until=None, tracking_uri=tracking_uri, decision_log=log_url, secrets=secrets_file,
                    workers=workers, config=config, quiet=quiet)
        except typer.Exit as verdict:
            if verdict.exit_code != 1:
                raise
    console.print(f"monitoring reports: {(reports / 'index.html').resolve()}")


def _print_next_steps(out: Path, uri: str, tracking_uri: str | None, secrets_file: Path, log_url: str) -> None:
    console.print(f"[bold green]done[/]: everything is in {out.resolve()} (worklist: {out / 'worklist.csv'})")
    console.print(f"open the MLflow UI with:  .venv/bin/mlflow ui --backend-store-uri {uri} --port 5000")
    console.print(f"start the scoring API with:  .venv/bin/nonrecours serve --secrets {secrets_file} --decision-log {log_url}" + (f" --tracking-uri {uri}" if tracking_uri else ""), soft_wrap=True)
    console.print(
        f"then score the example:  curl -s -X POST localhost:3000/score -H \"Authorization: Bearer $(grep API_KEYS {secrets_file} | cut -d= -f2)\" "
        "-H 'Content-Type: application/json' -d @serving/examples/households.json",
        soft_wrap=True,
    )


def _print_web_page(out: Path, settings: Settings, log_url: str) -> None:
    """The agents' page of the demo: the newest campaign given to team "demo", and its agent."""
    from nonrecours.app.outreach import demo_agent

    made = _run(demo_agent, out, settings, log_url)
    if made is None:
        console.print("no campaign was made, so the agents' page has nothing to show yet (`nonrecours campaign`, then `nonrecours agents assign`)")
        return
    name, password, cid = made
    console.print(f"agents' web page (once the API is started as above): http://localhost:3000/agents/  (campaign {cid})")
    console.print(f"sign in as:  {name}  with password  {password}  (also in {out / 'demo-agent.txt'})", soft_wrap=True)


@app.command()
def schema() -> None:
    """Print the data contract (every table, column, type, role, unit and meaning) as Markdown."""
    from nonrecours.core.schema import to_markdown

    typer.echo(to_markdown())


@app.command()
def mlproject() -> None:
    """Print the MLproject file, its parameters' defaults taken from the settings (the committed
    MLproject must equal it; a test checks)."""
    from nonrecours.app.mlproject import render

    typer.echo(render(), nl=False)
