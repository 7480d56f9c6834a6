"""The promotion gate: a pure decision on a new model's test metrics (:func:`decide`), or on
what an agency can estimate itself from a campaign's randomised arms (:func:`decide_observed`).

Where it sits: ``nonrecours train`` calls :func:`decide` after evaluation, and ``train --labels
observed`` calls :func:`decide_observed`; the registry (:mod:`nonrecours.training.registry`)
records the decision. No MLflow here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy.stats import norm

from nonrecours.training.evaluate import metric
from nonrecours.training.judge import Interval
from nonrecours.training.metrics import INTERVAL_LEVEL
from nonrecours.training.policies import Estimate

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Decision:
    alias: str
    reasons: tuple[str, ...]

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION


def decide(
    new: pd.DataFrame,
    champion: pd.DataFrame | None,
    worst_gap: float,
    worst_gap_where: str,
    max_group_recall_gap: float,
) -> Decision:
    """Champion only if the new model beats the rules baseline (AUC and euros at k, candidates,
    overall), does at least as well as the current champion on the same test set, and its worst
    group recall gap is within ``max_group_recall_gap``. Every failed condition is a reason."""
    reasons = []
    for name in ("roc_auc", "euros_at_k"):
        mine, rules = metric(new, "model", name), metric(new, "rules", name)
        if not mine > rules:
            reasons.append(f"{name} {mine:.4f} does not beat the rules baseline's {rules:.4f}")
        if champion is not None:
            theirs = metric(champion, "model", name)
            if mine < theirs:
                reasons.append(f"{name} {mine:.4f} is below the current champion's {theirs:.4f} on the same test set")
    if worst_gap > max_group_recall_gap:
        reasons.append(
            f"group recall gap {worst_gap:.3f} ({worst_gap_where}) exceeds the bound {max_group_recall_gap:.3f}"
        )
    if reasons:
        return Decision(CHALLENGER, tuple(reasons))
    against = (
        "the rules baseline and the current champion"
        if champion is not None
        else "the rules baseline (no champion yet)"
    )
    return Decision(
        CHAMPION, (f"beats {against}; worst group recall gap {worst_gap:.3f} within {max_group_recall_gap:.3f}",)
    )


def decide_observed(challenger: Estimate, incumbents: dict[str, Estimate]) -> Decision:
    """Champion only if the lower bound of the challenger's off-policy estimate of the euros its
    contacts would add is at least every incumbent ranking's estimate, each estimated the same way
    (inverse propensity weighting) on the same campaign's randomised contacts. Conservative on
    purpose: one campaign's estimates are wide, and a ranking is not switched on noise. No
    estimate (too few covered households) is a reason too; the intervals are in the reasons."""

    def said(e: Estimate) -> str:
        return (
            f"{e.value:,.0f} EUR a month ({INTERVAL_LEVEL:.0%} interval {e.low:,.0f} to {e.high:,.0f}, "
            f"{e.n:,} covered households)"
        )

    if challenger.value != challenger.value:  # NaN: the campaign covered too few of its picks
        return Decision(CHALLENGER, (f"no off-policy estimate: the campaign covered {challenger.n} of its picks",))
    reasons = [
        f"off-policy value {said(challenger)}: its lower bound is below {name}'s {said(e)}"
        for name, e in incumbents.items()
        if e.value == e.value and challenger.low < e.value
    ]
    if reasons:
        return Decision(CHALLENGER, tuple(reasons))
    beaten = "; ".join(f"{name}: {said(e)}" for name, e in incumbents.items())
    return Decision(CHAMPION, (f"off-policy value {said(challenger)}: its lower bound is at least {beaten}",))


@dataclass(frozen=True)
class Choice:
    """The ranking the loop plays next, and why: each candidate's paired gain over the incumbent."""

    ranking: str
    switched: bool
    reasons: tuple[str, ...]


def gate_bound(gain: Interval, candidates: int, alpha: float) -> float:
    """The one-sided lower bound the gate decides on: the paired gain less ``z`` standard errors
    (its bootstrap's), ``z`` the normal quantile of ``1 - alpha / candidates`` (Bonferroni: over
    all of a round's candidates, the chance that one passes when none is better is at most
    ``alpha``)."""
    return gain.value - float(norm.ppf(1 - alpha / max(candidates, 1))) * gain.standard_error


def decide_paired(incumbent: str, gains: dict[str, Interval], *, alpha: float) -> Choice:
    """The challenger whose paired gain over ``incumbent`` (same households, same randomised arms)
    has the largest lower bound (:func:`gate_bound`), if that bound is above zero; else the
    incumbent stays. A bound at or below zero never switches: a ranking is not changed on noise.
    The rules are meant to be among ``gains``' candidates, so a loop that learns nothing keeps what
    nothing beats."""
    m = len(gains)

    def said(name: str, g: Interval) -> str:
        return (
            f"{name}: {g.value:+,.0f} EUR a month over {incumbent} (lower bound {gate_bound(g, m, alpha):+,.0f} at "
            f"{1 - alpha / max(m, 1):.2%}, one-sided; {g.n:,} households)"
        )

    reasons = tuple(said(name, g) for name, g in gains.items())
    bounds = {name: gate_bound(g, m, alpha) for name, g in gains.items() if g.standard_error == g.standard_error}
    winners = {name: b for name, b in bounds.items() if b > 0}
    if not winners:
        return Choice(incumbent, False, ("no challenger's lower bound is above zero: kept", *reasons))
    best = max(winners, key=lambda name: winners[name])
    return Choice(best, True, (f"{best} replaces {incumbent}: its lower bound is above zero", *reasons))
