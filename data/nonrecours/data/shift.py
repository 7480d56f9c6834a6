"""Deliberate shifts of an observed population, to show and test what monitoring catches.

Where it sits: the demo pipeline draws a second population and shifts it before monitoring it
against the first; the tests do the same. Pure: tables in, new tables out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHARE_HIT = 1 / 3
PAY_FACTOR = 0.7
"""The demo's recession: a third of households paid 30% less."""


def cut_pay(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    *,
    share: float = SHARE_HIT,
    factor: float = PAY_FACTOR,
    seed: int = 0,
) -> pd.DataFrame:
    """The individuals table with the pay of ``share`` of the households multiplied by ``factor``:
    a recession as the agency's data show it, in the pre-filled quarterly pay where it holds one
    (NA stays NA) and in the declared pay of the others (as in the next tax declarations)."""
    rng = np.random.default_rng(seed)
    ids = households["household_id"].to_numpy()
    hit = rng.choice(ids, size=round(share * len(ids)), replace=False)
    out = individuals.copy()
    rows = out["household_id"].isin(hit)
    for column in ("known_pay_monthly", "declared_pay_last_year"):
        out.loc[rows, column] = out.loc[rows, column] * factor
    return out
