"""The commands of outreach: ``score`` (a ranked worklist), ``campaign`` (whom to contact, with a
randomised holdout) and ``outreach`` (the field, in simulation).

Where it sits: the command line (:mod:`nonrecours.app.cli`); the pipeline runs the same steps.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from nonrecours.app.commands import InputOpt, WorkersOpt, command, console, frame_table, say, setting
from nonrecours.app.stores import Run
from nonrecours.core.io import frame_path, read_extract, write_frame
from nonrecours.serving.campaign import campaign_summary
from nonrecours.serving.loop import ROUND_COLUMNS, LoopPlan, SimulatedField, tracked_loop
from nonrecours.serving.outreach import CampaignResult, play_field, read_campaign_file, run_campaign
from nonrecours.serving.ranking import log_batch, rank_extract, worklist_of

ALL = ("quiet", "tracking_uri", "decision_log", "secrets", "scheduler")
RankingOpt = Annotated[str | None, setting("campaign", "ranking", "--ranking")]
ModelRunOpt = Annotated[
    str | None,
    typer.Option(
        "--model-run",
        help="With --ranking need or uplift: an MLflow run of `train --labels "
        "observed` (default: the outreach models' @champion).",
    ),
]
SHOWN = 5
"""Households of the worklist printed."""


def today() -> date:
    return datetime.now(UTC).date()


@command(wants=ALL)
def score(
    run: Run,
    input: InputOpt = Path("demo"),
    out: Annotated[
        Path,
        typer.Option(help="Worklist to write: .csv or .parquet (written to a temporary name, then renamed)."),
    ] = Path("demo/worklist.csv"),
    capacity: Annotated[
        int | None,
        typer.Option(min=1, help="Keep the first K households (what the team can contact); default: all."),
    ] = None,
    min_probability: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Drop rows with p_unclaimed below this (households stay ranked on all their benefits).",
        ),
    ] = 0.0,
    workers: WorkersOpt = None,
    no_log: Annotated[
        bool,
        typer.Option(
            help="Do not write the decision log (for a dry run only: agents must not work from an unlogged list).",
        ),
    ] = False,
    ranking: RankingOpt = None,
    model_run: ModelRunOpt = None,
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
    step_score(
        run, input, out, capacity=capacity, min_probability=min_probability, logged=not no_log, model_run=model_run
    )


def step_score(
    run: Run,
    folder: Path,
    out: Path,
    *,
    capacity: int | None = None,
    min_probability: float = 0.0,
    logged: bool = True,
    model_run: str | None = None,
) -> Path:
    frame_path(out)
    log = run.log if logged else None
    individuals, households = read_extract(folder)
    ranked = rank_extract(
        individuals,
        households,
        run.settings,
        run.tracking_uri,
        ranking=run.settings.campaign.ranking,
        scheduler=run.scheduler,
        quiet=run.quiet,
        model_run=model_run,
        explain_all=capacity is None,
    )
    scored, table = worklist_of(ranked, capacity=capacity, min_probability=min_probability)
    if log is not None:
        n = log_batch(log, scored, ranked, individuals, households, run.settings)
        say(run, f"decision log: {n:,} households scored by {ranked.model_name} version {ranked.model_version}")
    write_frame(table, out)
    if not run.quiet:
        top = table.drop_duplicates("household_id").head(SHOWN)
        title = (
            f"Worklist: {table['household_id'].nunique():,} households, first five (model "
            f"{ranked.model_name} v{ranked.model_version})"
        )
        console.print(
            frame_table(top[["rank", "household_id", "benefit", "p_unclaimed", "expected_unclaimed_monthly"]], title)
        )
    typer.echo(str(out))
    return out


@command(wants=ALL)
def campaign(
    run: Run,
    input: InputOpt = Path("demo"),
    out: Annotated[
        Path,
        typer.Option(
            help="Campaign file to write: .csv or .parquet (every campaign household with its arm, propensity "
            "and decision id).",
        ),
    ] = Path("demo/campaign.csv"),
    capacity: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Contacts the team can make. Default: training.capacity_share of the extract's households.",
        ),
    ] = None,
    holdout: Annotated[float | None, setting("campaign", "holdout_share")] = None,
    exploration: Annotated[float | None, setting("campaign", "exploration_share")] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the holdout and exploration draws (recorded with the campaign).")
    ] = 0,
    ranking: RankingOpt = None,
    model_run: ModelRunOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Pick the households to contact from the current extract, with a randomised holdout.

    The extract is ranked (the champion model, or the rules at cold start); contacts go to the top
    of the ranking but a random share of it (--holdout, drawn within rank strata), which is not
    contacted so that the campaign's effect can be measured; a share of the contacts
    (--exploration) goes at random to households below the cut that the law engine finds eligible,
    so the next model does not learn only from this one's choices. Every campaign household is
    logged (decision log) with its arm, stratum and probability of contact. Agents contact the
    rows whose `contacted` is true; `nonrecours outreach` plays them in simulation."""
    step_campaign(run, input, out, capacity=capacity, seed=seed, model_run=model_run)


