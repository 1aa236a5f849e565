"""Assets' thumbnails: made when a photo is stored, by the worker that runs its job, or on
the gallery's first view; each recorded once, however many runs race."""

from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from PIL import Image

from jobs import images
from jobs.models import Asset
from jobs.services.inputs import _image_limits

logger = logging.getLogger(__name__)


def _asset_thumbnail_write(*, asset: Asset, data: bytes) -> bool:
    """Write the asset's thumbnail from its bytes (the row is left to the caller to save);
    False when the image cannot be read: the gallery then shows no thumbnail rather than
    the job losing its image."""
    try:
        thumb = images.thumbnail(data, **_image_limits())
    except images.ImageError:
        logger.warning("asset %s: no thumbnail, its image cannot be read", asset.pk)
        return False
    _thumbnail_save(asset, thumb)
    return True


def _thumbnail_save(asset: Asset, thumb: images.Thumbnail) -> None:
    # The thumbnail's decode is what tells whether the image has transparent pixels.
    asset.has_transparency = thumb.transparent
    asset.thumbnail.save(f"{asset.id}.thumb.{thumb.extension}", ContentFile(thumb.data), save=False)


def asset_thumbnail_ensure(*, asset: Asset) -> bool:
    """Give an asset stored without a thumbnail (a Segmind result, or one stored before
    thumbnails existed) its thumbnail, once: True when one was made now. Safe to run
    twice and concurrently: the row is only updated while it has none, and a loser's file
    is deleted."""
    if asset.thumbnail:
        return False
    with asset.file.open("rb") as fh:
        data = fh.read()
    if not _asset_thumbnail_write(asset=asset, data=data):
        return False
    return _asset_thumbnail_claim(asset=asset)


def _asset_thumbnail_claim(*, asset: Asset) -> bool:
    """Record the thumbnail file just written for `asset`, unless another run recorded
    one first (then this one's file is deleted); True when this one was recorded."""
    won = Asset.objects.filter(pk=asset.pk, thumbnail="").update(
        thumbnail=asset.thumbnail.name, has_transparency=asset.has_transparency
    )
    if not won:
        mine = asset.thumbnail.name
        asset.refresh_from_db(fields=["thumbnail", "has_transparency"])
        # A storage that overwrites (S3) gave both the same name: that file is the winner's.
        if mine != asset.thumbnail.name:
            asset.thumbnail.storage.delete(mine)
    return bool(won)


def assets_thumbnails_backfill(*, batch_size: int = 200) -> int:
    """Thumbnails for every asset that has none; returns how many were made."""
    made = 0
    last = None
    while True:
        page = Asset.objects.filter(thumbnail="").order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        assets = list(page[:batch_size])
        if not assets:
            return made
        for asset in assets:
            try:
                made += asset_thumbnail_ensure(asset=asset)
            except FileNotFoundError:
                logger.warning("asset %s: its file is missing, no thumbnail", asset.pk)
        last = assets[-1].pk


def _input_thumbnail_from(*, asset: Asset, image: Image.Image) -> None:
    """A large photo's thumbnail, made from the worker's working copy of it: accepting
    it did not decode it (see `_Input.thumbnail_now`)."""
    try:
        _thumbnail_save(asset, images.thumbnail_of(image))
        _asset_thumbnail_claim(asset=asset)
    except Exception:
        # The gallery makes it on first view instead; the job goes on.
        logger.warning("asset %s: no thumbnail from its job", asset.pk, exc_info=True)
