"""Segmind out of credit (406), in a real browser: the shop sees that nothing was charged,
the operator sees the banner and the incident, and clearing the pause resumes the job."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from accounts import services as account_services
from accounts.models import User
from jobs.models import Job, JobPrice, JobStatus, ProviderIncident, ProviderPause
from tests.conftest import PASSWORD
from tests.e2e.conftest import SEGMIND_KEY as KEY
from tests.e2e.conftest import log_in_with_code
from tests.e2e.test_portal_flow import _log_in
from tests.support.two_factor import totp_code, two_factor_enable

pytestmark = [
    pytest.mark.usefixtures("no_trial_credits"),
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _submit_packshot(page: Any, live_server: Any, slug: str) -> None:
    page.goto(f"{live_server.url}/w/{slug}/jobs/new/")
    page.get_by_label("Product image URL").fill(f"{live_server.url}/samples/mug.jpg")
    page.get_by_label(re.compile("Product Packshot")).check()
    page.get_by_role("button", name="Submit job").click()


def test_a_406_shows_the_shop_it_was_not_charged_and_the_operator_the_incident(
    page, browser, live_server, owner, tenant, fake
):
    JobPrice.objects.create(model="bria-product-packshot", engine="segmind", credits=3)
    account_services.credits_grant(tenant=tenant, amount=10, user=owner, memo="to spend")
    operator = User.objects.create_superuser(email="ops@studio.test", password=PASSWORD)
    operator_app, _ = two_factor_enable(operator)
    fake.faults.out_of_credit(KEY)

    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
    _submit_packshot(page, live_server, tenant.slug)

    alert = page.get_by_role("alert")
    alert.get_by_text("No credit was taken").wait_for(timeout=20_000)
    assert "out of credit" in alert.inner_text()
    page.get_by_text("provider_insufficient_credits").wait_for()
    _shot(page, "406-job-failed")
    job = Job.objects.get()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "provider_insufficient_credits")
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (10, 0)

    # The next job waits instead of failing, and says so.
    _submit_packshot(page, live_server, tenant.slug)
    page.get_by_role("heading", name="Waiting for Segmind").wait_for(timeout=20_000)
    assert "Nothing has been charged" in page.get_by_role("status").last.inner_text()
    _shot(page, "406-job-waiting")
    page.get_by_role("link", name="Gallery").click()
    assert page.get_by_role("heading", name="Waiting or not made").is_visible()
    assert page.get_by_text("No credit was taken").first.is_visible()
    _shot(page, "406-gallery")

    # The operator: a banner on every admin page, and the incident.
    ops = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    try:
        log_in_with_code(ops, live_server, operator.email, totp_code(operator_app))
        ops.wait_for_url(re.compile(r"/workspaces/new/$"))
        ops.goto(f"{live_server.url}/admin/")
        banner = ops.locator(".provider-pauses")
        assert "Segmind is out of credit on the platform's key" in banner.inner_text()
        _shot(ops, "406-admin-banner")
        ops.goto(f"{live_server.url}/admin/jobs/providerincident/")
        assert ops.locator("#result_list tbody tr").count() == ProviderIncident.objects.count()
        assert tenant.name in ops.locator("#result_list").inner_text()
        _shot(ops, "406-admin-incidents")

        # Topped up: the operator clears the pause and the waiting job is made.
        fake.faults.top_up(KEY)
        banner.get_by_role("link").first.click()
        ops.get_by_role("link", name="Clear pause and resume").click()
        ops.get_by_label("Why").fill("topped up the Segmind account")
        ops.get_by_role("button", name="Clear pause and resume").click()
        ops.get_by_text("1 waiting job(s) resumed").wait_for()
        assert ops.locator(".provider-pauses").count() == 0
    finally:
        ops.context.close()
    assert not ProviderPause.objects.open().exists()
    waiting = Job.objects.exclude(pk=job.pk).get()
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/{waiting.pk}/")
    page.get_by_role("link", name="Download").wait_for(timeout=20_000)
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (7, 0)
