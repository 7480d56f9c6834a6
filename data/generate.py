"""The synthetic population: a true situation, what an agency observes of it, and who claims what.

Where it sits: the first stage. ``nonrecours generate`` writes ``individuals.parquet`` and
``households.parquet`` (the observed view, schema in :mod:`nonrecours.core.schema`) and
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

from nonrecours.core.config import Settings
from nonrecours.core.schema import BENEFITS
from nonrecours.data.calibration import Calibration
from nonrecours.data.summary import calibration_summary
from nonrecours.law.engine import run_law_engine
from nonrecours.law.parameters import load_law_parameters

CLAIM_ORDER = ("af", "aah", "aide_logement", "rsa", "ppa", "css_free", "css_contrib", "aspa")
"""Order in which claim decisions are drawn: an earlier claim puts the household in contact."""

MONTHS_PER_YEAR = 12

TENURES = ("owner", "social_renter", "private_renter", "free_housing")
"""Tenure codes in the order of the shares they are drawn with."""


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
    for t, bands in cal.shapes.head_age_bands.items():
        m = htype == t
        head_age[m] = _band_ages(rng, bands, int(m.sum()))
    territory = _choice(rng, cal.territory_share, n)
    depcom = np.empty(n, dtype=object)
    for t, codes in cal.shapes.communes.items():
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
    m = cal.shapes.members
    n = len(hh)
    htype = hh["household_type"].to_numpy()
    head_age = hh["head_age"].to_numpy()
    head_female = np.where(
        htype == "single_parent",
        rng.random(n) < cal.single_parent_headed_by_mother,
        rng.random(n) < np.where(htype == "single_person", m.women_heading_single_person, m.women_heading_otherwise),
    )
    frames = [
        pd.DataFrame(
            {"household_id": hh["household_id"], "benefit_unit": 0, "role": "head", "age": head_age, "female": head_female}
        )
    ]
    couple = np.isin(htype, ("couple_no_child", "couple_with_children"))
    gap = rng.normal(m.partner_age_gap["mean"], m.partner_age_gap["sd"], couple.sum())
    partner_age = np.clip(head_age[couple] + np.rint(gap).astype(int), m.adult_age, m.oldest_age)
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
                "age": np.clip(head_age[other] + rng.integers(m.flatmate_age_gap[0], m.flatmate_age_gap[1] + 1, other.sum()), m.adult_age, m.oldest_age),
                "female": rng.random(other.sum()) < m.women_among_flatmates,
            }
        )
    )
    n_children = np.zeros(n, dtype=int)
    for t, dist in m.children_count.items():
        of_type = htype == t
        counts = np.array([c for c, _ in dist])
        p = np.array([w for _, w in dist])
        n_children[of_type] = counts[rng.choice(len(counts), size=int(of_type.sum()), p=p / p.sum())]
    rows = np.repeat(np.arange(n), n_children)
    max_child_age = np.clip(head_age[rows] - m.adult_age, 0, m.oldest_child_age)
    frames.append(
        pd.DataFrame(
            {
                "household_id": hh["household_id"].to_numpy()[rows],
                "benefit_unit": 0,
                "role": "child",
                "age": np.floor(rng.random(len(rows)) * (max_child_age + 1)).astype(int),
                "female": rng.random(len(rows)) < m.girls_at_birth,
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


def _by_age(age: np.ndarray, table) -> np.ndarray:
    """The share of ``table`` (a :class:`nonrecours.data.calibration.ByAge`) for each age."""
    return np.select([age < bound for bound in table.below_age], list(table.share), table.share_older)


def draw_resources(persons: pd.DataFrame, rng: np.random.Generator, cal: Calibration) -> pd.DataFrame:
    """Activity, education, disability, pay, pensions and unemployment benefit, three months ago.
    The shapes (and their sources) are in ``data/population.yaml``."""
    s = cal.shapes
    pay_, dis, ue = s.pay, s.disability, s.unemployment
    n = len(persons)
    age = persons["age"].to_numpy()
    female = persons["female"].to_numpy()
    adult = (persons["role"] != "child").to_numpy() | (age >= s.members.adult_age)
    activity = np.where(age < s.infant_age, "inactive", "student").astype(object)
    for low, high, dist in s.activity_by_age:
        m = adult & (age >= low) & (age <= high)
        activity[m] = _choice(rng, dist, int(m.sum()))
    higher_ed = adult & (rng.random(n) < _by_age(age, s.higher_education))

    # Disability recognised by the MDPH (population.yaml: disability); most are out of work.
    u = rng.random(n)
    working_age = adult & (age >= dis.working_age[0]) & (age <= dis.working_age[1])
    rate = np.where(
        working_age & (u < dis.share_80_plus),
        dis.rate_80_plus,
        np.where(working_age & (u < dis.share_50_plus), dis.rate_50_79["low"] + dis.rate_50_79["width"] * rng.random(n), 0.0),
    )
    activity[(rate > 0) & (rng.random(n) < dis.out_of_work_share) & (activity != "retired")] = "inactive"

    # Full-time-equivalent gross pay: the minimum wage plus a log-normal premium, then a share of
    # part-time and short contracts (population.yaml: pay).
    premium = rng.lognormal(np.log(pay_.premium_median), pay_.premium_sigma, n)
    fte = pay_.smic_gross_monthly + premium * np.where(higher_ed, pay_.higher_education_factor, 1.0) * np.where(female, pay_.women_factor, 1.0)
    fraction = np.select(
        [rng.random(n) < pay_.full_time_share, rng.random(n) < pay_.part_time_share_of_rest],
        [np.ones(n), rng.uniform(*pay_.part_time_fraction, n)],
        rng.uniform(*pay_.short_contract_fraction, n),
    )
    employed = activity == "employed"
    pay = np.where(employed, fte * fraction, 0.0)
    student_job = (activity == "student") & (age >= s.members.adult_age) & (rng.random(n) < pay_.student_job_share)
    pay = np.where(student_job, rng.uniform(*pay_.student_job_pay, n), pay)
    # Unemployment insurance for a share of the unemployed, a share of former gross pay, capped.
    unemployed = activity == "unemployed"
    paid = unemployed & (rng.random(n) < ue.paid_share)  # drawn before the amounts: the seed's stream order
    unemployment = np.where(paid, np.minimum(ue.replacement_rate * fte * rng.uniform(*ue.replacement_draw, n), ue.max_monthly), 0.0)
    # Gross pensions (population.yaml: pension); disability pensions are not modelled.
    retired = activity == "retired"
    pension = np.where(retired, rng.lognormal(np.log(s.pension.median), s.pension.sigma, n) * np.where(female, s.pension.women_factor, 1.0), 0.0)
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
    cu = load_law_parameters().equivalence_scale.units(persons["household_id"])  # every member as 14+: only ranks households here
    rank = (income / cu).reindex(hh["household_id"]).rank(pct=True).to_numpy()
    head_age = hh["head_age"].to_numpy()
    htype = hh["household_type"].to_numpy()
    h, dx, c = cal.shapes.housing, cal.shapes.digital_exclusion, cal.shapes.contacts

    owner = _by_age(head_age, h.owner_by_head_age) * (h.owner_rank_base + rank)
    social = h.social_share * (1 - rank) ** h.social_rank_exponent + np.where(htype == "single_parent", h.social_single_parent_extra, 0.0)
    free = np.full(n, h.free_housing_share)
    private = np.clip(1 - owner - social - free, h.private_floor, None)
    w = np.stack([owner, social, private, free], axis=1)
    w = w / w.sum(axis=1, keepdims=True)
    pick = (rng.random(n)[:, None] > np.cumsum(w, axis=1)).sum(axis=1)
    tenure = np.array(TENURES, dtype=object)[np.minimum(pick, len(TENURES) - 1)]

    # Rent excluding charges: surface (m²) times a price per m² by territory (population.yaml: housing).
    noise = rng.normal(0.0, h.surface_noise["sd"], n).clip(*h.surface_noise["clip"])
    surface = h.surface_first_person + h.surface_per_other_person * (size.reindex(hh["household_id"]).to_numpy() - 1) + noise
    per_m2 = hh["territory_type"].map(h.rent_per_m2).to_numpy()
    rent = np.select(
        [tenure == "private_renter", tenure == "social_renter"],
        [surface * per_m2 * rng.lognormal(0, h.private_rent_sigma, n), surface * h.social_rent_per_m2 * rng.lognormal(0, h.social_rent_sigma, n)],
        0.0,
    )
    # Digital exclusion: INSEE's shares by age (calibration.yaml), more often rural and low-income.
    p_digital = (
        np.where(head_age >= dx.older_from_age, cal.illectronisme_60_plus, dx.under_60)
        + np.where(hh["territory_type"] == "rural", dx.rural_extra, 0)
        + dx.low_income_extra * (1 - rank)
    )
    nationality = _choice(rng, cal.shapes.nationality_share, n)
    contacts = rng.poisson(c.base + c.low_income * (1 - rank) ** 2 + np.where(htype == "single_parent", c.single_parent, 0.0))
    return hh.assign(
        tenure=tenure,
        rent_monthly=np.round(rent, 2),
        digital_exclusion=rng.random(n) < p_digital,
        nationality_group=nationality,
        contacts_last_year=contacts,
        income_rank=rank,
    )


def draw_events(persons: pd.DataFrame, hh: pd.DataFrame, rng: np.random.Generator, reported_share: float, cal: Calibration) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recent events: pay and activity today (``*_recent``), the event and whether it was reported
    (``job_event``, ``event_reported``; :func:`observe` turns these into what the agency knows),
    which members still live there (``in_truth``) and which the agency lists (``in_observed``)."""
    n = len(persons)
    adult = (persons["role"] != "child").to_numpy()
    activity = persons["activity"].to_numpy()
    age = persons["age"].to_numpy()
    pay = persons["pay"].to_numpy()
    unemp = persons["unemployment"].to_numpy()
    ev, ue = cal.shapes.events, cal.shapes.unemployment

    job_loss = adult & (activity == "employed") & (age < ev.job_loss_before_age) & (rng.random(n) < ev.job_loss)
    new_job = adult & (activity == "unemployed") & (rng.random(n) < ev.new_job)
    irregular = adult & (activity == "employed") & ~job_loss & (rng.random(n) < ev.irregular_hours)
    pay_recent = pay.copy()
    pay_recent[job_loss] = 0.0
    pay_recent[new_job] = (persons["fte"].to_numpy() * rng.uniform(*ev.new_job_pay_fraction, n))[new_job]
    pay_recent[irregular] = (pay * rng.lognormal(0, ev.irregular_pay_sigma, n))[irregular]
    unemp_recent = unemp.copy()
    unemp_recent[job_loss] = np.where(rng.random(n) < ev.job_loss_paid_share, np.minimum(ue.replacement_rate * pay, ue.max_monthly), 0.0)[job_loss]
    unemp_recent[new_job] = 0.0
    activity_recent = activity.copy()
    activity_recent[job_loss] = "unemployed"
    activity_recent[new_job] = "employed"

    hid = persons["household_id"].to_numpy()
    htype = hh.set_index("household_id")["household_type"]
    head_age = hh.set_index("household_id")["head_age"]
    hh_ids = hh["household_id"].to_numpy()
    is_couple = htype.isin(["couple_no_child", "couple_with_children"]).to_numpy()
    separation = is_couple & (rng.random(len(hh)) < ev.separation)
    birth = is_couple & ~separation & (head_age.to_numpy() <= ev.birth_up_to_head_age) & (rng.random(len(hh)) < ev.birth)
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
            "female": rng.random(len(b)) < cal.shapes.members.girls_at_birth,
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
    cm, shape = cal.claim_model, cal.shapes.claims
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
        amount = np.maximum(wide_amount[b].to_numpy(dtype=float), shape.min_amount)
        slope = cm.log_amount_aspa if b == "aspa" else cm.log_amount
        x = base + slope * np.log(amount / shape.amount_unit) + cm.in_contact * in_contact
        if b == "aspa":
            x = x + cm.woman_aspa * d["head_female"].to_numpy()
        if b == "css_free":
            x = x + cm.css_free_if_claims_rsa * claimed["rsa"]
        target = 1 - cal.ntu[b]
        if eligible.any():
            xe = x[eligible]
            intercept = brentq(lambda a: expit(a + xe).mean() - target, *shape.intercept_bracket)
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


