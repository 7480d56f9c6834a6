"""What a ranking's contacts change, measured two ways: against the simulation's hidden potential
outcomes, and as an agency can from its own randomised data.

Where it sits: the evaluation of ``train --labels observed`` and of the demo's rounds. Only
:func:`true_gain` reads the truth (role ``truth``: the evaluation may); the agency's estimates
(:func:`holdout_effect`, :func:`ipw_value`) use the campaign's arms and recorded outcomes.

- **Additional euros** of a contact, in simulation: per household, the sum over benefits of
  ``(claim_if_contacted - claim_if_not_contacted) x monthly_amount``; a policy's figure is the sum
  over the K households it would contact.
- **Qini curve**: that sum as K grows, against the households' ranks; **AUUC**: its area over the
  area of a random ranking's straight line, minus one (0: no better than random).
- **Holdout effect**: mean euros claimed by next quarter in the contacted top minus the held-out
  top, a difference of means with a normal 90% interval; the agency's own estimate of what its
  campaign caused.
- **Off-policy value** of another ranking (inverse propensity weighting): for the households the
  challenger would contact, the campaign's contacted ones count ``y / p`` and the uncontacted
  ``y / (1 - p)``; their difference estimates the euros the challenger's contacts would add. Only
  households the campaign could have contacted (``p > 0``) are covered; its variance is stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from nonrecours.training.metrics import INTERVAL_LEVEL

Z = float(norm.ppf((1 + INTERVAL_LEVEL) / 2))
"""The normal quantile of a two-sided interval at ``INTERVAL_LEVEL``."""
BOOTSTRAP_DRAWS = 500
DIGITS = 4


def household_gain(truth: pd.DataFrame) -> pd.Series:
    """Per household (index ``household_id``): the euros a month its contact would add, from the
    truth's potential outcomes (0 where no entitlement is open)."""
    gain = (truth["claim_if_contacted"].astype(float) - truth["claim_if_not_contacted"].astype(float)) * truth[
        "monthly_amount"
    ].astype(float)
    return gain.groupby(truth["household_id"].to_numpy()).sum().rename_axis("household_id")


def top_households(value: pd.Series, k: int) -> pd.Index:
    """The ``k`` households with the largest value (ties by id, for a stable order)."""
    order = value.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    return order.index[:k]


@dataclass(frozen=True)
class PolicyGain:
    policy: str
    households: int
    additional_monthly: float
    low: float
    high: float
    auuc: float


