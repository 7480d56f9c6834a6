"""The scoring API: a BentoML 1.4 service that agents' tools call.

Where it sits: ``nonrecours serve`` starts it (``bentoml serve nonrecours.app.service:Scoring``) with its
configuration in the environment. At start-up it loads ``models:/nonrecours@champion`` from the
MLflow registry; with no champion it stays up, says so in its log and answers 503 on ``/readyz``
(it looks again every ``readiness_retry_seconds``).

- ``POST /score``: households in the observed form of the raw tables (see
  :mod:`nonrecours.serving.request`); concurrent requests share one law-engine simulation through BentoML's
  batching (:mod:`nonrecours.serving.batching`). Every household scored is in the decision log before the
  answer leaves.
- ``POST /campaign``: whom to contact among households (the agency's own ranking, or the
  champion's), with a randomised holdout and exploration; every campaign household logged.
- ``POST /outcomes`` (and ``/outcomes/batch``): what happened after contact, stored against the
  decision it answers.
- ``/healthz``, ``/livez``, ``/readyz``, ``/metrics``, ``/docs.json`` are open; everything else
  needs ``Authorization: Bearer <key>`` with a key from ``NONRECOURS_API_KEYS``.

Environment (read once, by :mod:`nonrecours.app.environment`): ``NONRECOURS_CONFIG`` (settings
YAML), ``NONRECOURS_SECRETS_FILE``, ``NONRECOURS_DECISION_LOG_URL``, ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound, ServiceUnavailable
from pydantic import Field, ValidationError

from nonrecours.app import environment as envvars
from nonrecours.app.asgi import read_body, replay
from nonrecours.app.environment import Environment
from nonrecours.app.web import WEB_PATH
from nonrecours.core.config import Settings, load_settings, without_password
from nonrecours.core.schema import SchemaError
from nonrecours.serving.openapi import error_body
from nonrecours.serving.request import MAX_ID, CampaignHousehold, CampaignOut, Household, HouseholdScore, OutcomeAck, OutcomeBatchIn, OutcomeIn

logger = logging.getLogger("nonrecours.serving")

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json"})


class _Status:
    """What the request gate needs to know about this worker's service (set by :class:`Scoring`):
    why the champion is not there, and why the decision log cannot be written."""

    not_ready_reason: str | None = "starting: loading the champion model"
    log_down_reason: str | None = None
    loading: bool = True  # the first load has not finished (successfully or not)

    @classmethod
    async def first_load(cls, seconds: float) -> bool:
        """Wait up to ``seconds`` for the worker's first champion load: a request that reaches a
        worker still starting waits for it rather than failing beside a ready one. True."""
        deadline = time.monotonic() + seconds
        while cls.loading and time.monotonic() < deadline:
            await asyncio.sleep(STARTUP_POLL_SECONDS)
        return True

    @classmethod
    def reason(cls) -> str | None:
        return cls.not_ready_reason or cls.log_down_reason


SCORING_PATHS = frozenset({"/score", "/campaign"})
STARTUP_WAIT_SECONDS = 120.0
"""How long a scoring request waits for its worker's first champion load (a few seconds, usually)."""
STARTUP_POLL_SECONDS = 0.2
SECONDS_PER_MINUTE = 60.0


REQUEST_TIMEOUT_SECONDS = 600
"""BentoML's request timeout: a request of ``max_households_per_request`` households runs whole."""
MAX_CONCURRENCY = 1000
MAX_PRIORITY = 1e9
"""Largest ranking value ``POST /campaign`` accepts per household (any finite scale below it)."""
MAX_SHARE = 0.9
"""Largest holdout or exploration share ``POST /campaign`` accepts (as ``nonrecours campaign``)."""
"""Largest ranking value ``POST /campaign`` accepts per household (any finite scale below it)."""
"""Requests a worker holds at once; the batcher's ``max_waiting_households`` bounds the work."""


