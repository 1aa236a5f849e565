"""Creating, reading and canceling jobs over the API (`/api/v1/jobs`), and the one shape
of its errors (problem+json with a stable code and the fields at fault)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs.models import Asset, Job, JobPrice, JobStatus, Preset
from tests.support.api_helpers import assert_problem, key_client

# Every credit below is the test's own: the ledgers start empty.
pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


def _upload(product_jpeg: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")


def test_a_job_is_created_from_a_pasted_url(api: Client, http_server: Any, product_jpeg: bytes):
    url = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")

    response = api.post(
        "/api/v1/jobs",
        {"model": PACKSHOT, "image_url": url, "params": {"background_color": "#F0F0F0"}},
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    job = response.json()
    assert job["status"] == "queued"
    assert job["model"] == PACKSHOT
    assert job["params"]["background_color"] == "#F0F0F0"
    assert job["price"] == 0
    assert job["error"] is None and job["outputs"] == []
    assert job["urls"]["self"] == f"http://testserver/api/v1/jobs/{job['id']}"
    assert job["urls"]["cancel"] == f"http://testserver/api/v1/jobs/{job['id']}/cancel"
    assert api.get(job["urls"]["self"]).json()["id"] == job["id"]


def test_a_job_is_created_from_an_uploaded_file_with_a_preset_named_by_slug(
    api: Client, tenant: Tenant, product_jpeg: bytes
):
    preset = Preset.objects.system().filter(model=PACKSHOT).first()
    assert preset is not None

    response = api.post(
        "/api/v1/jobs",
        {
            "model": PACKSHOT,
            "image": _upload(product_jpeg),
            "preset": preset.slug,
            "params": json.dumps({"force_rmbg": True}),
        },
    )

    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.preset == preset
    assert job.params["force_rmbg"] is True
    assert job.input_asset is not None and job.input_asset.original_name == "mug.jpg"


def test_a_preset_can_be_named_by_id_and_the_workspaces_own_slug_wins(
    api: Client, tenant: Tenant, product_jpeg: bytes
):
    system = Preset.objects.system().filter(model=PACKSHOT).first()
    assert system is not None
    own = Preset.objects.create(
        tenant=tenant, model=PACKSHOT, slug=system.slug, name="Ours", params={}
    )

    by_slug = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg), "preset": system.slug}
    )
    by_id = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg), "preset": system.pk}
    )

    assert Job.objects.get(pk=by_slug.json()["id"]).preset == own
    assert Job.objects.get(pk=by_id.json()["id"]).preset == system


def test_another_workspaces_preset_is_refused_by_name(
    api: Client, outsider: User, product_jpeg: bytes
):
    theirs = Preset.objects.create(
        tenant=Tenant.objects.get(memberships__user=outsider),
        model=PACKSHOT,
        slug="their-secret",
        name="Theirs",
        params={},
    )

    response = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg), "preset": theirs.pk}
    )

    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"preset"}
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": "no-such-model", "image_url": "https://shop.test/a.jpg"}, "model"),
        ({"image_url": "https://shop.test/a.jpg"}, "model"),
        ({"model": PACKSHOT}, "image_url"),
        ({"model": PACKSHOT, "image_url": "https://shop.test/a.jpg", "colour": "red"}, "colour"),
        ({"model": PACKSHOT, "image_url": "https://shop.test/a.jpg", "params": [1]}, "params"),
        (
            {
                "model": PACKSHOT,
                "image_url": "https://shop.test/a.jpg",
                "params": {"background_color": "not a colour"},
            },
            "background_color",
        ),
        ({"model": SCENE, "image_url": "https://shop.test/a.jpg"}, "prompt"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_made(
    api: Client, payload: dict[str, Any], field: str
):
    response = api.post("/api/v1/jobs", payload, content_type="application/json")

    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"], body
    assert not Job.objects.exists()
    assert not Asset.objects.exists()


def test_a_job_the_workspace_cannot_pay_for_is_refused_with_where_to_buy(
    api: Client, tenant: Tenant, product_jpeg: bytes
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=2, user=None, memo="test")

    response = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg)})

    body = assert_problem(response, 402, "insufficient_credits")
    assert body["detail"] == "This needs 3 credits and the workspace has 2."
    assert body["buy_url"] == f"http://testserver/w/{tenant.slug}/credits/"
    assert not Job.objects.exists()
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (2, 0)


def test_a_queued_job_is_canceled_and_its_credits_come_back(
    api: Client, tenant: Tenant, product_jpeg: bytes
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=5, user=None, memo="test")
    created = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg)}).json()
    tenant.refresh_from_db()
    assert (tenant.credit_balance, created["price"]) == (2, 3)

    response = api.post(created["urls"]["cancel"])

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (5, 0)


def test_a_finished_job_cannot_be_canceled(api: Client, tenant: Tenant, product_jpeg: bytes):
    created = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg)}).json()
    Job.objects.filter(pk=created["id"]).update(status=JobStatus.SUCCEEDED)

    body = assert_problem(api.post(created["urls"]["cancel"]), 409, "not_cancelable")

    assert "succeeded" in body["detail"]


def test_another_workspaces_key_gets_a_404_on_every_job_route(
    api: Client, outsider: User, product_jpeg: bytes
):
    created = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg)}).json()
    other = key_client(Tenant.objects.get(memberships__user=outsider))

    assert_problem(other.get(f"/api/v1/jobs/{created['id']}"), 404, "not_found")
    assert_problem(other.post(f"/api/v1/jobs/{created['id']}/cancel"), 404, "not_found")
    assert other.get("/api/v1/jobs").json()["results"] == []
    assert Job.objects.get(pk=created["id"]).status == JobStatus.QUEUED


def test_errors_without_a_key_or_with_a_bad_one_have_the_same_shape(db):
    assert_problem(Client().get("/api/v1/jobs"), 401, "not_authenticated")
    bad = Client(HTTP_AUTHORIZATION="Bearer ps_nope_nope")
    body = assert_problem(bad.get("/api/v1/jobs"), 401, "not_authenticated")
    assert "revoked" in body["detail"]


def test_a_signed_in_member_creates_a_job_as_themselves(
    owner_client: Client, owner: User, tenant: Tenant, product_jpeg: bytes
):
    owner_client.get(f"/w/{tenant.slug}/")  # the workspace the session uses

    response = owner_client.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image": _upload(product_jpeg)}
    )

    assert response.status_code == 201, response.content
    assert Job.objects.get(pk=response.json()["id"]).created_by == owner


def test_the_job_list_pages_with_a_cursor_newest_first(api: Client, tenant: Tenant):
    made = [Job.objects.create(tenant=tenant, model=PACKSHOT) for _ in range(5)]

    first = api.get("/api/v1/jobs?limit=2").json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()

    ids = [job["id"] for page in (first, second, third) for job in page["results"]]
    assert ids == [str(job.pk) for job in reversed(made)]
    assert first["previous"] is None and third["next"] is None
    assert api.get(second["previous"]).json()["results"] == first["results"]
