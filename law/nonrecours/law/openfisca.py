"""The law engine: OpenFisca-France on a situation table, one simulation per partition.

Where it sits: between the tables and everything that needs to know who is entitled. The generator
runs it on the *true* situation (to draw outcomes); ``nonrecours entitlements`` runs it on the
*observed* one (see :mod:`nonrecours.law.situation`). No benefit rule is written here: this module maps
our rows onto OpenFisca's entities and inputs and reads its variables back.

A situation is two frames:

- persons: ``household_id, person_id, benefit_unit, role, age, activity, pay_recent,
  pay_earlier, pay_n2, turnover, turnover_n2, unemployment_recent, unemployment_earlier,
  pension_monthly, disability_rate``. ``*_recent`` amounts hold for the reference month and the
  three before it (what RSA and PPA look at), ``*_earlier`` for every month before that back to
  January of year N-1 (CSS and housing aid look back twelve months), ``pay_n2`` for the months of
  year N-2 (family benefits are assessed on the income of year N-2). ``turnover`` is a
  self-employed member's monthly micro-enterprise turnover (micro-BIC services) in years N-1 and
  N, ``turnover_n2`` in year N-2: OpenFisca-France takes it as the tax return's yearly box
  (``mbic_imps``), from which RSA, PPA, CSS, housing aid and family benefits each take the year
  their rule looks at. All amounts are gross and monthly.
- households: ``household_id, tenure, rent_monthly, depcom``.

The true situation may carry inputs no agency table holds (:data:`TRUTH_ONLY_PERSON_COLUMNS`):
savings on a Livret A, a nationality code and the years a non-EU national has held a residence
permit. They are given to OpenFisca-France when present; absent, its defaults apply (no
savings, French national).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from nonrecours.core.schema import BENEFITS, MONTHS_PER_YEAR
from nonrecours.law.parameters import CssValuation

SITUATION_PERSON_COLUMNS = (
    "household_id",
    "person_id",
    "benefit_unit",
    "role",
    "age",
    "activity",
    "pay_recent",
    "pay_earlier",
    "pay_n2",
    "turnover",
    "turnover_n2",
    "unemployment_recent",
    "unemployment_earlier",
    "pension_monthly",
    "disability_rate",
)
SITUATION_HOUSEHOLD_COLUMNS = ("household_id", "tenure", "rent_monthly", "depcom")
TRUTH_ONLY_PERSON_COLUMNS = ("savings", "nationality", "permit_years")
"""Optional person columns: Livret A balance (EUR; RSA and housing aid count its interest),
ISO nationality code and years of residence permit (RSA and ASPA require one of some seniority
from non-EU nationals)."""

DISABILITY_RATE_HANDICAP = 0.5
"""A disability rate of 50% or more is a recognised handicap (CASF L241-3, CSS L821-2)."""
BIRTH_MONTHS_BEFORE = 6
"""Persons are born this many months past their age before the reference month (see below)."""
EPOCH_YEAR = 1970
"""numpy's datetime64 counts years from here."""

RECENT_MONTHS = 4
"""RSA and PPA average resources over the three months before the month paid (CASF R262-7), so
"recent" is that month and the three before it."""

# Our tenure codes onto OpenFisca's TypesStatutOccupationLogement.
_TENURE = {
    "owner": "proprietaire",
    "social_renter": "locataire_hlm",
    "private_renter": "locataire_vide",
    "free_housing": "loge_gratuitement",
}
_ACTIVITY = {
    "employed": "actif",
    "self_employed": "actif",
    "unemployed": "chomeur",
    "student": "etudiant",
    "retired": "retraite",
    "inactive": "inactif",
}
_FAMILLE_ROLE = {"head": "demandeur", "partner": "conjoint", "child": "enfant"}
_FOYER_ROLE = {"head": "declarant_principal", "partner": "conjoint", "child": "personne_a_charge"}
_MENAGE_ROLE = {"head": "personne_de_reference", "partner": "conjoint", "child": "enfant"}

# Monetary benefits read straight from OpenFisca-France: our code -> OpenFisca variable.
_AMOUNT_VARIABLES = {
    "aide_logement": "aide_logement",
    "rsa": "rsa",
    "ppa": "ppa",
    "aspa": "aspa",
    "af": "af",
}


@lru_cache(maxsize=1)
def tax_benefit_system():
    """OpenFisca-France, loaded once per process (about ten seconds), never at import."""
    from openfisca_france import CountryTaxBenefitSystem

    return CountryTaxBenefitSystem()


