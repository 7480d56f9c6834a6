"""Why eligible households claim or not, and what an agent's contact would change.

Where it sits: in the data layer, called by the generator each quarter (:mod:`nonrecours.data.generate`).
Nothing here is ever read by production: every column it produces has the role ``truth``.

A household claims a benefit when four barriers are passed, those DREES's 2021 survey names:

- **know**: it knows the right (more contact with social services, more take-up; already claiming
  another benefit helps; digital exclusion, youth, a foreign language hurt);
- **manage**: it manages the procedure (complexity, by benefit; digital exclusion; great age);
- **fear**: it does not fear the consequences (overpayments with irregular pay; recovery of ASPA
  on an owner's estate);
- **want**: it wants the help (stigma, and small amounts not worth it).

Each barrier's probability is a logistic function of the true determinants
(``claim_model`` in ``data/nonrecours/data/calibration.yaml``). Whether the household passes it is its own draw,
which no table records: that draw is the unobserved part, and it is kept across quarters (a
household that fears overpayments still fears them next quarter). So ``p_claim``, the product of
the four probabilities, is the best any model on the full truth can do, and its ROC AUC is printed
by ``nonrecours generate``.

Potential outcomes of a contact (common random numbers, so a contact never prevents a claim):
with no contact, an uninformed household may learn of its right (``learn_per_quarter``) and a new
spell's claim goes through (transitory non-take-up); a contact that reaches the household informs
it, helps with the procedure and lifts some fears, but never changes whether it wants the help.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from nonrecours.core.schema import BENEFITS
from nonrecours.data.calibration import Calibration

CLAIM_ORDER = ("af", "aah", "aide_logement", "rsa", "ppa", "css_free", "css_contrib", "aspa")
"""Order in which the history quarter's claims are drawn: an earlier claim puts the household in
contact with the agency, which raises the chance it knows of the next right."""

BARRIERS = ("know", "manage", "fear", "want")
"""In the order a non-claimant's reason is read: the first barrier it fails is its reason."""
REASON_OF = {"know": "information", "manage": "complexity", "fear": "fear", "want": "refusal"}
IRREGULAR_INCOME_BENEFITS = ("rsa", "ppa", "aide_logement")
"""Benefits whose amount follows quarterly resources: irregular pay means overpayments to repay."""


@dataclass(frozen=True)
class Traits:
    """A household's own draws, fixed across quarters: one uniform per barrier (``know`` per
    benefit, the others shared by all its benefits), shape (households, benefits)."""

    know: np.ndarray
    manage: np.ndarray
    fear: np.ndarray
    want: np.ndarray

    @classmethod
    def draw(cls, n: int, rng: np.random.Generator) -> Traits:
        shared = {name: rng.random(n)[:, None] for name in BARRIERS[1:]}
        return cls(
            know=rng.random((n, len(BENEFITS))),
            **{name: np.repeat(u, len(BENEFITS), axis=1) for name, u in shared.items()},
        )


@dataclass(frozen=True)
class Behaviour:
    """One quarter's behaviour, arrays of shape (households, benefits) in ``BENEFITS`` order."""

    p: dict[str, np.ndarray]  # each barrier's probability
    passes: dict[str, np.ndarray]  # whether the household passes it
    p_claim: np.ndarray
    would_claim: np.ndarray  # passes every barrier


