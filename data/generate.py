"""The synthetic population: a true situation, what an agency observes of it, and who claims what.

Where it sits: the first stage. ``nonrecours generate`` writes ``individuals.parquet`` and
``households.parquet`` (the observed view, schema in :mod:`nonrecours.schema`) and
``outcomes.parquet`` (the truth). Later stages read only the observed tables for features and
only the outcomes for labels.

How it is drawn, in order:

1. Households and their members *as they were three months ago*: composition (INSEE shares),
   ages, sex, activity, pay, pensions, unemployment benefit, disability, nationality group,
   education, territory and commune, tenure and rent, digital exclusion, contacts.
2. Recent events turn that into the *true* situation today: job loss, new job, irregular hours,
   separation, birth. A share of them is reported to the agency (a scenario setting).
3. OpenFisca-France on the true situation gives true eligibility and amounts.
4. Claim decisions among the eligible: a logistic model whose effects follow the published
   determinants; each benefit's intercept is solved so that non-take-up equals the published
   rate (see ``data/calibration.yaml``; rates marked ``assumption`` are not published figures:
   aide_logement, af and aah).
5. The observed view: last year's declared pay and the latest monthly pay the agency can see,
   compositions as last reported, and receipt of the benefits the holder pays.

Everything is drawn from one seeded ``numpy`` generator, so a seed gives the same files.
The shares and distributions that are not published figures are assumptions, marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from data.calibration import Calibration
from data.summary import calibration_summary
from features.entitlements import run_law_engine
from nonrecours.config import Settings
from nonrecours.schema import BENEFITS

CLAIM_ORDER = ("af", "aah", "aide_logement", "rsa", "ppa", "css_free", "css_contrib", "aspa")
"""Order in which claim decisions are drawn: an earlier claim puts the household in contact."""

# Communes by kind of territory, with their housing-aid zone in OpenFisca-France's zoning file
# (1: Paris agglomeration, 2: large cities, 3: elsewhere). Illustrative, not a sample.
COMMUNES = {
    "paris_agglo": ("75056", "93066", "92050", "94028", "91228", "95018"),
    "large_urban": ("69123", "13055", "59350", "31555", "44109", "35238", "67482", "33063"),
    "small_urban": ("87085", "86194", "23096", "19031", "24037", "46042", "08105"),
    "rural": ("01002", "15187", "12145", "48095", "01001", "01004"),
}

SMIC_GROSS_MONTHLY = 1801.80
"""Gross monthly minimum wage, 1 January 2025 (décret n° 2024-951): the floor of full-time pay."""

ARE_MAX_MONTHLY = 8_400.0
"""Unemployment insurance is capped (about 280 EUR a day in 2025, Unédic): without the cap the
pay distribution's tail gave a benefit of 60,000 EUR a month at 125,000 households (seen here)."""

# Age bands of the household's reference person by household type (assumption: shaped on INSEE
# census age pyramids of reference persons). Each row: (low, high, weight).
HEAD_AGE_BANDS = {
    "single_person": ((20, 29, 0.17), (30, 44, 0.15), (45, 59, 0.20), (60, 74, 0.25), (75, 95, 0.23)),
    "couple_no_child": ((20, 29, 0.08), (30, 44, 0.10), (45, 59, 0.20), (60, 74, 0.37), (75, 92, 0.25)),
    "couple_with_children": ((22, 29, 0.08), (30, 44, 0.55), (45, 59, 0.35), (60, 68, 0.02)),
    "single_parent": ((20, 29, 0.10), (30, 44, 0.50), (45, 59, 0.37), (60, 68, 0.03)),
    "other": ((18, 29, 0.50), (30, 44, 0.20), (45, 59, 0.15), (60, 80, 0.15)),
}
CHILDREN_COUNT = {  # assumption, close to INSEE family sizes
    "couple_with_children": ((1, 0.42), (2, 0.40), (3, 0.14), (4, 0.04)),
    "single_parent": ((1, 0.58), (2, 0.30), (3, 0.09), (4, 0.03)),
}
# Activity by age of adults (assumption, shaped on INSEE activity and employment rates).
ACTIVITY_BY_AGE = (  # (low, high, {activity: p})
    (18, 24, {"student": 0.45, "employed": 0.38, "unemployed": 0.10, "inactive": 0.07}),
    (25, 54, {"employed": 0.80, "unemployed": 0.07, "inactive": 0.13}),
    (55, 61, {"employed": 0.65, "unemployed": 0.06, "inactive": 0.14, "retired": 0.15}),
    (62, 66, {"employed": 0.25, "retired": 0.70, "inactive": 0.05}),
    (67, 120, {"retired": 0.97, "inactive": 0.03}),
)
EVENT_RATES = {  # per person or household over the last four months (assumption)
    "job_loss": 0.035,
    "new_job": 0.12,
    "irregular_hours": 0.20,
    "separation": 0.012,
    "birth": 0.025,
}


