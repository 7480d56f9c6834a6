"""Household profiles: one row per household and benefit, built from the observed tables and the
law engine's entitlements. The one feature builder: training, batch scoring and the API call it.

Where it sits: after ``entitlements`` and before ``train``/``score``. Pure: data frames in, a new
data frame out; no label is read, so scoring never needs one (labels: :func:`build_labels`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonrecours.core.schema import AGE_BANDS, BENEFITS, PROFILES, validate
from nonrecours.law.parameters import load_law_parameters

PAY_DROP_THRESHOLD = 0.30
"""A fall of 30% or more of monthly pay against last year's average counts as a drop."""
AGE_BAND_UPPER = (25, 30, 45, 60, 65)
"""Upper bounds (excluded) of the schema's ``AGE_BANDS`` but the last one."""
ADULT_AGE = 18
INFANT_AGE = 3
"""Children under 3 count apart: a young child's care and family benefits differ."""
MAX_RENT_BURDEN = 5.0
"""Rent over known income is capped here (a household with rent and no known income gets it)."""


def _age_band(age: pd.Series) -> pd.Categorical:
    codes = np.select([age < bound for bound in AGE_BAND_UPPER], list(AGE_BANDS[:-1]), AGE_BANDS[-1])
    return pd.Categorical(codes, categories=list(AGE_BANDS))


def household_summary(individuals: pd.DataFrame) -> pd.DataFrame:
    """Per household: composition, income and the reference person's attributes."""
    ind = individuals
    hid = ind["household_id"]
    age = ind["age"].astype(int)
    adult = age >= ADULT_AGE
    # NA where the agency holds no quarterly declaration; a self-employed member's turnover counts as declared
    pay_known = ind["known_pay_monthly"].astype("Float64").astype(float) + ind["known_turnover_monthly"].astype(
        "Float64"
    ).astype(float)
    known = pay_known + ind["pension_monthly"] + ind["unemployment_benefit_monthly"]
    declared = ind["declared_pay_last_year"] / 12 + ind["pension_monthly"] + ind["unemployment_benefit_monthly"]
    g = pd.DataFrame(
        {
            "household_id": hid,
            "adult": adult,
            "child": ~adult,
            "under_3": age < INFANT_AGE,
            "known": known,
            "declared": declared,
            "pay_known": pay_known,
            "pay_declared": ind["declared_pay_last_year"] / 12,
            "pension": ind["pension_monthly"],
            "unemployment": ind["unemployment_benefit_monthly"],
            "higher": ind["higher_education"].fillna(False).astype(bool),
            "disabled": ind["disability_rate"].astype("Float64").fillna(0).astype(float)
            > 0,  # as recorded: NA is no record
            "age": age,
            "unit": ind["benefit_unit"],
        }
    ).groupby("household_id")
    s = g.agg(
        n_persons=("adult", "size"),
        n_adults=("adult", "sum"),
        n_children=("child", "sum"),
        n_under_3=("under_3", "sum"),
        declared=("declared", "sum"),
        pay_declared=("pay_declared", "sum"),
        pension=("pension", "sum"),
        unemployment=("unemployment", "sum"),
        any_higher_education=("higher", "any"),
        any_disability=("disabled", "any"),
        oldest_age=("age", "max"),
        n_benefit_units=("unit", "nunique"),
    )
    # Known income is unknown as soon as one member's recent pay is: NA, never 0.
    s["known"] = g["known"].sum(min_count=1).where(g["known"].count() == g["known"].size())
    s["pay_known"] = g["pay_known"].sum(min_count=1).where(g["pay_known"].count() == g["pay_known"].size())
    heads = (
        ind[(ind["role"] == "head") & (ind["benefit_unit"] == 0)]
        .drop_duplicates("household_id")
        .set_index("household_id")
    )
    s["consumption_units"] = load_law_parameters().equivalence_scale.units(hid, age).reindex(s.index)
    s["head_age"] = heads["age"].reindex(s.index)
    s["head_activity"] = heads["activity"].reindex(s.index)
    s["head_sex"] = heads["sex"].reindex(s.index)
    s["head_nationality_group"] = heads["nationality_group"].reindex(s.index)
    return s


