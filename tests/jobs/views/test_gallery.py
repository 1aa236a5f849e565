"""The gallery page: filters, search, empty states, pages of thumbnails whose number of
queries does not grow with the workspace."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Tenant
from jobs.models import Asset, AssetKind, Batch, Job, JobStatus, Preset
from jobs.views.gallery import GALLERY_PAGE_SIZE

pytestmark = pytest.mark.django_db

START = timezone.make_aware(datetime(2026, 3, 10, 12, 0))


def _results(
    tenant: Tenant,
    count: int,
    *,
    model: str = "bria-product-packshot",
    start: datetime = START,
    status: str = JobStatus.SUCCEEDED,
    **job_fields: Any,
) -> list[Asset]:
    """`count` jobs with one output each (rows only: no file is needed to list them),
    a minute apart going back from `start`."""
    jobs = Job.objects.bulk_create(
        Job(
            tenant=tenant,
            model=model,
            status=status,
            created_at=start - timedelta(minutes=i),
            completed_at=start - timedelta(minutes=i) + timedelta(seconds=5),
            **job_fields,
        )
        for i in range(count)
    )
    if status != JobStatus.SUCCEEDED:
        return []
    return Asset.objects.bulk_create(
        Asset(
            id=uuid.uuid4(),
            tenant=tenant,
            job=job,
            kind=AssetKind.OUTPUT,
            file=f"assets/{tenant.pk}/x/{job.pk}.png",
            thumbnail=f"assets/{tenant.pk}/x/{job.pk}.thumb.jpg",
            width=1024,
            height=1024,
            format="PNG",
            byte_size=1000,
            sha256="0" * 64,
            created_at=job.created_at + timedelta(seconds=5),
        )
        for job in jobs
    )


def _page(client: Client, tenant: Tenant, **params: Any) -> str:
    response = client.get(reverse("gallery", args=[tenant.slug]), params)
    assert response.status_code == 200
    return response.content.decode()


def _tiles(html: str) -> list[str]:
    return re.findall(r'/assets/([0-9a-f-]{36})/thumb/"', html)


def _ids(assets: list[Asset]) -> set[str]:
    return {str(a.id) for a in assets}


def test_a_new_workspace_is_told_to_submit_a_product_photo(owner_client, tenant):
    html = _page(owner_client, tenant)
    assert "Your gallery is empty: submit a product photo" in html
    assert reverse("job_new", args=[tenant.slug]) in html
    assert "No results match these filters" not in html


def test_filters_that_match_nothing_say_so_and_offer_to_clear_them(owner_client, tenant):
    _results(tenant, 3)
    html = _page(owner_client, tenant, sku="NOPE-1")
    assert "No results match these filters" in html
    assert "Clear filters" in html
    assert "Your gallery is empty" not in html
    assert _tiles(html) == []


def test_the_grid_shows_thumbnails_and_never_a_full_image(owner_client, tenant):
    assets = _results(tenant, 5)
    html = _page(owner_client, tenant)
    assert set(_tiles(html)) == _ids(assets)
    assert 'loading="lazy"' in html
    for asset in assets:
        full = reverse("asset_file", args=[tenant.slug, asset.id])
        # Only routes below the asset's own (thumb/, view/, favourite/) appear.
        assert not re.search(re.escape(full) + r'(["?])', html)


def test_it_filters_by_model(owner_client, tenant):
    packshots = _results(tenant, 2)
    scenes = _results(tenant, 2, model="segmind-scenecraft-v01")
    assert set(_tiles(_page(owner_client, tenant, model="segmind-scenecraft-v01"))) == _ids(scenes)
    assert set(_tiles(_page(owner_client, tenant, model="bria-product-packshot"))) == _ids(
        packshots
    )


def test_an_unknown_model_is_a_field_error(owner_client, tenant):
    _results(tenant, 2)
    html = _page(owner_client, tenant, model="nope")
    assert "Select a valid choice" in html
    assert len(_tiles(html)) == 2


def test_it_filters_by_preset_and_searches_its_name(owner_client, tenant):
    preset = Preset.objects.create(
        tenant=tenant, model="bria-product-packshot", slug="studio-white", name="Studio white"
    )
    with_preset = _results(tenant, 2, preset=preset)
    _results(tenant, 3)
    assert set(_tiles(_page(owner_client, tenant, preset=preset.pk))) == _ids(with_preset)
    assert set(_tiles(_page(owner_client, tenant, q="studio WH"))) == _ids(with_preset)


def test_another_workspaces_preset_is_not_offered(owner_client, tenant, outsider):
    other = Tenant.objects.get(memberships__user=outsider)
    theirs = Preset.objects.create(
        tenant=other, model="bria-product-packshot", slug="secret", name="Their secret preset"
    )
    _results(tenant, 1)
    html = _page(owner_client, tenant, preset=theirs.pk)
    assert "Their secret preset" not in html
    assert "Preset: choose one from the list." in html


def test_it_filters_by_batch_and_names_an_unknown_one(owner_client, tenant, outsider):
    batch = Batch.objects.create(tenant=tenant, name="Spring catalogue")
    in_batch = _results(tenant, 3, batch=batch)
    _results(tenant, 2)
    html = _page(owner_client, tenant, batch=batch.pk)
    assert set(_tiles(html)) == _ids(in_batch)
    assert "Spring catalogue" in html

    theirs = Batch.objects.create(tenant=Tenant.objects.get(memberships__user=outsider))
    html = _page(owner_client, tenant, batch=theirs.pk)
    assert "Batch: there is no such batch in this workspace." in html
    html = _page(owner_client, tenant, batch="not-a-uuid")
    assert "Batch: not a batch&#x27;s id." in html


def test_it_filters_by_sku_ignoring_case(owner_client, tenant):
    mug = _results(tenant, 1, sku="MUG-001")
    _results(tenant, 2, sku="CUP-002")
    assert set(_tiles(_page(owner_client, tenant, sku="mug-001"))) == _ids(mug)


def test_the_search_finds_sku_url_file_name_and_model_title(owner_client, tenant):
    by_sku = _results(tenant, 1, sku="TEAPOT-9")
    by_url = _results(tenant, 1, source_url="https://shop.example/img/blue-vase.jpg")
    by_model = _results(tenant, 1, model="segmind-scenecraft-v01")
    photo = Asset.objects.create(
        tenant=tenant,
        kind=AssetKind.INPUT,
        file="assets/x/in.jpg",
        original_name="red-kettle.jpg",
        width=10,
        height=10,
        format="JPEG",
        byte_size=10,
        sha256="1" * 64,
    )
    by_file = _results(tenant, 1, input_asset=photo)
    assert set(_tiles(_page(owner_client, tenant, q="teapot"))) == _ids(by_sku)
    assert set(_tiles(_page(owner_client, tenant, q="blue-vase"))) == _ids(by_url)
    assert set(_tiles(_page(owner_client, tenant, q="kettle"))) == _ids(by_file)
    title = by_model[0].job.model_title if by_model[0].job else ""
    assert title and set(_tiles(_page(owner_client, tenant, q=title.upper()))) >= _ids(by_model)
    assert _tiles(_page(owner_client, tenant, q="zzz-nothing")) == []


def test_it_filters_by_date_range_including_the_end_day(owner_client, tenant):
    march = _results(tenant, 2, start=START)
    _results(tenant, 2, start=START - timedelta(days=30))
    _results(tenant, 2, start=START + timedelta(days=30))
    html = _page(owner_client, tenant, date_from="2026-03-10", date_to="2026-03-10")
    assert set(_tiles(html)) == _ids(march)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-13-40"}, "From: enter a date as YYYY-MM-DD."),
        ({"date_to": "yesterday"}, "To: enter a date as YYYY-MM-DD."),
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "To: must be on or after"),
    ],
)
def test_a_bad_date_is_named_and_the_page_still_answers(owner_client, tenant, params, message):
    _results(tenant, 2)
    html = _page(owner_client, tenant, **params)
    assert message in html
    assert "has-error" in html


def test_favourites_only(owner_client, tenant):
    assets = _results(tenant, 4)
    Asset.objects.filter(pk__in=[assets[0].pk, assets[2].pk]).update(favourite=True)
    html = _page(owner_client, tenant, favourites="on")
    assert set(_tiles(html)) == {str(assets[0].id), str(assets[2].id)}


def test_status_failed_lists_failed_jobs_and_succeeded_only_results(owner_client, tenant):
    done = _results(tenant, 2)
    failed = Job.objects.create(
        tenant=tenant,
        model="bria-product-packshot",
        status=JobStatus.FAILED,
        sku="BROKEN-1",
        error_message="The photo could not be read.",
        completed_at=timezone.now() - timedelta(days=60),
    )
    html = _page(owner_client, tenant, status="failed")
    assert reverse("job_detail", args=[tenant.slug, failed.id]) in html
    assert "The photo could not be read." in html
    assert _tiles(html) == []
    html = _page(owner_client, tenant, status="succeeded")
    assert set(_tiles(html)) == _ids(done)
    assert "BROKEN-1" not in html
    # Unfiltered, a failure older than a week is not listed above the results.
    assert "BROKEN-1" not in _page(owner_client, tenant)


def test_a_failed_job_of_this_week_shows_above_the_results(owner_client, tenant):
    _results(tenant, 1)
    Job.objects.create(
        tenant=tenant,
        model="bria-product-packshot",
        status=JobStatus.FAILED,
        sku="BROKEN-2",
        error_message="Segmind timed out.",
        completed_at=timezone.now(),
    )
    html = _page(owner_client, tenant)
    assert "Waiting or not made" in html and "Segmind timed out." in html
    # Filters apply to it too.
    assert "BROKEN-2" not in _page(owner_client, tenant, sku="OTHER")


def test_pages_hold_a_fixed_number_of_tiles_newest_first(owner_client, tenant):
    assets = _results(tenant, GALLERY_PAGE_SIZE + 2)
    first = _page(owner_client, tenant)
    assert _tiles(first) == [str(a.id) for a in assets[:GALLERY_PAGE_SIZE]]
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = _page(owner_client, tenant, page=2)
    assert _tiles(second) == [str(a.id) for a in assets[GALLERY_PAGE_SIZE:]]
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_the_next_page_keeps_the_filters(owner_client, tenant):
    _results(tenant, GALLERY_PAGE_SIZE + 1, sku="KEEP")
    html = _page(owner_client, tenant, sku="KEEP")
    assert re.search(r'href="\?[^"]*sku=KEEP[^"]*page=2"', html.replace("&amp;", "&"))


def test_another_workspaces_results_never_show(owner_client, tenant, outsider):
    _results(tenant, 1)
    theirs = _results(Tenant.objects.get(memberships__user=outsider), 2, sku="THEIRS")
    html = _page(owner_client, tenant)
    assert not _ids(theirs) & set(_tiles(html))
    html = _page(owner_client, tenant, q="THEIRS")
    assert _tiles(html) == [] and "No results match these filters" in html


def _count_queries(client: Client, tenant: Tenant, **params: Any) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        html = _page(client, tenant, **params)
    return len(queries), [q["sql"] for q in queries.captured_queries] + [html]


def test_a_page_costs_the_same_queries_with_10_or_10000_results(owner_client, tenant):
    preset = Preset.objects.create(
        tenant=tenant, model="bria-product-packshot", slug="white", name="White"
    )
    batch = Batch.objects.create(tenant=tenant, name="Big batch")
    common: dict[str, Any] = {"preset": preset, "batch": batch, "sku": "SKU-1"}
    filters = {
        "model": "bria-product-packshot",
        "preset": preset.pk,
        "batch": batch.pk,
        "sku": "sku-1",
        "q": "sku",
        "date_from": "2025-01-01",
        "date_to": "2026-12-31",
    }
    _results(tenant, 10, **common)
    _count_queries(owner_client, tenant)  # the first page of a workspace also saves the session
    small = {page: _count_queries(owner_client, tenant, page=page, **filters)[0] for page in (1, 3)}
    small_unfiltered = _count_queries(owner_client, tenant)[0]

    _results(tenant, 9_990, start=START - timedelta(days=10), **common)
    if connection.vendor == "postgresql":
        # A studio's tables have statistics (autovacuum); rows inserted in the test's own
        # transaction have none, and PostgreSQL's plan for "a few rows" took 50-200 s here.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Job._meta.db_table}, {Asset._meta.db_table}")
    assert Asset.objects.for_tenant(tenant).count() == 10_000
    for page in (1, 3):
        count, captured = _count_queries(owner_client, tenant, page=page, **filters)
        assert count == small[page], captured[:-1]
        assert len(_tiles(captured[-1])) == GALLERY_PAGE_SIZE
        assert not any("COUNT(" in sql.upper() for sql in captured[:-1])
    assert _count_queries(owner_client, tenant)[0] == small_unfiltered
    assert small[1] <= 12
