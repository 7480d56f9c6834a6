"""What an agency's observed tables say in the law engine's terms, and the entitlements that follow.

Where it sits: in the law layer, between the raw tables and everything that needs entitlements on
what an agency holds: ``nonrecours entitlements``, scoring (batch and API) and the generator, which
plays the agency paying on its own file. All go through :func:`nonrecours.law.engine.run_law_engine`.

What an agency holds depends on the household's status (see ``docs/schema.md``): recent pay only
for households with an RSA or PPA file, rent only for housing-aid files. Missing is NA in the
tables; here, and only here, each missing input the law engine needs is filled explicitly:

- recent pay: none for a member last known out of work (unemployed, retired, inactive), else last
  year's declared pay spread over twelve months;
- a self-employed member's turnover: the average micro-entrepreneur's (``self_employed_estimate``
  in ``law/nonrecours/law/parameters.yaml``); a member who is not self-employed has none;
- the pay of year N-2 (family benefits), when no tax notice was given: last year's declared pay;
- rent: the median rent of the kind of territory for the household's size (``rent_estimate`` in
  ``law/nonrecours/law/parameters.yaml``).

Every entitlement computed with a filled input is marked (``estimated_inputs``): the model sees the
mark and the agent's reasons name the estimated figure. What the agency never holds (savings, a
non-EU national's residence-permit seniority, a disability it pays no AAH for) is not guessed:
OpenFisca-France's defaults apply (no savings, conditions of residence met, no recognised
disability), which is why the law engine on observed data can be
wrong in both directions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonrecours.core.config import LawConfig
from nonrecours.core.schema import ENTITLEMENTS, ESTIMATED_INPUTS, MONTHS_PER_YEAR
from nonrecours.law.engine import run_law_engine
from nonrecours.law.parameters import CssValuation, LawParameters, load_law_parameters

PAY_ESTIMATE_ACTIVITIES = ("employed", "unemployed")
"""Without a recent declaration, a member's recent pay counts as estimated when last year they
were paid or they are in the labour market (retirees and children are not expected to earn)."""
OUT_OF_WORK = ("unemployed", "retired", "inactive")
"""Activities whose recent pay, when not declared, is estimated at none: a job loss the agency was
told of outweighs last year's pay."""


def _nullable(column: pd.Series) -> np.ndarray:
    """A nullable float column as floats, NA as NaN."""
    return column.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def estimated_inputs(pay: pd.Series, rent: pd.Series) -> pd.Series:
    """The ``ESTIMATED_INPUTS`` code from two boolean series (indexed alike)."""
    code = np.select(
        [pay.to_numpy() & rent.to_numpy(), pay.to_numpy(), rent.to_numpy()], ["pay_rent", "pay", "rent"], "none"
    )
    return pd.Series(pd.Categorical(code, categories=list(ESTIMATED_INPUTS)), index=pay.index)


