"""The synthetic population: the agency's world, quarter after quarter.

Where it sits: the first stage. ``nonrecours generate`` writes, per quarter, ``individuals.parquet``
and ``households.parquet`` (the agency's extract, schema in :mod:`nonrecours.core.schema`) and
``outcomes.parquet`` (the truth). Production reads only the extracts; the truth is for the
evaluation (and, later, playing the field).

How it is drawn, in order:

1. Households and their members at the *history quarter*, three months before the first one:
   composition (INSEE shares), ages, sex, activity, pay, pensions, unemployment benefit,
   disability, nationality, education, territory and commune, tenure and rent, digital exclusion,
   contacts; and what no agency table holds: savings, residence-permit seniority
   (:func:`draw_truth_only`).
2. The claim history: OpenFisca-France on the situation as households declared it then (without
   their savings) says who was entitled; who claimed follows four barriers (knowledge,
   complexity, fear, refusal: :mod:`nonrecours.data.behaviour`), with each benefit's intercepts
   solved so that non-take-up equals the published rate. Those claims are the agency's files.
3. Each quarter: events since the last one (job loss, new job, irregular hours, separation, birth;
   a share reported to the agency), OpenFisca-France on the true situation, the agency's extract
   (what it holds depends on what it pays: :func:`observe`), OpenFisca-France on that extract,
   and the claims: the agency keeps paying on its own file until it says the right ended, so some
   households it pays are no longer entitled (overpayments) and some are paid another amount;
   new claims (spontaneous, or a new spell's) are granted, refused or still pending
   (:func:`next_claims`). The truth keeps, per household and benefit, why an eligible household
   does not claim and whether it would claim by next quarter with and without an agent's contact.

Everything is drawn from one seeded ``numpy`` generator, so a seed gives the same files.
The shares and distributions that are not published figures are assumptions, marked as such in
``data/nonrecours/data/calibration.yaml`` and ``data/nonrecours/data/population.yaml``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.errors import UserError
from nonrecours.core.schema import BENEFITS, MONTHS_PER_YEAR, OUTCOMES
from nonrecours.data.behaviour import (
    BARRIERS,
    Quarter,
    Traits,
    barrier_logits,
    behaviour,
    quarter_behaviour,
    solve_history,
)
from nonrecours.data.calibration import Calibration
from nonrecours.data.summary import calibration_summary
from nonrecours.law.engine import run_law_engine
from nonrecours.law.parameters import load_law_parameters
from nonrecours.law.situation import entitlements_from_observed

QUARTERS_PER_YEAR = 4
TENURES = ("owner", "social_renter", "private_renter", "free_housing")
"""Tenure codes in the order of the shares they are drawn with."""


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
            {
                "household_id": hh["household_id"],
                "benefit_unit": 0,
                "role": "head",
                "age": head_age,
                "female": head_female,
            }
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
                "age": np.clip(
                    head_age[other] + rng.integers(m.flatmate_age_gap[0], m.flatmate_age_gap[1] + 1, other.sum()),
                    m.adult_age,
                    m.oldest_age,
                ),
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
    The shapes (and their sources) are in ``data/nonrecours/data/population.yaml``."""
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
        np.where(
            working_age & (u < dis.share_50_plus), dis.rate_50_79["low"] + dis.rate_50_79["width"] * rng.random(n), 0.0
        ),
    )
    activity[(rate > 0) & (rng.random(n) < dis.out_of_work_share) & (activity != "retired")] = "inactive"

    # Full-time-equivalent gross pay: the minimum wage plus a log-normal premium, then a share of
    # part-time and short contracts (population.yaml: pay).
    premium = rng.lognormal(np.log(pay_.premium_median), pay_.premium_sigma, n)
    fte = pay_.smic_gross_monthly + premium * np.where(higher_ed, pay_.higher_education_factor, 1.0) * np.where(
        female, pay_.women_factor, 1.0
    )
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
    unemployment = np.where(
        paid, np.minimum(ue.replacement_rate * fte * rng.uniform(*ue.replacement_draw, n), ue.max_monthly), 0.0
    )
    # Gross pensions (population.yaml: pension); disability pensions are not modelled.
    retired = activity == "retired"
    pension = np.where(
        retired,
        rng.lognormal(np.log(s.pension.median), s.pension.sigma, n) * np.where(female, s.pension.women_factor, 1.0),
        0.0,
    )
    # Micro-entrepreneurs (population.yaml: self_employed): drawn last, so that the draws above
    # keep their stream. Paid by turnover, not salary.
    se = s.self_employed
    self_employed = employed & (rng.random(n) < se.share_of_employed)
    income = rng.lognormal(np.log(se.income_median), se.income_sigma, n)
    turnover = np.where(self_employed, np.minimum(income / (1 - se.allowance), se.turnover_max_monthly), 0.0)
    activity[self_employed] = "self_employed"
    pay[self_employed] = 0.0
    return persons.assign(
        activity=activity,
        higher_education=higher_ed,
        disability_rate=np.round(rate, 2),
        pay=np.round(pay, 2),
        unemployment=np.round(unemployment, 2),
        pension_monthly=np.round(pension, 2),
        turnover=np.round(turnover, 2),
        fte=fte,
    )


