"""The API's OpenAPI 3 schema and its interactive docs, whose assets come from a
package (drf-spectacular-sidecar), never from a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from jobs.api import JOB_EXAMPLE
from productstudio.api_docs import ERROR_CODES, JOB_ERROR_CODES
from productstudio.lib.errors import STATUS_OF_CODE

OPERATIONS = {
    "models_list",
    "models_retrieve",
    "models_resolve",
    "jobs_list",
    "jobs_create",
    "jobs_retrieve",
    "jobs_cancel",
    "webhooks_list",
    "webhooks_create",
    "webhooks_retrieve",
    "webhooks_destroy",
    "webhooks_test",
    "webhooks_deliveries_list",
    "webhooks_secret_retrieve",
    "jobs_rerun",
    "presets_list",
    "presets_create",
    "presets_retrieve",
    "presets_update",
    "presets_destroy",
    "presets_copy",
    "batches_list",
    "batches_create",
    "batches_retrieve",
    "assets_list",
    "assets_retrieve",
    "assets_download",
    "credits_retrieve",
    "credits_ledger",
}


def _schema() -> dict:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_openapi_3_and_describes_every_operation(db):
    schema = _schema()

    assert schema["openapi"].startswith("3.")
    found = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert found == OPERATIONS
    create = schema["paths"]["/api/v1/jobs"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"201", "400", "402"} <= set(create["responses"])


def test_the_schema_says_how_to_authenticate_and_what_an_error_looks_like(db):
    schema = _schema()

    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A workspace's API key, `ps_<prefix>_<secret>`.",
    }
    problem = schema["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(problem)


def test_the_docs_page_loads_its_assets_from_this_site_only(db):
    page = Client().get("/api/docs/").content.decode()

    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assets = [s for s in sources if s.endswith((".js", ".css", ".png"))]
    assert assets, page
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "cdn" not in page.lower()
    # The page's own script comes from this site too (no inline script: see the CSP).
    assert '<script src="/api/docs/?script="></script>' in page
    script = Client().get("/api/docs/", {"script": ""})
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def test_every_post_takes_an_idempotency_key_and_every_error_is_a_described_problem(db):
    schema = _schema()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            assert ("Idempotency-Key" in headers) == (method == "post"), (path, method)
            assert {"401", "429"} <= set(operation["responses"]), (path, method)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert set(response["content"]) == {"application/problem+json"}
                    assert response["description"], (path, method, status)


# -- everything described, with examples -----------------------------------------------

METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(schema: dict) -> Iterator[tuple[str, dict]]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def _component(schema: dict, ref: str) -> tuple[str, dict]:
    name = ref.removeprefix("#/components/schemas/")
    return name, schema["components"]["schemas"][name]


def _undescribed(schema: dict, node: dict, where: str, seen: set[str]) -> Iterator[str]:
    """Every property reachable from `node` (through $ref, allOf/oneOf/anyOf, items and
    additionalProperties) that has no description of its own; a property that is only a
    `$ref` takes its component's, which is checked in turn."""
    if "$ref" in node:
        name, component = _component(schema, node["$ref"])
        if name not in seen:
            seen.add(name)
            yield from _undescribed(schema, component, name, seen)
        return
    for keyword in ("allOf", "oneOf", "anyOf"):
        for index, part in enumerate(node.get(keyword, [])):
            yield from _undescribed(schema, part, f"{where}.{keyword}[{index}]", seen)
    for name, prop in node.get("properties", {}).items():
        if set(prop) != {"$ref"} and not prop.get("description"):
            yield f"{where}.{name}"
        yield from _undescribed(schema, prop, f"{where}.{name}", seen)
    if isinstance(node.get("items"), dict):
        yield from _undescribed(schema, node["items"], f"{where}[]", seen)
    if isinstance(node.get("additionalProperties"), dict):
        yield from _undescribed(schema, node["additionalProperties"], f"{where}{{}}", seen)


def _all_undescribed(schema: dict) -> list[str]:
    seen: set[str] = set()
    found: list[str] = []
    for label, operation in _operations(schema):
        bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
        for body in bodies:
            for media in body.get("content", {}).values():
                found += _undescribed(schema, media.get("schema", {}), label, seen)
    for name in schema["components"]["schemas"]:
        found += _undescribed(schema, {"$ref": f"#/components/schemas/{name}"}, name, seen)
    return found


def _without_examples(schema: dict) -> list[str]:
    missing = []
    for label, operation in _operations(schema):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not (media.get("examples") or "example" in media):
                missing.append(f"{label} request {media_type}")
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for media_type, media in response.get("content", {}).items():
                if not (media.get("examples") or "example" in media):
                    missing.append(f"{label} {status} {media_type}")
    return missing