@dataclass(frozen=True)
class Population:
    """What the generator produces; the three tables are the files it writes."""

    individuals: pd.DataFrame
    households: pd.DataFrame
    outcomes: pd.DataFrame
    summary: dict


def _choice(rng: np.random.Generator, options: dict[str, float], size: int) -> np.ndarray:
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=size, p=p / p.sum())]


def _band_ages(rng: np.random.Generator, bands, size: int) -> np.ndarray:
    w = np.array([b[2] for b in bands], dtype=float)
    pick = rng.choice(len(bands), size=size, p=w / w.sum())
    low = np.array([b[0] for b in bands])[pick]
    high = np.array([b[1] for b in bands])[pick]
    return rng.integers(low, high + 1)


def draw_households(n: int, rng: np.random.Generator, cal: Calibration) -> pd.DataFrame:
    """Household type, reference person's age, territory and commune."""
    htype = _choice(rng, cal.household_type_share, n)
    head_age = np.zeros(n, dtype=int)
    for t, bands in HEAD_AGE_BANDS.items():
        m = htype == t
        head_age[m] = _band_ages(rng, bands, int(m.sum()))
    territory = _choice(rng, cal.territory_share, n)
    depcom = np.empty(n, dtype=object)
    for t, codes in COMMUNES.items():
        m = territory == t
        depcom[m] = np.array(codes, dtype=object)[rng.integers(0, len(codes), int(m.sum()))]
    return pd.DataFrame(
        {
            "household_id": np.arange(1, n + 1, dtype=np.int64),
            "household_type": htype,
            "head_age": head_age,
            "territory_type": territory,
            "depcom": depcom,
        }
    )


def draw_members(hh: pd.DataFrame, rng: np.random.Generator, cal: Calibration) -> pd.DataFrame:
    """One row per person: benefit unit, role, age, sex. Flatmates ("other") form two units."""
    n = len(hh)
    htype = hh["household_type"].to_numpy()
    head_age = hh["head_age"].to_numpy()
    head_female = np.where(
        htype == "single_parent",
        rng.random(n) < cal.single_parent_headed_by_mother,
        rng.random(n) < np.where(htype == "single_person", 0.55, 0.5),
    )
    frames = [
        pd.DataFrame(
            {"household_id": hh["household_id"], "benefit_unit": 0, "role": "head", "age": head_age, "female": head_female}
        )
    ]
    couple = np.isin(htype, ("couple_no_child", "couple_with_children"))
    partner_age = np.clip(head_age[couple] + np.rint(rng.normal(-2, 3, couple.sum())).astype(int), 18, 100)
    frames.append(
        pd.DataFrame(
            {
                "household_id": hh["household_id"].to_numpy()[couple],
                "benefit_unit": 0,
                "role": "partner",
                "age": partner_age,
                "female": ~head_female[couple],
            }
        )
    )
    other = htype == "other"
    frames.append(
        pd.DataFrame(
            {
                "household_id": hh["household_id"].to_numpy()[other],
                "benefit_unit": 1,
                "role": "head",
                "age": np.clip(head_age[other] + rng.integers(-5, 6, other.sum()), 18, 100),
                "female": rng.random(other.sum()) < 0.5,
            }
        )
    )
    n_children = np.zeros(n, dtype=int)
    for t, dist in CHILDREN_COUNT.items():
        m = htype == t
        counts = np.array([c for c, _ in dist])
        p = np.array([w for _, w in dist])
        n_children[m] = counts[rng.choice(len(counts), size=int(m.sum()), p=p / p.sum())]
    rows = np.repeat(np.arange(n), n_children)
    max_child_age = np.clip(head_age[rows] - 18, 0, 24)
    frames.append(
        pd.DataFrame(
            {
                "household_id": hh["household_id"].to_numpy()[rows],
                "benefit_unit": 0,
                "role": "child",
                "age": np.floor(rng.random(len(rows)) * (max_child_age + 1)).astype(int),
                "female": rng.random(len(rows)) < 0.49,
            }
        )
    )
    persons = pd.concat(frames, ignore_index=True)
    order = {"head": 0, "partner": 1, "child": 2}
    persons = persons.assign(_r=persons["role"].map(order)).sort_values(
        ["household_id", "benefit_unit", "_r", "age"], ascending=[True, True, True, False], kind="stable"
    )
    persons = persons.drop(columns="_r").reset_index(drop=True)
    persons.insert(0, "person_id", np.arange(1, len(persons) + 1, dtype=np.int64))
    return persons


