"""The one typed configuration of nonrecours.

Where it sits: in the core. Built once at the edge (the CLI, or the service's entry point) from
these defaults, an optional YAML file and command-line options, then passed down to every stage.
Every default lives here and nowhere else: the CLI's help, the MLproject's parameters
(:mod:`nonrecours.app.mlproject`) and the service's class settings derive from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from nonrecours.core.errors import UserError
from nonrecours.core.schema import BENEFITS

MAX_CAMPAIGN_SHARE = 0.9
"""Largest holdout or exploration share of a campaign (``campaign`` settings, ``nonrecours campaign``,
``POST /campaign``): past it a campaign contacts fewer than one in ten of the households it picks."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScenarioConfig(_Frozen):
    """The synthetic population: its size and seed, who holds the observed data, and so which
    benefits' receipt it can see."""

    households: int = Field(default=20_000, ge=1, description="Households to draw.")
    seed: int = Field(default=2026, description="Seed of the population: the same seed gives the same files.")

    observed_benefits: tuple[str, ...] = Field(
        default=("rsa", "ppa", "aide_logement", "af", "aah"),
        description="Benefits whose receipt the data holder sees. Default: a CAF-like holder, "
        "which pays these and sees neither health cover (css_*) nor pension-fund benefits (aspa).",
    )
    quarters: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Consecutive quarters of the same households written by one generation: the current one in "
        "--out, the next in OUT/next_quarter (each a complete raw folder, with its own truth).",
    )
    reported_event_share: float = Field(
        default=0.35,
        ge=0,
        le=1,
        description="Share of recent life events already reported to the agency (assumption).",
    )
    calibration: Path | None = Field(
        default=None,
        description="A territory's own calibration: a partial YAML in the shape of the shipped "
        "calibration.yaml, deep-merged "
        "over it (reach, help, barriers, non-take-up...); the population folder records the merged calibration "
        "(world.yaml). "
        "Default: the shipped one.",
    )

    @field_validator("observed_benefits", mode="before")
    @classmethod
    def _listed(cls, v: object) -> object:
        """``rsa,ppa`` (the command line's form) is ``("rsa", "ppa")``."""
        return tuple(b.strip() for b in v.split(",") if b.strip()) if isinstance(v, str) else v

    @field_validator("observed_benefits")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(v) - set(BENEFITS))
        if unknown:
            raise ValueError(f"unknown benefit(s) {unknown}; known: {list(BENEFITS)}")
        return v


class LawConfig(_Frozen):
    """How the law engine is run."""

    reference_month: str = Field(
        default="2025-06",
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="Month (YYYY-MM) for which entitlements are computed.",
    )
    partition_size: int = Field(
        default=10_000,
        ge=1,
        description="Households per OpenFisca simulation (one simulation per partition). "
        "bench/generate_scale.py measured about 0.75 ms per household with two workers at 10,000.",
    )
    workers: int = Field(default=2, ge=1, description="Local worker processes when no Dask scheduler is given.")
    min_households_per_worker: int = Field(
        default=200,
        ge=1,
        description="Batch scoring gives every local worker a partition of its own once each would get this many "
        "households (a simulation costs about a second whatever its size, so smaller shares are not worth a process).",
    )


class TrainingConfig(_Frozen):
    """The non-take-up model, its split and its evaluation."""

    seed: int = Field(default=2026, description="Seed of the household split and of LightGBM.")
    valid_share: float = Field(default=0.15, gt=0, lt=0.5, description="Households kept for early stopping.")
    test_share: float = Field(
        default=0.2, gt=0, lt=0.5, description="Households kept for evaluation and the promotion gate."
    )
    capacity_share: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description="Outreach capacity per quarter, as a share of the households ranked (1%): "
        'k = capacity x households rows of the ranking, one contact each, is the cut of every "at k" figure.',
    )
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2)
    min_child_samples: int = Field(default=40, ge=1)
    feature_fraction: float = Field(
        default=0.9, gt=0, le=1, description="Share of features LightGBM draws for each tree."
    )
    bagging_fraction: float = Field(
        default=0.9, gt=0, le=1, description="Share of rows LightGBM draws for each bagging round."
    )
    bagging_freq: int = Field(default=1, ge=0, description="Bagging every this many rounds (0: never).")
    num_threads: int = Field(
        default=2,
        ge=1,
        description="LightGBM's threads on one machine (the machine's cores); lightgbm.dask sets its own.",
    )
    max_rounds: int = Field(
        default=2000, ge=1, description="Upper bound on boosting rounds; early stopping ends sooner."
    )
    early_stopping_rounds: int = Field(default=50, ge=1)


