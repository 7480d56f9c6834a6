"""Outreach campaigns: whom to contact from a scored extract, with a randomised holdout and a
share of exploration, so that what an agency learns afterwards is not only what its last model
chose.

Where it sits: after scoring (the same scored rows as the worklist), before the field. Pure: the
scored rows in, one row per household of the campaign out. ``nonrecours campaign`` and
``POST /campaign`` call :func:`plan_campaign`; the decision log keeps every row.

The design, for a capacity of K contacts:

- **exploration**: ``round(exploration_share * K)`` contacts are drawn at random among the
  households *below the cut* that the law engine finds eligible to a benefit they are not seen
  receiving (the ``pool``). The next model then sees outcomes outside the last model's top. With
  a ``band`` (the loop's design), the pool is only those of the ``band`` households ranked just
  below the top: each has a larger chance of a contact, so a ranking that differs at the margin
  can be judged.
- **top**: the rest of the contacts come from the top of the ranking. Enough households are taken
  from the top that, once a ``holdout_share`` of them is set aside at random, the contacts left
  fill the capacity. The holdout is drawn within strata of consecutive ranks, so contacted and
  held-out households have the same scores (a stratified randomised trial).
- every household in the campaign carries its probability of being contacted (``propensity``):
  ``1 - holdout_share`` in the top, ``explored / pool`` below the cut. Weighting by its inverse
  undoes the selection when the outcomes are used to learn or to evaluate another ranking.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from nonrecours.core.config import CampaignConfig, SettingsError, section
from nonrecours.core.schema import CAMPAIGN_ARMS, CONTACTED_ARMS

ID_DIGEST_CHARS = 6
PROPENSITY_DIGITS = 4
CAMPAIGN_COLUMNS = (
    "campaign_id",
    "household_id",
    "arm",
    "contacted",
    "rank",
    "stratum",
    "propensity",
    "expected_monthly",
    "benefits",
)


@dataclass(frozen=True)
class CampaignPlan:
    """What the campaign asks for. ``capacity``: contacts the team can make; ``holdout_share``:
    share of the top set aside, never contacted; ``exploration_share``: share of the contacts
    spent at random below the cut; ``strata``: rank strata the holdout is drawn within. The shares
    and strata are the ``campaign`` settings' and are checked as those are."""

    capacity: int
    holdout_share: float
    exploration_share: float
    strata: int
    seed: int
    band: int | None = None
    """Exploration draws only among the ``band`` households ranked just below the top (None: every
    law-open household below it)."""

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise SettingsError(f"capacity must be at least 1 contact, got {self.capacity}")
        section(
            "campaign", holdout_share=self.holdout_share, exploration_share=self.exploration_share, strata=self.strata
        )

    @classmethod
    def of(cls, design: CampaignConfig, *, capacity: int, seed: int) -> CampaignPlan:
        """The plan of a campaign of ``capacity`` contacts designed by the ``campaign`` settings."""
        return cls(capacity, design.holdout_share, design.exploration_share, design.strata, seed)


def campaign_id(at: datetime, seed: int) -> str:
    """A readable, unique-enough id: the time and a short digest of it with the seed."""
    digest = hashlib.sha256(f"{at.isoformat()}|{seed}".encode()).hexdigest()[:ID_DIGEST_CHARS]
    return f"{at.strftime('%Y%m%dT%H%M%S')}-{digest}"


def discussed_benefits(scored: pd.DataFrame) -> pd.Series:
    """Per household, the benefits an agent checks on a contact: every benefit it is not seen
    receiving, but CSS without contribution for an RSA recipient (granted by default). Ordered by
    expected amount, highest first; a ``;``-joined string."""
    seen = scored["receives_this"].astype("Float64").fillna(0).to_numpy(dtype=float) >= 1
    automatic = (scored["benefit"].astype("object").to_numpy() == "css_free") & (
        scored["receives_rsa"].astype("Float64").fillna(0).to_numpy(dtype=float) >= 1
    )
    rows = scored.loc[~seen & ~automatic, ["household_id", "benefit", "expected_unclaimed_monthly"]]
    rows = rows.assign(benefit=rows["benefit"].astype("object")).sort_values(
        ["household_id", "expected_unclaimed_monthly"], ascending=[True, False], kind="stable"
    )
    return rows.groupby("household_id")["benefit"].agg(";".join)


def _law_open(scored: pd.DataFrame) -> pd.Series:
    """Per household: the law engine finds it eligible to a benefit it is not seen receiving."""
    seen = scored["receives_this"].astype("Float64").fillna(0).to_numpy(dtype=float) >= 1
    return (
        pd.Series(scored["law_eligible"].to_numpy(dtype=bool) & ~seen).groupby(scored["household_id"].to_numpy()).any()
    )


