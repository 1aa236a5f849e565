"""The credits page in a real browser, on a desk and on a phone: the ledger reads as a shop
would say it, the jobs held by the image provider are named, and without Stripe the page
says whom to email for credits; nothing runs off a phone's screen."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from accounts import services
from accounts.models import Tenant, User
from jobs.models import Job, ProviderIncident
from tests.e2e.test_portal_flow import _log_in

pytestmark = [
    pytest.mark.usefixtures("no_trial_credits"),
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")
PHONE = {"width": 390, "height": 844}


def _books(tenant: Tenant, owner: User) -> None:
    services.credits_grant(tenant=tenant, amount=20, user=owner, memo="welcome credits")
    made = Job.objects.create(tenant=tenant, model="bria-product-packshot", price=3)
    held = Job.objects.create(tenant=tenant, model="bria-product-packshot", price=3)
    for job in (made, held):
        services.credits_hold(tenant=tenant, job=job, amount=3)
    services.credits_capture(job=made)
    services.credits_release(job=held)
    ProviderIncident.objects.create(
        tenant=tenant,
        job=held,
        key_id="k1",
        code="provider_insufficient_credits",
        message="Segmind, the service that makes these images, is out of credit.",
    )


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desk", "phone"])
def test_the_credits_page_speaks_to_a_shop_owner(
    browser: Any, live_server: Any, owner: User, tenant: Tenant, settings: Any, viewport: Any
) -> None:
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = ""
    settings.ADMINS = [("Jane Doe", "jane@studio.test")]
    _books(tenant, owner)
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    try:
        _log_in(page, live_server, owner.email)
        page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
        page.goto(f"{live_server.url}/w/{tenant.slug}/credits/")

        note = page.locator("#buy-contact")
        assert "email Jane Doe at jane@studio.test" in note.inner_text()
        assert note.get_by_role("link", name="jane@studio.test").is_visible()
        ledger = page.locator("table.ledger")
        rows = ledger.locator("tbody tr")
        texts = [" ".join(rows.nth(i).inner_text().split()) for i in range(rows.count())]
        assert "Returned: job not made" in texts[0] and "+3" in texts[0]
        assert "Charged for a job" in texts[1] and "no change" in texts[1]
        assert "the 3 credits reserved for it are spent" in texts[1]
        assert "Reserved for a job" in texts[2] and "\u22123" in texts[2]
        assert "Credits added" in texts[4] and "+20" in texts[4]
        for word in ("Hold", "Capture", "Release", "held for job"):
            assert word not in ledger.inner_text()
        held_jobs = page.get_by_role(
            "heading", name="Jobs held because the image provider was out of credit"
        )
        assert held_jobs.is_visible()
        assert page.get_by_text("Segmind incidents").count() == 0
        # The page itself never scrolls sideways; the ledger scrolls in its own box.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= (viewport or {"width": 1280})["width"]
        if SCREENSHOTS:
            name = "credits-phone" if viewport else "credits-desk"
            page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)
    finally:
        context.close()