def barrier_logits(
    drivers: pd.DataFrame, amount: np.ndarray, in_contact: np.ndarray, cal: Calibration
) -> dict[str, np.ndarray]:
    """Logits of the four barriers without their intercepts (solved per benefit: :func:`solve_history`)."""
    cm, shape = cal.claim_model, cal.shapes.claims
    d = {c: drivers[c].to_numpy() for c in drivers.columns}
    col = lambda v: np.asarray(v, dtype=float)[:, None]  # noqa: E731 - one household value for every benefit
    is_b = {b: (np.arange(len(BENEFITS)) == i)[None, :] for i, b in enumerate(BENEFITS)}
    k, w = cm.know, cm.want
    log_amount = np.log(np.maximum(amount, shape.min_amount) / shape.amount_unit)
    know = (
        np.where(is_b["aspa"], k.log_amount_aspa, k.log_amount) * log_amount
        + k.woman_aspa * is_b["aspa"] * col(d["head_female"])
        + col(k.contacts * np.log1p(d["contacts_last_year"].astype(float)))
        + k.in_contact * in_contact
        + col(
            k.single_mother * d["single_mother"]
            + k.social_renter * (d["tenure"] == "social_renter")
            + k.owner * (d["tenure"] == "owner")
        )
        + col(k.digital_exclusion * d["digital_exclusion"] + k.non_eu * d["non_eu"] + k.age_25_29 * d["age_25_29"])
        + col(pd.Series(d["territory_type"]).map(k.territory).to_numpy(dtype=float))
    )
    m = cm.manage
    manage = np.zeros((1, len(BENEFITS))) + col(
        m.digital_exclusion * d["digital_exclusion"] + m.aged_75_plus * d["aged_75_plus"]
    )
    f = cm.fear
    irregular = np.isin(np.array(BENEFITS), IRREGULAR_INCOME_BENEFITS)[None, :]
    fear = f.irregular_income * irregular * col(d["irregular_income"]) + f.owner_aspa * is_b["aspa"] * col(
        d["tenure"] == "owner"
    )
    want = np.where(is_b["aspa"], w.log_amount_aspa, w.log_amount) * log_amount + col(
        w.higher_education * d["higher_education"] + w.couple_no_child * d["couple_no_child"]
    )
    return {"know": know, "manage": manage, "fear": fear, "want": want}


def behaviour(logits: dict[str, np.ndarray], intercepts: dict[str, np.ndarray], traits: Traits) -> Behaviour:
    """Each barrier's probability, whether the household passes it, and ``p_claim``."""
    p = {name: expit(logit + intercepts[name][None, :]) for name, logit in logits.items()}
    passes = {name: getattr(traits, name) < p[name] for name in BARRIERS}
    p_claim = p["know"] * p["manage"] * p["fear"] * p["want"]
    would = passes["know"] & passes["manage"] & passes["fear"] & passes["want"]
    return Behaviour(p=p, passes=passes, p_claim=p_claim, would_claim=would)


def barrier_targets(ntu: float, reasons: dict[str, float]) -> dict[str, float]:
    """Mean probability of passing each barrier so that non-take-up is ``ntu`` and the first
    barrier non-claimants fail follows ``reasons`` (information, complexity, fear, refusal),
    barriers read in order: 1 - P(know) = r_info x ntu, then each next one given the earlier."""
    total = sum(reasons[REASON_OF[b]] for b in BARRIERS)
    passed, out = 1.0, {}
    for b in BARRIERS:
        out[b] = 1 - reasons[REASON_OF[b]] / total * ntu / passed
        passed *= out[b]
    return out


def _solve(logit: np.ndarray, target: float, bracket: tuple[float, float], weight: np.ndarray | None = None) -> float:
    """The intercept ``a`` with mean(expit(a + logit) x weight) = target (the bracket's end if out of reach)."""
    w = np.ones_like(logit) if weight is None else weight
    f = lambda a: float((expit(a + logit) * w).mean()) - target  # noqa: E731
    lo, hi = bracket
    if f(hi) <= 0:
        return hi
    return lo if f(lo) >= 0 else brentq(f, lo, hi)


