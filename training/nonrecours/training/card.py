"""The model card: what the model is for, what it must not be used for, what it was trained on,
how it compares with today's practice and with the ceiling, and where it fails.

Where it sits: written by ``train`` as an MLflow artifact of every run, from the run's own data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonrecours.core.schema import PROFILES, PROTECTED
from nonrecours.training.evaluate import metric
from nonrecours.training.model import Scorer

TINY = 1e-9
"""Stands for a zero denominator (no euros at stake in the ceiling) in a share."""


def markdown_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


LOW_RATIO = 0.5
"""A group whose recall is under half the overall recall is named in the card."""


def _low_ratio(groups: pd.DataFrame) -> str:
    low = groups[groups["recall_ratio"] < LOW_RATIO]
    return ", ".join(f"{r.attribute} = {r.group} ({r.recall_ratio:.2f})" for r in low.itertuples()) or "none"


def quality_table(metrics: pd.DataFrame, population: str = "candidates") -> pd.DataFrame:
    """One population (``candidates``: not seen receiving; ``law_eligible``: the rows the law
    engine finds eligible), per benefit and overall: the model against the rules, logistic and ceiling."""
    m = metrics[metrics["population"] == population]
    wide = m.pivot_table(
        index="benefit", columns="method", values=["roc_auc", "euros_at_k", "precision_at_k"], sort=False, dropna=False
    )
    out = pd.DataFrame(
        {
            "benefit": wide.index,
            "positives": m[m["method"] == "model"]
            .set_index("benefit")["positives"]
            .reindex(wide.index)
            .astype(int)
            .to_numpy(),
            "AUC model": wide[("roc_auc", "model")].to_numpy(),
            "AUC logistic": wide[("roc_auc", "logistic")].to_numpy(),
            "AUC rules": wide[("roc_auc", "rules")].to_numpy(),
            "AUC ceiling": wide[("roc_auc", "ceiling")].to_numpy(),
            "P@k model": wide[("precision_at_k", "model")].to_numpy(),
            "P@k rules": wide[("precision_at_k", "rules")].to_numpy(),
            "€@k model": wide[("euros_at_k", "model")].round(0).to_numpy(),
            "€@k rules": wide[("euros_at_k", "rules")].round(0).to_numpy(),
            "€@k ceiling": wide[("euros_at_k", "ceiling")].round(0).to_numpy(),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share of ceiling €"] = out["€@k model"] / out["€@k ceiling"]
    return out


def model_card(
    *,
    name: str,
    run_id: str,
    scorer: Scorer,
    metrics: pd.DataFrame,
    groups: pd.DataFrame,
    worst_gap: float,
    worst_gap_where: str,
    data: dict,
    capacity_share: float,
    next_metrics: pd.DataFrame | None = None,
    proxies: pd.DataFrame | None = None,
) -> str:
    features = [c for c in scorer.feature_names]
    feature_rows = "\n".join(f"- `{c}` — {PROFILES.column(c).description}" for c in features)
    q = quality_table(metrics)
    g = groups[groups["gated"]].drop(columns=["gated"])

    def share(method: str) -> float:
        return metric(metrics, method, "euros_at_k") / max(metric(metrics, "ceiling", "euros_at_k"), TINY)

    no_next, brier = "no next quarter was given (`--next-quarter`).", metric(metrics, "model", "brier")
    next_quarter = markdown_table(quality_table(next_metrics)) if next_metrics is not None else no_next
    return f"""# Model card — `{name}` (run `{run_id}`)

## Intended use
Rank households that are probably **entitled to a French social benefit and do not claim it**, so
that social-service agents contact them first and help them claim. Each score is
`p_unclaimed × estimated_monthly_amount`; both factors are shown to the agent with the reasons.

## Excluded uses
- **Never for control, fraud detection or sanctions.** The model estimates missed rights, not
  overpayment risk; there is no score of overpayment and none may be derived from this one.
- Not an eligibility decision: entitlement is decided by the paying body under the law; the law
  engine's figures (OpenFisca-France) are estimates on the data the agency holds.
- Not for households outside the population it was trained on (see Data).

## Data
- Training folder: `{data.get("input")}`; profiles: {data.get("rows")} household-benefit rows,
  {data.get("households")} households; split by household: {data.get("n_train")} train rows,
  {data.get("n_valid")} early-stopping rows, {data.get("n_test")} test rows.
- Population: {data.get("population")}.
- Target: entitled today (OpenFisca-France on the true situation) and not claimed.

## Features and why each is there
{feature_rows}

## Protected attributes
{", ".join(f"`{c}`" for c in PROTECTED)} are kept in the profiles for fairness auditing only.
They are not model inputs (the feature list above is the model's whole input, and a test checks
that none of them reaches it).

## Proxies: the model is not blind
Protected attributes are not inputs, but the inputs carry them: `receives_aah` stands for
disability, household type for sex, age for age band. A probe classifier (LightGBM on the model's
inputs, one row per household, fitted on the training households) measures how well the inputs
predict each one, as a test ROC AUC (0.5: nothing; 1.0: given away).

{markdown_table(proxies) if proxies is not None else "not measured"}

## Quality on test households (candidates: not observed receiving the benefit)
Outreach capacity per quarter: {capacity_share:.0%} of the households, i.e. k rows ranked by
expected unclaimed euros (one contact each). "P@k": share of the k flagged rows really unclaimed;
"€@k" = true unclaimed monthly euros among them.

{markdown_table(q)}

Among the rows the law engine finds eligible on the agency's data:

{markdown_table(quality_table(metrics, "law_eligible"))}

## The next quarter
The same test households three months later (their next extract and truth), scored by this model:
{next_quarter}

Overall: the model recovers {share("model"):.1%}
of the ceiling's euros at k; the rules baseline {share("rules"):.1%}.
Calibration (ECE, candidates, overall): {metric(metrics, "model", "ece"):.4f}; Brier {brier:.4f}.

## Who is missed: recall at k per group (groups with enough positives)
Worst gap between groups of one attribute: **{worst_gap:.3f}** ({worst_gap_where}). At a small
capacity every recall is small, and so is any gap between two: `recall_ratio` (the group's recall
over the overall recall) says how much less likely a group's missed rights are to be flagged.
Groups flagged at less than half the overall rate: **{_low_ratio(g)}**.

{markdown_table(g)}

## Limits
- Trained on a synthetic population calibrated to published non-take-up rates; effects sizes in
  the claim behaviour are assumptions (see `data/nonrecours/data/calibration.yaml`). Real performance must be
  measured on an agency's own outcomes before use.
- The law engine runs on what the agency holds (late and partial income data): households whose
  situation changed recently may be missed or wrongly flagged.
- Benefits with few positives in the test set have unstable metrics; they are reported, not gated.
"""