class RegistryConfig(_Frozen):
    """MLflow tracking, the registry and the promotion gate."""

    tracking_uri: str = Field(
        default="sqlite:///mlflow.db",
        description="MLflow tracking URI (MLflow 3's own default: a SQLite file with local artifacts). "
        "MLFLOW_TRACKING_URI overrides it, --tracking-uri overrides both.",
    )
    experiment: str = Field(default="nonrecours")
    model_name: str = Field(default="nonrecours", description="Registered model name.")
    outreach_model_name: str = Field(
        default="nonrecours-outreach",
        description="Registered name of the need and uplift models `train --labels observed` fits; "
        "its @champion (set by the gate on the campaign's off-policy estimates) ranks `campaign --ranking "
        "need|uplift` and `score --ranking need|uplift`.",
    )
    request_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Timeout of each call to an MLflow tracking server and of each artifact download "
        "(MLflow's own default: 120 s, retried 7 times with backoff, so a hung server blocked a model load for "
        "minutes).",
    )
    request_max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed MLflow call (with MLflow's exponential backoff)."
    )
    promotion_log: str | None = Field(
        default=None,
        description="Append-only log of every promotion decision (also kept as model-version "
        "tags). Default: promotions.jsonl beside a SQLite tracking store, else in the working folder.",
    )


class ServingConfig(_Frozen):
    """The scoring API, batch worklists and the decision log. Secrets (the pseudonymisation key,
    API keys) are never settings: they come from the environment or a secrets file."""

    decision_log_url: str = Field(
        default="sqlite:///decisions.db",
        description="SQLAlchemy URL of the decision log: SQLite (WAL mode) by default, "
        "postgresql+psycopg://user@host/db for a shared one. NONRECOURS_DECISION_LOG_URL overrides it.",
    )
    model_alias: str = Field(default="champion", description="Registry alias the API and batch scoring load.")
    reasons_per_score: int = Field(default=3, ge=1, le=10, description="Reasons given with each score.")
    language: Literal["fr", "en"] = Field(
        default="fr",
        description="Language of the reasons in words (API, worklist, campaign) and of the agents' web page "
        "(core/nonrecours/core/messages/<language>.yaml): French for agents and auditors, English for data scientists.",
    )
    max_households_per_request: int = Field(
        default=1000,
        ge=1,
        description="Larger requests are refused (400): score an extract with `nonrecours score` instead.",
    )
    workers: int = Field(
        default=2,
        ge=1,
        description="API worker processes, each with its own model, OpenFisca and batching queue: one per "
        "core, since a simulation runs on one core.",
    )
    max_batch_size: int = Field(
        default=200,
        ge=1,
        description="Households the API scores in one law-engine simulation at most (a single larger request "
        "still runs whole).",
    )
    batch_linger_ms: int = Field(
        default=30,
        ge=0,
        le=5_000,
        description="How long the API waits after a request for others to share its simulation (serving/batching.py). "
        "A lone request pays it once; under load it merges the clients just answered into the next batch.",
    )
    readiness_retry_seconds: float = Field(
        default=10.0, gt=0, description="How often a not-ready service looks for a champion again."
    )
    champion_refresh_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often a ready service checks whether the champion alias has moved; a new champion is "
        "loaded beside "
        "the old one, then swapped in between batches (no request fails). 0: never (restart to change model).",
    )
    signin_max_failures: int = Field(
        default=5, ge=1, description="Wrong passwords in a row after which an agent's web-page account is locked."
    )
    signin_lockout_minutes: int = Field(
        default=15, ge=1, description="How long a locked agent's account refuses every password, the right one too."
    )
    reuse_law_results_days: int = Field(
        default=31,
        ge=0,
        description="The API takes the law engine's answer from a decision of the last N days when the "
        "household's inputs are the same "
        "(a keyed digest of them, the law engine's version and the reference month): agents mostly open "
        "households the nightly worklist "
        "scored, and OpenFisca costs about a second per request. The model and reasons still run; the answer "
        "says which it was. 0: always compute.",
    )
    partition_households: int = Field(
        default=10_000,
        ge=1,
        description="Households per partition in batch scoring (one simulation each), as law.partition_size: a "
        "simulation has a fixed cost "
        "of about 1.2 s whatever its size (bench/profile_law.py), so 5,000 paid it twice as often.",
    )
    max_waiting_households: int = Field(
        default=5_000,
        ge=1,
        description="Households a worker lets wait for a simulation; past that /score answers 503 (try again) "
        "rather than queue without bound.",
    )
    max_body_bytes: int = Field(
        default=16_000_000,
        ge=1_000,
        description="Largest request body the API reads (413 beyond it), checked before any parsing: "
        "1,000 households of the shipped example weigh 1.07 MB (measured: its six households repeated, as JSON).",
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=1,
        description="Requests a minute one API key may make to each worker (bursts up to as many); past it 429 "
        "with Retry-After, "
        "and the key's id in the log.",
    )
    decision_log_retention_days: int = Field(
        default=730,
        ge=30,
        description="Days a decision, its outcomes and its audit attributes are kept; `nonrecours purge` "
        "removes older ones (run it daily). "
        "730 (two years) is an assumption to set with the agency's data-protection officer: long enough for a "
        "campaign's next-quarter "
        "follow-up and a year of drift comparison, no longer (GDPR art. 5(1)(e)).",
    )
    decision_log_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Connect and statement timeout on the decision log's database: past it a write fails "
        "(the request gets 503, nothing is scored unlogged) instead of blocking a batch.",
    )


