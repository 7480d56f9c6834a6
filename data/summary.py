"""The generator's calibration report: what the synthetic population looks like next to the
published figures it is tuned to (household shares, poverty, non-take-up and its gradients).

Where it sits: computed by :func:`nonrecours.data.generate.generate` and written as ``calibration.json``
beside the tables, printed by ``nonrecours generate``, checked by the calibration tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonrecours.core.schema import BENEFITS
from nonrecours.data.calibration import Calibration
from nonrecours.law.parameters import load_law_parameters

# Approximate net-to-gross ratios, used only to estimate the poverty rate of the population (a
# sanity check of the income distribution, not an input to any entitlement).
NET_PAY, NET_PENSION, NET_UNEMPLOYMENT = 0.78, 0.91, 0.93
POVERTY_LINE = 0.6
"""INSEE's monetary poverty line: 60% of the median equivalised income."""
TOLERANCE = 0.04
"""A simulated non-take-up within 4 points of its target counts as calibrated."""
ASPA_AMOUNT_BINS = (100, 200, 500)
"""EUR a month: the bins of DREES n°97's ASPA gradient (calibration.yaml: gradients)."""
DIGITS = 4
"""Shares and rates in the report are rounded to this many digits."""
CASH_BENEFITS = ("rsa", "ppa", "aide_logement", "aspa", "af", "aah")


def _ntu(claimed: pd.Series, mask: pd.Series | np.ndarray) -> float | None:
    sel = claimed[np.asarray(mask)]
    return None if len(sel) == 0 else round(float(1 - sel.mean()), DIGITS)


def poverty_rate(true_persons: pd.DataFrame, outcomes: pd.DataFrame) -> float:
    """Share of persons whose household's disposable income per OECD consumption unit is below
    60% of the median (INSEE's monetary poverty line); benefits count only where claimed."""
    hid = true_persons["household_id"]
    market = (
        NET_PAY * true_persons["pay_recent"]
        + NET_PENSION * true_persons["pension_monthly"]
        + NET_UNEMPLOYMENT * true_persons["unemployment_recent"]
    ).groupby(hid).sum()
    paid = outcomes[outcomes["benefit"].isin(CASH_BENEFITS) & outcomes["claimed"]]
    benefits = paid.groupby("household_id")["monthly_amount"].sum().reindex(market.index, fill_value=0)
    units = load_law_parameters().equivalence_scale.units(hid, true_persons["age"])
    equivalised = (market + benefits) / units
    persons = true_persons.groupby("household_id").size()
    per_person = np.repeat(equivalised.to_numpy(), persons.reindex(equivalised.index).to_numpy())
    line = POVERTY_LINE * np.median(per_person)
    return round(float((per_person < line).mean()), DIGITS)


