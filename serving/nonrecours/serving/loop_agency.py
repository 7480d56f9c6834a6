"""The loop's agency side: what it ranks by, the campaign it designs and logs, the labels it reads
back, what it learns and how its gate decides. Nothing here opens a simulator's file: only the
extracts and profiles, the campaign files and the decision log's outcomes.

Where it sits: called by :mod:`nonrecours.serving.loop` each round; over the campaign's design, the
decision log, the correction (:mod:`nonrecours.training.correction`), the estimates
(:mod:`nonrecours.training.judge`) and the gate (:func:`nonrecours.training.gate.decide_paired`).

A correction re-ranks only **within the region every campaign randomises** (:func:`ranking_values`):
the prior's top ``top + band`` households, where ``top`` is the contacts and holdout of the top
and ``band`` the exploration band below the cut. The gate then judges a challenger on households
whose contact was randomised; picks no campaign covered would count for nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from nonrecours.core.config import LoopConfig, Settings
from nonrecours.core.io import atomic_path, read_extract, read_tables, write_frame, write_table
from nonrecours.core.schema import ENTITLEMENTS, PROFILES
from nonrecours.serving.campaign import CampaignPlan, pair_disagreements, plan_campaign
from nonrecours.serving.decision_log import DecisionLog
from nonrecours.serving.outreach import campaign_labels, read_campaign_file
from nonrecours.serving.scoring import ModelRanker, RulesRanker, quarter_tables, score_profiles
from nonrecours.training.correction import (
    EPS,
    Corrected,
    Prepared,
    Prior,
    contact_history,
    learn,
    prepared,
    starting_point,
    with_history,
    without_opened,
)
from nonrecours.training.gate import Choice, decide_paired
from nonrecours.training.judge import Interval, autoc, paired_gain, unit_outcomes
from nonrecours.training.observed import observed_rows
from nonrecours.training.policies import top_households

RANKING_DIR = "ranking"
CONTENDER_DIR = "contender"
CAMPAIGN_FILE = "campaign.csv"
RULES = "rules"
GATE_UNIVERSE = 20
"""The gate ranks each candidate among the prior's top this-many x K households of each round."""


@dataclass(frozen=True)
class LoopPlan:
    """What ``nonrecours loop`` was asked: the first quarter, the rounds, the contacts per round (K,
    holdout and exploration included), the seed, the folder, and the learners (``loop.learners``)."""

    input: Path
    out: Path
    rounds: int
    capacity: int
    seed: int
    learners: tuple[str, ...] = LoopConfig().learners

    def folder(self, n: int) -> Path:
        return self.out / f"round-{n}"

    def identity(self) -> dict:
        """What a resumed loop must share with the one it resumes."""
        return {
            "input": str(self.input.resolve()),
            "capacity": self.capacity,
            "seed": self.seed,
            "learners": list(self.learners),
        }


def household_values(model: Corrected, profiles: pd.DataFrame | Prepared, *, held_out: bool = False) -> pd.Series:
    """Per household, the euros a month a contact adds by ``model``."""
    p = prepared(profiles)
    return pd.Series(model.value(p, held_out=held_out)).groupby(p.households).sum()


def top_k(values: pd.Series, k: int) -> np.ndarray:
    """The ``k`` households of largest value (ties by id)."""
    return top_households(values, k).to_numpy()


def design_of(plan: LoopPlan, settings: Settings, n: int) -> CampaignPlan:
    """Round ``n``'s campaign design: the loop's shares, its band below the cut."""
    loop = settings.loop
    band = max(1, math.ceil(loop.exploration_band * plan.capacity))
    return CampaignPlan(
        plan.capacity, loop.holdout_share, loop.exploration_share, settings.campaign.strata, plan.seed + n, band
    )


def region_size(design: CampaignPlan) -> int:
    """The households a campaign randomises: its top (contacts and holdout) and its band."""
    explore = round(design.exploration_share * design.capacity)
    top = math.ceil((design.capacity - explore) / (1 - design.holdout_share))
    return top + (design.band or 0)


