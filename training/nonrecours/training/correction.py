"""A prior plus a shrunk correction: what the outreach loop ranks by, learnt from the outcomes of
every campaign an agency ran.

Where it sits: the learning step of the loop (:mod:`nonrecours.serving.loop`). Pure, and no column
of role ``truth`` is read: the rows are :func:`nonrecours.training.observed.observed_rows` of every
round pooled (a campaign household and a benefit it was checked for, its arm and propensity, the
result an agent recorded, the next extract's receipt), with ``unit``, the household's id in the
extract, so that the folds of cross-fitting keep a household's rounds together.

The value of contacting a household is ``sum_b amount_b x tau_b`` (``LEARNING.md``). The prior
says, per profile row, how likely a right is open (the champion's P(entitled and not claiming),
or the rules: eligible on the agency's data and not seen receiving) and the amount. What a
contact changes is decomposed into what an agent's record reveals:

    tau = P(open | x) x P(reached | x) x (P(claims | reached, x) - s)

- ``open``: the right is there and not claimed (every checked benefit of a contacted household
  labels it: ``not_entitled`` and ``already_receiving`` against the others);
- ``reached``: the contact reached the household (``unreachable`` against ``opened``/``declined``);
- ``claims``: reached, a claim follows (``opened`` against ``declined``);
- ``s``: the share of open rights claimed by next quarter without a contact (the holdout's and the
  pool's receipts, on the benefits the agency sees).

With no labels each part is the prior (a constant for reach and claim), so the ranking is the
prior's exactly. A learner (:data:`LEARNERS`) fits:

- ``recalibrated``: each part a constant per benefit, shrunk to the pooled one by pseudo-counts
  (a low-dimensional recalibration of the prior);
- ``boosted``: each part boosted from the prior's logit (LightGBM ``init_score``), shallow trees, few
  rounds, their number chosen by early stopping on cross-fitted folds of households: zero rounds,
  no correction, when held-out households are not predicted better than by the prior;
- ``boosted-whole``: one model of the whole, P(opened | contacted), boosted from the prior's
  P(open) x reach x claim the same way (to measure what the decomposition adds).

Every fit is also made once per fold without that fold's households (:meth:`Corrected.value` with
``held_out=True``), so a gate judges each household by a model that never saw its outcomes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import get_args

import lightgbm as lgb
import numpy as np
import pandas as pd

from nonrecours.core.config import Learner
from nonrecours.training.baselines import rules_value
from nonrecours.training.model import CATEGORICAL, Scorer, model_frame

LEARNERS: tuple[str, ...] = get_args(Learner)
CONTACT_HISTORY = ("last_contact", "quarters_since_contact")
"""What the agency knows of its own earlier contacts with a household (:func:`contact_history`), a
correction's features beside the profile's: a household reached last quarter that declined, or one
no contact reaches, is worth less than the prior says."""
LAST_CONTACT = ("never", "opened", "declined", "unreachable", "no_right")
OPEN_RESULTS = ("unreachable", "opened", "declined")
"""The results that say a right was open (entitled, not claiming) when the agent checked."""
RULES_OPEN, RULES_CLOSED = 0.9, 0.01
"""The rules as a probability of an open right: flagged rows, the others."""
DEFAULT_REACH, DEFAULT_CLAIM = 0.5, 0.5
"""Reach and claim with no label yet: any constant keeps the prior's order."""
PSEUDO_COUNTS = 30.0
"""A constant's shrinkage: this many labels' worth of the pooled (or default) value."""
FOLDS = 3
MIN_LABELS = 60
"""Below this many labelled rows (or with one class only) a part gets no boosted correction."""
BOOST_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 40,
    "lambda_l2": 10.0,
    "feature_fraction": 0.8,
    "max_cat_to_onehot": 8,
    "cat_smooth": 20.0,
    "min_data_per_group": 40,
    "verbose": -1,
    "num_threads": 1,  # a few thousand rows: a second thread costs more than it gives
    "deterministic": True,
    "force_row_wise": True,
}
MAX_ROUNDS = 300
PATIENCE = 20
EPS = 1e-4
HOLDOUT_WEIGHT_CAP = 0.99
"""A control row's weight is 1 / (1 - propensity), its propensity capped here."""
SPONTANEOUS_CAP = 0.5
"""A claim without contact never counts for more than half a reached household's."""
GOLDEN, MIXER, SHIFT = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 33
"""A 64-bit mix (splitmix64's constants): a household's fold from its id, evenly spread."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def fold_of(units: np.ndarray, seed: int, folds: int = FOLDS) -> np.ndarray:
    """A household's fold, from its id and the seed alone: the same household falls in the same fold
    in every round, and a household never labelled has one too."""
    u = np.asarray(units, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping around 2**64 is the mix
        mixed = (u + np.uint64(seed) * np.uint64(GOLDEN)) * np.uint64(MIXER)
    return ((mixed >> np.uint64(SHIFT)) % np.uint64(folds)).astype(int)


def contact_history(rows: pd.DataFrame, households: np.ndarray, now: int) -> pd.DataFrame:
    """Per household of ``households`` (index), what the agency's earlier rounds' rows (``round`` <
    ``now``) say of its last contact: ``last_contact`` (a right opened; else reached and declined;
    else unreachable; else no right open; ``never``) and ``quarters_since_contact``."""
    earlier = rows[(rows["round"] < now) & rows["contacted"].to_numpy(dtype=bool) & rows["result"].notna()]
    out = pd.DataFrame(
        {"last_contact": "never", "quarters_since_contact": np.nan}, index=pd.Index(households, name="household_id")
    )
    if earlier.empty:
        return out
    last = earlier[earlier["round"] == earlier.groupby("unit")["round"].transform("max")]
    result = last["result"].astype("object")
    telling = LAST_CONTACT[1:]  # the most telling result of the household's benefits first
    rank = np.select([result == r for r in telling[:-1]], list(range(len(telling) - 1)), len(telling) - 1)
    best = pd.Series(rank, index=last.index).groupby(last["unit"].to_numpy()).min()
    when = last.groupby("unit")["round"].max()
    known = best.index.intersection(out.index)
    out.loc[known, "last_contact"] = np.array(telling)[best.loc[known].to_numpy()]
    out.loc[known, "quarters_since_contact"] = (now - when.loc[known]).to_numpy(dtype=float)
    return out


def without_opened(profiles: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``profiles`` less the benefits an earlier contact opened (``result`` ``opened`` in the
    agency's ``rows``, by ``unit``): the agency follows that claim as a case, and the next extract
    may not show it paid yet; ranked or labelled again, its pending payment would pass for a claim
    made without a contact."""
    opened = rows.loc[rows["result"].astype("object") == "opened", ["unit", "benefit"]]
    if opened.empty:
        return profiles
    done = pd.MultiIndex.from_arrays([opened["unit"].to_numpy(), opened["benefit"].astype("object").to_numpy()])
    mine = pd.MultiIndex.from_arrays([profiles["household_id"].to_numpy(), profiles["benefit"].astype("object")])
    return profiles[~mine.isin(done)].reset_index(drop=True)


