"""What the scoring API does, apart from the web framework that serves it.

Where it sits: :mod:`nonrecours.app.service` declares the BentoML service and its routes, and each
route calls one method of :class:`ScoringApi` (one instance per worker process). Here: the champion
loaded and watched in the background, ``/score``'s batches (one law-engine simulation for several
requests, :mod:`nonrecours.serving.batching`; the law engine's answer reused for unchanged inputs),
``/campaign`` and ``/outcomes``, each written to the decision log before it is answered. A problem
the caller can fix raises :class:`~nonrecours.core.errors.UserError` (:class:`NotFound` for what
does not exist); one the caller cannot, :class:`Unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from nonrecours.core.config import Settings, section, without_password
from nonrecours.core.errors import NotFound, UserError
from nonrecours.law.engine import law_version
from nonrecours.law.openfisca import tax_benefit_system
from nonrecours.law.parameters import load_law_parameters
from nonrecours.serving.batching import Batcher, Overloaded
from nonrecours.serving.campaign import CampaignPlan, plan_campaign
from nonrecours.serving.decision_log import REUSED_SOURCE, DecisionLog, input_digests
from nonrecours.serving.request import (
    CampaignHousehold,
    CampaignOut,
    Household,
    HouseholdScore,
    OutcomeAck,
    OutcomeIn,
    duplicate_id,
    example_households,
    to_tables,
)
from nonrecours.serving.scoring import ModelRanker, score_tables
from nonrecours.training.model import Scorer
from nonrecours.training.registry import load_champion

logger = logging.getLogger("nonrecours.serving")
STARTUP_POLL_SECONDS = 0.2
MS_PER_SECOND = 1_000


class Unavailable(RuntimeError):
    """The service cannot answer now (no champion, the decision log down, too much waiting): 503."""


class Readiness:
    """This worker's readiness, which the request gate reads before a request reaches the service:
    why the champion is not there, and why the decision log cannot be written."""

    not_ready_reason: str | None = "starting: loading the champion model"
    log_down_reason: str | None = None
    loading: bool = True  # the first load has not finished (successfully or not)

    @classmethod
    def reason(cls) -> str | None:
        return cls.not_ready_reason or cls.log_down_reason

    @classmethod
    async def first_load(cls, seconds: float) -> bool:
        """Wait up to ``seconds`` for the worker's first champion load: a request that reaches a
        worker still starting waits for it rather than failing beside a ready one. True."""
        deadline = time.monotonic() + seconds
        while cls.loading and time.monotonic() < deadline:
            await asyncio.sleep(STARTUP_POLL_SECONDS)
        return True


@dataclass(frozen=True)
class Served:
    """The champion serving, swapped whole: a batch reads it once, so the version it logs is the one
    that scored it."""

    scorer: Scorer
    version: str
    run_id: str


class ScoringApi:
    """The scoring API of one worker: ``log`` is its decision log, ``uri`` the registry's; metrics
    are the web framework's (``on_isolate()``: a batch re-run one request at a time;
    ``on_batch(n)``: households per simulation)."""

    def __init__(
        self,
        settings: Settings,
        log: DecisionLog,
        uri: str,
        *,
        on_isolate: Callable[[], None],
        on_batch: Callable[[int], None],
        fault_household: int | None = None,
    ) -> None:
        self.settings, self.log, self.uri = settings, log, uri
        self.on_batch, self.fault_household = on_batch, fault_household
        self.css = load_law_parameters().css
        tax_benefit_system()
        self.champion: Served | None = None
        self.refused: str | None = None  # why the last candidate champion was not loaded
        self.law_lock = (
            threading.Lock()
        )  # one law-engine simulation at a time per worker: the batcher's or a campaign's
        s = settings.serving
        self.batcher = Batcher(
            self._score_batch,
            max_batch=s.max_batch_size,
            linger_seconds=s.batch_linger_ms / MS_PER_SECOND,
            max_waiting=s.max_waiting_households,
        )
        self.batcher.on_isolate = on_isolate

    def watch_champion(self) -> None:
        """Load the champion, then: not ready, look again every ``readiness_retry_seconds``;
        ready, look every ``champion_refresh_seconds`` whether the alias moved (0: stop looking).
        Runs in its own thread: MLflow's retries can take minutes, and the worker must answer its
        probes (not ready, and why) meanwhile."""
        s = self.settings.serving
        try:
            self._load_champion()
        finally:
            Readiness.loading = False
        while self.champion is None or s.champion_refresh_seconds:
            time.sleep(s.readiness_retry_seconds if self.champion is None else s.champion_refresh_seconds)
            self._load_champion()

    def _load_champion(self) -> bool:
        """Load the version the alias points to, unless it is the one serving. A new version is
        loaded while the old one keeps serving, then swapped in. True when serving."""
        reg, alias, current = self.settings.registry, self.settings.serving.model_alias, self.champion
        try:
            loaded = load_champion(
                reg, self.uri, alias=alias, unless_version=None if current is None else current.version
            )
            if loaded is None:
                return True
            self._warm_up(loaded.scorer)  # a candidate that cannot score the shipped example is never swapped in
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", or "keep the one serving", said in the log
            why = (
                "the alias points to no version"
                if isinstance(exc, NotFound)
                else (str(exc).splitlines() or [type(exc).__name__])[0]
            )
            self.refused = why
            where = without_password(self.uri)
            if current is not None:
                logger.warning(
                    "could not check or load %s@%s at %s (%s); still scoring with version %s",
                    reg.model_name,
                    alias,
                    where,
                    why,
                    current.version,
                )
                return True
            Readiness.not_ready_reason = (
                f"no usable champion model {reg.model_name}@{alias} ({why}): train one with `nonrecours train`"
            )
            logger.error(
                "NOT READY: no usable model %s@%s in the registry at %s (%s). Train one with `nonrecours "
                "train`; this service looks again every %.0f s.",
                reg.model_name,
                alias,
                where,
                why,
                self.settings.serving.readiness_retry_seconds,
            )
            return False
        self.champion = Served(loaded.scorer, loaded.version, loaded.run_id)
        Readiness.not_ready_reason = None
        was = "" if current is None else f" (was version {current.version})"
        logger.info(
            "%s: scoring with %s version %s%s",
            "ready" if current is None else "champion changed",
            reg.model_name,
            loaded.version,
            was,
        )
        return True

    def _warm_up(self, scorer: Scorer) -> None:
        """Score the shipped example with a candidate champion: its smoke test (a booster that does not
        fit this code's features fails here, not on agents' requests), and, the first time,
        OpenFisca's parameter caches filled at start-up rather than on a first request."""
        households = [Household.model_validate(h) for h in example_households()]
        values = self._scored(households, scorer)["expected_unclaimed_monthly"].to_numpy(dtype=float)
        if len(values) == 0 or not np.isfinite(values).all():
            raise ValueError("smoke test: the candidate gave no finite score on the shipped example")

    def is_ready(self) -> bool:
        """Ready: a champion is loaded and the decision log answers (within its timeout)."""
        if self.champion is None:
            return False
        try:
            self.log.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason
            Readiness.log_down_reason = (
                f"the decision log cannot be reached ({type(exc).__name__}): nothing can be scored unlogged"
            )
            return False
        Readiness.log_down_reason = None
        return True

    def _served(self) -> Served:
        if self.champion is None:  # the request gate answers first; this is the last line of defence
            raise Unavailable("no champion model in the registry yet: train one with `nonrecours train`")
        return self.champion

    # -- /score -----------------------------------------------------------------------------
    async def score(self, households: list) -> list[HouseholdScore]:
        self._served()
        try:
            return await self.batcher.submit(households)
        except Overloaded as exc:
            raise Unavailable(str(exc)) from None

    def _tables(self, households: list) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The requests' households as the observed tables (household_id: the position). Input the
        request models let through but the data contract refuses is still the caller's to fix: the
        schema's error (a :class:`UserError`) names the column."""
        return to_tables(households)

    def _scored(
        self, households: list, scorer: Scorer, *, tables: tuple | None = None, known: Any = None
    ) -> pd.DataFrame:
        """The households through the law engine (but for ``known`` entitlements), the one feature
        builder and ``scorer``, one simulation at a time in this worker; household_id is the position
        in ``households``."""
        fault = self.fault_household
        if fault is not None and any(h.household_id == fault for h in households):
            raise RuntimeError(f"injected fault for household {fault} (tests only)")
        individuals, frame = tables or self._tables(households)
        s = self.settings.serving
        with self.law_lock:
            return score_tables(
                individuals,
                frame,
                ModelRanker(scorer),
                law=self.settings.law,
                css=self.css,
                n_reasons=s.reasons_per_score,
                known=known,
                language=s.language,
            )

    def _reusable(self, individuals: pd.DataFrame, tables: pd.DataFrame, external: list, at: datetime):
        """Input digests by position, and the law engine's stored answers for the households whose
        inputs are unchanged since a decision of the last ``serving.reuse_law_results_days``
        (see :meth:`DecisionLog.reusable_entitlements`)."""
        digests = input_digests(
            individuals, tables, key=self.log.key, law_version=law_version(self.settings.law.reference_month)
        )
        days = self.settings.serving.reuse_law_results_days
        if not days:
            return digests, None, {}
        try:
            found = [digests.get(i, "") for i in range(len(external))]
            known, reused = self.log.reusable_entitlements(external, found, since=at - timedelta(days=days))
        except Exception as exc:  # noqa: BLE001 - reuse saves time only: compute, and let the log's write decide
            logger.warning("decision log read for reuse failed (%s); computing", type(exc).__name__)
            return digests, None, {}
        return digests, known, reused

    def _score_batch(self, households: list) -> list[HouseholdScore]:
        """One simulation for every household of the batch (several requests) whose law-engine
        answer cannot be reused, all of them logged in one transaction, answered in order."""
        served = self._served()
        external = [h.household_id for h in households]
        at = datetime.now(UTC)
        tables = self._tables(households)
        digests, known, reused = self._reusable(*tables, external, at)
        scored = self._scored(households, served.scorer, tables=tables, known=known)
        name = self.settings.registry.model_name
        sources = {i: REUSED_SOURCE if i in reused else "api" for i in range(len(households))}
        try:  # household_id is still the position in the batch: two requests may carry one id
            self.log.record_scored(
                scored,
                model_name=name,
                model_version=served.version,
                source=sources,
                at=at,
                ids=external,
                digests=digests,
            )
        except Exception as exc:  # noqa: BLE001 - no score leaves unlogged
            logger.error("decision log write failed (%s); nothing was scored", type(exc).__name__)
            raise Unavailable(f"the decision log is unavailable, nothing was scored: {type(exc).__name__}") from None
        self.on_batch(len(households))
        by_position = dict(list(scored.groupby("household_id", sort=False)))
        return [
            _answer(h.household_id, by_position[i], name, served.version, at, reused.get(i))
            for i, h in enumerate(households)
        ]

    # -- /outcomes --------------------------------------------------------------------------
    def outcomes(self, items: list[dict], sender: str) -> list[OutcomeAck]:
        """Record what happened after contacts, each against the decision it names (else the
        household's latest), all or none."""
        try:
            given = [OutcomeIn.model_validate(f) for f in items]
        except ValidationError as exc:
            raise UserError(str(exc)) from None
        try:
            receipts = self.log.record_outcomes([o.outcome(sender) for o in given])
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        return [
            OutcomeAck(household_pseudonym=r.household_pseudonym, decision_id=r.decision_id, recorded_at=r.recorded_at)
            for r in receipts
        ]

    # -- /campaign --------------------------------------------------------------------------
    def campaign(
        self,
        households: list,
        capacity: int,
        seed: int,
        holdout_share: float | None,
        exploration_share: float | None,
        priorities: list[float] | None,
    ) -> CampaignOut:
        """Score the households with the champion, pick the campaign (holdout, exploration) by
        ``priorities`` (the agency's own ranking) or else the expected unclaimed amount, log every
        campaign household with its arm, and answer with the arms and decision ids. The shares are
        checked as the ``campaign`` settings are, with the same messages."""
        served = self._served()
        ids = [h.household_id for h in households]
        repeated = duplicate_id(ids)
        if repeated is not None:
            raise UserError(
                f"households.{repeated[0]}.household_id: {repeated[1]} is listed twice; a campaign lists each "
                "household once"
            )
        if priorities is not None and len(priorities) != len(households):
            raise UserError(
                f"priorities: {len(priorities)} values for {len(households)} households; give one per "
                "household, in the same order"
            )
        design = section(
            "campaign", self.settings.campaign, holdout_share=holdout_share, exploration_share=exploration_share
        )
        plan = CampaignPlan.of(design, capacity=capacity, seed=seed)
        scored = self._scored(households, served.scorer)
        value = "expected_unclaimed_monthly"
        if priorities is not None:  # the household's priority, spread over its rows: the plan sums them
            position = scored["household_id"].to_numpy()
            scored["priority"] = [priorities[i] for i in position] / scored.groupby("household_id")[
                "benefit"
            ].transform("size").to_numpy()
            value = "priority"
        table = plan_campaign(scored, plan, value=value)
        name = self.settings.registry.model_name
        try:
            decision_ids = self.log.record_campaign(
                scored, table, model_name=name, model_version=served.version, ids=ids
            )
        except Exception as exc:  # noqa: BLE001 - no campaign leaves unlogged
            logger.error("decision log write failed (%s); no campaign was made", type(exc).__name__)
            raise Unavailable(f"the decision log is unavailable, no campaign was made: {type(exc).__name__}") from None
        rows = [
            CampaignHousehold(
                household_id=ids[r.household_id],
                arm=str(r.arm),
                contacted=bool(r.contacted),
                rank=int(r.rank),
                stratum=int(r.stratum),
                propensity=float(r.propensity),
                expected_monthly=float(r.expected_monthly),
                benefits=[b for b in str(r.benefits).split(";") if b],
                decision_id=int(decision_ids[r.household_id]),
            )
            for r in table.itertuples(index=False)
        ]
        cid = str(table["campaign_id"].iloc[0]) if len(table) else ""
        return CampaignOut(
            campaign_id=cid, model_name=name, model_version=served.version, capacity=plan.capacity, households=rows
        )


def _answer(
    household_id: int, rows: pd.DataFrame, name: str, version: str, at: datetime, reused: tuple | None
) -> HouseholdScore:
    """One household's answer: its benefits by expected amount, and whether the law engine ran."""
    rows = rows.sort_values("expected_unclaimed_monthly", ascending=False)
    scores = [
        {
            "benefit": r.benefit,
            "p_unclaimed": float(r.p_unclaimed),
            "estimated_monthly_amount": float(r.estimated_monthly_amount),
            "expected_unclaimed_monthly": float(r.expected_unclaimed_monthly),
            "law_eligible": bool(r.law_eligible),
            "reasons": list(r.reasons),
        }
        for r in rows.itertuples(index=False)
    ]
    return HouseholdScore.model_validate(
        {
            "household_id": household_id,
            "model_name": name,
            "model_version": version,
            "scored_at": at,
            "law_result": "reused" if reused else "computed",
            "law_result_at": reused[1] if reused else at,
            "scores": scores,
        }
    )
