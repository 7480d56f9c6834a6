"""A synthetic population on disk: one folder per quarter, each a complete input for every command.

Where it sits: between the generator (:mod:`nonrecours.data.generate`) and the commands that read a
population's folder. A population written to ``OUT`` keeps its later quarters inside the first one's
folder (``OUT/next_quarter``, ``OUT/next_quarter/next_quarter``...), each with the agency's extract,
the truth and ``calibration.json`` (the population beside the published figures, and the settings
it was drawn with, so that later commands use the population's own month).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from nonrecours.core.config import Settings
from nonrecours.core.errors import UserError
from nonrecours.core.io import read_extract, read_tables, write_json, write_table, write_text
from nonrecours.core.schema import (
    BENEFITS,
    HOUSEHOLDS,
    INDIVIDUALS,
    OUTCOMES,
    WORLD_HOUSEHOLDS,
    WORLD_PERSONS,
    WORLD_TRAITS,
)
from nonrecours.data.behaviour import BARRIERS, Traits
from nonrecours.data.calibration import (
    CalibrationError,
    calibration_of,
    check_calibration,
    read_calibration_overlay,
    shipped_calibration,
)
from nonrecours.data.generate import Claims, Population, QuarterData, World, advance, generate, law_engine
from nonrecours.data.shift import cut_pay

NEXT_QUARTER = "next_quarter"
"""The folder of a population's next quarter, inside the one before it."""
REPORT = "calibration.json"
STATE = "state"
"""The folder of a quarter that holds the simulator's state (truth), to draw the next quarter from."""
WORLD = "world.yaml"
"""The calibration a population was drawn with (the shipped one, or a territory's merged over it)."""


def quarter_folder(out: Path, index: int) -> Path:
    """The folder of quarter ``index`` (0: the current one) of a population written to ``out``."""
    for _ in range(index):
        out = out / NEXT_QUARTER
    return out


def quarter_folders(out: Path) -> list[Path]:
    """The quarters of a population written to ``out`` that exist on disk, the current one first."""
    folders = [out]
    while (folders[-1] / NEXT_QUARTER / f"{HOUSEHOLDS.name}.parquet").exists():
        folders.append(folders[-1] / NEXT_QUARTER)
    return folders


def write_population(
    settings: Settings, out: Path, *, scheduler: str | None, quiet: bool
) -> tuple[Population, list[Path]]:
    """Draw the population of ``settings.scenario`` and write each quarter's tables and calibration
    report into its folder; returns the population and the files written."""
    given = settings.scenario.calibration
    world = read_calibration_overlay(given) if given is not None else shipped_calibration()
    cal = calibration_of(world)
    pop = generate(
        settings.scenario.households, settings.scenario.seed, settings, cal, scheduler=scheduler, quiet=quiet
    )
    source = str(given) if given else "the shipped calibration.yaml"
    paths = []
    for i, quarter in enumerate(pop.quarters):
        paths += write_quarter(quarter, quarter_folder(out, i), settings, world, source=source)
    return pop, paths


def write_quarter(quarter: QuarterData, folder: Path, settings: Settings, world: dict, *, source: str) -> list[Path]:
    """One quarter's folder: the agency's extract, the truth, the calibration report (with the
    settings it was drawn with), the calibration (world.yaml) and the simulator's state."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        write_table(frame, folder, table)
        for frame, table in (
            (quarter.individuals, INDIVIDUALS),
            (quarter.households, HOUSEHOLDS),
            (quarter.outcomes, OUTCOMES),
        )
    ]
    law = settings.law.model_copy(update={"reference_month": quarter.reference_month})
    drawn_with = settings.model_copy(update={"law": law}).model_dump()
    paths.append(write_json({**quarter.summary, "settings": drawn_with}, folder / REPORT))
    paths.append(write_world(world, folder, source=source))
    assert quarter.world is not None  # the generator gives every quarter its state
    return paths + write_state(quarter.world, folder)


def next_quarter(
    folder: Path,
    out: Path,
    settings: Settings,
    *,
    contacted: Iterable[int] = (),
    scheduler: str | None = None,
    quiet: bool = False,
) -> tuple[QuarterData, list[Path]]:
    """The quarter after the one in ``folder``, drawn from its state and its own calibration, into
    ``out``: three months on, with the claims the contacts of ``contacted`` (household ids an agent
    reached or tried to) caused, and the same households (but those who left, and the new ones).
    Runs with the settings the population was drawn with; ``settings`` gives how the law engine
    runs (workers, partitions). Reproducible: the random draws carry on from the folder's state."""
    raw, source = folder_world(folder)
    report = generator_report(folder)
    if report is None:
        raise UserError(f"{folder}: no {REPORT}: not a synthetic population's quarter, it cannot be moved on")
    drawn = Settings.model_validate(report["settings"])
    drawn = drawn.model_copy(
        update={
            "law": drawn.law.model_copy(
                update={"workers": settings.law.workers, "partition_size": settings.law.partition_size}
            )
        }
    )
    world = read_state(folder)
    cal = calibration_of(raw)
    mask = np.isin(world.ids, np.fromiter(contacted, dtype=np.int64))
    engine = law_engine(drawn, scheduler=scheduler, quiet=quiet)
    scenario = drawn.scenario
    _, quarter = advance(
        world,
        drawn,
        cal,
        engine,
        contacted=mask,
        n_households=scenario.households,
        seed=scenario.seed,
        scheduler=scheduler,
        quiet=quiet,
    )
    return quarter, write_quarter(quarter, out, drawn, raw, source=source)


