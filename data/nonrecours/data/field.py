"""The field, simulated: what agents would record after a campaign's contacts.

Where it sits: in the simulation (it reads the truth), called by ``nonrecours outreach``, which
records these rows through the same code as ``POST /outcomes``. Pure: the campaign's households
and the truth's potential outcomes in, one outcome row per contacted household and discussed
benefit out. Only this module, the generator and the evaluation read columns of role ``truth``.

Per contacted household, the agent checks every benefit the campaign lists for it
(:func:`nonrecours.serving.campaign.discussed_benefits`) and records one of
:data:`nonrecours.core.schema.OUTREACH_RESULTS`:

- ``already_receiving``: the household already claims it (paid or pending);
- ``not_entitled``: the check finds no right (the law engine on the agency's data was wrong);
- ``unreachable``: entitled and not claiming, and the contact did not reach it;
- ``opened``: reached, and a claim follows (``claim_if_contacted``), with the true amount;
- ``declined``: reached, entitled, and no claim follows.

A household with no open entitlement has no reach draw in the truth; the agent's check then
finds ``not_entitled`` or ``already_receiving`` whether or not it was reached (a simplification:
the record a real agent makes of an unreached household is ``unreachable`` whatever its rights).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonrecours.core.schema import CONTACTED_ARMS


def field_outcomes(campaign: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per contacted household and discussed benefit: ``household_id``, ``benefit``,
    ``result`` and ``amount_granted`` (the true monthly amount where a right was opened)."""
    contacted = campaign[campaign["arm"].astype("object").isin(CONTACTED_ARMS)]
    pairs = (
        contacted[["household_id", "benefits"]].assign(benefit=contacted["benefits"].str.split(";")).explode("benefit")
    )
    pairs = pairs[pairs["benefit"].fillna("") != ""][["household_id", "benefit"]]
    t = truth.assign(benefit=truth["benefit"].astype("object")).set_index(["household_id", "benefit"])
    missing = pairs.set_index(["household_id", "benefit"]).index.difference(t.index)
    if len(missing):
        raise ValueError(
            f"the truth has no row for {len(missing)} campaign household-benefit pairs, e.g. {missing[0]}: is "
            "it the same population?"
        )
    row = t.loc[pd.MultiIndex.from_frame(pairs)]
    eligible = row["eligible"].to_numpy(dtype=bool)
    claimed = row["claimed"].to_numpy(dtype=bool)
    reached = row["reached_if_contacted"].to_numpy(dtype=bool)
    claims = row["claim_if_contacted"].to_numpy(dtype=bool)
    result = np.select(
        [claimed, ~eligible, ~reached, claims],
        ["already_receiving", "not_entitled", "unreachable", "opened"],
        "declined",
    )
    amount = np.where(result == "opened", row["monthly_amount"].to_numpy(dtype=float), np.nan)
    return pd.DataFrame(
        {
            "household_id": pairs["household_id"].to_numpy(),
            "benefit": pairs["benefit"].to_numpy(),
            "result": result,
            "amount_granted": amount,
        }
    )
