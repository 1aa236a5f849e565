"""A photo too small or blank to work on is refused at submission, like an oversized one:
no job, no hold, no stored file, and a message naming the field or the line; in the
portal (one photo and batches) and over the API (jobs and batches)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageDraw

from accounts import services as account_services
from accounts.models import CreditEntry, Tenant
from jobs import image_checks, images
from jobs.models import Asset, Batch, Job, JobPrice
from tests.support.api_helpers import assert_problem, key_client

pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"


def _encode(image: Image.Image, image_format: str = "PNG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def _one_pixel() -> bytes:
    return _encode(Image.new("RGB", (1, 1), (200, 30, 30)))


def _blank(size: tuple[int, int] = (600, 400), image_format: str = "PNG") -> bytes:
    return _encode(Image.new("RGB", size, (250, 250, 250)), image_format)


@pytest.fixture
def priced(tenant: Tenant) -> Tenant:
    """Jobs cost credits here, so a hold would show if a job were made."""
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)
    account_services.credits_grant(tenant=tenant, amount=50, memo="test", user=None)
    return tenant


def _nothing_made(tenant: Tenant, settings: Any) -> None:
    assert not Batch.objects.exists()
    assert not Job.objects.exists()
    assert not Asset.objects.exists()
    assert not CreditEntry.objects.filter(kind="hold").exists()
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []
    tenant.refresh_from_db()
    assert tenant.credit_held == 0


def _page(response: Any) -> str:
    return response.content.decode()


# -- the checks themselves --------------------------------------------------------------


def test_a_flat_colour_and_a_fully_transparent_image_look_blank():
    assert image_checks.looks_blank(Image.new("RGB", (800, 600), (250, 250, 250)))
    assert image_checks.looks_blank(Image.new("RGBA", (300, 300), (0, 0, 0, 0)))
    assert image_checks.looks_blank(Image.new("L", (300, 300), 12))


def test_a_faint_product_and_a_white_cut_out_do_not_look_blank():
    faint = Image.new("RGB", (800, 600), (245, 245, 245))
    ImageDraw.Draw(faint).ellipse((300, 200, 500, 420), fill=(225, 225, 228))
    assert not image_checks.looks_blank(faint)
    cut_out = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    ImageDraw.Draw(cut_out).rectangle((100, 100, 200, 220), fill=(255, 255, 255, 255))
    assert not image_checks.looks_blank(cut_out)


def test_a_16_bit_greyscale_product_photo_is_not_taken_for_a_blank_one():
    # Converted to 8-bit RGB as is, every level over 255 would clip to white.
    levels = np.full((400, 600), 60_000, np.uint16)
    levels[100:300, 200:400] = 20_000
    photo = Image.open(io.BytesIO(_encode(Image.fromarray(levels))))
    assert photo.mode == "I;16"
    assert not image_checks.looks_blank(photo)
    flat = Image.open(io.BytesIO(_encode(Image.fromarray(np.full((400, 600), 60_000, np.uint16)))))
    assert image_checks.looks_blank(flat)


def test_noise_on_a_plain_backdrop_alone_still_looks_blank():
    # A grey card shot with a noisy sensor and saved as a JPEG: nothing on it.
    noisy = Image.merge("RGB", [Image.effect_noise((1200, 900), 4).point(lambda v: v + 80)] * 3)
    photo = Image.open(io.BytesIO(_encode(noisy, "JPEG", quality=80)))
    assert image_checks.looks_blank(photo)


def test_the_engine_and_the_submission_share_the_smallest_size():
    side = image_checks.MIN_SIDE
    assert image_checks.too_small(side, side) is None
    small = image_checks.too_small(side - 1, 400)
    assert small is not None and small.code == "image_too_small"
    assert f"{side - 1} by 400 pixels" in small.message


def test_inspecting_with_content_refuses_a_tiny_and_a_blank_photo_only_then():
    for data, code in ((_one_pixel(), "image_too_small"), (_blank(), "empty_image")):
        assert images.inspect_image(data).width >= 1  # the bytes alone are a fine image
        with pytest.raises(images.ImageError) as refused:
            images.inspect_image(data, content=True)
        assert refused.value.code == code


def test_a_large_blank_jpeg_is_refused_from_its_reduced_decode():
    data = _blank((2400, 1800), "JPEG")
    with pytest.raises(images.ImageError) as refused:
        images.inspect_image(data, content=True, large_pixels=1_000_000)
    assert refused.value.code == "empty_image"


# -- the portal -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "said"),
    [(_one_pixel(), "too small to process: 1 by 1 pixels"), (_blank(), "it looks blank")],
    ids=["one pixel", "blank"],
)
def test_it_refuses_a_tiny_or_blank_photo_by_url_before_creating_a_job(
    owner_client, priced, http_server, settings, data, said
):
    url = http_server.route("/photo.png", data, Content_Type="image/png")

    response = owner_client.post(
        reverse("job_new", args=[priced.slug]), {"image_url": url, "model": PACKSHOT}
    )

    assert response.status_code == 200
    page = _page(response)
    assert said in page
    assert "Try again" not in page
    _nothing_made(priced, settings)


def test_it_refuses_a_blank_upload_naming_the_file(owner_client, priced, settings):
    upload = SimpleUploadedFile("white.png", _blank(), content_type="image/png")

    response = owner_client.post(
        reverse("job_new", args=[priced.slug]), {"image": upload, "model": PACKSHOT}
    )

    assert "image: white.png: No product could be found in the image: it looks blank." in _page(
        response
    )
    _nothing_made(priced, settings)


def test_a_blank_photo_in_a_batch_is_left_out_and_named_by_its_line(
    owner_client, priced, http_server, product_jpeg
):
    good = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")
    blank = http_server.route("/white.png", _blank(), Content_Type="image/png")
    tiny = http_server.route("/dot.png", _one_pixel(), Content_Type="image/png")

    response = owner_client.post(
        reverse("job_new", args=[priced.slug]),
        {"image_url": f"{good}\n{blank}\n{tiny}", "model": PACKSHOT},
    )

    batch = Batch.objects.get()
    assert [job.source_url for job in batch.jobs.all()] == [good]
    shown = _page(owner_client.get(response["Location"]))
    assert f"line 2: {blank}: No product could be found in the image: it looks blank." in shown
    assert f"line 3: {tiny}: The image is too small to process" in shown
    priced.refresh_from_db()
    assert priced.credit_held == 2


# -- the API ----------------------------------------------------------------------------


def test_the_api_refuses_a_blank_photo_by_url_with_a_stable_code(priced, http_server, settings):
    url = http_server.route("/white.png", _blank(), Content_Type="image/png")

    response = key_client(priced).post(
        "/api/v1/jobs", {"model": PACKSHOT, "image_url": url}, content_type="application/json"
    )

    body = assert_problem(response, 400, "empty_image")
    assert body["detail"].startswith("image_url: No product could be found")
    _nothing_made(priced, settings)


def test_the_api_refuses_a_one_pixel_upload(priced, settings):
    upload = SimpleUploadedFile("dot.png", _one_pixel(), content_type="image/png")

    response = key_client(priced).post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})

    body = assert_problem(response, 400, "image_too_small")
    assert "dot.png" in body["detail"] and "1 by 1 pixels" in body["detail"]
    _nothing_made(priced, settings)


def test_an_api_batch_with_a_blank_photo_is_refused_naming_the_item(
    priced, http_server, product_jpeg, settings
):
    good = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")
    blank = http_server.route("/white.png", _blank(), Content_Type="image/png")

    response = key_client(priced).post(
        "/api/v1/batches",
        {"model": PACKSHOT, "items": [{"image_url": good}, {"image_url": blank}]},
        content_type="application/json",
    )

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"items.1.image_url": image_checks.BLANK_MESSAGE}
    _nothing_made(priced, settings)


def test_a_real_product_photo_is_still_accepted(priced, http_server, product_jpeg):
    url = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")

    response = key_client(priced).post(
        "/api/v1/jobs", {"model": PACKSHOT, "image_url": url}, content_type="application/json"
    )

    assert response.status_code == 201, response.content


def test_the_api_docs_list_both_codes(db, client: Client):
    description = client.get("/api/schema/?format=json").json()["info"]["description"]
    assert '<a id="error-image_too_small"></a>' in description
    assert '<a id="error-empty_image"></a>' in description
