"""Results a shop can tell apart, in Chromium: gallery tiles named by SKU or photo (and
preset), the batch page's thumbnails of finished jobs (also when a job finishes while the
page is open), and the navigation marking the section a job's page belongs to."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from jobs import images
from jobs import services as job_services
from jobs.models import AssetKind, Batch, Job, JobStatus, Preset
from tests.e2e.conftest import images_loaded
from tests.e2e.test_accessibility import _logged_in_context
from tests.e2e.test_portal_flow import _shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _done(tenant: Any, owner: Any, photo: bytes, name: str, **options: Any) -> Job:
    job = job_services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile(name, photo, content_type="image/jpeg"),
        **options,
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    return job


@pytest.fixture
def shop(tenant, owner, product_jpeg, django_capture_on_commit_callbacks) -> dict[str, Job]:
    """Three finished packshots: one by SKU, one by photo with a preset, one in a batch."""
    preset = Preset.objects.system().filter(model="bria-product-packshot").first()
    assert preset is not None
    with django_capture_on_commit_callbacks(execute=True):
        jobs = {
            "sku": _done(tenant, owner, product_jpeg, "IMG_0001.jpg", sku="MUG-042"),
            "photo": _done(tenant, owner, product_jpeg, "blue-teapot.jpg", preset=preset),
            "batched": _done(tenant, owner, product_jpeg, "red-lamp.jpg"),
        }
    batch = Batch.objects.create(tenant=tenant, name="Lamps", created_by=owner)
    Job.objects.filter(pk=jobs["batched"].pk).update(batch=batch)
    jobs["batched"].refresh_from_db()
    return jobs


def test_gallery_tiles_name_the_sku_or_the_photo_and_the_preset(
    browser, live_server, owner, tenant, shop
):
    context = _logged_in_context(browser, live_server, owner, width=1280, height=900)
    page = context.new_page()
    try:
        page.goto(live_server.url + reverse("gallery", args=[tenant.slug]))
        tiles = page.locator(".gallery .tile")
        expect(tiles).to_have_count(3)
        titles = tiles.locator(".tile-name").all_inner_texts()
        assert sorted(titles) == ["MUG-042", "blue-teapot.jpg", "red-lamp.jpg"]
        preset = shop["photo"].preset
        assert preset is not None
        teapot = tiles.filter(has_text="blue-teapot.jpg")
        expect(teapot).to_contain_text(preset.name)
        # Without a preset, the model says what made it; "No preset" is gone.
        expect(tiles.filter(has_text="MUG-042")).to_contain_text("Bria Product Packshot")
        expect(page.locator(".gallery")).not_to_contain_text("No preset")
        expect(teapot.get_by_role("checkbox")).to_have_accessible_name(
            f"Select this image (blue-teapot.jpg, {_short(shop['photo'])})"
        )
        _shot(page, "gallery-named-tiles")
    finally:
        context.close()


def _short(job: Job) -> str:
    output = job.assets.get(kind=AssetKind.OUTPUT)
    return timezone.localtime(output.created_at).strftime("%b %-d %H:%M")


def test_a_jobs_page_marks_gallery_or_batches_in_the_navigation_never_dashboard(
    browser, live_server, owner, tenant, shop
):
    context = _logged_in_context(browser, live_server, owner, width=1280, height=900)
    page = context.new_page()
    nav = page.get_by_role("navigation", name="Workspace")
    try:
        for job, section in ((shop["sku"], "Gallery"), (shop["batched"], "Batches")):
            page.goto(live_server.url + reverse("job_detail", args=[tenant.slug, job.id]))
            marked = nav.locator("a[aria-current]")
            expect(marked).to_have_count(1)
            expect(marked).to_have_text(section)
            assert marked.get_attribute("aria-current") == "true"  # under it, not it
        output = shop["sku"].assets.get(kind=AssetKind.OUTPUT)
        page.goto(live_server.url + reverse("asset_detail", args=[tenant.slug, output.id]))
        expect(nav.locator("a[aria-current]")).to_have_text("Gallery")
    finally:
        context.close()


def test_the_batch_page_shows_thumbnails_of_finished_jobs_as_they_finish(
    browser, live_server, owner, tenant, shop, product_jpeg
):
    batched = shop["batched"]
    assert batched.batch is not None and batched.input_asset is not None
    waiting = Job.objects.create(
        tenant=tenant,
        created_by=owner,
        model="bria-product-packshot",
        engine=batched.engine,
        batch=batched.batch,
        input_asset=batched.input_asset,
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
    )
    context = _logged_in_context(browser, live_server, owner, width=1280, height=900)
    page = context.new_page()
    try:
        page.goto(live_server.url + reverse("batch_detail", args=[tenant.slug, batched.batch.id]))
        done_row = page.locator(f'tr[data-job-id="{batched.id}"]')
        thumb = done_row.locator(".job-result img")
        expect(thumb).to_have_attribute("alt", "Result of red-lamp.jpg")
        output = batched.assets.get(kind=AssetKind.OUTPUT)
        assert thumb.get_attribute("src") == reverse(
            "asset_thumbnail", args=[tenant.slug, output.id]
        )
        images_loaded(page)
        assert thumb.evaluate("i => i.naturalWidth") > 0
        expect(done_row.locator(".job-result a")).to_have_attribute(
            "href", reverse("asset_detail", args=[tenant.slug, output.id])
        )
        running_row = page.locator(f'tr[data-job-id="{waiting.id}"]')
        expect(running_row.locator(".job-result img")).to_have_count(0)

        # The running job finishes while the page is open: its thumbnail appears.
        job_services.asset_create(
            tenant=tenant,
            job=waiting,
            kind=AssetKind.OUTPUT,
            data=product_jpeg,
            info=images.inspect_image(product_jpeg),
        )
        Job.objects.filter(pk=waiting.pk).update(
            status=JobStatus.SUCCEEDED, completed_at=timezone.now()
        )
        expect(running_row.locator(".job-result img")).to_have_count(1, timeout=20_000)
        _shot(page, "batch-thumbnails")
    finally:
        context.close()
