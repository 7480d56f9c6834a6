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


def cut_pay(individuals: pd.DataFrame, households: pd.DataFrame, *, share: float = SHARE_HIT, factor: float = PAY_FACTOR, seed: int = 0) -> pd.DataFrame:
    """The individuals table with the latest known pay of ``share`` of the households multiplied
    by ``factor`` (a recession seen in monthly pay data before any declaration)."""
    rng = np.random.default_rng(seed)
    ids = households["household_id"].to_numpy()
    hit = rng.choice(ids, size=int(round(share * len(ids))), replace=False)
    out = individuals.copy()
    rows = out["household_id"].isin(hit)
    out.loc[rows, "known_pay_monthly"] = out.loc[rows, "known_pay_monthly"] * factor
    return out
