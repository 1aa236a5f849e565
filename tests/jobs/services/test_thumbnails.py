"""Thumbnails: made once when an image is stored, served with long caching, backfilled."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import Tenant
from jobs import images, services
from jobs.models import Asset, AssetKind, Job, JobStatus
from tests.jobs.engines.segmind.test_dispatcher import _submit as _segmind_submit
from tests.jobs.engines.segmind.test_dispatcher import fake  # noqa: F401 (a fixture)

# Every test runs on the local disk and on S3 (moto): no local path is assumed.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_storage")]


def _jpeg(width: int, height: int, *, orientation: int = 1) -> bytes:
    image = Image.new("RGB", (width, height), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _transparent_png() -> bytes:
    image = Image.new("RGBA", (1000, 800), (0, 0, 0, 0))
    image.paste((20, 20, 200, 255), (300, 200, 700, 600))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _store(tenant: Tenant, data: bytes, kind: str = AssetKind.OUTPUT) -> Asset:
    return services.asset_create(
        tenant=tenant, job=None, kind=kind, data=data, info=images.inspect_image(data)
    )


def _content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def _thumb(asset: Asset) -> Image.Image:
    asset.thumbnail.open("rb")
    with asset.thumbnail:
        image = Image.open(io.BytesIO(asset.thumbnail.read()))
        image.load()
    return image


def test_a_stored_image_gets_an_upright_jpeg_thumbnail_480_px_on_its_longest_side(tenant):
    # Stored sideways with an EXIF rotation of 90°: shown 900 wide and 1200 high.
    asset = _store(tenant, _jpeg(1200, 900, orientation=6))
    thumb = _thumb(asset)
    assert asset.thumbnail.name.endswith(f"{asset.id}.thumb.jpg")
    assert thumb.format == "JPEG"
    assert thumb.size == (360, 480)
    assert Asset.objects.get(pk=asset.pk).thumbnail == asset.thumbnail


def test_a_small_image_is_not_enlarged(tenant):
    thumb = _thumb(_store(tenant, _jpeg(200, 100)))
    assert thumb.size == (200, 100)


def test_a_transparent_png_keeps_its_transparency_in_a_webp_thumbnail_and_is_flagged(
    tenant, owner_client
):
    asset = _store(tenant, _transparent_png())
    assert asset.has_transparency is True
    assert Asset.objects.get(pk=asset.pk).has_transparency is True
    assert asset.thumbnail.name.endswith(f"{asset.id}.thumb.webp")
    thumb = _thumb(asset)
    assert thumb.format == "WEBP" and thumb.mode == "RGBA"
    assert thumb.size == (480, 384)
    corner = thumb.getpixel((5, 5))
    centre = thumb.getpixel((240, 192))
    assert isinstance(corner, tuple) and isinstance(centre, tuple)
    assert corner[3] == 0
    assert centre[3] == 255 and centre[2] > 150 and centre[0] < 60
    response = owner_client.get(reverse("asset_thumbnail", args=[tenant.slug, asset.id]))
    assert response["Content-Type"] == "image/webp"


def _png(mode: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (300, 200), (20, 20, 200, 255)[: len(mode)]).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "data", [_jpeg(300, 200), _png("RGB"), _png("RGBA")], ids=["jpeg", "png", "opaque-rgba-png"]
)
def test_an_opaque_image_is_not_flagged_and_gets_a_jpeg_thumbnail(tenant, owner_client, data):
    asset = _store(tenant, data)
    assert asset.has_transparency is False
    assert Asset.objects.get(pk=asset.pk).has_transparency is False
    assert _thumb(asset).format == "JPEG"
    response = owner_client.get(reverse("asset_thumbnail", args=[tenant.slug, asset.id]))
    assert response["Content-Type"] == "image/jpeg"


def test_an_asset_stored_without_a_thumbnail_is_flagged_when_it_gets_one(tenant, owner_client):
    data = _transparent_png()
    asset = services.asset_create(
        tenant=tenant,
        job=None,
        kind=AssetKind.OUTPUT,
        data=data,
        info=images.inspect_image(data, decode=False),
        thumbnail=False,
    )
    assert Asset.objects.get(pk=asset.pk).has_transparency is False
    owner_client.get(reverse("asset_thumbnail", args=[tenant.slug, asset.id]))
    assert Asset.objects.get(pk=asset.pk).has_transparency is True


def test_a_submitted_jobs_photo_and_result_both_get_thumbnails(
    tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    kinds = {a.kind: bool(a.thumbnail) for a in Asset.objects.filter(tenant=tenant)}
    assert kinds == {AssetKind.INPUT: True, AssetKind.OUTPUT: True}


def test_a_result_stored_without_a_thumbnail_gets_one_on_first_view(
    owner_client: Client, tenant, monkeypatch
):
    # The Segmind dispatcher stores results without decoding them: no thumbnail yet.
    job = Job.objects.create(tenant=tenant, model="bria-product-packshot", status="running")
    data = _jpeg(800, 600)
    assert services.job_succeed(
        job=job, outputs=[(data, images.inspect_image(data))], thumbnails=False
    )
    output = job.assets.get()
    assert not output.thumbnail
    response = owner_client.get(reverse("asset_thumbnail", args=[tenant.slug, output.id]))
    assert Image.open(io.BytesIO(_content(response))).size == (480, 360)
    assert Asset.objects.get(pk=output.pk).thumbnail


@pytest.mark.usefixtures("fake")
def test_a_segmind_result_is_stored_undecoded_and_thumbnailed_on_first_view(
    owner_client: Client, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    job = _segmind_submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    output = job.assets.get(kind=AssetKind.OUTPUT)
    # The dispatcher's CPU bounds its throughput: it leaves the thumbnail to the gallery.
    assert not output.thumbnail
    assert job.input_asset is not None and job.input_asset.thumbnail
    response = owner_client.get(reverse("asset_thumbnail", args=[tenant.slug, output.id]))
    assert response.status_code == 200
    assert max(Image.open(io.BytesIO(_content(response))).size) == 480


def test_the_route_serves_it_with_long_private_caching_and_answers_304_to_its_etag(
    owner_client: Client, tenant
):
    asset = _store(tenant, _jpeg(1000, 1000))
    url = reverse("asset_thumbnail", args=[tenant.slug, asset.id])
    response = owner_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
    assert "max-age=31536000" in response["Cache-Control"]
    body = _content(response)
    assert Image.open(io.BytesIO(body)).size == (480, 480)
    again = owner_client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == response["ETag"]


def test_a_member_gets_it_and_an_outsider_gets_404(
    member_client: Client, outsider_client: Client, tenant
):
    asset = _store(tenant, _jpeg(300, 300))
    url = reverse("asset_thumbnail", args=[tenant.slug, asset.id])
    assert member_client.get(url).status_code == 200
    assert outsider_client.get(url).status_code == 404


def test_an_older_asset_gets_its_thumbnail_on_first_request_and_never_again(
    owner_client: Client, tenant, monkeypatch
):
    asset = _store(tenant, _jpeg(1000, 700))
    asset.thumbnail.delete(save=False)
    Asset.objects.filter(pk=asset.pk).update(thumbnail="")
    calls = []
    real = images.thumbnail

    def counted(*args: Any, **kwargs: Any) -> images.Thumbnail:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(images, "thumbnail", counted)
    url = reverse("asset_thumbnail", args=[tenant.slug, asset.id])
    first = owner_client.get(url)
    assert first.status_code == 200
    stored = Asset.objects.get(pk=asset.pk).thumbnail.name
    assert stored and calls == [1]
    second = owner_client.get(url)
    assert second.status_code == 200
    assert _content(second) == _content(first)
    assert calls == [1]
    assert Asset.objects.get(pk=asset.pk).thumbnail.name == stored


def test_the_backfill_command_makes_missing_thumbnails_once(tenant, capsys):
    old = [_store(tenant, _jpeg(640, 480)) for _ in range(3)]
    kept = _store(tenant, _jpeg(640, 480))
    for asset in old:
        asset.thumbnail.delete(save=False)
    Asset.objects.filter(pk__in=[a.pk for a in old]).update(thumbnail="")
    kept_name = kept.thumbnail.name

    call_command("assets_thumbnails")
    assert "3 thumbnails made." in capsys.readouterr().out
    assert not Asset.objects.filter(thumbnail="").exists()
    assert Asset.objects.get(pk=kept.pk).thumbnail.name == kept_name
    for asset in Asset.objects.all():
        assert asset.thumbnail.storage.exists(asset.thumbnail.name)

    call_command("assets_thumbnails")
    assert "0 thumbnails made." in capsys.readouterr().out


def test_ensure_keeps_the_first_thumbnail_when_two_race(tenant):
    asset = _store(tenant, _jpeg(640, 480))
    asset.thumbnail.delete(save=False)
    Asset.objects.filter(pk=asset.pk).update(thumbnail="")
    first = Asset.objects.get(pk=asset.pk)
    second = Asset.objects.get(pk=asset.pk)
    assert services.asset_thumbnail_ensure(asset=first) is True
    # The second saw no thumbnail when it loaded the row: it loses, and cleans up after itself.
    assert services.asset_thumbnail_ensure(asset=second) is False
    assert second.thumbnail.name == first.thumbnail.name
    assert first.thumbnail.storage.exists(first.thumbnail.name)


def test_the_migration_flags_older_transparent_images_and_drops_their_flat_thumbnails(tenant):
    from importlib import import_module

    from django.apps import apps
    from django.core.files.storage import default_storage

    migration = import_module("jobs.migrations.0018_asset_has_transparency")
    cutout = _store(tenant, _transparent_png())
    opaque = _store(tenant, _png("RGBA"))
    photo = _store(tenant, _jpeg(300, 200))
    # As they were stored before the flag: none set.
    Asset.objects.update(has_transparency=False)
    old_thumbnail = cutout.thumbnail.name

    migration.assets_transparency(apps, None)

    cutout.refresh_from_db()
    opaque.refresh_from_db()
    photo.refresh_from_db()
    # Its thumbnail is made again, keeping the transparency, on the gallery's next view.
    assert cutout.has_transparency is True and not cutout.thumbnail
    assert not default_storage.exists(old_thumbnail)
    assert opaque.has_transparency is False and opaque.thumbnail
    assert photo.has_transparency is False and photo.thumbnail
