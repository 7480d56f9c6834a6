"""What the scoring API accepts and returns, derived from the schema module.

Where it sits: the BentoML service validates every request with these models before any work is
done, so a bad request is a 4xx naming the field's path, never a 5xx. A request holds households
in the same observed form as the raw tables (``INDIVIDUALS`` members inside ``HOUSEHOLDS``
rows); :func:`to_tables` turns them into those tables for the one feature builder.

The models are built from the schema's columns (type, range, categories, pattern, meaning): a
column added to the schema appears in the API and its OpenAPI document with no edit here.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from nonrecours.core.config import bounds
from nonrecours.core.schema import (
    BENEFITS,
    CAMPAIGN_ARMS,
    HOUSEHOLDS,
    INDIVIDUALS,
    OUTREACH_RESULTS,
    Column,
    Table,
    validate,
)

MAX_MEMBERS = int(HOUSEHOLDS.column("n_persons").max or 20)
MIN_HEAD_AGE = 16
MAX_OUTCOMES_PER_BATCH = 5_000
"""Outcomes one ``POST /outcomes/batch`` may carry (one transaction)."""
MAX_ID = 2**63 - 1
"""Largest id the decision log's databases store (a signed 64-bit integer in SQLite and PostgreSQL)."""

# Columns that are not asked for: ids the service assigns itself, and counts it derives.
_MEMBER_SKIP = {"person_id", "household_id"}
_HOUSEHOLD_DERIVED = {"n_persons"}


def _field(col: Column) -> tuple[Any, Any]:
    """A pydantic (annotation, FieldInfo) pair for one schema column."""
    kw: dict[str, Any] = {"description": col.description + (f" Unit: {col.unit}." if col.unit else "")}
    if col.categories is None:
        # strict: no lax coercion ("yes" or 1 for a boolean, "1.5" for a number, true for an
        # integer), so the API accepts exactly what its OpenAPI document declares
        kw["strict"] = True
    if col.categories is not None:
        annotation: Any = Literal[col.categories]
    elif col.dtype.startswith("int"):
        annotation = int
    elif col.dtype.startswith("float"):
        annotation = float
        kw["allow_inf_nan"] = False
    elif col.dtype in ("bool", "boolean"):
        annotation = bool
    else:
        annotation = str
        if col.pattern:
            kw["pattern"] = col.pattern
    if col.min is not None:
        kw["ge"] = col.min
    if col.max is not None:
        kw["le"] = col.max
    if col.nullable:
        return annotation | None, Field(default=None, **kw)
    return annotation, Field(**kw)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _model(
    name: str, table: Table, skip: set[str], doc: str, base: type[BaseModel] = _Strict, **extra: Any
) -> type[BaseModel]:
    fields = {c.name: _field(c) for c in table.columns if c.name not in skip}
    return create_model(name, __base__=base, __doc__=doc, **fields, **extra)  # type: ignore[call-overload]  # fields of the schema


Member = _model(
    "Member",
    INDIVIDUALS,
    _MEMBER_SKIP,
    "One person of the household, as the agency knows them (the individuals table).",
)


class _HouseholdChecks(_Strict):
    """Consistency the tables' columns cannot express one by one."""

    @model_validator(mode="after")
    def _benefit_units(self):
        members = self.members  # type: ignore[attr-defined]  # the field create_model adds
        units: dict[int, list[str]] = {}
        for i, m in enumerate(members):
            units.setdefault(m.benefit_unit, []).append(m.role)
            if m.role == "head" and m.age < MIN_HEAD_AGE:
                raise ValueError(
                    f"members.{i}.age: the head of benefit unit {m.benefit_unit} is {m.age}; a head is "
                    f"{MIN_HEAD_AGE} or older (an emancipated minor at the youngest)"
                )
        if 0 not in units:
            raise ValueError("members: benefit unit 0 must hold the household's reference person (role 'head')")
        for unit, roles in sorted(units.items()):
            if roles.count("head") != 1:
                raise ValueError(
                    f"members: benefit unit {unit} must have exactly one 'head', has {roles.count('head')}"
                )
            if roles.count("partner") > 1:
                raise ValueError(f"members: benefit unit {unit} has {roles.count('partner')} partners; at most one")
        return self


Household = _model(
    "Household",
    HOUSEHOLDS,
    _HOUSEHOLD_DERIVED,
    "One household with its members, as the agency knows it (a households row and its individuals rows).",
    base=_HouseholdChecks,
    members=(
        list[Member],  # type: ignore[valid-type]  # a model made by create_model: mypy sees a variable
        Field(min_length=1, max_length=MAX_MEMBERS, description="Everyone living in the dwelling (at least one)."),
    ),
)


class BenefitScore(BaseModel):
    benefit: Literal[BENEFITS]  # type: ignore[valid-type]  # a Literal of the schema's own codes, built at import
    p_unclaimed: float = Field(
        description="Probability that the household is entitled to this benefit and does not claim it."
    )
    estimated_monthly_amount: float = Field(
        description="Monthly amount at stake, EUR: OpenFisca-France's on the data given, else the benefit's "
        "typical amount."
    )
    expected_unclaimed_monthly: float = Field(
        description="p_unclaimed x estimated_monthly_amount, EUR/month: the ranking key."
    )
    law_eligible: bool = Field(description="OpenFisca-France finds the household eligible on the data given.")
    reasons: list[str] = Field(description="What moved this score most, in words, strongest first.")


