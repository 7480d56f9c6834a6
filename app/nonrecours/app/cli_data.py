"""The commands that make a population's folder: ``generate``, ``entitlements``, ``features``, and the
contract's own (``schema``, ``mlproject``).

Where it sits: the command line (:mod:`nonrecours.app.cli`); the pipeline runs the same steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nonrecours.app.commands import (
    InputOpt,
    MonthOpt,
    OutDirOpt,
    WorkersOpt,
    app,
    command,
    console,
    frame_table,
    setting,
)
from nonrecours.app.stores import Run
from nonrecours.core.io import check_members, read_extract, read_tables, write_table
from nonrecours.core.schema import ENTITLEMENTS, HOUSEHOLDS, INDIVIDUALS, PROFILES, to_markdown
from nonrecours.data.folders import next_quarter, with_population_month, write_population
from nonrecours.data.summary import calibration_tables
from nonrecours.features.profiles import build_profiles
from nonrecours.law.parameters import load_law_parameters
from nonrecours.law.situation import entitlements_from_observed
from nonrecours.serving.outreach import read_campaign_file
from nonrecours.training.train import truth_agreement

WANTS = ("quiet", "scheduler")
Partition = Annotated[int | None, setting("law", "partition_size", "--partition-size")]


@command(wants=WANTS)
def generate(
    run: Run,
    households: Annotated[int | None, setting("scenario", "households", "--households", "-n")] = None,
    seed: Annotated[int | None, setting("scenario", "seed")] = None,
    out: Annotated[
        Path, typer.Option(help="Folder to write individuals, households and outcomes Parquet files into.")
    ] = Path("demo"),
    observed_benefits: Annotated[str | None, setting("scenario", "observed_benefits")] = None,
    quarters: Annotated[int | None, setting("scenario", "quarters")] = None,
    reference_month: MonthOpt = None,
    workers: WorkersOpt = None,
    partition_size: Partition = None,
    calibration: Annotated[Path | None, setting("scenario", "calibration", exists=True, dir_okay=False)] = None,
) -> None:
    """Draw a synthetic population over consecutive quarters: the extracts an agency would hold,
    and the truth; with --calibration, in a territory's own world.

    Per quarter (the current one in --out, the next in OUT/next_quarter; `scenario.quarters`):
    individuals.parquet and households.parquet (the agency's extract: what it holds depends on
    what it pays), outcomes.parquet (true eligibility and amount, claim status and what is paid,
    claim probability, reason for not claiming, potential outcomes of a contact), calibration.json
    (the population next to the published figures it is tuned to, printed here) and world.yaml (the
    whole calibration it was drawn with: the shipped one, or --calibration merged over it).
    """
    step_generate(run, out)


def step_generate(run: Run, out: Path) -> list[Path]:
    population, paths = write_population(run.settings, out, scheduler=run.scheduler, quiet=run.quiet)
    if not run.quiet:
        summary = population.summary
        for title, table in calibration_tables(summary).items():
            console.print(frame_table(table, title))
        auc, over = summary["claim_auc"]["overall"], summary["overpayments"]
        console.print(
            f"truth claim AUC within benefit {auc:.3f} (bound {summary['claim_auc_bound']}: published studies "
            "explain little of who claims)"
        )
        console.print(
            f"paid households no longer entitled: {over['by_benefit'].get('overall', {}).get('not_entitled_share')} "
            f"({over['note']}); claims pending {over['pending']:,}, refused {over['refused']:,}"
        )
        console.print(
            f"poverty rate {summary['poverty_rate']:.1%} (INSEE: about {summary['poverty_rate_target']:.1%}); "
            "sources: calibration.json and data/nonrecours/data/calibration.yaml"
        )
    for path in paths:
        typer.echo(str(path))
    return paths


@command(name="next-quarter", wants=WANTS)
def next_quarter_command(
    run: Run,
    input: InputOpt = Path("demo"),
    out: Annotated[
        Path, typer.Option(help="Folder to write the next quarter into (a complete quarter folder).")
    ] = Path("demo/next"),
    campaign: Annotated[
        Path | None,
        typer.Option(
            help="The campaign played this quarter (`nonrecours "
            "campaign`'s file): "
            "the claims its contacts caused show in the next extract.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    workers: WorkersOpt = None,
) -> None:
    """Simulation only: draw the quarter after the one in --input, from its state (state/) and its
    own calibration (world.yaml): three months on, people aged (a year on their birthday quarter),
    situations changed, households left and arrived (the others keep their ids and their own
    draws), and the claims of last quarter, those the campaign's contacts caused included.
    Reproducible: the draws carry on from --input's."""
    contacted = [] if campaign is None else read_campaign_file(campaign).query("contacted")["household_id"].tolist()
    _, paths = next_quarter(input, out, run.settings, contacted=contacted, scheduler=run.scheduler, quiet=run.quiet)
    for path in paths:
        typer.echo(str(path))


@command(wants=WANTS)
def entitlements(
    run: Run,
    input: InputOpt = Path("demo"),
    out: OutDirOpt = None,
    reference_month: MonthOpt = None,
    workers: WorkersOpt = None,
    partition_size: Partition = None,
) -> None:
    """Compute eligibility and monthly amounts with OpenFisca-France on the observed tables
    (individuals.parquet and households.parquet in --input).

    Writes entitlements.parquet (household_id, benefit, eligible, monthly_amount). A synthetic
    population's own month is used unless --reference-month or --config sets one. When the
    folder also holds outcomes.parquet (a synthetic population), prints how often the law engine
    on observed data agrees with the truth.
    """
    step_entitlements(run, input, out or input)


def step_entitlements(run: Run, folder: Path, out: Path) -> Path:
    individuals, households = read_extract(folder)
    check_members(individuals, households, folder)
    law = with_population_month(run.settings, folder).law
    result = entitlements_from_observed(
        individuals, households, law=law, css=load_law_parameters().css, scheduler=run.scheduler, quiet=run.quiet
    )
    path = write_table(result, out, ENTITLEMENTS)
    check = truth_agreement(folder, result)
    if check is not None and not run.quiet:
        console.print(frame_table(check, "Law engine on observed data vs the truth (eligible households)"))
    typer.echo(str(path))
    return path


@command()
def features(run: Run, input: InputOpt = Path("demo"), out: OutDirOpt = None) -> None:
    """Build household profiles (profiles.parquet): one row per household and benefit, from the
    observed tables and entitlements.parquet in --input. No label is read. Protected attributes
    stay in the table for auditing and never reach the model."""
    step_features(input, out or input)


def step_features(folder: Path, out: Path) -> Path:
    hint = f" (run `nonrecours entitlements --input {folder}` first)"
    tables = read_tables(folder, INDIVIDUALS, HOUSEHOLDS, ENTITLEMENTS, hint=hint)
    path = write_table(build_profiles(*tables), out, PROFILES)
    typer.echo(str(path))
    return path


@app.command()
def schema() -> None:
    """Print the data contract (every table, column, type, role, unit and meaning) as Markdown."""
    typer.echo(to_markdown())


@app.command()
def mlproject() -> None:
    """Print the MLproject file, its parameters' defaults taken from the settings (the committed
    MLproject must equal it; a test checks)."""
    from nonrecours.app.mlproject import render

    typer.echo(render(), nl=False)
