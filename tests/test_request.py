"""The API's request models come from the schema and refuse bad households with the field's path;
reasons say the household's own values in words."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from nonrecours.core.schema import FEATURES, HOUSEHOLDS, INDIVIDUALS
from nonrecours.serving.reasons import estimated_text, phrase, reasons
from nonrecours.serving.request import (
    Household,
    OutcomeIn,
    example_households,
    from_tables,
    to_tables,
)


def example(i: int = 0) -> dict:
    return copy.deepcopy(example_households()[i])


def error_paths(data: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        Household.model_validate(data)
    return [e["loc"] for e in info.value.errors()]


def test_the_shipped_example_is_valid_and_becomes_schema_valid_tables():
    households = [Household.model_validate(h) for h in example_households()]
    individuals, table = to_tables(households)
    assert len(table) == len(households) >= 5
    assert table["household_type"].nunique() >= 4
    assert len(individuals) == sum(len(h["members"]) for h in example_households())
    assert (table["n_persons"].to_numpy() == [len(h["members"]) for h in example_households()]).all()
    assert list(table.columns) == HOUSEHOLDS.names and list(individuals.columns) == INDIVIDUALS.names


def test_every_schema_column_is_in_the_request_with_its_meaning():
    schema = Household.model_json_schema()
    member = schema["$defs"]["Member"]["properties"]
    for col in INDIVIDUALS.columns:
        if col.name not in ("person_id", "household_id"):
            assert col.description in member[col.name]["description"]
    for col in HOUSEHOLDS.columns:
        if col.name != "n_persons":
            assert col.description in schema["properties"][col.name]["description"]


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda h: h["members"][0].update(known_pay_monthly=-100), ("members", 0, "known_pay_monthly")),
        (lambda h: h["members"][0].update(age=250), ("members", 0, "age")),
        (lambda h: h["members"][0].update(age="forty"), ("members", 0, "age")),
        (lambda h: h["members"][0].update(activity="astronaut"), ("members", 0, "activity")),
        (lambda h: h["members"][0].pop("sex"), ("members", 0, "sex")),
        (lambda h: h.update(members=[]), ("members",)),
        (lambda h: h.update(depcom="Lyon"), ("depcom",)),
        (lambda h: h.update(rent_monthly=float("nan")), ("rent_monthly",)),
        (lambda h: h.update(tenure=None), ("tenure",)),
        (lambda h: h.update(colour="blue"), ("colour",)),
    ],
)
def test_a_bad_field_is_refused_with_its_path(mutate, path):
    data = example()
    mutate(data)
    assert path in error_paths(data)


def test_a_benefit_unit_needs_exactly_one_head():
    data = example(2)  # a couple with children: the partner becomes a second head
    data["members"][1]["role"] = "head"
    with pytest.raises(ValidationError, match="benefit unit 0 must have exactly one 'head'"):
        Household.model_validate(data)


def test_a_head_is_at_least_sixteen():
    # Found by fuzzing the API: a baby alone in a dwelling broke the profile's equivalence scale.
    data = example(0)
    data["members"][0]["age"] = 0
    with pytest.raises(ValidationError, match=r"members\.0\.age: the head of benefit unit 0 is 0"):
        Household.model_validate(data)


def test_an_outcome_cannot_grant_an_amount_without_a_claim_or_happen_in_the_future():
    base = {"household_id": 1, "benefit": "rsa", "contacted": True, "outcome_date": "2026-01-02"}
    assert OutcomeIn.model_validate({**base, "claimed": True, "amount_granted": 500}).amount_granted == 500
    with pytest.raises(ValidationError, match="amount_granted"):
        OutcomeIn.model_validate({**base, "claimed": False, "amount_granted": 500})
    with pytest.raises(ValidationError, match="in the future"):
        OutcomeIn.model_validate({**base, "outcome_date": "2999-01-01"})
    with pytest.raises(ValidationError):
        OutcomeIn.model_validate({**base, "benefit": "lottery"})


@pytest.mark.parametrize("field", ["household_id", "decision_id"])
def test_an_outcome_id_the_database_cannot_hold_is_refused_by_name(field):
    """The fuzzer once sent decision_id 2**63, which SQLite cannot bind: a 500 instead of a 422."""
    base = {"household_id": 1, "benefit": "rsa", "contacted": True, "outcome_date": "2026-01-02"}
    assert getattr(OutcomeIn.model_validate({**base, field: 2**63 - 1}), field) == 2**63 - 1
    with pytest.raises(ValidationError, match=field):
        OutcomeIn.model_validate({**base, field: 2**63})


@pytest.mark.parametrize(
    "feature, value, words",
    [
        ("pay_change", -0.4, "pay fell by 40%"),
        ("pay_change", -1.0, "no pay any more"),
        ("pay_change", float("nan"), "no pay declared last year"),
        ("receives_aide_logement", 1.0, "already receives the housing aid"),
        ("receives_this", 0.0, "does not receive the revenu de solidarité active"),
        ("receives_css_free", float("nan"), "cannot see whether"),
        ("rent_burden", 0.45, "rent is 45% of income"),
        ("rent_monthly", float("nan"), "rent not held by the agency"),
        ("income_known_per_cu", float("nan"), "no recent income held"),
        ("law_estimated_inputs", "rent", "estimated input(s): rent"),
        ("digital_exclusion", True, "on paper"),
    ],
)
def test_a_reason_states_the_households_own_value(feature, value, words):
    assert words in phrase(feature, value, "rsa", "en")


def test_reasons_are_the_strongest_contributions_with_their_direction():
    profiles = pd.DataFrame([{f: 0 for f in FEATURES}] * 2).assign(
        benefit="rsa",
        pay_change=[-0.4, 0.0],
        digital_exclusion=[True, False],
        tenure="owner",
        household_type="single_person",
        head_activity="employed",
        territory_type="rural",
        reported_event="none",
        law_estimated_inputs="none",
    )
    contrib = pd.DataFrame(np.zeros((2, len(FEATURES))), columns=list(FEATURES))
    contrib.loc[0, "pay_change"] = 0.9
    contrib.loc[0, "digital_exclusion"] = -1.2
    contrib.loc[0, "n_children"] = 0.1
    said = reasons(profiles, contrib, k=2, language="en")
    assert said[0] == [
        "no online account: corresponds with the agency on paper (lowers the score)",
        "pay fell by 40% against last year's monthly average (raises the score)",
    ]
    assert said[1] == []  # no contribution, nothing to say
    # where the law engine estimated an input, the agent is told which and what to ask for
    said = reasons(profiles.assign(law_estimated_inputs=["rent", "pay"]), contrib, k=2, language="en")
    assert "estimated rent" in said[0][-1] and "lease" in said[0][-1]
    assert said[1] == [estimated_text("pay", "en")]


def test_what_the_agency_does_not_hold_is_sent_as_null_and_read_as_na():
    body = example(0)
    body["rent_monthly"] = None
    for m in body["members"]:
        m["known_pay_monthly"] = None
        m["disability_rate"] = None
    individuals, table = to_tables([Household.model_validate(body)])
    assert (
        table["rent_monthly"].isna().all()
        and individuals["known_pay_monthly"].isna().all()
        and individuals["disability_rate"].isna().all()
    )
    del body["rent_monthly"]  # nullable fields may also be left out
    assert to_tables([Household.model_validate(body)])[1]["rent_monthly"].isna().all()


def test_raw_tables_round_trip_through_request_bodies(tables):
    hh = tables["households"].iloc[:30]
    ind = tables["individuals"][tables["individuals"]["household_id"].isin(hh["household_id"])]
    bodies = from_tables(ind, hh)
    individuals, back = to_tables([Household.model_validate(b) for b in bodies])
    pd.testing.assert_frame_equal(
        back.drop(columns="household_id"),
        hh.drop(columns="household_id").reset_index(drop=True),
        check_categorical=False,
    )
    cols = [c for c in INDIVIDUALS.names if c not in ("household_id", "person_id")]
    pd.testing.assert_frame_equal(individuals[cols], ind[cols].reset_index(drop=True), check_categorical=False)


UNICODE_DIGITS = {
    "fullwidth": "\uff17\uff15\uff10\uff15\uff16",
    "arabic-indic": "\u0667\u0665\u0660\u0665\u0666",
    "devanagari": "\u096d\u096b\u0966\u096b\u096c",
}


@pytest.mark.parametrize("script", sorted(UNICODE_DIGITS))
def test_every_pattern_checked_field_is_ascii_by_construction(script):
    """Every pattern in the schema spells its digits [0-9], never \\d, which Python's and Rust's
    regex engines both read as any Unicode digit: a commune code in another script is refused by
    the API's model and by table validation alike, and an ASCII one passes."""
    from nonrecours.core.schema import TABLES, SchemaError, validate

    patterned = [(t, c) for t in (*TABLES.values(), HOUSEHOLDS) for c in t.columns if c.pattern]
    assert patterned and all("\\d" not in c.pattern for _, c in patterned)
    data = example()
    data["depcom"] = UNICODE_DIGITS[script]
    assert ("depcom",) in error_paths(data)
    good = example()
    _, households = to_tables([Household.model_validate(good)])
    for value, refused in ((UNICODE_DIGITS[script], True), ("75056", False), ("2A004", False)):
        bad = households.astype({"depcom": "object"}).assign(depcom=value)
        if refused:
            with pytest.raises(SchemaError, match="depcom"):
                validate(bad, HOUSEHOLDS)
        else:
            validate(bad, HOUSEHOLDS)


