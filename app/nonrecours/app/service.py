"""The scoring API as BentoML 1.4 serves it: the routes, the request gate and the agents' page.

Where it sits: ``nonrecours serve`` starts it (``bentoml serve nonrecours.app.bento:Scoring``) with
its configuration in the environment. Each worker builds one :class:`~nonrecours.serving.api.ScoringApi`
(the champion, loaded and watched; the project's own batcher; the decision log) and each route
calls one of its methods; what it raises becomes a status here (:func:`answered`).

- ``POST /score``, ``POST /campaign``, ``POST /outcomes`` (and ``/outcomes/batch``): behind
  ``Authorization: Bearer <key>`` with a key from ``NONRECOURS_API_KEYS``, a rate limit per key and a
  body limit checked before anything parses it (:class:`ApiKeyMiddleware`).
- ``/healthz``, ``/livez``, ``/readyz`` (503 with the reason until a champion is loaded and the log
  answers), ``/metrics``, ``/docs.json`` (the OpenAPI document made true) are open.
- ``/agents``: the agents' web page (:mod:`nonrecours.app.web`), which signs its users in itself.

Environment (read once, by :mod:`nonrecours.app.environment`): ``NONRECOURS_CONFIG`` (settings
YAML), ``NONRECOURS_SECRETS_FILE``, ``NONRECOURS_DECISION_LOG_URL``, ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound, ServiceUnavailable

from nonrecours.app.environment import Environment
from nonrecours.app.stores import Run
from nonrecours.app.web import WEB_PATH, Sources, build_web_app
from nonrecours.core import errors
from nonrecours.core.config import Settings, load_settings
from nonrecours.serving.access import Gate, key_id
from nonrecours.serving.api import Readiness, ScoringApi, Unavailable
from nonrecours.serving.asgi import read_body, replay, rewritten, send_json
from nonrecours.serving.openapi import error_body, truthful_document
from nonrecours.serving.request import (
    OutcomeAck,
    OutcomeBatchIn,
    OutcomeIn,
    campaign_arguments,
    score_arguments,
)
from nonrecours.serving.secrets import api_keys, resolve

logger = logging.getLogger("nonrecours.serving")

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json"})
SCORING_PATHS = frozenset({"/score", "/campaign"})
STARTUP_WAIT_SECONDS = 120.0
"""How long a scoring request waits for its worker's first champion load (a few seconds, usually)."""
REQUEST_TIMEOUT_SECONDS = 600
"""BentoML's request timeout: a request of ``max_households_per_request`` households runs whole."""
MAX_CONCURRENCY = 1000
"""Requests a worker holds at once; the batcher's ``max_waiting_households`` bounds the work."""
HTTP_OK, HTTP_BAD_REQUEST = 200, 400
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ApiKeyMiddleware:
    """Pure ASGI middleware, the request gate: 401 with a JSON body unless ``Authorization: Bearer
    <key>`` carries one of the configured keys, 429 past the key's rate, 503 while the worker is
    not ready, 415 for a body that is not JSON, 413 past the body limit; the probes, metrics, the
    OpenAPI document and the agents' page pass."""

    def __init__(self, app, environment: Environment, max_body_bytes: int, rate_limit_per_minute: int):
        self.app, self.environment, self.max_body_bytes = app, environment, max_body_bytes
        self.gate = Gate(self._keys, rate_limit_per_minute)

    def _keys(self) -> list[str]:
        try:
            return api_keys(resolve(self.environment.secrets_file, self.environment.values))
        except ValueError as exc:
            logger.error("every protected request will get 401: %s", exc)
            return []

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "").rstrip("/")
        headers = dict(scope.get("headers") or [])
        if scope["type"] != "http" or path == WEB_PATH or path.startswith(WEB_PATH + "/"):
            await self.app(scope, receive, send)  # the agents' page signs its users in itself; no API key in a browser
        elif path == "/readyz" and (await Readiness.first_load(STARTUP_WAIT_SECONDS)) and Readiness.reason():
            # a worker still loading answers once its first load ends, so /readyz never says
            # "ready" from one worker while another would refuse to score
            await send_json(send, 503, {"ready": False, "reason": Readiness.reason()})
        elif path == "/docs.json":
            await self.app(scope, receive, rewritten(send, lambda status: status == HTTP_OK, _document))
        elif path in OPEN_PATHS:
            await self.app(scope, receive, send)
        elif (refused := self.gate.caller(headers.get(b"authorization", b"").decode("latin-1"))) is not None:
            await send_json(send, refused.status, refused.body, list(refused.headers))
        elif path in SCORING_PATHS and await Readiness.first_load(STARTUP_WAIT_SECONDS) and Readiness.not_ready_reason:
            # BentoML hides the message of any 5xx raised in an endpoint; say it here instead.
            await send_json(send, 503, {"error": f"not ready: {Readiness.not_ready_reason}"})
        elif (refused := self.gate.body(headers.get(b"content-type"))) is not None:
            await send_json(send, refused.status, refused.body)
        elif (body := await read_body(scope, receive, self.max_body_bytes)) is None:
            said = (
                f"request body over {self.max_body_bytes:,} bytes (serving.max_body_bytes); send fewer "
                "households per request"
            )
            await send_json(send, 413, {"error": said})
        else:
            await self.app(scope, replay(body), rewritten(send, lambda status: status >= HTTP_BAD_REQUEST, error_body))