class MonitoringConfig(_Frozen):
    """Thresholds of `nonrecours monitor`: a breach makes the command exit 1, so a scheduler can alert."""

    max_drift_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of monitored columns (household features, per-benefit scores and law amounts) "
        "Evidently may find drifted. Measured on 3,000 households: another seed of the same population 0.0; a 30% pay "
        "cut for a third of households 0.11.",
    )
    max_roc_auc_drop: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Largest fall of ROC AUC from the reference window to the current one, both with known "
        "outcomes (an Evidently test).",
    )
    max_recall_drop: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="Largest fall of recall on the outreach list (the top capacity share) from the reference "
        "window to the current one (an Evidently test).",
    )


class FairnessConfig(_Frozen):
    """Per-group recall, one definition for the promotion gate and for monitoring: missing
    entitled people is the harm measured first."""

    max_group_recall_gap: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="Largest gap between the best and worst group recall at k within an audited attribute: "
        "above it the gate keeps a model challenger and a monitoring report fails.",
    )
    min_group_positives: int = Field(
        default=30, ge=1, description="Groups with fewer people missing an entitlement are reported, not gated."
    )
    bootstrap_samples: int = Field(
        default=200,
        ge=0,
        description="Resamples behind each group's 90% interval, in training runs and monitoring reports.",
    )


class CampaignConfig(_Frozen):
    """`nonrecours campaign`: how contacts are chosen, so that what the agency learns next is not
    only what its last ranking chose."""

    ranking: Literal["champion", "rules", "need", "uplift"] = Field(
        default="champion",
        description="What ranks the extract: `champion` (the registered model), `rules` (the law engine's "
        "amount where eligible on the agency's data "
        "and not seen receiving: the cold start, before any outcome is recorded), or the models of a `train "
        "--labels observed` run (--model-run): "
        "`need` (P(right opened | contacted) x amount) or `uplift` (what a contact adds x amount).",
    )
    holdout_share: float = Field(
        default=0.2,
        ge=0,
        le=MAX_CAMPAIGN_SHARE,
        description="Share of the top of the ranking set aside at random, within rank strata, and not contacted: "
        "its claims in the next extract measure what the campaign caused.",
    )
    exploration_share: float = Field(
        default=0.1,
        ge=0,
        le=MAX_CAMPAIGN_SHARE,
        description="Share of the contacts spent at random among households below the cut that the law "
        "engine finds eligible, so the next model sees outcomes outside this ranking's top.",
    )
    strata: int = Field(
        default=5, ge=1, description="Rank strata the holdout is drawn within (the same share in each)."
    )


Learner = Literal["recalibrated", "boosted", "boosted-whole"]
"""A correction of the prior the loop can learn (:mod:`nonrecours.training.correction`)."""


class LoopConfig(_Frozen):
    """`nonrecours loop`: the campaign design and the gate of the agency's loop, chosen by their
    value over many rounds in worlds the prior never saw (``python -m bench.loop``, in the
    data scientists' guide)."""

    holdout_share: float = Field(
        default=0.1,
        ge=0,
        le=MAX_CAMPAIGN_SHARE,
        description="Share of the top of the loop's ranking set aside at random each round: what the contacts "
        "caused is measured against it.",
    )
    exploration_share: float = Field(
        default=0.1,
        ge=0,
        le=MAX_CAMPAIGN_SHARE,
        description="Share of each round's contacts drawn at random in the exploration band below the cut.",
    )
    exploration_band: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="The households ranked just below the cut that exploration draws from, as a multiple of the "
        "capacity: a narrow band gives each of them a larger chance of a contact, so the gate can judge the "
        "rankings that differ from the one in play at its margin.",
    )
    learners: tuple[Learner, ...] = Field(
        default=("boosted",),
        min_length=1,
        description="The corrections learnt each round, each a challenger at the gate (with the rules, and the "
        "prior alone when it is not in play). `boosted` alone by default: in the bench's worlds it found the room "
        "and the others did not, and every extra candidate widens the gate's bound (Bonferroni).",
    )
    pair_contender: bool = Field(
        default=True,
        description="When the gate keeps the ranking in play, the next campaign randomises half and half the "
        "households where the best challenger and the ranking in play disagree (the ranking's picks the "
        "challenger drops, and the challenger's own): the comparison the gate makes next is then measured "
        "with propensities near one half, not 0.9 and 0.1.",
    )
    gate_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="The chance, when no challenger is better, that the gate replaces the ranking in play anyway "
        "(over all of a round's candidates: each is tested at gate_alpha / candidates, one-sided).",
    )


