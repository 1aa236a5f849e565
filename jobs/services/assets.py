"""A workspace's stored images (assets): storing one, favourites, deleting outputs and
their files once the deletion is committed."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from jobs import images
from jobs.models import Asset, AssetKind, Job
from jobs.services.inputs import _Input
from jobs.services.thumbnails import _asset_thumbnail_write

logger = logging.getLogger(__name__)


def asset_create(
    *,
    tenant: Tenant,
    job: Job | None,
    kind: str,
    data: bytes,
    info: images.ImageInfo,
    original_name: str = "",
    thumbnail: bool = True,
) -> Asset:
    """Store image bytes in Django's storage as one of `tenant`'s assets, with its
    thumbnail unless `thumbnail` is False (then the gallery makes it on first view)."""
    asset = _asset_stored(
        tenant=tenant,
        job=job,
        kind=kind,
        data=data,
        info=info,
        original_name=original_name,
        thumbnail=thumbnail,
    )
    asset.save()
    return asset


def _asset_stored(
    *,
    tenant: Tenant | int,
    job: Job | uuid.UUID | None,
    kind: str,
    data: bytes,
    info: images.ImageInfo,
    original_name: str = "",
    thumbnail: bool = True,
) -> Asset:
    # The files are written, the row is left to the caller to save. `tenant` and `job`
    # may be ids alone: the Segmind dispatcher's I/O threads store results without a
    # query (the file names need only the tenant's id).
    asset = Asset(
        id=uuid.uuid4(),
        kind=kind,
        original_name=original_name,
        width=info.width,
        height=info.height,
        format=info.format,
        byte_size=info.byte_size,
        sha256=info.sha256,
        created_at=timezone.now(),
    )
    if isinstance(tenant, Tenant):
        asset.tenant = tenant
    else:
        asset.tenant_id = tenant
    if isinstance(job, Job):
        asset.job = job
    else:
        asset.job_id = job
    asset.file.save(f"{asset.id}.{asset.extension}", ContentFile(data), save=False)
    if thumbnail:
        _asset_thumbnail_write(asset=asset, data=data)
    return asset


def _input_stored(*, tenant: Tenant, source: _Input) -> Asset:
    """Write a checked photo to storage as `tenant`'s input asset (the row is left unsaved):
    before any transaction, since on S3 that is network I/O."""
    return _asset_stored(
        tenant=tenant,
        job=None,
        kind=AssetKind.INPUT,
        data=source.data,
        info=source.info,
        original_name=source.name,
        thumbnail=source.thumbnail_now,
    )


def asset_favourite_set(*, asset: Asset, favourite: bool) -> None:
    """Mark or unmark an asset as one of the workspace's favourites."""
    Asset.objects.filter(pk=asset.pk).update(favourite=favourite)
    asset.favourite = favourite


def _asset_files_delete(names: Iterable[tuple[Any, str]]) -> None:
    for storage, name in names:
        try:
            storage.delete(name)
        except Exception:
            # A file already gone is what we wanted; others are kept for an operator.
            # Any storage's error, not only the disk's OSError: S3's are botocore's, and
            # the rows are gone already, so one unreachable store must not stop the rest.
            logger.warning("could not delete stored file %s", name, exc_info=True)


def assets_delete(*, tenant: Tenant, assets: Iterable[Asset]) -> int:
    """Delete `tenant`'s outputs among `assets` and, once that is committed, their files
    and thumbnails; returns how many were deleted.

    Only results are deleted: the photos jobs were made from stay, as reruns and the
    before/after comparison need them (and a batch's jobs may share one).
    """
    ids = [asset.pk for asset in assets]
    with transaction.atomic():
        doomed = list(
            Asset.objects.for_tenant(tenant)
            .outputs()
            .filter(pk__in=ids)
            .select_for_update()
            .order_by("pk")
        )
        files = [
            (field.storage, field.name)
            for asset in doomed
            for field in (asset.file, asset.thumbnail)
            if field
        ]
        Asset.objects.filter(pk__in=[a.pk for a in doomed]).delete()
        transaction.on_commit(partial(_asset_files_delete, files))
    return len(doomed)


def asset_delete(*, tenant: Tenant, asset: Asset) -> bool:
    """Delete one of `tenant`'s assets, its file and its thumbnail."""
    return bool(assets_delete(tenant=tenant, assets=[asset]))


def asset_files_discard(*, assets: Iterable[Asset]) -> None:
    """Delete the files (and thumbnails) of assets whose rows were never saved: results
    stored for a transaction that rolled back, or for a job that is gone. A storage
    error is logged and the other files are still deleted."""
    _assets_discard(assets)


def _assets_discard(assets: Iterable[Asset]) -> None:
    """Delete the files of assets that will not be saved (a refused batch).

    Called while another error or refusal is on its way to the caller: a storage error
    here is logged, never raised, so it neither replaces that error nor stops the other
    deletes."""
    _asset_files_delete(
        (field.storage, field.name)
        for asset in assets
        for field in (asset.file, asset.thumbnail)
        if field
    )
