"""Issue 8's main flow in a real browser, from sign-up to a ZIP of the results.

Sign up; paste three product URLs on the new-job page (local engine); watch the batch page
follow its jobs to done without reloading; find the three results in the gallery; compare
one with its photo; download the three as a ZIP; and an outsider's browser gets 404 on
every one of those pages.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from accounts.models import Tenant
from jobs import services
from jobs.models import Asset, Batch, Job, JobStatus
from tests.conftest import PASSWORD
from tests.e2e.conftest import finish_signup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")
SAMPLES = ("mug", "sneaker", "bottle")


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _sign_up(page: Any, live_server: Any, email: str, shop: str) -> None:
    page.goto(f"{live_server.url}/signup/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Shop or workspace name").fill(shop)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create workspace").click()
    finish_signup(page, live_server)
    page.wait_for_url(re.compile(r"/w/[\w-]+/$"))


def test_a_new_shop_turns_three_urls_into_a_batch_and_downloads_the_results_as_a_zip(
    browser: Any, page: Any, live_server: Any, settings: Any, no_worker: list[Any]
) -> None:
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
    # No worker picks the jobs up by itself: the test runs them once the page watches.

    _sign_up(page, live_server, "owner@candles.test", "Candle Corner")
    tenant = Tenant.objects.get(name="Candle Corner")
    page.get_by_role("link", name="New job").first.click()
    urls = [f"{live_server.url}/samples/{name}.jpg" for name in SAMPLES]
    page.locator("textarea[name=image_url]").fill("\n".join(urls))
    page.get_by_label(re.compile("Product Packshot")).check()
    page.locator("#price-line", has_text="3 images").wait_for()
    page.get_by_role("button", name="Submit 3 jobs").click()

    page.wait_for_url(re.compile(r"/batches/[0-9a-f-]+/$"))
    batch = Batch.objects.for_tenant(tenant).get()
    jobs = list(Job.objects.for_tenant(tenant).filter(batch=batch).order_by("created_at"))
    assert [j.source_url for j in jobs] == urls
    assert {j.status for j in jobs} == {JobStatus.QUEUED}
    bar = page.locator("progress").first
    assert bar.get_attribute("value") in ("0", None)
    page.evaluate("window.__notReloaded = true")

    for job in jobs:  # what the workers do, one job after another
        assert services.job_run(job_id=job.id)
        page.wait_for_function(
            "(done) => document.querySelector('progress').value >= done",
            arg=jobs.index(job) + 1,
            timeout=15_000,
        )
    page.locator("#batch-done", has_text="All done: 3 results").wait_for(timeout=15_000)
    assert page.evaluate("window.__notReloaded === true"), "the batch page reloaded"
    assert page.locator("progress").first.evaluate("p => p.value === p.max")
    _shot(page, "flow-batch-done")

    page.get_by_role("link", name=re.compile("see them in the gallery")).click()
    page.wait_for_url(re.compile(r"/gallery/\?batch="))
    tiles = page.locator(".gallery .tile img")
    expect(tiles).to_have_count(3, timeout=15_000)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.gallery .tile img'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    # Thumbnails, not the full images.
    assert all("/thumb/" in (tiles.nth(i).get_attribute("src") or "") for i in range(3))
    _shot(page, "flow-gallery")

    tiles.first.click()
    page.wait_for_url(re.compile(r"/assets/[0-9a-f-]+/view/$"))
    asset_page = page.url
    before = page.get_by_alt_text(re.compile("^Before"))
    after = page.get_by_alt_text(re.compile("^After"))
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#compare img'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    assert before.is_visible() and after.is_visible()
    divider = page.get_by_label(re.compile("Divider"))
    divider.focus()
    for _ in range(10):
        divider.press("ArrowRight")
    assert divider.input_value() == "60"
    _shot(page, "flow-before-after")

    page.go_back()
    page.get_by_role("button", name="Select all on this page").click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download ZIP").click()
    archive = zipfile.ZipFile(download_info.value.path())
    names = archive.namelist()
    assert len(names) == 3 and len(set(names)) == 3
    for name in names:
        with Image.open(io.BytesIO(archive.read(name))) as image:
            image.verify()
    outputs = Asset.objects.for_tenant(tenant).outputs()
    assert sorted(archive.getinfo(n).file_size for n in names) == sorted(
        a.byte_size for a in outputs
    )

    # Another shop's browser: every one of those pages is a 404.
    context = browser.new_context()
    try:
        stranger = context.new_page()
        _sign_up(stranger, live_server, "owner@rival.test", "Rival Goods")
        base = f"{live_server.url}/w/{tenant.slug}"
        for url in (
            f"{base}/batches/{batch.id}/",
            f"{base}/gallery/?batch={batch.id}",
            asset_page,
            f"{base}/assets/{outputs[0].id}/thumb/",
        ):
            response = stranger.goto(url)
            assert response is not None and response.status == 404, url
            assert "Candle Corner" not in stranger.content()
    finally:
        context.close()