class ApiKeyMiddleware:
    """Pure ASGI middleware: 401 with a JSON body unless ``Authorization: Bearer <key>`` carries
    one of the configured keys; the probes, metrics and OpenAPI document stay open."""

    def __init__(self, app, environment: Environment, max_body_bytes: int, rate_limit_per_minute: int):
        self.app = app
        self.environment = environment
        self.max_body_bytes = max_body_bytes
        self.limiter = RateLimiter(rate_limit_per_minute)
        self._digests: list[bytes] | None = None

    def _keys(self) -> list[bytes]:
        if self._digests is None:
            from nonrecours.serving.secrets import api_keys, resolve

            try:
                keys = api_keys(resolve(self.environment.secrets_file, self.environment.values))
            except ValueError as exc:
                logger.error("every protected request will get 401: %s", exc)
                keys = []
            self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]
        return self._digests

    def _authorised(self, scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        digest = hashlib.sha256(token.strip().encode()).digest()
        return any(secrets.compare_digest(digest, k) for k in self._keys())

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "").rstrip("/")
        if scope["type"] != "http" or path == WEB_PATH or path.startswith(WEB_PATH + "/"):
            # the agents' page signs its users in itself (nonrecours.app.web); no API key in a browser
            await self.app(scope, receive, send)
        elif path == "/readyz" and (await _Status.first_load(STARTUP_WAIT_SECONDS)) and _Status.reason():
            # a worker still loading answers once its first load ends, so /readyz never says
            # "ready" from one worker while another would refuse to score
            await _json(send, 503, {"ready": False, "reason": _Status.reason()})
        elif path == "/docs.json":
            await self.app(scope, receive, _rewritten(send, lambda status: status == HTTP_OK, _document))
        elif path in OPEN_PATHS:
            await self.app(scope, receive, send)
        elif not self._authorised(scope):
            await _json(send, 401, {"error": "missing or invalid API key", "hint": "send the header 'Authorization: Bearer <key>'"}, [(b"www-authenticate", b"Bearer")])
        elif (wait := self.limiter.wait(key_id(dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")))) > 0:
            await _json(send, 429, {"error": f"rate limit: over {self.limiter.per_minute} requests a minute for this API key (serving.rate_limit_per_minute); "
                                             f"retry in {wait:.0f} s"}, [(b"retry-after", str(int(wait) + 1).encode())])
        elif path in SCORING_PATHS and (await _Status.first_load(STARTUP_WAIT_SECONDS)) and _Status.not_ready_reason:
            # BentoML hides the message of any 5xx raised in an endpoint; say it here instead.
            await _json(send, 503, {"error": f"not ready: {_Status.not_ready_reason}"})
        elif not _json_body(scope):
            await _json(send, 415, {"error": "Content-Type must be application/json", "hint": "send the body as JSON with 'Content-Type: application/json'"})
        else:
            body = await read_body(scope, receive, self.max_body_bytes)
            if body is None:
                await _json(send, 413, {"error": f"request body over {self.max_body_bytes:,} bytes (serving.max_body_bytes); send fewer households per request"})
                return
            await self.app(scope, replay(body), _rewritten(send, lambda status: status >= HTTP_BAD_REQUEST, error_body))


class RateLimiter:
    """A token bucket per API key id, in this worker: ``per_minute`` requests a minute, in bursts
    of up to as many. :meth:`wait` takes a token, or says how many seconds until one is free."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, time)

    def wait(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        rate = self.per_minute / SECONDS_PER_MINUTE
        tokens, then = self.buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - then) * rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0.0
        self.buckets[key] = (tokens, now)
        logger.warning("rate limit: %s over %d requests a minute", key, self.per_minute)
        return (1 - tokens) / rate


HTTP_OK, HTTP_BAD_REQUEST = 200, 400


def _json_body(scope) -> bool:
    """A request without a body's type, or with JSON's: every protected route takes JSON (BentoML
    would otherwise try to parse a multipart body, and fails with a 500 on one without a boundary)."""
    declared = dict(scope.get("headers") or []).get(b"content-type")
    return declared is None or declared.split(b";")[0].strip().lower() == b"application/json"


def _document(body: bytes) -> bytes:
    """BentoML's OpenAPI document made true (:func:`nonrecours.serving.openapi.truthful_document`)."""
    from nonrecours.serving.openapi import truthful_document

    protected = {p for p in json.loads(body).get("paths", {}) if p not in OPEN_PATHS and p != "/"}
    return json.dumps(truthful_document(json.loads(body), protected)).encode()


def _rewritten(send, when, rewrite):
    """An ASGI ``send`` that, for a response whose status passes ``when``, holds the whole body,
    sends ``rewrite(body)`` instead with its length; every other response streams through."""
    start: dict | None = None
    held: list[bytes] = []

    async def wrapped(message):
        nonlocal start
        if message["type"] == "http.response.start":
            if not when(message["status"]):
                await send(message)
                return
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        held.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = rewrite(b"".join(held))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapped


async def _json(send, status: int, body: dict, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class OutcomeRequest(OutcomeIn, bentoml.IODescriptor):
    """Body of ``POST /outcomes``."""


class OutcomeBatchRequest(OutcomeBatchIn, bentoml.IODescriptor):
    """Body of ``POST /outcomes/batch``."""


def key_id(authorization: str) -> str:
    """A short, stable id of the API key a request carried (never the key): the outcome's sender."""
    token = authorization.removeprefix("Bearer ").strip()
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:12] if token else "unknown"


class ScoringLogic:
    """What the service does, apart from BentoML's declarations (:func:`build_service` adds them
    with the loaded settings). One instance per worker process."""

    settings: Settings
    environment: Environment

    def __init__(self) -> None:
        from nonrecours.app.application import decision_log_url, open_decision_log
        from nonrecours.law.openfisca import tax_benefit_system
        from nonrecours.law.parameters import load_law_parameters
        from nonrecours.serving.batching import Batcher

        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] [nonrecours] %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        env = self.environment
        self.log = open_decision_log(decision_log_url(None, self.settings, env), env.secrets_file, env, timeout_seconds=self.settings.serving.decision_log_timeout_seconds)
        self.css = load_law_parameters().css
        tax_benefit_system()
        # (scorer, version) as one value, swapped whole: a batch reads it once, so the version it
        # logs is the one that scored it.
        self.champion: tuple[object, str] | None = None
        self.champion_run: str = ""  # the champion's training run, for the public notice
        self.refused: str | None = None  # why the last candidate champion was not loaded
        import threading

        self.law_lock = threading.Lock()  # one law-engine simulation at a time per worker: the batcher's or a campaign's
        serving = self.settings.serving
        self.batcher = Batcher(self._score_batch, max_batch=serving.max_batch_size, linger_seconds=serving.batch_linger_ms / 1000,
                               max_waiting=serving.max_waiting_households)
        isolated = bentoml.metrics.Counter(name="nonrecours_isolated_batches", documentation="Batches that failed and were re-run one request at a time")
        self.batcher.on_isolate = isolated.inc
        self.batch_sizes = bentoml.metrics.Histogram(
            name="nonrecours_batch_households", documentation="Households per law-engine simulation in the API", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
        )
        # The first load runs in the background too: MLflow's retries can take minutes, and the
        # worker must answer its probes (not ready, and why) meanwhile.
        threading.Thread(target=self._watch_champion, name="champion-watch", daemon=True).start()

    def _watch_champion(self) -> None:
        """Load the champion, then: not ready, look again every ``readiness_retry_seconds``;
        ready, look every ``champion_refresh_seconds`` whether the alias moved (0: stop looking)."""
        serving = self.settings.serving
        try:
            self._load_champion()
        finally:
            _Status.loading = False
        while True:
            if self.champion is not None and serving.champion_refresh_seconds == 0:
                return
            time.sleep(serving.readiness_retry_seconds if self.champion is None else serving.champion_refresh_seconds)
            self._load_champion()

    def _load_champion(self) -> bool:
        """Load the version the alias points to, unless it is the one serving. A new version is
        loaded while the old one keeps serving, then swapped in. True when serving."""
        from nonrecours.app.application import AppError, load_champion, tracking_uri

        reg, alias = self.settings.registry, self.settings.serving.model_alias
        current = self.champion
        uri = self.settings.registry.tracking_uri
        try:
            uri = tracking_uri(None, self.settings, self.environment)
            loaded = load_champion(self.settings, uri, unless_version=None if current is None else current[1])
            if loaded is None:
                return True
            self._warm_up(loaded.scorer)  # the smoke test: a candidate that cannot score the shipped example is never swapped in
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", or "keep the one serving", said in the log
            why = "the alias points to no version" if isinstance(exc, AppError) else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self.refused = why
            if current is not None:
                logger.warning("could not check or load %s@%s at %s (%s); still scoring with version %s", reg.model_name, alias, without_password(uri), why, current[1])
                return True
            _Status.not_ready_reason = f"no usable champion model {reg.model_name}@{alias} ({why}): train one with `nonrecours train`"
            logger.error(
                "NOT READY: no usable model %s@%s in the registry at %s (%s). Train one with `nonrecours train`; "
                "this service looks again every %.0f s.",
                reg.model_name, alias, without_password(uri), why, self.settings.serving.readiness_retry_seconds,
            )
            return False
        self.champion = (loaded.scorer, loaded.version)
        self.champion_run = loaded.run_id
        _Status.not_ready_reason = None
        if current is None:
            logger.info("ready: scoring with %s version %s", reg.model_name, loaded.version)
        else:
            logger.info("champion changed: scoring with %s version %s (was version %s)", reg.model_name, loaded.version, current[1])
        return True

    def _warm_up(self, scorer) -> None:
        """Score the shipped example with a candidate champion: its smoke test (a booster that
        does not fit this code's features fails here, not on agents' requests), and, the first
        time, OpenFisca's parameter caches filled at start-up rather than on a first request."""
        import numpy as np

        from nonrecours.serving.request import example_households

        households = [Household.model_validate(h) for h in example_households()]
        scored = self._scored(households, scorer)
        values = scored["expected_unclaimed_monthly"].to_numpy(dtype=float)
        if len(scored) == 0 or not np.isfinite(values).all():
            raise ValueError("smoke test: the candidate gave no finite score on the shipped example")

    def __is_ready__(self) -> bool:
        """Ready: a champion is loaded and the decision log answers (within its timeout)."""
        if self.champion is None:
            return False
        try:
            self.log.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason
            _Status.log_down_reason = f"the decision log cannot be reached ({type(exc).__name__}): nothing can be scored unlogged"
            return False
        _Status.log_down_reason = None
        return True

    async def _score(self, households: list) -> list[HouseholdScore]:
        from nonrecours.serving.batching import Overloaded

        if self.champion is None:  # the request gate answers first; this is the last line of defence
            raise ServiceUnavailable("no champion model in the registry yet: train one with `nonrecours train`")
        try:
            return await self.batcher.submit(households)
        except Overloaded as exc:
            raise ServiceUnavailable(str(exc)) from None

    def _tables(self, households: list):
        """The requests' households as the observed tables (household_id: the position)."""
        from nonrecours.serving.request import to_tables

        try:
            return to_tables(households)
        except SchemaError as exc:
            # Input the request models let through but the data contract refuses: still the
            # caller's to fix, so a 400 naming the column (the whole batch gets it; seen only
            # by fuzzing so far, each case then became a request-model rule).
            logger.warning("request refused by the schema: %s", exc)
            raise InvalidArgument(str(exc)) from None

    def _scored(self, households: list, scorer, *, tables: tuple | None = None, known=None):
        """The households through the law engine (but for ``known`` entitlements), the one
        feature builder and ``scorer``, one simulation at a time in this worker; household_id is
        the position in ``households``."""
        from nonrecours.serving.scoring import score_tables

        fault = self.environment.fault_household
        if fault is not None and any(h.household_id == fault for h in households):
            raise RuntimeError(f"injected fault for household {fault} ({envvars.FAULT_HOUSEHOLD}, tests only)")
        individuals, frame = tables or self._tables(households)
        with self.law_lock:
            return score_tables(individuals, frame, scorer, law=self.settings.law, css=self.css, n_reasons=self.settings.serving.reasons_per_score, known=known,
                                language=self.settings.serving.language)

    def _reusable(self, individuals, tables, external: list, at: datetime):
        """Input digests by position, and the law engine's stored answers for the households
        whose inputs are unchanged since a decision of the last ``serving.reuse_law_results_days``
        (see :meth:`DecisionLog.reusable_entitlements`)."""
        from nonrecours.app.application import input_digests

        digests = input_digests(individuals, tables, self.log, self.settings)
        days = self.settings.serving.reuse_law_results_days
        if not days:
            return digests, None, {}
        try:
            known, reused = self.log.reusable_entitlements(external, [digests.get(i, "") for i in range(len(external))], since=at - timedelta(days=days))
        except Exception as exc:  # noqa: BLE001 - reuse saves time only: compute, and let the log's write decide
            logger.warning("decision log read for reuse failed (%s); computing", type(exc).__name__)
            return digests, None, {}
        return digests, known, reused

    def _score_batch(self, households: list) -> list[HouseholdScore]:
        """One simulation for every household of the batch (several requests) whose law-engine
        answer cannot be reused, all of them logged in one transaction, answered in order."""
        from nonrecours.serving.decision_log import REUSED_SOURCE

        _t0 = time.perf_counter()
        scorer, model_version = self.champion  # type: ignore[misc]
        external = [h.household_id for h in households]  # type: ignore[attr-defined]
        at = datetime.now(timezone.utc)
        tables = self._tables(households)
        digests, known, reused = self._reusable(*tables, external, at)
        scored = self._scored(households, scorer, tables=tables, known=known)
        name = self.settings.registry.model_name
        sources = {i: REUSED_SOURCE if i in reused else "api" for i in range(len(households))}
        try:
            # household_id is still the position in the batch: two requests may carry one id.
            self.log.record_scored(scored, model_name=name, model_version=model_version, source=sources, at=at, ids=external, digests=digests)
        except Exception as exc:  # noqa: BLE001 - no score leaves unlogged
            logger.error("decision log write failed (%s); nothing was scored", type(exc).__name__)
            raise ServiceUnavailable(f"the decision log is unavailable, nothing was scored: {type(exc).__name__}") from None
        logger.debug("scored %d households in %.3f s", len(households), time.perf_counter() - _t0)
        self.batch_sizes.observe(len(households))
        out = []
        by_position = dict(list(scored.groupby("household_id", sort=False)))
        for i, h in enumerate(households):
            rows = by_position[i].sort_values("expected_unclaimed_monthly", ascending=False)  # type: ignore[attr-defined]
            out.append(
                HouseholdScore(
                    household_id=h.household_id,  # type: ignore[attr-defined]
                    model_name=name,
                    model_version=model_version,
                    scored_at=at,
                    law_result="reused" if i in reused else "computed",
                    law_result_at=reused[i][1] if i in reused else at,
                    scores=[
                        {
                            "benefit": r.benefit,
                            "p_unclaimed": float(r.p_unclaimed),
                            "estimated_monthly_amount": float(r.estimated_monthly_amount),
                            "expected_unclaimed_monthly": float(r.expected_unclaimed_monthly),
                            "law_eligible": bool(r.law_eligible),
                            "reasons": list(r.reasons),
                        }
                        for r in rows.itertuples(index=False)
                    ],
                )
            )
        return out

    def _outcomes(self, items: list[dict], ctx) -> list[OutcomeAck]:
        """Record what happened after contacts, each against the decision it names (else the
        household's latest), all or none; the sender is the API key's id."""
        try:
            given = [OutcomeIn.model_validate(f) for f in items]
        except ValidationError as exc:
            raise InvalidArgument(str(exc)) from None
        sender = key_id(ctx.request.headers.get("authorization", ""))
        try:
            receipts = self.log.record_outcomes([o.outcome(sender) for o in given])
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        return [OutcomeAck(household_pseudonym=r.household_pseudonym, decision_id=r.decision_id, recorded_at=r.recorded_at) for r in receipts]


    def _campaign(self, households: list, capacity: int, seed: int, holdout_share: float | None, exploration_share: float | None,
                  priorities: list[float] | None) -> CampaignOut:
        """Score the households with the champion, pick the campaign (holdout, exploration) by
        ``priorities`` (the agency's own ranking) or else the expected unclaimed amount, log every
        campaign household with its arm, and answer with the arms and decision ids."""
        from nonrecours.serving.campaign import CampaignPlan, plan_campaign
        from nonrecours.serving.request import duplicate_id

        if self.champion is None:
            raise ServiceUnavailable("no champion model in the registry yet: train one with `nonrecours train`")
        ids = [h.household_id for h in households]
        repeated = duplicate_id(ids)
        if repeated is not None:
            raise InvalidArgument(f"households.{repeated[0]}.household_id: {repeated[1]} is listed twice; a campaign lists each household once")
        if priorities is not None and len(priorities) != len(households):
            raise InvalidArgument(f"priorities: {len(priorities)} values for {len(households)} households; give one per household, in the same order")
        c = self.settings.campaign
        try:
            plan = CampaignPlan(capacity=capacity, holdout_share=c.holdout_share if holdout_share is None else holdout_share,
                                exploration_share=c.exploration_share if exploration_share is None else exploration_share, strata=c.strata, seed=seed)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        scorer, model_version = self.champion  # type: ignore[misc]
        scored = self._scored(households, scorer)
        value = "expected_unclaimed_monthly"
        if priorities is not None:  # the household's priority, spread over its rows: the plan sums them
            position = scored["household_id"].to_numpy()
            scored["priority"] = [priorities[i] for i in position] / scored.groupby("household_id")["benefit"].transform("size").to_numpy()
            value = "priority"
        table = plan_campaign(scored, plan, value=value)
        name = self.settings.registry.model_name
        try:
            decision_ids = self.log.record_campaign(scored, table, model_name=name, model_version=model_version, ids=ids)
        except Exception as exc:  # noqa: BLE001 - no campaign leaves unlogged
            logger.error("decision log write failed (%s); no campaign was made", type(exc).__name__)
            raise ServiceUnavailable(f"the decision log is unavailable, no campaign was made: {type(exc).__name__}") from None
        rows = [
            CampaignHousehold(household_id=ids[r.household_id], arm=str(r.arm), contacted=bool(r.contacted), rank=int(r.rank), stratum=int(r.stratum),
                              propensity=float(r.propensity), expected_monthly=float(r.expected_monthly), benefits=[b for b in str(r.benefits).split(";") if b],
                              decision_id=int(decision_ids[r.household_id]))
            for r in table.itertuples(index=False)
        ]
        return CampaignOut(campaign_id=str(table["campaign_id"].iloc[0]) if len(table) else "", model_name=name, model_version=model_version,
                           capacity=plan.capacity, households=rows)


def _campaign_endpoint(limit: int):
    """``POST /campaign``, for an agency whose worklist comes from elsewhere: at most ``limit``
    households, as for ``/score`` (annotations as objects, so BentoML sees the limits)."""

    def campaign(self, households, capacity, seed=0, holdout_share=None, exploration_share=None, priorities=None):
        """Pick whom to contact among these households, with a randomised holdout (not contacted,
        drawn within rank strata) and a share of exploration below the cut. Ranked by
        `priorities` (one per household, in order: the agency's own worklist) or else by the
        champion's expected unclaimed amount. Every campaign household is logged with its arm;
        name the campaign_id and decision_id in each outcome."""
        return self._campaign(households, capacity, seed, holdout_share, exploration_share, priorities)

    share = Field(default=None, ge=0, le=MAX_SHARE, strict=True)
    campaign.__annotations__ = {
        "households": Annotated[list[Household], Field(min_length=1, max_length=limit)],
        "capacity": Annotated[int, Field(ge=1, le=limit, strict=True, description="Contacts the team can make.")],
        "seed": Annotated[int, Field(ge=0, le=MAX_ID, strict=True, description="Seed of the holdout and exploration draws (recorded).")],
        "holdout_share": Annotated[Optional[float], share],
        "exploration_share": Annotated[Optional[float], share],
        "priorities": Annotated[Optional[list[Annotated[float, Field(ge=0, le=MAX_PRIORITY, allow_inf_nan=False, strict=True)]]], Field(max_length=limit)],
        "return": CampaignOut,
    }
    return campaign


def _score_endpoint(limit: int):
    """``POST /score``, refusing more than ``limit`` households. Its annotations are objects, not
    strings (this module's annotations are postponed), so BentoML sees the limit."""

    async def score(self, households):
        """Score households: per benefit, the probability of an unclaimed entitlement, the amount
        at stake, their product and the reasons. Every household is logged before the answer.
        Concurrent requests share one law-engine simulation (:mod:`nonrecours.serving.batching`)."""
        return await self._score(households)

    score.__annotations__ = {"households": Annotated[list[Household], Field(min_length=1, max_length=limit)], "return": list[HouseholdScore]}
    return score


def build_service(settings: Settings, environment: Environment):
    """The BentoML service class, its workers, request limit and the settings every worker uses
    taken from ``settings`` (decorator arguments are fixed when a class is made, hence a factory)."""
    limit, loaded, given = settings.serving.max_households_per_request, settings, environment

    @bentoml.service(name="nonrecours", workers=settings.serving.workers, traffic={"timeout": REQUEST_TIMEOUT_SECONDS, "max_concurrency": MAX_CONCURRENCY})
    class Scoring(ScoringLogic):
        settings = loaded
        environment = given

        score = bentoml.api(_score_endpoint(limit))
        campaign = bentoml.api(_campaign_endpoint(limit), route="/campaign")

        @bentoml.api(route="/outcomes", input_spec=OutcomeRequest)
        def outcomes(self, ctx: bentoml.Context, **fields) -> OutcomeAck:
            """Record what happened after a contact, against the decision it names (else the
            household's latest score). A repeated idempotency_key is recorded once."""
            return self._outcomes([fields], ctx)[0]

        @bentoml.api(route="/outcomes/batch", input_spec=OutcomeBatchRequest)
        def outcomes_batch(self, ctx: bentoml.Context, outcomes: list) -> list[OutcomeAck]:
            """Record many outcomes in one transaction: all of them, or none (the error names the first refused)."""
            return self._outcomes([o.model_dump() if hasattr(o, "model_dump") else o for o in outcomes], ctx)

    Scoring.mount_asgi_app(_web_page(settings), path=WEB_PATH)
    Scoring.add_asgi_middleware(ApiKeyMiddleware, environment=environment, max_body_bytes=settings.serving.max_body_bytes,
                                rate_limit_per_minute=settings.serving.rate_limit_per_minute)
    return Scoring


def _web_page(settings: Settings):
    """The agents' web page, reading the worker's own decision log and champion."""
    from nonrecours.app.web import Sources, build_web_app

    def champion():
        service = bentoml.get_current_service()
        if service.champion is None:
            return None
        scorer, version = service.champion
        return settings.registry.model_name, version, service.champion_run, scorer

    return build_web_app(settings, Sources(log=lambda: bentoml.get_current_service().log, champion=champion))


def service_from_environment(env: Environment):
    """The service as a server process builds it: settings from ``NONRECOURS_CONFIG``, if set."""
    return build_service(load_settings(env.config), env)


@dataclass(frozen=True)
class ServeCommand:
    args: list[str]
    env: dict[str, str]
    tracking_uri: str
    decision_log_url: str


def serve_command(settings: Settings, env: Environment, *, port: int, host: str, config: Path | None, secrets_file: Path | None,
                  tracking_uri: str, decision_log_url: str) -> ServeCommand:
    """What ``nonrecours serve`` runs: ``bentoml serve`` on :mod:`nonrecours.app.bento`, with the
    settings file, secrets file, tracking store and decision log in its environment. The secrets
    are checked and the decision log's tables created here, once, before the workers start
    (several workers creating them at once on a new database would race); a wrong URL fails now."""
    from nonrecours.app.application import AppError, mlflow_limits, read_secrets
    from nonrecours.serving.caseload import create_tables
    from nonrecours.serving.decision_log import connect
    from nonrecours.serving.secrets import api_keys, pseudonym_key

    values = read_secrets(secrets_file, env)
    try:
        pseudonym_key(values)
        api_keys(values)
    except ValueError as exc:
        raise AppError(str(exc)) from None
    try:
        engine = connect(decision_log_url)
        create_tables(engine)  # the agents' page's tables, beside the log's
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to open the log stops the start, with the reason
        raise AppError(f"decision log {without_password(decision_log_url)!r}: cannot open it ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                       "expected a SQLAlchemy URL such as sqlite:///decisions.db or postgresql+psycopg://user@host/nonrecours") from None
    child = dict(env.values)
    child[envvars.TRACKING_URI], child[envvars.DECISION_LOG] = tracking_uri, decision_log_url
    child.update(mlflow_limits(settings))  # no unpickling (no MLflow loader runs in the service anyway), MLflow calls time out
    if secrets_file is not None:
        child[envvars.SECRETS_FILE] = str(secrets_file.resolve())
    if config is not None:
        child[envvars.CONFIG] = str(config.resolve())
    args = [sys.executable, "-m", "bentoml", "serve", "nonrecours.app.bento:Scoring", "--port", str(port), "--host", host]
    return ServeCommand(args, child, tracking_uri, decision_log_url)