def ranking_values(
    model: Corrected, profiles: pd.DataFrame | Prepared, region: int, *, held_out: bool = False
) -> pd.Series:
    """Per household, the order ``model`` plays: its own values within the prior's top ``region``
    households (what every campaign randomises), the prior's order below them. A correction
    re-ranks where the outcomes can judge it; the rules, another order altogether, rank freely."""
    p = prepared(profiles)
    mine = household_values(model, p, held_out=held_out)
    if model.is_prior:
        return mine
    prior = household_values(starting_point(model.prior, model.seed), p)
    inside = prior.index.isin(top_k(prior, region))
    return mine.where(inside, prior - (prior.max() + mine.max() + 1.0))


def agency_profiles(
    folder: Path, settings: Settings, month: str, *, scheduler: str | None, quiet: bool
) -> pd.DataFrame:
    """The round's profiles: the law engine on the extract, then the one feature builder (both
    written to the folder; read back when there)."""
    if (folder / f"{PROFILES.name}.parquet").exists():
        (profiles,) = read_tables(folder, PROFILES)
        return profiles
    individuals, households = read_extract(folder)
    law = settings.law.model_copy(update={"reference_month": month})
    rights, profiles = quarter_tables(individuals, households, law=law, scheduler=scheduler, quiet=quiet)
    write_table(rights, folder, ENTITLEMENTS)
    write_table(profiles, folder, PROFILES)
    return profiles