class HouseholdScore(BaseModel):
    household_id: int
    model_name: str
    model_version: str
    scored_at: dt.datetime
    law_result: Literal["computed", "reused"] = Field(
        description="computed: OpenFisca-France ran on this request. reused: the household's inputs are the "
        "same as in an earlier decision "
        "(batch or API, within serving.reuse_law_results_days, same law engine and reference month), whose "
        "law-engine answer was taken; "
        "the model and the reasons ran now."
    )
    law_result_at: dt.datetime = Field(
        description="When OpenFisca-France computed the entitlements this score rests on."
    )
    scores: list[BenefitScore] = Field(description="One per benefit, highest expected unclaimed amount first.")


class OutcomeIn(_Strict):
    """What happened after an agent contacted (or tried to contact) a scored household. A
    campaign's outcome gives ``result`` (``contacted`` and ``claimed`` follow from it); the older
    form gives ``contacted`` and ``claimed``."""

    household_id: int = Field(
        ge=0, le=MAX_ID, strict=True, description="The household id sent to /score (or listed in the campaign)."
    )
    benefit: Literal[BENEFITS] = Field(description="Benefit the contact was about.")  # type: ignore[valid-type]  # a Literal of the schema's own codes, built at import
    result: Literal[OUTREACH_RESULTS] | None = Field(  # type: ignore[valid-type]  # a Literal of the schema's own codes, built at import
        default=None,
        description="What the agent found: unreachable; opened (a right was opened: give amount_granted); "
        "not_entitled (after checking); declined; already_receiving.",
    )
    contacted: bool | None = Field(default=None, strict=True, description="The household was reached (without result).")
    claimed: bool | None = Field(
        default=None, strict=True, description="A claim was made (null: not known yet; without result)."
    )
    amount_granted: float | None = Field(
        default=None,
        ge=0,
        le=100_000,
        allow_inf_nan=False,
        strict=True,
        description="Monthly amount granted, EUR (null: not known yet).",
    )
    outcome_date: dt.date = Field(description="Date of the outcome (YYYY-MM-DD), not in the future.")
    campaign_id: str | None = Field(
        default=None, max_length=40, pattern=r"^[A-Za-z0-9T:._-]+$", description="The campaign the contact belongs to."
    )
    decision_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        strict=True,
        description="The decision-log entry the outcome answers (the campaign file's decision_id); default: "
        "the household's latest.",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=8,
        max_length=100,
        description="A key of the sender's choosing: a retried post with the same key is recorded once.",
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.result is None and self.contacted is None:
            raise ValueError("result: give result (a campaign's outcome) or contacted")
        if self.result is not None and (self.contacted is not None or self.claimed is not None):
            raise ValueError("result: give result or contacted/claimed, not both")
        if self.amount_granted is not None and (
            self.claimed is False or (self.result is not None and self.result != "opened")
        ):
            raise ValueError("amount_granted: an amount was granted but no right was opened")
        if self.outcome_date > dt.date.today() + dt.timedelta(days=1):
            raise ValueError(f"outcome_date: {self.outcome_date} is in the future")
        return self

    def outcome(self, sender: str | None = None):
        """The decision log's :class:`~nonrecours.serving.decision_log.Outcome`."""
        from nonrecours.serving.decision_log import Outcome

        links: dict[str, Any] = dict(
            campaign_id=self.campaign_id,
            decision_id=self.decision_id,
            idempotency_key=self.idempotency_key,
            sender=sender,
        )
        if self.result is not None:
            return Outcome.from_result(
                self.household_id,
                self.benefit,
                self.result,
                self.outcome_date,
                amount_granted=self.amount_granted,
                **links,
            )
        return Outcome(
            self.household_id,
            self.benefit,
            bool(self.contacted),
            self.claimed,
            self.amount_granted,
            self.outcome_date,
            **links,
        )


class OutcomeBatchIn(_Strict):
    """Body of ``POST /outcomes/batch``: recorded together, or not at all."""

    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=MAX_OUTCOMES_PER_BATCH)


class CampaignHousehold(BaseModel):
    household_id: int
    arm: Literal[CAMPAIGN_ARMS] = Field(  # type: ignore[valid-type]  # a Literal of the schema's own codes, built at import
        description="contact (top of the ranking), holdout (top, set aside at random, not contacted), "
        "explore (below the cut, contacted at random), pool (below the cut, not drawn)."
    )
    contacted: bool = Field(description="Agents contact this household (arm contact or explore).")
    rank: int = Field(description="Rank in the campaign's ranking (1: first).")
    stratum: int = Field(description="Rank stratum the holdout was drawn in (the pool's own stratum last).")
    propensity: float = Field(
        description="Probability this household was to be contacted: weights for learning and evaluation."
    )
    expected_monthly: float = Field(description="The ranking's value for the household (EUR a month).")
    benefits: list[str] = Field(description="Benefits to check on contact, highest expected amount first.")
    decision_id: int = Field(description="The decision-log entry: name it in the outcome (POST /outcomes).")


