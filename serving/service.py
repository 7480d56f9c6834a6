"""The scoring API: a BentoML 1.4 service that agents' tools call.

Where it sits: ``nonrecours serve`` starts it (``bentoml serve serving.service:Scoring``) with its
configuration in the environment. At start-up it loads ``models:/nonrecours@champion`` from the
MLflow registry; with no champion it stays up, says so in its log and answers 503 on ``/readyz``
(it looks again every ``readiness_retry_seconds``).

- ``POST /score``: households in the observed form of the raw tables (see
  :mod:`serving.request`); concurrent requests share one law-engine simulation through BentoML's
  batching (:mod:`serving.batching`). Every household scored is in the decision log before the
  answer leaves.
- ``POST /outcomes``: what happened after contact, stored against the household's pseudonym.
- ``/healthz``, ``/livez``, ``/readyz``, ``/metrics``, ``/docs.json`` are open; everything else
  needs ``Authorization: Bearer <key>`` with a key from ``NONRECOURS_API_KEYS``.

Environment: ``NONRECOURS_CONFIG`` (settings YAML), ``NONRECOURS_SECRETS_FILE``,
``NONRECOURS_DECISION_LOG_URL``, ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound, ServiceUnavailable
from pydantic import Field, ValidationError

from nonrecours.config import ServingConfig, without_password
from nonrecours.schema import SchemaError
from serving.request import Household, HouseholdScore, OutcomeAck, OutcomeIn

logger = logging.getLogger("nonrecours.serving")

ENV_CONFIG = "NONRECOURS_CONFIG"
ENV_SECRETS_FILE = "NONRECOURS_SECRETS_FILE"
ENV_DECISION_LOG = "NONRECOURS_DECISION_LOG_URL"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json"})


class _Status:
    """What the request gate needs to know about this worker's service (set by :class:`Scoring`)."""

    not_ready_reason: str | None = "starting"


# Decorator arguments are fixed when the class is defined: they take the typed config's defaults
# (no file or environment is read at import). Change them in nonrecours/config.py.
_DEFAULTS = ServingConfig()


def _secrets() -> dict[str, str]:
    from serving.secrets import resolve

    path = os.environ.get(ENV_SECRETS_FILE)
    return resolve(Path(path) if path else None)


class ApiKeyMiddleware:
    """Pure ASGI middleware: 401 with a JSON body unless ``Authorization: Bearer <key>`` carries
    one of the configured keys; the probes, metrics and OpenAPI document stay open."""

    def __init__(self, app):
        self.app = app
        self._digests: list[bytes] | None = None

    def _keys(self) -> list[bytes]:
        if self._digests is None:
            from serving.secrets import api_keys

            try:
                keys = api_keys(_secrets())
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
        if scope["type"] != "http" or path in OPEN_PATHS:
            await self.app(scope, receive, send)
        elif not self._authorised(scope):
            await _json(send, 401, {"error": "missing or invalid API key", "hint": "send the header 'Authorization: Bearer <key>'"}, [(b"www-authenticate", b"Bearer")])
        elif path == "/score" and _Status.not_ready_reason:
            # BentoML hides the message of any 5xx raised in an endpoint; say it here instead.
            await _json(send, 503, {"error": f"not ready: {_Status.not_ready_reason}"})
        else:
            await self.app(scope, receive, send)


