"""Every column of every table nonrecours reads or writes, declared once.

Where it sits: everything imports this module. The generator writes these tables, the law engine
reads the observed ones, validation checks input against them, and later stages (LightGBM's
categorical list, the API's request model, Evidently's column mapping) derive from the same specs.

Roles:
- ``id``: identifies a row; never a model feature, pseudonymised before it is logged.
- ``feature``: observed by an agency, may feed the model.
- ``protected``: kept for fairness auditing only; must never reach the model.
- ``observed_benefit``: a benefit the agency sees paid (NA where its holder cannot see it).
- ``law``: produced by the law engine (OpenFisca-France).
- ``truth``: known only in the synthetic world (labels and their generating probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from nonrecours.core.errors import UserError

Role = Literal["id", "feature", "protected", "observed_benefit", "law", "truth"]

BENEFITS: tuple[str, ...] = (
    "rsa",
    "ppa",
    "aide_logement",
    "css_free",
    "css_contrib",
    "aspa",
    "af",
    "aah",
)
"""Benefit codes, in the order claim decisions are drawn (earlier claims put people in contact)."""

MONTHS_PER_YEAR = 12
"""Yearly amounts (``€/year`` columns, OpenFisca's yearly variables) over monthly ones (``€/month``)."""

BENEFIT_LABELS: dict[str, str] = {
    "rsa": "revenu de solidarité active (RSA)",
    "ppa": "prime d'activité",
    "aide_logement": "aides au logement (APL, ALF, ALS)",
    "css_free": "complémentaire santé solidaire sans participation",
    "css_contrib": "complémentaire santé solidaire avec participation",
    "aspa": "allocation de solidarité aux personnes âgées (minimum vieillesse)",
    "af": "allocations familiales",
    "aah": "allocation aux adultes handicapés",
}

HOUSEHOLD_TYPES = ("single_person", "couple_no_child", "couple_with_children", "single_parent", "other")
ROLES = ("head", "partner", "child")
SEXES = ("F", "M")
ACTIVITIES = ("employed", "self_employed", "unemployed", "student", "retired", "inactive")
"""``self_employed``: a micro-entrepreneur (régime micro-BIC, services), paid by turnover, not salary."""
NATIONALITY_GROUPS = ("french", "eu", "non_eu")
TENURES = ("owner", "social_renter", "private_renter", "free_housing")
TERRITORY_TYPES = ("paris_agglo", "large_urban", "small_urban", "rural")
REPORTED_EVENTS = ("none", "birth", "separation", "job_loss", "new_job")
ESTIMATED_INPUTS = ("none", "pay", "rent", "pay_rent")
"""Which inputs the law engine had to estimate for a household (the agency does not hold them):
income from work (recent pay without an RSA/PPA declaration, a self-employed member's turnover,
or the N-2 pay when not given), rent (no housing-aid file), both, or none."""
CLAIM_STATUSES = ("none", "pending", "paid", "refused")
"""Where a household stands with a benefit's claim: never claimed (or stopped), filed and not yet
paid, paid on the agency's file, or refused."""
CAMPAIGN_ARMS = ("contact", "holdout", "explore", "pool")
"""A campaign household's arm: ``contact`` (top of the ranking, contacted), ``holdout`` (top,
randomly not contacted), ``explore`` (below the cut, randomly contacted), ``pool`` (below the cut,
eligible on the agency's data, not drawn: the exploration's comparison)."""
CONTACTED_ARMS = ("contact", "explore")
OUTREACH_RESULTS = ("unreachable", "opened", "not_entitled", "declined", "already_receiving")
"""What an agent records per contacted household and benefit: not reached; reached and a right
opened (with its amount); not entitled after checking; entitled and declined; already receiving."""
NONCLAIM_REASONS = ("claims", "information", "complexity", "fear", "refusal", "transitory")
"""Why an eligible household does not claim, in the truth (DREES's stated reasons, 2021): it does
not know the right, the procedure defeats it, it fears the consequences (overpayments, recovery on
succession), it does not want assistance, or its spell is new and the claim is on its way."""


@dataclass(frozen=True)
class Column:
    """One column: its name, pandas dtype, role, unit and meaning, and the values it may take."""

    name: str
    dtype: str
    role: Role
    description: str
    unit: str = ""
    categories: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    pattern: str | None = None
    fr: str = ""  # the meaning in French, for the public notice of the algorithm (model inputs)


@dataclass(frozen=True)
class Table:
    """A table's columns and the columns that identify one of its rows."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def with_role(self, *roles: Role) -> list[str]:
        return [c.name for c in self.columns if c.role in roles]


def _receives(benefit: str) -> Column:
    return Column(
        f"receives_{benefit}",
        "boolean",
        "observed_benefit",
        f"The agency pays or sees paid the {BENEFIT_LABELS[benefit]} this month. NA where the "
        "holder of the data cannot see this benefit (a scenario setting).",
        nullable=True,
    )


INDIVIDUALS = Table(
    name="individuals",
    key=("person_id",),
    columns=(
        Column("person_id", "int64", "id", "Person identifier, unique in the extract."),
        Column("household_id", "int64", "id", "Household (dwelling) the person lives in."),
        Column(
            "benefit_unit",
            "int8",
            "feature",
            "Benefit unit (famille: a person or couple and their dependent children) within the "
            "household, numbered from 0. Unit 0 holds the household's reference person.",
            min=0,
            max=9,
        ),
        Column("role", "category", "feature", "Role in the benefit unit.", categories=ROLES),
        Column("age", "int16", "feature", "Age at the reference month.", unit="years", min=0, max=120),
        Column("sex", "category", "protected", "Sex as recorded by the agency.", categories=SEXES),
        Column(
            "activity",
            "category",
            "feature",
            "Main activity as last known to the agency.",
            categories=ACTIVITIES,
        ),
        Column(
            "declared_pay_last_year",
            "float64",
            "feature",
            "Gross pay over last calendar year as declared to the tax administration (salaire de "
            "base, before social contributions): the best the agency knows of a household it does "
            "not pay RSA or PPA.",
            unit="EUR/year",
            min=0,
            max=5_000_000,
        ),
        Column(
            "declared_pay_n2",
            "float64",
            "feature",
            "Gross pay of calendar year N-2 as on the tax notice the tax administration sends the "
            "agency: the resources family benefits are assessed on. NA when the agency was not sent "
            "one (the law engine then takes last year's declared pay).",
            unit="EUR/year",
            min=0,
            max=5_000_000,
            nullable=True,
        ),
        Column(
            "known_pay_monthly",
            "float64",
            "feature",
            "Monthly gross pay over the last three months, as pre-filled in the quarterly RSA and "
            "prime d'activité declaration from the montant net social (solidarité à la source, since "
            "March 2025). Held only for households with an RSA or PPA file: NA for every other one.",
            unit="EUR/month",
            min=0,
            max=500_000,
            nullable=True,
        ),
        Column(
            "known_turnover_monthly",
            "float64",
            "feature",
            "Monthly turnover (chiffre d'affaires) of a self-employed member's micro-enterprise, as "
            "declared in the quarterly RSA and prime d'activité declaration (0 for a member who is "
            "not self-employed). Held only for households with an RSA or PPA file: NA for every "
            "other one; self-employed income is not in any other table the agency holds.",
            unit="EUR/month",
            min=0,
            max=500_000,
            nullable=True,
        ),
        Column(
            "pension_monthly",
            "float64",
            "feature",
            "Gross retirement pension (retraite brute).",
            unit="EUR/month",
            min=0,
            max=100_000,
        ),
        Column(
            "unemployment_benefit_monthly",
            "float64",
            "feature",
            "Gross unemployment insurance benefit (allocation chômage brute) last known.",
            unit="EUR/month",
            min=0,
            max=20_000,
        ),
        Column(
            "disability_rate",
            "float64",
            "protected",
            "Incapacity rate recognised by the MDPH (0 when none), as a fraction. The agency holds it "
            "for the households it pays AAH (the MDPH's decision comes with the claim): NA for the others.",
            unit="fraction",
            min=0,
            max=1,
            nullable=True,
        ),
        Column(
            "nationality_group",
            "category",
            "protected",
            "Nationality group.",
            categories=NATIONALITY_GROUPS,
        ),
        Column(
            "higher_education",
            "boolean",
            "feature",
            "Holds a higher-education degree (as recorded by the employment service).",
        ),
    ),
)

HOUSEHOLDS = Table(
    name="households",
    key=("household_id",),
    columns=(
        Column("household_id", "int64", "id", "Household (dwelling) identifier."),
        Column(
            "household_type",
            "category",
            "feature",
            "Composition as known to the agency (INSEE categories).",
            categories=HOUSEHOLD_TYPES,
        ),
        Column("n_persons", "int8", "feature", "Persons known to live in the dwelling.", min=1, max=20),
        Column("tenure", "category", "feature", "Housing tenure.", categories=TENURES),
        Column(
            "rent_monthly",
            "float64",
            "feature",
            "Rent paid, excluding charges: known for households with a housing-aid file, 0 for "
            "owners and those housed free, NA for renters the agency does not pay housing aid.",
            unit="EUR/month",
            min=0,
            max=20_000,
            nullable=True,
        ),
        Column(
            "depcom",
            "category",
            "feature",
            "INSEE code of the commune of residence (sets the housing-aid zone).",
            pattern=r"^([0-9]{5}|2[AB][0-9]{3})$",
        ),
        Column(
            "territory_type",
            "category",
            "feature",
            "Kind of territory of the commune.",
            categories=TERRITORY_TYPES,
        ),
        Column(
            "digital_exclusion",
            "boolean",
            "feature",
            "Digital-exclusion proxy: no online account with the agency, correspondence on paper.",
        ),
        Column(
            "contacts_last_year",
            "int16",
            "feature",
            "Contacts with social services over the last twelve months.",
            unit="count",
            min=0,
            max=1000,
        ),
        Column(
            "reported_event",
            "category",
            "feature",
            "Life event reported to the agency over the last three months (already reflected in the other columns).",
            categories=REPORTED_EVENTS,
        ),
        *(_receives(b) for b in BENEFITS),
    ),
)


def _entitlement_columns(role: Role, according_to: str) -> tuple[Column, ...]:
    return (
        Column("household_id", "int64", "id", "Household identifier."),
        Column("benefit", "category", "id", "Benefit code.", categories=BENEFITS),
        Column("eligible", "bool", role, f"Entitled this month, by OpenFisca-France on {according_to}."),
        Column(
            "monthly_amount",
            "float64",
            role,
            f"Monthly entitlement by OpenFisca-France on {according_to} (for CSS: value of the "
            "cover net of any contribution, see data/nonrecours/data/calibration.yaml).",
            unit="EUR/month",
            min=0,
        ),
    )


def _truth(name: str, dtype: str, description: str, **kw) -> Column:
    return Column(name, dtype, "truth", description, **kw)


OUTCOMES = Table(
    name="outcomes",
    key=("household_id", "benefit"),
    columns=(
        *_entitlement_columns("truth", "the household's true situation"),
        _truth(
            "status",
            "category",
            "Where the household's claim stands this quarter (its claim history).",
            categories=CLAIM_STATUSES,
        ),
        _truth("claimed", "bool", "The household claims the benefit: paid or claim pending."),
        _truth(
            "paid_amount",
            "float64",
            "What the agency pays, computed on its own file (0 unless paid); may differ from the true amount, "
            "and be paid to a household no longer entitled (an overpayment, indu).",
            unit="EUR/month",
            min=0,
        ),
        _truth(
            "p_claim",
            "float64",
            "Probability that an eligible household claims, given its true situation and determinants "
            "(0 when not eligible): what the best model on the full truth could know.",
            unit="probability",
            min=0,
            max=1,
        ),
        _truth(
            "nonclaim_reason",
            "category",
            "Why an eligible household does not claim (`claims` when it does, or is not eligible).",
            categories=NONCLAIM_REASONS,
        ),
        _truth("reached_if_contacted", "bool", "An agent's contact would reach the household this quarter."),
        _truth(
            "claim_if_not_contacted",
            "bool",
            "Potential outcome: an eligible household that does not claim would claim by next "
            "quarter with no contact (False for the others).",
        ),
        _truth(
            "claim_if_contacted",
            "bool",
            "Potential outcome: it would claim by next quarter if contacted (never below "
            "`claim_if_not_contacted`: a contact never prevents a claim).",
        ),
        _truth(
            "p_claim_if_not_contacted",
            "float64",
            "Probability of `claim_if_not_contacted`.",
            unit="probability",
            min=0,
            max=1,
        ),
        _truth(
            "p_claim_if_contacted",
            "float64",
            "Probability of `claim_if_contacted` (reach included).",
            unit="probability",
            min=0,
            max=1,
        ),
    ),
)


def _state(name: str, dtype: str, description: str, **kw) -> Column:
    return Column(name, dtype, "truth", description, **kw)


WORLD_PERSONS = Table(
    name="world_persons",
    key=("person_id",),
    columns=(
        _state("person_id", "int64", "Person id (stable across quarters)."),
        _state("household_id", "int64", "The person's household (stable across quarters)."),
        _state("benefit_unit", "int64", "Benefit unit within the household (0: the reference person's)."),
        _state("role", "str", "head, partner or child in the benefit unit."),
        _state("age", "int64", "True age in years."),
        _state("female", "bool", "Woman."),
        _state("activity", "str", "Activity last quarter."),
        _state("higher_education", "bool", "Holds a higher-education degree."),
        _state("disability_rate", "float64", "Disability rate (0 to 1)."),
        _state("pay", "float64", "Gross pay last quarter.", unit="EUR/month"),
        _state("unemployment", "float64", "Unemployment insurance last quarter.", unit="EUR/month"),
        _state("pension_monthly", "float64", "Gross pension.", unit="EUR/month"),
        _state("turnover", "float64", "Self-employed turnover.", unit="EUR/month"),
        _state(
            "fte", "float64", "Full-time equivalent pay of the person's job (what a new job pays).", unit="EUR/month"
        ),
        _state("savings", "float64", "Savings (never in the extract).", unit="EUR"),
        _state("nationality", "str", "Nationality code."),
        _state("permit_years", "float64", "Years of residence permit of a non-EU national (never in the extract)."),
        _state("declared_annual", "float64", "Pay declared for last year.", unit="EUR/year"),
        _state("pay_n2", "float64", "Monthly pay in year N-2 (the tax notice).", unit="EUR/month"),
        _state("turnover_n2", "float64", "Monthly turnover in year N-2.", unit="EUR/month"),
        _state("activity_recent", "str", "Activity this quarter."),
        _state("pay_recent", "float64", "Gross pay this quarter.", unit="EUR/month"),
        _state("unemployment_recent", "float64", "Unemployment insurance this quarter.", unit="EUR/month"),
        _state("in_truth", "bool", "Lives in the household this quarter."),
        _state("in_observed", "bool", "The agency lists the person in the household."),
        _state("job_event", "str", "This quarter's job event (none, job_loss, new_job, irregular...)."),
        _state("event_reported", "bool", "The event was reported to the agency."),
        _state("irregular", "bool", "Irregular pay this quarter."),
    ),
)
"""The simulator's people at the end of a quarter (``state/persons.parquet``): the next quarter is
drawn from them. Truth: production never reads it."""

WORLD_HOUSEHOLDS = Table(
    name="world_households",
    key=("household_id",),
    columns=(
        _state("household_id", "int64", "Household id (stable across quarters)."),
        _state("household_type", "str", "True household type."),
        _state("head_age", "int64", "True age of the reference person."),
        _state("territory_type", "str", "Kind of territory."),
        _state("depcom", "str", "Commune code."),
        _state("tenure", "str", "Tenure."),
        _state("rent_monthly", "float64", "True rent.", unit="EUR/month"),
        _state("digital_exclusion", "bool", "Digitally excluded."),
        _state("nationality_group", "str", "Nationality group of the reference person."),
        _state("contacts_last_year", "int64", "Contacts with social services last year."),
        _state("income_rank", "float64", "Rank of the household's income in its population (0 to 1)."),
        _state("recent_event", "bool", "A life event happened this quarter."),
        _state("reported_event", "str", "The event the agency was told of."),
        _state("separation", "bool", "A separation this quarter."),
        _state("birth", "bool", "A birth this quarter."),
    ),
)
"""The simulator's households at the end of a quarter (``state/households.parquet``)."""

WORLD_TRAITS = Table(
    name="world_traits",
    key=("household_id",),
    columns=(
        _state("household_id", "int64", "Household id."),
        *(
            _state(f"know_{b}", "float64", f"The household's own draw for knowing of {b}.", min=0, max=1)
            for b in BENEFITS
        ),
        *(
            _state(name, "float64", f"The household's own draw for the {name} barrier.", min=0, max=1)
            for name in ("manage", "fear", "want")
        ),
    ),
)
"""Each household's own draws, fixed across quarters (``state/traits.parquet``): whether it passes
a barrier is its draw against the barrier's probability."""

ENTITLEMENTS = Table(
    name="entitlements",
    key=("household_id", "benefit"),
    columns=(
        *_entitlement_columns("law", "the data given (the observed tables)"),
        Column(
            "estimated_inputs",
            "category",
            "law",
            "Inputs the law engine estimated because the agency does not hold them "
            "(income from work: recent pay from last year's declaration, a self-employed member's turnover from the "
            "average micro-entrepreneur's, N-2 pay from last year's; rent from the median of the zone and "
            "household size).",
            categories=ESTIMATED_INPUTS,
        ),
    ),
)

AGE_BANDS = ("under_25", "25_29", "30_44", "45_59", "60_64", "65_plus")


def _f(name: str, dtype: str, description: str, **kw) -> Column:
    return Column(name, dtype, "feature", description, **kw)


PROFILES = Table(
    name="profiles",
    key=("household_id", "benefit"),
    columns=(
        Column("household_id", "int64", "id", "Household identifier."),
        _f(
            "benefit",
            "category",
            "Benefit this row is about (one model for all benefits).",
            categories=BENEFITS,
            fr="Prestation concernée (un seul modèle pour toutes les prestations)",
        ),
        # law engine on observed data
        Column(
            "law_eligible",
            "bool",
            "law",
            "OpenFisca-France finds the household eligible on the observed data.",
            fr="Droit ouvert selon OpenFisca-France sur les données de l'organisme",
        ),
        Column(
            "law_amount",
            "float64",
            "law",
            "OpenFisca-France monthly amount on the observed data.",
            unit="EUR/month",
            min=0,
            fr="Montant mensuel calculé par OpenFisca-France sur les données de l'organisme",
        ),
        Column(
            "law_estimated_inputs",
            "category",
            "law",
            "Inputs the law engine had to estimate for this household (none, pay: income from work, rent, both).",
            categories=ESTIMATED_INPUTS,
            fr="Données estimées faute d'être connues de l'organisme (salaire récent, loyer)",
        ),
        _f(
            "law_eligible_count",
            "int8",
            "Benefits OpenFisca-France finds the household eligible to on observed data.",
            min=0,
            max=8,
            fr="Nombre de prestations auxquelles OpenFisca-France ouvre droit sur ces données",
        ),
        # what the agency already pays
        _f(
            "receives_this",
            "float64",
            "1 if observed receiving this benefit, 0 if observed not receiving it, NaN where the holder cannot see it.",
            nullable=True,
            min=0,
            max=1,
            fr="Le foyer perçoit déjà cette prestation (si l'organisme peut le voir)",
        ),
        *(
            _f(
                f"receives_{b}",
                "float64",
                f"Observed receipt of {b}: 1, 0, or NaN where unseen.",
                nullable=True,
                min=0,
                max=1,
                fr=f"Perçoit déjà : {BENEFIT_LABELS[b]}",
            )
            for b in BENEFITS
        ),
        _f(
            "benefits_received",
            "int8",
            "Benefits observed received (known ones only).",
            min=0,
            max=8,
            fr="Nombre de prestations perçues connues de l'organisme",
        ),
        # composition
        _f(
            "household_type",
            "category",
            "Household type as known to the agency.",
            categories=HOUSEHOLD_TYPES,
            fr="Type de foyer connu de l'organisme",
        ),
        _f("n_persons", "int8", "Persons in the dwelling.", min=1, max=20, fr="Nombre de personnes dans le logement"),
        _f("n_adults", "int8", "Persons aged 18 or more.", min=0, max=20, fr="Nombre de personnes de 18 ans ou plus"),
        _f("n_children", "int8", "Persons under 18.", min=0, max=20, fr="Nombre d'enfants de moins de 18 ans"),
        _f("n_under_3", "int8", "Children under 3.", min=0, max=20, fr="Nombre d'enfants de moins de 3 ans"),
        _f(
            "n_benefit_units",
            "int8",
            "Benefit units (familles) in the dwelling.",
            min=1,
            max=10,
            fr="Nombre de foyers allocataires (familles) dans le logement",
        ),
        _f(
            "head_age",
            "int16",
            "Age of the reference person.",
            unit="years",
            min=0,
            max=120,
            fr="Âge de la personne de référence",
        ),
        _f(
            "oldest_age",
            "int16",
            "Age of the oldest member.",
            unit="years",
            min=0,
            max=120,
            fr="Âge du membre le plus âgé",
        ),
        _f(
            "head_activity",
            "category",
            "Activity of the reference person as last known.",
            categories=ACTIVITIES,
            fr="Activité de la personne de référence, dernière connue",
        ),
        _f(
            "any_higher_education",
            "bool",
            "An adult holds a higher-education degree.",
            fr="Un adulte est diplômé de l'enseignement supérieur",
        ),
        # income (per OECD consumption unit: 1 + 0.5 per other person aged 14+ + 0.3 per child)
        _f(
            "consumption_units",
            "float64",
            "OECD-modified equivalence scale.",
            min=1,
            fr="Nombre d'unités de consommation (échelle de l'OCDE modifiée)",
        ),
        _f(
            "income_known_per_cu",
            "float64",
            "Latest known monthly gross pay + pensions + unemployment benefit, per consumption unit (NA where "
            "recent pay is not held).",
            unit="EUR/month",
            min=0,
            nullable=True,
            fr="Dernier revenu mensuel connu (salaire brut, pensions, allocations chômage) par unité de consommation",
        ),
        _f(
            "income_declared_per_cu",
            "float64",
            "Last year's declared pay / 12 + pensions + unemployment benefit, per consumption unit.",
            unit="EUR/month",
            min=0,
            fr="Revenu déclaré de l'an dernier (salaire / 12, pensions, allocations chômage) par unité de consommation",
        ),
        _f(
            "pay_change",
            "float64",
            "Latest known monthly pay over last year's monthly average, minus 1 (-1: all pay stopped; 0: no "
            "change; NaN: no pay last year).",
            nullable=True,
            fr="Évolution du dernier salaire connu par rapport à la moyenne mensuelle de l'an dernier",
        ),
        _f(
            "pay_drop",
            "bool",
            "Latest known pay is at least 30% below last year's monthly average.",
            fr="Baisse du salaire d'au moins 30 % par rapport à l'an dernier",
        ),
        _f(
            "pension_share",
            "float64",
            "Share of known income from pensions.",
            min=0,
            max=1,
            fr="Part des pensions dans les revenus connus",
        ),
        _f(
            "unemployment_share",
            "float64",
            "Share of known income from unemployment benefit.",
            min=0,
            max=1,
            fr="Part des allocations chômage dans les revenus connus",
        ),
        # housing and territory
        _f("tenure", "category", "Housing tenure.", categories=TENURES, fr="Statut d'occupation du logement"),
        _f(
            "rent_monthly",
            "float64",
            "Rent excluding charges (NA where the agency does not hold it).",
            unit="EUR/month",
            min=0,
            nullable=True,
            fr="Loyer mensuel hors charges",
        ),
        _f(
            "rent_burden",
            "float64",
            "Rent over monthly income, known or declared (capped at 5; NA where rent is not held).",
            min=0,
            max=5,
            nullable=True,
            fr="Taux d'effort : loyer rapporté au revenu mensuel connu",
        ),
        _f("territory_type", "category", "Kind of territory.", categories=TERRITORY_TYPES, fr="Type de territoire"),
        # contact and events
        _f("digital_exclusion", "bool", "Digital-exclusion proxy.", fr="Indice d'éloignement du numérique"),
        _f(
            "contacts_last_year",
            "int16",
            "Contacts with social services over twelve months.",
            min=0,
            max=1000,
            fr="Contacts avec les services sociaux sur douze mois",
        ),
        _f(
            "reported_event",
            "category",
            "Life event reported over the last three months.",
            categories=REPORTED_EVENTS,
            fr="Événement de vie signalé dans les trois derniers mois",
        ),
        # protected: for fairness auditing only, never model inputs
        Column("head_sex", "category", "protected", "Sex of the reference person.", categories=SEXES),
        Column("any_disability", "bool", "protected", "A member has an MDPH-recognised disability."),
        Column(
            "head_nationality_group",
            "category",
            "protected",
            "Nationality group of the reference person.",
            categories=NATIONALITY_GROUPS,
        ),
        Column(
            "age_band",
            "category",
            "protected",
            "Age band of the reference person (audit grouping; age itself is a feature).",
            categories=AGE_BANDS,
        ),
    ),
)

FEATURES: tuple[str, ...] = tuple(PROFILES.with_role("feature", "law"))
"""The model's inputs, in order: every profile column whose role is ``feature`` or ``law``; never
an ``id`` nor a ``protected`` column."""
PROTECTED: tuple[str, ...] = tuple(PROFILES.with_role("protected"))


PER_BENEFIT = ("law_eligible", "law_amount", "receives_this")
"""Profile columns that differ by benefit (besides ``benefit``); every other one describes the household."""

AUDIT_GROUPS = (
    "head_sex",
    "age_band",
    "household_type",
    "tenure",
    "territory_type",
    "any_disability",
    "head_nationality_group",
)
"""Attributes whose groups the gate and the monitoring audit: the protected ones and three of context."""

SCORE_COLUMNS = ("p_unclaimed", "estimated_monthly_amount", "expected_unclaimed_monthly", "reasons")
"""What scoring adds to a profile row (API, worklists, decision log): the probability of an
unclaimed entitlement, the amount at stake (EUR/month), their product, and reasons in words."""

TABLES: dict[str, Table] = {
    t.name: t
    for t in (INDIVIDUALS, HOUSEHOLDS, OUTCOMES, ENTITLEMENTS, PROFILES, WORLD_PERSONS, WORLD_HOUSEHOLDS, WORLD_TRAITS)
}


class SchemaError(UserError, ValueError):
    """An input table does not follow the schema; the message names the column and a row."""


def _example(df: pd.DataFrame, mask: pd.Series, table: Table) -> str:
    row = df.loc[mask].iloc[0]
    plain = {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in table.key if k in df.columns}
    key = ", ".join(f"{k}={v!r}" for k, v in plain.items())
    return key or f"row {int(mask.to_numpy().nonzero()[0][0])}"


def validate(df: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Return ``df`` restricted to the table's columns, with the declared dtypes.

    Raise :class:`SchemaError` naming the column and an example row for the first problem found:
    a missing column, a value that cannot take the declared type, a missing value where none is
    allowed, an unknown category, a value out of range, a duplicated key.
    """
    missing = [c for c in table.names if c not in df.columns]
    if missing:
        raise SchemaError(f"{table.name}: missing column(s) {missing}; expected {table.names}")
    out = {}
    for col in table.columns:
        s = df[col.name]
        if not col.nullable and s.isna().any():
            raise SchemaError(f"{table.name}.{col.name}: missing value at {_example(df, s.isna(), table)}")
        if col.categories is not None:
            bad = s.notna() & ~s.astype("object").isin(col.categories)
            if bad.any():
                raise SchemaError(
                    f"{table.name}.{col.name}: unknown value {df.loc[bad, col.name].iloc[0]!r} at "
                    f"{_example(df, bad, table)}; expected one of {list(col.categories)}"
                )
            out[col.name] = pd.Categorical(s.astype("object"), categories=list(col.categories))
            continue
        if col.dtype == "category":
            text = s.astype("string")
            if col.pattern is not None:
                bad = (text.notna() & ~text.str.fullmatch(col.pattern).fillna(False)).astype(bool)
                if bad.any():
                    raise SchemaError(
                        f"{table.name}.{col.name}: value {text[bad].iloc[0]!r} does not match {col.pattern} "
                        f"at {_example(df, bad, table)}"
                    )
            out[col.name] = text.astype("category")
            continue
        try:
            typed = s.astype(col.dtype)
        except (TypeError, ValueError) as exc:
            numeric = pd.to_numeric(s, errors="coerce")
            bad = numeric.isna() & s.notna()
            where = _example(df, bad, table) if bad.any() else "some row"
            raise SchemaError(f"{table.name}.{col.name}: cannot read as {col.dtype} at {where} ({exc})") from None
        if col.dtype.startswith(("int", "float")):
            as_float = typed.astype("float64")
            bad = (s.astype("float64") != as_float) & s.notna()
            if col.dtype.startswith("int") and bad.any():
                raise SchemaError(
                    f"{table.name}.{col.name}: value {s[bad].iloc[0]!r} is not a whole number at "
                    f"{_example(df, bad, table)}"
                )
            for bound, word, out_of_range in (
                (col.min, "below the minimum", as_float < (col.min if col.min is not None else 0)),
                (col.max, "above the maximum", as_float > (col.max if col.max is not None else 0)),
            ):
                if bound is not None and out_of_range.any():
                    raise SchemaError(
                        f"{table.name}.{col.name}: value {as_float[out_of_range].iloc[0]} is {word} "
                        f"{bound} {col.unit} at {_example(df, out_of_range, table)}".replace("  ", " ")
                    )
        out[col.name] = typed
    result = pd.DataFrame(out, index=df.index).reset_index(drop=True)
    dup = result.duplicated(list(table.key), keep=False)
    if dup.any():
        raise SchemaError(f"{table.name}: duplicated key {list(table.key)} at {_example(result, dup, table)}")
    return result


LAYOUT = """## Folders: one per quarter

A raw folder is one quarter of one population: `individuals.parquet` and `households.parquet`
(the agency's extract) and, for a synthetic population, `outcomes.parquet` (the truth) and
`calibration.json` (the generator's report, with the quarter's reference month). `nonrecours
generate --out DIR` writes consecutive quarters of the same households (`scenario.quarters`,
two by default), each a complete raw folder:

```
DIR/                  the current quarter (law.reference_month, e.g. 2025-06)
DIR/next_quarter/     three months later (2025-09): events happened, claims started and stopped
```

Every command works on any of them; `entitlements`, `features`, `profiles.parquet` and the rest
are written beside the tables they come from. `train --input DIR` also tests the model on
`DIR/next_quarter` when its profiles are there.

## What the agency holds depends on what it pays

Missing is NA, never 0:

- `individuals.known_pay_monthly`: only for households with an RSA or PPA file (the quarterly
  declaration is pre-filled from the montant net social since March 2025); NA otherwise.
- `individuals.known_turnover_monthly`: a self-employed member's turnover, only for households
  with an RSA or PPA file (self-employed people declare it each quarter); NA otherwise. No other
  table holds self-employed income.
- `individuals.declared_pay_last_year`: last year's declared pay, for every household.
- `individuals.declared_pay_n2`: the pay of year N-2 on the tax notice (what family benefits are
  assessed on), for every household the tax administration sent one for.
- `individuals.disability_rate`: only for households it pays AAH; NA otherwise.
- `households.rent_monthly`: only for housing-aid files; 0 for owners and those housed free; NA for
  other renters.
- Savings and a non-EU national's residence-permit seniority are never in the extract: the truth
  gives them to OpenFisca-France, the agency's law engine cannot.

The law engine's mapping (`nonrecours/law/situation.py`) fills each NA it needs explicitly
(recent pay from last year's declaration; a self-employed member's turnover from the average
micro-entrepreneur's; rent from the median of the kind of territory and household size) and marks
the entitlement (`estimated_inputs`).
"""


def to_markdown() -> str:
    """Every table and column as Markdown: the data contract, for people."""
    lines = [
        "# Data contract",
        "",
        "Generated by `nonrecours schema` from `nonrecours.core.schema`; do not edit by hand.",
        "",
        LAYOUT,
    ]
    for table in TABLES.values():
        lines += [f"## `{table.name}.parquet`", "", f"One row per {', '.join(table.key)}.", ""]
        lines += ["| column | type | role | unit | meaning |", "|---|---|---|---|---|"]
        for c in table.columns:
            values = f" Values: {', '.join(f'`{v}`' for v in c.categories)}." if c.categories else ""
            rng = ""
            if c.min is not None or c.max is not None:
                rng = f" Range: {c.min if c.min is not None else '-inf'} to {c.max if c.max is not None else '+inf'}."
            lines.append(
                f"| `{c.name}` | {c.dtype}{' (nullable)' if c.nullable else ''} | {c.role} | {c.unit} | "
                f"{c.description}{values}{rng} |"
            )
        lines.append("")
    return "\n".join(lines)
