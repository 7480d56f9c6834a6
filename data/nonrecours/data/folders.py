"""A synthetic population on disk: one folder per quarter, each a complete input for every command.

Where it sits: between the generator (:mod:`nonrecours.data.generate`) and the commands that read a
population's folder. A population written to ``OUT`` keeps its later quarters inside the first one's
folder (``OUT/next_quarter``, ``OUT/next_quarter/next_quarter``...), each with the agency's extract,
the truth and ``calibration.json`` (the population beside the published figures, and the settings
it was drawn with, so that later commands use the population's own month).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from nonrecours.core.config import Settings
from nonrecours.core.io import read_extract, write_json, write_table, write_text
from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS, OUTCOMES
from nonrecours.data.calibration import (
    CalibrationError,
    calibration_of,
    check_calibration,
    read_calibration_overlay,
    shipped_calibration,
)
from nonrecours.data.generate import Population, generate
from nonrecours.data.shift import cut_pay

NEXT_QUARTER = "next_quarter"
"""The folder of a population's next quarter, inside the one before it."""
REPORT = "calibration.json"
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
    paths = []
    for i, quarter in enumerate(pop.quarters):
        folder = quarter_folder(out, i)
        folder.mkdir(parents=True, exist_ok=True)
        for frame, table in (
            (quarter.individuals, INDIVIDUALS),
            (quarter.households, HOUSEHOLDS),
            (quarter.outcomes, OUTCOMES),
        ):
            paths.append(write_table(frame, folder, table))
        month = settings.law.model_copy(update={"reference_month": quarter.reference_month})
        drawn_with = settings.model_copy(update={"law": month}).model_dump()
        paths.append(write_json({**quarter.summary, "settings": drawn_with}, folder / REPORT))
        paths.append(write_world(world, folder, source=str(given) if given else "the shipped calibration.yaml"))
    return pop, paths


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
