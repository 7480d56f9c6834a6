"""The synthetic population: structure, determinism, and the gap between truth and observation."""

from __future__ import annotations

import pandas as pd
import pytest

from nonrecours.core.config import Settings
from nonrecours.core.schema import BENEFITS
from nonrecours.data.generate import generate
from tests.conftest import LAW


@pytest.fixture(scope="module")
def quarters(calibration):
    """Two quarters of 2,000 households, in memory (the generator's own objects)."""
    return generate(2000, 5, Settings(law=LAW), calibration, quiet=True)


def test_outcomes_and_entitlements_have_one_row_per_household_and_benefit(tables):
    n = len(tables["households"])
    assert n == 1500
    for name in ("outcomes", "entitlements"):
        df = tables[name]
        assert len(df) == n * len(BENEFITS)
        assert set(df["household_id"]) == set(tables["households"]["household_id"])


def test_p_claim_is_zero_where_not_eligible_and_a_probability_where_eligible(tables):
    o = tables["outcomes"]
    assert (o.loc[~o["eligible"], "p_claim"] == 0).all()
    assert (o.loc[o["eligible"], "p_claim"].between(0, 1, inclusive="neither")).all()
    assert (o.loc[~o["eligible"], "monthly_amount"] == 0).all()


def test_the_receipt_leak_is_gone_some_households_paid_are_not_entitled(quarters):
    """Receipt comes from a claim history paid on the agency's own file: some households it pays
    are no longer truly entitled (an overpayment), and the claimed are not all eligible."""
    o = pd.concat([q.outcomes for q in quarters.quarters])
    paid = o[o["status"] == "paid"]
    assert (~paid["eligible"]).sum() > 0
    assert (~paid["eligible"]).mean() < 0.2
    # and some entitled households are paid another amount than the true one
    entitled = paid[paid["eligible"]]
    assert ((entitled["paid_amount"] - entitled["monthly_amount"]).abs() > 1).any()
    assert (o.loc[o["status"] != "paid", "paid_amount"] == 0).all()
    assert {"pending", "refused"} <= set(o["status"].astype(str))
    assert (o["claimed"] == o["status"].isin(["paid", "pending"])).all()


def test_the_holder_sees_paid_benefits_and_not_css_nor_aspa(tables):
    h = tables["households"].set_index("household_id")
    status = tables["outcomes"].pivot(index="household_id", columns="benefit", values="status").astype(str)
    for b in ("rsa", "ppa", "aide_logement", "af", "aah"):
        assert (h[f"receives_{b}"].astype(bool) == (status[b].reindex(h.index) == "paid")).all(), b
    for b in ("css_free", "css_contrib", "aspa"):
        assert h[f"receives_{b}"].isna().all(), b


def test_what_the_agency_holds_depends_on_the_files_it_holds(quarters):
    """Recent pay and self-employed turnover only for RSA/PPA files, rent only for housing-aid
    files (0 for owners and free housing), the disability rate only for AAH files; missing is NA,
    never 0. The pay of year N-2 (tax notice) for everyone."""
    q = quarters.current
    ids = q.households["household_id"].to_numpy()
    col = {b: i for i, b in enumerate(BENEFITS)}
    declares = pd.Series(q.files[:, col["rsa"]] | q.files[:, col["ppa"]], index=ids)
    ind = q.individuals
    assert (ind["known_pay_monthly"].notna() == ind["household_id"].map(declares)).all()
    assert 0 < ind["known_pay_monthly"].notna().mean() < 0.5
    assert (ind["known_turnover_monthly"].notna() == ind["known_pay_monthly"].notna()).all()
    self_employed = ind["activity"].astype(str) == "self_employed"
    assert 0.005 < self_employed.mean() < 0.05
    assert (ind.loc[~self_employed & ind["known_turnover_monthly"].notna(), "known_turnover_monthly"] == 0).all()
    assert ind["known_turnover_monthly"][self_employed].isna().any()  # most self-employed have no RSA/PPA file
    assert ind["declared_pay_n2"].notna().all() and (ind["declared_pay_n2"] != ind["declared_pay_last_year"]).any()
    rent_known = q.households["rent_monthly"].notna().to_numpy()
    renting = q.households["tenure"].isin(["social_renter", "private_renter"]).to_numpy()
    assert (rent_known == (~renting | q.files[:, col["aide_logement"]])).all()
    assert (q.households.loc[~renting, "rent_monthly"] == 0).all()
    aah_file = pd.Series(q.files[:, col["aah"]], index=ids)
    assert (ind["disability_rate"].notna() == ind["household_id"].map(aah_file)).all()


