"""The law engine over a whole population: one OpenFisca simulation per partition of households,
in local processes or on a Dask cluster, and the version of the law it computes.

Where it sits: the generator runs :func:`run_law_engine` on the true situation;
:func:`nonrecours.law.situation.entitlements_from_observed` runs it on the situation an agency's
tables give (for the entitlements, the rankings and the API). Both go through the same mapping in
:mod:`nonrecours.law.openfisca`. :func:`law_version` names the engine and this code's mapping, so
that a stored answer of the law engine is reused only by the same law.
"""

from __future__ import annotations

import hashlib
from functools import cache, partial
from importlib import metadata, resources

import numpy as np
import pandas as pd

from nonrecours.core.config import LawConfig
from nonrecours.core.parallel import map_households
from nonrecours.core.schema import BENEFITS, ENTITLEMENTS
from nonrecours.law.openfisca import (
    SITUATION_HOUSEHOLD_COLUMNS,
    SITUATION_PERSON_COLUMNS,
    compute_entitlements,
    tax_benefit_system,
)
from nonrecours.law.parameters import CssValuation

LAW_SOURCES = ("openfisca.py", "situation.py", "parameters.py", "parameters.yaml")
"""The files of this package that turn an agency's rows into OpenFisca's inputs and its outputs
into entitlements: a change to any of them may change an answer."""


@cache
def law_version(reference_month: str) -> str:
    """A fingerprint of everything the law engine's answer depends on besides a household's
    inputs: the reference month, OpenFisca-France's and OpenFisca-Core's versions, and this
    package's mapping and parameters (their text). Two runs with one fingerprint give the same
    entitlements for the same inputs, so a stored answer may be reused (see
    :func:`nonrecours.serving.decision_log.input_digests`)."""
    h = hashlib.sha256(
        f"{reference_month}|{metadata.version('openfisca-france')}|{metadata.version('openfisca-core')}".encode()
    )
    for name in LAW_SOURCES:
        h.update(resources.files("nonrecours.law").joinpath(name).read_bytes())
    return h.hexdigest()


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
    if not scheduler and law.workers > 1 and populated.sum() > law.partition_size:
        tax_benefit_system()  # loaded once here; forked workers inherit it
    results = map_households(
        partial(compute_entitlements, reference_month=law.reference_month, css=css),
        persons,
        households[populated],
        n_parts=int(np.ceil(populated.sum() / law.partition_size)),
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
