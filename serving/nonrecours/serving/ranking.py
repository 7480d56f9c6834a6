"""Ranking an agency's extract: by the champion, the rules, or the models learnt from outreach.

Where it sits: between the registry (what ranks) and the worklist, the campaign and the decision log
(what the ranking is for). Every ranking gives the same scored rows (one per household and benefit,
:func:`nonrecours.serving.scoring.score_profiles`), so the worklist, the campaign's design and the
decision log do not care what ranked them: ``expected_unclaimed_monthly`` is the ranking key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.errors import UserError
from nonrecours.law.engine import law_version
from nonrecours.law.parameters import load_law_parameters
from nonrecours.serving.decision_log import DecisionLog, input_digests
from nonrecours.serving.scoring import (
    ModelRanker,
    RulesRanker,
    UpliftRanker,
    explain,
    profiles_of,
    score_extract,
    score_profiles,
    worklist_rows,
    worklist_table,
)
from nonrecours.training.model import typical_amounts
from nonrecours.training.registry import Champion, load_champion, observed_models_for

RANKINGS = ("champion", "rules", "need", "uplift")
"""What ranks a campaign: the champion (trained on the simulation's truth, or an agency's labels),
the rules (cold start), or the models of a ``train --labels observed`` run: ``need`` (P(right opened
| contacted) x amount) or ``uplift`` (what a contact adds x amount)."""


@dataclass
class Ranked:
    """An extract scored for ranking, and what scored it (as the decision log records it).
    ``explainer``, where reasons are left to be computed for the rows read (the champion's):
    ``explainer(scored, where=mask)`` gives them for the rows of ``mask``."""

    scored: pd.DataFrame
    model_name: str
    model_version: str
    explainer: Callable[..., pd.DataFrame] | None = None

    def explained(self, where: np.ndarray) -> pd.DataFrame:
        """The scored rows with reasons for those of ``where`` (all already have them without an explainer)."""
        return self.scored if self.explainer is None else self.explainer(self.scored, where=where)


def score_with_champion(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    champion: Champion,
    settings: Settings,
    *,
    n_reasons: int,
    scheduler: str | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    """Every household of an extract scored by ``champion``, in partitions."""
    s = settings.serving
    return score_extract(
        individuals,
        households,
        ModelRanker(champion.scorer),
        law=settings.law,
        css=load_law_parameters().css,
        n_reasons=n_reasons,
        language=s.language,
        partition_households=s.partition_households,
        scheduler=scheduler,
        quiet=quiet,
    )


def rank_extract(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    settings: Settings,
    uri: str,
    *,
    ranking: str,
    scheduler: str | None,
    quiet: bool,
    model_run: str | None = None,
    explain_all: bool = False,
) -> Ranked:
    """The extract scored by ``ranking`` (see ``RANKINGS``): the champion, the rules, or the need
    or uplift model (of run ``model_run``, else the outreach models' @champion). The champion's
    reasons are left for :meth:`Ranked.explained` to give the rows read, unless ``explain_all`` (a
    list of every household): then the partitions' workers compute them."""
    if ranking not in RANKINGS:
        raise UserError(f"--ranking {ranking!r}: expected one of {list(RANKINGS)}")
    k, language = settings.serving.reasons_per_score, settings.serving.language
    if ranking == "champion":
        champion = load_champion(settings.registry, uri, alias=settings.serving.model_alias)
        assert champion is not None  # no unless_version was given
        scored = score_with_champion(
            individuals,
            households,
            champion,
            settings,
            n_reasons=k if explain_all else 0,
            scheduler=scheduler,
            quiet=quiet,
        )
        later = (
            None
            if explain_all
            else partial(explain, ranker=ModelRanker(champion.scorer), n_reasons=k, language=language)
        )
        return Ranked(scored, champion.name, champion.version, later)
    profiles = profiles_of(
        individuals, households, law=settings.law, quiet=quiet, description=f"law engine: {ranking} ranking"
    )
    if ranking == "rules":
        return Ranked(score_profiles(profiles, RulesRanker(), n_reasons=k, language=language), "rules", "0")
    models, version = observed_models_for(settings.registry, uri, model_run)
    need = models.need_scorer(typical_amounts(profiles))
    ranker = ModelRanker(need) if ranking == "need" else UpliftRanker(models, need)
    return Ranked(score_profiles(profiles, ranker, n_reasons=k, language=language), f"observed-{ranking}", version)


def worklist_of(ranked: Ranked, *, capacity: int | None, min_probability: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The worklist of a ranked extract, and the scored rows with reasons computed for the
    worklist's rows only (what agents read; the decision log records the same)."""
    rows = worklist_rows(ranked.scored, capacity=capacity, min_probability=min_probability)
    scored = ranked.explained(ranked.scored.index.isin(rows.index))
    return scored, worklist_table(rows.assign(reasons=scored.loc[rows.index, "reasons"]))


def log_batch(
    log: DecisionLog,
    scored: pd.DataFrame,
    ranked: Ranked,
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    settings: Settings,
) -> int:
    """Every household a batch scored, in the decision log (source ``batch``) with the model that
    ranked it and each household's input digest under the log's key and this law engine (see
    :func:`nonrecours.serving.decision_log.input_digests`), so the API can reuse the law engine's
    answer while the household's inputs do not change. Returns the households logged."""
    digests = input_digests(individuals, households, key=log.key, law_version=law_version(settings.law.reference_month))
    return log.record_scored(
        scored, model_name=ranked.model_name, model_version=ranked.model_version, source="batch", digests=digests
    )