def build_profiles(individuals: pd.DataFrame, households: pd.DataFrame, entitlements: pd.DataFrame) -> pd.DataFrame:
    """One row per household and benefit, in ``PROFILES`` form (validated).

    Households without members or without entitlements rows are not profiled: there is nothing to
    say about them. Row order: by household, then benefit.
    """
    s = household_summary(individuals)
    hh = households.set_index("household_id").loc[lambda d: d.index.isin(s.index)]
    s = s.reindex(hh.index)

    receives = pd.DataFrame({b: hh[f"receives_{b}"].astype("Float64").astype(float) for b in BENEFITS}, index=hh.index)
    base = pd.DataFrame(index=hh.index)
    for c in ("household_type", "tenure", "territory_type", "reported_event"):
        base[c] = hh[c]
    for c in (
        "n_persons",
        "n_adults",
        "n_children",
        "n_under_3",
        "n_benefit_units",
        "oldest_age",
        "head_age",
        "head_activity",
        "any_higher_education",
        "consumption_units",
        "head_sex",
        "any_disability",
        "head_nationality_group",
    ):
        base[c] = s[c]
    cu = s["consumption_units"]
    base["income_known_per_cu"] = s["known"] / cu
    base["income_declared_per_cu"] = s["declared"] / cu
    # Shares and rent burden on the best income the agency has: recent where held, else declared.
    best = s["known"].fillna(s["declared"]).to_numpy(dtype=float)
    rent = hh["rent_monthly"].astype("Float64").astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(s["pay_declared"] > 0, s["pay_known"].to_numpy(dtype=float) / s["pay_declared"] - 1, np.nan)
        base["pension_share"] = np.where(best > 0, s["pension"] / best, 0.0)
        base["unemployment_share"] = np.where(best > 0, s["unemployment"] / best, 0.0)
        # rent over income; rent without income: the cap; no rent: 0; rent not held: NA (stays NA)
        burden = np.where(best > 0, rent / best, np.where(rent > 0, MAX_RENT_BURDEN, 0.0))
        base["rent_burden"] = np.where(np.isnan(rent), np.nan, np.clip(burden, 0, MAX_RENT_BURDEN))
    base["pay_change"] = change
    base["pay_drop"] = np.nan_to_num(change, nan=0.0) <= -PAY_DROP_THRESHOLD
    base["rent_monthly"] = rent
    base["digital_exclusion"] = hh["digital_exclusion"].astype(bool)
    base["contacts_last_year"] = hh["contacts_last_year"]
    for b in BENEFITS:
        base[f"receives_{b}"] = receives[b]
    base["benefits_received"] = receives.fillna(0).sum(axis=1).astype(int)
    base["age_band"] = _age_band(s["head_age"]).astype(object)

    ent = entitlements[entitlements["household_id"].isin(hh.index)]
    eligible_count = ent.groupby("household_id")["eligible"].sum()
    base["law_eligible_count"] = eligible_count.reindex(hh.index).fillna(0).astype(int)
    base["law_estimated_inputs"] = (
        ent.drop_duplicates("household_id")
        .set_index("household_id")["estimated_inputs"]
        .astype("object")
        .reindex(hh.index)
        .fillna("none")
    )
    long = ent[["household_id", "benefit", "eligible", "monthly_amount"]].rename(
        columns={"eligible": "law_eligible", "monthly_amount": "law_amount"}
    )
    long = long.astype({"benefit": "object"})
    out = long.merge(base.reset_index(), on="household_id", how="inner", validate="m:1")
    rec = receives.reset_index().melt(id_vars="household_id", var_name="benefit", value_name="receives_this")
    out = out.merge(rec, on=["household_id", "benefit"], how="left", validate="1:1")
    out = out.sort_values(
        ["household_id", "benefit"],
        key=lambda c: c.map({b: i for i, b in enumerate(BENEFITS)}) if c.name == "benefit" else c,
        kind="stable",
    )
    return validate(out, PROFILES)


def build_labels(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The target, apart from the features: eligible today and not claimed (truth only)."""
    o = outcomes[["household_id", "benefit", "eligible", "claimed", "monthly_amount", "p_claim"]].copy()
    o["target"] = o["eligible"] & ~o["claimed"]
    o["unclaimed_amount"] = np.where(o["target"], o["monthly_amount"], 0.0)
    o = o.rename(columns={"eligible": "true_eligible", "monthly_amount": "true_amount"})
    return o[["household_id", "benefit", "target", "unclaimed_amount", "true_eligible", "true_amount", "p_claim"]]
