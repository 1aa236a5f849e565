"""The portal's main flow in a real browser: log in, paste a URL, see the packshot."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from accounts.models import Tenant, User
from jobs.models import AssetKind, Job, JobStatus
from tests.conftest import PASSWORD
from tests.e2e.conftest import finish_signup, images_loaded

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _assert_job_page_and_gallery_show_it(page, shot: str) -> None:
    """On a finished job's page: both images load; then the gallery shows its one tile."""
    images_loaded(page)
    for alt in ("The product photo you submitted", "The result of this job"):
        assert page.get_by_alt_text(alt).evaluate("img => img.naturalWidth") > 0
    _shot(page, shot)

    page.get_by_role("link", name="Gallery").click()
    page.wait_for_url(re.compile(r"/gallery/$"))
    tiles = page.locator(".gallery .tile img")
    # Waits: the click only starts the navigation, and count() does not wait for the new page.
    expect(tiles).to_have_count(1, timeout=15_000)
    # A thumbnail, not the job page's image: a Segmind result's is made on this first view.
    assert "/thumb/" in tiles.first.evaluate("img => img.src")
    images_loaded(page)
    assert tiles.first.evaluate("img => img.complete && img.naturalWidth > 0")


def _log_in(page, live_server, email: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_shop_turns_a_pasted_url_into_a_packshot_in_the_gallery(
    page, live_server, owner, tenant, settings
):
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
    _shot(page, "dashboard-empty")

    page.get_by_role("link", name="New job").first.click()
    page.get_by_label("Product image URL").fill(f"{live_server.url}/samples/mug.jpg")
    page.get_by_label(re.compile("Product Packshot")).check()
    _shot(page, "new-job")
    page.get_by_role("button", name="Submit job").click()

    # The job page refreshes itself when the job is done.
    page.get_by_role("link", name="Download").wait_for(timeout=20_000)
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    # The page adds the image and its Download link together; the image loads after.
    images_loaded(page)
    result = page.get_by_alt_text("The result of this job")
    assert result.evaluate("img => img.naturalWidth") == job.assets.get(kind=AssetKind.OUTPUT).width
    _assert_job_page_and_gallery_show_it(page, "job-done")
    _shot(page, "gallery")


def test_a_bad_url_is_explained_on_the_form_and_creates_no_job(page, live_server, owner, tenant):
    _log_in(page, live_server, owner.email)
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")
    page.get_by_label("Product image URL").fill("http://169.254.169.254/latest/meta-data")
    page.get_by_role("button", name="Submit job").click()
    assert "private network" in page.locator(".has-error .error").inner_text()
    assert Job.objects.count() == 0


def test_an_outsiders_browser_gets_404_on_the_shops_pages(
    page, live_server, owner, tenant, outsider
):
    _log_in(page, live_server, outsider.email)
    page.wait_for_url(re.compile(r"/w/"))
    response = page.goto(f"{live_server.url}/w/{tenant.slug}/gallery/")
    assert response is not None and response.status == 404
    assert tenant.name not in page.content()


def test_a_visitor_signs_up_and_lands_in_their_new_workspace(page, live_server, db):
    page.goto(f"{live_server.url}/signup/")
    page.get_by_label("Email").fill("new@shop.test")
    page.get_by_label("Shop or workspace name").fill("Candle Corner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create workspace").click()
    finish_signup(page, live_server)
    page.wait_for_url(re.compile(r"/w/candle-corner/$"))
    assert page.get_by_role("heading", name="Candle Corner").is_visible()
    assert User.objects.filter(email="new@shop.test").exists()
    assert Tenant.objects.filter(name="Candle Corner").exists()


def test_the_new_job_page_shows_resolved_parameters_and_output_size_before_submitting(
    page, live_server, owner, tenant
):
    _log_in(page, live_server, owner.email)
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")
    page.get_by_label(re.compile("AI Product Photography")).check()
    # The prompt is required by Segmind and no preset gives one yet: the preview says so.
    page.locator("#preview-status", has_text="Fix these").wait_for()
    assert "prompt" in page.locator("#preview-params").inner_text()

    section = page.locator('.model-settings[data-model="ai-product-photography"]')
    section.get_by_label("Preset").select_option(label="Marble kitchen countertop")
    section.locator("summary").click()
    section.get_by_label("megapixel").select_option("1.0")
    section.get_by_label("aspect_ratio").select_option("8:5 (Cinematic View)")
    page.wait_for_function(
        "() => document.querySelector('#output-size').innerText === 'Output 1280 \u00d7 768 px'"
    )
    section.get_by_label("megapixel").select_option("1.5")
    section.get_by_label("aspect_ratio").select_option("16:9 (Panorama)")
    page.wait_for_function(
        "() => document.querySelector('#output-size').innerText === 'Output 1664 \u00d7 896 px'"
    )
    preview = page.locator("#preview-params").inner_text()
    assert "marble" in preview.lower()
    assert "random (drawn when you submit)" in preview
    _shot(page, "new-job-preview")
    # On the local engine this model is composed on a backdrop: it can be submitted.
    assert page.get_by_role("button", name="Submit job").is_enabled()
    assert page.locator("#needs-segmind").is_hidden()

    section.get_by_label("steps").fill("50")
    page.locator("#preview-status", has_text="Fix these").wait_for()
    assert "must be between 1 and 20" in page.locator("#preview-params").inner_text()

    # The PixelFlow workflow needs Segmind: the page says so instead of failing later.
    page.get_by_label(re.compile("PixelFlow")).check()
    page.locator("#needs-segmind").wait_for()
    assert page.get_by_role("button", name="Submit job").is_disabled()
