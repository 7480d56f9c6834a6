"""Reasons an agent can read: the features that moved a score most, said in words.

Where it sits: scoring (API and worklists) calls :func:`reasons` with the profiles and LightGBM's
``pred_contrib`` (TreeSHAP, log-odds). Each reason names the household's own value ("pay fell by
40% against last year's monthly average") and which way it pushed the score.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from nonrecours.core.schema import BENEFIT_LABELS, BENEFITS, FEATURES, PROFILES

SAME_PAY = 0.05
"""A change of pay smaller than 5% reads as "about the same"."""
NO_PAY_ANY_MORE = 0.99
"""A fall of 99% or more reads as "no pay any more"."""


def _eur(v: float) -> str:
    return f"{v:,.0f} €".replace(",", " ")


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _amount(text: str, unknown: str) -> Callable[[object, str], str]:
    """A phrase with the value in euros, or ``unknown`` where the agency does not hold it."""
    return lambda v, _r: unknown if _missing(v) else text.format(_eur(float(v)))  # type: ignore[arg-type]


_PAY = ("an estimated income from work (last year's declared pay, or none when last known out of work; for a self-employed member, "
        "the average micro-entrepreneur's turnover)")
_RENT = "an estimated rent (median for the area and household size)"
_ASK_PAY = "the last three payslips, the unemployment notice or, if self-employed, the last quarter's turnover declarations"
ESTIMATED = {
    "pay": f"OpenFisca-France amount computed with {_PAY}: ask for {_ASK_PAY}",
    "rent": f"OpenFisca-France amount computed with {_RENT}: ask for the lease or a rent receipt",
    "pay_rent": f"OpenFisca-France amount computed with {_PAY} and {_RENT}: ask for {_ASK_PAY}, and the lease",
}
"""What the agent is told when the law engine had to estimate an input the agency does not hold."""


def _yes_no(yes: str, no: str) -> Callable[[object, str], str]:
    return lambda v, _row: yes if bool(v) else no


def _receives(benefit: str | None) -> Callable[[object, str], str]:
    def say(v: object, row_benefit: str) -> str:
        label = BENEFIT_LABELS[benefit or row_benefit]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return f"the agency cannot see whether the household receives the {label}"
        return f"already receives the {label}" if v else f"does not receive the {label}"

    return say


def _pay_change(v: object, _benefit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "no pay declared last year to compare with"
    change = float(v)  # type: ignore[arg-type]
    if abs(change) < SAME_PAY:
        return "pay about the same as last year's monthly average"
    if change <= -NO_PAY_ANY_MORE:
        return "no pay any more, against pay last year"
    word = "fell" if change < 0 else "rose"
    return f"pay {word} by {abs(change):.0%} against last year's monthly average"


_PHRASES: dict[str, Callable[[object, str], str]] = {
    "law_eligible": _yes_no("entitled on the agency's data (OpenFisca-France)", "not entitled on the agency's data (OpenFisca-France)"),
    "law_amount": lambda v, _r: f"OpenFisca-France amount on the agency's data: {_eur(float(v))}/month",  # type: ignore[arg-type]
    "law_eligible_count": lambda v, _r: f"entitled to {int(v)} benefit(s) on the agency's data",  # type: ignore[call-overload]
    "receives_this": _receives(None),
    **{f"receives_{b}": _receives(b) for b in BENEFITS},
    "benefits_received": lambda v, _r: f"receives {int(v)} benefit(s) the agency can see",  # type: ignore[call-overload]
    "household_type": lambda v, _r: f"household: {str(v).replace('_', ' ')}",
    "n_persons": lambda v, _r: f"{int(v)} person(s) in the dwelling",  # type: ignore[call-overload]
    "n_adults": lambda v, _r: f"{int(v)} adult(s)",  # type: ignore[call-overload]
    "n_children": lambda v, _r: f"{int(v)} child(ren) under 18",  # type: ignore[call-overload]
    "n_under_3": lambda v, _r: f"{int(v)} child(ren) under 3",  # type: ignore[call-overload]
    "n_benefit_units": lambda v, _r: "several benefit units share the dwelling" if int(v) > 1 else "one benefit unit in the dwelling",  # type: ignore[call-overload]
    "head_age": lambda v, _r: f"reference person aged {int(v)}",  # type: ignore[call-overload]
    "oldest_age": lambda v, _r: f"oldest member aged {int(v)}",  # type: ignore[call-overload]
    "head_activity": lambda v, _r: f"reference person last known as {v}",
    "any_higher_education": _yes_no("an adult holds a higher-education degree", "no adult holds a higher-education degree"),
    "consumption_units": lambda v, _r: f"{float(v):.1f} consumption units",  # type: ignore[arg-type]
    "income_known_per_cu": _amount("latest known income {}/month per consumption unit", "no recent income held by the agency (no RSA or PPA declaration)"),
    "law_estimated_inputs": lambda v, _r: "no input estimated" if v == "none" else f"estimated input(s): {str(v).replace('_', ' and ')}",
    "income_declared_per_cu": lambda v, _r: f"last year's income {_eur(float(v))}/month per consumption unit",  # type: ignore[arg-type]
    "pay_change": _pay_change,
    "pay_drop": _yes_no("pay dropped by 30% or more against last year", "no drop in pay"),
    "pension_share": lambda v, _r: f"{float(v):.0%} of known income is pension",  # type: ignore[arg-type]
    "unemployment_share": lambda v, _r: f"{float(v):.0%} of known income is unemployment benefit",  # type: ignore[arg-type]
    "tenure": lambda v, _r: f"housing: {str(v).replace('_', ' ')}",
    "rent_monthly": _amount("rent {}/month", "rent not held by the agency (no housing-aid file)"),
    "rent_burden": lambda v, _r: "rent not held by the agency" if _missing(v) else f"rent is {float(v):.0%} of income",  # type: ignore[arg-type]
    "territory_type": lambda v, _r: f"lives in a {str(v).replace('_', ' ')} area",
    "digital_exclusion": _yes_no("no online account: corresponds with the agency on paper", "has an online account with the agency"),
    "contacts_last_year": lambda v, _r: f"{int(v)} contact(s) with social services last year",  # type: ignore[call-overload]
    "reported_event": lambda v, _r: "no life event reported recently" if v == "none" else f"reported a recent {str(v).replace('_', ' ')}",
}


def phrase(feature: str, value: object, benefit: str) -> str:
    """One feature's value in words, for a row about ``benefit``; the schema's description where
    no phrase is written."""
    say = _PHRASES.get(feature)
    if say is None:
        return f"{PROFILES.column(feature).description.rstrip('.')}: {value}"
    return say(value, benefit)


def reasons(profiles: pd.DataFrame, contributions: pd.DataFrame, k: int) -> list[list[str]]:
    """Per profile row, the ``k`` features with the largest contribution (either sign), in words,
    each marked with the way it moved the score; then, where the law engine estimated an input,
    which one and what to ask the household for (:data:`ESTIMATED`)."""
    contrib = contributions[list(FEATURES)].to_numpy()
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
    values = [profiles[f].astype("object").to_numpy() for f in FEATURES]
    benefit = profiles["benefit"].astype("object").to_numpy()
    estimated = profiles["law_estimated_inputs"].astype("object").to_numpy()
    out = []
    for i in range(len(profiles)):
        items = []
        for j in order[i]:
            c = contrib[i, j]
            if c == 0:
                break
            if FEATURES[j] == "benefit":  # the benefit's own base rate
                label = BENEFIT_LABELS[benefit[i]]
                items.append(f"the {label} often goes unclaimed (raises the score)" if c > 0 else f"the {label} is usually claimed when due (lowers the score)")
            else:
                items.append(f"{phrase(FEATURES[j], values[j][i], benefit[i])} ({'raises' if c > 0 else 'lowers'} the score)")
        if estimated[i] in ESTIMATED:
            items.append(ESTIMATED[estimated[i]])
        out.append(items)
    return out
