"""Two-factor in a real browser: a shop owner sets up an authenticator app from the QR
page (the code computed from the key the page shows), saves the recovery codes, and logs
in again with a code."""

from __future__ import annotations

import base64
import re
import time

import pytest
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in_with_code
from tests.e2e.test_segmind_406 import _shot
from tests.support.two_factor import totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _app_code(typed_key: str) -> str:
    """What an authenticator app shows now for a key typed in by hand."""
    key = base64.b32decode(
        typed_key.replace(" ", "") + "=" * (-len(typed_key.replace(" ", "")) % 8)
    )
    return f"{hotp(key, int(time.time()) // 30, digits=6):06d}"


def test_an_owner_sets_up_two_factor_and_logs_in_with_a_code(page, live_server, owner, tenant):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))

    page.get_by_role("link", name="Security").click()
    page.get_by_role("button", name="Set up two-factor").click()
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    qr.wait_for()
    assert qr.locator("svg").bounding_box()["width"] >= 150
    typed_key = page.locator("#totp-secret").inner_text()
    _shot(page, "two-factor-setup")
    page.get_by_role("textbox", name="Code").fill(_app_code(typed_key))
    page.get_by_role("button", name="Turn on two-factor").click()

    page.get_by_role("heading", name="Two-factor is on").wait_for()
    codes = page.locator(".recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    _shot(page, "two-factor-recovery-codes")
    device = TOTPDevice.objects.get(user=owner, confirmed=True)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/$"))
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Enter the 6-digit code from your app (or a recovery code)").wait_for()
    page.get_by_role("textbox", name="Code").fill(
        "000000" if totp_code(device) != "000000" else "111111"
    )
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("That code is not right").wait_for()
    _shot(page, "two-factor-wrong-code")
    device.refresh_from_db()
    device.throttle_reset()  # the doubling wait after a wrong code, skipped for the test

    page.get_by_role("textbox", name="Code").fill(totp_code(device))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
    assert page.get_by_role("button", name="Log out").is_visible()


def test_a_half_logged_in_browser_reaches_no_workspace_page(page, live_server, owner, tenant):
    device = TOTPDevice.objects.create(user=owner, confirmed=True)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Two-factor code").wait_for()

    page.goto(f"{live_server.url}/w/{tenant.slug}/")

    page.wait_for_url(re.compile(r"/login/\?next="))
    log_in_with_code(page, live_server, owner.email, totp_code(device))
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
