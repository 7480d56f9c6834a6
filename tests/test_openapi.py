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
        ({"error": "2 validation errors for score__Input", "detail": [{"type": "missing", "loc": ["households", 0, "tenure"], "msg": "Field required"},
                                                                       {"type": "x", "loc": ["households", 1, "members", 0, "age"], "msg": "too old"}]},
         "2 validation errors for score__Input", "households.0.tenure: Field required; households.1.members.0.age: too old"),
        # BentoML, an error raised in an endpoint (InvalidArgument, NotFound): a one-element list
        ([{"error": "household_id: no decision was logged for this household"}], "household_id: no decision was logged for this household", None),
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
        },
        "components": {"schemas": {"InvalidArgument": {"properties": {"detail": {"type": "string"}}}, "Member": {"type": "object"},
                                   "Household": {"properties": {"members": {"type": "array"}}}}},
    }
    out = truthful_document(doc, {"/score", "/outcomes"})
    score, outcomes = out["paths"]["/score"]["post"], out["paths"]["/outcomes"]["post"]
    assert score["security"] == [{"apiKey": []}] and out["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert {"400", "401", "413", "429", "500", "503"} <= set(score["responses"]) and "404" not in score["responses"] and "404" in outcomes["responses"]
    assert all(r in outcomes["responses"]["400"]["description"] for r in CROSS_FIELD_RULES["/outcomes"])
    assert out["components"]["schemas"]["InvalidArgument"]["required"] == ["error"]
    assert out["components"]["schemas"]["Member"]["then"]["properties"]["age"]["minimum"] == 16
    assert out["components"]["schemas"]["Household"]["properties"]["members"]["contains"]["properties"]["benefit_unit"] == {"const": 0}
    assert "security" not in out["paths"]["/readyz"]["get"] and "503" in out["paths"]["/readyz"]["get"]["responses"]
    assert "security" not in doc["paths"]["/score"]["post"]  # the input is left as it was
