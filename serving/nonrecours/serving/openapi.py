"""The API's contract made true: the error bodies the service sends, and the OpenAPI document it
publishes, say the same thing.

Where it sits: pure functions on JSON, called by the service's ASGI middleware
(:mod:`nonrecours.app.service`) on error responses and on ``/docs.json``. BentoML generates the
document from the request models; these add what it cannot know: the API key, the statuses the
middleware answers (401, 413, 429, 503), one shape for every error, and the cross-field rules,
declared in JSON Schema where it can say them and described on the 400 response where it
cannot.
"""

from __future__ import annotations

import copy
import json

from nonrecours.serving.request import MIN_HEAD_AGE

ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, naming the field at fault where there is one."},
        "detail": {
            "type": "string",
            "description": "For a refused body: each error as `path.to.field: message`, separated by `; `.",
        },
        "hint": {"type": "string", "description": "What to do about it."},
    },
}
READY_SCHEMA = {
    "type": "object",
    "required": ["ready", "reason"],
    "properties": {
        "ready": {"type": "boolean"},
        "reason": {
            "type": "string",
            "description": "Why not: no usable champion, the decision log unreachable, still loading.",
        },
    },
}
ERRORS = {
    "400": "Bad request: the body breaks the schema or a rule below; `error` and `detail` name the field.",
    "401": "Missing or invalid API key (`Authorization: Bearer <key>`).",
    "404": "Not found: the household was never scored, or the decision named is not one of its own.",
    "415": "A body that is not `application/json`.",
    "413": "Request body over `serving.max_body_bytes`, refused before it is parsed.",
    "429": "Over `serving.rate_limit_per_minute` for this API key; `Retry-After` says when to try again.",
    "500": "An unexpected error for this request alone (the others of its batch are answered); see the server log.",
    "503": "Not ready (no usable champion yet, or the decision log unreachable), or too many households "
    "waiting: try again later.",
}
CROSS_FIELD_RULES = {
    "/score": [
        "household ids are unique within a request",
        "every benefit unit has exactly one member of role `head` and at most one `partner`",
        "at most `serving.max_households_per_request` households",
    ],
    "/campaign": [
        "household ids are unique within a request",
        "every benefit unit has exactly one member of role `head` and at most one `partner`",
        "`priorities`, when given, has one value per household",
    ],
    "/outcomes": [
        "`outcome_date` is not in the future, nor more than a day before the decision it answers",
        "`idempotency_key` was not used before for another household",
    ],
}
CROSS_FIELD_RULES["/outcomes/batch"] = [*CROSS_FIELD_RULES["/outcomes"], "all outcomes are recorded, or none"]
QUOTED_CHARS = 1_000
"""Characters of a body that is not JSON kept as its error message."""
HEAD_AGE_RULE = {
    "if": {"properties": {"role": {"const": "head"}}, "required": ["role"]},
    "then": {"properties": {"age": {"minimum": MIN_HEAD_AGE}}},
}
"""A head of benefit unit is 16 or older."""
HEAD_IN_UNIT_ZERO = {
    "allOf": [
        {"$ref": "#/components/schemas/Member"},
        {"properties": {"role": {"const": "head"}, "benefit_unit": {"const": 0}}, "required": ["role", "benefit_unit"]},
    ]
}
"""Benefit unit 0 holds the household's reference person."""
OUTCOME_FORMS = {
    "oneOf": [
        {
            "required": ["result"],
            "properties": {"result": {"type": "string"}, "contacted": {"type": "null"}, "claimed": {"type": "null"}},
            "if": {"required": ["amount_granted"], "properties": {"amount_granted": {"type": "number"}}},
            "then": {"properties": {"result": {"const": "opened"}}},
        },
        {
            "required": ["contacted"],
            "properties": {"contacted": {"type": "boolean"}, "result": {"type": "null"}},
            "if": {"required": ["amount_granted"], "properties": {"amount_granted": {"type": "number"}}},
            "then": {"properties": {"claimed": {"not": {"const": False}}}},
        },
    ]
}
"""An outcome gives ``result`` (a campaign's) or ``contacted`` (the older form), never both; an
amount granted goes with a right opened (``result`` opened, or ``claimed`` not false)."""


def error_body(body: bytes) -> bytes:
    """One shape for every error: ``{"error": str, "detail"?: str}``. BentoML answers a model's
    validation error with ``detail`` as a list of pydantic errors, and an error raised in an
    endpoint as a one-element list; both become the object the document declares."""
    try:
        data = json.loads(body)
    except ValueError:
        return json.dumps({"error": body.decode("utf-8", "replace")[:QUOTED_CHARS]}).encode()
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict):
        data = {"error": json.dumps(data)}
    detail = data.get("detail")
    if isinstance(detail, list):
        data["detail"] = "; ".join(_pydantic_error(e) for e in detail)
    elif detail is not None and not isinstance(detail, str):
        data["detail"] = json.dumps(detail)
    data["error"] = str(data.get("error", "error"))
    return json.dumps(data).encode()


def _schemas(node: object):
    """Every object schema in the document (components and inline request bodies alike)."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield node
        for value in list(node.values()):
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def _pydantic_error(e: object) -> str:
    if not isinstance(e, dict):
        return str(e)
    where = ".".join(str(part) for part in e.get("loc", ()))
    return f"{where}: {e.get('msg', '')}" if where else str(e.get("msg", ""))


def truthful_document(doc: dict, protected: set[str]) -> dict:
    """The OpenAPI document with the API key declared, every status the service answers
    documented with its body, and the cross-field rules declared or described. ``protected``:
    the paths behind the key. The input is left as it was."""
    doc = copy.deepcopy(doc)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        if name in schemas:
            schemas[name] = {**ERROR_SCHEMA, "title": name}
    components.setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of NONRECOURS_API_KEYS.",
    }
    for schema in _schemas(doc):
        _declare_rules(schema)
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _document_statuses(path, operation, path in protected)
    return doc


def _declare_rules(schema: dict) -> None:
    """What one object schema should say and BentoML's does not."""
    for field in schema.get("properties", {}).values():
        if (
            isinstance(field, dict)
            and "default" in field
            and field["default"] is None
            and field.get("type") not in (None, "null")
        ):
            # BentoML flattens an endpoint's Optional[...] argument to its type; its default (null)
            # says it takes null too
            inner = {k: v for k, v in field.items() if k not in ("default", "title", "description")}
            for k in inner:
                del field[k]
            field["anyOf"] = [inner, {"type": "null"}]
    title = schema.get("title")
    if title == "Member":
        schema.update(HEAD_AGE_RULE)
    elif title == "Household" and "members" in schema.get("properties", {}):
        schema["properties"]["members"]["contains"] = HEAD_IN_UNIT_ZERO
    elif title in ("OutcomeIn", "OutcomeRequest"):
        schema.update(OUTCOME_FORMS)


def _document_statuses(path: str, operation: dict, protected: bool) -> None:
    responses = operation["responses"]
    if path == "/readyz":
        responses["200"] = {"description": "Ready: a champion is loaded and the decision log answers."}
        responses["503"] = {"description": "Not ready.", "content": {"application/json": {"schema": READY_SCHEMA}}}
    if not protected:
        return
    operation["security"] = [{"apiKey": []}]
    for status in ("400", "401", "404", "413", "415", "429", "500", "503"):
        if status == "404" and not path.startswith("/outcomes"):
            continue
        described = ERRORS[status]
        if status == "400" and path in CROSS_FIELD_RULES:
            described += " Rules beyond the schema: " + "; ".join(CROSS_FIELD_RULES[path]) + "."
        responses[status] = {
            "description": described,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
