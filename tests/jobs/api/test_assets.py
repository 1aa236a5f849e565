"""Assets over the API (`/api/v1/assets`), and their download links: signed, expiring,
usable without a key; jobs' outputs carry the same links."""

from __future__ import annotations

import sys
import types
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import Tenant, User
from jobs.models import Asset, AssetKind, Job
from tests.conftest import login_client
from tests.support.api_helpers import assert_problem, key_client

PACKSHOT = "bria-product-packshot"


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def done_job(api: Client, product_jpeg: bytes, django_capture_on_commit_callbacks) -> Job:
    """A job made from an uploaded mug.jpg that has run (the local engine, inline)."""
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})
    assert created.status_code == 201, created.content
    job = Job.objects.get(pk=created.json()["id"])
    assert job.status == "succeeded"
    return job


def _content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def _output(job: Job) -> Asset:
    return job.assets.get(kind=AssetKind.OUTPUT)


def test_an_asset_has_a_download_link_that_works_without_a_key_until_it_expires(
    api: Client, done_job: Job, settings: Any
):
    settings.ASSET_URL_TTL_SECONDS = 600
    output = _output(done_job)
    before = timezone.now()

    body = api.get(f"/api/v1/assets/{output.pk}").json()

    assert (body["id"], body["kind"], body["job"]) == (str(output.pk), "output", str(done_job.pk))
    assert (body["width"], body["height"], body["format"]) == (
        output.width,
        output.height,
        output.format,
    )
    assert body["sha256"] == output.sha256
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=598) <= expires_at <= timezone.now() + timedelta(seconds=601)
    assert body["url"].startswith(f"http://testserver/api/v1/assets/{output.pk}/download?")
    response = Client().get(body["url"])  # no key, no session
    assert response.status_code == 200
    assert response["Content-Type"] == output.mime_type
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert f".{output.extension}" in response["Content-Disposition"]
    with output.file.open("rb") as fh:
        assert _content(response) == fh.read()


def test_the_download_answers_an_image_accept_header(api: Client, done_job: Job):
    url = api.get(f"/api/v1/assets/{_output(done_job).pk}").json()["url"]

    assert Client().get(url, HTTP_ACCEPT="image/jpeg").status_code == 200
    tampered = url.replace("expires=", "expires=1")
    assert_problem(Client().get(tampered, HTTP_ACCEPT="image/png"), 404, "not_found")


def test_an_expired_link_answers_410(
    api: Client, done_job: Job, monkeypatch: pytest.MonkeyPatch, settings: Any
):
    settings.ASSET_URL_TTL_SECONDS = 60
    url = api.get(f"/api/v1/assets/{_output(done_job).pk}").json()["url"]
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr(timezone, "now", lambda: later)

    body = assert_problem(Client().get(url), 410, "url_expired")

    assert "expired" in body["detail"]


def test_a_tampered_link_answers_404(api: Client, done_job: Job, product_jpeg: bytes):
    output, source = _output(done_job), done_job.input_asset
    assert source is not None
    url = api.get(f"/api/v1/assets/{output.pk}").json()["url"]
    query = parse_qs(urlsplit(url).query)
    expires, signature = query["expires"][0], query["signature"][0]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    base = f"/api/v1/assets/{output.pk}/download"

    for bad in (
        f"{base}?expires={expires}&signature={flipped}",
        f"{base}?expires={int(expires) + 3600}&signature={signature}",  # a longer life
        f"/api/v1/assets/{source.pk}/download?expires={expires}&signature={signature}",
        f"{base}?expires={expires}",
        f"{base}?signature={signature}",
        f"{base}?expires=soon&signature={signature}",
    ):
        assert_problem(Client().get(bad), 404, "not_found")
    assert Client().get(f"{base}?expires={expires}&signature={signature}").status_code == 200


def test_a_jobs_outputs_carry_their_download_links(api: Client, done_job: Job):
    body = api.get(f"/api/v1/jobs/{done_job.pk}").json()

    (output,) = body["outputs"]
    asset = _output(done_job)
    assert output["id"] == str(asset.pk)
    assert (output["width"], output["height"], output["format"], output["sha256"]) == (
        asset.width,
        asset.height,
        asset.format,
        asset.sha256,
    )
    assert output["expires_at"]
    assert Client().get(output["url"]).status_code == 200
    assert body["urls"]["rerun"] == f"http://testserver/api/v1/jobs/{done_job.pk}/rerun"