@pytest.mark.parametrize(
    "where, value",
    [("receives_rsa", "yes"), ("receives_rsa", 1), ("contacts_last_year", "3"), ("contacts_last_year", True)],
)
def test_no_lax_coercion_what_the_document_does_not_declare_is_refused(where, value):
    data = example()
    data[where] = value
    assert (where,) in error_paths(data)


def test_no_lax_coercion_in_a_members_number_either():
    data = example()
    data["members"][0]["pension_monthly"] = "1.5"
    assert ("members", 0, "pension_monthly") in error_paths(data)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_model_feature_and_category_has_words_in_each_language(language):
    """No reason falls back to a column description: each feature the model sees has a phrase,
    each category its word, in both catalogues."""
    from nonrecours.core.catalogue import catalogue
    from nonrecours.core.schema import (
        ACTIVITIES,
        ESTIMATED_INPUTS,
        HOUSEHOLD_TYPES,
        REPORTED_EVENTS,
        TENURES,
        TERRITORY_TYPES,
    )

    t = catalogue(language)
    written = set(t.raw("reasons.phrases")) | {"pay_change", "benefit"}
    assert {f for f in FEATURES if not f.startswith("receives_")} <= written
    categories = t.raw("reasons.categories")
    for feature, values in (
        ("household_type", HOUSEHOLD_TYPES),
        ("head_activity", ACTIVITIES),
        ("tenure", TENURES),
        ("territory_type", TERRITORY_TYPES),
        ("reported_event", REPORTED_EVENTS),
        ("law_estimated_inputs", ESTIMATED_INPUTS),
    ):
        assert set(categories[feature]) == set(values), feature


