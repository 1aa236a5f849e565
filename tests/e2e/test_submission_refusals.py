"""What a shop sees on the page when a submission has a problem (issue 21): an unusable
photo refused before any job exists, a European CSV read with its bad row named by row and
column, and a copied preset that the picker does not show twice."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from jobs.models import Batch, Job, Preset
from tests.e2e.test_new_job_form import _new_job_page
from tests.e2e.test_portal_flow import _log_in, _shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PACKSHOT = "bria-product-packshot"


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_one_pixel_photo_is_refused_on_the_page_and_no_job_is_made(
    page, live_server, owner, tenant, no_worker
):
    _new_job_page(page, live_server, owner, tenant)

    page.locator("input[type=file][name=image]").set_input_files(
        {"name": "dot.png", "mimeType": "image/png", "buffer": _png((1, 1))}
    )
    page.get_by_label(re.compile("Product Packshot")).check()
    page.locator("#submit-job").click()

    expect(page.get_by_text(re.compile("The image is too small to process"))).to_be_visible()
    _shot(page, "new-job-one-pixel-refused")
    assert not Job.objects.exists()
    # Nothing to try again: the page offers the form back, not a failed job.
    expect(page.get_by_role("button", name="Try again")).to_have_count(0)


def test_a_semicolon_csv_makes_a_batch_and_names_the_row_without_a_url(
    page, live_server, owner, tenant, settings, product_jpeg, http_server, no_worker
):
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
    urls = [
        http_server.route(f"/tasse-{n}.jpg", product_jpeg, Content_Type="image/jpeg")
        for n in range(2)
    ]
    csv = f"URL;SKU\r\n{urls[0]};TASSE-1\r\n;TASSE-2\r\n{urls[1]};TASSE-3\r\n".encode()
    _new_job_page(page, live_server, owner, tenant)

    page.locator("input[type=file][name=csv_file]").set_input_files(
        {"name": "produkte.csv", "mimeType": "text/csv", "buffer": csv}
    )
    page.get_by_label(re.compile("Product Packshot")).check()
    page.locator("#submit-job").click()

    expect(page.get_by_text(re.compile("row 3, column url: is required"))).to_be_visible()
    _shot(page, "new-job-csv-row-named")
    batch = Batch.objects.get()
    assert sorted(batch.jobs.values_list("sku", flat=True)) == ["TASSE-1", "TASSE-3"]


def test_a_copied_preset_shows_once_in_the_picker_under_its_own_name(
    page, live_server, owner, tenant, no_worker
):
    source = Preset.objects.system().for_model(PACKSHOT).order_by("slug")[:1].get()
    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(r"/w/"))
    page.goto(f"{live_server.url}/w/{tenant.slug}/presets/")
    # Two models have a system preset of this name: the one of this preset's row.
    copy_form = page.locator(f'form[action="/w/{tenant.slug}/presets/{source.pk}/copy/"]')
    copy_form.get_by_role("button", name=f"Copy {source.name} to edit").click()
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")
    page.get_by_label(re.compile("Product Packshot")).check()
    options = page.locator(f"#preset-{PACKSHOT} option").all_inner_texts()
    assert f"{source.name} (copy) (yours)" in options
    assert options.count(source.name) == 1
