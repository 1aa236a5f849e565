"""The whole flow with media on S3 (moto's server on 127.0.0.1): jobs from an upload and
from a URL, their thumbnails, the API's presigned links fetched from the store itself,
a Segmind job's result, the portal's file views, deletes. Nothing lands on the local disk.
(The gallery's ZIP, deletes and thumbnails also run on S3 in their own modules, through
the `media_storage` fixture.)"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.http import content_disposition_header
from PIL import Image

from accounts.models import Tenant
from jobs import images, services
from jobs.models import Asset, AssetKind, Job, JobPrice, JobStatus
from tests.jobs.engines.segmind.test_dispatcher import _submit as _segmind_submit
from tests.jobs.engines.segmind.test_dispatcher import fake  # noqa: F401 (a fixture)
from tests.support.api_helpers import key_client
from tests.support.s3_server import S3Server

PACKSHOT = "bria-product-packshot"

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


def _stored_bytes(s3: S3Server, name: str) -> bytes:
    body: bytes = s3.client().get_object(Bucket=s3.bucket, Key=name)["Body"].read()
    return body


def _content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def _local_files(settings: Any) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def _submit(api: Client, capture: Any, **data: Any) -> Job:
    with capture(execute=True):
        created = api.post("/api/v1/jobs", {"model": PACKSHOT, **data})
    assert created.status_code == 201, created.content
    return Job.objects.get(pk=created.json()["id"])


def test_a_local_job_from_an_upload_stores_its_photo_result_and_thumbnails_in_the_bucket(
    s3_media: S3Server, api, product_jpeg, settings, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    job = _submit(api, django_capture_on_commit_callbacks, image=upload)

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    photo, output = job.input_asset, job.assets.get(kind=AssetKind.OUTPUT)
    assert photo is not None
    assert _stored_bytes(s3_media, photo.file.name) == product_jpeg
    names = {photo.file.name, photo.thumbnail.name, output.file.name, output.thumbnail.name}
    assert set(s3_media.keys()) == names
    result = Image.open(io.BytesIO(_stored_bytes(s3_media, output.file.name)))
    assert (result.width, result.height) == (output.width, output.height)
    assert _local_files(settings) == []


def test_a_local_job_from_a_url_is_fetched_then_stored_in_the_bucket(
    s3_media: S3Server, api, product_jpeg, http_server, settings, django_capture_on_commit_callbacks
):
    http_server.route("/mug.jpg", body=product_jpeg, headers={"Content-Type": "image/jpeg"})
    job = _submit(api, django_capture_on_commit_callbacks, image_url=http_server.url("/mug.jpg"))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.input_asset is not None
    assert _stored_bytes(s3_media, job.input_asset.file.name) == product_jpeg
    assert s3_media.keys() and len(s3_media.keys()) == 4  # photo, result, two thumbnails
    assert _local_files(settings) == []


def test_a_refused_job_leaves_no_file_in_the_bucket(
    s3_media: S3Server, api, tenant, product_jpeg, django_capture_on_commit_callbacks
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=tenant.credit_balance + 1)
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        refused = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})
    assert refused.status_code == 402, refused.content
    assert not Job.objects.exists()
    assert s3_media.keys() == []


def test_the_apis_link_is_presigned_by_the_store_for_the_ttl_and_serves_the_same_bytes(
    s3_media: S3Server, api, product_jpeg, settings, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("blue mug.jpg", product_jpeg, content_type="image/jpeg")
    job = _submit(api, django_capture_on_commit_callbacks, image=upload)
    output = job.assets.get(kind=AssetKind.OUTPUT)

    body = api.get(f"/api/v1/assets/{output.pk}").json()

    url = body["url"]
    assert url.startswith(f"{s3_media.endpoint_url}/{s3_media.bucket}/{output.file.name}?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(settings.ASSET_URL_TTL_SECONDS)]
    # The link dies when the API says: signed at X-Amz-Date, valid X-Amz-Expires seconds.
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%S%z")
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    ends = signed_at + timedelta(seconds=settings.ASSET_URL_TTL_SECONDS)
    assert abs((expires_at - ends).total_seconds()) <= 2
    fetched = httpx.get(url)  # from the store itself: no key, no session
    assert fetched.status_code == 200
    assert fetched.content == _stored_bytes(s3_media, output.file.name)
    assert fetched.headers["content-type"] == output.mime_type
    assert unquote(fetched.headers["content-disposition"]) == (
        f'attachment; filename="{services.asset_filename(output)}"'
    )


@pytest.mark.parametrize(
    "name", ['the "best" mug.jpg', "tasse café — bleue.jpg", "back\\slash; x=1.jpg"]
)
def test_the_presigned_link_names_the_file_in_a_well_formed_header(
    name, s3_media: S3Server, api, tenant, product_jpeg
):
    photo = _stored_photo(tenant, product_jpeg, name=name)
    url = api.get(f"/api/v1/assets/{photo.pk}").json()["url"]

    fetched = httpx.get(url)

    assert fetched.status_code == 200
    assert fetched.headers["content-disposition"] == content_disposition_header(True, name)


def test_the_link_lives_as_long_as_the_setting_says(
    s3_media: S3Server, api, tenant, product_jpeg, settings
):
    settings.ASSET_URL_TTL_SECONDS = 120
    photo = _stored_photo(tenant, product_jpeg)
    url = api.get(f"/api/v1/assets/{photo.pk}").json()["url"]
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["120"]


def test_without_its_signature_the_store_refuses_the_object(
    s3_media: S3Server, tenant, product_jpeg
):
    # moto checks neither signatures nor expiry (a real S3 does: 403 "Request has
    # expired"), but it does keep a private object from an anonymous request.
    photo = _stored_photo(tenant, product_jpeg)
    bare = f"{s3_media.endpoint_url}/{s3_media.bucket}/{photo.file.name}"
    assert httpx.get(bare).status_code == 403


def _stored_photo(tenant: Tenant, data: bytes, name: str = "mug.jpg") -> Asset:
    return services.asset_create(
        tenant=tenant,
        job=None,
        kind=AssetKind.INPUT,
        data=data,
        info=images.inspect_image(data),
        original_name=name,
    )


@pytest.mark.usefixtures("fake")
def test_a_segmind_result_is_stored_in_the_bucket_and_served_by_the_portal(
    s3_media: S3Server,
    owner_client: Client,
    tenant,
    owner,
    product_jpeg,
    settings,
    django_capture_on_commit_callbacks,
):
    job = _segmind_submit(tenant, owner, product_jpeg, PACKSHOT, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    output = job.assets.get(kind=AssetKind.OUTPUT)
    stored = _stored_bytes(s3_media, output.file.name)
    assert Image.open(io.BytesIO(stored)).format == "PNG"
    page = owner_client.get(reverse("asset_file", args=[tenant.slug, output.id]))
    assert page.status_code == 200 and _content(page) == stored
    assert _local_files(settings) == []


def test_the_portal_streams_files_and_thumbnails_from_the_bucket_with_their_names(
    s3_media: S3Server,
    owner_client: Client,
    outsider_client: Client,
    tenant,
    product_jpeg,
):
    photo = _stored_photo(tenant, product_jpeg)
    file_url = reverse("asset_file", args=[tenant.slug, photo.id])

    shown = owner_client.get(file_url)
    assert shown.status_code == 200
    assert shown["Content-Type"] == "image/jpeg"
    assert shown["Content-Length"] == str(len(product_jpeg))
    assert _content(shown) == product_jpeg
    downloaded = owner_client.get(file_url + "?download=1")
    assert downloaded["Content-Disposition"] == 'attachment; filename="mug.jpg"'
    thumb = owner_client.get(reverse("asset_thumbnail", args=[tenant.slug, photo.id]))
    assert thumb.status_code == 200
    assert _content(thumb) == _stored_bytes(s3_media, photo.thumbnail.name)
    assert outsider_client.get(file_url).status_code == 404


def test_a_file_missing_from_the_bucket_is_a_404_not_an_error(
    s3_media: S3Server, owner_client: Client, tenant, product_jpeg
):
    photo = _stored_photo(tenant, product_jpeg)
    default_storage.delete(photo.file.name)
    default_storage.delete(photo.thumbnail.name)

    assert owner_client.get(reverse("asset_file", args=[tenant.slug, photo.id])).status_code == 404
    thumb = owner_client.get(reverse("asset_thumbnail", args=[tenant.slug, photo.id]))
    assert thumb.status_code == 404


def test_an_unreachable_store_on_one_delete_does_not_keep_the_other_files(
    s3_media: S3Server,
    tenant,
    product_jpeg,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks,
):
    from botocore.exceptions import EndpointConnectionError

    from productstudio.lib.storage import PrivateS3Storage

    first = services.asset_create(
        tenant=tenant,
        job=None,
        kind=AssetKind.OUTPUT,
        data=product_jpeg,
        info=images.inspect_image(product_jpeg),
    )
    second = services.asset_create(
        tenant=tenant,
        job=None,
        kind=AssetKind.OUTPUT,
        data=product_jpeg,
        info=images.inspect_image(product_jpeg),
    )
    real_delete = PrivateS3Storage.delete

    def flaky_delete(self: PrivateS3Storage, name: str) -> None:
        if name == first.file.name:
            raise EndpointConnectionError(endpoint_url=s3_media.endpoint_url)
        real_delete(self, name)

    monkeypatch.setattr(PrivateS3Storage, "delete", flaky_delete)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.assets_delete(tenant=tenant, assets=[first, second]) == 2

    assert s3_media.keys() == [first.file.name]
    assert f"could not delete stored file {first.file.name}" in caplog.text