def test_reasons_in_french_say_the_households_own_values():
    assert (
        phrase("pay_change", -0.4, "rsa", "fr")
        == "salaire en baisse de 40\u00a0% par rapport à la moyenne mensuelle de l'an dernier"
    )
    assert phrase("receives_this", 0.0, "rsa", "fr") == "ne perçoit pas : revenu de solidarité active (RSA)"
    assert phrase("tenure", "social_renter", "rsa", "fr") == "logement : locataire HLM"
    assert phrase("rent_monthly", 612.4, "rsa", "fr") == "loyer de 612\u00a0€ par mois"
    assert phrase("n_children", 2, "rsa", "fr") == "2 enfant(s) de moins de 18 ans"
    profiles = pd.DataFrame([{f: 0 for f in FEATURES}]).assign(
        benefit="rsa",
        pay_change=-0.4,
        tenure="owner",
        household_type="single_person",
        head_activity="employed",
        territory_type="rural",
        reported_event="none",
        law_estimated_inputs="rent",
    )
    contrib = pd.DataFrame(np.zeros((1, len(FEATURES))), columns=list(FEATURES))
    contrib.loc[0, "pay_change"] = 0.9
    said = reasons(profiles, contrib, k=2, language="fr")[0]
    assert (
        said[0]
        == "salaire en baisse de 40\u00a0% par rapport à la moyenne mensuelle de l'an dernier (augmente le score)"
    )
    assert said[-1].startswith("Montant OpenFisca-France calculé avec un loyer estimé") and "bail" in said[-1]