def observed_situation(
    individuals: pd.DataFrame, households: pd.DataFrame, params: LawParameters
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """What the agency knows, in the law engine's terms, and per household which inputs were
    estimated (an ``ESTIMATED_INPUTS`` series indexed by ``household_id``).

    Recent pay is the pre-filled quarterly pay where held, else none for a member last known out
    of work and last year's declaration spread over twelve months for the others; earlier pay is
    always that declaration. Both are gross, as OpenFisca expects.
    """
    declared_monthly = individuals["declared_pay_last_year"].to_numpy(dtype=float) / MONTHS_PER_YEAR
    known = _nullable(individuals["known_pay_monthly"])
    pay_missing = np.isnan(known)
    out_of_work = individuals["activity"].astype("object").isin(OUT_OF_WORK).to_numpy()
    n2 = _nullable(individuals["declared_pay_n2"]) / MONTHS_PER_YEAR
    n2_missing = np.isnan(n2)
    turnover = _nullable(individuals["known_turnover_monthly"])
    self_employed = (individuals["activity"].astype("object") == "self_employed").to_numpy()
    turnover_guessed = np.isnan(turnover) & self_employed
    turnover = np.where(turnover_guessed, params.self_employed_turnover_monthly, np.nan_to_num(turnover, nan=0.0))
    persons = pd.DataFrame(
        {
            "household_id": individuals["household_id"].to_numpy(),
            "person_id": individuals["person_id"].to_numpy(),
            "benefit_unit": individuals["benefit_unit"].to_numpy(),
            "role": individuals["role"].astype("object").to_numpy(),
            "age": individuals["age"].to_numpy(),
            "activity": individuals["activity"].astype("object").to_numpy(),
            "pay_recent": np.where(pay_missing, np.where(out_of_work, 0.0, declared_monthly), known),
            "pay_earlier": declared_monthly,
            "pay_n2": np.where(n2_missing, declared_monthly, n2),
            "turnover": turnover,
            "turnover_n2": turnover,
            "unemployment_recent": individuals["unemployment_benefit_monthly"].to_numpy(dtype=float),
            "unemployment_earlier": individuals["unemployment_benefit_monthly"].to_numpy(dtype=float),
            "pension_monthly": individuals["pension_monthly"].to_numpy(dtype=float),
            # A disability the agency has no record of counts as none (OpenFisca's default).
            "disability_rate": individuals["disability_rate"].astype("Float64").fillna(0.0).to_numpy(dtype=float),
        }
    )
    pay_guessed = (
        (pay_missing & ((declared_monthly > 0) | persons["activity"].isin(PAY_ESTIMATE_ACTIVITIES).to_numpy()))
        | turnover_guessed
        | (n2_missing & (declared_monthly > 0))
    )
    hid = households["household_id"]
    pay_estimated = (
        pd.Series(pay_guessed)
        .groupby(persons["household_id"].to_numpy())
        .any()
        .reindex(hid.to_numpy(), fill_value=False)
    )
    rent = _nullable(households["rent_monthly"])
    rent_missing = np.isnan(rent)
    size = individuals.groupby("household_id").size().reindex(hid.to_numpy(), fill_value=1)
    guess = params.rent_estimate.rent(
        households["tenure"].astype("object").reset_index(drop=True),
        households["territory_type"].reset_index(drop=True),
        size.reset_index(drop=True),
    )
    hh = pd.DataFrame(
        {
            "household_id": hid.to_numpy(),
            "tenure": households["tenure"].astype("object").to_numpy(),
            "rent_monthly": np.where(rent_missing, guess.to_numpy(), rent),
            "depcom": households["depcom"].astype(str).to_numpy(),
        }
    )
    estimated = estimated_inputs(pay_estimated.reset_index(drop=True), pd.Series(rent_missing & (guess.to_numpy() > 0)))
    return (
        persons,
        hh,
        pd.Series(estimated.to_numpy(), index=pd.Index(hid.to_numpy(), name="household_id"), name="estimated_inputs"),
    )


def entitlements_from_observed(
    individuals: pd.DataFrame,
    households: pd.DataFrame,
    *,
    law: LawConfig,
    css: CssValuation | None = None,
    scheduler: str | None = None,
    quiet: bool = False,
    description: str = "law engine",
) -> pd.DataFrame:
    """Eligibility and monthly amount per household and benefit on what the agency holds, in
    ``ENTITLEMENTS`` form (with which inputs were estimated)."""
    params = load_law_parameters()
    persons, hh, estimated = observed_situation(individuals, households, params)
    out = run_law_engine(
        persons, hh, law=law, css=css or params.css, scheduler=scheduler, quiet=quiet, description=description
    )
    out["estimated_inputs"] = pd.Categorical(
        out["household_id"].map(estimated).astype("object").fillna("none"), categories=list(ESTIMATED_INPUTS)
    )
    return out[ENTITLEMENTS.names]
