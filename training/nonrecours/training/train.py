"""``nonrecours train`` on a population's folder: the non-take-up model trained on its profiles and
truth, tested on held-out households (and on the same ones next quarter, when that quarter is
there), logged to MLflow, registered and gated.

Where it sits: the stage over :mod:`nonrecours.training.evaluate` (the pure fit and evaluation) and
:mod:`nonrecours.training.tracking` (the MLflow run). Reads the folder's tables; the truth is the
label here, which is why this is the simulation's oracle, never what an agency can run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.io import read_table, read_tables
from nonrecours.core.schema import OUTCOMES, PROFILES
from nonrecours.data.folders import NEXT_QUARTER, generator_report
from nonrecours.training.evaluate import compare_with_truth, train_and_evaluate
from nonrecours.training.tracking import TrainingRun, TrainOutcome, log_training


def training_data(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profiles and the outcomes (labels) in ``folder``."""
    (profiles,) = read_tables(folder, PROFILES, hint=f" (run `nonrecours features --input {folder}` first)")
    (outcomes,) = read_tables(
        folder, OUTCOMES, hint=" (training needs the truth: a synthetic population or an agency's known outcomes)"
    )
    return profiles, outcomes


def next_quarter_data(folder: Path, option: Path | None) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The next quarter's profiles and outcomes: from ``option``, else ``folder/next_quarter`` if
    it holds profiles (None if not: the model is then tested on one quarter only)."""
    later = option or folder / NEXT_QUARTER
    if option is None and not (later / f"{PROFILES.name}.parquet").exists():
        return None
    return training_data(later)


def train_folder(
    folder: Path,
    profiles: pd.DataFrame,
    outcomes: pd.DataFrame,
    settings: Settings,
    run: TrainingRun,
    *,
    scheduler: str | None,
    next_quarter: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> TrainOutcome:
    """Train, evaluate (on the next quarter too, when given), log, register and gate."""
    ev = train_and_evaluate(
        profiles,
        outcomes,
        settings.training,
        min_group_positives=settings.fairness.min_group_positives,
        scheduler=scheduler,
        next_quarter=next_quarter,
        bootstrap=settings.fairness.bootstrap_samples,
    )
    return log_training(
        ev,
        profiles=profiles,
        settings=settings,
        run=run,
        input_dir=folder,
        generator=generator_report(folder),
        scheduler=scheduler,
    )


def truth_agreement(folder: Path, entitlements: pd.DataFrame) -> pd.DataFrame | None:
    """Simulation only: how often the law engine on the agency's data agrees with the truth
    (:func:`~nonrecours.training.evaluate.compare_with_truth`), when ``folder`` holds a truth."""
    if not (folder / f"{OUTCOMES.name}.parquet").exists():
        return None
    return compare_with_truth(entitlements, read_table(folder, OUTCOMES))