async def _json(send, status: int, body: dict, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class OutcomeRequest(OutcomeIn, bentoml.IODescriptor):
    """Body of ``POST /outcomes``."""


@bentoml.service(name="nonrecours", workers=_DEFAULTS.workers, traffic={"timeout": 600, "max_concurrency": 1000})
class Scoring:
    def __init__(self) -> None:
        from data.calibration import load_calibration
        from features.law import tax_benefit_system
        from nonrecours.config import load_settings
        from serving.batching import Batcher
        from serving.decision_log import DecisionLog, connect
        from serving.secrets import pseudonym_key

        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] [nonrecours] %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        config = os.environ.get(ENV_CONFIG)
        self.settings = load_settings(Path(config) if config else None)
        url = os.environ.get(ENV_DECISION_LOG) or self.settings.serving.decision_log_url
        self.log = DecisionLog(connect(url), pseudonym_key(_secrets()))
        self.css = load_calibration().css
        tax_benefit_system()
        # (scorer, version) as one value, swapped whole: a batch reads it once, so the version it
        # logs is the one that scored it.
        self.champion: tuple[object, str] | None = None
        serving = self.settings.serving
        self.batcher = Batcher(self._score_batch, max_batch=serving.max_batch_size, linger_seconds=serving.batch_linger_ms / 1000)
        self.batch_sizes = bentoml.metrics.Histogram(
            name="nonrecours_batch_households", documentation="Households per law-engine simulation in the API", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
        )
        self._load_champion()
        import threading

        threading.Thread(target=self._watch_champion, name="champion-watch", daemon=True).start()

    def _watch_champion(self) -> None:
        """Not ready: look for a champion every ``readiness_retry_seconds``. Ready: look every
        ``champion_refresh_seconds`` whether the alias moved (0: stop looking)."""
        serving = self.settings.serving
        while True:
            if self.champion is not None and serving.champion_refresh_seconds == 0:
                return
            time.sleep(serving.readiness_retry_seconds if self.champion is None else serving.champion_refresh_seconds)
            self._load_champion()

    def _load_champion(self) -> bool:
        """Load the version the alias points to, unless it is the one serving. A new version is
        loaded while the old one keeps serving, then swapped in. True when serving."""
        import mlflow

        from training.tracking import load_scorer, resolve_tracking_uri

        reg = self.settings.registry
        alias = self.settings.serving.model_alias
        uri = resolve_tracking_uri(None, reg)
        current = self.champion
        try:
            mlflow.set_tracking_uri(uri)
            version = str(mlflow.MlflowClient(tracking_uri=uri).get_model_version_by_alias(reg.model_name, alias).version)
            if current is not None and version == current[1]:
                return True
            scorer = load_scorer(f"models:/{reg.model_name}/{version}")
            if current is None:  # the law engine's caches; a swap finds them warm
                self._warm_up(scorer)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", or "keep the one serving", said in the log
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if current is not None:
                logger.warning("could not check or load %s@%s at %s (%s); still scoring with version %s", reg.model_name, alias, without_password(uri), why, current[1])
                return True
            _Status.not_ready_reason = f"no champion model {reg.model_name}@{alias} in the registry yet: train one with `nonrecours train`"
            logger.error(
                "NOT READY: no usable model %s@%s in the registry at %s (%s). Train one with `nonrecours train`; "
                "this service looks again every %.0f s.",
                reg.model_name, alias, without_password(uri), why, self.settings.serving.readiness_retry_seconds,
            )
            return False
        self.champion = (scorer, version)
        _Status.not_ready_reason = None
        if current is None:
            logger.info("ready: scoring with %s version %s", reg.model_name, version)
        else:
            logger.info("champion changed: scoring with %s version %s (was version %s)", reg.model_name, version, current[1])
        return True

    def _warm_up(self, scorer) -> None:
        """The first simulation fills OpenFisca's parameter caches (several seconds): pay it at
        start-up with the shipped example, not on an agent's first request."""
        from serving.request import example_households, to_tables
        from serving.scoring import score_tables

        households = [Household.model_validate(h) for h in example_households()[:1]]
        score_tables(*to_tables(households), scorer, law=self.settings.law, css=self.css, n_reasons=1)

    def __is_ready__(self) -> bool:
        return self.champion is not None

    @bentoml.api
    async def score(
        self,
        households: Annotated[list[Household], Field(min_length=1, max_length=_DEFAULTS.max_households_per_request)],  # type: ignore[valid-type]
    ) -> list[HouseholdScore]:
        """Score households: per benefit, the probability of an unclaimed entitlement, the amount
        at stake, their product and the reasons. Every household is logged before the answer.
        Concurrent requests share one law-engine simulation (:mod:`serving.batching`)."""
        from serving.batching import Overloaded

        if self.champion is None:  # the request gate answers first; this is the last line of defence
            raise ServiceUnavailable("no champion model in the registry yet: train one with `nonrecours train`")
        try:
            return await self.batcher.submit(households)
        except Overloaded as exc:
            raise ServiceUnavailable(str(exc)) from None

    def _score_batch(self, households: list) -> list[HouseholdScore]:
        """One simulation for every household of the batch (several requests), logged in one
        transaction, answered in order."""
        from serving.request import to_tables
        from serving.scoring import score_tables

        _t0 = time.perf_counter()
        scorer, model_version = self.champion  # type: ignore[misc]
        try:
            individuals, tables = to_tables(households)
            scored = score_tables(individuals, tables, scorer, law=self.settings.law, css=self.css, n_reasons=self.settings.serving.reasons_per_score)
        except SchemaError as exc:
            # Input the request models let through but the data contract refuses: still the
            # caller's to fix, so a 400 naming the column (the whole batch gets it; seen only
            # by fuzzing so far, each case then became a request-model rule).
            logger.warning("request refused by the schema: %s", exc)
            raise InvalidArgument(str(exc)) from None
        external = [h.household_id for h in households]  # type: ignore[attr-defined]
        at = datetime.now(timezone.utc)
        name = self.settings.registry.model_name
        try:
            # household_id is still the position in the batch: two requests may carry one id.
            self.log.record_scored(scored, model_name=name, model_version=model_version, source="api", at=at, ids=external)
        except Exception as exc:  # noqa: BLE001 - no score leaves unlogged
            logger.exception("decision log write failed")
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

    @bentoml.api(route="/outcomes", input_spec=OutcomeRequest)
    def outcomes(self, **fields) -> OutcomeAck:
        """Record what happened after contact, against the household's latest score."""
        from serving.decision_log import Outcome

        try:
            o = OutcomeIn.model_validate(fields)
        except ValidationError as exc:
            raise InvalidArgument(str(exc)) from None
        try:
            receipt = self.log.record_outcome(Outcome(o.household_id, o.benefit, o.contacted, o.claimed, o.amount_granted, o.outcome_date))
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        return OutcomeAck(household_pseudonym=receipt.household_pseudonym, decision_id=receipt.decision_id, recorded_at=receipt.recorded_at)


Scoring.add_asgi_middleware(ApiKeyMiddleware)