def input_months(reference_month: str) -> list[str]:
    """Every month from January of year N-2 to the reference month: RSA and PPA look back three
    months, CSS and housing aid twelve, family benefits at the whole income of year N-2. An input
    left out of one of these months silently counts as zero."""
    ref = pd.Period(reference_month, freq="M")
    return [str(m) for m in pd.period_range(f"{ref.year - 2}-01", ref, freq="M")]


def build_simulation(persons: pd.DataFrame, households: pd.DataFrame, reference_month: str):
    """One OpenFisca simulation for all the households given (vectorised over rows)."""
    from openfisca_core.simulation_builder import SimulationBuilder

    tbs = tax_benefit_system()
    persons = persons.sort_values(["household_id", "benefit_unit", "person_id"], kind="stable")
    households = households.set_index("household_id").loc[persons["household_id"].unique()]

    unit_id = persons["household_id"].to_numpy() * 100 + persons["benefit_unit"].to_numpy()
    role = persons["role"].astype("object")
    menage_role = np.where(persons["benefit_unit"].to_numpy() == 0, role.map(_MENAGE_ROLE), "autre")

    builder = SimulationBuilder()
    builder.create_entities(tbs)
    builder.declare_person_entity("individu", persons["person_id"].astype(str).to_numpy())
    unit_ids = pd.unique(unit_id)
    famille = builder.declare_entity("famille", unit_ids.astype(str))
    builder.join_with_persons(famille, unit_id.astype(str), role.map(_FAMILLE_ROLE).to_numpy())
    # One tax household per benefit unit: couples are taken as married or in a PACS, so they
    # declare together; children are their dependants.
    foyer = builder.declare_entity("foyer_fiscal", unit_ids.astype(str))
    builder.join_with_persons(foyer, unit_id.astype(str), role.map(_FOYER_ROLE).to_numpy())
    menage = builder.declare_entity("menage", households.index.astype(str).to_numpy())
    builder.join_with_persons(menage, persons["household_id"].astype(str).to_numpy(), menage_role)
    sim = builder.build(tbs)

    months = input_months(reference_month)
    recent = set(months[-RECENT_MONTHS:])
    # Born on the first of the month, age years and six months before the reference month, so
    # that the age OpenFisca derives is the age given for every month it looks at nearby.
    ref = pd.Period(reference_month, freq="M")
    birth_month = ref.year * 12 + ref.month - 1 - 12 * persons["age"].to_numpy(dtype=int) - BIRTH_MONTHS_BEFORE
    birth = (birth_month // 12 - EPOCH_YEAR).astype("datetime64[Y]") + (birth_month % 12).astype("timedelta64[M]")
    sim.set_input("date_naissance", "ETERNITY", birth.astype("datetime64[D]"))

    is_partner = pd.Series(persons["role"].to_numpy() == "partner")
    couple = is_partner.groupby(unit_id).transform("any").to_numpy()
    adult = persons["role"].isin(["head", "partner"]).to_numpy()
    marital = np.where(couple & adult, "marie", "celibataire")
    rate = persons["disability_rate"].to_numpy(dtype=float)
    activity = persons["activity"].astype("object").map(_ACTIVITY).to_numpy(dtype=str)
    tenure = households["tenure"].astype("object").map(_TENURE).to_numpy(dtype=str)
    units_per_household = households.index.to_series().map(persons.groupby("household_id")["benefit_unit"].nunique())
    coloc = (units_per_household > 1).to_numpy()
    depcom = households["depcom"].astype(str).to_numpy()
    rent = households["rent_monthly"].to_numpy(dtype=float)
    social = (households["tenure"] == "social_renter").to_numpy()
    # Housing aid takes the dwelling's whole rent for every benefit unit in it; each flatmate
    # (colocataire) pays, and is assessed on, a share of it.
    rent_share = (households["rent_monthly"] / units_per_household).to_numpy(dtype=float)
    rent_share_per_unit = pd.Series(rent_share, index=households.index).reindex(unit_ids // 100).to_numpy()

    zero_person = np.zeros(len(persons))
    year_n2 = str(ref.year - 2)
    for month in months:
        which = "recent" if month in recent else "earlier"
        pay = "pay_n2" if month.startswith(year_n2) and which == "earlier" else f"pay_{which}"
        sim.set_input("salaire_de_base", month, persons[pay].to_numpy(dtype=float))
        sim.set_input("chomage_brut", month, persons[f"unemployment_{which}"].to_numpy(dtype=float))
        sim.set_input("retraite_brute", month, persons["pension_monthly"].to_numpy(dtype=float))
        # Disability is a lasting state: set for one month only, AAH would count it but RSA's
        # look-back would not see the AAH, and pay RSA on top of it.
        sim.set_input("taux_incapacite", month, rate)
        sim.set_input("handicap", month, rate >= DISABILITY_RATE_HANDICAP)
        sim.set_input("statut_marital", month, marital)
        sim.set_input("activite", month, activity)
        sim.set_input("statut_occupation_logement", month, tenure)
        sim.set_input("loyer", month, rent)
        sim.set_input("aide_logement_loyer_reel", month, rent_share_per_unit)
        sim.set_input("logement_conventionne", month, social)
        sim.set_input("depcom", month, depcom)
        sim.set_input("coloc", month, coloc)
        # ASS requires ``ass_precondition_remplie`` (end of insurance rights), which the data do
        # not hold and which defaults to False, so the law gives 0. Declaring the zero skips
        # computing its resource base: a fifth of a one-household simulation, same results.
        sim.set_input("ass", month, zero_person)
        if "savings" in persons.columns:
            sim.set_input("livret_a", month, persons["savings"].to_numpy(dtype=float))
        if "nationality" in persons.columns:
            sim.set_input("nationalite", month, persons["nationality"].to_numpy(dtype=str))
            sim.set_input("duree_possession_titre_sejour", month, persons["permit_years"].to_numpy(dtype=float))
    # A yearly tax box, in whole euros (OpenFisca's type for it).
    for year, column in ((ref.year - 2, "turnover_n2"), (ref.year - 1, "turnover"), (ref.year, "turnover")):
        sim.set_input(
            "mbic_imps", str(year), np.round(persons[column].to_numpy(dtype=float) * MONTHS_PER_YEAR).astype(int)
        )
    return sim, persons, households, unit_id


def compute_entitlements(
    persons: pd.DataFrame,
    households: pd.DataFrame,
    *,
    reference_month: str,
    css: CssValuation,
) -> pd.DataFrame:
    """Eligibility and monthly amount per household and benefit, in ``ENTITLEMENTS`` form.

    Pure: the inputs are not modified. Households without members are not in the output.
    """
    sim, persons, households, unit_id = build_simulation(persons, households, reference_month)
    month = reference_month
    units = pd.Index(pd.unique(unit_id))
    unit_household = units // 100
    per_unit = pd.DataFrame({"household_id": unit_household}, index=units)
    # Order matters: RSA and housing aid refer to each other (forfait logement one way, the
    # neutralisation of an RSA recipient's resources the other) and OpenFisca breaks the cycle
    # wherever it is entered. Entering through housing aid gives the amounts the law gives.
    for benefit, variable in _AMOUNT_VARIABLES.items():
        per_unit[benefit] = sim.calculate(variable, month)
    cover = css.value(persons["age"])
    cover_per_unit = cover.groupby(unit_id).sum().reindex(units).to_numpy()
    cmu_c = sim.calculate("cmu_c", month)
    participation = sim.calculate("css_participation_forfaitaire", month)
    per_unit["css_free"] = np.where(cmu_c, cover_per_unit, 0.0)
    per_unit["css_contrib"] = np.where(participation > 0, np.maximum(cover_per_unit - participation, 0.0), 0.0)
    per_unit["_css_contrib_eligible"] = participation > 0
    per_unit["_css_free_eligible"] = cmu_c
    aah = pd.Series(sim.calculate("aah", month), index=persons.index)

    per_household = per_unit.groupby("household_id").sum()
    per_household["aah"] = aah.groupby(persons["household_id"].to_numpy()).sum()
    long = (
        per_household[list(BENEFITS)]
        .rename_axis("household_id")
        .reset_index()
        .melt(id_vars="household_id", var_name="benefit", value_name="monthly_amount")
    )
    long["monthly_amount"] = long["monthly_amount"].astype(float).round(2)
    eligible = long["monthly_amount"] > 0
    for b in ("css_free", "css_contrib"):
        flag = per_household[f"_{b}_eligible"] > 0
        is_b = long["benefit"] == b
        eligible[is_b] = long.loc[is_b, "household_id"].map(flag).to_numpy()
    long["eligible"] = eligible.astype(bool)
    long["benefit"] = pd.Categorical(long["benefit"], categories=list(BENEFITS))
    return (
        long[["household_id", "benefit", "eligible", "monthly_amount"]]
        .sort_values(["household_id", "benefit"])
        .reset_index(drop=True)
    )
