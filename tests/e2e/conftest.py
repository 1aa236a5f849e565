"""Playwright driving Debian's Chromium (/usr/bin/chromium) against pytest-django's live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_segmind import FakeSegmind

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Chromium's own background traffic (updates, safe browsing, sync) would try to leave the
# machine; these flags keep a test browser on loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-features=OptimizationHints,MediaRouter,Translate",
]


# Module scope: Playwright's sync API keeps an event loop running in this thread while
# it is open, and later tests run asyncio code of their own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # While Playwright's loop runs, Django's ORM calls from fixtures and assertions are
    # still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


SEGMIND_KEY = "portal-key"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeSegmind]:
    """A fake Segmind on 127.0.0.1 that the live server's jobs go to."""
    with FakeSegmind(port=0, latency=0.3, api_key=SEGMIND_KEY) as server:
        settings.SEGMIND_API_KEY = SEGMIND_KEY
        settings.SEGMIND_API_BASE = server.base_url
        settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
        settings.SEGMIND_FIRST_POLL_SECONDS = 0.1
        settings.SEGMIND_POLL_INTERVAL_SECONDS = 0.1
        yield server


def images_loaded(page: Any) -> None:
    """Wait until every image of the page has loaded (or failed: read its naturalWidth)."""
    # A function, not an expression: Playwright would eval() an expression, which the CSP
    # refuses.
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")


def finish_signup(page: Any, live_server: Any) -> None:
    """After the sign-up form: open the link the sign-up emailed and create the workspace
    (the live server runs in this process, so its emails are in `mail.outbox`)."""
    import re
    from urllib.parse import urlsplit

    from django.core import mail

    page.get_by_role("heading", name="Check your email").wait_for()
    link = re.search(r"http://\S+/signup/confirm/\S+/", str(mail.outbox[-1].body))
    assert link is not None
    page.goto(live_server.url + urlsplit(link.group(0)).path)
    page.get_by_role("button", name="Create workspace").click()


def log_in_with_code(page: Any, live_server: Any, email: str, code: str) -> None:
    """The two log-in steps: email and password, then the code from the app."""
    from tests.conftest import PASSWORD

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Two-factor code").wait_for()
    page.get_by_role("textbox", name="Code").fill(code)
    page.get_by_role("button", name="Verify").click()
