"""The portal with media on S3 (moto on 127.0.0.1), in Chromium: the gallery's thumbnails
and a job's photo and result load (through the site, so the pages' CSP holds), on a
desktop and a phone. Screenshots go to $SCREENSHOT_DIR when it is set."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs import services
from jobs.models import JobStatus
from tests.e2e.conftest import images_loaded
from tests.e2e.test_accessibility import _logged_in_context
from tests.e2e.test_portal_flow import _shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BROKEN_IMAGES = "() => Array.from(document.images).filter(i => !i.naturalWidth).map(i => i.src)"


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)])
def test_on_s3_the_gallery_and_a_job_page_show_every_image(
    browser,
    live_server,
    s3_media,
    owner,
    tenant,
    product_jpeg,
    width,
    height,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        jobs = [
            services.job_submit(
                tenant=tenant,
                user=owner,
                model="bria-product-packshot",
                upload=SimpleUploadedFile(f"{sku}.jpg", product_jpeg, content_type="image/jpeg"),
                sku=sku,
            )
            for sku in ("MUG-S3-1", "MUG-S3-2")
        ]
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert len(s3_media.keys()) == 8  # two photos, two results, their thumbnails

    context = _logged_in_context(browser, live_server, owner, width=width, height=height)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    try:
        page.goto(live_server.url + reverse("gallery", args=[tenant.slug]))
        images_loaded(page)
        assert page.locator(".gallery .tile img").count() == 2
        assert page.evaluate(BROKEN_IMAGES) == []
        _shot(page, f"s3-gallery-{width}")

        page.goto(live_server.url + reverse("job_detail", args=[tenant.slug, jobs[0].pk]))
        images_loaded(page)
        for alt in ("The product photo you submitted", "The result of this job"):
            assert page.get_by_alt_text(alt).evaluate("img => img.naturalWidth") > 0
        assert page.evaluate(BROKEN_IMAGES) == []
        _shot(page, f"s3-job-{width}")
        assert refused == []
    finally:
        context.close()
