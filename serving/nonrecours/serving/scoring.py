"""Scoring: the observed tables in, one scored row per household and benefit out, with the amount
at stake and reasons in words. The API and batch worklists run this same code.

Where it sits: after the registry (a :class:`nonrecours.training.model.Scorer` loaded from
``models:/nonrecours@champion``). One partition goes through the law engine (one OpenFisca
simulation), the one feature builder and the model; a large extract is cut into partitions that
run locally or on a Dask cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np
import pandas as pd

from nonrecours.core.catalogue import catalogue
from nonrecours.core.config import LawConfig
from nonrecours.core.parallel import map_households
from nonrecours.core.schema import BENEFITS, SCORE_COLUMNS
from nonrecours.features.profiles import build_profiles
from nonrecours.law.parameters import CssValuation, load_law_parameters
from nonrecours.law.situation import entitlements_from_observed
from nonrecours.serving.reasons import reasons
from nonrecours.training.baselines import rules_value
from nonrecours.training.model import Scorer
from nonrecours.training.observed import ObservedModels

WORKLIST_COLUMNS = ("rank", "household_id", "benefit", *SCORE_COLUMNS)


class Ranker(Protocol):
    """What ranks households: per profile row, a probability, the amount at stake and reasons in
    words. The champion, the need and uplift models of outreach and the rules all are one."""

    def predict(self, profiles: pd.DataFrame) -> np.ndarray: ...

    def estimated_amount(self, profiles: pd.DataFrame) -> np.ndarray: ...

    def explain(self, profiles: pd.DataFrame, n_reasons: int, language: str) -> list[list[str]]: ...


@dataclass(frozen=True)
class ModelRanker:
    """A LightGBM model (the champion, or the need model of outreach), its reasons from TreeSHAP."""

    scorer: Scorer

    def predict(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.scorer.predict(profiles)

    def estimated_amount(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.scorer.estimated_amount(profiles)

    def explain(self, profiles: pd.DataFrame, n_reasons: int, language: str) -> list[list[str]]:
        return reasons(profiles, self.scorer.contributions(profiles), n_reasons, language)


@dataclass(frozen=True)
class UpliftRanker:
    """What a contact adds (the T-learner of outreach), with the need model's amount and reasons."""

    models: ObservedModels
    need: Scorer

    def predict(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.models.uplift(profiles)

    def estimated_amount(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.need.estimated_amount(profiles)

    def explain(self, profiles: pd.DataFrame, n_reasons: int, language: str) -> list[list[str]]:
        return ModelRanker(self.need).explain(profiles, n_reasons, language)


class RulesRanker:
    """The agency's rules (cold start, before any outcome is recorded): the law engine's amount
    where eligible on the agency's data and not seen receiving."""

    def predict(self, profiles: pd.DataFrame) -> np.ndarray:
        return (rules_value(profiles) > 0).astype(float)

    def estimated_amount(self, profiles: pd.DataFrame) -> np.ndarray:
        return profiles["law_amount"].to_numpy(dtype=float)

    def explain(self, profiles: pd.DataFrame, n_reasons: int, language: str) -> list[list[str]]:
        said = catalogue(language)("reasons.rules")
        return [[said] if flagged else [] for flagged in self.predict(profiles) > 0]


def score_profiles(profiles: pd.DataFrame, ranker: Ranker, *, n_reasons: int, language: str) -> pd.DataFrame:
    """``profiles`` with ``p_unclaimed``, ``estimated_monthly_amount``, ``expected_unclaimed_monthly``
    and ``reasons`` (a list of phrases, in ``language``) added: the one scoring step, whatever ranks."""
    p = ranker.predict(profiles)
    amount = ranker.estimated_amount(profiles)
    out = profiles.assign(p_unclaimed=p, estimated_monthly_amount=amount, expected_unclaimed_monthly=p * amount)
    # Reasons need TreeSHAP contributions, as costly as the prediction again: skipped when none are wanted.
    out["reasons"] = ranker.explain(profiles, n_reasons, language) if n_reasons else [[] for _ in range(len(out))]
    return out


def quarter_tables(
    individuals: pd.DataFrame, households: pd.DataFrame, *, law: LawConfig, scheduler: str | None, quiet: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A whole extract's entitlements (the law engine on the agency's data, in partitions) and its
    profiles (the one feature builder): what ``entitlements`` and ``features`` write."""
    rights = entitlements_from_observed(
        individuals, households, law=law, css=load_law_parameters().css, scheduler=scheduler, quiet=quiet
    )
    return rights, build_profiles(individuals, households, rights)


def profiles_of(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    *,
    law: LawConfig,
    css: CssValuation | None = None,
    known: pd.DataFrame | None = None,
    quiet: bool = True,
    description: str = "law engine",
) -> pd.DataFrame:
    """The profiles of every household given: the law engine on the agency's data (but for ``known``
    entitlements, reused from the decision log for unchanged inputs) and the one feature builder."""
    parts = [] if known is None else [known[known["household_id"].isin(households["household_id"])]]
    todo = households if known is None else households[~households["household_id"].isin(known["household_id"])]
    if len(todo) or not parts:
        members = individuals[individuals["household_id"].isin(todo["household_id"])]
        parts.append(entitlements_from_observed(members, todo, law=law, css=css, quiet=quiet, description=description))
    entitlements = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return build_profiles(individuals, households, entitlements)


def score_tables(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    ranker: Ranker,
    *,
    law: LawConfig,
    css: CssValuation,
    n_reasons: int,
    language: str,
    known: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every household given scored by ``ranker`` in this process (one OpenFisca simulation for all of
    them): :func:`profiles_of`, then :func:`score_profiles`. Households without members get no row."""
    in_process = law.model_copy(update={"workers": 1, "partition_size": max(1, len(households))})
    profiles = profiles_of(individuals, households, law=in_process, css=css, known=known)
    return score_profiles(profiles, ranker, n_reasons=n_reasons, language=language)


def score_extract(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    ranker: Ranker,
    *,
    law: LawConfig,
    css: CssValuation,
    n_reasons: int,
    language: str,
    partition_households: int,
    scheduler: str | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    """:func:`score_tables` over partitions of ``partition_households`` households, in local
    processes (``law.workers``) or on the Dask cluster at ``scheduler``."""
    n = len(households)
    # At least one partition per local worker once each would get enough work to be worth a process.
    n_parts = max(
        int(np.ceil(n / partition_households)), law.workers if n >= law.min_households_per_worker * law.workers else 1
    )
    # Spawned, not forked: LightGBM's OpenMP threads in a forked child hang once the parent has
    # predicted (measured here). Each worker loads OpenFisca once (a few seconds).
    task = partial(score_tables, ranker=ranker, law=law, css=css, n_reasons=n_reasons, language=language)
    results = map_households(
        task,
        individuals,
        households,
        n_parts=n_parts,
        scheduler=scheduler,
        workers=law.workers,
        description="scoring",
        quiet=quiet,
        start_method="spawn",
    )
    return pd.concat(results, ignore_index=True) if results else pd.DataFrame()


def explain(scored: pd.DataFrame, ranker: Ranker, n_reasons: int, where: np.ndarray, language: str) -> pd.DataFrame:
    """``scored`` with ``reasons`` computed for the rows where ``where`` is true, the others left
    as they are. TreeSHAP costs about as much as the prediction, so batch scoring explains only
    the rows agents read (the worklist's, a campaign's); a row's reasons depend on that row alone,
    so they are the ones a full pass would give."""
    out = scored.copy()
    picked = scored[where]
    if len(picked):
        given = ranker.explain(picked, n_reasons, language)
        column = list(out["reasons"]) if "reasons" in out else [[] for _ in range(len(out))]
        for position, phrases in zip(np.flatnonzero(where), given):
            column[position] = phrases
        out["reasons"] = column
    return out


def worklist_rows(scored: pd.DataFrame, *, capacity: int | None = None, min_probability: float = 0.0) -> pd.DataFrame:
    """The rows of ``scored`` that make the worklist (see :func:`worklist`), with their ``rank``,
    in order; their index is ``scored``'s."""
    total = scored.groupby("household_id")["expected_unclaimed_monthly"].sum()
    order = total.sort_values(ascending=False, kind="stable")
    if capacity is not None:
        order = order.iloc[:capacity]
    rank = pd.Series(np.arange(1, len(order) + 1), index=order.index)
    rows = scored[scored["household_id"].isin(order.index)].copy()
    rows["rank"] = rows["household_id"].map(rank).to_numpy()
    rows = rows[rows["p_unclaimed"] >= min_probability]
    return rows.sort_values(["rank", "expected_unclaimed_monthly"], ascending=[True, False], kind="stable")


def worklist(scored: pd.DataFrame, *, capacity: int | None = None, min_probability: float = 0.0) -> pd.DataFrame:
    """The ranked list agents work from: households by total expected unclaimed amount (what one
    contact can recover), then their benefits by expected amount. ``capacity`` keeps the first
    K households; ``min_probability`` drops rows less likely than that (households stay ranked
    by all their benefits)."""
    return worklist_table(worklist_rows(scored, capacity=capacity, min_probability=min_probability))


def worklist_table(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`worklist_rows`' rows in the worklist's columns, reasons joined in one text."""
    rows = rows.copy()
    rows["benefit"] = pd.Categorical(rows["benefit"].astype("object"), categories=list(BENEFITS))
    rows["reasons"] = rows["reasons"].map("; ".join)
    return rows[list(WORKLIST_COLUMNS)].reset_index(drop=True)