def plan_campaign(
    scored: pd.DataFrame, plan: CampaignPlan, *, value: str = "expected_unclaimed_monthly", at: datetime | None = None
) -> pd.DataFrame:
    """The campaign's households (``CAMPAIGN_COLUMNS``), ranked by the household's total ``value``
    (the worklist's ranking by default; a column of ``scored``). Households neither in the top
    nor in the exploration pool are not in it."""
    if value not in scored.columns:
        raise ValueError(f"scored rows have no column {value!r} to rank by")
    at = at or datetime.now(UTC)
    rng = np.random.default_rng(plan.seed)
    total = scored.groupby("household_id")[value].sum().sort_values(ascending=False, kind="stable")
    ids = total.index.to_numpy()
    n = len(ids)
    explore_n = round(plan.exploration_share * plan.capacity)
    top_n = min(n, int(np.ceil((plan.capacity - explore_n) / (1 - plan.holdout_share))))
    top = ids[:top_n]

    # Stratified holdout: within each run of consecutive ranks, the same share set aside; the
    # remainders go to the strata with the largest fractions, so the contacts fill the capacity.
    stratum = np.minimum(np.arange(top_n) * plan.strata // max(top_n, 1), plan.strata - 1)
    sizes = np.bincount(stratum, minlength=plan.strata)
    wanted = max(top_n - (plan.capacity - explore_n), 0)
    exact = wanted * sizes / max(top_n, 1)
    quota = np.floor(exact).astype(int)
    extra = np.argsort(-(exact - quota) + rng.random(plan.strata) * np.finfo(float).eps, kind="stable")[
        : wanted - quota.sum()
    ]
    quota[extra] += 1
    holdout = np.zeros(top_n, dtype=bool)
    for s in range(plan.strata):
        members = np.flatnonzero(stratum == s)
        holdout[rng.choice(members, size=min(quota[s], len(members)), replace=False)] = True

    below = ids[top_n:] if plan.band is None else ids[top_n : top_n + plan.band]
    open_ = _law_open(scored).reindex(below, fill_value=False)
    pool = open_[open_].index.to_numpy()
    explore_n = min(explore_n, len(pool))
    explored = np.zeros(len(pool), dtype=bool)
    explored[rng.choice(len(pool), size=explore_n, replace=False)] = True
    explore_p = explore_n / len(pool) if len(pool) else 0.0

    rank = pd.Series(np.arange(1, n + 1), index=ids)
    out = pd.DataFrame(
        {
            "household_id": np.concatenate([top, pool]),
            "arm": np.concatenate([np.where(holdout, "holdout", "contact"), np.where(explored, "explore", "pool")]),
            "stratum": np.concatenate([stratum, np.full(len(pool), plan.strata)]),
            "propensity": np.concatenate([np.full(top_n, 1 - plan.holdout_share), np.full(len(pool), explore_p)]),
        }
    )
    out["rank"] = out["household_id"].map(rank).to_numpy()
    out["expected_monthly"] = out["household_id"].map(total).round(2).to_numpy()
    out["contacted"] = out["arm"].isin(CONTACTED_ARMS)
    out["benefits"] = out["household_id"].map(discussed_benefits(scored)).fillna("").to_numpy()
    out["campaign_id"] = campaign_id(at, plan.seed)
    out["arm"] = pd.Categorical(out["arm"], categories=list(CAMPAIGN_ARMS))
    return out[list(CAMPAIGN_COLUMNS)].sort_values("rank", kind="stable").reset_index(drop=True)


def pair_disagreements(campaign: pd.DataFrame, picks: np.ndarray, seed: int) -> pd.DataFrame:
    """The campaign with its arms drawn again where another ranking disagrees with it: the top's
    households (``contact``, ``holdout``) not among ``picks``, and the ``picks`` the campaign put
    below its top (``explore``, ``pool``). As many of them are contacted as before, drawn at random
    among them all, each with the same propensity (near one half); their arm becomes ``explore``
    or ``pool``. The other households keep their arms, so the capacity is the same and every
    propensity is still the chance of a contact. ``picks`` outside the campaign are ignored."""
    arm = campaign["arm"].astype("object").to_numpy()
    picked = campaign["household_id"].isin(picks).to_numpy()
    at_top = np.isin(arm, ("contact", "holdout"))
    disputed = np.flatnonzero(at_top != picked)
    if len(disputed) == 0:
        return campaign
    contacts = int(campaign["contacted"].to_numpy()[disputed].sum())
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(disputed), dtype=bool)
    chosen[rng.choice(len(disputed), size=contacts, replace=False)] = True
    out = campaign.copy()
    out.loc[out.index[disputed], "arm"] = np.where(chosen, "explore", "pool")
    out.loc[out.index[disputed], "contacted"] = chosen
    out.loc[out.index[disputed], "propensity"] = contacts / len(disputed)
    out.loc[out.index[disputed], "stratum"] = int(campaign["stratum"].max()) + 1
    return out


def campaign_summary(campaign: pd.DataFrame) -> pd.DataFrame:
    """Households and expected amount per arm (what ``nonrecours campaign`` prints)."""
    g = campaign.groupby("arm", observed=False)
    return pd.DataFrame(
        {
            "households": g.size(),
            "propensity": g["propensity"].first().round(PROPENSITY_DIGITS),
            "expected_monthly": g["expected_monthly"].sum().round(0),
        }
    ).reset_index()