def test_the_list_has_the_workspaces_assets_filtered_by_kind_and_job(
    api: Client, done_job: Job, product_jpeg: bytes
):
    upload = SimpleUploadedFile("cup.jpg", product_jpeg, content_type="image/jpeg")
    other = Job.objects.get(
        pk=api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload}).json()["id"]
    )

    everything = api.get("/api/v1/assets").json()["results"]
    inputs = api.get("/api/v1/assets?kind=input").json()["results"]
    outputs = api.get("/api/v1/assets?kind=output").json()["results"]
    of_job = api.get(f"/api/v1/assets?job={done_job.pk}").json()["results"]

    assert len(everything) == 3 and all(a["url"] for a in everything)
    assert {a["id"] for a in inputs} == {str(done_job.input_asset_id), str(other.input_asset_id)}
    assert {a["id"] for a in outputs} == {str(_output(done_job).pk)}
    assert {a["id"] for a in of_job} == {str(done_job.input_asset_id), str(_output(done_job).pk)}


@pytest.mark.parametrize(
    ("query", "field"),
    [("kind=thumbnail", "kind"), ("job=not-a-uuid", "job"), ("job=OTHER", "job")],
)
def test_bad_filters_are_refused_naming_the_parameter(
    api: Client, done_job: Job, outsider: User, query: str, field: str
):
    theirs = Job.objects.create(
        tenant=Tenant.objects.get(memberships__user=outsider), model=PACKSHOT
    )

    response = api.get("/api/v1/assets?" + query.replace("OTHER", str(theirs.pk)))

    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {field}


def test_another_workspaces_key_gets_404_for_an_asset_and_an_empty_list(
    done_job: Job, outsider: User
):
    other = key_client(Tenant.objects.get(memberships__user=outsider))

    assert_problem(other.get(f"/api/v1/assets/{_output(done_job).pk}"), 404, "not_found")
    assert_problem(other.get(f"/api/v1/assets/{done_job.input_asset_id}"), 404, "not_found")
    assert other.get("/api/v1/assets").json()["results"] == []


def test_a_member_signed_in_reads_the_workspaces_assets(
    member: User, tenant: Tenant, done_job: Job
):
    client = login_client(member)
    client.get(f"/w/{tenant.slug}/")

    assert client.get(f"/api/v1/assets/{_output(done_job).pk}").status_code == 200


class FakeS3Storage(FileSystemStorage):
    """Stands in for django-storages' S3Storage (not installed here): records how it is
    asked for a URL."""

    querystring_auth = True
    asked: list[dict[str, Any]] = []

    def url(self, name: str | None, parameters: Any = None, expire: Any = None) -> str:
        FakeS3Storage.asked.append({"name": name, "parameters": parameters, "expire": expire})
        return f"https://bucket.s3.example/{name}?X-Amz-Expires={expire}&X-Amz-Signature=s"


def test_on_s3_the_link_is_the_storages_own_presigned_url(
    api: Client, done_job: Job, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    s3 = types.ModuleType("storages.backends.s3")
    s3.S3Storage = FakeS3Storage  # type: ignore[attr-defined]
    for name, module in {
        "storages": types.ModuleType("storages"),
        "storages.backends": types.ModuleType("storages.backends"),
        "storages.backends.s3": s3,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    settings.ASSET_URL_TTL_SECONDS = 900
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.jobs.api.test_assets.FakeS3Storage",
            "OPTIONS": {"location": str(settings.MEDIA_ROOT)},
        },
    }
    FakeS3Storage.asked.clear()
    output = _output(done_job)

    body = api.get(f"/api/v1/assets/{output.pk}").json()

    assert (
        body["url"]
        == f"https://bucket.s3.example/{output.file.name}?X-Amz-Expires=900&X-Amz-Signature=s"
    )
    (asked,) = FakeS3Storage.asked
    assert asked["expire"] == 900
    assert asked["parameters"]["ResponseContentType"] == output.mime_type
    assert asked["parameters"]["ResponseContentDisposition"].startswith("attachment; filename=")