def household_attributes(
    hh: pd.DataFrame, persons: pd.DataFrame, rng: np.random.Generator, cal: Calibration
) -> pd.DataFrame:
    """Nationality group, tenure, rent, digital exclusion and contacts, from composition and income."""
    n = len(hh)
    income = (
        (persons["pay"] + persons["pension_monthly"] + persons["unemployment"]).groupby(persons["household_id"]).sum()
    )
    size = persons.groupby("household_id").size()
    cu = load_law_parameters().equivalence_scale.units(
        persons["household_id"]
    )  # every member as 14+: only ranks households here
    rank = (income / cu).reindex(hh["household_id"]).rank(pct=True).to_numpy()
    head_age = hh["head_age"].to_numpy()
    htype = hh["household_type"].to_numpy()
    h, dx, c = cal.shapes.housing, cal.shapes.digital_exclusion, cal.shapes.contacts

    owner = _by_age(head_age, h.owner_by_head_age) * (h.owner_rank_base + rank)
    social = h.social_share * (1 - rank) ** h.social_rank_exponent + np.where(
        htype == "single_parent", h.social_single_parent_extra, 0.0
    )
    free = np.full(n, h.free_housing_share)
    private = np.clip(1 - owner - social - free, h.private_floor, None)
    w = np.stack([owner, social, private, free], axis=1)
    w = w / w.sum(axis=1, keepdims=True)
    pick = (rng.random(n)[:, None] > np.cumsum(w, axis=1)).sum(axis=1)
    tenure = np.array(TENURES, dtype=object)[np.minimum(pick, len(TENURES) - 1)]

    # Rent excluding charges: surface (m²) times a price per m² by territory (population.yaml: housing).
    low, high = h.surface_noise["clip"]  # type: ignore[misc]  # the clip entry is a Range, the sd a float
    noise = rng.normal(0.0, h.surface_noise["sd"], n).clip(low, high)
    surface = (
        h.surface_first_person + h.surface_per_other_person * (size.reindex(hh["household_id"]).to_numpy() - 1) + noise
    )
    per_m2 = hh["territory_type"].map(h.rent_per_m2).to_numpy()
    rent = np.select(
        [tenure == "private_renter", tenure == "social_renter"],
        [
            surface * per_m2 * rng.lognormal(0, h.private_rent_sigma, n),
            surface * h.social_rent_per_m2 * rng.lognormal(0, h.social_rent_sigma, n),
        ],
        0.0,
    )
    # Digital exclusion: INSEE's shares by age (calibration.yaml), more often rural and low-income.
    p_digital = (
        np.where(head_age >= dx.older_from_age, cal.illectronisme_60_plus, dx.under_60)
        + np.where(hh["territory_type"] == "rural", dx.rural_extra, 0)
        + dx.low_income_extra * (1 - rank)
    )
    nationality = _choice(rng, cal.shapes.nationality_share, n)
    contacts = rng.poisson(
        c.base + c.low_income * (1 - rank) ** 2 + np.where(htype == "single_parent", c.single_parent, 0.0)
    )
    return hh.assign(
        tenure=tenure,
        rent_monthly=np.round(rent, 2),
        digital_exclusion=rng.random(n) < p_digital,
        nationality_group=nationality,
        contacts_last_year=contacts,
        income_rank=rank,
    )


def draw_events(
    persons: pd.DataFrame, hh: pd.DataFrame, rng: np.random.Generator, reported_share: float, cal: Calibration
) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    unemp_recent[job_loss] = np.where(
        rng.random(n) < ev.job_loss_paid_share, np.minimum(ue.replacement_rate * pay, ue.max_monthly), 0.0
    )[job_loss]
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
    birth = (
        is_couple & ~separation & (head_age.to_numpy() <= ev.birth_up_to_head_age) & (rng.random(len(hh)) < ev.birth)
    )
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
        irregular=irregular,
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
            "turnover": 0.0,
            "fte": 0.0,
            "activity_recent": "inactive",
            "pay_recent": 0.0,
            "unemployment_recent": 0.0,
            "in_truth": True,
            "in_observed": reported_hh[b],
            "job_event": "none",
            "event_reported": False,
            "irregular": False,
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


