"""A local packshot job: its stored image is 2000 x 2000 with exact white around the
product, and when the photo was too small for a sharp result the job says so, on its
page, in its status, in the API and in its webhook events."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import Tenant, User
from jobs import samples, services
from jobs.models import AssetKind, Job, JobStatus
from tests.support.api_helpers import key_client

PACKSHOT = "bria-product-packshot"
SOFT = "may look soft"


@cache
def _large_photo() -> bytes:
    """A photo with the product over 850 px across: enlarged less than 2x."""
    return samples.sample_jpeg_bytes("mug", width=2400, height=2400)


def _run(tenant: Tenant, user: User, data: bytes, capture: Any, **params: Any) -> tuple[Job, bytes]:
    upload = SimpleUploadedFile("mug.jpg", data, content_type="image/jpeg")
    with capture(execute=True):
        job = services.job_submit(
            tenant=tenant, user=user, model=PACKSHOT, upload=upload, params=params or None
        )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    output = job.assets.get(kind=AssetKind.OUTPUT)
    with output.file.open("rb") as fh:
        return job, fh.read()


def test_a_small_photo_makes_a_2000_packshot_and_the_job_says_it_may_look_soft(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> None:
    job, stored = _run(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    image = Image.open(io.BytesIO(stored))
    assert (image.format, image.size) == ("JPEG", (2000, 2000))
    assert job.notice.startswith("The photo is small: the product (")
    assert "to fill the 2000 x 2000 packshot, so it may look soft." in job.notice
    assert job.notice.endswith("at least 850 px across gives a sharp result.")


def test_a_large_photo_makes_a_2000_packshot_with_no_notice(
    tenant: Tenant, owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    job, stored = _run(tenant, owner, _large_photo(), django_capture_on_commit_callbacks)
    assert Image.open(io.BytesIO(stored)).size == (2000, 2000)
    assert job.notice == ""


def test_the_stored_packshot_is_exactly_white_in_its_margins(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> None:
    _, stored = _run(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    pixels = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"))
    # The margin is 150 px (7.5 %) on the product's longer side; 144 keeps to JPEG's
    # 8 x 8 blocks clear of the product, all around.
    for band in (pixels[:144], pixels[-144:], pixels[:, :144], pixels[:, -144:]):
        assert (band == 255).all()


def test_a_large_photo_with_a_small_product_says_to_frame_it_closer(
    tenant: Tenant, owner: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMAGE_WORK_MAX_SIDE = 1000
    photo = Image.new("RGB", (2000, 500), (236, 236, 232))
    photo.paste((40, 90, 170), (900, 150, 1100, 350))  # 200 px: 100 px once reduced
    out = io.BytesIO()
    photo.save(out, format="PNG")
    job, stored = _run(tenant, owner, out.getvalue(), django_capture_on_commit_callbacks)
    assert Image.open(io.BytesIO(stored)).size == (2000, 2000)
    assert job.notice.startswith(
        "The product is small in the photo: large photos are worked on at 1000 px, where "
        "it is 100 px across: it was enlarged 17.0x to fill the 2000 x 2000 packshot"
    )
    assert job.notice.endswith("spans at least 85 % of the longest side gives a sharp result.")


def test_a_transparent_packshot_is_a_2000_png(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> None:
    _, stored = _run(
        tenant,
        owner,
        product_jpeg,
        django_capture_on_commit_callbacks,
        background_color="transparent",
    )
    image = Image.open(io.BytesIO(stored))
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (2000, 2000))


def test_the_notice_goes_out_with_the_job_succeeded_event(
    tenant: Tenant,
    owner: User,
    product_jpeg: bytes,
    django_capture_on_commit_callbacks: Any,
    webhook_events_recorded: list[dict[str, Any]],
) -> None:
    job, _ = _run(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    [event] = [e for e in webhook_events_recorded if e["type"] == "job.succeeded"]
    assert event["data"]["notice"] == job.notice
    assert SOFT in event["data"]["notice"]


def test_the_api_shows_the_notice_and_an_empty_one_when_there_is_nothing_to_say(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> None:
    soft, _ = _run(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    sharp, _ = _run(tenant, owner, _large_photo(), django_capture_on_commit_callbacks)
    api = key_client(tenant)
    assert api.get(f"/api/v1/jobs/{soft.pk}").json()["notice"] == soft.notice
    assert api.get(f"/api/v1/jobs/{sharp.pk}").json()["notice"] == ""
    listed = {row["id"]: row["notice"] for row in api.get("/api/v1/jobs").json()["results"]}
    assert listed == {str(soft.pk): soft.notice, str(sharp.pk): ""}


def test_the_schema_describes_the_notice(db: None) -> None:
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    notice = schema["components"]["schemas"]["Job"]["properties"]["notice"]
    assert notice["type"] == "string"
    assert notice["readOnly"] is True
    assert "2000 x 2000" in notice["description"]


@pytest.mark.parametrize("who", ["owner_client", "member_client"])
def test_the_job_page_and_its_status_show_the_notice_to_the_workspace(
    who: str,
    request: pytest.FixtureRequest,
    tenant: Tenant,
    owner: User,
    product_jpeg: bytes,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job, _ = _run(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    client: Client = request.getfixturevalue(who)
    page = client.get(reverse("job_detail", args=[tenant.slug, job.id])).content.decode()
    assert '<div id="job-notice" class="notice" role="note">' in page
    assert SOFT in page
    status = client.get(reverse("job_status", args=[tenant.slug, job.id])).json()
    assert status["notice"] == job.notice


def test_an_outsider_sees_neither_the_page_nor_the_notice(
    tenant: Tenant,
    owner: User,
    outsider_client: Client,
    product_jpeg: bytes,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job, _ = _run(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    page = outsider_client.get(reverse("job_detail", args=[tenant.slug, job.id]))
    status = outsider_client.get(reverse("job_status", args=[tenant.slug, job.id]))
    assert page.status_code == status.status_code == 404
    assert SOFT not in page.content.decode()


def test_a_job_with_nothing_to_say_hides_the_notice_box(
    tenant: Tenant,
    owner: User,
    owner_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job, _ = _run(tenant, owner, _large_photo(), django_capture_on_commit_callbacks)
    page = owner_client.get(reverse("job_detail", args=[tenant.slug, job.id])).content.decode()
    assert '<div id="job-notice" class="notice" role="note" hidden>' in page
    assert (
        owner_client.get(reverse("job_status", args=[tenant.slug, job.id])).json()["notice"] == ""
    )
