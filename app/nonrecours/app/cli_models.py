"""The commands of the models: ``train`` (on the simulation's truth, or on what an agency observes),
``promote``, ``card`` and ``monitor``.

Where it sits: the command line (:mod:`nonrecours.app.cli`); the pipeline runs the same steps.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from nonrecours.app.commands import InputOpt, WorkersOpt, command, console, fail, frame_table, say
from nonrecours.app.stores import Run
from nonrecours.monitoring.cards import write_cards
from nonrecours.monitoring.report import MonitoringReport
from nonrecours.monitoring.run import monitor as monitor_windows
from nonrecours.serving.outreach import campaign_labels
from nonrecours.serving.windows import check_source, scored_window, window_label
from nonrecours.training.outreach import train_observed
from nonrecours.training.registry import load_champion
from nonrecours.training.registry import promote as promote_version
from nonrecours.training.train import next_quarter_data, train_folder, training_data

STORES = ("tracking_uri", "decision_log", "secrets")
CHAMPION, CHALLENGER = "[bold green]champion[/]", "[bold yellow]challenger[/]"


NextQuarter = Annotated[
    Path | None,
    typer.Option(
        help="A later quarter of the same households (profiles and outcomes): the model "
        "is also tested on its test households. Default: INPUT/next_quarter when it holds profiles."
    ),
]
TrainScheduler = Annotated[
    str | None,
    typer.Option(
        help="Dask scheduler address: train with lightgbm.dask there (the local run still finds the number of rounds)."
    ),
]
Labels = Annotated[
    str,
    typer.Option(
        help="`truth`: the simulation's outcomes.parquet (the oracle model). `observed`: what an agency holds: "
        "a campaign's recorded outcomes (--campaign) and the next extract's claims; no truth file is read."
    ),
]
CampaignId = Annotated[
    str | None, typer.Option(help="With --labels observed: the campaign id (the campaign file's campaign_id).")
]
NextExtract = Annotated[
    Path | None, typer.Option(help="With --labels observed: the next quarter's extract (default: INPUT/next_quarter).")
]


@command(wants=("quiet", *STORES))
def train(
    run: Run,
    input: InputOpt = Path("demo"),
    next_quarter: NextQuarter = None,
    scheduler: TrainScheduler = None,
    labels: Labels = "truth",
    campaign: CampaignId = None,
    next_extract: NextExtract = None,
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
    if labels == "truth":
        step_train(run, input, next_quarter, scheduler)
        return
    if labels != "observed":
        fail(f"--labels {labels!r}: expected `truth` or `observed`")
    if campaign is None:
        fail(
            "--labels observed needs --campaign ID: the campaign whose outcomes to learn from (its id is in "
            "the campaign file)"
        )
    step_train_observed(run, input, campaign, next_extract)


def step_train(run: Run, folder: Path, next_quarter: Path | None = None, scheduler: str | None = None) -> str:
    profiles, outcomes = training_data(folder)
    later = next_quarter_data(folder, next_quarter)
    say(
        run, f"training on {profiles['household_id'].nunique():,} households ({len(profiles):,} household-benefit rows)"
    )
    result = train_folder(
        folder, profiles, outcomes, run.settings, run.training_run(), scheduler=scheduler, next_quarter=later
    )
    if not run.quiet:
        for title, table in result.quality.items():
            console.print(frame_table(table, title))
    verdict = CHAMPION if result.decision.promoted else CHALLENGER
    console.print(
        f"{run.settings.registry.model_name} version {result.version} -> {verdict}: "
        + "; ".join(result.decision.reasons)
    )
    typer.echo(f"run {result.run_id}")
    return result.run_id


def step_train_observed(run: Run, folder: Path, campaign_id: str, next_extract: Path | None):
    later = next_extract or folder / "next_quarter"
    result = train_observed(
        campaign_labels(run.log, campaign_id, later),
        run.settings,
        run.tracking_uri,
        next_folder=later,
        user=run.env.user,
    )
    h, o = result.holdout, result.off_policy
    console.print(
        f"observed labels: {len(result.rows):,} household-benefit rows ({result.models.n_contacted:,} contacted, "
        f"{result.models.n_control:,} not)"
    )
    console.print(
        f"campaign's holdout effect: {h.value:+,.2f} EUR a month per contacted household (90% interval {h.low:+,.2f} "
        f"to {h.high:+,.2f}; {h.n:,} households)"
    )
    console.print(
        f"uplift ranking, off-policy (IPW) estimate of its additional euros a month: {o.value:,.0f} (90% interval "
        f"{o.low:,.0f} to {o.high:,.0f}; {o.n:,} covered households)"
    )
    verdict = CHAMPION if result.decision.promoted else CHALLENGER
    console.print(
        f"{run.settings.registry.outreach_model_name} version {result.version} -> {verdict} (gate on the off-policy "
        "estimates): " + "; ".join(result.decision.reasons),
        soft_wrap=True,
    )
    if result.simulation is not None and not run.quiet:
        console.print(
            frame_table(
                result.simulation.table,
                "Simulation only, next quarter's truth (not used by the gate): additional "
                "euros a month each policy's contacts cause",
            )
        )
    typer.echo(f"run {result.run_id}")
    return result


@command(wants=("tracking_uri",))
def promote(
    run: Run,
    version: Annotated[str, typer.Option(help="Registered model version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why the gate is overridden (required; recorded for auditors).")],
) -> None:
    """Force a version to `champion`, whatever the gate said. The reason is recorded as tags on the
    version and in the append-only promotion log."""
    entry, log = promote_version(run.settings.registry, run.tracking_uri, version, reason, user=run.env.user)
    console.print(
        f"{entry['model']} version {entry['version']} is now champion (forced; previous: "
        f"{entry['previous_champion']}); "
        f"recorded in {log}"
    )


@command(wants=("tracking_uri",))
def card(
    run: Run,
    out: Annotated[Path, typer.Option(help="Folder to write model_card_v<N>.md and notice_v<N>.md into.")] = Path(
        "reports/cards"
    ),
    version: Annotated[str | None, typer.Option(help="One registered version; default: every version.")] = None,
) -> None:
    """For each registered version: the model card (from its training run) and the public notice
    of the algorithm in French (CRPA L312-1-3): purpose, data used, main parameters and their
    weights, excluded uses, how a person asks for the explanation of their own score."""
    for path in write_cards(out, version, run.settings, run.tracking_uri):
        typer.echo(str(path))


Source = (
    "a folder of raw tables (individuals/households, with outcomes.parquet when known), `log` (the "
    "decision log between --since and --until) or `log:START..END` (e.g. log:2026-10-01..2026-11-01)"
)


@command(wants=("quiet", *STORES))
def monitor(
    run: Run,
    reference: Annotated[str, typer.Option(help=f"Reference window: {Source}.")],
    current: Annotated[str, typer.Option(help="Current window, as for --reference.")],
    out: Annotated[
        Path,
        typer.Option(help="Folder of reports: report-<time>.html and .json, and index.html listing them all."),
    ] = Path("reports"),
    since: Annotated[datetime | None, typer.Option(help="Start of the decision-log window (with `log`).")] = None,
    until: Annotated[
        datetime | None, typer.Option(help="End of the decision-log window, excluded (with `log`).")
    ] = None,
    workers: WorkersOpt = None,
) -> None:
    """Drift (Evidently), fairness (fairlearn) and, where outcomes are known, classification
    quality (Evidently) of the champion between two windows, against the thresholds of the
    `monitoring` and `fairness` settings; for a decision-log window, the outcomes agents recorded
    per group. Prints a verdict and exits 1 when a threshold is breached (0 when none is, 2 on bad
    input), so a scheduler can alert. The report is also logged to the champion's MLflow run."""
    if step_monitor(run, reference, current, out, since, until).failures:
        raise typer.Exit(code=1)


def step_monitor(run: Run, reference: str, current: str, out: Path, since=None, until=None) -> MonitoringReport:
    for source in (reference, current):  # both checked before either is scored
        check_source(source, since, until)
    champion = load_champion(run.settings.registry, run.tracking_uri, alias=run.settings.serving.model_alias)
    assert champion is not None  # no unless_version was given
    windows = [
        scored_window(s, champion, run.settings, since=since, until=until, open_log=lambda: run.log, quiet=run.quiet)
        for s in (reference, current)
    ]
    names = (window_label(reference, since, until), window_label(current, since, until))
    report, page, index = monitor_windows(
        *windows, names=names, champion=champion, settings=run.settings, uri=run.tracking_uri, out=out
    )
    colour = "green" if report.verdict == "pass" else "red"
    console.print(
        f"[bold {colour}]{report.verdict.upper()}[/]: " + ("; ".join(report.failures) or "no threshold breached")
    )
    console.print(f"report: {page}\nindex:  {index}")
    typer.echo(str(index))
    return report
