"""The committed openapi.yaml is what the code generates, and it is a valid, conventional document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from service.http import PROBLEM_JSON

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def document(app) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(json.dumps(app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()))


def _operations(document):  # type: ignore[no-untyped-def]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_committed_document_matches_the_code(document):
    committed = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert committed == document, "openapi.yaml is stale: run `risk-register openapi write`"


def test_document_is_valid_openapi(document):
    validate(document)


def test_served_document_is_the_generated_one(client, document):
    assert client.get("/v1/openapi.json").json == document


def test_every_operation_follows_the_conventions(document):
    components = document["components"]["responses"]
    for path, method, operation in _operations(document):
        where = f"{method} {path}"
        assert operation.get("summary"), where
        responses = operation["responses"]
        for code, response in responses.items():
            if "$ref" in response:
                response = components[response["$ref"].rsplit("/", 1)[1]]
            if code[0] in "23":
                assert "API-Version" in response.get("headers", {}), f"{where} {code}"
            elif code[0] in "45" or code == "default":
                assert list(response.get("content", {})) == [PROBLEM_JSON], f"{where} {code}"
        if method in ("post", "put", "patch") or operation.get("parameters"):
            assert "400" in responses, where


def test_servers_carry_the_major_version_and_paths_do_not(document):
    assert document["servers"][0]["url"] == "/v1"
    assert all(not path.startswith("/v1") for path in document["paths"])
    assert document["info"]["contact"].keys() >= {"name", "email", "url"}
