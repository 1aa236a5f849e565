"""What a shop does with its images: favourite, delete (files too), ZIP of a selection,
the before/after page; for owners and members, never across workspaces."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import Tenant, User
from jobs import services
from jobs.models import Asset, AssetKind, Job

# Every test runs on the local disk and on S3 (moto): no local path is assumed.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_storage")]


def _done(tenant: Tenant, user: User, photo: bytes, *, sku: str = "", capture: Any) -> Asset:
    """A finished local packshot of `photo`: its output asset."""
    with capture(execute=True):
        job = services.job_submit(
            tenant=tenant,
            user=user,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", photo, content_type="image/jpeg"),
        )
    if sku:
        Job.objects.filter(pk=job.pk).update(sku=sku)
    return Asset.objects.select_related("job").get(job=job, kind=AssetKind.OUTPUT)


@pytest.fixture
def outputs(tenant, owner, product_jpeg, django_capture_on_commit_callbacks) -> list[Asset]:
    return [
        _done(tenant, owner, product_jpeg, sku=sku, capture=django_capture_on_commit_callbacks)
        for sku in ("MUG-1", "MUG-1", "")
    ]


@pytest.fixture
def theirs(outsider, product_jpeg, django_capture_on_commit_callbacks) -> Asset:
    other = Tenant.objects.get(memberships__user=outsider)
    return _done(other, outsider, product_jpeg, capture=django_capture_on_commit_callbacks)


def _content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# -- favourites ------------------------------------------------------------------------------


@pytest.mark.parametrize("client_name", ["owner_client", "member_client"])
def test_a_member_or_owner_marks_a_favourite_and_unmarks_it(request, client_name, tenant, outputs):
    client: Client = request.getfixturevalue(client_name)
    asset = outputs[0]
    url = reverse("asset_favourite", args=[tenant.slug, asset.id])
    gallery = reverse("gallery", args=[tenant.slug]) + "?sku=MUG-1"
    response = client.post(url, {"favourite": "1", "next": gallery})
    assert response.status_code == 302 and response["Location"] == gallery
    assert Asset.objects.get(pk=asset.pk).favourite is True
    response = client.post(url, {"favourite": "0"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"id": str(asset.id), "favourite": False}
    assert Asset.objects.get(pk=asset.pk).favourite is False


def test_a_favourite_never_redirects_off_site(owner_client, tenant, outputs):
    url = reverse("asset_favourite", args=[tenant.slug, outputs[0].id])
    response = owner_client.post(url, {"favourite": "1", "next": "https://evil.example/"})
    assert response["Location"] == reverse("asset_detail", args=[tenant.slug, outputs[0].id])


def test_an_outsider_cannot_favourite_through_their_own_workspace(
    outsider_client, outsider, outputs
):
    own = Tenant.objects.get(memberships__user=outsider)
    url = reverse("asset_favourite", args=[own.slug, outputs[0].id])
    assert outsider_client.post(url, {"favourite": "1"}).status_code == 404
    assert Asset.objects.get(pk=outputs[0].pk).favourite is False


# -- the asset's page ------------------------------------------------------------------------


def test_the_asset_page_compares_with_the_jobs_photo_and_offers_every_action(
    member_client, tenant, outputs
):
    asset = outputs[0]
    assert asset.job is not None and asset.job.input_asset_id is not None
    html = member_client.get(reverse("asset_detail", args=[tenant.slug, asset.id])).content.decode()
    assert reverse("asset_file", args=[tenant.slug, asset.job.input_asset_id]) in html
    assert reverse("asset_file", args=[tenant.slug, asset.id]) in html
    assert 'type="range"' in html and 'id="compare-range"' in html
    assert reverse("asset_file", args=[tenant.slug, asset.id]) + "?download=1" in html
    assert reverse("job_rerun", args=[tenant.slug, asset.job.id]) in html
    assert reverse("asset_favourite", args=[tenant.slug, asset.id]) in html
    assert reverse("asset_delete", args=[tenant.slug, asset.id]) in html


def test_rerun_from_the_asset_page_makes_a_new_job_with_the_same_parameters(
    owner_client, tenant, outputs
):
    job = outputs[0].job
    assert job is not None
    response = owner_client.post(reverse("job_rerun", args=[tenant.slug, job.id]))
    rerun = Job.objects.for_tenant(tenant).exclude(pk__in=[a.job_id for a in outputs]).get()
    assert response.status_code == 302
    assert rerun.params == job.params and rerun.input_asset_id == job.input_asset_id


# -- delete ----------------------------------------------------------------------------------


def test_deleting_asks_first_then_removes_the_row_its_file_and_its_thumbnail(
    member_client, tenant, outputs, django_capture_on_commit_callbacks
):
    asset = outputs[0]
    names = [asset.file.name, asset.thumbnail.name]
    assert all(default_storage.exists(name) for name in names)
    url = reverse("asset_delete", args=[tenant.slug, asset.id])
    confirm = member_client.post(url)
    assert confirm.status_code == 200
    assert "Delete 1 image?" in confirm.content.decode()
    assert Asset.objects.filter(pk=asset.pk).exists()

    # The files go once the deletion is committed.
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(url, {"confirm": "1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("gallery", args=[tenant.slug])
    assert not Asset.objects.filter(pk=asset.pk).exists()
    assert not any(default_storage.exists(name) for name in names)
    # The job and its photo stay.
    assert asset.job is not None
    job = Job.objects.get(pk=asset.job_id)
    assert job.input_asset is not None and default_storage.exists(job.input_asset.file.name)


def test_a_jobs_photo_is_not_deleted(owner_client, tenant, outputs):
    photo = outputs[0].job.input_asset if outputs[0].job else None
    assert photo is not None
    url = reverse("asset_delete", args=[tenant.slug, photo.id])
    owner_client.post(url, {"confirm": "1"})
    assert Asset.objects.filter(pk=photo.pk).exists()
    assert default_storage.exists(photo.file.name)


def test_deleting_many_removes_only_the_selected_of_this_workspace(
    owner_client, tenant, outputs, theirs, django_capture_on_commit_callbacks
):
    chosen = outputs[:2]
    ids = [str(a.id) for a in chosen] + [str(theirs.id), "not-an-id"]
    url = reverse("assets_delete", args=[tenant.slug])
    confirm = owner_client.post(url, {"asset": ids})
    assert confirm.status_code == 200 and "Delete 2 images?" in confirm.content.decode()
    assert str(theirs.id) not in confirm.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(url, {"asset": ids, "confirm": "1"})
    assert response.status_code == 302
    assert set(Asset.objects.filter(kind=AssetKind.OUTPUT).values_list("pk", flat=True)) == {
        outputs[2].pk,
        theirs.pk,
    }
    assert not any(default_storage.exists(a.file.name) for a in chosen)
    assert default_storage.exists(theirs.file.name)


def test_deleting_only_another_workspaces_images_is_404(owner_client, tenant, theirs):
    url = reverse("assets_delete", args=[tenant.slug])
    response = owner_client.post(url, {"asset": [str(theirs.id)], "confirm": "1"})
    assert response.status_code == 404
    assert Asset.objects.filter(pk=theirs.pk).exists()


# -- ZIP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_name", ["owner_client", "member_client"])
def test_the_zip_holds_the_selected_full_images_and_nothing_of_another_workspace(
    request, client_name, tenant, outputs, theirs
):
    client: Client = request.getfixturevalue(client_name)
    chosen = outputs
    ids = [str(a.id) for a in chosen] + [str(theirs.id)]
    response = client.post(reverse("assets_zip", args=[tenant.slug]), {"asset": ids})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="productstudio-')
    assert f"productstudio-{tenant.slug}-" in disposition and disposition.endswith('.zip"')
    archive = zipfile.ZipFile(io.BytesIO(_content(response)))
    names = archive.namelist()
    assert len(names) == len(set(names)) == 3
    # Named by SKU (twice the same SKU: made unique), else by the photo's file name.
    ext = chosen[0].extension
    assert set(names) == {f"MUG-1.{ext}", f"MUG-1-2.{ext}", f"mug.{ext}"}
    contents = []
    for asset in chosen:
        with asset.file.open("rb") as fh:
            contents.append(fh.read())
    assert sorted(archive.read(name) for name in names) == sorted(contents)
    assert not any(theirs.id.hex[:8] in name for name in names)


def test_the_zip_of_only_another_workspaces_images_is_404(owner_client, tenant, theirs):
    response = owner_client.post(
        reverse("assets_zip", args=[tenant.slug]), {"asset": [str(theirs.id)]}
    )
    assert response.status_code == 404


def test_an_outsider_gets_404_for_the_zip_and_delete(outsider_client, tenant, outputs):
    ids = [str(a.id) for a in outputs]
    for name in ("assets_zip", "assets_delete"):
        response = outsider_client.post(reverse(name, args=[tenant.slug]), {"asset": ids})
        assert response.status_code == 404
    assert Asset.objects.filter(pk__in=ids).count() == 3


def test_nothing_selected_goes_back_with_a_message(owner_client, tenant):
    response = owner_client.post(reverse("assets_zip", args=[tenant.slug]), follow=True)
    assert "Select at least one image to download." in response.content.decode()


def test_the_zip_is_capped(owner_client, tenant, outputs, settings):
    settings.GALLERY_ZIP_MAX_ASSETS = 2
    response = owner_client.post(
        reverse("assets_zip", args=[tenant.slug]),
        {"asset": [str(a.id) for a in outputs]},
        follow=True,
    )
    assert "A ZIP holds at most 2 images: select fewer." in response.content.decode()
    assert response.get("Content-Type", "").startswith("text/html")


def test_zip_names_stay_unique_when_two_images_would_share_one(tenant, outputs):
    archive = zipfile.ZipFile(services.assets_zip(tenant=tenant, assets=[outputs[0]] * 2))
    ext = outputs[0].extension
    assert archive.namelist() == [f"MUG-1.{ext}", f"MUG-1-2.{ext}"]


def _named(asset: Asset, *, sku: str = "", photo: str = "", url: str = "") -> Asset:
    job = asset.job
    assert job is not None and job.input_asset is not None
    Job.objects.filter(pk=job.pk).update(sku=sku, source_url=url)
    Asset.objects.filter(pk=job.input_asset.pk).update(original_name=photo)
    return Asset.objects.select_related("job", "job__input_asset").get(pk=asset.pk)


def test_zip_entries_are_named_by_sku_else_photo_name_else_model_and_id(tenant, outputs):
    first, second, third = outputs
    assets = [
        _named(first, sku="Mug 1/blue"),  # a SKU that is no safe file name as it is
        _named(second, photo="../Blue mug (front).JPG"),
        _named(third, url="https://shop.test/img/red%20mug.png?size=2"),
        _named(third, url="https://shop.test/"),
        _named(third, sku="mug-1-BLUE"),  # the first's name, in another case
    ]
    archive = zipfile.ZipFile(services.assets_zip(tenant=tenant, assets=assets))
    ext = first.extension
    assert archive.namelist() == [
        f"Mug-1-blue.{ext}",
        f"Blue-mug-front.{ext}",
        f"red-mug.{ext}",
        f"bria-product-packshot-{third.id.hex[:8]}.{ext}",
        f"mug-1-BLUE-2.{ext}",
    ]