def calibration_summary(
    *,
    outcomes: pd.DataFrame,
    households: pd.DataFrame,
    true_persons: pd.DataFrame,
    true_type: pd.Series,
    drivers: pd.DataFrame,
    hh: pd.DataFrame,
    cal: Calibration,
    n_households: int,
    seed: int,
) -> dict:
    eligible = outcomes[outcomes["eligible"]].copy()
    by_b = {b: g.set_index("household_id") for b, g in eligible.groupby("benefit", observed=True)}
    claimed_any = outcomes[outcomes["claimed"]].groupby("benefit", observed=True)["household_id"].apply(set).to_dict()

    benefits = {}
    for b in BENEFITS:
        g = by_b.get(b)
        ntu = None if g is None or g.empty else round(float(1 - g["claimed"].mean()), DIGITS)
        benefits[b] = {
            "eligible_households": 0 if g is None else int(len(g)),
            "eligible_share": round(0 if g is None else len(g) / n_households, DIGITS),
            "mean_monthly_amount": None if g is None or g.empty else round(float(g["monthly_amount"].mean()), 2),
            "ntu": ntu,
            "ntu_target": cal.ntu[b],
            "within_4_points": None if ntu is None else abs(ntu - cal.ntu[b]) <= TOLERANCE,
            "target_is_assumption": cal.ntu_is_assumption[b],
            "source": cal.ntu_source[b],
        }

    gradients: dict[str, dict[str, float | None]] = {}
    rsa = by_b.get("rsa")
    if rsa is not None and not rsa.empty:
        c = rsa["claimed"]
        has_al = rsa.index.isin(list(claimed_any.get("aide_logement", set())))
        has_af = rsa.index.isin(list(claimed_any.get("af", set())))
        d = drivers.reindex(rsa.index)
        ttype = true_type.reindex(rsa.index)
        gradients["rsa_housing_aid"] = {"with": _ntu(c, has_al), "without": _ntu(c, ~has_al)}
        gradients["rsa_family_benefits"] = {"with": _ntu(c, has_af), "without": _ntu(c, ~has_af)}
        gradients["rsa_tenure"] = {t: _ntu(c, d["tenure"] == t) for t in ("social_renter", "private_renter", "owner")}
        gradients["rsa_household_type"] = {
            "couple_no_child": _ntu(c, ttype == "couple_no_child"),
            "single_mother": _ntu(c, d["single_mother"].astype(bool)),
        }
        gradients["rsa_age"] = {"25_29": _ntu(c, d["age_25_29"].astype(bool)), "other": _ntu(c, ~d["age_25_29"].astype(bool))}
        gradients["rsa_education"] = {"higher": _ntu(c, d["higher_education"].astype(bool)), "other": _ntu(c, ~d["higher_education"].astype(bool))}
        gradients["rsa_territory"] = {t: _ntu(c, d["territory_type"] == t) for t in ("paris_agglo", "large_urban", "small_urban", "rural")}
        gradients["rsa_digital_exclusion"] = {"excluded": _ntu(c, d["digital_exclusion"].astype(bool)), "other": _ntu(c, ~d["digital_exclusion"].astype(bool))}
        gradients["rsa_recent_event"] = {"event": _ntu(c, d["recent_event"].astype(bool)), "none": _ntu(c, ~d["recent_event"].astype(bool))}
    aspa = by_b.get("aspa")
    if aspa is not None and not aspa.empty:
        low, mid, high = ASPA_AMOUNT_BINS
        c = aspa["claimed"]
        amt = aspa["monthly_amount"]
        d = drivers.reindex(aspa.index)
        gradients["aspa_amount"] = {
            f"<{low}": _ntu(c, amt < low),
            f"{low}-{mid}": _ntu(c, (amt >= low) & (amt < mid)),
            f"{mid}-{high}": _ntu(c, (amt >= mid) & (amt < high)),
            f">={high}": _ntu(c, amt >= high),
        }
        gradients["aspa_tenure"] = {
            "renter": _ntu(c, d["tenure"].isin(["social_renter", "private_renter"])),
            "owner": _ntu(c, d["tenure"] == "owner"),
        }
        gradients["aspa_sex"] = {"women": _ntu(c, d["head_female"].astype(bool)), "men": _ntu(c, ~d["head_female"].astype(bool))}

    shares = households["household_type"].astype("object").value_counts(normalize=True)
    return {
        "seed": seed,
        "households": n_households,
        "persons_observed": int(households["n_persons"].sum()),
        "persons_true": int(len(true_persons)),
        "household_type_share": {t: round(float(shares.get(t, 0.0)), DIGITS) for t in cal.household_type_share},
        "household_type_share_target": dict(cal.household_type_share),
        "tenure_share": {k: round(float(v), DIGITS) for k, v in hh["tenure"].value_counts(normalize=True).items()},
        "poverty_rate": poverty_rate(true_persons, outcomes),
        "poverty_rate_target": cal.poverty_rate,
        "recent_event_share": round(float(hh["recent_event"].mean()), DIGITS),
        "benefits": benefits,
        "gradients": gradients,
        "assumptions": sorted(b for b, a in cal.ntu_is_assumption.items() if a)
        + ["claim_model", "css_cover_value", "territory_share", "population_shapes"],
    }
