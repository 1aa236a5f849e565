"""Segmind out of credit (406), in a real browser: every job that meets it waits, the first
included, with the same message and nothing charged; the shop cancels one and has its
credits back; the operator sees the banner and the incident, and clearing the pause
resumes the job still waiting."""

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


def test_a_406_makes_every_job_wait_with_one_message_and_the_operator_sees_the_incident(
    page, browser, live_server, owner, tenant, fake
):
    JobPrice.objects.create(model="bria-product-packshot", engine="segmind", credits=3)
    account_services.credits_grant(tenant=tenant, amount=10, user=owner, memo="to spend")
    operator = User.objects.create_superuser(email="ops@studio.test", password=PASSWORD)
    operator_app, _ = two_factor_enable(operator)
    fake.faults.out_of_credit(KEY)

    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))

    # The job that meets the 406 and the one after it, the same job twice: one story.
    messages = []
    for n in range(2):
        _submit_packshot(page, live_server, tenant.slug)
        page.get_by_role("heading", name="Waiting for Segmind").wait_for(timeout=20_000)
        waiting = page.locator("#job-waiting-message")
        assert "Nothing has been charged" in waiting.inner_text()
        assert page.get_by_role("button", name="Try again").is_hidden()
        assert page.get_by_role("button", name="Cancel job").is_visible()
        messages.append(waiting.inner_text())
        _shot(page, f"406-job-waiting-{n + 1}")
    assert messages[0] == messages[1]
    first, second = Job.objects.order_by("created_at")
    assert first.status == second.status == JobStatus.WAITING_FOR_PROVIDER
    assert first.error_code == second.error_code == ""
    assert fake.stats()["refused_by_api_key"][KEY] == 1  # the first was sent and refused
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (4, 6)

    page.get_by_role("link", name="Gallery").click()
    assert page.get_by_role("heading", name="Waiting or not made").is_visible()
    assert page.get_by_text("Nothing has been charged").first.is_visible()
    _shot(page, "406-gallery")

    # The shop gives up on the second one: its credits come back.
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/{second.pk}/")
    page.get_by_role("button", name="Cancel job").click()
    page.get_by_text("Job canceled.").wait_for()
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (7, 3)
    job = first

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
        # The open pause is a warning in its list, not a green check.
        ops.goto(f"{live_server.url}/admin/jobs/providerpause/")
        state = ops.locator("#result_list tbody tr").first.locator(".pause-open")
        assert state.inner_text().strip() == "Open: jobs wait"
        assert "icon-alert.svg" in (state.locator("img").get_attribute("src") or "")
        assert ops.locator("#result_list img[src*='icon-yes']").count() == 0
        _shot(ops, "406-admin-pauses")
        ops.goto(f"{live_server.url}/admin/jobs/jobprice/add/")
        assert (
            "Bria Product Packshot (bria-product-packshot)"
            in ops.get_by_label("Model").inner_text()
        )
        _shot(ops, "admin-price-add")
        ops.goto(f"{live_server.url}/admin/")

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
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/{job.pk}/")
    page.get_by_role("link", name="Download").wait_for(timeout=20_000)
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (7, 0)
