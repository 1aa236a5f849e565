"""The API's OpenAPI 3 schema and its interactive docs, whose assets come from a
package (drf-spectacular-sidecar), never from a CDN."""

from __future__ import annotations

import re

from django.contrib.staticfiles import finders
from django.test import Client

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
    assert "/api/schema/" in page


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
