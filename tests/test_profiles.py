"""Household profiles: one builder, label-free, with protected attributes kept out of the model."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nonrecours.core.schema import BENEFITS, FEATURES, INDIVIDUALS, PROFILES, PROTECTED
from nonrecours.features.profiles import build_labels, build_profiles
from nonrecours.training.model import model_frame
from tests.conftest import make_observed, observed_person


def entitlements_for(households: pd.DataFrame, **amounts) -> pd.DataFrame:
    rows = []
    for hid in households["household_id"]:
        for b in BENEFITS:
            a = float(amounts.get(b, 0.0))
            rows.append(
                {"household_id": hid, "benefit": b, "eligible": a > 0, "monthly_amount": a, "estimated_inputs": "none"}
            )
    return pd.DataFrame(rows)


def test_a_household_gets_one_row_per_benefit_with_the_law_engine_s_amount():
    ind, hh = make_observed()
    p = build_profiles(ind, hh, entitlements_for(hh, rsa=560.0))
    assert list(p["benefit"]) == list(BENEFITS)
    rsa = p.set_index("benefit").loc["rsa"]
    assert rsa["law_eligible"] and rsa["law_amount"] == 560.0 and rsa["law_eligible_count"] == 1


def test_income_is_per_oecd_consumption_unit():
    # Two adults and a child of 10: 1 + 0.5 + 0.3 = 1.8 units.
    ind, hh = make_observed(
        observed_person(known_pay_monthly=1800.0, declared_pay_last_year=21600.0, activity="employed"),
        observed_person(role="partner", sex="M"),
        observed_person(role="child", age=10),
        household_type="couple_with_children",
    )
    p = build_profiles(ind, hh, entitlements_for(hh)).iloc[0]
    assert p["consumption_units"] == 1.8
    assert p["income_known_per_cu"] == 1000.0
    assert p["n_adults"] == 2 and p["n_children"] == 1


def test_a_fall_in_pay_is_seen_as_a_drop():
    ind, hh = make_observed(
        observed_person(known_pay_monthly=1200.0, declared_pay_last_year=24000.0, activity="employed")
    )
    p = build_profiles(ind, hh, entitlements_for(hh)).iloc[0]
    assert p["pay_change"] == -0.4 and p["pay_drop"]


def test_receipt_of_this_benefit_is_unknown_where_the_holder_cannot_see_it():
    ind, hh = make_observed(receives_rsa=True)
    p = build_profiles(ind, hh, entitlements_for(hh)).set_index("benefit")
    assert p.loc["rsa", "receives_this"] == 1.0
    assert p.loc["ppa", "receives_this"] == 0.0
    assert np.isnan(p.loc["aspa", "receives_this"])


def test_profiles_never_need_a_label():
    assert "outcomes" not in inspect.signature(build_profiles).parameters
    labels = build_labels(
        pd.DataFrame(
            {
                "household_id": [1],
                "benefit": ["rsa"],
                "eligible": [True],
                "claimed": [False],
                "monthly_amount": [500.0],
                "p_claim": [0.6],
            }
        )
    )
    assert labels["target"].tolist() == [True] and labels["unclaimed_amount"].tolist() == [500.0]


def test_protected_attributes_are_in_the_profiles_but_never_in_the_model_input(tables):
    assert set(PROTECTED) <= set(tables["profiles"].columns)
    assert not set(PROTECTED) & set(FEATURES)
    assert not set(INDIVIDUALS.with_role("protected")) & set(FEATURES)
    assert not {"household_id", "person_id"} & set(FEATURES)
    assert list(model_frame(tables["profiles"]).columns) == list(FEATURES)


def test_the_builder_does_not_modify_its_inputs(tables):
    ind, hh, ent = tables["individuals"].head(50), tables["households"].head(20), tables["entitlements"].head(160)
    before = [t.copy() for t in (ind, hh, ent)]
    build_profiles(ind, hh, ent)
    for a, b in zip((ind, hh, ent), before):
        pd.testing.assert_frame_equal(a, b)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_row_count_and_ids_are_preserved_for_any_subset_of_households(tables, data):
    ids = data.draw(
        st.sets(st.sampled_from(sorted(tables["households"]["household_id"].tolist())), min_size=1, max_size=40)
    )
    hh = tables["households"][tables["households"]["household_id"].isin(ids)]
    ind = tables["individuals"][tables["individuals"]["household_id"].isin(ids)]
    ent = tables["entitlements"][tables["entitlements"]["household_id"].isin(ids)]
    p = build_profiles(ind, hh, ent)
    assert len(p) == len(ids) * len(BENEFITS)
    assert set(p["household_id"]) == ids
    assert not p[[c for c in FEATURES if not PROFILES.column(c).nullable]].isna().any().any()
