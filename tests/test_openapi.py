"""The API's error bodies and its OpenAPI document say the same thing (pure functions; the real
server's answers are checked in test_service.py and fuzzed in test_service_load.py)."""

from __future__ import annotations

import json

import pytest

from nonrecours.serving.openapi import CROSS_FIELD_RULES, ERROR_SCHEMA, error_body, truthful_document


@pytest.mark.parametrize(
    "sent, error, detail",
    [
        # BentoML, a request model's validation error: detail is a list of pydantic errors
        (
            {
                "error": "2 validation errors for score__Input",
                "detail": [
                    {"type": "missing", "loc": ["households", 0, "tenure"], "msg": "Field required"},
                    {"type": "x", "loc": ["households", 1, "members", 0, "age"], "msg": "too old"},
                ],
            },
            "2 validation errors for score__Input",
            "households.0.tenure: Field required; households.1.members.0.age: too old",
        ),
        # BentoML, an error raised in an endpoint (InvalidArgument, NotFound): a one-element list
        (
            [{"error": "household_id: no decision was logged for this household"}],
            "household_id: no decision was logged for this household",
            None,
        ),
        ({"error": "fine already"}, "fine already", None),
    ],
)
def test_every_error_body_becomes_the_declared_object(sent, error, detail):
    import jsonschema_rs

    body = json.loads(error_body(json.dumps(sent).encode()))
    jsonschema_rs.validate(ERROR_SCHEMA, body)
    assert body["error"] == error and body.get("detail") == detail


def test_a_body_that_is_not_json_still_gets_the_declared_shape():
    assert json.loads(error_body(b"Internal Server Error")) == {"error": "Internal Server Error"}


def test_the_document_declares_the_key_the_statuses_and_the_rules():
    doc = {
        "paths": {
            "/score": {"post": {"responses": {"200": {"description": "ok"}, "400": {"$ref": "x"}}}},
            "/outcomes": {"post": {"responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/campaign": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "priorities": {
                                            "default": None,
                                            "title": "Priorities",
                                            "type": "array",
                                            "items": {"type": "number"},
                                        }
                                    },
                                }
                            }
                        }
                    },
                    "responses": {},
                }
            },
        },
        "components": {
            "schemas": {
                "InvalidArgument": {"properties": {"detail": {"type": "string"}}},
                "Member": {"type": "object", "title": "Member"},
                "Household": {"title": "Household", "properties": {"members": {"type": "array"}}},
                "OutcomeIn": {"title": "OutcomeIn", "type": "object"},
            }
        },
    }
    out = truthful_document(doc, {"/score", "/outcomes"})
    score, outcomes = out["paths"]["/score"]["post"], out["paths"]["/outcomes"]["post"]
    assert (
        score["security"] == [{"apiKey": []}] and out["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    )
    assert (
        {"400", "401", "413", "429", "500", "503"} <= set(score["responses"])
        and "404" not in score["responses"]
        and "404" in outcomes["responses"]
    )
    assert all(r in outcomes["responses"]["400"]["description"] for r in CROSS_FIELD_RULES["/outcomes"])
    assert out["components"]["schemas"]["InvalidArgument"]["required"] == ["error"]
    assert out["components"]["schemas"]["Member"]["then"]["properties"]["age"]["minimum"] == 16
    assert out["components"]["schemas"]["Household"]["properties"]["members"]["contains"]["allOf"][1]["properties"][
        "benefit_unit"
    ] == {"const": 0}
    assert "security" not in out["paths"]["/readyz"]["get"] and "503" in out["paths"]["/readyz"]["get"]["responses"]
    assert "security" not in doc["paths"]["/score"]["post"]  # the input is left as it was
    # BentoML flattened the endpoint's Optional[list] to an array; its null default says otherwise
    priorities = out["paths"]["/campaign"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"
    ]["priorities"]
    assert (
        priorities["anyOf"] == [{"type": "array", "items": {"type": "number"}}, {"type": "null"}]
        and priorities["default"] is None
    )


@pytest.mark.parametrize(
    "outcome, valid",
    [
        ({"result": "opened", "amount_granted": 500.0}, True),
        ({"result": "declined"}, True),
        ({"contacted": True, "claimed": None}, True),
        ({"contacted": True, "claimed": True, "amount_granted": 400.0}, True),
        ({}, False),  # neither form
        ({"result": "declined", "contacted": True}, False),  # both
        ({"result": "declined", "amount_granted": 10.0}, False),  # an amount without a right opened
        ({"contacted": True, "claimed": False, "amount_granted": 10.0}, False),
    ],
)
def test_the_declared_outcome_forms_agree_with_the_request_model(outcome, valid):
    """What JSON Schema now says about an outcome's two forms is what the request model enforces."""
    import jsonschema_rs
    from pydantic import ValidationError

    from nonrecours.serving.openapi import OUTCOME_FORMS
    from nonrecours.serving.request import OutcomeIn

    body = {"household_id": 1, "benefit": "rsa", "outcome_date": "2026-01-02", **outcome}
    assert jsonschema_rs.is_valid(OUTCOME_FORMS, body) == valid
    try:
        OutcomeIn.model_validate(body)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == valid