def draw_truth_only(
    persons: pd.DataFrame, hh: pd.DataFrame, rng: np.random.Generator, cal: Calibration
) -> pd.DataFrame:
    """What no agency table holds: Livret A savings, nationality code and residence-permit
    seniority; and, drawn once (the same tax returns for every quarter of the year), last calendar
    year's declared pay and the pay and turnover of year N-2."""
    t, pay_ = cal.shapes.truth_only, cal.shapes.pay
    n = len(persons)
    adult = (persons["role"] != "child").to_numpy()
    rank = persons["household_id"].map(hh.set_index("household_id")["income_rank"]).to_numpy(dtype=float)
    older = np.where(
        persons["age"].to_numpy() >= cal.shapes.digital_exclusion.older_from_age, t.savings_older_factor, 1.0
    )
    holds = adult & (rng.random(n) < t.savings_holding_share)
    balance = rng.lognormal(np.log(t.savings_median * (1 + t.savings_rank_factor * rank) * older), t.savings_sigma)
    group = persons["household_id"].map(hh.set_index("household_id")["nationality_group"]).to_numpy()
    declared = (
        persons["pay"].to_numpy()
        * MONTHS_PER_YEAR
        * np.clip(rng.normal(1, pay_.declaration_noise_sd, n), *pay_.declaration_noise_clip)
    )
    se = cal.shapes.self_employed
    pay_n2 = persons["pay"].to_numpy() * np.clip(rng.normal(1, pay_.n2_drift_sd, n), *pay_.n2_drift_clip)
    turnover_n2 = np.minimum(
        persons["turnover"].to_numpy() * rng.lognormal(0, se.n2_drift_sigma, n), se.turnover_max_monthly
    )
    return persons.assign(
        savings=np.round(np.where(holds, balance, 0.0), 2),
        nationality=pd.Series(group).map(t.nationality_codes).to_numpy(),
        permit_years=np.where(group == "non_eu", np.round(rng.uniform(*t.permit_years, n), 1), 0.0),
        declared_annual=np.round(declared, 2),
        pay_n2=np.round(pay_n2, 2),
        turnover_n2=np.round(turnover_n2, 2),
    )