class CampaignOut(BaseModel):
    campaign_id: str = Field(description="Name it in every outcome of the campaign.")
    model_name: str
    model_version: str
    capacity: int
    households: list[CampaignHousehold] = Field(
        description="The campaign's households, by rank: the top (contact, holdout) and the law-open pool "
        "below the cut (explore, pool)."
    )


def duplicate_id(ids: list[int]) -> tuple[int, int] | None:
    """The first repeated id and its position, or None."""
    seen: set[int] = set()
    for i, h in enumerate(ids):
        if h in seen:
            return i, h
        seen.add(h)
    return None


class OutcomeAck(BaseModel):
    household_pseudonym: str
    decision_id: int = Field(
        description="The decision-log entry the outcome is linked to (the one named, else the household's latest)."
    )
    recorded_at: dt.datetime


def to_tables(households: list[BaseModel]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The requests' households as the observed tables, validated against the schema.

    Households are numbered by position (``household_id`` 0..n-1), so that two requests in one
    batch may carry the same id; callers map results back with the position.
    """
    hh_rows: list[dict] = []
    person_rows: list[dict] = []
    for i, h in enumerate(households):
        data = h.model_dump()
        members = data.pop("members")
        data.update(household_id=i, n_persons=len(members))
        hh_rows.append(data)
        person_rows.extend({**m, "household_id": i, "person_id": i * 100 + j} for j, m in enumerate(members))
    individuals = validate(pd.DataFrame(person_rows, columns=INDIVIDUALS.names), INDIVIDUALS)
    table = validate(pd.DataFrame(hh_rows, columns=HOUSEHOLDS.names), HOUSEHOLDS)
    return individuals, table


def from_tables(individuals: pd.DataFrame, households: pd.DataFrame) -> list[dict]:
    """The observed tables as request bodies' households (JSON-ready dicts): the inverse of
    :func:`to_tables`, used by the load tests and the benchmark to send real extracts."""
    member_fields = [c.name for c in INDIVIDUALS.columns if c.name not in _MEMBER_SKIP]
    household_fields = [c.name for c in HOUSEHOLDS.columns if c.name not in _HOUSEHOLD_DERIVED]

    def plain(v: Any) -> Any:
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            return None
        return v.item() if hasattr(v, "item") else v

    members: dict[int, list[dict]] = {}
    for row in individuals[["household_id", *member_fields]].astype(object).itertuples(index=False):
        members.setdefault(int(row[0]), []).append({f: plain(v) for f, v in zip(member_fields, row[1:])})
    out = []
    for row in households[household_fields].astype(object).itertuples(index=False):
        h = {f: plain(v) for f, v in zip(household_fields, row)}
        h["members"] = members.get(int(h["household_id"]), [])
        out.append(h)
    return out


@cache
def example_households() -> list[dict]:
    """The shipped example request's households (``serving/nonrecours/serving/examples/households.json``)."""
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "examples" / "households.json").read_text())["households"]


MAX_PRIORITY = 1e9
"""Largest ranking value ``POST /campaign`` accepts per household (any finite scale below it)."""


def score_arguments(limit: int) -> dict[str, Any]:
    """The arguments of ``POST /score`` (a route's annotations, as objects so that BentoML sees the
    limits): at most ``limit`` households (``serving.max_households_per_request``)."""
    return {
        "households": Annotated[list[Household], Field(min_length=1, max_length=limit)],  # type: ignore[valid-type]  # create_model
        "return": list[HouseholdScore],
    }


def _share(name: str) -> Any:
    """A campaign share: documented with the setting's range and checked by the settings (so that a
    refused share reads as it does for ``nonrecours campaign``)."""
    b = bounds("campaign", name)
    extra: dict[str, Any] = {"minimum": b["ge"], "maximum": b["le"]}
    said = f"Default and range: the setting campaign.{name}."
    return Annotated[float | None, Field(default=None, strict=True, json_schema_extra=extra, description=said)]


def campaign_arguments(limit: int) -> dict[str, Any]:
    """The arguments of ``POST /campaign``, for an agency whose worklist comes from elsewhere: at most
    ``limit`` households, as for ``/score``."""
    priority = Annotated[float, Field(ge=0, le=MAX_PRIORITY, allow_inf_nan=False, strict=True)]
    seed = Field(ge=0, le=MAX_ID, strict=True, description="Seed of the holdout and exploration draws (recorded).")
    return {
        "households": Annotated[list[Household], Field(min_length=1, max_length=limit)],  # type: ignore[valid-type]  # create_model
        "capacity": Annotated[int, Field(ge=1, le=limit, strict=True, description="Contacts the team can make.")],
        "seed": Annotated[int, seed],
        "holdout_share": _share("holdout_share"),
        "exploration_share": _share("exploration_share"),
        "priorities": Annotated[list[priority] | None, Field(max_length=limit)],
        "return": CampaignOut,
    }