def write_state(world: World, folder: Path) -> list[Path]:
    """``folder/state/``: the simulator's state at the end of the quarter in ``folder`` (its true
    people and households, each household's own draws, the barriers' intercepts and where the
    random draws stand), from which :func:`next_quarter` draws the next one. The claims and the
    potential outcomes are the quarter's ``outcomes.parquet``. All of it is truth."""
    state = folder / STATE
    traits = {"household_id": world.ids, **{f"know_{b}": world.traits.know[:, j] for j, b in enumerate(BENEFITS)}}
    traits |= {name: getattr(world.traits, name)[:, 0] for name in BARRIERS[1:]}
    rest = {
        "quarter": world.quarter,
        "month": world.month,
        "rng": world.rng_state,
        "next_ids": list(world.next_ids),
        "intercepts": {name: a.tolist() for name, a in world.intercepts.items()},
    }
    return [
        write_table(world.persons, state, WORLD_PERSONS),
        write_table(world.hh, state, WORLD_HOUSEHOLDS),
        write_table(pd.DataFrame(traits), state, WORLD_TRAITS),
        write_json(rest, state / "state.json"),
    ]


def read_state(folder: Path) -> World:
    """The simulator's state :func:`write_state` wrote in ``folder``; a folder without one (an
    agency's extract, or a population drawn before quarters recorded it) cannot be moved on."""
    state = folder / STATE
    if not (state / "state.json").exists():
        raise UserError(
            f"{folder}: no simulator's state ({STATE}/state.json): generate the population again to move it on"
        )
    persons, hh, traits = read_tables(state, WORLD_PERSONS, WORLD_HOUSEHOLDS, WORLD_TRAITS)
    (outcomes,) = read_tables(folder, OUTCOMES)
    rest = json.loads((state / "state.json").read_text())
    ids = hh["household_id"].to_numpy()
    traits = traits.set_index("household_id").loc[ids]
    nb = len(BENEFITS)
    drawn = Traits(
        know=traits[[f"know_{b}" for b in BENEFITS]].to_numpy(),
        **{name: np.repeat(traits[[name]].to_numpy(), nb, axis=1) for name in BARRIERS[1:]},
    )
    truth = outcomes.assign(benefit=outcomes["benefit"].astype("object")).set_index(["household_id", "benefit"])

    def wide(column: str, dtype) -> np.ndarray:
        frame = truth[column].unstack("benefit").reindex(index=ids, columns=list(BENEFITS))
        return frame.astype(object if dtype is object else dtype).to_numpy()

    rng = np.random.default_rng()
    rng.bit_generator.state = rest["rng"]
    claims = Claims(status=wide("status", object), paid_amount=wide("paid_amount", float))
    return World(
        rest["quarter"],
        rest["month"],
        persons,
        hh,
        claims,
        {name: np.asarray(v) for name, v in rest["intercepts"].items()},
        drawn,
        wide("claim_if_not_contacted", bool),
        wide("claim_if_contacted", bool),
        wide("eligible", bool),
        rng,
        (int(rest["next_ids"][0]), int(rest["next_ids"][1])),
    )


def write_world(world: dict, folder: Path, *, source: str) -> Path:
    """``folder/world.yaml``: the whole calibration a population was drawn with, and from what."""
    head = f"# The calibration this population was drawn with: {source}, merged over the shipped calibration.yaml.\n"
    return write_text(folder / WORLD, head + yaml.safe_dump(world, sort_keys=False, allow_unicode=True))


def folder_world(folder: Path) -> tuple[dict, str]:
    """The calibration a population in ``folder`` was drawn with, and where it came from. A folder
    that records none (drawn before populations recorded it) gets the shipped one, and says so."""
    path = folder / WORLD
    if not path.exists():
        return shipped_calibration(), f"the shipped calibration ({folder} records none: no {WORLD})"
    try:
        world = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path}: cannot read it as YAML ({exc})") from None
    check_calibration(world, source=str(path))
    return world, str(path)


def population_month(folder: Path) -> str | None:
    """The month a synthetic population in ``folder`` was drawn for (None for an agency's extract)."""
    report = folder / REPORT
    return json.loads(report.read_text())["settings"]["law"]["reference_month"] if report.exists() else None


def with_population_month(settings: Settings, folder: Path) -> Settings:
    """A synthetic population's truth was computed for one month: use it unless the month was set
    (by an option or the settings file)."""
    month = population_month(folder)
    if month is None or "reference_month" in settings.law.model_fields_set:
        return settings
    return settings.model_copy(update={"law": settings.law.model_copy(update={"reference_month": month})})


def generator_report(folder: Path) -> dict | None:
    """The calibration report of a synthetic population in ``folder`` (None for an agency's extract)."""
    report = folder / REPORT
    return json.loads(report.read_text()) if report.exists() else None


def write_shifted_copy(fresh: Path, shifted: Path) -> None:
    """``shifted``: the households of ``fresh`` with a third of them paid 30% less, and no truth (the
    truth drawn before the cut no longer holds)."""
    individuals, households = read_extract(fresh)
    write_table(cut_pay(individuals, households), shifted, INDIVIDUALS)
    write_table(households, shifted, HOUSEHOLDS)