def solve_history(
    drivers: pd.DataFrame, eligible: np.ndarray, amount: np.ndarray, traits: Traits, cal: Calibration
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The history quarter: claims drawn benefit by benefit in :data:`CLAIM_ORDER` (an earlier
    claim puts the household in contact), with each barrier's intercept solved over the eligible:
    "manage", "fear" and "want" to the means :func:`barrier_targets` gives, then "know" so that
    mean ``p_claim`` equals 1 - (published non-take-up + ``stock_offset``).

    Returns the intercepts (kept for the later quarters) and who claims (households x benefits).
    """
    cm, bracket = cal.claim_model, cal.shapes.claims.intercept_bracket
    n = len(drivers)
    claimed = np.zeros((n, len(BENEFITS)), dtype=bool)
    intercepts = {b: np.zeros(len(BENEFITS)) for b in BARRIERS}
    for b in CLAIM_ORDER:
        j = BENEFITS.index(b)
        in_contact = np.repeat(claimed.any(axis=1, keepdims=True), len(BENEFITS), axis=1)
        logits = barrier_logits(drivers, amount, in_contact, cal)
        e = eligible[:, j]
        ntu = min(cal.ntu[b] + cm.stock_offset.get(b, 0.0), 1.0)
        if e.any():
            targets = barrier_targets(ntu, cal.stated_reasons)
            for barrier in ("manage", "fear", "want"):
                intercepts[barrier][j] = _solve(logits[barrier][e, j], targets[barrier], bracket)
            rest = np.prod([expit(logits[x][e, j] + intercepts[x][j]) for x in ("manage", "fear", "want")], axis=0)
            intercepts["know"][j] = _solve(logits["know"][e, j], 1 - ntu, bracket, rest)
        beh = behaviour(logits, intercepts, traits)
        claimed[:, j] = e & beh.would_claim[:, j]
    return intercepts, claimed


@dataclass(frozen=True)
class Quarter:
    """Behaviour of one quarter, given who is eligible and who already claims."""

    p_claim: np.ndarray
    would_claim: np.ndarray
    reason: np.ndarray  # NONCLAIM_REASONS code per cell ("claims" where claiming or not eligible)
    reached: np.ndarray  # per household and benefit (one draw per household)
    claim_if_not_contacted: np.ndarray
    claim_if_contacted: np.ndarray
    p_claim_if_not_contacted: np.ndarray
    p_claim_if_contacted: np.ndarray


def reach_probability(drivers: pd.DataFrame, cal: Calibration) -> np.ndarray:
    r = cal.outreach.reach
    return expit(
        r.intercept
        + r.contacts * np.log1p(drivers["contacts_last_year"].to_numpy(dtype=float))
        + r.digital_exclusion * drivers["digital_exclusion"].to_numpy(dtype=float)
    )


def quarter_behaviour(
    beh: Behaviour,
    *,
    eligible: np.ndarray,
    claimed: np.ndarray,
    new_spell: np.ndarray,
    drivers: pd.DataFrame,
    rng: np.random.Generator,
    cal: Calibration,
) -> Quarter:
    """Reasons and potential outcomes of contact for this quarter's eligible non-claimants.

    ``new_spell``: eligible now, not last quarter. A new spell's household that passes every
    barrier has not claimed yet only because the spell is new (transitory non-take-up): it claims
    by next quarter whatever happens. The probabilities are conditional on not claiming now, given
    the true determinants (not the draws)."""
    cm, out = cal.claim_model, cal.outreach
    n, nb = eligible.shape
    p, s = beh.p, np.where(new_spell, cm.new_spell_claimed_share, 1.0)
    learn, help_, reassure = cm.learn_per_quarter, out.help_with_procedure, out.reassurance
    u_learn, u_help, u_reassure, u_reach = (
        rng.random((n, nb)),
        rng.random((n, 1)),
        rng.random((n, 1)),
        rng.random(n),
    )

    open_ = eligible & ~claimed
    passes = beh.passes
    others = passes["manage"] & passes["fear"] & passes["want"]
    nc = open_ & others & (passes["know"] | (u_learn < learn))
    manage_c = passes["manage"] | (u_help < help_)
    fear_c = passes["fear"] | (u_reassure < reassure)
    reach_p = reach_probability(drivers, cal)
    reached = np.repeat((u_reach < reach_p)[:, None], nb, axis=1)
    contacted = nc | (open_ & reached & passes["want"] & manage_c & fear_c)

    # The same, as probabilities given the determinants and not claiming now.
    a = beh.p_claim
    rest = p["manage"] * p["fear"] * p["want"]
    not_claiming = np.maximum(1 - a * s, np.finfo(float).tiny)
    p0 = (a * (1 - s) + rest * (1 - p["know"]) * learn) / not_claiming
    lifted = p["want"] * (p["fear"] + (1 - p["fear"]) * reassure) * (p["manage"] + (1 - p["manage"]) * help_)
    p1 = p0 + reach_p[:, None] * np.maximum(lifted - a - rest * (1 - p["know"]) * learn, 0.0) / not_claiming

    reason = np.full((n, nb), "claims", dtype=object)
    undecided = open_.copy()
    for barrier in BARRIERS:
        fails = undecided & ~passes[barrier]
        reason[fails] = REASON_OF[barrier]
        undecided &= ~fails
    reason[undecided] = "transitory"
    return Quarter(
        p_claim=np.where(eligible, a * s, 0.0),
        would_claim=beh.would_claim,
        reason=reason,
        reached=reached & open_,
        claim_if_not_contacted=nc,
        claim_if_contacted=contacted,
        p_claim_if_not_contacted=np.where(open_, np.clip(p0, 0, 1), 0.0),
        p_claim_if_contacted=np.where(open_, np.clip(p1, 0, 1), 0.0),
    )