def test_the_checks_find_what_is_undescribed_or_without_example():
    # The checks below pass on the real schema; here, on a schema with one of each gap.
    schema = {
        "paths": {
            "/things": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {}}}},
                    "responses": {
                        "201": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Thing"}
                                }
                            }
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "properties": {
                        "part": {"allOf": [{"$ref": "#/components/schemas/Part"}]},
                        "parts": {
                            "type": "array",
                            "description": "Parts.",
                            "items": {"$ref": "#/components/schemas/Part"},
                        },
                    }
                },
                "Part": {"properties": {"size": {"type": "integer"}}},
            }
        },
    }

    assert sorted(_all_undescribed(schema)) == ["Part.size", "Thing.part"]
    assert _without_examples(schema) == [
        "POST /things request application/json",
        "POST /things 201 application/json",
    ]


def test_every_operation_has_a_description(db):
    schema = _schema()

    undescribed = [label for label, op in _operations(schema) if not op.get("description")]

    assert undescribed == []


def test_every_parameter_has_a_description(db):
    schema = _schema()

    undescribed = [
        f"{label} {parameter['in']} {parameter['name']}"
        for label, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]

    assert undescribed == []


def test_every_property_of_every_schema_has_a_description(db):
    assert _all_undescribed(_schema()) == []


def test_every_body_of_every_operation_has_an_example(db):
    assert _without_examples(_schema()) == []


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema as JSON Schema: `nullable` becomes a null alternative."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: _json_schema(value)
        for key, value in node.items()
        if key not in ("nullable", "readOnly", "writeOnly", "example", "examples")
    }
    if "$ref" in converted:
        converted["$ref"] = converted["$ref"].replace("#/components/schemas/", "urn:schema:")
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _examples(schema: dict) -> Iterator[tuple[str, dict, Any]]:
    for label, operation in _operations(schema):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += list(operation["responses"].items())
        for status, body in bodies:
            for media_type, media in body.get("content", {}).items():
                for name, example in media.get("examples", {}).items():
                    where = f"{label} {status} {media_type} {name}"
                    yield where, media["schema"], example["value"]


def test_every_example_keeps_to_its_schema(db):
    # Schemathesis sends the request examples, and people copy them all.
    schema = _schema()
    registry: Registry = Registry().with_resources(
        (f"urn:schema:{name}", DRAFT202012.create_resource(_json_schema(component)))
        for name, component in schema["components"]["schemas"].items()
    )
    wrong = []
    for where, body_schema, value in _examples(schema):
        validator = Draft202012Validator(_json_schema(body_schema), registry=registry)
        wrong += [f"{where}: {error.message}" for error in validator.iter_errors(value)]

    assert wrong == []
    assert sum(1 for _ in _examples(schema)) > 30
    # And a wrong one would be seen: a nullable field through a $ref, an enum.
    job = Draft202012Validator({"$ref": "urn:schema:Job"}, registry=registry)
    assert not list(job.iter_errors(JOB_EXAMPLE))
    assert list(job.iter_errors({**JOB_EXAMPLE, "status": "done"}))
    assert list(job.iter_errors({**JOB_EXAMPLE, "price": None}))


# -- error codes, each with its anchor in the docs --------------------------------------


def test_every_code_a_service_refuses_with_is_in_the_description_with_its_status(db):
    description = _schema()["info"]["description"]

    for code, status in STATUS_OF_CODE.items():
        assert ERROR_CODES[code][0] == status, code
    for code in (*ERROR_CODES, *JOB_ERROR_CODES):
        assert f"`{code}`" in description, code
    for code in ERROR_CODES:
        assert f'<a id="error-{code}"></a>' in description, code
    assert {"not_authenticated", "rate_limited"} <= set(ERROR_CODES)
    assert "provider_insufficient_credits" in JOB_ERROR_CODES


@pytest.mark.parametrize(
    "header", ["Idempotency-Key", "Idempotent-Replayed", "Retry-After", "webhook-signature"]
)
def test_the_description_explains_the_headers(db, header: str):
    assert header in _schema()["info"]["description"]


def test_a_problems_type_links_to_its_codes_entry_in_the_docs(tenant):
    refused = Client().get("/api/v1/jobs")  # no key
    not_found = Client().get("/api/v1/nothing-here")

    description = _schema()["info"]["description"]
    for response in (refused, not_found):
        problem = response.json()
        page, _, anchor = problem["type"].partition("#")
        assert page == "/api/docs/"
        assert anchor == f"error-{problem['code']}"
        assert f'id="{anchor}"' in description
        assert ERROR_CODES[problem["code"]][0] == response.status_code
