"""Keyboard and screen-reader basics of the workspace's pages, checked in Chromium.

On every page of `PAGES`: each visible form control has an accessible name from a label,
`aria-label` or `aria-labelledby`; each image has an `alt`; there is one h1, a <main>
landmark and a skip link to it; the focus is visible as Tab moves through the page; and the
text of the key elements (body text, muted text, buttons, links, badges, statuses) has a
contrast of at least 4.5:1 (WCAG AA) against its background, as the browser computes them.

The contrast is computed here with WCAG's formula, from `getComputedStyle`: no third-party
checker. The browser enforces the Content-Security-Policy, and whatever it refuses on a
page fails the page. Pages are listed by URL name: a new page is a line in `PAGES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, reverse

from accounts import services as account_services
from jobs import services as job_services
from jobs.models import AssetKind, Batch, Job, Preset
from productstudio.urls import workspace_patterns

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# URL names of workspace pages taking only the workspace's slug.
PAGES = [
    "dashboard",
    "preset_list",
    "credits",
    "team",
    "workspace_settings",
    "api_keys",
    "job_new",
    "gallery",
    "batch_list",
    # Pages of one object: the busy workspace's finished job, its batch and its result.
    "job_detail",
    "batch_detail",
    "asset_detail",
]

# Whose text must reach 4.5:1 against its background.
CONTRAST_SELECTORS = [
    "main p",
    "main .muted",
    "main .help",
    ".btn",
    "main a",
    ".mainnav a",
    ".badge",
    ".status",
    "main th",
    "main label",
]
MIN_CONTRAST = 4.5
TABS = 15

CHECKS_JS = (Path(__file__).parent / "accessibility_checks.js").read_text()

FOCUS_JS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const ring = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const what = el.tagName.toLowerCase() + " " + (el.textContent || el.name || "").trim();
  return { ring, what: what.slice(0, 40) };
}
"""


def _page_problems(page: Any, url: str) -> list[str]:
    page.goto(url)
    result = page.evaluate(CHECKS_JS, [CONTRAST_SELECTORS, MIN_CONTRAST])
    problems: list[str] = list(result["problems"])
    if result["checked"] < 5:
        problems.append(f"only {result['checked']} elements' contrast could be checked")
    # The first Tab reaches the skip link; every stop after it shows a focus ring.
    for n in range(TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        if focused is None:
            if n == 0:
                problems.append("Tab focused nothing")
            break  # past the page's last control
        if n == 0 and not focused["what"].startswith("a Skip to content"):
            problems.append(f"the first Tab reached {focused['what']!r}, not the skip link")
        if not focused["ring"]:
            problems.append(f"no visible focus on Tab {n + 1}: {focused['what']!r}")
    return problems


def _url(name: str, tenant: Any, objects: dict[str, Any]) -> str:
    """The page's URL in the workspace, naming its object for a page of one object."""
    pattern = next(p for p in workspace_patterns if isinstance(p, URLPattern) and p.name == name)
    kwargs = {"workspace": tenant.slug}
    kwargs.update((key, objects[key]) for key in pattern.pattern.converters if key in objects)
    return reverse(name, kwargs=kwargs)


def _logged_in_context(
    browser: Any, live_server: Any, user: Any, *, width: int, height: int
) -> Any:
    """A browser context of this size, signed in as `user` (the session made by Django's
    test client), so the checks start on the pages themselves."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": width, "height": height})
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    return context


@pytest.fixture
def busy_workspace(tenant, owner, member, product_jpeg, django_capture_on_commit_callbacks):
    """A workspace with something on each page: a finished job, a preset, a key, a member."""
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error_message
    batch = Batch.objects.create(tenant=tenant, name="Spring mugs", created_by=owner)
    Job.objects.filter(pk=job.pk).update(batch=batch, sku="MUG-001")
    objects = {
        "job_id": job.pk,
        "batch_id": batch.pk,
        "asset_id": job.assets.get(kind=AssetKind.OUTPUT).pk,
    }
    system = Preset.objects.system().first()
    assert system is not None
    job_services.preset_copy(tenant=tenant, user=owner, preset=system)
    account_services.api_key_create(tenant=tenant, name="Shop sync", created_by=owner)
    return tenant, objects


def test_the_workspace_pages_have_labels_landmarks_focus_and_contrast(
    browser, live_server, owner, busy_workspace
):
    tenant, objects = busy_workspace
    context = _logged_in_context(browser, live_server, owner, width=1280, height=900)
    page = context.new_page()
    # The browser enforces the Content-Security-Policy here: anything it refuses (an inline
    # script or style="" the page needs) is a failure too.
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    failures = {}
    try:
        for name in PAGES:
            problems = _page_problems(page, live_server.url + _url(name, tenant, objects))
            problems += [f"refused by the CSP: {text}" for text in refused]
            refused.clear()
            if problems:
                failures[name] = problems
    finally:
        context.close()
    assert not failures, "\n".join(
        f"{name}:\n  " + "\n  ".join(problems) for name, problems in failures.items()
    )


def test_on_a_phone_the_navigation_folds_behind_a_menu_button_that_works_with_the_keyboard(
    browser, live_server, owner, tenant
):
    context = _logged_in_context(browser, live_server, owner, width=390, height=844)
    page = context.new_page()
    try:
        page.goto(live_server.url + reverse("credits", args=[tenant.slug]))
        button = page.get_by_role("button", name="Menu")
        nav = page.get_by_role("navigation", name="Workspace")
        assert button.get_attribute("aria-expanded") == "false"
        assert not nav.is_visible()
        # Skip link, brand, then the button: Enter opens the menu, Tab goes into it.
        for _ in range(3):
            page.keyboard.press("Tab")
        assert button.evaluate("b => b === document.activeElement")
        page.keyboard.press("Enter")
        assert button.get_attribute("aria-expanded") == "true"
        assert nav.is_visible()
        assert nav.get_by_role("link", name="Credits").get_attribute("aria-current") == "page"
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.textContent.trim()") == "Dashboard"
        # Escape closes it and gives the focus back to the button.
        page.keyboard.press("Escape")
        assert button.get_attribute("aria-expanded") == "false"
        assert not nav.is_visible()
        assert button.evaluate("b => b === document.activeElement")
        # The page fits the phone's width.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
