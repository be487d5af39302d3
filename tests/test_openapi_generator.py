"""The OpenAPI document is one a client generator turns into a pleasant client: every operation named, code lists
named once, examples everywhere (valid ones), descriptions on every schema and property, the errors and headers an
integrator will meet. The checks run over every operation, so they hold for routes added later too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
import pytest
from jsonschema import Draft202012Validator

from service.openapi import Codes, code, example_of, member_names, misread_by_the_linter, operation_id

METHODS = ("get", "post", "put", "patch", "delete")
CAMEL_CASE = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*")


@pytest.fixture(scope="module")
def document(app) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(json.dumps(app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()))


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolved(document: dict, thing: dict) -> dict:
    while "$ref" in thing:
        _, section, name = thing["$ref"].removeprefix("#/").split("/")
        thing = document["components"][section][name]
    return thing


def parameters(document: dict, path: str, operation: dict) -> list[dict]:
    shared = document["paths"][path].get("parameters", [])
    return [resolved(document, p) for p in shared + operation.get("parameters", [])]


def media_types(document: dict, operation: dict) -> Iterator[tuple[str, dict]]:
    """(where, media type object) of the request body and of every success response."""
    body = operation.get("requestBody")
    if body:
        for media, content in resolved(document, body).get("content", {}).items():
            yield f"request {media}", content
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            for media, content in resolved(document, response).get("content", {}).items():
                yield f"{status} {media}", content


def test_every_operation_has_a_unique_camel_case_operation_id(document):
    ids = [operation.get("operationId") for _, _, operation in operations(document)]
    assert all(isinstance(found, str) and CAMEL_CASE.fullmatch(found) for found in ids), ids
    assert len(ids) == len(set(ids)), sorted(found for found in ids if ids.count(found) > 1)


def test_operation_ids_come_from_the_summary():
    assert operation_id("Correct an incident") == "correctIncident"
    assert operation_id("List an institution's locations") == "listInstitutionLocations"
    assert operation_id("Add a location with its capacity history") == "addLocation"


def test_the_derived_id_gives_way_to_one_a_view_declares(document):
    assert document["paths"]["/stats/hotspots"]["get"]["operationId"] == "getHotspots"


def _enums(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, dict):
        if "enum" in node:
            yield where
        for key, value in node.items():
            yield from _enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from _enums(value, f"{where}/{n}")


def test_code_lists_are_named_components_referred_to_everywhere(document):
    schemas = document["components"]["schemas"]
    inline = [where for where in _enums(document, "#") if not re.fullmatch(r"#/components/schemas/[A-Za-z]+", where)]
    assert inline == [], "an enum outside a named component: declare its Codes (service/openapi.py)"
    incident = schemas["IncidentOut"]["properties"]
    assert incident["kind"] == {"$ref": "#/components/schemas/Kind"}
    assert incident["residentAgeBand"]["$ref"] == "#/components/schemas/AgeBand"
    assert schemas["IncidentIn"]["properties"]["kind"] == {"$ref": "#/components/schemas/Kind"}
    for name, schema in schemas.items():
        if "enum" in schema and not all(isinstance(v, str) and v[:1].isalpha() for v in schema["enum"]):
            assert len(schema.get("x-enum-varnames", ())) == len(schema["enum"]), name


def test_age_bands_get_member_names_and_not_value_numbers(document):
    age_band = document["components"]["schemas"]["AgeBand"]
    assert dict(zip(age_band["enum"], age_band["x-enum-varnames"], strict=True)) == {
        "under12": "UNDER_12", "12to15": "AGE_12_TO_15", "16to17": "AGE_16_TO_17", "18to22": "AGE_18_TO_22",
        "23plus": "AGE_23_PLUS", "unknown": "UNKNOWN"}
    assert member_names(("green", "red"), "X") == ()


def test_two_code_lists_of_one_name_are_refused(app):
    field = code(Codes("Kind", ("other", "values"), "Not the kinds."))
    field._bind_to_schema("kind", ma.Schema())
    with pytest.raises(ValueError, match="two code lists are named Kind"):
        app.extensions["flask-smorest"]["apis"][""]["ext_obj"].ma_plugin.converter.field2property(field)


def test_every_body_response_and_parameter_has_an_example(document):
    missing = []
    for path, method, operation in operations(document):
        for parameter in parameters(document, path, operation):
            if "example" not in parameter and "examples" not in parameter:
                missing.append(f"{method} {path} parameter {parameter['name']}")
        for where, content in media_types(document, operation):
            if "schema" in content and "example" not in content and "examples" not in content:
                derived = example_of(content["schema"], document["components"]["schemas"],
                                     writing=where.startswith("request"))
                if not misread_by_the_linter(derived):  # only where the NL ruleset would fail (postcode4)
                    missing.append(f"{method} {path} {where}")
    assert missing == []


def test_examples_are_valid_against_their_schemas(document):
    components = {"components": document["components"]}
    wrong = []
    for path, method, operation in operations(document):
        checks = [(f"parameter {p['name']}", p["schema"], p["example"])
                  for p in parameters(document, path, operation) if "schema" in p and "example" in p]
        checks += [(where, content["schema"], content["example"])
                   for where, content in media_types(document, operation)
                   if "example" in content and "schema" in content and "json" in where]
        for where, schema, example in checks:
            for error in Draft202012Validator({**components, **schema}).iter_errors(example):
                wrong.append(f"{method} {path} {where}: {error.message}")
    assert wrong == []


def test_derived_examples_leave_out_what_a_direction_does_not_carry():
    schema = {"type": "object", "properties": {"id": {"type": "string", "readOnly": True},
                                               "secret": {"type": "string", "writeOnly": True}}}
    assert example_of(schema, {}, writing=True) == {"secret": "text"}
    assert example_of(schema, {}, writing=False) == {"id": "text"}


def test_every_schema_and_property_is_described(document):
    schemas = document["components"]["schemas"]
    missing = [name for name, schema in schemas.items() if not schema.get("description")]
    for name, schema in schemas.items():
        for prop, definition in schema.get("properties", {}).items():
            refs = [definition, *definition.get("anyOf", []), *definition.get("allOf", [])]
            described = definition.get("description") or any(
                "$ref" in ref and resolved(document, ref).get("description") for ref in refs)
            if not described:
                missing.append(f"{name}.{prop}")
    assert missing == [], "describe these for an integrator (a docstring on the schema, a description on the field)"


def test_errors_that_can_happen_are_documented(document):
    for path, method, operation in operations(document):
        responses, where = operation["responses"], f"{method} {path}"
        if "{" in path:
            assert "404" in responses, where
        assert "429" in responses, where
    patch = document["paths"]["/incidents/{incidentId}"]["patch"]["responses"]
    assert {"409", "412", "428"} <= patch.keys()
    assert {"409", "422"} <= document["paths"]["/incidents"]["post"]["responses"].keys()


def test_response_headers_are_documented(document):
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            headers = resolved(document, response).get("headers", {})
            assert "X-Request-ID" in headers, f"{method} {path} {status}"
            if status.startswith("2"):
                assert {"RateLimit", "RateLimit-Policy", "API-Version"} <= headers.keys(), f"{method} {path}"
    created = document["paths"]["/incidents"]["post"]["responses"]["201"]["headers"]
    assert {"Location", "ETag", "Idempotent-Replayed"} <= created.keys()
    too_many = document["components"]["responses"]["TOO_MANY_REQUESTS"]["headers"]
    assert "Retry-After" in too_many


def test_tokens_can_be_fetched_by_a_generated_client(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["oauth2"]["flows"] == {"clientCredentials": {"tokenUrl": "/v1/oauth/token", "scopes": {}}}
    for path, method, operation in operations(document):
        if operation.get("security"):
            assert operation["security"] == [{"bearerAuth": []}, {"oauth2": []}], f"{method} {path}"


def test_no_unused_page_number_metadata(document):
    assert "PaginationMetadata" not in document["components"]["schemas"]
