"""The synthetic population against the published figures it is calibrated to (slow tier).

Non-take-up within four points of DREES's rates for RSA, PPA, both CSS and ASPA; the published
gradients in the right direction; INSEE's household shares and poverty rate.
"""

from __future__ import annotations

import pytest

from nonrecours.core.config import LawConfig, Settings
from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS, OUTCOMES, validate
from nonrecours.data.generate import generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def population(calibration):
    return generate(40_000, 2026, Settings(law=LawConfig(workers=2)), calibration, quiet=True)


@pytest.fixture(scope="module")
def summary(population):
    return population.summary


def test_a_large_population_follows_the_schema(population):
    # The tails of the income draws once broke the schema's ranges only past 100,000 households.
    for table, frame in ((INDIVIDUALS, population.individuals), (HOUSEHOLDS, population.households), (OUTCOMES, population.outcomes)):
        validate(frame, table)


@pytest.mark.parametrize("benefit", ["rsa", "ppa", "css_free", "css_contrib", "aspa"])
def test_non_take_up_is_within_four_points_of_the_published_rate(summary, benefit):
    b = summary["benefits"][benefit]
    assert b["eligible_households"] > 300
    assert abs(b["ntu"] - b["ntu_target"]) <= 0.04, b


def test_eligibility_rates_are_plausible_for_france(summary):
    share = {b: v["eligible_share"] for b, v in summary["benefits"].items()}
    # About 1.9M households get RSA with a third not claiming: 6-12% eligible; PPA about 4.5M
    # recipients; housing aid about 6M.
    assert 0.05 < share["rsa"] < 0.12
    assert 0.12 < share["ppa"] < 0.28
    assert 0.12 < share["aide_logement"] < 0.28
    assert 0.01 < share["aah"] < 0.05


def test_household_types_follow_insee_shares(summary):
    for t, target in summary["household_type_share_target"].items():
        assert summary["household_type_share"][t] == pytest.approx(target, abs=0.015), t


def test_the_poverty_rate_is_close_to_france_s(summary):
    assert 0.11 <= summary["poverty_rate"] <= 0.18


def test_rsa_gradients_point_the_published_way(summary):
    g = summary["gradients"]
    assert g["rsa_housing_aid"]["with"] < g["rsa_housing_aid"]["without"]
    assert g["rsa_family_benefits"]["with"] < g["rsa_family_benefits"]["without"]
    t = g["rsa_tenure"]
    assert t["social_renter"] < t["private_renter"] < t["owner"]
    assert g["rsa_household_type"]["single_mother"] < g["rsa_household_type"]["couple_no_child"]
    assert g["rsa_age"]["25_29"] > g["rsa_age"]["other"]
    assert g["rsa_education"]["higher"] > g["rsa_education"]["other"]
    assert g["rsa_digital_exclusion"]["excluded"] > g["rsa_digital_exclusion"]["other"]
    assert g["rsa_recent_event"]["event"] > g["rsa_recent_event"]["none"]
    assert g["rsa_territory"]["rural"] > g["rsa_territory"]["large_urban"]


def test_aspa_gradients_point_the_published_way(summary):
    g = summary["gradients"]
    a = g["aspa_amount"]
    assert a["<100"] > a["100-200"] > a[">=500"]
    assert g["aspa_tenure"]["renter"] < g["aspa_tenure"]["owner"]
    assert g["aspa_sex"]["women"] > g["aspa_sex"]["men"]