def draw_resources(persons: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Activity, education, disability, pay, pensions and unemployment benefit, three months ago."""
    n = len(persons)
    age = persons["age"].to_numpy()
    female = persons["female"].to_numpy()
    adult = (persons["role"] != "child").to_numpy() | (age >= 18)
    activity = np.where(age < 3, "inactive", "student").astype(object)
    for low, high, dist in ACTIVITY_BY_AGE:
        m = adult & (age >= low) & (age <= high)
        activity[m] = _choice(rng, dist, int(m.sum()))
    higher_ed = adult & (rng.random(n) < np.select([age < 25, age < 45, age < 65], [0.20, 0.50, 0.33], 0.18))

    # Disability recognised by the MDPH: about 2.2% of working-age adults at 80% or more and 1.5%
    # between 50% and 79% (assumption, on the order of AAH recipients); most are out of work.
    u = rng.random(n)
    working_age = adult & (age >= 20) & (age < 65)
    rate = np.where(working_age & (u < 0.022), 0.8, np.where(working_age & (u < 0.037), 0.5 + 0.29 * rng.random(n), 0.0))
    activity[(rate > 0) & (rng.random(n) < 0.8) & (activity != "retired")] = "inactive"

    # Full-time-equivalent gross pay: the minimum wage plus a log-normal premium (median about
    # 2,700 EUR gross, as INSEE's private-sector median), higher with a degree, lower for women
    # (INSEE's gender gap in FTE pay is about 14%). Then a share of part-time and short contracts.
    fte = SMIC_GROSS_MONTHLY + rng.lognormal(np.log(900), 0.9, n) * np.where(higher_ed, 1.6, 1.0) * np.where(female, 0.8, 1.0)
    fraction = np.select(
        [rng.random(n) < 0.72, rng.random(n) < 0.64],
        [np.ones(n), rng.uniform(0.5, 0.8, n)],
        rng.uniform(0.2, 0.5, n),
    )
    employed = activity == "employed"
    pay = np.where(employed, fte * fraction, 0.0)
    student_job = (activity == "student") & (age >= 18) & (rng.random(n) < 0.25)
    pay = np.where(student_job, rng.uniform(400, 900, n), pay)
    # Unemployment insurance: about 60% of the unemployed are paid, about 57% of former gross pay.
    unemployed = activity == "unemployed"
    unemployment = np.where(unemployed & (rng.random(n) < 0.6), np.minimum(0.57 * fte * rng.uniform(0.6, 1.0, n), ARE_MAX_MONTHLY), 0.0)
    # Gross pensions: median about 1,750 EUR for men, a quarter less for women (DREES, "Les
    # retraités et les retraites"); disability pensions are not modelled.
    retired = activity == "retired"
    pension = np.where(retired, rng.lognormal(np.log(1750), 0.45, n) * np.where(female, 0.75, 1.0), 0.0)
    return persons.assign(
        activity=activity,
        higher_education=higher_ed,
        disability_rate=np.round(rate, 2),
        pay=np.round(pay, 2),
        unemployment=np.round(unemployment, 2),
        pension_monthly=np.round(pension, 2),
        fte=fte,
    )


def household_attributes(hh: pd.DataFrame, persons: pd.DataFrame, rng: np.random.Generator, cal: Calibration) -> pd.DataFrame:
    """Nationality group, tenure, rent, digital exclusion and contacts, from composition and income."""
    n = len(hh)
    income = (persons["pay"] + persons["pension_monthly"] + persons["unemployment"]).groupby(persons["household_id"]).sum()
    size = persons.groupby("household_id").size()
    cu = 1 + 0.5 * (size - 1)  # rough consumption units, only to rank households here
    rank = (income / cu).reindex(hh["household_id"]).rank(pct=True).to_numpy()
    head_age = hh["head_age"].to_numpy()
    htype = hh["household_type"].to_numpy()

    owner = np.select([head_age < 30, head_age < 45, head_age < 60], [0.12, 0.42, 0.60], 0.74) * (0.45 + rank)
    social = 0.36 * (1 - rank) ** 1.3 + np.where(htype == "single_parent", 0.15, 0.0)
    free = np.full(n, 0.03)
    private = np.clip(1 - owner - social - free, 0.05, None)
    w = np.stack([owner, social, private, free], axis=1)
    w = w / w.sum(axis=1, keepdims=True)
    pick = (rng.random(n)[:, None] > np.cumsum(w, axis=1)).sum(axis=1)
    tenure = np.array(["owner", "social_renter", "private_renter", "free_housing"], dtype=object)[np.minimum(pick, 3)]

    # Rent excluding charges: surface (m²) times a price per m² by territory (assumption, on the
    # order of the rent observatories' figures); social rents about 6.5 EUR/m².
    surface = 25 + 17 * (size.reindex(hh["household_id"]).to_numpy() - 1) + rng.normal(0, 6, n).clip(-10, 20)
    per_m2 = hh["territory_type"].map({"paris_agglo": 24.0, "large_urban": 13.0, "small_urban": 10.0, "rural": 8.5}).to_numpy()
    rent = np.select(
        [tenure == "private_renter", tenure == "social_renter"],
        [surface * per_m2 * rng.lognormal(0, 0.15, n), surface * 6.5 * rng.lognormal(0, 0.1, n)],
        0.0,
    )
    # Digital exclusion: INSEE finds 15.4% of people aged 15+ and 35% of those aged 60+ lack
    # basic digital skills; rural and low-income households more often.
    p_digital = np.where(head_age >= 60, cal.illectronisme_60_plus, 0.08) + np.where(hh["territory_type"] == "rural", 0.04, 0) + 0.06 * (1 - rank)
    nationality = _choice(rng, {"french": 0.92, "eu": 0.03, "non_eu": 0.05}, n)  # INSEE: 7.7% foreigners, a third EU
    contacts = rng.poisson(0.3 + 2.5 * (1 - rank) ** 2 + np.where(htype == "single_parent", 0.5, 0.0))
    return hh.assign(
        tenure=tenure,
        rent_monthly=np.round(rent, 2),
        digital_exclusion=rng.random(n) < p_digital,
        nationality_group=nationality,
        contacts_last_year=contacts,
        income_rank=rank,
    )


def draw_events(persons: pd.DataFrame, hh: pd.DataFrame, rng: np.random.Generator, reported_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recent events: pay and activity today (``*_recent``), what the agency knows (``*_known``),
    which members still live there (``in_truth``) and which the agency lists (``in_observed``)."""
    n = len(persons)
    adult = (persons["role"] != "child").to_numpy()
    activity = persons["activity"].to_numpy()
    age = persons["age"].to_numpy()
    pay = persons["pay"].to_numpy()
    unemp = persons["unemployment"].to_numpy()

    job_loss = adult & (activity == "employed") & (age < 62) & (rng.random(n) < EVENT_RATES["job_loss"])
    new_job = adult & (activity == "unemployed") & (rng.random(n) < EVENT_RATES["new_job"])
    irregular = adult & (activity == "employed") & ~job_loss & (rng.random(n) < EVENT_RATES["irregular_hours"])
    pay_recent = pay.copy()
    pay_recent[job_loss] = 0.0
    pay_recent[new_job] = (persons["fte"].to_numpy() * rng.uniform(0.3, 1.0, n))[new_job]
    pay_recent[irregular] = (pay * rng.lognormal(0, 0.3, n))[irregular]
    unemp_recent = unemp.copy()
    unemp_recent[job_loss] = np.where(rng.random(n) < 0.7, np.minimum(0.57 * pay, ARE_MAX_MONTHLY), 0.0)[job_loss]
    unemp_recent[new_job] = 0.0
    activity_recent = activity.copy()
    activity_recent[job_loss] = "unemployed"
    activity_recent[new_job] = "employed"

    hid = persons["household_id"].to_numpy()
    htype = hh.set_index("household_id")["household_type"]
    head_age = hh.set_index("household_id")["head_age"]
    hh_ids = hh["household_id"].to_numpy()
    is_couple = htype.isin(["couple_no_child", "couple_with_children"]).to_numpy()
    separation = is_couple & (rng.random(len(hh)) < EVENT_RATES["separation"])
    birth = is_couple & ~separation & (head_age.to_numpy() <= 42) & (rng.random(len(hh)) < EVENT_RATES["birth"])
    person_event = pd.Series(job_loss | new_job, index=persons.index)
    reported_person = rng.random(n) < reported_share
    reported_hh = rng.random(len(hh)) < reported_share

    separated = pd.Series(separation, index=hh_ids)
    leaves = (persons["role"] == "partner").to_numpy() & separated.reindex(hid).to_numpy()
    persons = persons.assign(
        activity_recent=activity_recent,
        pay_recent=np.round(pay_recent, 2),
        unemployment_recent=np.round(unemp_recent, 2),
        in_truth=~leaves,
        in_observed=~(leaves & reported_hh[np.searchsorted(hh_ids, hid)]),
        job_event=np.select([job_loss, new_job], ["job_loss", "new_job"], "none"),
        event_reported=person_event.to_numpy() & reported_person,
    )
    # Newborns live in the true household; the agency lists them only once the birth is reported.
    b = np.flatnonzero(birth)
    babies = pd.DataFrame(
        {
            "person_id": persons["person_id"].max() + 1 + np.arange(len(b), dtype=np.int64),
            "household_id": hh_ids[b],
            "benefit_unit": 0,
            "role": "child",
            "age": 0,
            "female": rng.random(len(b)) < 0.49,
            "activity": "inactive",
            "higher_education": False,
            "disability_rate": 0.0,
            "pay": 0.0,
            "unemployment": 0.0,
            "pension_monthly": 0.0,
            "fte": 0.0,
            "activity_recent": "inactive",
            "pay_recent": 0.0,
            "unemployment_recent": 0.0,
            "in_truth": True,
            "in_observed": reported_hh[b],
            "job_event": "none",
            "event_reported": False,
        }
    )
    persons = pd.concat([persons, babies], ignore_index=True)
    persons = persons.sort_values(["household_id", "benefit_unit", "person_id"], kind="stable").reset_index(drop=True)

    job_hh = (persons["job_event"] != "none").groupby(persons["household_id"]).any()
    job_reported = persons[persons["event_reported"]].groupby("household_id")["job_event"].first()
    reported_event = pd.Series("none", index=hh_ids, dtype=object)
    reported_event[job_reported.index] = job_reported.to_numpy()
    reported_event[hh_ids[birth & reported_hh]] = "birth"
    reported_event[hh_ids[separation & reported_hh]] = "separation"
    hh = hh.assign(
        recent_event=separation | birth | job_hh.reindex(hh_ids).fillna(False).to_numpy(dtype=bool),
        reported_event=reported_event.to_numpy(),
        separation=separation,
        birth=birth,
    )
    return persons, hh


def _household_type(persons: pd.DataFrame, hh_ids: np.ndarray) -> np.ndarray:
    """INSEE household type from the members listed."""
    hid = persons["household_id"]
    units = (persons["benefit_unit"].groupby(hid).max() + 1).reindex(hh_ids).fillna(1).to_numpy()
    partners = (persons["role"] == "partner").groupby(hid).any().reindex(hh_ids, fill_value=False).to_numpy()
    children = (persons["role"] == "child").groupby(hid).any().reindex(hh_ids, fill_value=False).to_numpy()
    return np.select(
        [units > 1, partners & children, partners, children],
        ["other", "couple_with_children", "couple_no_child", "single_parent"],
        "single_person",
    )


def true_situation(persons: pd.DataFrame, hh: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = persons[persons["in_truth"]]
    situation = pd.DataFrame(
        {
            "household_id": p["household_id"],
            "person_id": p["person_id"],
            "benefit_unit": p["benefit_unit"],
            "role": p["role"],
            "age": p["age"],
            "activity": p["activity_recent"],
            "pay_recent": p["pay_recent"],
            "pay_earlier": p["pay"],
            "unemployment_recent": p["unemployment_recent"],
            "unemployment_earlier": p["unemployment"],
            "pension_monthly": p["pension_monthly"],
            "disability_rate": p["disability_rate"],
        }
    ).reset_index(drop=True)
    return situation, hh[["household_id", "tenure", "rent_monthly", "depcom"]]


def draw_claims(
    entitlements: pd.DataFrame,
    drivers: pd.DataFrame,
    rng: np.random.Generator,
    cal: Calibration,
) -> pd.DataFrame:
    """Claim decisions among the eligible, benefit by benefit in :data:`CLAIM_ORDER`.

    ``drivers`` has one row per household (index ``household_id``) with the true determinants.
    Each benefit's intercept is solved so that the mean non-take-up over its eligible households
    equals the calibration target; the draw then follows those probabilities.
    """
    cm = cal.claim_model
    wide_amount = entitlements.pivot(index="household_id", columns="benefit", values="monthly_amount")
    wide_elig = entitlements.pivot(index="household_id", columns="benefit", values="eligible")
    d = drivers.reindex(wide_amount.index)
    base = (
        d["tenure"].map(cm.tenure).to_numpy(dtype=float)
        + d["territory_type"].map(cm.territory).to_numpy(dtype=float)
        + cm.single_mother * d["single_mother"].to_numpy()
        + cm.couple_no_child * d["couple_no_child"].to_numpy()
        + cm.age_25_29 * d["age_25_29"].to_numpy()
        + cm.higher_education * d["higher_education"].to_numpy()
        + cm.digital_exclusion * d["digital_exclusion"].to_numpy()
        + cm.recent_event * d["recent_event"].to_numpy()
        + cm.latent_sd * rng.standard_normal(len(d))
    )
    in_contact = np.zeros(len(d), dtype=bool)
    claimed = {}
    p_claim = {}
    for b in CLAIM_ORDER:
        eligible = wide_elig[b].to_numpy(dtype=bool)
        amount = np.maximum(wide_amount[b].to_numpy(dtype=float), 1.0)
        slope = cm.log_amount_aspa if b == "aspa" else cm.log_amount
        x = base + slope * np.log(amount / 100) + cm.in_contact * in_contact
        if b == "aspa":
            x = x + cm.woman_aspa * d["head_female"].to_numpy()
        if b == "css_free":
            x = x + cm.css_free_if_claims_rsa * claimed["rsa"]
        target = 1 - cal.ntu[b]
        if eligible.any():
            xe = x[eligible]
            intercept = brentq(lambda a: expit(a + xe).mean() - target, -30, 30)
        else:
            intercept = 0.0
        p = np.where(eligible, expit(intercept + x), 0.0)
        claimed[b] = eligible & (rng.random(len(d)) < p)
        p_claim[b] = p
        in_contact |= claimed[b]
    idx = wide_amount.index
    long = pd.DataFrame(
        {
            "household_id": np.tile(idx.to_numpy(), len(BENEFITS)),
            "benefit": np.repeat(BENEFITS, len(idx)),
            "claimed": np.concatenate([claimed[b] for b in BENEFITS]),
            "p_claim": np.concatenate([p_claim[b] for b in BENEFITS]),
        }
    )
    out = entitlements.astype({"benefit": "object"}).merge(long, on=["household_id", "benefit"], how="left", validate="1:1")
    out["benefit"] = pd.Categorical(out["benefit"], categories=list(BENEFITS))
    return out[["household_id", "benefit", "eligible", "monthly_amount", "claimed", "p_claim"]]


def observe(persons: pd.DataFrame, hh: pd.DataFrame, outcomes: pd.DataFrame, settings: Settings, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The agency's view: last reported composition and income, benefits it sees paid."""
    p = persons[persons["in_observed"]].reset_index(drop=True)
    reported = p["event_reported"].to_numpy()
    # Monthly resource data reach the agency about three months late: it sees pay as it was
    # before any recent change, unless the change was reported.
    known_pay = np.where(reported, p["pay_recent"], p["pay"])
    declared = p["pay"].to_numpy() * 12 * np.clip(rng.normal(1, 0.02, len(p)), 0.9, 1.1)
    individuals = pd.DataFrame(
        {
            "person_id": p["person_id"],
            "household_id": p["household_id"],
            "benefit_unit": p["benefit_unit"],
            "role": p["role"],
            "age": p["age"],
            "sex": np.where(p["female"], "F", "M"),
            "activity": np.where(reported, p["activity_recent"], p["activity"]),
            "declared_pay_last_year": np.round(declared, 2),
            "known_pay_monthly": np.round(known_pay, 2),
            "pension_monthly": p["pension_monthly"],
            "unemployment_benefit_monthly": np.where(reported, p["unemployment_recent"], p["unemployment"]),
            "disability_rate": p["disability_rate"],
            "nationality_group": p["household_id"].map(hh.set_index("household_id")["nationality_group"]),
            "higher_education": p["higher_education"].astype(bool),
        }
    )
    hh_ids = hh["household_id"].to_numpy()
    wide_claimed = outcomes.pivot(index="household_id", columns="benefit", values="claimed").reindex(hh_ids)
    households = pd.DataFrame(
        {
            "household_id": hh_ids,
            "household_type": _household_type(p, hh_ids),
            "n_persons": p.groupby("household_id").size().reindex(hh_ids).fillna(0).to_numpy(dtype=int),
            "tenure": hh["tenure"].to_numpy(),
            "rent_monthly": hh["rent_monthly"].to_numpy(),
            "depcom": hh["depcom"].to_numpy(),
            "territory_type": hh["territory_type"].to_numpy(),
            "digital_exclusion": hh["digital_exclusion"].to_numpy(),
            "contacts_last_year": hh["contacts_last_year"].to_numpy(),
            "reported_event": hh["reported_event"].to_numpy(),
        }
    )
    seen = set(settings.scenario.observed_benefits)
    for b in BENEFITS:
        col = pd.array(wide_claimed[b].to_numpy(dtype=bool), dtype="boolean")
        households[f"receives_{b}"] = col if b in seen else pd.array([pd.NA] * len(hh_ids), dtype="boolean")
    return individuals, households


def generate(n_households: int, seed: int, settings: Settings, cal: Calibration, *, scheduler: str | None = None, quiet: bool = False) -> Population:
    """Draw a population of ``n_households``; deterministic for a given seed and settings."""
    if n_households < 1:
        raise ValueError(f"--households must be at least 1, got {n_households}")
    rng = np.random.default_rng(seed)
    hh = draw_households(n_households, rng, cal)
    persons = draw_members(hh, rng, cal)
    persons = draw_resources(persons, rng)
    hh = household_attributes(hh, persons, rng, cal)
    persons, hh = draw_events(persons, hh, rng, settings.scenario.reported_event_share)

    true_persons, true_hh = true_situation(persons, hh)
    truth = run_law_engine(true_persons, true_hh, law=settings.law, css=cal.css, scheduler=scheduler, quiet=quiet, description="law engine on the true situation")

    heads = persons[persons["in_truth"] & (persons["role"] == "head") & (persons["benefit_unit"] == 0)].set_index("household_id")
    true_type = pd.Series(_household_type(persons[persons["in_truth"]], hh["household_id"].to_numpy()), index=hh["household_id"])
    drivers = pd.DataFrame(
        {
            "tenure": hh.set_index("household_id")["tenure"],
            "territory_type": hh.set_index("household_id")["territory_type"],
            "single_mother": (true_type == "single_parent") & heads["female"],
            "couple_no_child": true_type == "couple_no_child",
            "age_25_29": heads["age"].between(25, 29),
            "higher_education": heads["higher_education"],
            "digital_exclusion": hh.set_index("household_id")["digital_exclusion"],
            "recent_event": hh.set_index("household_id")["recent_event"],
            "head_female": heads["female"],
        }
    ).fillna(False)
    outcomes = draw_claims(truth, drivers, rng, cal)
    individuals, households = observe(persons, hh, outcomes, settings, rng)
    summary = calibration_summary(
        outcomes=outcomes,
        households=households,
        true_persons=persons[persons["in_truth"]],
        true_type=true_type,
        drivers=drivers,
        hh=hh,
        cal=cal,
        n_households=n_households,
        seed=seed,
    )
    return Population(individuals=individuals, households=households, outcomes=outcomes, summary=summary)
