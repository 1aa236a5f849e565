"""Download links to assets: file names, links signed by us (or the storage's own
presigned URL), and checking a link we signed. Reads only: the API's representation of an
asset (jobs.payloads) shows its link."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.http import content_disposition_header

from jobs.models import Asset
from productstudio.lib.errors import CodedError


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
    # Escaped as a header: a quote or a backslash in the name, and a non-ASCII name
    # (sent as RFC 5987's filename*), would otherwise break it or be refused by S3.
    disposition = content_disposition_header(True, asset_filename(asset))
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
