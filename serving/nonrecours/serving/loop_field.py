"""The loop's field, simulated: it plays a campaign's contacts from the truth's potential outcomes,
draws the next quarter from the simulator's state, and judges a round from the truth.

Where it sits: the simulation side of ``nonrecours loop`` (:mod:`nonrecours.serving.loop`); the
agency's side (:mod:`nonrecours.serving.loop_agency`) never calls it and never opens the files it
reads (:data:`SIMULATOR_FILES`). A test replaces it with a field that hides those files whenever
the agency's side runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.errors import UserError
from nonrecours.core.io import read_tables
from nonrecours.core.schema import OUTCOMES
from nonrecours.data.folders import REPORT, STATE, WORLD, next_quarter, population_month
from nonrecours.serving.decision_log import DecisionLog
from nonrecours.serving.outreach import play_field
from nonrecours.training.ceilings import round_figures

SIMULATOR_FILES = (f"{OUTCOMES.name}.parquet", STATE, WORLD, REPORT)
"""What only the field reads in a quarter's folder."""


class Field(Protocol):
    """The simulation the loop plays in (see the module's docstring)."""

    def month(self, folder: Path) -> str: ...

    def play(self, folder: Path, campaign: pd.DataFrame, log: DecisionLog) -> pd.DataFrame: ...

    def draw_next(self, folder: Path, out: Path, contacted: np.ndarray) -> None: ...

    def judge(
        self, folder: Path, profiles: pd.DataFrame, contacted: np.ndarray, rankings: dict[str, pd.Series], k: int
    ) -> dict[str, float] | None: ...


@dataclass
class SimulatedField:
    """The synthetic population's field: outcomes from the truth, the next quarter from the state."""

    settings: Settings
    outcome_date: date
    seed: int
    scheduler: str | None = None
    quiet: bool = True

    def month(self, folder: Path) -> str:
        month = population_month(folder)
        if month is None:
            raise UserError(f"{folder}: no {REPORT}: the loop plays synthetic quarters (`nonrecours generate`)")
        return month

    def play(self, folder: Path, campaign: pd.DataFrame, log: DecisionLog) -> pd.DataFrame:
        return play_field(folder, campaign, log, outcome_date=self.outcome_date)

    def draw_next(self, folder: Path, out: Path, contacted: np.ndarray) -> None:
        next_quarter(folder, out, self.settings, contacted=contacted, scheduler=self.scheduler, quiet=self.quiet)

    def judge(
        self, folder: Path, profiles: pd.DataFrame, contacted: np.ndarray, rankings: dict[str, pd.Series], k: int
    ) -> dict[str, float] | None:
        if not (folder / f"{OUTCOMES.name}.parquet").exists():
            return None
        (truth,) = read_tables(folder, OUTCOMES)
        return round_figures(profiles, truth, contacted, rankings, k, seed=self.seed)