def test_the_law_engine_marks_what_it_estimated(quarters):
    """A renter without a housing-aid file gets a rent estimate, and its entitlements say so."""
    q = quarters.current
    est = q.agency.drop_duplicates("household_id").set_index("household_id")["estimated_inputs"].astype(str)
    h = q.households.set_index("household_id")
    rent_missing = h["rent_monthly"].isna()
    assert est[rent_missing].str.contains("rent").all()
    assert not est[~rent_missing].str.contains("rent").any()
    no_pay = q.individuals.groupby("household_id")["known_pay_monthly"].apply(lambda s: s.isna().all())
    workers = q.individuals[q.individuals["activity"].astype(str).isin(["employed", "unemployed"])][
        "household_id"
    ].unique()
    assert est[no_pay[no_pay].index.intersection(workers)].str.contains("pay").all()
    undeclared = q.individuals[
        (q.individuals["activity"].astype(str) == "self_employed") & q.individuals["known_turnover_monthly"].isna()
    ]["household_id"].unique()
    assert len(undeclared) > 0 and est[undeclared].str.contains("pay").all()


def test_quarters_follow_the_same_households_and_claims_start_and_stop(quarters):
    first, second = quarters.quarters
    before, after = list(first.households["household_id"]), list(second.households["household_id"])
    stayed = [h for h in before if h in set(after)]
    assert 0.95 * len(before) <= len(stayed) < len(before)  # about 1% leave a quarter
    assert [h for h in after if h in set(before)] == stayed  # the same households, in the same order
    arrived = [h for h in after if h not in set(before)]
    assert arrived and min(arrived) > max(before)  # and new ones, under ids never used
    assert (first.reference_month, second.reference_month) == ("2025-06", "2025-09")
    a = first.outcomes.set_index(["household_id", "benefit"])["claimed"]
    a = a[a.index.get_level_values("household_id").isin(stayed)]
    b = second.outcomes.set_index(["household_id", "benefit"])["claimed"].reindex(a.index)
    assert (b & ~a).sum() > 0 and (a & ~b).sum() > 0
    # Spontaneous claims are the first quarter's no-contact potential outcome, granted if entitled.
    spontaneous = first.outcomes.set_index(["household_id", "benefit"])["claim_if_not_contacted"].reindex(a.index)
    started = second.outcomes.set_index(["household_id", "benefit"])["status"].astype(str).reindex(a.index)
    assert started[spontaneous].isin(["paid", "pending", "refused"]).all()


def test_potential_outcomes_never_let_a_contact_prevent_a_claim(quarters):
    o = pd.concat([q.outcomes for q in quarters.quarters])
    assert (o["claim_if_contacted"] >= o["claim_if_not_contacted"]).all()
    assert (o["p_claim_if_contacted"] >= o["p_claim_if_not_contacted"] - 1e-12).all()
    closed = ~o["eligible"] | o["claimed"]
    for c in ("claim_if_contacted", "claim_if_not_contacted", "reached_if_contacted"):
        assert not o.loc[closed, c].any(), c
    open_ = o[~closed]
    # contacts help some, and not those who refuse: an informed refusal is never changed
    assert open_["claim_if_contacted"].mean() > open_["claim_if_not_contacted"].mean()
    refusal = open_[open_["nonclaim_reason"] == "refusal"]
    assert len(refusal) and not (refusal["claim_if_contacted"] & ~refusal["claim_if_not_contacted"]).any()
    transitory = open_[open_["nonclaim_reason"] == "transitory"]
    assert transitory["claim_if_not_contacted"].all()


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
    for qa, qb in zip(a.quarters, b.quarters):
        for name in ("individuals", "households", "outcomes"):
            pd.testing.assert_frame_equal(getattr(qa, name), getattr(qb, name))
    assert not a.individuals["age"].equals(c.individuals["age"])


def test_the_observed_benefits_are_a_scenario_setting(calibration):
    settings = Settings(law=LAW, scenario={"observed_benefits": ("css_free", "aspa")})
    pop = generate(200, 3, settings, calibration, quarters=1, quiet=True)
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
    for ours, column in (
        ("pay", "known_pay_monthly"),
        ("turnover", "known_turnover_monthly"),
        ("pension_monthly", "pension_monthly"),
        ("unemployment", "unemployment_benefit_monthly"),
    ):
        assert persons[ours].max() <= INDIVIDUALS.column(column).max, ours
    assert persons["age"].max() <= INDIVIDUALS.column("age").max
