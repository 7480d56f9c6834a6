"""Agents' caseloads: the households of a campaign assigned to a team, and what the web page reads
of them.

Where it sits: beside the decision log, in the same database. ``nonrecours agents assign`` copies a
campaign's *contacted* households (never its holdout: they must not be contacted) into the
``caseload`` table for a team, with their rank, territory and legal basis (computed once, at
assignment, by :mod:`nonrecours.law.basis`). The web page (:mod:`nonrecours.app.web`) reads pages
of it, the household's scores and reasons from the decision (``decisions.scores``), and its status
from the latest outcome recorded against that decision: an outcome is never edited, a new one
corrects it.

The household's own id is stored here, not a pseudonym: an agent must know whom to call, and the
agency's files hold it anyway. This table is operational data, read by the web page only; the
decision log and the server's log keep pseudonyms alone. ``nonrecours purge`` does not touch it:
``agents unassign`` removes a campaign's rows when its outreach is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine

from nonrecours.core.config import Settings
from nonrecours.core.errors import UserError
from nonrecours.core.io import read_extract
from nonrecours.core.schema import BENEFITS
from nonrecours.data.folders import with_population_month
from nonrecours.law.basis import legal_basis
from nonrecours.law.parameters import load_law_parameters
from nonrecours.law.situation import observed_situation
from nonrecours.serving.decision_log import Outcome, decisions, outcomes
from nonrecours.serving.request import OutcomeIn

metadata = MetaData()
caseload = Table(
    "caseload",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team", String(100), nullable=False),
    Column("campaign_id", String(40), nullable=False),
    Column("household_id", BigInteger, nullable=False),
    Column("decision_id", Integer, nullable=False, index=True),
    Column("rank", Integer, nullable=False),
    Column("territory", String(3), nullable=False),
    Column("benefits", String(200), nullable=False),
    Column("expected_monthly", Float, nullable=False),
    Column("basis", JSON, nullable=True),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    comment="Households of a campaign an agents' team contacts, with the legal basis of each benefit to check.",
)
Index("ix_caseload_team_campaign_rank", caseload.c.team, caseload.c.campaign_id, caseload.c.rank)

STATUSES = ("todo", "reached", "unreachable", "opened", "not_entitled", "declined", "already_receiving")
"""A household's status on the page: ``todo`` (no outcome yet), ``reached`` (contacted, no result
yet), or a result (see :data:`STATUS_PRIORITY`)."""
STATUS_PRIORITY = ("opened", "reached", "declined", "already_receiving", "not_entitled", "unreachable")
"""A household's status is the first of these among the latest outcomes of its benefits: a right
opened for one benefit shows, whatever was found for the others; then a contact still in progress;
then a final answer; "unreachable" last (a later call may reach it)."""
DEPARTEMENT_CHARS = 3
"""A département code: 75, 2A, 974."""
QUOTED_CHARS = 20
"""Characters of a refused form value quoted back to the agent."""
BENEFIT_SEPARATOR = ";"
DOM_PREFIX, CODE_LENGTH, OVERSEAS_CODE_LENGTH = "97", 2, 3
"""A département's code is its communes' first two characters (01 to 95, 2A, 2B), three overseas (971 to 976)."""


def territory(depcom: str) -> str:
    """The département of an INSEE commune code: its first two characters, three overseas."""
    code = str(depcom)
    return code[:OVERSEAS_CODE_LENGTH] if code.startswith(DOM_PREFIX) else code[:CODE_LENGTH]


def create_tables(engine: Engine) -> None:
    """The caseload table, if missing (with the agents' tables)."""
    from nonrecours.serving.agents import create_table

    create_table(engine)
    metadata.create_all(engine, checkfirst=True)


def assign(
    engine: Engine,
    campaign: pd.DataFrame,
    team: str,
    *,
    depcom: pd.Series,
    basis: dict[int, dict] | None = None,
    at: datetime | None = None,
) -> int:
    """Give a campaign's contacted households to ``team``: ``campaign`` as the campaign file
    (``household_id, campaign_id, arm, contacted, rank, expected_monthly, benefits, decision_id``),
    ``depcom`` the commune code by household id, ``basis`` the legal basis by household id. The
    holdout is left out. A campaign already assigned to the team is refused. Returns the rows added."""
    create_tables(engine)
    contacted = campaign[campaign["contacted"].astype(bool)]
    if contacted.empty:
        raise ValueError("the campaign has no contacted household to assign")
    cid = str(contacted["campaign_id"].iloc[0])
    missing = contacted.loc[~contacted["household_id"].isin(depcom.index), "household_id"]
    if len(missing):
        raise ValueError(
            f"household_id {missing.iloc[0]} of the campaign is not in the extract (and {len(missing) - 1} "
            "more): give the extract the campaign was made from"
        )
    at = at or datetime.now(UTC)
    rows = [
        {
            "team": team,
            "campaign_id": cid,
            "household_id": int(r.household_id),
            "decision_id": int(r.decision_id),
            "rank": int(r.rank),
            "territory": territory(depcom[r.household_id]),
            "benefits": f";{r.benefits};" if r.benefits else ";",
            "expected_monthly": float(r.expected_monthly),
            "basis": (basis or {}).get(int(r.household_id)),
            "assigned_at": at,
        }
        for r in contacted.itertuples(index=False)
    ]
    with engine.begin() as conn:
        if (
            conn.execute(
                select(caseload.c.id).where(caseload.c.team == team, caseload.c.campaign_id == cid).limit(1)
            ).first()
            is not None
        ):
            raise ValueError(f"campaign {cid} is already assigned to team {team!r}")
        conn.execute(insert(caseload), rows)
    return len(rows)


def unassign(engine: Engine, campaign_id: str, team: str) -> int:
    """Remove a campaign from a team's caseload (its outcomes stay in the decision log)."""
    with engine.begin() as conn:
        return conn.execute(
            delete(caseload).where(caseload.c.team == team, caseload.c.campaign_id == campaign_id)
        ).rowcount


def campaigns(engine: Engine, team: str) -> list[str]:
    """The team's campaigns, newest assignment first."""
    query = (
        select(caseload.c.campaign_id, func.max(caseload.c.assigned_at).label("at"))
        .where(caseload.c.team == team)
        .group_by(caseload.c.campaign_id)
    )
    with engine.connect() as conn:
        return [r.campaign_id for r in sorted(conn.execute(query), key=lambda r: (r.at, r.campaign_id), reverse=True)]


@dataclass(frozen=True)
class Filters:
    benefit: str | None = None
    territory: str | None = None
    status: str | None = None


def filter_problem(filters: Filters, page_number: str) -> str | None:
    """What is wrong with a caseload query's filters and page number, or None."""
    if filters.benefit is not None and filters.benefit not in BENEFITS:
        return f"benefit: {filters.benefit[:QUOTED_CHARS]!r} is not one of {list(BENEFITS)}"
    if filters.status is not None and filters.status not in STATUSES:
        return f"status: {filters.status[:QUOTED_CHARS]!r} is not one of {list(STATUSES)}"
    if filters.territory is not None and not (
        filters.territory.isascii() and filters.territory.isalnum() and len(filters.territory) <= DEPARTEMENT_CHARS
    ):
        return "territory: a département code such as 75, 2A or 974"
    if not (page_number.isascii() and page_number.isdigit()):
        return f"page: {page_number[:QUOTED_CHARS]!r} is not a page number"
    return None


@dataclass(frozen=True)
class Row:
    household_id: int
    decision_id: int
    rank: int
    territory: str
    expected_monthly: float
    status: str
    benefits: list[dict] = field(default_factory=list)  # benefit, p_unclaimed, estimated_monthly_amount


@dataclass(frozen=True)
class Page:
    campaign_id: str | None
    rows: list[Row]
    total: int
    page: int
    pages: int
    territories: list[str]
    campaigns: list[str] = field(default_factory=list)  # the team's, newest first


def _said():
    """What one outcome says, as a status: its result, else "reached" for a contact without one."""
    return case(
        (outcomes.c.result.is_not(None), outcomes.c.result), (outcomes.c.contacted, "reached"), else_="unreachable"
    )


def _latest_outcomes(scope):
    """Per decision among those ``scope`` (a condition on ``outcomes.decision_id``) selects, its
    status: of the latest outcome of each benefit (a correction replaces what it corrects), the
    first in :data:`STATUS_PRIORITY`. Scoped, so a page reads its campaign's outcomes, not the log's."""
    latest = (
        select(outcomes.c.decision_id, func.max(outcomes.c.id).label("outcome_id"))
        .where(scope)
        .group_by(outcomes.c.decision_id, outcomes.c.benefit)
        .subquery()
    )
    rank = case(*[(_said() == s, i) for i, s in enumerate(STATUS_PRIORITY)], else_=len(STATUS_PRIORITY))
    best = (
        select(latest.c.decision_id, func.min(rank).label("rank"))
        .join(outcomes, outcomes.c.id == latest.c.outcome_id)
        .group_by(latest.c.decision_id)
        .subquery()
    )
    status = case(*[(best.c.rank == i, s) for i, s in enumerate(STATUS_PRIORITY)], else_="unreachable")
    return select(best.c.decision_id, status.label("status")).subquery()


def page(engine: Engine, team: str, campaign_id: str | None, filters: Filters, *, number: int, size: int) -> Page:
    """One page of the team's campaign, ranked as the worklist ranks it (the campaign's rank),
    filtered by benefit, territory and status."""
    found = campaigns(engine, team)
    if campaign_id is None or campaign_id not in found:
        campaign_id = found[0] if found else None
    if campaign_id is None:
        return Page(None, [], 0, 1, 1, [], found)
    in_campaign = select(caseload.c.decision_id).where(caseload.c.team == team, caseload.c.campaign_id == campaign_id)
    latest = _latest_outcomes(outcomes.c.decision_id.in_(in_campaign))
    status = func.coalesce(latest.c.status, "todo")
    where = [caseload.c.team == team, caseload.c.campaign_id == campaign_id]
    if filters.benefit:
        where.append(caseload.c.benefits.like(f"%{BENEFIT_SEPARATOR}{filters.benefit}{BENEFIT_SEPARATOR}%"))
    if filters.territory:
        where.append(caseload.c.territory == filters.territory)
    if filters.status:
        where.append(status == filters.status)
    base = caseload.outerjoin(latest, latest.c.decision_id == caseload.c.decision_id)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(base).where(and_(*where))).scalar_one()
        pages = max(1, -(-total // size))
        number = min(max(1, number), pages)
        found_rows = conn.execute(
            select(
                caseload.c.household_id,
                caseload.c.decision_id,
                caseload.c.rank,
                caseload.c.territory,
                caseload.c.expected_monthly,
                caseload.c.benefits,
                status.label("status"),
                decisions.c.scores,
            )
            .select_from(base.join(decisions, decisions.c.id == caseload.c.decision_id))
            .where(and_(*where))
            .order_by(caseload.c.rank)
            .limit(size)
            .offset((number - 1) * size)
        ).all()
        territories = sorted(
            conn.execute(
                select(caseload.c.territory)
                .where(caseload.c.team == team, caseload.c.campaign_id == campaign_id)
                .distinct()
            ).scalars()
        )
    rows = [
        Row(
            r.household_id,
            r.decision_id,
            r.rank,
            r.territory,
            r.expected_monthly,
            r.status,
            _benefits(r.benefits, r.scores, first=filters.benefit),
        )
        for r in found_rows
    ]
    return Page(campaign_id, rows, total, number, pages, territories, found)


def _benefits(listed: str, scores: dict, *, first: str | None = None) -> list[dict]:
    """The benefits an agent checks, in the campaign's order (``first``, the one filtered by,
    ahead), with their score and amount."""
    out = []
    for b in (x for x in listed.split(BENEFIT_SEPARATOR) if x):
        s = scores.get(b, {})
        out.append(
            {
                "benefit": b,
                "p_unclaimed": s.get("p_unclaimed"),
                "estimated_monthly_amount": s.get("estimated_monthly_amount"),
                "reasons": s.get("reasons") or [],
                "law_eligible": s.get("law_eligible"),
            }
        )
    return sorted(out, key=lambda b: b["benefit"] != first)


@dataclass(frozen=True)
class HouseholdCase:
    household_id: int
    campaign_id: str
    decision_id: int
    rank: int
    territory: str
    status: str
    model_version: str
    scored_at: datetime
    benefits: list[dict]
    basis: dict
    history: list[dict]


def household(engine: Engine, team: str, decision_id: int) -> HouseholdCase | None:
    """The household of a campaign decision (the page's URLs name it by that id, never by its
    own), or None when none of the team's campaigns holds it (the page answers 403: the household
    is another team's, or nobody's)."""
    latest = _latest_outcomes(outcomes.c.decision_id == decision_id)
    with engine.connect() as conn:
        row = conn.execute(
            select(
                caseload,
                decisions.c.scores,
                decisions.c.model_version,
                decisions.c.scored_at,
                func.coalesce(latest.c.status, "todo").label("status"),
            )
            .select_from(
                caseload.join(decisions, decisions.c.id == caseload.c.decision_id).outerjoin(
                    latest, latest.c.decision_id == caseload.c.decision_id
                )
            )
            .where(caseload.c.team == team, caseload.c.decision_id == decision_id)
            .order_by(caseload.c.assigned_at.desc(), caseload.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        history = (
            conn.execute(
                select(
                    outcomes.c.benefit,
                    _said().label("status"),
                    outcomes.c.amount_granted,
                    outcomes.c.outcome_date,
                    outcomes.c.recorded_at,
                    outcomes.c.sender,
                )
                .where(outcomes.c.decision_id == row.decision_id)
                .order_by(outcomes.c.id.desc())
            )
            .mappings()
            .all()
        )
    return HouseholdCase(
        row.household_id,
        row.campaign_id,
        row.decision_id,
        row.rank,
        row.territory,
        row.status,
        row.model_version,
        row.scored_at,
        _benefits(row.benefits, row.scores),
        row.basis or {},
        [dict(h) for h in history],
    )


def outcome_of_form(
    form: Mapping[str, object], case: HouseholdCase, results: tuple[str, ...], *, sender: str
) -> Outcome:
    """The outcome an agent's form records about one of ``case``'s benefits, as ``POST /outcomes``
    takes it (the same request model): ``result`` one of ``results`` (``reached``: a contact with no
    result yet), ``benefit`` one the household's case lists, ``amount`` with a right opened (a
    comma or spaces allowed), ``submission`` its idempotency key. What is wrong is a
    :class:`UserError` naming the field."""
    result, benefit = str(form.get("result", "")), str(form.get("benefit", ""))
    if result not in results or benefit not in {b["benefit"] for b in case.benefits}:
        raise UserError("result/benefit")
    fields: dict = {
        "household_id": case.household_id,
        "benefit": benefit,
        "outcome_date": date.today(),
        "campaign_id": case.campaign_id,
        "decision_id": case.decision_id,
        "idempotency_key": str(form.get("submission", "")) or None,
    }
    if result == "reached":
        fields["contacted"] = True
    else:
        fields["result"] = result
    amount = str(form.get("amount", "")).strip().replace(",", ".").replace(" ", "")
    if result == "opened" and amount:
        try:
            fields["amount_granted"] = float(amount)
        except ValueError:
            raise UserError(f"amount: {amount[:QUOTED_CHARS]!r}") from None
    try:
        return OutcomeIn.model_validate(fields).outcome(sender)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def assignment(campaign: pd.DataFrame, folder: Path, settings: Settings, *, quiet: bool = False) -> dict:
    """What giving a campaign to an agents' team records beside its contacted households
    (:func:`nonrecours.serving.caseload.assign`'s keywords): their territory, and the legal basis of
    each benefit, computed by OpenFisca-France on the extract the campaign was made from (one
    simulation, about a second per thousand households). Reads no truth."""
    contacted = campaign.loc[campaign["contacted"].astype(bool), "household_id"]
    individuals, households = read_extract(folder)
    households = households[households["household_id"].isin(contacted)]
    individuals = individuals[individuals["household_id"].isin(contacted)]
    month = with_population_month(settings, folder).law.reference_month
    persons, hh, _ = observed_situation(individuals, households, load_law_parameters())
    if not quiet:
        print(f"legal basis of {len(hh):,} households (OpenFisca-France, {month})")
    basis = legal_basis(persons, hh, reference_month=month) if len(hh) else {}
    return {"depcom": households.set_index("household_id")["depcom"].astype(str), "basis": basis}
