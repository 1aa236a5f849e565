"""Bad input found by fuzzing the API (tests/test_api_fuzz.py, and by hand around what it
found), refused in the API's one error shape: a list's `limit` and `cursor`, URLs no API
route matches, presets that cannot exist and NUL characters (a 500 on PostgreSQL)."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts import services as account_services
from accounts.models import Tenant
from jobs.models import Job
from tests.support.api_helpers import assert_problem


@pytest.fixture
def api(tenant: Tenant) -> Client:
    key = account_services.api_key_create(tenant=tenant, name="t").secret
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize("limit", ["0", "-1", "101", "abc", "null", "1.5", "٣", "1" * 5000])
def test_a_bad_limit_is_refused_naming_the_field(api: Client, limit: str):
    body = assert_problem(api.get("/api/v1/jobs", {"limit": limit}), 400, "validation_error")

    assert body["errors"] == {"limit": "must be a whole number from 1 to 100"}
    assert body["detail"] == "limit: must be a whole number from 1 to 100."


@pytest.mark.parametrize("limit", ["1", "100"])
def test_the_limits_bounds_are_accepted(api: Client, limit: str):
    assert api.get("/api/v1/jobs", {"limit": limit}).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        _cursor("o=x"),
        # Decodes, but its position is not a time: DRF's pagination fails in the query.
        _cursor("p=garbage"),
        _cursor("o=1&p=2024-13-45 10:00"),
        _cursor("p=99999-01-01"),
    ],
)
def test_a_forged_cursor_is_refused_naming_the_field(api: Client, cursor: str):
    body = assert_problem(api.get("/api/v1/jobs", {"cursor": cursor}), 400, "validation_error")

    assert set(body["errors"]) == {"cursor"}


def test_an_unknown_api_url_answers_in_the_problem_shape(api: Client):
    body = assert_problem(api.get("/api/v1/jobs/not-a-uuid"), 404, "not_found")

    assert "/api/v1/jobs/not-a-uuid" in body["detail"]
    assert_problem(Client().get("/api/v1/nothing-here"), 404, "not_found")


def test_an_unknown_portal_url_still_gets_the_portals_page(owner_client: Client):
    response = owner_client.get("/w/no-such-workspace/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("preset", ["house\x00white", "²", "9" * 30, "1" * 5000])
def test_a_preset_that_cannot_exist_is_refused_naming_the_field(api: Client, preset: str):
    response = api.post(
        "/api/v1/jobs",
        {"model": "bria-product-packshot", "preset": preset, "image_url": "http://x.test/a.jpg"},
        content_type="application/json",
    )

    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"preset"}


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("ai-product-photography", {"prompt": "a mug\x00 on a table"}),
        ("bria-product-packshot", {"background_color": "#FFF\x00"}),
    ],
)
def test_a_nul_character_in_a_parameter_is_refused_naming_it(
    api: Client, product_jpeg: bytes, model: str, params: dict[str, str]
):
    # PostgreSQL cannot store it in the job's parameters: this was a 500 there.
    response = api.post(
        "/api/v1/jobs",
        {
            "model": model,
            "params": json.dumps(params),
            "image": SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        },
    )

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == dict.fromkeys(params, "must not contain NUL characters")
    assert not Job.objects.exists()
