"""The job and batch pages follow their jobs in a real browser, without reloading."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Tenant, User
from jobs import services
from jobs.models import Batch, Job, JobStatus
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PACKSHOT = "bria-product-packshot"
SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _log_in(page: Any, live_server: Any, user: User) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/w/"))


def _queued_job(tenant: Tenant, owner: User, product_jpeg: bytes, **fields: Any) -> Job:
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model=PACKSHOT,
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )
    if fields:
        Job.objects.filter(pk=job.pk).update(**fields)
    return job


def _mark_the_page(page: Any) -> None:
    # Gone if the page reloads or navigates: the updates must come without either.
    page.evaluate("window.__notReloaded = true")


def _still_the_same_page(page: Any) -> bool:
    return page.evaluate("window.__notReloaded === true")


def test_a_queued_jobs_page_shows_the_result_when_the_job_finishes_without_reloading(
    page: Any,
    live_server: Any,
    owner: User,
    tenant: Tenant,
    product_jpeg: bytes,
    no_worker: list[Any],
) -> None:
    # No worker yet: tasks are recorded, not run (`no_worker`).
    job = _queued_job(tenant, owner, product_jpeg)
    _log_in(page, live_server, owner)
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/{job.id}/")
    badge = page.locator("#job-status .status")
    assert badge.inner_text() == "Queued"
    assert page.locator("#job-queue").inner_text().startswith("In line: 1st for a worker · ")
    assert page.get_by_alt_text("The result of this job").count() == 0
    _shot(page, "job-queued")
    _mark_the_page(page)

    assert services.job_run(job_id=job.id)  # what the worker does

    result = page.get_by_alt_text("The result of this job")
    result.wait_for(timeout=10_000)
    page.wait_for_function("() => document.querySelector('#job-outputs img').naturalWidth > 0")
    assert badge.inner_text() == "Succeeded"
    assert page.locator("#job-announce").inner_text() == "Job status: Succeeded"
    assert page.locator("#job-timing").inner_text().startswith("Took ")
    assert page.get_by_role("link", name="Download").is_visible()
    assert page.locator("#job-pending").is_hidden()
    assert page.locator("#job-cancel").is_hidden()
    assert page.locator("#job-queue").is_hidden()
    assert _still_the_same_page(page)
    _shot(page, "job-done-live")


def test_a_batch_page_follows_its_jobs_and_offers_a_retry_for_the_failed_one(
    page: Any,
    live_server: Any,
    owner: User,
    tenant: Tenant,
    product_jpeg: bytes,
    no_worker: list[Any],
) -> None:
    first = _queued_job(tenant, owner, product_jpeg)
    second = _queued_job(tenant, owner, product_jpeg, sku="MUG-RED")
    batch = Batch.objects.create(tenant=tenant, name="Spring mugs", created_by=owner)
    Job.objects.filter(pk__in=[first.pk, second.pk]).update(batch=batch)
    _log_in(page, live_server, owner)
    page.goto(f"{live_server.url}/w/{tenant.slug}/batches/{batch.id}/")
    label = page.locator("#batch-progress-label")
    assert label.inner_text() == "0 of 2 done"
    assert page.locator("#batch-estimate").inner_text().startswith("Estimated finish: ")
    assert page.locator("#batch-retry").is_hidden()
    _mark_the_page(page)

    services.job_run(job_id=first.id)
    Job.objects.filter(pk=second.pk).update(status=JobStatus.RUNNING)
    services.job_fail(job_id=second.pk, code="no_product_found", message="No product found.")

    page.locator("#batch-done").wait_for(timeout=10_000)
    assert label.inner_text() == "2 of 2 done"
    assert "All done: 1 result" in page.locator("#batch-done").inner_text()
    row = page.locator(f'tr[data-job-id="{second.id}"]')
    assert row.locator(".status").inner_text() == "Failed"
    assert row.locator(".job-error").inner_text() == "No product found."
    assert page.locator(f'tr[data-job-id="{first.id}"] .status').inner_text() == "Succeeded"
    assert page.locator("#batch-retry").is_visible()
    assert page.locator("#batch-estimate").is_hidden()
    assert _still_the_same_page(page)
    _shot(page, "batch-done-live")

    # The row's button, added by the page itself, retries the job into the batch.
    row.get_by_role("button", name="Try again").click()
    page.wait_for_url(re.compile(r"/jobs/"))
    _shot(page, "job-retried")
    rerun = Job.objects.get(rerun_of=second)
    assert rerun.batch_id == batch.pk
