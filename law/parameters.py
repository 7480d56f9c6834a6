"""Law parameters production needs beside OpenFisca-France (``law/parameters.yaml``, dated and
sourced): the value of a CSS cover and the OECD-modified equivalence scale.

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
    an assumption (``css_cover_value`` in ``law/parameters.yaml``).
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
class LawParameters:
    as_of: str
    css: CssValuation
    equivalence_scale: EquivalenceScale


@lru_cache(maxsize=1)
def load_law_parameters() -> LawParameters:
    """``law/parameters.yaml``, read once per process."""
    raw = yaml.safe_load(resources.files("nonrecours.law").joinpath("parameters.yaml").read_text())
    cover = raw["css_cover_value"]
    return LawParameters(
        as_of=str(raw["as_of"]),
        css=CssValuation(tuple(cover["age_upper_bounds"]), tuple(cover["eur_per_month"])),
        equivalence_scale=EquivalenceScale(**raw["equivalence_scale"]),
    )
