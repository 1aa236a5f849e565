"""The new-job page in a real browser: photos dropped on the page make a batch (a file
that is not a photo is left out and named), and clicking the placement preview sets the
product's position."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from jobs.models import Batch, JobStatus
from tests.e2e.test_portal_flow import _log_in, _shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCENE = "ai-product-photography"

# Drops files on the drop zone as a user's drag from the desktop does: a DataTransfer
# holding two sample photos, fetched from the live server, and a text file.
DROP = """async (zone, base) => {
  const dt = new DataTransfer();
  for (const name of ["mug", "bottle"]) {
    const blob = await (await fetch(`${base}/samples/${name}.jpg`)).blob();
    dt.items.add(new File([blob], `${name}.jpg`, { type: "image/jpeg" }));
  }
  dt.items.add(new File(["just notes"], "notes.txt", { type: "text/plain" }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
}"""


def test_dropped_photos_become_a_batch_placed_where_the_preview_was_clicked(
    page, live_server, owner, tenant, no_worker
):
    # The page is under test, not the engine: the jobs are created and left queued.
    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(r"/w/"))
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")

    page.locator("#dropzone").evaluate(DROP, live_server.url)
    page.locator("#photo-count", has_text="3 photos").wait_for()
    assert "notes.txt: not a JPEG, PNG or WebP photo" in page.locator("#file-list").inner_text()

    page.get_by_label(re.compile("AI Product Photography")).check()
    section = page.locator(f'.model-settings[data-model="{SCENE}"]')
    section.get_by_label("Preset").select_option(label="Marble kitchen countertop")
    canvas = section.locator("canvas.placement-canvas")
    box = canvas.bounding_box()
    assert box is not None
    canvas.click(position={"x": box["width"] * 0.8, "y": box["height"] * 0.25})
    x_value = section.locator(f"#param-{SCENE}-x_value")
    y_value = section.locator(f"#param-{SCENE}-y_value")
    assert (x_value.input_value(), y_value.input_value()) == ("80", "25")
    # And back: typing a position moves the marker, which the preview's label reports.
    section.locator("summary").click()
    x_value.fill("40")
    assert "40% across" in canvas.get_attribute("aria-label")
    # The scale slider, by keyboard: a hundredth per arrow, from the default 0.63.
    scale_slider = section.locator(f"#param-{SCENE}-scale-range")
    # The default arrives with the preview's answer; a key pressed before it would start
    # from the preset's placeholder instead.
    expect(scale_slider).to_have_value("0.63", timeout=15_000)
    scale_slider.focus()
    page.keyboard.press("ArrowRight")
    assert section.locator(f"#param-{SCENE}-scale").input_value() == "0.64"
    page.locator("#price", has_text="3 images").wait_for()
    _shot(page, "new-job-batch")

    page.get_by_role("button", name="Submit 3 jobs").click()
    page.wait_for_url(re.compile(r"/batches/"))
    batch = Batch.objects.get()
    jobs = list(batch.jobs.order_by("created_at"))
    names = [job.input_asset.original_name if job.input_asset else "" for job in jobs]
    assert names == ["mug.jpg", "bottle.jpg"]
    assert {
        (job.params["x_value"], job.params["y_value"], job.params["scale"]) for job in jobs
    } == {(40, 25, 0.64)}
    assert {job.status for job in jobs} == {JobStatus.QUEUED}
    assert "notes.txt" in page.locator(".messages").inner_text()