def step_campaign(
    run: Run, folder: Path, out: Path, *, capacity: int | None = None, seed: int = 0, model_run: str | None = None
) -> CampaignResult:
    frame_path(out)
    result = run_campaign(
        folder,
        capacity,
        seed,
        run.settings,
        run.tracking_uri,
        run.log,
        ranking=run.settings.campaign.ranking,
        scheduler=run.scheduler,
        quiet=run.quiet,
        model_run=model_run,
    )
    write_frame(result.table, out)
    cid = result.table["campaign_id"].iloc[0]
    title = f"Campaign {cid}: {result.capacity:,} contacts, ranked by {result.model_name} v{result.model_version}"
    if not run.quiet:
        console.print(frame_table(campaign_summary(result.table), title))
    console.print(
        f"campaign {cid}: {int(result.table['contacted'].sum()):,} households to contact, logged in the decision log"
    )
    typer.echo(str(out))
    return result


@command(wants=("decision_log", "secrets"))
def outreach(
    run: Run,
    input: InputOpt = Path("demo"),
    campaign: Annotated[Path, typer.Option(help="The campaign file `nonrecours campaign` wrote.")] = Path(
        "demo/campaign.csv"
    ),
    outcome_date: Annotated[
        datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="Date of the outcomes (default: today).")
    ] = None,
) -> None:
    """Simulation only: play the field for a campaign. For each contacted household and each
    benefit the campaign lists for it, what an agent would record — unreachable, right opened
    (with the amount), not entitled after checking, declined, already receiving — from the truth's
    potential outcomes (--input's outcomes.parquet), recorded through the same code as POST
    /outcomes. Running it twice records nothing new (idempotency keys)."""
    table = read_campaign_file(campaign)
    before = len(run.log.read_outcomes())
    records = play_field(input, table, run.log, outcome_date=outcome_date.date() if outcome_date else today())
    added = len(run.log.read_outcomes()) - before
    counts: pd.DataFrame = records["result"].value_counts().rename_axis("result").reset_index(name="household-benefits")
    console.print(frame_table(counts, f"Field outcomes of campaign {table['campaign_id'].iloc[0]}"))
    console.print(f"{added:,} new outcome(s) recorded" + ("" if added else " (all already recorded)"))


@command(wants=ALL)
def loop(
    run: Run,
    input: InputOpt = Path("demo"),
    rounds: Annotated[int, typer.Option(min=1, help="Quarters to play, one campaign each.")] = 3,
    capacity: Annotated[
        int | None,
        typer.Option(min=1, help="Contacts per round, exploration included (K); default: training.capacity_share."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the campaigns' random arms and of the learners.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder of the loop: OUT/round-N/ per round.")] = Path("demo/loop"),
    resume: Annotated[bool, typer.Option(help="Carry on a loop in --out after its last complete round.")] = False,
) -> None:
    """Simulation: R quarters of what an agency does, from the quarter in --input: rank, design a
    campaign of K contacts (holdout and exploration included), log it, play the field, draw the next
    quarter, learn a correction of the prior (the champion, else the rules) from every round's
    outcomes, and let the gate keep or replace the ranking in play. Prints a line per round, and
    logs the table, a plot and each round's models to MLflow; OUT/round-N/ is each quarter's folder."""
    k = capacity or max(1, round(run.settings.training.capacity_share * len(read_extract(input)[1])))
    step_loop(run, LoopPlan(input, out, rounds, k, seed, run.settings.loop.learners), resume=resume)


def step_loop(run: Run, plan: LoopPlan, *, resume: bool) -> None:
    fld = SimulatedField(run.settings, today(), plan.seed, run.scheduler)
    result, run_id = tracked_loop(
        plan, run.settings, run.tracking_uri, run.log, fld, resume=resume, scheduler=run.scheduler, say=console.print
    )
    table = result.table
    shown = [c for c in (*ROUND_COLUMNS, "true played", "true rules alone", "true prior alone") if c in table.columns]
    console.print(frame_table(table[shown], f"The loop in {plan.out} ({plan.capacity:,} contacts a round)"))
    console.print(f"MLflow run {run_id}: the table (loop/rounds.json) and its plot (loop/rounds.png)")
