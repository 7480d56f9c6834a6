"""The synthetic population: structure, determinism, and the gap between truth and observation."""

from __future__ import annotations

import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.schema import BENEFITS
from nonrecours.data.generate import generate
from tests.conftest import LAW


def test_outcomes_and_entitlements_have_one_row_per_household_and_benefit(tables):
    n = len(tables["households"])
    assert n == 1500
    for name in ("outcomes", "entitlements"):
        df = tables[name]
        assert len(df) == n * len(BENEFITS)
        assert set(df["household_id"]) == set(tables["households"]["household_id"])


def test_only_the_eligible_claim_and_p_claim_is_zero_otherwise(tables):
    o = tables["outcomes"]
    assert not (o["claimed"] & ~o["eligible"]).any()
    assert (o.loc[~o["eligible"], "p_claim"] == 0).all()
    assert (o.loc[o["eligible"], "p_claim"].between(0, 1, inclusive="neither")).all()
    assert (o.loc[~o["eligible"], "monthly_amount"] == 0).all()


def test_a_caf_like_holder_sees_the_benefits_it_pays_and_not_css_nor_aspa(tables):
    h = tables["households"].set_index("household_id")
    claimed = tables["outcomes"].pivot(index="household_id", columns="benefit", values="claimed")
    for b in ("rsa", "ppa", "aide_logement", "af", "aah"):
        assert (h[f"receives_{b}"].astype(bool) == claimed[b].reindex(h.index)).all(), b
    for b in ("css_free", "css_contrib", "aspa"):
        assert h[f"receives_{b}"].isna().all(), b


def test_every_household_has_members_and_a_reference_person(tables):
    ind = tables["individuals"]
    heads = ind[(ind["role"] == "head") & (ind["benefit_unit"] == 0)]
    assert heads["household_id"].is_unique
    assert set(heads["household_id"]) == set(tables["households"]["household_id"])
    sizes = ind.groupby("household_id").size()
    assert (tables["households"].set_index("household_id")["n_persons"] == sizes).all()


def test_the_law_engine_on_observed_data_disagrees_with_the_truth_for_some_households_not_most(tables):
    both = tables["entitlements"].merge(tables["outcomes"], on=["household_id", "benefit"], suffixes=("_obs", "_true"))
    eligible_somewhere = both[both["eligible_obs"] | both["eligible_true"]]
    disagree = (eligible_somewhere["eligible_obs"] != eligible_somewhere["eligible_true"]).mean()
    assert 0.01 < disagree < 0.25


def test_the_same_seed_gives_the_same_population_and_another_seed_does_not(calibration):
    settings = Settings(law=LAW)
    a = generate(300, 11, settings, calibration, quiet=True)
    b = generate(300, 11, settings, calibration, quiet=True)
    c = generate(300, 12, settings, calibration, quiet=True)
    for name in ("individuals", "households", "outcomes"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.individuals["age"].equals(c.individuals["age"])


def test_the_observed_benefits_are_a_scenario_setting(calibration):
    settings = Settings(law=LAW, scenario={"observed_benefits": ("css_free", "aspa")})
    pop = generate(200, 3, settings, calibration, quiet=True)
    assert pop.households["receives_rsa"].isna().all()
    assert pop.households["receives_aspa"].notna().all()


def test_income_tails_stay_within_the_schema_at_a_million_people(calibration):
    """The draws alone (no law engine): extreme pay must not give an unemployment benefit or a
    pension beyond the schema's ranges (once seen at 125,000 households)."""
    import numpy as np

    from nonrecours.core.schema import INDIVIDUALS
    from nonrecours.data.generate import draw_households, draw_members, draw_resources

    rng = np.random.default_rng(1)
    hh = draw_households(500_000, rng, calibration)
    persons = draw_resources(draw_members(hh, rng, calibration), rng, calibration)
    assert len(persons) > 1_000_000
    assert persons["unemployment"].max() <= calibration.shapes.unemployment.max_monthly
    for ours, column in (("pay", "known_pay_monthly"), ("pension_monthly", "pension_monthly"), ("unemployment", "unemployment_benefit_monthly")):
        assert persons[ours].max() <= INDIVIDUALS.column(column).max, ours
    assert persons["age"].max() <= INDIVIDUALS.column("age").max