def observe(persons: pd.DataFrame, hh: pd.DataFrame, outcomes: pd.DataFrame, settings: Settings, rng: np.random.Generator, cal: Calibration) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The agency's view: last reported composition and income, benefits it sees paid."""
    p = persons[persons["in_observed"]].reset_index(drop=True)
    reported = p["event_reported"].to_numpy()
    # Monthly resource data reach the agency about three months late: it sees pay as it was
    # before any recent change, unless the change was reported.
    known_pay = np.where(reported, p["pay_recent"], p["pay"])
    pay_ = cal.shapes.pay
    declared = p["pay"].to_numpy() * MONTHS_PER_YEAR * np.clip(rng.normal(1, pay_.declaration_noise_sd, len(p)), *pay_.declaration_noise_clip)
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
    persons = draw_resources(persons, rng, cal)
    hh = household_attributes(hh, persons, rng, cal)
    persons, hh = draw_events(persons, hh, rng, settings.scenario.reported_event_share, cal)

    true_persons, true_hh = true_situation(persons, hh)
    truth = run_law_engine(true_persons, true_hh, law=settings.law, css=load_law_parameters().css, scheduler=scheduler, quiet=quiet, description="law engine on the true situation")

    heads = persons[persons["in_truth"] & (persons["role"] == "head") & (persons["benefit_unit"] == 0)].set_index("household_id")
    true_type = pd.Series(_household_type(persons[persons["in_truth"]], hh["household_id"].to_numpy()), index=hh["household_id"])
    drivers = pd.DataFrame(
        {
            "tenure": hh.set_index("household_id")["tenure"],
            "territory_type": hh.set_index("household_id")["territory_type"],
            "single_mother": (true_type == "single_parent") & heads["female"],
            "couple_no_child": true_type == "couple_no_child",
            "age_25_29": heads["age"].between(*cal.shapes.claims.age_25_29),
            "higher_education": heads["higher_education"],
            "digital_exclusion": hh.set_index("household_id")["digital_exclusion"],
            "recent_event": hh.set_index("household_id")["recent_event"],
            "head_female": heads["female"],
        }
    ).fillna(False)
    outcomes = draw_claims(truth, drivers, rng, cal)
    individuals, households = observe(persons, hh, outcomes, settings, rng, cal)
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
