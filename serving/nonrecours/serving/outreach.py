"""Outreach as an agency runs it: a campaign picked from the ranked extract and logged, given to a
team, its outcomes recorded, and the labels it leaves for learning.

Where it sits: over the ranking (:mod:`nonrecours.serving.ranking`), the campaign's design
(:mod:`nonrecours.serving.campaign`) and the decision log. Production paths (a campaign, an
assignment, the labels) read no truth; :func:`play_field` is the simulation's field: it plays the
contacts from the truth's potential outcomes (:func:`nonrecours.data.field.field_outcomes`) and
records them through the outcome path of ``POST /outcomes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.errors import NotFound, UserError
from nonrecours.core.io import read_extract, read_tables
from nonrecours.core.schema import BENEFITS, CONTACTED_ARMS, HOUSEHOLDS, OUTCOMES
from nonrecours.data.field import field_outcomes
from nonrecours.data.folders import NEXT_QUARTER, with_population_month
from nonrecours.serving.campaign import CAMPAIGN_COLUMNS, CampaignPlan, plan_campaign
from nonrecours.serving.decision_log import DecisionLog, Outcome, profiles_from_log
from nonrecours.serving.ranking import rank_extract
from nonrecours.training.outreach import CampaignLabels

FIELD_SENDER = "field-simulation"
"""The sender of the outcomes the simulated field records."""


@dataclass
class CampaignResult:
    table: pd.DataFrame
    ranked_by: str
    model_name: str
    model_version: str
    capacity: int


def run_campaign(
    folder: Path,
    capacity: int | None,
    seed: int,
    settings: Settings,
    uri: str,
    log: DecisionLog,
    *,
    ranking: str,
    scheduler: str | None,
    quiet: bool,
    model_run: str | None = None,
) -> CampaignResult:
    """Rank the extract in ``folder`` (:func:`~nonrecours.serving.ranking.rank_extract`), pick
    ``capacity`` contacts (default: ``training.capacity_share`` of its households) and log every
    campaign household with its arm."""
    individuals, households = read_extract(folder)
    settings = with_population_month(settings, folder)
    k = capacity or max(1, round(settings.training.capacity_share * len(households)))
    plan = CampaignPlan.of(settings.campaign, capacity=k, seed=seed)
    ranked = rank_extract(
        individuals, households, settings, uri, ranking=ranking, scheduler=scheduler, quiet=quiet, model_run=model_run
    )
    table = plan_campaign(ranked.scored, plan)
    contacted = table.loc[table["contacted"], "household_id"]
    scored = ranked.explained(ranked.scored["household_id"].isin(contacted).to_numpy())  # reasons for those contacted
    decision_ids = log.record_campaign(scored, table, model_name=ranked.model_name, model_version=ranked.model_version)
    table["decision_id"] = table["household_id"].map(decision_ids).to_numpy()
    return CampaignResult(table, ranking, ranked.model_name, ranked.model_version, plan.capacity)


def read_campaign_file(path: Path) -> pd.DataFrame:
    """A campaign file written by ``nonrecours campaign``, checked for its columns."""
    if not path.exists():
        raise UserError(f"--campaign {path}: no such file (write one with `nonrecours campaign`)")
    table = pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = [c for c in (*CAMPAIGN_COLUMNS, "decision_id") if c not in table.columns]
    if missing:
        raise UserError(
            f"--campaign {path}: missing column(s) {missing}; expected the file `nonrecours campaign` writes"
        )
    table["benefits"] = table["benefits"].fillna("").astype(str)
    return table


def play_field(folder: Path, campaign: pd.DataFrame, log: DecisionLog, *, outcome_date: date) -> pd.DataFrame:
    """Simulation only: what agents would record after the campaign's contacts, from the truth's
    potential outcomes in ``folder``, recorded through the decision log's outcome path (an
    idempotency key per household, benefit and campaign: running it twice records once).
    Returns the records."""
    (truth,) = read_tables(folder, OUTCOMES, hint=" (outreach plays the field from a synthetic population's truth)")
    try:
        records = field_outcomes(campaign, truth)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    decision = campaign.set_index("household_id")["decision_id"]
    cid = str(campaign["campaign_id"].iloc[0])

    def outcome(r) -> Outcome:
        made = int(decision[r.household_id])
        granted = None if np.isnan(r.amount_granted) else float(r.amount_granted)
        return Outcome.from_result(
            int(r.household_id),
            r.benefit,
            r.result,
            outcome_date,
            amount_granted=granted,
            campaign_id=cid,
            decision_id=made,
            idempotency_key=f"{cid}/{made}/{r.benefit}",
            sender=FIELD_SENDER,
        )

    log.record_outcomes([outcome(r) for r in records.itertuples(index=False)])
    return records


def campaign_labels(log: DecisionLog, campaign_id: str, next_extract: Path) -> CampaignLabels:
    """What the agency holds about a campaign, for learning: its households and their arms, the
    profiles logged with its decisions, the outcomes recorded and the next extract's receipts."""
    try:
        assignments = log.read_campaign(campaign_id)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    decisions = log.read()
    profiles = profiles_from_log(decisions[decisions["id"].isin(assignments["decision_id"])])
    recorded = log.read_outcomes()
    recorded = recorded[recorded["campaign_id"] == campaign_id].rename(columns={"decision_id": "household_id"})
    campaign = assignments.rename(columns={"decision_id": "household_id"})
    campaign = campaign.assign(contacted=campaign["arm"].isin(CONTACTED_ARMS))
    receipt = next_receipt(next_extract, assignments, log.pseudonyms)
    return CampaignLabels(campaign_id, campaign, profiles, recorded, receipt, str(assignments["model_name"].iloc[0]))


def next_receipt(folder: Path, assignments: pd.DataFrame, pseudonyms: Callable[[int], list[str]]) -> pd.DataFrame:
    """Per campaign decision and benefit: seen receiving it in the next extract (NA where the
    agency does not see the benefit, or the household left the extract). ``pseudonyms`` gives a
    household's pseudonyms under every key (:meth:`DecisionLog.pseudonyms`), so a key rotated
    between the campaign and the extract still links them."""
    hint = f" (the next quarter's extract: `--next-extract`, default INPUT/{NEXT_QUARTER})"
    (households,) = read_tables(folder, HOUSEHOLDS, hint=hint)
    decision = dict(zip(assignments["household_pseudonym"], assignments["decision_id"]))
    ids = households["household_id"].map(
        lambda h: next((decision[p] for p in pseudonyms(int(h)) if p in decision), None)
    )
    frames = []
    for b in BENEFITS:
        seen = households[f"receives_{b}"].astype("Float64")
        frames.append(pd.DataFrame({"household_id": ids.to_numpy(), "benefit": b, "receives_next": seen.to_numpy()}))
    out = pd.concat(frames, ignore_index=True)
    return out[out["household_id"].notna()].astype({"household_id": "int64"})
