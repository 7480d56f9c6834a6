"""Typed access to ``data/nonrecours/data/calibration.yaml`` (the published figures the generator is tuned to) and
``data/nonrecours/data/population.yaml`` (the shapes it draws from).

Where it sits: in the data layer, read by the generator only (shares, non-take-up targets,
claim-model effects, and from ``data/nonrecours/data/population.yaml`` the shapes of its distributions);
production never reads it. Law parameters production needs (the CSS
valuation) are in :mod:`nonrecours.law.parameters`. The YAML keeps every figure next to its source.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Range = tuple[float, float]


class Pay(_Frozen):
    smic_gross_monthly: float
    premium_median: float
    premium_sigma: float
    higher_education_factor: float
    women_factor: float
    full_time_share: float
    part_time_share_of_rest: float
    part_time_fraction: Range
    short_contract_fraction: Range
    student_job_share: float
    student_job_pay: Range
    declaration_noise_sd: float
    declaration_noise_clip: Range
    n2_drift_sd: float
    n2_drift_clip: Range


class SelfEmployed(_Frozen):
    share_of_employed: float
    income_median: float
    income_sigma: float
    allowance: float
    turnover_max_monthly: float
    n2_drift_sigma: float


class Unemployment(_Frozen):
    paid_share: float
    replacement_rate: float
    replacement_draw: Range
    max_monthly: float


class Pension(_Frozen):
    median: float
    sigma: float
    women_factor: float


class Disability(_Frozen):
    working_age: tuple[int, int]
    share_80_plus: float
    share_50_plus: float
    rate_80_plus: float
    rate_50_79: dict[str, float]
    out_of_work_share: float


class Members(_Frozen):
    women_heading_single_person: float
    women_heading_otherwise: float
    women_among_flatmates: float
    girls_at_birth: float
    partner_age_gap: dict[str, float]
    flatmate_age_gap: tuple[int, int]
    adult_age: int
    oldest_age: int
    children_count: dict[str, tuple[tuple[int, float], ...]]
    oldest_child_age: int


class ByAge(_Frozen):
    """A share for ages below each bound, and one for the oldest."""

    below_age: tuple[int, ...]
    share: tuple[float, ...]
    share_older: float


class Housing(_Frozen):
    owner_by_head_age: ByAge
    owner_rank_base: float
    social_share: float
    social_rank_exponent: float
    social_single_parent_extra: float
    free_housing_share: float
    private_floor: float
    surface_first_person: float
    surface_per_other_person: float
    surface_noise: dict[str, float | Range]
    rent_per_m2: dict[str, float]
    social_rent_per_m2: float
    private_rent_sigma: float
    social_rent_sigma: float


class DigitalExclusion(_Frozen):
    older_from_age: int
    under_60: float
    rural_extra: float
    low_income_extra: float


class Contacts(_Frozen):
    base: float
    low_income: float
    single_parent: float


class Events(_Frozen):
    job_loss: float
    new_job: float
    irregular_hours: float
    separation: float
    birth: float
    job_loss_before_age: int
    birth_up_to_head_age: int
    new_job_pay_fraction: Range
    irregular_pay_sigma: float
    job_loss_paid_share: float
    quarter_months: int


class TruthOnly(_Frozen):
    savings_holding_share: float
    savings_median: float
    savings_rank_factor: float
    savings_older_factor: float
    savings_sigma: float
    nationality_codes: dict[str, str]
    permit_years: Range


class Claims(_Frozen):
    min_amount: float
    amount_unit: float
    intercept_bracket: Range
    age_25_29: tuple[int, int]


class Shapes(_Frozen):
    """``data/nonrecours/data/population.yaml``: the distributions the generator draws from."""

    as_of: str
    pay: Pay
    self_employed: SelfEmployed
    unemployment: Unemployment
    pension: Pension
    disability: Disability
    head_age_bands: dict[str, tuple[tuple[int, int, float], ...]]
    members: Members
    activity_by_age: tuple[tuple[int, int, dict[str, float]], ...]
    infant_age: int
    higher_education: ByAge
    housing: Housing
    digital_exclusion: DigitalExclusion
    nationality_share: dict[str, float]
    contacts: Contacts
    events: Events
    communes: dict[str, tuple[str, ...]]
    truth_only: TruthOnly
    claims: Claims


class Know(_Frozen):
    contacts: float
    in_contact: float
    single_mother: float
    social_renter: float
    owner: float
    digital_exclusion: float
    non_eu: float
    age_25_29: float
    territory: dict[str, float]
    log_amount: float
    log_amount_aspa: float
    woman_aspa: float


class Manage(_Frozen):
    digital_exclusion: float
    aged_75_plus: float


class Fear(_Frozen):
    irregular_income: float
    owner_aspa: float


class Want(_Frozen):
    log_amount: float
    log_amount_aspa: float
    higher_education: float
    couple_no_child: float


class ClaimModel(_Frozen):
    """``claim_model`` in ``data/nonrecours/data/calibration.yaml``: the four barriers and the claim dynamics."""

    know: Know
    manage: Manage
    fear: Fear
    want: Want
    new_spell_claimed_share: float
    learn_per_quarter: float
    pending_share: float
    stock_offset: dict[str, float]


class Reach(_Frozen):
    intercept: float
    contacts: float
    digital_exclusion: float


class Outreach(_Frozen):
    """``outreach``: how an agent's contact changes the barriers."""

    reach: Reach
    help_with_procedure: float
    reassurance: float


class Calibration(BaseModel):
    model_config = ConfigDict(frozen=True)

    household_type_share: dict[str, float]
    single_parent_headed_by_mother: float
    illectronisme_15_plus: float
    illectronisme_60_plus: float
    poverty_rate: float
    territory_share: dict[str, float]
    ntu: dict[str, float]
    ntu_is_assumption: dict[str, bool]
    ntu_source: dict[str, str]
    gradients: dict
    claim_model: ClaimModel
    outreach: Outreach
    outreach_benchmarks: dict[str, dict]
    stated_reasons: dict[str, float]
    shapes: Shapes


def _read(name: str) -> dict:
    return yaml.safe_load(resources.files("nonrecours.data").joinpath(name).read_text())


@lru_cache(maxsize=1)
def load_calibration() -> Calibration:
    """``calibration.yaml`` (published figures and the claim model) and ``population.yaml`` (the
    shapes of the distributions), read once per process."""
    raw = _read("calibration.yaml")
    pop = raw["population"]
    territory = {k: v for k, v in pop["territory_share"].items() if k != "assumption"}
    ntu = raw["non_take_up"]
    return Calibration(
        household_type_share=pop["household_type_share"],
        single_parent_headed_by_mother=pop["single_parent_headed_by_mother"],
        illectronisme_15_plus=pop["illectronisme_15_plus"],
        illectronisme_60_plus=pop["illectronisme_60_plus"],
        poverty_rate=pop["poverty_rate"],
        territory_share=territory,
        ntu={b: v["ntu"] for b, v in ntu.items()},
        ntu_is_assumption={b: bool(v.get("assumption", False)) for b, v in ntu.items()},
        ntu_source={b: v["source"] for b, v in ntu.items()},
        gradients=raw["gradients"],
        claim_model=ClaimModel(**{k: v for k, v in raw["claim_model"].items() if k != "assumption"}),
        outreach=Outreach(**{k: v for k, v in raw["outreach"].items() if k != "assumption"}),
        outreach_benchmarks=raw["outreach_benchmarks"],
        stated_reasons=raw["stated_reasons"],
        shapes=Shapes.model_validate({**_read("population.yaml"), "as_of": str(_read("population.yaml")["as_of"])}),
    )
