"""Image bytes: an asset's file and thumbnail for its workspace's members, any asset's
file for operators, and the demo's sample photos."""

from collections.abc import Callable
from functools import lru_cache
from uuid import UUID

from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs import images, samples, services
from jobs.models import Asset
from jobs.views.common import _asset
from productstudio.lib.storage import stored_file_response


@workspace_view
def asset_file(request: HttpRequest, membership: Membership, asset_id: UUID) -> FileResponse:
    """An asset's bytes, served only to members of its workspace."""
    asset = _asset(membership, asset_id)
    try:
        return stored_file_response(
            asset.file.storage,
            asset.file.name,
            content_type=asset.mime_type,
            as_attachment=request.GET.get("download") == "1",
            filename=services.asset_filename(asset),
            headers={"Cache-Control": "private, max-age=86400"},
        )
    except FileNotFoundError:
        raise Http404("This image's file is missing.") from None


@workspace_view
def asset_thumbnail(
    request: HttpRequest, membership: Membership, asset_id: UUID
) -> HttpResponseBase:
    """An asset's thumbnail. It never changes once made, so browsers keep it for good; an
    asset stored before thumbnails existed gets its thumbnail now, once. Pages ask for the
    thumbnail of an image with transparency with `?alpha=1`: a browser that kept the JPEG
    laid on white from before the thumbnail kept the transparency fetches it again."""
    asset = _asset(membership, asset_id)
    etag = f'"{asset.pk.hex}-thumb"'
    caching = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": etag}
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponseNotModified(headers=caching)
    if not asset.thumbnail:
        try:
            services.asset_thumbnail_ensure(asset=asset)
        except FileNotFoundError:
            raise Http404("This image's file is missing.") from None
        if not asset.thumbnail:
            raise Http404("This image has no thumbnail.")
    try:
        return stored_file_response(
            asset.thumbnail.storage,
            asset.thumbnail.name,
            content_type=asset.thumbnail_mime_type,
            headers=caching,
        )
    except FileNotFoundError:
        raise Http404("This image's thumbnail is missing.") from None


@lru_cache(maxsize=16)
def _sample_jpeg(name: str) -> bytes:
    return samples.sample_jpeg_bytes(name)


def _sample_response(name: str, render: Callable[[str], bytes]) -> HttpResponse:
    if name not in samples.SAMPLE_NAMES:
        raise Http404("No such sample.")
    return HttpResponse(
        render(name), content_type="image/jpeg", headers={"Cache-Control": "public, max-age=3600"}
    )


def sample_image(request: HttpRequest, name: str) -> HttpResponse:
    """Demo product photos drawn by the project, to try the studio without one at hand."""
    return _sample_response(name, _sample_jpeg)


# The new-job page shows every sample at once: small, so the eleven cost little to send.
SAMPLE_THUMBNAIL_SIDE = 200


@lru_cache(maxsize=16)
def _sample_thumbnail(name: str) -> bytes:
    return images.thumbnail(_sample_jpeg(name), longest_side=SAMPLE_THUMBNAIL_SIDE).data


def sample_thumbnail(request: HttpRequest, name: str) -> HttpResponse:
    """A sample photo's thumbnail, for the new-job page's picker."""
    return _sample_response(name, _sample_thumbnail)


@staff_member_required
def staff_asset_file(request: HttpRequest, asset_id: UUID) -> FileResponse:
    """Any asset, for operators in the admin."""
    asset = get_object_or_404(Asset, pk=asset_id)
    try:
        return stored_file_response(
            asset.file.storage, asset.file.name, content_type=asset.mime_type
        )
    except FileNotFoundError:
        raise Http404("This image's file is missing.") from None
