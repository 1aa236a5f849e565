"""The gallery in a real browser: select two results, download them as a ZIP, then open
one and move the before/after slider with the keyboard."""

from __future__ import annotations

import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from jobs import services
from jobs.models import Asset, AssetKind
from tests.e2e.conftest import images_loaded
from tests.e2e.test_portal_flow import _log_in, _shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_shop_zips_two_results_and_compares_one_with_its_photo(
    page, live_server, owner, tenant, product_jpeg, tmp_path
):
    for sku in ("MUG-1", "MUG-2", "MUG-3"):
        job = services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile(f"{sku}.jpg", product_jpeg, content_type="image/jpeg"),
        )
        job.sku = sku
        job.save(update_fields=["sku"])
    assert Asset.objects.filter(kind=AssetKind.OUTPUT).count() == 3

    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
    page.get_by_role("link", name="Gallery", exact=True).click()
    tiles = page.locator(".gallery .tile")
    expect(tiles).to_have_count(3, timeout=15_000)
    images_loaded(page)
    assert all(
        "/thumb/" in src
        for src in page.locator(".gallery img").evaluate_all("l => l.map(i => i.src)")
    )

    boxes = page.get_by_label(re.compile("^Select this image"))
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.get_by_text("2 selected").wait_for()
    _shot(page, "gallery-selected")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download ZIP").click()
    download = info.value
    assert re.fullmatch(
        rf"productstudio-{tenant.slug}-\d{{4}}-\d{{2}}-\d{{2}}\.zip", download.suggested_filename
    )
    path = tmp_path / "selection.zip"
    download.save_as(path)
    names = zipfile.ZipFile(path).namelist()
    # Entries named by the products' SKUs.
    assert sorted(n.rsplit(".", 1)[0] for n in names) == ["MUG-1", "MUG-3"]

    tiles.nth(0).get_by_role("link").click()
    page.get_by_role("heading", name="Before and after").wait_for()
    slider = page.get_by_role("slider", name=re.compile("Divider between the photo"))
    assert slider.input_value() == "50"
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    assert slider.input_value() == "30"
    split = page.locator("#compare").evaluate("el => el.style.getPropertyValue('--split')")
    assert split == "30%"
    clip = page.locator(".compare-after").evaluate("el => getComputedStyle(el).clipPath")
    assert "30%" in clip
    _shot(page, "asset-compare")