class WebConfig(_Frozen):
    """The agents' web page (``nonrecours serve``, at /agents)."""

    page_size: int = Field(default=50, ge=10, le=500, description="Households per page of the caseload.")
    session_hours: float = Field(
        default=10.0,
        gt=0,
        le=24,
        description="How long an agent stays signed in (a working day); signing out ends it at once.",
    )
    secure_cookies: Literal["auto", "always"] = Field(
        default="auto",
        description="`auto`: the session cookie is Secure when the request came over HTTPS "
        "(directly or as X-Forwarded-Proto from a TLS proxy); `always`: Secure whatever the request says.",
    )


class Settings(_Frozen):
    """Everything a run needs; build it with :func:`load_settings`."""

    scenario: ScenarioConfig = ScenarioConfig()
    law: LawConfig = LawConfig()
    training: TrainingConfig = TrainingConfig()
    registry: RegistryConfig = RegistryConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    fairness: FairnessConfig = FairnessConfig()
    campaign: CampaignConfig = CampaignConfig()
    loop: LoopConfig = LoopConfig()
    web: WebConfig = WebConfig()


class SettingsError(UserError, ValueError):
    """Settings that the typed configuration refuses; the message names each field and why."""


def describe(error: Mapping[str, Any]) -> str:
    """One validation error in words, ``path.to.field: why (got value)``: the one wording of a refused
    value, for settings, options and request bodies alike."""
    where = ".".join(str(part) for part in error.get("loc", ()))
    said = str(error.get("msg", ""))
    if "input" in error and not isinstance(error["input"], (dict, list)):
        said += f" (got {error['input']!r})"
    return f"{where}: {said}" if where else said


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Defaults, then the YAML file at ``path`` if any, then ``overrides`` as ``section__field``;
    :class:`SettingsError` names every refused field."""
    data: dict[str, dict[str, object]] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping of sections, got {type(loaded).__name__}")
        data = {k: dict(v or {}) for k, v in loaded.items()}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition("__")
        data.setdefault(section, {})[field] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError("; ".join(describe(e) for e in exc.errors())) from None


def section(name: str, base: BaseModel | None = None, **fields: object) -> Any:
    """Settings section ``name`` (``base``, else its defaults) with ``fields`` replaced (None: kept),
    validated as :func:`load_settings` validates it, with the same messages: what a request or a
    plan that takes a setting's value checks it with."""
    model: Any = Settings.model_fields[name].annotation  # a section's class
    data = {**(base or model()).model_dump(), **{k: v for k, v in fields.items() if v is not None}}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SettingsError("; ".join(describe({**e, "loc": (name, *e["loc"])}) for e in exc.errors())) from None


def _field(section: str, field: str) -> FieldInfo:
    model: Any = Settings.model_fields[section].annotation  # a section's class
    return model.model_fields[field]


BOUNDS = {annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le", annotated_types.Lt: "lt"}


def bounds(section: str, field: str) -> dict[str, float]:
    """A numeric setting's bounds as ``Field`` keywords (``{"ge": 0, "le": 0.9}``), so that a request
    model that takes the same value declares the same range."""
    found: dict[str, float] = {}
    for item in _field(section, field).metadata:
        for kind, keyword in BOUNDS.items():
            if isinstance(item, kind):
                found[keyword] = getattr(item, keyword)
    return found


def _range(section: str, field: str) -> str:
    """``0<=x<=0.9``, ``1<=x``, ``0<x<0.5`` (as typer writes a range), or "" when unbounded."""
    b = bounds(section, field)
    low = f"{b['ge']}<=" if "ge" in b else f"{b['gt']}<" if "gt" in b else ""
    high = f"<={b['le']}" if "le" in b else f"<{b['lt']}" if "lt" in b else ""
    return f", {low}x{high}" if low or high else ""


def field_help(section: str, field: str) -> str:
    """A setting's description, default and range, for the CLI's ``--help`` (the one place they live)."""
    info = _field(section, field)
    text = (info.description or "").rstrip(".")
    shown = ",".join(info.default) if isinstance(info.default, tuple) else info.default
    said = f"default {shown}{_range(section, field)}; settings: {section}.{field}"
    return f"{text} ({said})." if text else f"{said}."


def default(section: str, field: str) -> object:
    """A setting's default value."""
    return _field(section, field).default


def without_password(url: str) -> str:
    """A database or tracking URL fit to print or log: the password masked (an unparseable one is
    shown as given)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
