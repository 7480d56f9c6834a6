"""Typed access to ``calibration.yaml`` (the published figures the generator is tuned to, the claim
model and the response to outreach) and ``population.yaml`` (the shapes it draws from), beside this
module; and a territory's own calibration, a partial file in the shape of ``calibration.yaml``
deep-merged over it (:func:`merge_calibration`) and checked key by key (:class:`CalibrationFile`).

Where it sits: in the data layer, read by the generator and the simulation only (shares,
non-take-up targets, claim-model effects, the shapes of its distributions); production never reads
it. Law parameters production needs (the CSS valuation) are in :mod:`nonrecours.law.parameters`.
The YAML keeps every figure next to its source; ``territories/`` holds worlds the prior never saw.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nonrecours.core.config import describe
from nonrecours.core.errors import UserError


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


Share = Annotated[float, Field(ge=0, le=1)]
"""A share or a probability."""


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
    new_spell_claimed_share: Share
    learn_per_quarter: Share
    pending_share: Share
    stock_offset: dict[str, float]
    assumption: bool = True


class Reach(_Frozen):
    intercept: float
    contacts: float
    digital_exclusion: float


class Outreach(_Frozen):
    """``outreach``: how an agent's contact changes the barriers."""

    reach: Reach
    help_with_procedure: Share
    reassurance: Share
    assumption: bool = True


class Dynamics(_Frozen):
    """``dynamics``: households leaving and arriving each quarter."""

    leave_per_quarter: Share
    arrive_per_quarter: Share
    assumption: bool = True


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
    dynamics: Dynamics
    outreach_benchmarks: dict[str, dict]
    stated_reasons: dict[str, float]
    shapes: Shapes


class NonTakeUp(_Frozen):
    ntu: float = Field(gt=0, lt=1, description="Non-take-up rate among the households estimated eligible.")
    source: str
    assumption: bool = False


class PopulationFigures(_Frozen):
    household_type_share: dict[str, Share]
    single_parent_headed_by_mother: Share
    illectronisme_15_plus: Share
    illectronisme_60_plus: Share
    poverty_rate: Share
    territory_share: dict[str, Share | bool]


class CalibrationFile(_Frozen):
    """``calibration.yaml`` as written, every key and range checked: what a territory's file may
    change (once merged over the shipped one)."""

    population: PopulationFigures
    non_take_up: dict[str, NonTakeUp]
    gradients: dict[str, Any]
    claim_model: ClaimModel
    outreach: Outreach
    dynamics: Dynamics
    outreach_benchmarks: dict[str, dict[str, Any]]
    stated_reasons: dict[str, Share]


class CalibrationError(UserError):
    """A territory's calibration that cannot be used; the message names the key and what is allowed."""


SHIPPED = "calibration.yaml"


def _read(name: str) -> dict:
    return yaml.safe_load(resources.files("nonrecours.data").joinpath(name).read_text())


@lru_cache(maxsize=1)
def _shipped() -> dict:
    return _read(SHIPPED)


def shipped_calibration() -> dict:
    """The shipped ``calibration.yaml``, as written (a copy: the caller may change it)."""
    return copy.deepcopy(_shipped())


def merge_calibration(overlay: Mapping[str, Any], *, source: str, base: Mapping[str, Any] | None = None) -> dict:
    """``overlay`` deep-merged over ``base`` (the shipped calibration by default): a mapping merges
    key by key, anything else replaces. A key ``base`` does not have, or a mapping where a value
    is (or the reverse), is refused with its path; the result is checked as a whole
    (:func:`check_calibration`)."""
    merged = copy.deepcopy(dict(base if base is not None else _shipped()))

    def merge(into: dict, given: Mapping, path: tuple[str, ...]) -> None:
        for key, value in given.items():
            where = ".".join((*path, str(key)))
            if key not in into:
                raise CalibrationError(f"{source}: {where}: unknown key; known here: {sorted(map(str, into))}")
            if isinstance(into[key], dict) != isinstance(value, Mapping):
                kind = "a mapping of keys" if isinstance(into[key], dict) else "a value"
                raise CalibrationError(f"{source}: {where}: expected {kind}, as in the shipped calibration.yaml")
            if isinstance(value, Mapping):
                merge(into[key], value, (*path, str(key)))
            else:
                into[key] = value

    if not isinstance(overlay, Mapping):
        raise CalibrationError(f"{source}: expected a mapping of sections, as in calibration.yaml")
    merge(merged, overlay, ())
    check_calibration(merged, source=source)
    return merged


def check_calibration(raw: Mapping[str, Any], *, source: str) -> CalibrationFile:
    """``raw`` checked key by key: its types and ranges, each refusal with the key's path."""
    try:
        return CalibrationFile.model_validate(raw)
    except ValidationError as exc:
        raise CalibrationError(f"{source}: " + "; ".join(describe(e) for e in exc.errors())) from None


def read_calibration_overlay(path: Path) -> dict:
    """A territory's partial calibration file, merged over the shipped one."""
    try:
        overlay = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CalibrationError(f"{path}: cannot read it as YAML ({type(exc).__name__}: {exc})") from None
    return merge_calibration(overlay, source=str(path))


@lru_cache(maxsize=1)
def load_calibration() -> Calibration:
    """The shipped calibration (``calibration.yaml`` and ``population.yaml``), read once per process."""
    return calibration_of(_shipped())


def calibration_of(raw: Mapping[str, Any]) -> Calibration:
    """The typed calibration of ``raw`` (a whole ``calibration.yaml``, shipped or merged), with the
    shapes of ``population.yaml``."""
    pop = raw["population"]
    territory = {k: v for k, v in pop["territory_share"].items() if k != "assumption"}
    ntu = raw["non_take_up"]
    population = _read("population.yaml")
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
        dynamics=Dynamics(**raw["dynamics"]),
        outreach_benchmarks=raw["outreach_benchmarks"],
        stated_reasons=raw["stated_reasons"],
        shapes=Shapes.model_validate({**population, "as_of": str(population["as_of"])}),
    )
