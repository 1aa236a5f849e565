"""Getting assets out: a gallery's ZIP, download file names, and download links (signed by
us, or the storage's own presigned URL)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.text import slugify

from accounts.models import Tenant
from jobs.models import Asset
from productstudio.lib.errors import CodedError

# A gallery's ZIP stays in memory up to this size, then goes to a temporary file.
GALLERY_ZIP_SPOOL_BYTES = 32 * 1024 * 1024


def _zip_member_name(asset: Asset, taken: set[str]) -> str:
    job = asset.job
    base = slugify(job.sku if job and job.sku else (job.model if job else "")) or "image"
    name = f"{base}-{asset.pk.hex[:8]}.{asset.extension}"
    number = 2
    while name in taken:
        name = f"{base}-{asset.pk.hex[:8]}-{number}.{asset.extension}"
        number += 1
    taken.add(name)
    return name


def assets_zip(*, tenant: Tenant, assets: Iterable[Asset]) -> IO[bytes]:
    """A ZIP of `tenant`'s `assets` (full images, each named `<sku-or-model>-<short
    id>.<ext>`, names unique), rewound and ready to send. Built in a spooled temporary
    file: in memory while small, on disk beyond GALLERY_ZIP_SPOOL_BYTES."""
    # Handed over open: the response that sends it closes it.
    spool = tempfile.SpooledTemporaryFile(max_size=GALLERY_ZIP_SPOOL_BYTES)  # noqa: SIM115
    taken: set[str] = set()
    # Stored, not deflated: JPEG, PNG and WebP are compressed already.
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
        for asset in assets:
            if asset.tenant_id != tenant.pk:
                continue
            with (
                asset.file.open("rb") as source,
                archive.open(_zip_member_name(asset, taken), "w") as target,
            ):
                shutil.copyfileobj(source, target)
    spool.seek(0)
    return spool


class AssetUrlError(CodedError):
    """A download link refused: `not_found` (not signed by us, or no such asset) or
    `url_expired`."""


@dataclass(frozen=True)
class AssetUrl:
    """A link to an asset's bytes that needs no API key, valid until `expires_at`; a
    path on this site (the API makes it absolute) or the storage's own signed URL."""

    url: str
    expires_at: datetime


def asset_filename(asset: Asset) -> str:
    """The name an asset is downloaded under: its original name, with its format's
    extension."""
    filename = asset.original_name or f"{asset.id}.{asset.extension}"
    if not filename.lower().endswith("." + asset.extension):
        filename = f"{filename.rsplit('.', 1)[0]}.{asset.extension}"
    return filename


def _asset_signer(asset_id: uuid.UUID | str) -> signing.Signer:
    # Salted with the asset's id: a signature is worth nothing for another asset.
    return signing.Signer(salt=f"jobs.asset-download:{uuid.UUID(str(asset_id))}")


def asset_download_url(*, asset: Asset) -> AssetUrl:
    """A download link for `asset`, valid ASSET_URL_TTL_SECONDS: the storage's own
    presigned URL when it has one (S3 through django-storages), else a path on this site
    whose signature (keyed with SECRET_KEY and the asset's id) covers its expiry."""
    ttl = int(settings.ASSET_URL_TTL_SECONDS)
    expires = int(timezone.now().timestamp()) + ttl
    expires_at = datetime.fromtimestamp(expires, tz=UTC)
    presigned = _storage_presigned_url(asset, ttl)
    if presigned is not None:
        return AssetUrl(url=presigned, expires_at=expires_at)
    signature = _asset_signer(asset.pk).signature(str(expires))
    path = reverse("api_asset_download", args=[asset.pk])
    return AssetUrl(
        url=f"{path}?{urlencode({'expires': expires, 'signature': signature})}",
        expires_at=expires_at,
    )


def _storage_presigned_url(asset: Asset, ttl: int) -> str | None:
    """S3's own signed URL for the asset (django-storages with `querystring_auth`, its
    default), which S3 serves itself; None for any other storage."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:
        return None
    storage = asset.file.storage
    if not isinstance(storage, S3Storage) or not getattr(storage, "querystring_auth", True):
        return None
    disposition = f'attachment; filename="{asset_filename(asset)}"'
    url: str = storage.url(
        asset.file.name,
        parameters={
            "ResponseContentDisposition": disposition,
            "ResponseContentType": asset.mime_type,
        },
        expire=ttl,
    )
    return url


def asset_download_check(*, asset_id: uuid.UUID | str, expires: str, signature: str) -> Asset:
    """The asset a download link names, if we signed the link: `not_found` for a link we
    did not sign (or a missing asset), `url_expired` for one past its expiry."""
    not_found = AssetUrlError("not_found", "No such file, or the link is not valid.")
    if not expires.isdigit() or not signature:
        raise not_found
    expected = _asset_signer(asset_id).signature(expires)
    if not constant_time_compare(expected, signature):
        raise not_found
    if int(expires) < timezone.now().timestamp():
        raise AssetUrlError(
            "url_expired", "This download link has expired: get the asset again for a new one."
        )
    asset = Asset.objects.filter(pk=asset_id).first()
    if asset is None:
        raise not_found
    return asset
