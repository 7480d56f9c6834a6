"""The promotion gate: a pure decision on a new model's test metrics.

Where it sits: ``nonrecours train`` calls :func:`decide` after evaluation; the registry
(:mod:`nonrecours.training.registry`) records the decision. No MLflow here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from nonrecours.training.evaluate import metric

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Decision:
    alias: str
    reasons: tuple[str, ...]

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION


def decide(new: pd.DataFrame, champion: pd.DataFrame | None, worst_gap: float, worst_gap_where: str, max_group_recall_gap: float) -> Decision:
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
        reasons.append(f"group recall gap {worst_gap:.3f} ({worst_gap_where}) exceeds the bound {max_group_recall_gap:.3f}")
    if reasons:
        return Decision(CHALLENGER, tuple(reasons))
    against = "the rules baseline and the current champion" if champion is not None else "the rules baseline (no champion yet)"
    return Decision(CHAMPION, (f"beats {against}; worst group recall gap {worst_gap:.3f} within {max_group_recall_gap:.3f}",))
