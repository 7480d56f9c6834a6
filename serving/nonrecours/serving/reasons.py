"""Reasons an agent can read: the features that moved a score most, said in words.

Where it sits: scoring (API and worklists) calls :func:`reasons` with the profiles and LightGBM's
``pred_contrib`` (TreeSHAP, log-odds). Each reason names the household's own value ("pay fell by
40% against last year's monthly average") and which way it pushed the score. The words are the
catalogue's (``core/nonrecours/core/messages/<language>.yaml``, ``reasons``): French for agents by default
(``serving.language``), English for data scientists.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nonrecours.core.catalogue import catalogue
from nonrecours.core.schema import FEATURES, PROFILES

SAME_PAY = 0.05
"""A change of pay smaller than 5% reads as "about the same"."""
NO_PAY_ANY_MORE = 0.99
"""A fall of 99% or more reads as "no pay any more"."""


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _words(language: str):
    return catalogue(language)


def estimated_text(inputs: str, language: str) -> str | None:
    """What the agent is told when the law engine had to estimate an input the agency does not
    hold (``pay``, ``rent``, ``pay_rent``), and what to ask the household for; None for ``none``."""
    t = _words(language)
    if inputs not in t.raw("reasons.estimated"):
        return None
    return t(
        f"reasons.estimated.{inputs}",
        pay_estimate=t("reasons.pay_estimate"),
        rent_estimate=t("reasons.rent_estimate"),
        ask_pay=t("reasons.ask_pay"),
    )


def _receives(v: object, benefit: str, language: str) -> str:
    t = _words(language)
    label = t(f"benefit.{benefit}")
    if _missing(v):
        return t("reasons.receives.unknown", label=label)
    return t("reasons.receives.yes" if v else "reasons.receives.no", label=label)


def _pay_change(v: object, language: str) -> str:
    t = _words(language)
    if _missing(v):
        return t("reasons.pay_change.none")
    change = float(v)  # type: ignore[arg-type]  # a profile value, typed object: a number here
    if abs(change) < SAME_PAY:
        return t("reasons.pay_change.same")
    if change <= -NO_PAY_ANY_MORE:
        return t("reasons.pay_change.gone")
    return t(
        "reasons.pay_change.fell" if change < 0 else "reasons.pay_change.rose",
        pct=_words(language).percent(abs(change)),
    )


def phrase(feature: str, value: object, benefit: str, language: str) -> str:
    """One feature's value in words, for a row about ``benefit``, from the language's catalogue
    (``reasons.phrases``); the schema's description (French label) where none is written."""
    if feature == "pay_change":
        return _pay_change(value, language)
    if feature.startswith("receives_"):
        return _receives(value, benefit if feature == "receives_this" else feature.removeprefix("receives_"), language)
    t = _words(language)
    forms = t.raw("reasons.phrases").get(feature)
    if forms is None:
        column = PROFILES.column(feature)
        return f"{(column.fr if language == 'fr' and column.fr else column.description).rstrip('.')}: {value}"
    key = f"reasons.phrases.{feature}"
    if "yes" in forms:
        return t(f"{key}.yes" if bool(value) else f"{key}.no")
    if "several" in forms:
        return t(f"{key}.several" if int(value) > 1 else f"{key}.one")  # type: ignore[call-overload]  # a count
    if "unknown" in forms and _missing(value):
        return t(f"{key}.unknown")
    if "none" in forms and value == "none":
        return t(f"{key}.none")
    categories = t.raw("reasons.categories").get(feature, {})
    fields = {"value": categories.get(str(value), str(value).replace("_", " "))}
    if not isinstance(value, str) and not _missing(value):
        number = float(value)  # type: ignore[arg-type]  # not a string nor missing: a number
        fields.update(n=int(number), x=f"{number:.1f}", eur=t.euros(number), pct=t.percent(number))
    return t(f"{key}.text", **fields)


def reasons(profiles: pd.DataFrame, contributions: pd.DataFrame, k: int, language: str) -> list[list[str]]:
    """Per profile row, the ``k`` features with the largest contribution (either sign), in words,
    each marked with the way it moved the score; then, where the law engine estimated an input,
    which one and what to ask the household for (:func:`estimated_text`)."""
    t = _words(language)
    contrib = contributions[list(FEATURES)].to_numpy()
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
    values = [profiles[f].astype("object").to_numpy() for f in FEATURES]
    benefit = profiles["benefit"].astype("object").to_numpy()
    estimated = profiles["law_estimated_inputs"].astype("object").to_numpy()
    asks = {e: estimated_text(e, language) for e in set(estimated)}
    out = []
    for i in range(len(profiles)):
        items = []
        for j in order[i]:
            c = contrib[i, j]
            if c == 0:
                break
            if FEATURES[j] == "benefit":  # the benefit's own base rate
                items.append(
                    t(
                        "reasons.often_unclaimed" if c > 0 else "reasons.usually_claimed",
                        label=t(f"benefit.{benefit[i]}"),
                    )
                )
            else:
                items.append(
                    t(
                        "reasons.raises" if c > 0 else "reasons.lowers",
                        text=phrase(FEATURES[j], values[j][i], benefit[i], language),
                    )
                )
        if asks[estimated[i]]:
            items.append(asks[estimated[i]])
        out.append(items)
    return out