@dataclass(frozen=True)
class LoopRanker:
    """A loop's ranking as a :class:`~nonrecours.serving.scoring.Ranker`: the probability is what a
    contact adds to a claim, the amount the prior's, the reasons the prior's."""

    model: Corrected

    def predict(self, profiles: pd.DataFrame) -> np.ndarray:
        amount = self.estimated_amount(profiles)
        return np.where(amount > 0, self.model.value(profiles) / np.maximum(amount, EPS), 0.0)

    def estimated_amount(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.model.prior.amount(profiles)

    def explain(self, profiles: pd.DataFrame, n_reasons: int, language: str) -> list[list[str]]:
        scorer = self.model.prior.scorer
        ranker = RulesRanker() if scorer is None else ModelRanker(scorer)
        return ranker.explain(profiles, n_reasons, language)


def design_campaign(
    profiles: pd.DataFrame,
    model: Corrected,
    plan: LoopPlan,
    n: int,
    month: str,
    settings: Settings,
    log: DecisionLog,
    contender: Corrected | None = None,
) -> pd.DataFrame:
    """Round ``n``'s campaign: ranked by ``model``, designed by the loop's settings, its arms drawn
    again half and half where ``contender`` (the last gate's best challenger) disagrees with it
    (:func:`~nonrecours.serving.campaign.pair_disagreements`); logged (once: a campaign already in
    the log, from an interrupted run, is read back), written to ``campaign.csv``."""
    path = plan.folder(n) / CAMPAIGN_FILE
    if path.exists():
        return read_campaign_file(path)
    s = settings.serving
    scored = score_profiles(profiles, LoopRanker(model), n_reasons=0, language=s.language)
    design = design_of(plan, settings, n)
    order = ranking_values(model, profiles, region_size(design))
    per_row = scored["household_id"].map(order / scored.groupby("household_id").size())
    at = datetime.fromisoformat(f"{month}-01").replace(tzinfo=UTC)
    table = plan_campaign(scored.assign(loop_order=per_row.to_numpy()), design, value="loop_order", at=at)
    if contender is not None:
        picks = top_k(ranking_values(contender, profiles, region_size(design)), plan.capacity)
        table = pair_disagreements(table, picks, design.seed)
    cid = str(table["campaign_id"].iloc[0])
    try:
        logged = log.read_campaign(cid)
        decision = dict(zip(table["household_id"], logged["decision_id"]))
    except LookupError:
        contacted = scored["household_id"].isin(table.loc[table["contacted"], "household_id"]).to_numpy()
        scored.loc[contacted, "reasons"] = pd.Series(
            LoopRanker(model).explain(scored[contacted], s.reasons_per_score, s.language),
            index=scored.index[contacted],
        )
        decision = log.record_campaign(scored, table, model_name=f"loop: {model.name}", model_version=str(n), at=at)
    table["decision_id"] = table["household_id"].map(decision).to_numpy()
    write_frame(table, path)
    return read_campaign_file(path)


def round_rows(plan: LoopPlan, n: int, log: DecisionLog, profiles: pd.DataFrame) -> pd.DataFrame:
    """Round ``n``'s labels as the agency holds them (its campaign, the outcomes recorded, the next
    extract's receipts), with ``round`` and ``unit`` (the household's id in the extract)."""
    campaign = read_campaign_file(plan.folder(n) / CAMPAIGN_FILE)
    labels = campaign_labels(log, str(campaign["campaign_id"].iloc[0]), plan.folder(n + 1))
    unit = dict(zip(campaign["decision_id"], campaign["household_id"]))
    logged = profiles.assign(household_id=profiles["household_id"].map({v: k for k, v in unit.items()}))
    logged = logged[logged["household_id"].notna()].astype({"household_id": "int64"})
    rows = observed_rows(
        logged, labels.campaign, labels.recorded[["household_id", "benefit", "result"]], labels.receipt
    )
    return rows.assign(round=n, unit=rows["household_id"].map(unit).to_numpy())


@dataclass(frozen=True)
class Gated:
    """A round's learning and gate: the candidates, their paired gains, the choice."""

    candidates: dict[str, Corrected]
    gains: dict[str, Interval]
    choice: Choice
    contender: Corrected | None = None
    """The challenger the next campaign pairs with the ranking in play, if any."""


def contender_of(candidates: dict[str, Corrected], gains: dict[str, Interval], choice: Choice) -> Corrected | None:
    """When the gate kept the ranking in play: the challenger of largest estimated gain over it,
    if that gain is positive (the next campaign then measures it where it matters); else none."""
    if choice.switched:
        return None
    ahead = {name: g.value for name, g in gains.items() if g.value > 0}
    return candidates[max(ahead, key=lambda name: ahead[name])] if ahead else None


def gate(
    incumbent: Corrected,
    candidates: dict[str, Corrected],
    rows: pd.DataFrame,
    profiles: dict[int, Prepared],
    capacity: int,
    seed: int,
    *,
    alpha: float,
    region: int,
) -> tuple[dict[str, Interval], Choice, pd.DataFrame]:
    """Each candidate's paired gain over the incumbent on every round's randomised households,
    each judged by its model fitted without that household's fold; the choice; and those households
    with their AIPW scores (:func:`~nonrecours.training.judge.unit_outcomes`)."""
    candidates = {name: m for name, m in candidates.items() if not _same(m, incumbent)}
    outcome = learn(rows, incumbent.prior, "recalibrated", seed=incumbent.seed)
    profile_rows = rows.assign(household_id=rows["unit"].to_numpy())
    mu0, mu1 = outcome.outcome_model(profile_rows)
    units = unit_outcomes(rows, mu0, mu1, incumbent.prior.amount(profile_rows))
    scores = units["score"].to_numpy()

    def picks(model: Corrected) -> np.ndarray:
        mask = np.zeros(len(units), dtype=bool)
        for n, frame in profiles.items():
            chosen = top_k(ranking_values(model, frame, region, held_out=True), capacity)
            mask |= (units["round"].to_numpy() == n) & np.isin(units["unit"].to_numpy(), chosen)
        return mask

    mine = picks(incumbent)
    gains = {name: paired_gain(picks(m), mine, scores, seed=seed) for name, m in candidates.items()}
    return gains, decide_paired(incumbent.name, gains, alpha=alpha), units


def ranking_autoc(model: Corrected, units: pd.DataFrame, profiles: dict[int, Prepared], seed: int) -> Interval:
    """RATE with the AUTOC weighting (:func:`~nonrecours.training.judge.autoc`) of ``model`` on the
    pooled randomised households of :func:`gate`: each round's households in the order of the
    model's held-out values that round. Above zero when it puts first those whose contact adds most."""
    priority = np.zeros(len(units))
    rounds = units["round"].to_numpy()
    for n, frame in profiles.items():
        here = rounds == n
        if here.any():
            values = household_values(model, frame, held_out=True)
            priority[here] = units.loc[here, "unit"].map(values).fillna(values.min()).to_numpy()
    return autoc(priority, units["score"].to_numpy(), seed=seed)


def _same(model: Corrected, incumbent: Corrected) -> bool:
    """``model`` is the incumbent's own prior alone, played already: no challenger."""
    return model.is_prior and incumbent.is_prior and model.prior.name == incumbent.prior.name


def save_ranking(model: Corrected, folder: Path, kind: str = RANKING_DIR) -> None:
    """The ranking in play after a round's gate, in ``folder/ranking/`` (what ``--resume`` reloads),
    or (``kind`` :data:`CONTENDER_DIR`) the challenger the next campaign pairs with it."""
    for name, text in model.to_strings().items():
        with atomic_path(folder / kind / name) as tmp:
            tmp.write_text(text)


def load_ranking(folder: Path, prior: Prior, seed: int, kind: str = RANKING_DIR) -> Corrected:
    texts = {p.name: p.read_text() for p in (folder / kind).iterdir() if not p.name.startswith(".")}
    described = json.loads(texts["correction.json"])
    own = Prior(RULES) if described["prior"] == RULES else prior
    return Corrected.from_strings(own, texts, seed)


def candidates_of(rows: pd.DataFrame, prior: Prior, learners: tuple[str, ...], seed: int) -> dict[str, Corrected]:
    """What may replace the ranking in play: each learner's correction of the prior on the pooled
    rows, the prior alone and the rules (always)."""
    out = {learner: learn(rows, prior, learner, seed=seed) for learner in learners}
    out["prior alone"] = starting_point(prior, seed)
    if prior.name != RULES:
        out[RULES] = starting_point(Prior(RULES), seed)
    return out


@dataclass
class Pool:
    """Every round's profiles and labels, read once; and, per round, the gate's universe: the
    households among the prior's top ``GATE_UNIVERSE`` x K (a candidate's picks are chosen among
    them: a correction shrunk to the prior does not reach further)."""

    prior: Prior
    capacity: int
    profiles: dict[int, pd.DataFrame] = field(default_factory=dict)
    prepared: dict[int, Prepared] = field(default_factory=dict)
    universe: dict[int, Prepared] = field(default_factory=dict)
    rows: dict[int, pd.DataFrame] = field(default_factory=dict)
    tried: dict[str, Corrected] = field(default_factory=dict)
    """The last round's challengers (simulation: the field says what each would have caused)."""

    def add(self, n: int, profiles: pd.DataFrame) -> None:
        """Round ``n``'s profiles, with each household's contact history from the rounds before, less
        the benefits an earlier contact opened."""
        earlier = [r for j, r in self.rows.items() if j < n]
        if earlier:
            pooled = pd.concat(earlier, ignore_index=True)
            history = contact_history(pooled, profiles["household_id"].unique(), n)
            profiles = without_opened(with_history(profiles, history), pooled)
        self.profiles[n] = profiles
        self.prepared[n] = Prepared(profiles)
        values = household_values(starting_point(self.prior, 0), self.prepared[n])
        kept = top_k(values, GATE_UNIVERSE * self.capacity)
        self.universe[n] = Prepared(profiles[profiles["household_id"].isin(kept)].reset_index(drop=True))

    def pooled(self) -> pd.DataFrame:
        return pd.concat(self.rows.values(), ignore_index=True)
