"""The new-job page and the preset form in a real browser (issue 21): a scene's required
description in plain sight and named in words, a batch's submission showing its progress
at once, the settings labelled in words, the colour picker, and the sample thumbnails."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from jobs import samples
from jobs.models import Batch, Preset
from tests.e2e.test_portal_flow import _log_in, _shot
from tests.support.web_server import SlowImageHost

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"


@pytest.fixture
def slow_host() -> Iterator[SlowImageHost]:
    host = SlowImageHost()
    yield host
    host.stop()


def _new_job_page(page: Any, live_server: Any, owner: Any, tenant: Any) -> None:
    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(r"/w/"))
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")


def test_a_scenes_description_is_asked_for_in_plain_sight_and_in_words(
    page, live_server, owner, tenant, no_worker
):
    _new_job_page(page, live_server, owner, tenant)

    page.get_by_label(re.compile("AI Product Photography")).check()
    section = page.locator(f'.model-settings[data-model="{SCENE}"]')
    description = section.get_by_label(re.compile("^Scene description"))
    # Visible without opening "Advanced settings", which stays folded.
    expect(description).to_be_visible()
    expect(section.locator("details.advanced")).not_to_have_attribute("open", "")
    # The preview names it in words, with the API's name in small print.
    preview = page.locator("#preview-params")
    expect(preview.locator("dt", has_text="Scene description")).to_contain_text("prompt")
    expect(preview.locator("dd.error")).to_have_text("is required")
    assert "prompt: is required" not in page.locator("#preview").inner_text()

    # Submitted without one: the page says which setting, in words, and puts the cursor in it.
    page.locator("textarea[name=image_url]").fill(f"{live_server.url}/samples/mug.jpg")
    page.get_by_role("button", name="Submit job").click()
    page.locator(".form-errors", has_text="Scene description: is required").wait_for()
    expect(section.get_by_text("Scene description: is required")).to_be_visible()
    expect(section.get_by_label(re.compile("^Scene description"))).to_be_focused()
    _shot(page, "new-job-scene-needs-description")

    section.get_by_label(re.compile("^Scene description")).fill("A mug on an oak table")
    expect(preview.locator("dd.error")).to_have_count(0)
    expect(preview.locator("dd", has_text="A mug on an oak table")).to_be_visible()


def test_submitting_ten_photos_shows_its_progress_at_once(
    page, live_server, owner, tenant, settings, slow_host, no_worker
):
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
    settings.FETCH_TIMEOUT = 120  # the slow photo waits for the test, not a timeout
    _new_job_page(page, live_server, owner, tenant)
    urls = [f"{live_server.url}/samples/{name}.jpg" for name in samples.SAMPLE_NAMES[:9]]
    # One photo's host answers slowly: the page must show it is working meanwhile.
    page.locator("textarea[name=image_url]").fill("\n".join([*urls, slow_host.url]))
    page.get_by_label(re.compile("Product Packshot")).check()
    submit = page.locator("#submit-job")
    expect(submit).to_have_text("Submit 10 jobs")

    # Clicked from the page's own script, which then reads the button as the shop sees it
    # once the browser has painted (two frames), and again once a preview has answered
    # meanwhile (the form changed just after): Playwright's own locators and evaluations
    # would wait for the next page, which comes only once every photo is checked.
    shown, after_preview = submit.evaluate(
        """button => {
          const look = () => {
            const spinner = button.querySelector(".spinner");
            return {
              disabled: button.disabled,
              text: button.textContent,
              busy: button.getAttribute("aria-busy"),
              spinner: !!spinner && spinner.getBoundingClientRect().width > 0,
              status: document.getElementById("submit-progress").textContent,
            };
          };
          button.click();
          return new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(() => {
            const painted = look();
            new MutationObserver(() => resolve([painted, look().text]))
              .observe(document.getElementById("preview-params"), { childList: true });
            const urls = document.querySelector("textarea[name=image_url]");
            urls.dispatchEvent(new Event("input", { bubbles: true }));
          })));
        }"""
    )
    assert shown["disabled"]
    assert shown["text"] == "Checking 10 photos…"
    assert shown["busy"] == "true" and shown["spinner"]
    assert "The 10 photos are fetched and checked" in shown["status"]
    assert after_preview == "Checking 10 photos…"
    slow_host.release()
    page.wait_for_url(re.compile(r"/batches/"))
    assert Batch.objects.get().jobs.count() == 10


def test_the_settings_speak_words_and_a_colour_is_picked(
    page, live_server, owner, tenant, no_worker
):
    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(r"/w/"))
    page.goto(f"{live_server.url}/w/{tenant.slug}/presets/new/?model={PACKSHOT}")

    assert page.get_by_label(re.compile("^SKU")).count() == 0
    field = page.locator(f"#param-{PACKSHOT}-background_color")
    picker = page.locator(f"#param-{PACKSHOT}-background_color-picker")
    expect(picker).to_be_visible()
    # What a colour chooser does when a colour is picked.
    picker.evaluate(
        "p => { p.value = '#1a2b3c'; p.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    expect(field).to_have_value("#1A2B3C")
    field.fill("#abc")
    expect(picker).to_have_value("#aabbcc")
    page.get_by_label("Transparent").check()
    expect(field).to_have_value("transparent")
    expect(picker).to_be_disabled()
    _shot(page, "preset-form-colour")
    page.get_by_label("Name").fill("Cut out")
    page.get_by_role("button", name="Save preset").click()
    page.wait_for_url(re.compile(r"/presets/$"))
    assert Preset.objects.for_tenant(tenant).get().params == {"background_color": "transparent"}

    # The new-job page's preview: labels in words, the API's names in small print.
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")
    row = page.locator("#preview-params dt", has_text="Always remove the background")
    expect(row).to_contain_text("force_rmbg")
    expect(page.locator("#preview-params dt", has_text="Background colour")).to_be_visible()


def test_every_sample_is_a_thumbnail_that_fills_in_its_url(
    page, live_server, owner, tenant, no_worker
):
    _new_job_page(page, live_server, owner, tenant)

    page.get_by_text("No photo at hand? Try one of ours").click()
    thumbs = page.locator(".sample-grid button")
    expect(thumbs).to_have_count(len(samples.SAMPLE_NAMES))
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.sample-grid img'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    mug = page.get_by_role("button", name="Mug", exact=True)
    mug.click()
    expect(page.locator("textarea[name=image_url]")).to_have_value(
        f"{live_server.url}/samples/mug.jpg"
    )
    expect(mug).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#photo-count")).to_have_text("1 photo: one job.")
    _shot(page, "new-job-samples")
    mug.click()
    expect(page.locator("textarea[name=image_url]")).to_have_value("")
