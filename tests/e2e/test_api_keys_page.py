"""The API keys page in a real browser: create a key, copy it, revoke it after confirming."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from accounts.models import ApiKey
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")


@pytest.fixture
def clipboard_page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    yield page
    context.close()


def test_an_owner_creates_copies_and_revokes_a_key(clipboard_page, live_server, owner, tenant):
    page = clipboard_page
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))

    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Manage API keys").click()
    page.get_by_label("Key name").fill("Shopify sync")
    page.get_by_role("button", name="Create key").click()

    page.get_by_text("Copy it now: it won't be shown again.").wait_for()
    secret = page.get_by_label("The new API key").input_value()
    assert re.fullmatch(r"ps_[0-9a-f]{8}_[\w-]+", secret)
    page.get_by_role("button", name="Copy").click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "api-key-created.png"), full_page=True)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/jobs").status_code == 200

    # Revoking takes two clicks: the first only opens the confirmation.
    page.get_by_text("Revoke", exact=True).click()
    assert ApiKey.objects.get().is_active
    page.get_by_role("button", name="Revoke “Shopify sync”").click()

    page.get_by_text("Key “Shopify sync” revoked: it no longer works.").wait_for()
    assert secret not in page.content()
    assert api.get("/api/v1/jobs").status_code == 401