def situation(persons: pd.DataFrame, hh: pd.DataFrame, *, declared: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The law engine's situation of the members living there (``in_truth``): pay and activity
    now (``*_recent``) and before (``pay``, ``unemployment``). ``declared``: as a household
    declares it when claiming, without its savings (the agency checks the residence permit)."""
    p = persons[persons["in_truth"]]
    frame = pd.DataFrame(
        {
            "household_id": p["household_id"],
            "person_id": p["person_id"],
            "benefit_unit": p["benefit_unit"],
            "role": p["role"],
            "age": p["age"],
            "activity": p["activity_recent"],
            "pay_recent": p["pay_recent"],
            "pay_earlier": p["pay"],
            "pay_n2": p["pay_n2"],
            "turnover": p["turnover"],
            "turnover_n2": p["turnover_n2"],
            "unemployment_recent": p["unemployment_recent"],
            "unemployment_earlier": p["unemployment"],
            "pension_monthly": p["pension_monthly"],
            "disability_rate": p["disability_rate"],
            "savings": 0.0 if declared else p["savings"],
            "nationality": p["nationality"],
            "permit_years": p["permit_years"],
        }
    ).reset_index(drop=True)
    return frame, hh[["household_id", "tenure", "rent_monthly", "depcom"]]


def drivers_of(persons: pd.DataFrame, hh: pd.DataFrame, cal: Calibration) -> pd.DataFrame:
    """The true determinants of claiming, one row per household (index ``household_id``)."""
    ids = hh["household_id"].to_numpy()
    true = persons[persons["in_truth"]]
    heads = true[(true["role"] == "head") & (true["benefit_unit"] == 0)].set_index("household_id").reindex(ids)
    true_type = pd.Series(_household_type(true, ids), index=ids)
    h = hh.set_index("household_id")
    irregular = true["irregular"].groupby(true["household_id"]).any().reindex(ids, fill_value=False)
    return pd.DataFrame(
        {
            "tenure": h["tenure"],
            "territory_type": h["territory_type"],
            "true_type": true_type,
            "single_mother": (true_type == "single_parent") & heads["female"].fillna(False).astype(bool),
            "couple_no_child": true_type == "couple_no_child",
            "age_25_29": heads["age"].between(*cal.shapes.claims.age_25_29),
            "aged_75_plus": heads["age"] >= AGED,
            "higher_education": heads["higher_education"].fillna(False).astype(bool),
            "digital_exclusion": h["digital_exclusion"],
            "head_female": heads["female"].fillna(False).astype(bool),
            "contacts_last_year": h["contacts_last_year"],
            "non_eu": h["nationality_group"] == "non_eu",
            "irregular_income": irregular,
            "recent_event": h["recent_event"],
        },
        index=pd.Index(ids, name="household_id"),
    )


AGED = 75
"""A reference person this old finds procedures harder (claim_model: manage.aged_75_plus)."""


def wide(entitlements: pd.DataFrame, column: str, ids: np.ndarray) -> np.ndarray:
    """One entitlement column as (households x benefits), households in ``ids`` order."""
    return (
        entitlements.pivot(index="household_id", columns="benefit", values=column)
        .reindex(index=ids, columns=list(BENEFITS))
        .to_numpy()
    )


def observe(
    persons: pd.DataFrame, hh: pd.DataFrame, files: np.ndarray, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The agency's extract, given the claim files it holds (``files``: households x benefits,
    open last quarter). What it holds depends on the household's status: recent pay and a
    self-employed member's turnover only where it pays RSA or PPA (quarterly declarations), the
    pay of year N-2 from the tax notice for everyone, rent only where it pays housing
    aid, the MDPH's disability rate only where it pays AAH; last year's declared pay for everyone;
    the composition and activity as last reported. ``receives_*`` comes after, from this
    quarter's payments (:func:`with_receipt`): the law engine does not read it."""
    p = persons[persons["in_observed"]].reset_index(drop=True)
    reported = p["event_reported"].to_numpy()
    hh_ids = hh["household_id"].to_numpy()
    col = {b: i for i, b in enumerate(BENEFITS)}
    declares = pd.Series(files[:, col["rsa"]] | files[:, col["ppa"]], index=hh_ids)
    housing_file = pd.Series(files[:, col["aide_logement"]], index=hh_ids)
    disability_file = pd.Series(files[:, col["aah"]], index=hh_ids)
    pay_known = p["household_id"].map(declares).to_numpy(dtype=bool)
    rate_known = p["household_id"].map(disability_file).to_numpy(dtype=bool)
    individuals = pd.DataFrame(
        {
            "person_id": p["person_id"],
            "household_id": p["household_id"],
            "benefit_unit": p["benefit_unit"],
            "role": p["role"],
            "age": p["age"],
            "sex": np.where(p["female"], "F", "M"),
            "activity": np.where(reported | pay_known, p["activity_recent"], p["activity"]),
            "declared_pay_last_year": p["declared_annual"],
            "declared_pay_n2": pd.array(np.round(p["pay_n2"].to_numpy() * MONTHS_PER_YEAR, 2), dtype="Float64"),
            "known_pay_monthly": pd.array(np.where(pay_known, p["pay_recent"], np.nan), dtype="Float64"),
            "known_turnover_monthly": pd.array(np.where(pay_known, p["turnover"], np.nan), dtype="Float64"),
            "pension_monthly": p["pension_monthly"],
            "unemployment_benefit_monthly": np.where(reported | pay_known, p["unemployment_recent"], p["unemployment"]),
            "disability_rate": pd.array(np.where(rate_known, p["disability_rate"], np.nan), dtype="Float64"),
            "nationality_group": p["household_id"].map(hh.set_index("household_id")["nationality_group"]),
            "higher_education": p["higher_education"].astype(bool),
        }
    )
    renting = hh["tenure"].isin(["social_renter", "private_renter"]).to_numpy()
    rent = np.where(renting & ~housing_file.to_numpy(), np.nan, hh["rent_monthly"].to_numpy(dtype=float))
    households = pd.DataFrame(
        {
            "household_id": hh_ids,
            "household_type": _household_type(p, hh_ids),
            "n_persons": p.groupby("household_id").size().reindex(hh_ids).fillna(0).to_numpy(dtype=int),
            "tenure": hh["tenure"].to_numpy(),
            "rent_monthly": pd.array(rent, dtype="Float64"),
            "depcom": hh["depcom"].to_numpy(),
            "territory_type": hh["territory_type"].to_numpy(),
            "digital_exclusion": hh["digital_exclusion"].to_numpy(),
            "contacts_last_year": hh["contacts_last_year"].to_numpy(),
            "reported_event": hh["reported_event"].to_numpy(),
        }
    )
    return individuals, households


def with_receipt(households: pd.DataFrame, paid: np.ndarray, settings: Settings) -> pd.DataFrame:
    """The extract with ``receives_*`` from this quarter's payments, for the benefits the holder
    sees (NA for the others)."""
    seen = set(settings.scenario.observed_benefits)
    receipt = {
        f"receives_{b}": pd.array(paid[:, j], dtype="boolean")
        if b in seen
        else pd.array([pd.NA] * len(households), dtype="boolean")
        for j, b in enumerate(BENEFITS)
    }
    return households.assign(**receipt)


@dataclass(frozen=True)
class Claims:
    """Claim status (``CLAIM_STATUSES`` codes) and amount paid, households x benefits."""

    status: np.ndarray
    paid_amount: np.ndarray

    @property
    def paid(self) -> np.ndarray:
        return self.status == "paid"

    @property
    def claimed(self) -> np.ndarray:
        return (self.status == "paid") | (self.status == "pending")


def next_claims(
    previous: Claims,
    *,
    filed: np.ndarray,
    true_eligible: np.ndarray,
    true_amount: np.ndarray,
    agency_eligible: np.ndarray,
    agency_amount: np.ndarray,
    rng: np.random.Generator,
    cal: Calibration,
) -> Claims:
    """One quarter of claim history. The agency keeps paying on its own file (``agency_*``: the
    law engine on its extract) and stops where the file says the right has ended; a pending
    claim is granted or refused on the household's declared situation; a claim ``filed`` this
    quarter (spontaneous, or a new spell's) is granted if the household is entitled, else refused,
    and a share of those is still pending. RSA recipients get CSS without contribution by default."""
    n, nb = true_eligible.shape
    pending_now = rng.random((n, nb)) < cal.claim_model.pending_share
    prev = previous.status
    status = np.full((n, nb), "none", dtype=object)
    amount = np.zeros((n, nb))
    keep = (prev == "paid") & agency_eligible
    status[keep], amount[keep] = "paid", agency_amount[keep]
    decided = prev == "pending"
    new = filed & ~keep & ~decided & (prev != "paid")
    grant = (decided | (new & ~pending_now)) & true_eligible
    status[grant] = "paid"
    amount[grant] = np.where(agency_eligible, agency_amount, true_amount)[grant]
    status[new & pending_now & true_eligible] = "pending"
    status[(decided | new) & ~true_eligible] = "refused"
    css, rsa = BENEFITS.index("css_free"), BENEFITS.index("rsa")
    auto = (status[:, rsa] == "paid") & true_eligible[:, css] & (status[:, css] != "paid")
    status[auto, css], amount[auto, css] = "paid", true_amount[auto, css]
    return Claims(status=status, paid_amount=np.round(amount, 2))


def outcomes_table(ids: np.ndarray, truth: pd.DataFrame, claims: Claims, q: Quarter) -> pd.DataFrame:
    """The truth of one quarter in ``OUTCOMES`` form (long: one row per household and benefit)."""
    nb = len(BENEFITS)

    def flat(a: np.ndarray) -> np.ndarray:  # (households x benefits) to the long order: benefit-major
        return a.T.reshape(-1)

    long = pd.DataFrame(
        {
            "household_id": np.tile(ids, nb),
            "benefit": np.repeat(BENEFITS, len(ids)),
            "status": flat(claims.status),
            "claimed": flat(claims.claimed),
            "paid_amount": flat(claims.paid_amount),
            "p_claim": flat(q.p_claim),
            "nonclaim_reason": flat(q.reason),
            "reached_if_contacted": flat(q.reached),
            "claim_if_not_contacted": flat(q.claim_if_not_contacted),
            "claim_if_contacted": flat(q.claim_if_contacted),
            "p_claim_if_not_contacted": flat(q.p_claim_if_not_contacted),
            "p_claim_if_contacted": flat(q.p_claim_if_contacted),
        }
    )
    out = truth.astype({"benefit": "object"}).merge(long, on=["household_id", "benefit"], how="left", validate="1:1")
    out["benefit"] = pd.Categorical(out["benefit"], categories=list(BENEFITS))
    return out[OUTCOMES.names]


def shift_month(month: str, months: int) -> str:
    return str(pd.Period(month, freq="M") + months)


@dataclass(frozen=True)
class QuarterData:
    """One quarter as written: the agency's extract, the truth, and the calibration report."""

    reference_month: str
    individuals: pd.DataFrame
    households: pd.DataFrame
    outcomes: pd.DataFrame
    agency: pd.DataFrame  # the law engine on the extract (what `nonrecours entitlements` gives)
    files: np.ndarray  # claim files the agency held at the extract (open last quarter), households x benefits
    summary: dict
    world: World | None = None  # the simulator's state at the end of the quarter


@dataclass(frozen=True)
class Population:
    """What the generator produces: consecutive quarters of the same households (the current
    one first). Each quarter is a complete raw folder."""

    quarters: tuple[QuarterData, ...]

    @property
    def current(self) -> QuarterData:
        return self.quarters[0]

    # The current quarter's tables, as the single-quarter generator gave them.
    @property
    def individuals(self) -> pd.DataFrame:
        return self.current.individuals

    @property
    def households(self) -> pd.DataFrame:
        return self.current.households

    @property
    def outcomes(self) -> pd.DataFrame:
        return self.current.outcomes

    @property
    def summary(self) -> dict:
        return self.current.summary


def next_persons(
    persons: pd.DataFrame, hh: pd.DataFrame, rng: np.random.Generator, reported_share: float, cal: Calibration
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three months on: today's situation becomes the earlier one, new events happen, and the
    agency catches up on a share of what it had not been told."""
    stay = persons[persons["in_truth"]].copy()
    stay["pay"], stay["unemployment"], stay["activity"] = (
        stay["pay_recent"],
        stay["unemployment_recent"],
        stay["activity_recent"],
    )
    was_listed = stay["in_observed"].to_numpy()
    gone = persons[~persons["in_truth"] & persons["in_observed"]].copy()
    hh = hh.assign(household_type=_household_type(stay, hh["household_id"].to_numpy()))
    keep = [
        c
        for c in persons.columns
        if c
        not in (
            "activity_recent",
            "pay_recent",
            "unemployment_recent",
            "in_truth",
            "in_observed",
            "job_event",
            "event_reported",
            "irregular",
        )
    ]
    moved, hh = draw_events(stay[keep].reset_index(drop=True), hh, rng, reported_share, cal)
    old = moved["person_id"].isin(stay["person_id"]).to_numpy()
    listed = (
        pd.Series(was_listed, index=stay["person_id"].to_numpy())
        .reindex(moved["person_id"])
        .fillna(True)
        .to_numpy(dtype=bool)
    )
    caught_up = rng.random(len(moved)) < reported_share
    moved["in_observed"] = moved["in_observed"].to_numpy() & (~old | listed | caught_up)
    gone = gone.assign(
        in_observed=rng.random(len(gone)) >= reported_share, event_reported=False, job_event="none", irregular=False
    )
    persons = pd.concat([moved, gone[moved.columns]], ignore_index=True)
    return persons.sort_values(["household_id", "benefit_unit", "person_id"], kind="stable").reset_index(drop=True), hh


def _fill_newborns(persons: pd.DataFrame) -> pd.DataFrame:
    """Newborns have no savings, no permit, no declared pay or N-2 income, and their household's
    nationality."""
    code = persons["household_id"].map(
        persons.dropna(subset=["nationality"]).groupby("household_id")["nationality"].first()
    )
    return persons.assign(
        savings=persons["savings"].fillna(0.0),
        permit_years=persons["permit_years"].fillna(0.0),
        declared_annual=persons["declared_annual"].fillna(0.0),
        pay_n2=persons["pay_n2"].fillna(0.0),
        turnover_n2=persons["turnover_n2"].fillna(0.0),
        nationality=persons["nationality"].fillna(code).fillna("FR"),
    )


Engine = Callable[[tuple[pd.DataFrame, pd.DataFrame], str, str], pd.DataFrame]
"""The law engine on a situation (persons, households) for a month, described for its progress bar."""


@dataclass
class World:
    """The simulator's state at the end of a quarter, all of it truth: what the next quarter is drawn
    from. ``persons`` and ``hh`` are the true tables; the arrays are households x benefits in the
    order of ``hh``: the claims, whether each household would claim by next quarter with no contact
    (``spontaneous``) and if an agent's contact reached it (``if_contacted``), and whether it is
    entitled now. ``intercepts`` (per barrier and benefit) and ``traits`` (each household's own
    draws) never change; ``rng`` carries on. ``quarter`` -1 is the history quarter."""

    quarter: int
    month: str
    persons: pd.DataFrame
    hh: pd.DataFrame
    claims: Claims
    intercepts: dict[str, np.ndarray]
    traits: Traits
    spontaneous: np.ndarray
    if_contacted: np.ndarray
    eligible: np.ndarray
    rng: np.random.Generator
    next_ids: tuple[int, int]  # the first household and person ids never given yet (ids are never reused)
    rng_state: dict = field(default_factory=dict)  # where ``rng`` stood when the quarter ended

    def __post_init__(self) -> None:
        if not self.rng_state:
            self.rng_state = copy.deepcopy(dict(self.rng.bit_generator.state))

    @property
    def ids(self) -> np.ndarray:
        return self.hh["household_id"].to_numpy()


def start_world(n_households: int, seed: int, settings: Settings, cal: Calibration, engine: Engine) -> World:
    """``n_households`` drawn at the history quarter, three months before ``law.reference_month``:
    the claims now on file were made then, on the situation as households declared it."""
    if n_households < 1:
        raise UserError(f"--households must be at least 1, got {n_households}")
    rng = np.random.default_rng(seed)
    hh = draw_households(n_households, rng, cal)
    persons = draw_members(hh, rng, cal)
    persons = draw_resources(persons, rng, cal)
    hh = household_attributes(hh, persons, rng, cal)
    persons = draw_truth_only(persons, hh, rng, cal)
    ids = hh["household_id"].to_numpy()
    traits = Traits.draw(len(ids), rng)
    history_month = shift_month(settings.law.reference_month, -cal.shapes.events.quarter_months)
    before = persons.assign(
        activity_recent=persons["activity"],
        pay_recent=persons["pay"],
        unemployment_recent=persons["unemployment"],
        in_truth=True,
        in_observed=True,
        event_reported=False,
        irregular=False,
    )
    declared = engine(
        situation(before, hh.assign(recent_event=False), declared=True), history_month, "declared situation"
    )
    drivers = drivers_of(before, hh.assign(recent_event=False), cal)
    eligible, amount = wide(declared, "eligible", ids).astype(bool), wide(declared, "monthly_amount", ids).astype(float)
    intercepts, claimed_before = solve_history(drivers, eligible, amount, traits, cal)
    claims = Claims(
        status=np.where(claimed_before, "paid", "none").astype(object),
        paid_amount=np.where(claimed_before, amount, 0.0),
    )
    history = quarter_behaviour(
        behaviour(barrier_logits(drivers, amount, _in_contact(claims), cal), intercepts, traits),
        eligible=eligible,
        claimed=claims.claimed,
        new_spell=np.zeros_like(eligible),
        drivers=drivers,
        rng=rng,
        cal=cal,
    )
    return World(
        -1,
        history_month,
        persons,
        hh,
        claims,
        intercepts,
        traits,
        history.claim_if_not_contacted,
        history.claim_if_contacted,
        eligible,
        rng,
        _next_ids(hh, persons),
    )


def advance(
    world: World,
    settings: Settings,
    cal: Calibration,
    engine: Engine,
    *,
    contacted: np.ndarray | None = None,
    n_households: int,
    seed: int,
    scheduler: str | None = None,
    quiet: bool = False,
) -> tuple[World, QuarterData]:
    """The next quarter of ``world``. ``contacted``: the households (in the order of ``world.hh``)
    an agent contacted last quarter: those the contact reached file the claims their contact
    caused (``if_contacted``), the others those they would have filed anyway. Past the first
    quarter, households leave and arrive (``dynamics`` of the calibration), people age, and
    events change situations; the same household keeps its id and its own draws."""
    rng, i = world.rng, world.quarter + 1
    month = shift_month(world.month, cal.shapes.events.quarter_months)
    share = settings.scenario.reported_event_share
    filed = (
        world.spontaneous if contacted is None else np.where(contacted[:, None], world.if_contacted, world.spontaneous)
    )
    if i == 0:
        persons, hh = draw_events(world.persons, world.hh, rng, share, cal)
        state, arrived = (world.claims, world.traits, filed, world.eligible), np.zeros(len(world.hh), dtype=bool)
    else:
        kept = rng.random(len(world.hh)) >= cal.dynamics.leave_per_quarter
        persons, hh = next_persons(*_leaving(world.persons, world.hh, kept), rng, share, cal)
        persons, hh = _aged(persons, hh, i)
        persons, hh, state, arrived = _arriving(persons, hh, world, kept, filed, rng, share, cal)
    claims, traits, filed, eligible_last = state
    persons = _fill_newborns(persons)
    ids = hh["household_id"].to_numpy()
    truth = engine(situation(persons, hh), month, "true situation")
    files = claims.claimed
    individuals, households = observe(persons, hh, files, settings)
    law = settings.law.model_copy(update={"reference_month": month})
    agency = entitlements_from_observed(
        individuals,
        households,
        law=law,
        css=load_law_parameters().css,
        scheduler=scheduler,
        quiet=quiet,
        description=f"law engine: agency's file {month}",
    )
    true_eligible, true_amount = (
        wide(truth, "eligible", ids).astype(bool),
        wide(truth, "monthly_amount", ids).astype(float),
    )
    drivers = drivers_of(persons, hh, cal)
    beh = behaviour(barrier_logits(drivers, true_amount, _in_contact(claims), cal), world.intercepts, traits)
    new_spell = true_eligible & ~eligible_last
    spell_filed = new_spell & beh.would_claim & (rng.random(new_spell.shape) < cal.claim_model.new_spell_claimed_share)
    moved_in = arrived[:, None] & beh.would_claim & true_eligible  # an arrival's claims follow it from its last address
    claims = next_claims(
        claims,
        filed=filed | spell_filed | moved_in,
        true_eligible=true_eligible,
        true_amount=true_amount,
        agency_eligible=wide(agency, "eligible", ids).astype(bool),
        agency_amount=wide(agency, "monthly_amount", ids).astype(float),
        rng=rng,
        cal=cal,
    )
    q = quarter_behaviour(
        beh, eligible=true_eligible, claimed=claims.claimed, new_spell=new_spell, drivers=drivers, rng=rng, cal=cal
    )
    outcomes = outcomes_table(ids, truth, claims, q)
    households = with_receipt(households, claims.paid, settings)
    summary = calibration_summary(
        outcomes=outcomes,
        agency=agency,
        households=households,
        true_persons=persons[persons["in_truth"]],
        drivers=drivers,
        hh=hh,
        cal=cal,
        n_households=n_households,
        seed=seed,
        reference_month=month,
        quarter=i,
    )
    after = World(
        i,
        month,
        persons,
        hh,
        claims,
        world.intercepts,
        traits,
        q.claim_if_not_contacted,
        q.claim_if_contacted,
        true_eligible,
        rng,
        _next_ids(hh, persons, world.next_ids),
    )
    return after, QuarterData(month, individuals, households, outcomes, agency, files, summary, after)


def _next_ids(hh: pd.DataFrame, persons: pd.DataFrame, before: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    return max(before[0], int(hh["household_id"].max()) + 1), max(before[1], int(persons["person_id"].max()) + 1)


def _leaving(persons: pd.DataFrame, hh: pd.DataFrame, kept: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The households that stay (``kept``, in the order of ``hh``) and their members."""
    stay = hh[kept].reset_index(drop=True)
    return persons[persons["household_id"].isin(stay["household_id"])].reset_index(drop=True), stay


def _aged(persons: pd.DataFrame, hh: pd.DataFrame, quarter: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A year older once a year: each person in the quarter of their birthday (one in four each
    quarter, by id); the household's head age follows its reference person's."""
    birthday = (persons["person_id"].to_numpy() % QUARTERS_PER_YEAR) == (quarter % QUARTERS_PER_YEAR)
    persons = persons.assign(age=persons["age"].to_numpy() + birthday)
    heads = persons[(persons["role"] == "head") & (persons["benefit_unit"] == 0)].set_index("household_id")["age"]
    return persons, hh.assign(head_age=hh["household_id"].map(heads).fillna(hh["head_age"]).astype("int64").to_numpy())


def _arriving(
    persons,
    hh,
    world: World,
    kept: np.ndarray,
    filed: np.ndarray,
    rng: np.random.Generator,
    share: float,
    cal: Calibration,
):
    """Households moving in, drawn as the first ones were (new ids, no file with the agency yet),
    after those already there. Returns the tables, the per-household state in the tables' order
    (claims, traits, claims filed, entitled last quarter) and who arrived."""
    m = int(rng.binomial(len(world.hh), cal.dynamics.arrive_per_quarter))
    first_hh, first_person = _next_ids(hh, persons, world.next_ids)  # newborns of this quarter have ids already
    new_hh = draw_households(m, rng, cal)
    new_p = draw_members(new_hh, rng, cal)
    new_p = draw_resources(new_p, rng, cal)
    new_hh = household_attributes(new_hh, new_p, rng, cal)
    new_p = draw_truth_only(new_p, new_hh, rng, cal)
    new_hh = new_hh.assign(household_id=new_hh["household_id"] + first_hh - 1)
    new_p = new_p.assign(
        household_id=new_p["household_id"] + first_hh - 1, person_id=new_p["person_id"] + first_person - 1
    )
    new_p, new_hh = draw_events(new_p, new_hh, rng, share, cal)
    new_traits = Traits.draw(m, rng)
    nb = len(BENEFITS)
    persons = pd.concat([persons, new_p[persons.columns]], ignore_index=True)
    hh = pd.concat([hh, new_hh[hh.columns]], ignore_index=True)
    none = np.zeros((m, nb), dtype=bool)
    claims = Claims(
        status=np.concatenate([world.claims.status[kept], np.full((m, nb), "none", dtype=object)]),
        paid_amount=np.concatenate([world.claims.paid_amount[kept], np.zeros((m, nb))]),
    )
    traits = Traits(**{b: np.concatenate([getattr(world.traits, b)[kept], getattr(new_traits, b)]) for b in BARRIERS})
    state = (claims, traits, np.concatenate([filed[kept], none]), np.concatenate([world.eligible[kept], none]))
    return persons, hh, state, np.concatenate([np.zeros(int(kept.sum()), dtype=bool), np.ones(m, dtype=bool)])


def generate(
    n_households: int,
    seed: int,
    settings: Settings,
    cal: Calibration,
    *,
    quarters: int | None = None,
    scheduler: str | None = None,
    quiet: bool = False,
) -> Population:
    """Draw ``n_households`` and follow them over ``quarters`` consecutive quarters (default
    ``scenario.quarters``; the first at ``law.reference_month``), after a history quarter three
    months before it in which the claims now on file were made. Deterministic for a given seed
    and settings; each quarter's ``world`` is the state its next quarter is drawn from."""
    quarters = settings.scenario.quarters if quarters is None else quarters
    if quarters < 1:
        raise UserError(f"quarters must be at least 1, got {quarters}")
    engine = law_engine(settings, scheduler=scheduler, quiet=quiet)
    world = start_world(n_households, seed, settings, cal, engine)
    out = []
    for _ in range(quarters):
        world, quarter = advance(
            world, settings, cal, engine, n_households=n_households, seed=seed, scheduler=scheduler, quiet=quiet
        )
        out.append(quarter)
    return Population(quarters=tuple(out))


def law_engine(settings: Settings, *, scheduler: str | None, quiet: bool) -> Engine:
    """The law engine (OpenFisca-France, in partitions) on a true or declared situation, for a month."""
    css = load_law_parameters().css

    def engine(situation_: tuple[pd.DataFrame, pd.DataFrame], month: str, what: str) -> pd.DataFrame:
        law = settings.law.model_copy(update={"reference_month": month})
        return run_law_engine(
            *situation_, law=law, css=css, scheduler=scheduler, quiet=quiet, description=f"law engine: {what} {month}"
        )

    return engine


def _in_contact(claims: Claims) -> np.ndarray:
    """Per household and benefit: the household claims another benefit."""
    claimed = claims.claimed
    return (claimed.sum(axis=1, keepdims=True) - claimed) > 0