def _document(body: bytes) -> bytes:
    """BentoML's OpenAPI document made true (:func:`nonrecours.serving.openapi.truthful_document`)."""
    protected = {p for p in json.loads(body).get("paths", {}) if p not in OPEN_PATHS and p != "/"}
    return json.dumps(truthful_document(json.loads(body), protected)).encode()


@contextmanager
def answered() -> Iterator[None]:
    """The service's refusals as BentoML's statuses: the caller's to fix 400 (404 for what does not
    exist), not now 503."""
    try:
        yield
    except errors.NotFound as exc:
        raise NotFound(str(exc)) from None
    except errors.UserError as exc:
        raise InvalidArgument(str(exc)) from None
    except Unavailable as exc:
        raise ServiceUnavailable(str(exc)) from None


class OutcomeRequest(OutcomeIn, bentoml.IODescriptor):
    """Body of ``POST /outcomes``."""


class OutcomeBatchRequest(OutcomeBatchIn, bentoml.IODescriptor):
    """Body of ``POST /outcomes/batch``."""


class ScoringService:
    """One worker's service: its :class:`ScoringApi`, with the champion watched in a thread."""

    settings: Settings
    environment: Environment

    def __init__(self) -> None:
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] [nonrecours] %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        run = Run(self.settings, self.environment, secrets_file=self.environment.secrets_file)
        isolated = bentoml.metrics.Counter(
            name="nonrecours_isolated_batches",
            documentation="Batches that failed and were re-run one request at a time",
        )
        sizes = bentoml.metrics.Histogram(
            name="nonrecours_batch_households",
            documentation="Households per law-engine simulation in the API",
            buckets=BATCH_BUCKETS,
        )
        self.api = ScoringApi(
            self.settings,
            run.log,
            run.tracking_uri,
            on_isolate=isolated.inc,
            on_batch=sizes.observe,
            fault_household=self.environment.fault_household,
        )
        threading.Thread(target=self.api.watch_champion, name="champion-watch", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.api.is_ready()

    def _sender(self, ctx: bentoml.Context) -> str:
        return key_id(ctx.request.headers.get("authorization", ""))


def _campaign_endpoint(settings: Settings):
    """``POST /campaign``, for an agency whose worklist comes from elsewhere: at most
    ``max_households_per_request`` households, as for ``/score`` (annotations as objects, so
    BentoML sees the limits). The shares are documented with the settings' range and checked by
    the settings, so that a refused share reads as it does for ``nonrecours campaign``."""

    def campaign(self, households, capacity, seed=0, holdout_share=None, exploration_share=None, priorities=None):
        """Pick whom to contact among these households, with a randomised holdout (not contacted,
        drawn within rank strata) and a share of exploration below the cut. Ranked by
        `priorities` (one per household, in order: the agency's own worklist) or else by the
        champion's expected unclaimed amount. Every campaign household is logged with its arm;
        name the campaign_id and decision_id in each outcome."""
        with answered():
            return self.api.campaign(households, capacity, seed, holdout_share, exploration_share, priorities)

    campaign.__annotations__ = campaign_arguments(settings.serving.max_households_per_request)
    return campaign


def _score_endpoint(limit: int):
    """``POST /score``, refusing more than ``limit`` households. Its annotations are objects, not
    strings (this module's annotations are postponed), so BentoML sees the limit."""

    async def score(self, households):
        """Score households: per benefit, the probability of an unclaimed entitlement, the amount
        at stake, their product and the reasons. Every household is logged before the answer.
        Concurrent requests share one law-engine simulation (:mod:`nonrecours.serving.batching`)."""
        with answered():
            return await self.api.score(households)

    score.__annotations__ = score_arguments(limit)
    return score


def build_service(settings: Settings, environment: Environment):
    """The BentoML service class, its workers, request limit and the settings every worker uses
    taken from ``settings`` (decorator arguments are fixed when a class is made, hence a factory)."""
    loaded, given = settings, environment
    traffic = {"timeout": REQUEST_TIMEOUT_SECONDS, "max_concurrency": MAX_CONCURRENCY}

    @bentoml.service(name="nonrecours", workers=settings.serving.workers, traffic=traffic)
    class Scoring(ScoringService):
        settings = loaded
        environment = given

        score = bentoml.api(_score_endpoint(settings.serving.max_households_per_request))
        campaign = bentoml.api(_campaign_endpoint(settings), route="/campaign")

        @bentoml.api(route="/outcomes", input_spec=OutcomeRequest)
        def outcomes(self, ctx: bentoml.Context, **fields) -> OutcomeAck:
            """Record what happened after a contact, against the decision it names (else the
            household's latest score). A repeated idempotency_key is recorded once."""
            with answered():
                return self.api.outcomes([fields], self._sender(ctx))[0]

        @bentoml.api(route="/outcomes/batch", input_spec=OutcomeBatchRequest)
        def outcomes_batch(self, ctx: bentoml.Context, outcomes: list) -> list[OutcomeAck]:
            """Record many outcomes in one transaction: all of them, or none (the error names the first refused)."""
            given = [o.model_dump() if hasattr(o, "model_dump") else o for o in outcomes]
            with answered():
                return self.api.outcomes(given, self._sender(ctx))

    Scoring.mount_asgi_app(_web_page(settings), path=WEB_PATH)  # type: ignore[attr-defined]  # added by @bentoml.service
    Scoring.add_asgi_middleware(  # type: ignore[attr-defined]  # added by @bentoml.service
        ApiKeyMiddleware,
        environment=environment,
        max_body_bytes=settings.serving.max_body_bytes,
        rate_limit_per_minute=settings.serving.rate_limit_per_minute,
    )
    return Scoring


def _web_page(settings: Settings):
    """The agents' web page, reading the worker's own decision log and champion."""

    def champion():
        served = bentoml.get_current_service().api.champion
        return None if served is None else (settings.registry.model_name, served.version, served.run_id, served.scorer)

    return build_web_app(settings, Sources(log=lambda: bentoml.get_current_service().api.log, champion=champion))


def service_from_environment(env: Environment):
    """The service as a server process builds it: settings from ``NONRECOURS_CONFIG``, if set."""
    return build_service(load_settings(env.config), env)
