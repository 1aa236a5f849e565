"""A CSV of product photos as spreadsheets export it: commas, semicolons (Europe) or tabs,
a byte-order mark, Windows-1252, `URL` in any case; every problem named by row and
column ("row 5, column url: is required")."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Tenant
from jobs.forms import csv_sources
from jobs.models import Batch, Job

pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"


def _post_csv(client: Any, tenant: Tenant, data: bytes, name: str = "products.csv") -> Any:
    upload = SimpleUploadedFile(name, data, content_type="text/csv")
    return client.post(
        reverse("job_new", args=[tenant.slug]), {"csv_file": upload, "model": PACKSHOT}
    )


def _followed(client: Any, response: Any) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.get(response["Location"]).content.decode()


@pytest.fixture
def urls(http_server: Any, product_jpeg: bytes) -> list[str]:
    return [
        http_server.route(f"/mug-{n}.jpg", product_jpeg, Content_Type="image/jpeg")
        for n in range(2)
    ]


@pytest.mark.parametrize("separator", [";", "\t", ","], ids=["semicolons", "tabs", "commas"])
def test_a_csv_separated_as_a_spreadsheet_exports_it_makes_a_batch(
    owner_client, tenant, urls, separator
):
    text = f"sku{separator}url\r\nMUG-1{separator}{urls[0]}\r\nMUG-2{separator}{urls[1]}\r\n"

    _post_csv(owner_client, tenant, text.encode())

    jobs = Batch.objects.get().jobs.order_by("created_at")
    assert [(j.sku, j.source_url) for j in jobs] == [("MUG-1", urls[0]), ("MUG-2", urls[1])]


def test_excels_semicolon_csv_with_a_byte_order_mark_and_an_upper_case_header(
    owner_client, tenant, urls
):
    text = f"\ufeffURL;Sku;Price\r\n{urls[0]};TASSE-Ä;12,50\r\n{urls[1]};TASSE-Ö;9,90\r\n"

    _post_csv(owner_client, tenant, text.encode("utf-8"))

    jobs = Batch.objects.get().jobs.order_by("created_at")
    assert [j.sku for j in jobs] == ["TASSE-Ä", "TASSE-Ö"]


def test_a_windows_1252_csv_is_read_too(owner_client, tenant, urls):
    text = f"Url;sku\r\n{urls[0]};Crème-1\r\n"

    _post_csv(owner_client, tenant, text.encode("cp1252"))

    assert Job.objects.get().sku == "Crème-1"


def test_a_row_without_a_url_is_named_by_its_row_and_column(owner_client, tenant, urls):
    text = f"url;sku\n{urls[0]};A\n{urls[1]};B\n\n;C\n"

    response = _post_csv(owner_client, tenant, text.encode())

    page = _followed(owner_client, response)
    assert "row 5, column url: is required" in page
    assert Batch.objects.get().jobs.count() == 2


def test_a_csv_whose_only_row_has_no_url_is_refused_naming_it(owner_client, tenant):
    response = _post_csv(owner_client, tenant, b"url,sku\n,MUG-1\n")

    assert response.status_code == 200
    assert "row 2, column url: is required" in response.content.decode()
    assert not Job.objects.exists()


def test_a_too_long_sku_is_named_by_its_row_and_column(owner_client, tenant, urls):
    text = f"url,sku\n{urls[0]},A\n{urls[1]},{'X' * 101}\n"

    response = _post_csv(owner_client, tenant, text.encode())

    assert "row 3, column sku: is longer than 100 characters" in _followed(owner_client, response)


def test_a_bad_url_in_a_csv_is_named_by_its_row_and_column(owner_client, tenant, urls):
    text = f"url\n{urls[0]}\nnot a link\n"

    response = _post_csv(owner_client, tenant, text.encode())

    assert "row 3, column url: not a link:" in _followed(owner_client, response)


def test_a_workbook_saved_as_csv_by_name_is_refused_saying_what_to_do(owner_client, tenant):
    response = _post_csv(owner_client, tenant, b"PK\x03\x04" + b"\x00" * 200, "products.csv")

    assert "products.csv is a spreadsheet workbook, not a CSV" in response.content.decode()
    assert not Job.objects.exists()


def test_the_header_row_decides_the_separator_even_with_commas_in_cells():
    # A semicolon CSV whose descriptions have commas: the url column is what decides.
    text = "sku;url;description\nA;https://x.test/a.jpg;red, large\n"
    (source,) = csv_sources(text, name="p.csv")
    assert (source.sku, source.image_url) == ("A", "https://x.test/a.jpg")


def test_blank_lines_above_the_header_keep_the_spreadsheets_row_numbers():
    sources = csv_sources("\n\nurl\n\n", name="p.csv") + csv_sources("\nurl\n\n \n", name="p.csv")
    assert sources == []
    (missing,) = csv_sources("\nurl,sku\n,A\n", name="p.csv")
    assert (missing.label, missing.problem) == ("row 3, column url", "is required")