def correction_frame(profiles: pd.DataFrame) -> pd.DataFrame:
    """A correction's input: the model's features and the contact history (``never`` where the
    profiles carry none)."""
    X = model_frame(profiles)
    last = profiles["last_contact"] if "last_contact" in profiles.columns else pd.Series("never", index=profiles.index)
    since = profiles.get("quarters_since_contact", pd.Series(np.nan, index=profiles.index))
    X["last_contact"] = pd.Categorical(last.astype("object").to_numpy(), categories=list(LAST_CONTACT))
    X["quarters_since_contact"] = since.to_numpy(dtype=float)
    return X


def with_history(profiles: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """``profiles`` with their household's contact history (:func:`contact_history`)."""
    h = history.reindex(profiles["household_id"].to_numpy())
    return profiles.assign(
        last_contact=h["last_contact"].fillna("never").to_numpy(),
        quarters_since_contact=h["quarters_since_contact"].to_numpy(),
    )


@dataclass(frozen=True)
class Prior:
    """What the loop starts from: the champion's P(entitled and not claiming) and amounts, or, with
    no champion, the rules."""

    name: str
    scorer: Scorer | None = None

    def open_probability(self, profiles: pd.DataFrame) -> np.ndarray:
        if self.scorer is None:
            return np.where(rules_value(profiles) > 0, RULES_OPEN, RULES_CLOSED)
        return self.scorer.predict(profiles)

    def amount(self, profiles: pd.DataFrame) -> np.ndarray:
        if self.scorer is None:
            return profiles["law_amount"].to_numpy(dtype=float)
        return self.scorer.estimated_amount(profiles)


class Prepared:
    """A profiles frame with what every ranking computes from it, computed once: the model's
    matrix, the benefits, and per prior its P(open) and amounts (a loop's gate scores every round's
    extract with every candidate)."""

    def __init__(self, profiles: pd.DataFrame):
        self.profiles = profiles
        self.households = profiles["household_id"].to_numpy()
        self.benefit = profiles["benefit"].astype("object").to_numpy()
        self._X: pd.DataFrame | None = None
        self._prior: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def X(self) -> pd.DataFrame:
        if self._X is None:
            self._X = correction_frame(self.profiles)
        return self._X

    def prior(self, prior: Prior) -> tuple[np.ndarray, np.ndarray]:
        """``prior``'s P(open) and amount per row."""
        if prior.name not in self._prior:
            self._prior[prior.name] = (prior.open_probability(self.profiles), prior.amount(self.profiles))
        return self._prior[prior.name]


def prepared(profiles: pd.DataFrame | Prepared) -> Prepared:
    return profiles if isinstance(profiles, Prepared) else Prepared(profiles)


@dataclass(frozen=True)
class Boost:
    """A part's correction in log-odds: a booster (None: zero) over the model's features, and the
    booster of each fold fitted without that fold."""

    booster: lgb.Booster | None = None
    folds: tuple[lgb.Booster | None, ...] = ()
    rounds: int = 0

    def delta(self, X: pd.DataFrame, fold: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros(len(X))
        if fold is None:
            if self.booster is not None:
                out = np.asarray(self.booster.predict(X, raw_score=True))
            return out
        for f, booster in enumerate(self.folds):
            where = fold == f
            if booster is not None and where.any():
                out[where] = np.asarray(booster.predict(X[where], raw_score=True))
        return out

    def to_strings(self) -> dict[str, str]:
        models = {"all": self.booster, **{f"fold{f}": b for f, b in enumerate(self.folds)}}
        return {k: b.model_to_string() for k, b in models.items() if b is not None}


def _dataset(X: pd.DataFrame, y: np.ndarray, init: np.ndarray) -> lgb.Dataset:
    return lgb.Dataset(
        X,
        label=y,
        init_score=init,
        categorical_feature=[*CATEGORICAL, "last_contact"],
        free_raw_data=False,
        params={"verbose": -1},
    )


def _logloss(y: np.ndarray, z: np.ndarray) -> float:
    p = np.clip(_sigmoid(z), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def boost(X: pd.DataFrame, y: np.ndarray, init: np.ndarray, fold: np.ndarray, seed: int) -> Boost:
    """Boosting from ``init`` (the prior's log-odds): per fold, trees fitted on the other folds until
    the held-out fold's log-loss stops falling (never more than the prior's own if no tree helps:
    zero trees); then the mean of those counts fitted on every row. Too few labels: no correction."""
    y = np.asarray(y, dtype=float)
    if len(y) < MIN_LABELS or len(np.unique(y)) < 2:
        return Boost()
    params = {**BOOST_PARAMS, "seed": seed}
    best: list[int] = []
    fold_models: list[lgb.Booster | None] = []
    for f in range(FOLDS):
        train, valid = fold != f, fold == f
        if valid.sum() == 0 or len(np.unique(y[train])) < 2:
            best.append(0)
            fold_models.append(None)
            continue
        curve: dict = {}
        booster = lgb.train(
            params,
            _dataset(X[train], y[train], init[train]),
            num_boost_round=MAX_ROUNDS,
            valid_sets=[_dataset(X[valid], y[valid], init[valid])],
            valid_names=["held_out"],
            callbacks=[lgb.early_stopping(PATIENCE, verbose=False), lgb.record_evaluation(curve)],
        )
        losses = np.concatenate([[_logloss(y[valid], init[valid])], curve["held_out"]["binary_logloss"]])
        n = int(np.argmin(losses))
        best.append(n)
        fold_models.append(None if n == 0 else lgb.Booster(model_str=booster.model_to_string(num_iteration=n)))
    rounds = round(float(np.mean(best)))
    full = None
    if rounds > 0:
        full = lgb.train(params, _dataset(X, y, init), num_boost_round=rounds)
    return Boost(full, tuple(fold_models), rounds)


def _shrunk(hits: float, n: float, toward: float) -> float:
    return float((hits + PSEUDO_COUNTS * toward) / (n + PSEUDO_COUNTS))


@dataclass(frozen=True)
class Parts:
    """Each part's constant (pooled, shrunk) and per-benefit constants (``recalibrated`` only)."""

    reach: float = DEFAULT_REACH
    claim: float = DEFAULT_CLAIM
    spontaneous: float = 0.0
    open_scale: dict[str, float] = field(default_factory=dict)
    reach_by_benefit: dict[str, float] = field(default_factory=dict)
    claim_by_benefit: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Corrected:
    """The prior and its correction: per profile row, the euros a month a contact adds."""

    prior: Prior
    learner: str
    parts: Parts = Parts()
    held_parts: tuple[Parts, ...] = ()
    open: Boost = Boost()
    reach: Boost = Boost()
    claim: Boost = Boost()
    seed: int = 0
    labels: int = 0

    @property
    def name(self) -> str:
        return self.prior.name if self.is_prior else f"{self.prior.name} + {self.learner} correction"

    @property
    def is_prior(self) -> bool:
        """No label moved it: its order is the prior's."""
        return self.labels == 0

    def _constants(self, benefit: np.ndarray, fold: np.ndarray | None) -> dict[str, np.ndarray]:
        """Per row, each part's constant: the pooled ones, or (``fold`` given) those fitted without
        the row's fold."""
        choices = [self.parts] if fold is None else list(self.held_parts) or [self.parts] * FOLDS
        where = np.zeros(len(benefit), dtype=int) if fold is None else fold
        out = {k: np.zeros(len(benefit)) for k in ("scale", "reach", "claim", "spontaneous")}
        for f, p in enumerate(choices):
            m = where == f
            out["scale"][m] = [p.open_scale.get(b, 1.0) for b in benefit[m]]
            out["reach"][m] = [p.reach_by_benefit.get(b, p.reach) for b in benefit[m]]
            out["claim"][m] = [p.claim_by_benefit.get(b, p.claim) for b in benefit[m]]
            out["spontaneous"][m] = p.spontaneous
        return out

    def parts_of(self, profiles: pd.DataFrame | Prepared, *, held_out: bool = False) -> dict[str, np.ndarray]:
        """Per row: P(open), P(reached), P(claims | reached), s and the amount; with ``held_out``,
        each household's from the fits that did not see its fold."""
        p = prepared(profiles)
        X = p.X
        fold = fold_of(p.households, self.seed) if held_out else None
        base, amount = p.prior(self.prior)
        c = self._constants(p.benefit, fold)
        if self.learner == "boosted-whole":
            whole = _sigmoid(_logit(base * c["reach"] * c["claim"]) + self.open.delta(X, fold))
            return {
                "open": base,
                "reach": c["reach"],
                "claim": np.clip(whole / np.maximum(base * c["reach"], EPS), 0, 1),
                "spontaneous": c["spontaneous"],
                "amount": amount,
            }
        return {
            "open": _sigmoid(_logit(np.clip(base * c["scale"], 0, 1)) + self.open.delta(X, fold)),
            "reach": _sigmoid(_logit(c["reach"]) + self.reach.delta(X, fold)),
            "claim": _sigmoid(_logit(c["claim"]) + self.claim.delta(X, fold)),
            "spontaneous": c["spontaneous"],
            "amount": amount,
        }

    def value(self, profiles: pd.DataFrame | Prepared, *, held_out: bool = False) -> np.ndarray:
        """Per row, the euros a month a contact adds: amount x P(open) x P(reached) x (P(claims) - s)."""
        q = self.parts_of(profiles, held_out=held_out)
        effect = q["open"] * q["reach"] * np.maximum(q["claim"] - q["spontaneous"], 0.0)
        return q["amount"] * effect

    def outcome_model(self, profiles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row, expected euros claimed by next quarter without and with a contact (the pooled
        constants only: an AIPW score's outcome model, fitted on a handful of numbers)."""
        base = self.prior.open_probability(profiles) * self.prior.amount(profiles)
        p = self.parts
        mu0 = base * p.spontaneous
        mu1 = base * (p.reach * p.claim + (1 - p.reach) * p.spontaneous)
        return mu0, mu1

    def describe(self) -> dict:
        """What MLflow and the round's folder keep: the constants, the trees' counts, the labels."""
        return {
            "ranking": self.name,
            "prior": self.prior.name,
            "learner": self.learner,
            "labels": self.labels,
            "parts": self.parts.__dict__,
            "held_parts": [p.__dict__ for p in self.held_parts],
            "rounds": {"open": self.open.rounds, "reach": self.reach.rounds, "claim": self.claim.rounds},
        }

    def to_strings(self) -> dict[str, str]:
        """The correction's boosters (LightGBM text) and its description (JSON), by file name."""
        out = {"correction.json": json.dumps(self.describe(), indent=2, default=float)}
        for part in ("open", "reach", "claim"):
            for k, text in getattr(self, part).to_strings().items():
                out[f"{part}.{k}.txt"] = text
        return out

    @classmethod
    def from_strings(cls, prior: Prior, texts: dict[str, str], seed: int) -> Corrected:
        described = json.loads(texts["correction.json"])

        def booster(part: str, key: str) -> lgb.Booster | None:
            name = f"{part}.{key}.txt"
            return lgb.Booster(model_str=texts[name]) if name in texts else None

        boosts = {
            part: Boost(
                booster(part, "all"),
                tuple(booster(part, f"fold{f}") for f in range(FOLDS)),
                described["rounds"][part],
            )
            for part in ("open", "reach", "claim")
        }
        return cls(
            prior,
            described["learner"],
            Parts(**described["parts"]),
            tuple(Parts(**p) for p in described["held_parts"]),
            open=boosts["open"],
            reach=boosts["reach"],
            claim=boosts["claim"],
            seed=seed,
            labels=described["labels"],
        )


def starting_point(prior: Prior, seed: int) -> Corrected:
    """The ranking before any label: the prior, exactly."""
    return Corrected(prior, "recalibrated", seed=seed)


def _pooled_parts(rows: pd.DataFrame, base: np.ndarray, *, by_benefit: bool) -> Parts:
    """The constants of each part from the pooled labels, shrunk to the defaults (and, per benefit,
    to the pooled value)."""
    contacted = rows["contacted"].to_numpy(dtype=bool) & rows["result"].notna().to_numpy()
    result = rows["result"].astype("object").to_numpy()
    is_open = np.isin(result, OPEN_RESULTS)
    reached = is_open & (result != "unreachable")
    opened = result == "opened"
    benefit = rows["benefit"].astype("object").to_numpy()
    reach = _shrunk((contacted & reached).sum(), (contacted & is_open).sum(), DEFAULT_REACH)
    claim = _shrunk((contacted & opened).sum(), (contacted & reached).sum(), DEFAULT_CLAIM)
    control = ~rows["contacted"].to_numpy(dtype=bool) & rows["claimed_next"].notna().to_numpy()
    weights = 1 / (1 - rows["propensity"].to_numpy(dtype=float).clip(0, HOLDOUT_WEIGHT_CAP))
    seen = float((rows["claimed_next"].fillna(0).to_numpy() * weights)[control].sum())
    expected_open = float((base * weights)[control].sum())
    spontaneous = min(seen / (expected_open + PSEUDO_COUNTS), SPONTANEOUS_CAP * claim) if expected_open > 0 else 0.0
    parts = Parts(reach, claim, spontaneous)
    if not by_benefit:
        return parts
    open_rate = (contacted & is_open).sum() / max(base[contacted].sum(), EPS)
    scale, reach_b, claim_b = {}, {}, {}
    for b in np.unique(benefit):
        m = benefit == b
        scale[b] = _shrunk((contacted & is_open & m).sum(), base[contacted & m].sum(), open_rate)
        reach_b[b] = _shrunk((contacted & reached & m).sum(), (contacted & is_open & m).sum(), reach)
        claim_b[b] = _shrunk((contacted & opened & m).sum(), (contacted & reached & m).sum(), claim)
    return replace(parts, open_scale=scale, reach_by_benefit=reach_b, claim_by_benefit=claim_b)


def learn(rows: pd.DataFrame, prior: Prior, learner: str, *, seed: int) -> Corrected:
    """The prior corrected by ``learner`` (see :data:`LEARNERS`) on the pooled rows (with ``unit``,
    the household's id in the extract). With no recorded outcome the prior itself."""
    if learner not in LEARNERS:
        raise ValueError(f"learner {learner!r}: expected one of {list(LEARNERS)}")
    labelled = rows["contacted"].to_numpy(dtype=bool) & rows["result"].notna().to_numpy()
    if not labelled.any():
        return starting_point(prior, seed)
    profiles = rows.assign(household_id=rows["unit"].to_numpy())
    base = prior.open_probability(profiles)
    by_benefit = learner == "recalibrated"
    fold = fold_of(profiles["household_id"].to_numpy(), seed)
    parts = _pooled_parts(rows, base, by_benefit=by_benefit)
    held = tuple(_pooled_parts(rows[fold != f], base[fold != f], by_benefit=by_benefit) for f in range(FOLDS))
    out = Corrected(prior, learner, parts, held, seed=seed, labels=int(labelled.sum()))
    if learner == "recalibrated":
        return out
    X = correction_frame(profiles)
    result = rows["result"].astype("object").to_numpy()
    is_open = np.isin(result, OPEN_RESULTS)
    if learner == "boosted-whole":
        init = _logit(base * parts.reach * parts.claim)
        m = labelled
        return replace(out, open=boost(X[m], (result[m] == "opened").astype(float), init[m], fold[m], seed))
    reached = is_open & (result != "unreachable")
    m_open, m_reach, m_claim = labelled, labelled & is_open, labelled & reached
    return replace(
        out,
        open=boost(X[m_open], is_open[m_open].astype(float), _logit(base)[m_open], fold[m_open], seed),
        reach=boost(
            X[m_reach],
            reached[m_reach].astype(float),
            np.full(m_reach.sum(), _logit(np.array(parts.reach))),
            fold[m_reach],
            seed,
        ),
        claim=boost(
            X[m_claim],
            (result[m_claim] == "opened").astype(float),
            np.full(m_claim.sum(), _logit(np.array(parts.claim))),
            fold[m_claim],
            seed,
        ),
    )
