"""What an agency's observed tables say in the law engine's terms, and the entitlements that follow.

Where it sits: in the feature layer, between the raw tables and the profiles. ``nonrecours
entitlements`` and scoring call :func:`entitlements_from_observed`; the generator maps its *true*
situation itself (:mod:`nonrecours.data.generate`). Both go through :mod:`nonrecours.law.engine`.
"""

from __future__ import annotations

import pandas as pd

from nonrecours.core.config import LawConfig
from nonrecours.law.engine import run_law_engine
from nonrecours.law.parameters import CssValuation


def observed_situation(individuals: pd.DataFrame, households: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the agency knows, in the law engine's terms.

    The agency's best estimate of recent pay is the latest monthly pay it sees; of earlier pay,
    last year's declaration spread over twelve months. Both are gross, as OpenFisca expects.
    """
    persons = pd.DataFrame(
        {
            "household_id": individuals["household_id"].to_numpy(),
            "person_id": individuals["person_id"].to_numpy(),
            "benefit_unit": individuals["benefit_unit"].to_numpy(),
            "role": individuals["role"].astype("object").to_numpy(),
            "age": individuals["age"].to_numpy(),
            "activity": individuals["activity"].astype("object").to_numpy(),
            "pay_recent": individuals["known_pay_monthly"].to_numpy(dtype=float),
            "pay_earlier": individuals["declared_pay_last_year"].to_numpy(dtype=float) / 12,
            "unemployment_recent": individuals["unemployment_benefit_monthly"].to_numpy(dtype=float),
            "unemployment_earlier": individuals["unemployment_benefit_monthly"].to_numpy(dtype=float),
            "pension_monthly": individuals["pension_monthly"].to_numpy(dtype=float),
            "disability_rate": individuals["disability_rate"].to_numpy(dtype=float),
        }
    )
    hh = pd.DataFrame(
        {
            "household_id": households["household_id"].to_numpy(),
            "tenure": households["tenure"].astype("object").to_numpy(),
            "rent_monthly": households["rent_monthly"].to_numpy(dtype=float),
            "depcom": households["depcom"].astype(str).to_numpy(),
        }
    )
    return persons, hh


def entitlements_from_observed(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    *,
    law: LawConfig,
    css: CssValuation,
    scheduler: str | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    """Eligibility and monthly amount per household and benefit, on what the agency holds."""
    persons, hh = observed_situation(individuals, households)
    return run_law_engine(persons, hh, law=law, css=css, scheduler=scheduler, quiet=quiet)
