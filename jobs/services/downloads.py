"""Getting assets out: a gallery's ZIP (its entries named as downloads are, see
`jobs.selectors.downloads`)."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from typing import IO

from django.utils.text import slugify

from accounts.models import Tenant
from jobs.models import Asset

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
