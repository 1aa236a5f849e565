"""Submitting a job from the portal: good input makes a job, bad input makes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from jobs.models import Asset, AssetKind, Job, JobStatus

PACKSHOT = "bria-product-packshot"


def _new_job_url(tenant) -> str:
    return reverse("job_new", args=[tenant.slug])


def _post_url(client, tenant, url: str, model: str = PACKSHOT):
    return client.post(_new_job_url(tenant), {"image_url": url, "model": model})


def _assert_nothing_created() -> None:
    assert Job.objects.count() == 0
    assert Asset.objects.count() == 0


def test_a_pasted_url_becomes_a_packshot_in_the_gallery(
    owner_client, tenant, http_server, product_jpeg, django_capture_on_commit_callbacks
):
    url = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        response = _post_url(owner_client, tenant, url)
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job_detail", args=[tenant.slug, job.id])
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.source_url == url
    assert job.params["image_url"] == url
    assert job.params["background_color"] == "#FFFFFF"
    output = job.assets.get(kind=AssetKind.OUTPUT)
    assert (output.width, output.height) == (output.height, output.width)  # square
    assert output.format in {"JPEG", "PNG"}
    gallery = owner_client.get(reverse("gallery", args=[tenant.slug]))
    assert reverse("asset_thumbnail", args=[tenant.slug, output.id]) in gallery.content.decode()
    image = Image.open(
        io.BytesIO(
            owner_client.get(reverse("asset_file", args=[tenant.slug, output.id])).getvalue()
        )
    )
    corner = image.convert("RGB").getpixel((2, 2))
    assert corner == (255, 255, 255)


def test_an_uploaded_photo_becomes_a_job_with_its_input_kept(
    owner_client, tenant, product_jpeg, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(_new_job_url(tenant), {"image": upload, "model": PACKSHOT})
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    assert job.input_asset is not None
    assert job.input_asset.original_name == "mug.jpg"
    assert (job.input_asset.width, job.input_asset.height) == (400, 300)
    assert len(job.input_asset.sha256) == 64


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/mug.jpg", "http"),
        ("file:///etc/passwd", "http"),
    ],
)
def test_it_refuses_a_url_that_is_not_http(owner_client, tenant, url, message):
    response = _post_url(owner_client, tenant, url)
    assert response.status_code == 200
    assert message in response.content.decode()
    _assert_nothing_created()


def test_it_refuses_a_url_that_does_not_answer(owner_client, tenant, settings):
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    # Port 9 (discard) has no listener here: the connection is refused at once.
    response = _post_url(owner_client, tenant, "http://127.0.0.1:9/mug.jpg")
    assert response.status_code == 200
    assert "image_url" in response.content.decode()
    _assert_nothing_created()


def test_it_refuses_a_url_that_answers_404(owner_client, tenant, http_server):
    response = _post_url(owner_client, tenant, http_server.url("/missing.jpg"))
    assert "404" in response.content.decode()
    _assert_nothing_created()


def test_it_refuses_a_url_that_is_not_an_image(owner_client, tenant, http_server):
    url = http_server.route("/page.jpg", b"<html>hello</html>", Content_Type="text/html")
    response = _post_url(owner_client, tenant, url)
    assert response.status_code == 200
    assert "image_url" in response.content.decode()
    _assert_nothing_created()


def test_it_refuses_an_image_larger_than_the_limit(
    owner_client, tenant, http_server, product_jpeg, settings
):
    settings.FETCH_MAX_BYTES = len(product_jpeg) - 1
    url = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")
    response = _post_url(owner_client, tenant, url)
    assert "larger than" in response.content.decode()
    _assert_nothing_created()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.0.0.8", "169.254.169.254"])
def test_it_refuses_a_private_host_unless_allowed(owner_client, tenant, host, settings):
    settings.FETCH_ALLOW_PRIVATE_HOSTS = []
    response = _post_url(owner_client, tenant, f"http://{host}/mug.jpg")
    assert "private" in response.content.decode()
    _assert_nothing_created()


def test_it_refuses_an_upload_that_is_not_an_image(owner_client, tenant):
    upload = SimpleUploadedFile("notes.jpg", b"just some text", content_type="image/jpeg")
    response = owner_client.post(_new_job_url(tenant), {"image": upload, "model": PACKSHOT})
    assert response.status_code == 200
    assert "notes.jpg" in response.content.decode()
    _assert_nothing_created()


def test_it_refuses_an_upload_larger_than_the_limit(owner_client, tenant, product_jpeg, settings):
    settings.FETCH_MAX_BYTES = 1000
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    response = owner_client.post(_new_job_url(tenant), {"image": upload, "model": PACKSHOT})
    assert "larger than" in response.content.decode()
    _assert_nothing_created()


def test_it_asks_for_a_url_or_a_file(owner_client, tenant):
    response = owner_client.post(_new_job_url(tenant), {"model": PACKSHOT})
    assert "Paste the URL of a product photo or upload one" in response.content.decode()
    _assert_nothing_created()


def test_it_refuses_a_model_the_local_engine_cannot_run(
    owner_client, tenant, http_server, product_jpeg
):
    url = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")
    response = _post_url(owner_client, tenant, url, model="segmind-scenecraft-v01")
    assert response.status_code == 200
    assert "model" in response.content.decode()
    _assert_nothing_created()


def test_the_new_job_page_marks_the_workflow_as_needing_segmind_and_scenes_as_composed(
    owner_client, tenant
):
    page = owner_client.get(_new_job_url(tenant)).content.decode()
    assert "Product Packshot" in page or "Packshot" in page
    assert page.count("Needs Segmind") == 1
    assert page.count("Composed on a backdrop by the local engine") == 3
    assert "prompts are recorded but not followed" in page


def test_a_rotated_photo_is_stored_upright(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    image = Image.new("RGB", (400, 300), (200, 200, 200))
    image.paste((40, 60, 160), (150, 100, 250, 220))  # a product, so it is not blank
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    upload = SimpleUploadedFile("sideways.jpg", out.getvalue(), content_type="image/jpeg")
    owner_client.post(_new_job_url(tenant), {"image": upload, "model": PACKSHOT})
    stored = Job.objects.get().input_asset
    assert stored is not None
    assert (stored.width, stored.height) == (300, 400)
    with stored.file.open("rb") as fh:
        upright = Image.open(fh)
        assert upright.size == (300, 400)
        assert upright.getexif().get(0x0112, 1) == 1