def true_gain(
    values: dict[str, pd.Series], gain: pd.Series, capacity: int, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Each policy's additional euros a month at ``capacity`` contacts, with a bootstrap 90%
    interval over its contacted households, and its AUUC; and each policy's Qini curve (cumulative
    gain by rank, all households)."""
    rng = np.random.default_rng(seed)
    rows, curves = [], {}
    total = float(gain.sum())
    n = len(gain)
    for name, value in values.items():
        v = value.reindex(gain.index).fillna(-np.inf)
        ordered = gain.loc[top_households(v, n)].to_numpy(dtype=float)
        curve = np.concatenate([[0.0], np.cumsum(ordered)])
        curves[name] = curve
        picked = ordered[:capacity]
        boot = rng.choice(picked, size=(draws, len(picked)), replace=True).sum(axis=1) if len(picked) else np.zeros(1)
        random_area = total * n / 2
        auuc = float(np.trapezoid(curve) / random_area - 1) if random_area else float("nan")
        lo, hi = np.quantile(boot, [(1 - INTERVAL_LEVEL) / 2, (1 + INTERVAL_LEVEL) / 2])
        rows.append(
            PolicyGain(
                name,
                len(picked),
                round(float(picked.sum()), 2),
                round(float(lo), 2),
                round(float(hi), 2),
                round(auuc, DIGITS),
            )
        )
    return pd.DataFrame([r.__dict__ for r in rows]), curves


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    standard_error: float
    n: int


def holdout_effect(campaign: pd.DataFrame, claimed_euros: pd.Series) -> Estimate:
    """The campaign's effect per contacted household (euros a month claimed by next quarter),
    contacted top minus held-out top, with a normal 90% interval. ``claimed_euros``: per campaign
    household (index ``household_id``), euros claimed by next quarter, NaN where unknown."""
    top = campaign[campaign["arm"].astype("object").isin(("contact", "holdout"))].set_index("household_id")
    y = claimed_euros.reindex(top.index)
    known = y.notna()
    treated = y[known & (top["arm"].astype("object") == "contact")].to_numpy(dtype=float)
    control = y[known & (top["arm"].astype("object") == "holdout")].to_numpy(dtype=float)
    if len(treated) < 2 or len(control) < 2:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), len(treated) + len(control))
    diff = treated.mean() - control.mean()
    se = float(np.sqrt(treated.var(ddof=1) / len(treated) + control.var(ddof=1) / len(control)))
    return Estimate(
        round(float(diff), 2),
        round(float(diff - Z * se), 2),
        round(float(diff + Z * se), 2),
        round(se, 2),
        len(treated) + len(control),
    )


def ipw_value(campaign: pd.DataFrame, claimed_euros: pd.Series, challenger: pd.Series, capacity: int) -> Estimate:
    """Off-policy estimate of the euros a month a challenger's ``capacity`` contacts would add,
    from the campaign's randomised arms (inverse propensity weighting, Horvitz-Thompson). Only the
    challenger's picks the campaign randomised (``0 < p < 1``) can be estimated; the others count
    as nothing, so the figure is a lower bound where they would gain (it is not scaled up from the
    covered picks: that extrapolation once put a ranking at nine times its true value). The
    standard error comes from the weighted terms' variance; ``n`` is the covered picks."""
    c = campaign.set_index("household_id")
    picks = top_households(challenger, capacity)
    covered = c.reindex(picks).dropna(subset=["propensity"])
    covered = covered[(covered["propensity"] > 0) & (covered["propensity"] < 1)]
    y = claimed_euros.reindex(covered.index).to_numpy(dtype=float)
    p = covered["propensity"].to_numpy(dtype=float)
    contacted = covered["contacted"].to_numpy(dtype=bool)
    term = np.where(contacted, y / p, -y / (1 - p))
    term = term[~np.isnan(term)]
    if len(term) < 2:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), len(term))
    value = float(term.sum())
    se = float(np.sqrt(len(term) * term.var(ddof=1)))
    return Estimate(round(value, 2), round(value - Z * se, 2), round(value + Z * se, 2), round(se, 2), len(term))


def claimed_euros_observed(rows: pd.DataFrame) -> pd.Series:
    """Per campaign household, euros a month claimed by next quarter as the agency knows it:
    the sum over its checked benefits of ``claimed_next x`` the law engine's amount on its data
    (NaN when no benefit's claim can be seen)."""
    amount = rows["law_amount"].to_numpy(dtype=float)
    euros = pd.Series(rows["claimed_next"].to_numpy(dtype=float) * amount)
    return euros.groupby(rows["household_id"].to_numpy()).sum(min_count=1)


def campaign_gain(campaign: pd.DataFrame, gain: pd.Series, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Estimate:
    """Simulation only: the additional euros a month a campaign's contacts caused (the sum of the
    contacted households' :func:`household_gain`), with a bootstrap 90% interval over them."""
    contacted = campaign.loc[campaign["contacted"].astype(bool), "household_id"]
    g = gain.reindex(contacted).fillna(0.0).to_numpy(dtype=float)
    if len(g) == 0:
        return Estimate(0.0, 0.0, 0.0, 0.0, 0)
    boot = np.random.default_rng(seed).choice(g, size=(draws, len(g)), replace=True).sum(axis=1)
    lo, hi = np.quantile(boot, [(1 - INTERVAL_LEVEL) / 2, (1 + INTERVAL_LEVEL) / 2])
    return Estimate(
        round(float(g.sum()), 2), round(float(lo), 2), round(float(hi), 2), round(float(boot.std()), 2), len(g)
    )
