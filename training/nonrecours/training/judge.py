"""Judging rankings as an agency can: from its own randomised campaigns, never from the truth.

Where it sits: the estimates the outreach loop's gate decides on (:mod:`nonrecours.training.gate`).
Pure numpy; one unit is a campaign household, and every campaign keeps its own propensities, so
units of several campaigns pool.

- **AIPW (doubly robust) scores**: per unit, ``mu1 - mu0 + T (Y - mu1) / e - (1 - T) (Y - mu0) / (1 - e)``
  with ``Y`` the euros a month claimed by next quarter, ``T`` whether the unit was contacted, ``e``
  its probability of contact and ``mu0``, ``mu1`` an outcome model's predictions. Unbiased for the
  effect of a contact when either the propensities or the outcome model are right; the
  propensities are known here (the campaign drew them). A unit no campaign randomised (``e`` 0 or
  1) has no score: a ranking's picks among them count as nothing, never scaled up.
- **A ranking's value** at a capacity: the sum of its picks' scores.
- **Paired differences**: two rankings on the same units, the sum of the scores of the picks one
  makes and the other does not, with a bootstrap interval over units (the interval of the
  difference, not of two values).
- **RATE / AUTOC** (Yadlowsky et al. 2021; grf's ``rank_average_treatment_effect``): does a ranking
  put the units that respond most at the top? The area under its targeting-operator curve, with a
  bootstrap standard error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nonrecours.training.metrics import INTERVAL_LEVEL

BOOTSTRAP_DRAWS = 1_000
LOW_QUANTILE, HIGH_QUANTILE = (1 - INTERVAL_LEVEL) / 2, (1 + INTERVAL_LEVEL) / 2


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval (``INTERVAL_LEVEL``) and standard error, over ``n`` units."""

    value: float
    low: float
    high: float
    standard_error: float
    n: int

    @property
    def straddles_zero(self) -> bool:
        return not (self.low > 0 or self.high < 0)


def aipw_scores(
    y: np.ndarray, treated: np.ndarray, propensity: np.ndarray, mu0: np.ndarray, mu1: np.ndarray
) -> np.ndarray:
    """Per unit, the doubly robust score of a contact's effect; NaN for a unit never randomised
    (propensity 0 or 1) or with no outcome."""
    e = np.asarray(propensity, dtype=float)
    t = np.asarray(treated, dtype=bool)
    y = np.asarray(y, dtype=float)
    randomised = (e > 0) & (e < 1)
    safe = np.where(randomised, e, 1 / 2)
    score = mu1 - mu0 + np.where(t, (y - mu1) / safe, -(y - mu0) / (1 - safe))
    return np.where(randomised & ~np.isnan(y), score, np.nan)


def _bootstrap(terms: np.ndarray, statistic, draws: int, seed: int) -> Interval:
    rng = np.random.default_rng(seed)
    n = len(terms)
    value = float(statistic(terms))
    if n < 2:
        return Interval(value, float("nan"), float("nan"), float("nan"), n)
    boot = np.array([statistic(terms[rng.integers(0, n, n)]) for _ in range(draws)])
    low, high = np.quantile(boot, [LOW_QUANTILE, HIGH_QUANTILE])
    return Interval(value, float(low), float(high), float(boot.std(ddof=1)), n)


def ranking_value(picks: np.ndarray, scores: np.ndarray, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Interval:
    """The euros a month a ranking's picks (a mask over the units) would add: the sum of their
    scores, a pick no campaign randomised counting for nothing; bootstrap over units."""
    terms = np.where(np.asarray(picks, dtype=bool), np.nan_to_num(scores, nan=0.0), 0.0)
    return _bootstrap(terms, np.sum, draws, seed)


def paired_gain(
    challenger: np.ndarray, incumbent: np.ndarray, scores: np.ndarray, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> Interval:
    """What the challenger's picks add over the incumbent's, on the same units (masks of picks):
    the scores of the units one picks and the other does not, summed, with a bootstrap interval
    over units of the difference itself."""
    s = np.nan_to_num(scores, nan=0.0)
    terms = np.where(np.asarray(challenger, dtype=bool), s, 0.0) - np.where(np.asarray(incumbent, dtype=bool), s, 0.0)
    return _bootstrap(terms, np.sum, draws, seed)


def _autoc(pairs: np.ndarray) -> float:
    """``pairs``: (priority, score) rows. The mean over k of (mean score of the top k) - (mean score)."""
    order = np.argsort(-pairs[:, 0], kind="stable")
    s = pairs[order, 1]
    top = np.cumsum(s) / np.arange(1, len(s) + 1)
    return float(np.mean(top - s.mean()))


def autoc(priority: np.ndarray, scores: np.ndarray, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Interval:
    """RATE with the AUTOC weighting, on the randomised units: positive when the ranking puts the
    units whose contact adds most first; 0 for a ranking no better than chance."""
    known = ~np.isnan(scores)
    pairs = np.column_stack([np.asarray(priority, dtype=float)[known], np.asarray(scores, dtype=float)[known]])
    return _bootstrap(pairs, _autoc, draws, seed)


def unit_outcomes(rows: pd.DataFrame, mu0: np.ndarray, mu1: np.ndarray, amount: np.ndarray) -> pd.DataFrame:
    """Per campaign household of the pooled rows (``round``, ``unit``): ``contacted``, ``propensity``,
    ``y`` the euros a month claimed by next quarter as the agency knows them (a right opened, or a
    benefit seen paid in the next extract, at ``amount``, per row the amount the outcome model and
    the rankings use: the law engine's on the agency's data, else the benefit's typical one),
    ``mu0``, ``mu1`` (the outcome model's, per row, summed) and ``score``, the AIPW score. A
    benefit whose claim the agency cannot see (never paid by it, or no outcome recorded) counts its
    outcome model's expectation in the arm it got: the score then carries no residual for it,
    rather than a false zero."""
    seen = rows["claimed_next"].to_numpy(dtype=float)
    amount = np.asarray(amount, dtype=float)
    contacted = rows["contacted"].to_numpy(dtype=bool)
    y = np.where(np.isnan(seen), np.where(contacted, mu1, mu0), seen * amount)
    frame = pd.DataFrame(
        {
            "round": rows["round"].to_numpy(),
            "unit": rows["unit"].to_numpy(),
            "contacted": contacted,
            "propensity": rows["propensity"].to_numpy(dtype=float),
            "y": y,
            "mu0": mu0,
            "mu1": mu1,
        }
    )
    units = frame.groupby(["round", "unit"], sort=True).agg(
        contacted=("contacted", "first"),
        propensity=("propensity", "first"),
        y=("y", "sum"),
        mu0=("mu0", "sum"),
        mu1=("mu1", "sum"),
    )
    units["score"] = aipw_scores(
        units["y"].to_numpy(),
        units["contacted"].to_numpy(),
        units["propensity"].to_numpy(),
        units["mu0"].to_numpy(),
        units["mu1"].to_numpy(),
    )
    return units.reset_index()


def campaign_value(
    scores: np.ndarray, propensity: np.ndarray, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> Interval:
    """What a campaign's contacts caused, estimated on its own randomised arms: each unit's score
    times its probability of contact (the top's contacts and the exploration below the cut alike),
    summed, with a bootstrap interval over units."""
    terms = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0) * np.asarray(propensity, dtype=float)
    return _bootstrap(terms, np.sum, draws, seed)
