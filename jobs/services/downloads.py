"""Getting assets out: a gallery's ZIP, its entries named after the products (SKU, else
the photo's name) so that a shop can file them without opening each."""

from __future__ import annotations

import re
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


# Characters kept in an entry's name; runs of others become one "-".
_UNSAFE_NAME = re.compile(r"[^\w.-]+")


def _name_stem(text: str) -> str:
    """`text` as the stem of a file name on any system: no path separators, no leading
    dots (hidden files), at most 100 characters."""
    return _UNSAFE_NAME.sub("-", text.strip()).strip(".-_")[:100].rstrip(".-_")


def _zip_member_name(asset: Asset, taken: set[str]) -> str:
    """An entry's name: the job's SKU (`MUG-001.png`), else the name of the photo it was
    made from (`blue-mug.png`), else its model and the image's short id; then `-2`, `-3`
    if a name is taken, compared as Windows and macOS do, ignoring case."""
    job = asset.job
    stem = ""
    if job is not None:
        photo = job.source_label
        stem = _name_stem(job.sku) or _name_stem(photo.rsplit(".", 1)[0])
    if not stem:
        stem = f"{slugify(job.model) if job else 'image'}-{asset.pk.hex[:8]}"
    name = f"{stem}.{asset.extension}"
    number = 2
    while name.lower() in taken:
        name = f"{stem}-{number}.{asset.extension}"
        number += 1
    taken.add(name.lower())
    return name


def assets_zip(*, tenant: Tenant, assets: Iterable[Asset]) -> IO[bytes]:
    """A ZIP of `tenant`'s `assets` (full images, named by `_zip_member_name`: SKU, else
    photo's name, else model and id; names unique), rewound and ready to send. Built in a
    spooled temporary file: in memory while small, on disk beyond GALLERY_ZIP_SPOOL_BYTES."""
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
