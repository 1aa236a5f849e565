"""The checkerboard that shows transparency, in Chromium: behind a cut-out on a transparent
background, never beside an opaque JPEG, in the gallery's tiles, the before/after view and
the job page. The page knows which is which from the stored image (`has_transparency`)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs import services
from jobs.models import AssetKind, Job, JobStatus
from tests.e2e.conftest import images_loaded
from tests.e2e.test_accessibility import _logged_in_context
from tests.e2e.test_portal_flow import _shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Whether an element shows the checkerboard: the pattern is its CSS background.
CHECKER_JS = "el => getComputedStyle(el).backgroundImage.includes('linear-gradient')"


def _job(tenant: Any, owner: Any, photo: bytes, *, sku: str, background: str) -> Job:
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile(f"{sku}.jpg", photo, content_type="image/jpeg"),
        params={"background_color": background},
        sku=sku,
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    return job


def test_only_a_transparent_result_is_shown_on_a_checkerboard(
    browser, live_server, owner, tenant, product_jpeg, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        cutout = _job(tenant, owner, product_jpeg, sku="CUTOUT-1", background="transparent")
        white = _job(tenant, owner, product_jpeg, sku="WHITE-1", background="#FFFFFF")
    cutout_result = cutout.assets.get(kind=AssetKind.OUTPUT)
    white_result = white.assets.get(kind=AssetKind.OUTPUT)
    assert (cutout_result.format, cutout_result.has_transparency) == ("PNG", True)
    assert (white_result.format, white_result.has_transparency) == ("JPEG", False)

    context = _logged_in_context(browser, live_server, owner, width=1280, height=900)
    page = context.new_page()
    try:
        page.goto(live_server.url + reverse("gallery", args=[tenant.slug]))
        tiles = page.locator(".gallery .tile")
        cutout_tile = tiles.filter(has_text="CUTOUT-1").locator("img")
        white_tile = tiles.filter(has_text="WHITE-1").locator("img")
        images_loaded(page)
        assert cutout_tile.evaluate(CHECKER_JS)
        assert not white_tile.evaluate(CHECKER_JS)
        # The transparent result's thumbnail keeps its transparency for the pattern to show
        # (a URL of its own: a browser may keep the one laid on white from before).
        assert cutout_tile.evaluate("i => i.naturalWidth") > 0
        assert cutout_tile.get_attribute("src").endswith("/thumb/?alpha=1")
        assert white_tile.get_attribute("src").endswith("/thumb/")
        _shot(page, "gallery-checkerboard")

        # Before/after of each: the pattern only behind the cut-out.
        for result, checker in ((cutout_result, True), (white_result, False)):
            page.goto(live_server.url + reverse("asset_detail", args=[tenant.slug, result.id]))
            compare = page.locator("#compare")
            compare.wait_for()
            assert compare.evaluate(CHECKER_JS) is checker
            # Right of the divider, the photo is clipped away: it does not show through
            # the result's transparent pixels.
            clip = page.locator(".compare-before").evaluate("el => getComputedStyle(el).clipPath")
            assert "50%" in clip
        _shot(page, "asset-compare-opaque")

        # The job page: neither the JPEG photo nor the white packshot on the pattern.
        page.goto(live_server.url + reverse("job_detail", args=[tenant.slug, white.id]))
        images = page.locator("main img.preview")
        assert images.count() == 2
        assert not any(images.nth(i).evaluate(CHECKER_JS) for i in range(2))
        page.goto(live_server.url + reverse("job_detail", args=[tenant.slug, cutout.id]))
        photo, result = page.locator("main img.preview").all()
        assert not photo.evaluate(CHECKER_JS) and result.evaluate(CHECKER_JS)
    finally:
        context.close()
