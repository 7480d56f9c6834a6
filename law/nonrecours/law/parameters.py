"""Law parameters production needs beside OpenFisca-France (``law/nonrecours/law/parameters.yaml``, dated and
sourced): the value of a CSS cover, the OECD-modified equivalence scale and the rent estimated
for a renter whose rent the agency does not hold.

Where it sits: in the law layer, read by the law engine (CSS valuation), the feature builder and
the generator (consumption units). Loaded on first use, never at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml


@dataclass(frozen=True)
class CssValuation:
    """Monthly value of a complementary health cover per person, by age band.

    ``cmu_c`` (CSS without contribution) is a yes/no and ``css_participation_forfaitaire`` is what a
    household pays; to compare CSS with cash benefits we value the cover itself. The figures are
    an assumption (``css_cover_value`` in ``law/nonrecours/law/parameters.yaml``).
    """

    age_upper_bounds: tuple[int, ...]
    eur_per_month: tuple[float, ...]

    def value(self, ages: pd.Series) -> pd.Series:
        idx = np.searchsorted(np.asarray(self.age_upper_bounds), ages.to_numpy(), side="right")
        idx = np.minimum(idx, len(self.eur_per_month) - 1)
        return pd.Series(np.asarray(self.eur_per_month)[idx], index=ages.index)


@dataclass(frozen=True)
class EquivalenceScale:
    """The OECD-modified scale: ``first_person`` for the first person, ``other_person`` for each
    other person aged ``child_below_age`` or more, ``child`` for each younger one."""

    first_person: float
    other_person: float
    child: float
    child_below_age: int

    def units(self, household_id: pd.Series, ages: pd.Series | None = None) -> pd.Series:
        """Consumption units per household (indexed by household id). Without ``ages`` every
        member counts as aged ``child_below_age`` or more (a rough scale, to rank households
        before their ages are known)."""
        if ages is None:
            weight = np.full(len(household_id), self.other_person)
        else:
            weight = np.where(ages.to_numpy() >= self.child_below_age, self.other_person, self.child)
        per_person = pd.Series(weight, index=household_id.index)
        return per_person.groupby(household_id.to_numpy()).sum() + (self.first_person - self.other_person)


@dataclass(frozen=True)
class RentEstimate:
    """A renter's monthly rent when the agency does not hold it: median rent per m² of the kind
    of territory (private or social) times a typical surface for the household's size. An
    assumption (``rent_estimate`` in ``law/nonrecours/law/parameters.yaml``)."""

    private_eur_per_m2: dict[str, float]
    social_eur_per_m2: float
    surface_m2_by_persons: tuple[float, ...]

    def rent(self, tenure: pd.Series, territory: pd.Series, persons: pd.Series) -> pd.Series:
        """Estimated rent per row; 0 for a tenure that pays none (owners, housed free)."""
        size = np.clip(persons.to_numpy(dtype=int), 1, len(self.surface_m2_by_persons)) - 1
        surface = np.asarray(self.surface_m2_by_persons)[size]
        per_m2 = np.where(
            tenure.to_numpy() == "social_renter",
            self.social_eur_per_m2,
            territory.astype("object").map(self.private_eur_per_m2).to_numpy(dtype=float),
        )
        renting = tenure.isin(["social_renter", "private_renter"]).to_numpy()
        return pd.Series(np.where(renting, np.round(surface * per_m2, 2), 0.0), index=tenure.index)


@dataclass(frozen=True)
class LawParameters:
    as_of: str
    css: CssValuation
    equivalence_scale: EquivalenceScale
    rent_estimate: RentEstimate
    self_employed_turnover_monthly: float
    """A self-employed member's monthly turnover when the agency holds none (``self_employed_estimate``)."""


@lru_cache(maxsize=1)
def load_law_parameters() -> LawParameters:
    """``law/nonrecours/law/parameters.yaml``, read once per process."""
    raw = yaml.safe_load(resources.files("nonrecours.law").joinpath("parameters.yaml").read_text())
    cover = raw["css_cover_value"]
    return LawParameters(
        as_of=str(raw["as_of"]),
        css=CssValuation(tuple(cover["age_upper_bounds"]), tuple(cover["eur_per_month"])),
        equivalence_scale=EquivalenceScale(**raw["equivalence_scale"]),
        rent_estimate=RentEstimate(
            private_eur_per_m2=dict(raw["rent_estimate"]["private_eur_per_m2"]),
            social_eur_per_m2=float(raw["rent_estimate"]["social_eur_per_m2"]),
            surface_m2_by_persons=tuple(raw["rent_estimate"]["surface_m2_by_persons"]),
        ),
        self_employed_turnover_monthly=float(raw["self_employed_estimate"]["turnover_monthly"]),
    )
