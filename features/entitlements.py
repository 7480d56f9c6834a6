"""Entitlements for a whole extract: the observed tables mapped to a situation, then the law engine
over partitions of households (locally or on a Dask cluster).

Where it sits: ``nonrecours entitlements`` calls :func:`entitlements_from_observed`; the generator
calls :func:`run_law_engine` on the true situation. Both go through the same mapping in
:mod:`features.law`.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.law import (
    SITUATION_HOUSEHOLD_COLUMNS,
    SITUATION_PERSON_COLUMNS,
    CssValuation,
    compute_entitlements,
    tax_benefit_system,
)
from nonrecours.config import LawConfig
from nonrecours.parallel import map_partitions
from nonrecours.schema import BENEFITS, ENTITLEMENTS


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


@dataclass(frozen=True)
class _Partition:
    persons: pd.DataFrame
    households: pd.DataFrame
    reference_month: str
    css: CssValuation


def _run_partition(part: _Partition) -> pd.DataFrame:
    result = compute_entitlements(
        part.persons,
        part.households,
        reference_month=part.reference_month,
        css=part.css,
    )
    # A simulation is a web of reference cycles holding large arrays; the cycle collector runs
    # on object counts, not bytes, so without this a worker's memory grows by about 1 GB per
    # partition of 5,000 households.
    gc.collect()
    return result


def run_law_engine(
    persons: pd.DataFrame,
    households: pd.DataFrame,
    *,
    law: LawConfig,
    css: CssValuation,
    scheduler: str | None = None,
    quiet: bool = False,
    description: str = "law engine",
) -> pd.DataFrame:
    """Entitlements of every household, one OpenFisca simulation per partition.

    A household with no member cannot be simulated; it gets ``eligible=False`` and amount 0 for
    every benefit, so that the output has exactly one row per household and benefit.
    """
    missing_p = [c for c in SITUATION_PERSON_COLUMNS if c not in persons.columns]
    missing_h = [c for c in SITUATION_HOUSEHOLD_COLUMNS if c not in households.columns]
    if missing_p or missing_h:
        raise ValueError(f"situation lacks columns: persons {missing_p}, households {missing_h}")
    ids = households["household_id"].to_numpy()
    populated = np.isin(ids, persons["household_id"].to_numpy())
    chunks = [c for c in np.array_split(ids[populated], max(1, int(np.ceil(populated.sum() / law.partition_size)))) if len(c)]
    by_household = persons.groupby("household_id", sort=False).indices
    parts = []
    for chunk in chunks:
        rows = np.concatenate([by_household[h] for h in chunk])
        parts.append(
            _Partition(
                persons=persons.iloc[rows],
                households=households[households["household_id"].isin(chunk)],
                reference_month=law.reference_month,
                css=css,
            )
        )
    if not scheduler and law.workers > 1 and len(parts) > 1:
        tax_benefit_system()  # loaded once here; forked workers inherit it
    results = map_partitions(
        _run_partition,
        parts,
        scheduler=scheduler,
        workers=law.workers,
        description=description,
        quiet=quiet,
    )
    empty_ids = ids[~populated]
    if len(empty_ids):
        results.append(
            pd.DataFrame(
                {
                    "household_id": np.repeat(empty_ids, len(BENEFITS)),
                    "benefit": np.tile(BENEFITS, len(empty_ids)),
                    "eligible": False,
                    "monthly_amount": 0.0,
                }
            )
        )
    out = pd.concat(results, ignore_index=True) if results else pd.DataFrame(columns=ENTITLEMENTS.names)
    out["benefit"] = pd.Categorical(out["benefit"].astype("object"), categories=list(BENEFITS))
    return out.sort_values(["household_id", "benefit"]).reset_index(drop=True)


def entitlements_from_observed(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    *,
    law: LawConfig,
    css: CssValuation,
    scheduler: str | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    persons, hh = observed_situation(individuals, households)
    return run_law_engine(persons, hh, law=law, css=css, scheduler=scheduler, quiet=quiet)


def compare_with_truth(observed: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per benefit: how often the law engine on observed data agrees with true eligibility.

    The gap is what makes prediction worth doing: people the agency's data say are not entitled
    but are (``missed``), and the reverse (``spurious``).
    """
    both = observed.merge(outcomes, on=["household_id", "benefit"], suffixes=("_observed", "_true"), validate="1:1")
    g = both.groupby("benefit", observed=True)
    table = pd.DataFrame(
        {
            "truly_eligible": g["eligible_true"].sum(),
            "eligible_on_observed": g["eligible_observed"].sum(),
            "agreement": g.apply(lambda d: (d["eligible_true"] == d["eligible_observed"]).mean(), include_groups=False),
            "missed": g.apply(lambda d: (d["eligible_true"] & ~d["eligible_observed"]).sum(), include_groups=False),
            "spurious": g.apply(lambda d: (~d["eligible_true"] & d["eligible_observed"]).sum(), include_groups=False),
        }
    )
    return table.reset_index()
