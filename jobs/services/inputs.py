"""A product photo given to a job (an upload, or a URL fetched by the safe fetcher), read and
checked before anything is stored, and the memory limits every decode of a photo takes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from jobs import images
from jobs.services.errors import JobError
from productstudio.lib import fetcher


@dataclass(frozen=True)
class _Input:
    data: bytes
    name: str
    info: images.ImageInfo

    @property
    def thumbnail_now(self) -> bool:
        """Whether storing it makes its thumbnail: a large PNG or WebP would be decoded
        whole for it, so the worker that runs its job makes it (or the gallery)."""
        return self.info.format == "JPEG" or not images.is_large(
            self.info.width, self.info.height, large_pixels=settings.IMAGE_LARGE_PIXELS
        )


def _image_limits() -> dict[str, int]:
    """The memory settings every decode of a photo takes (see `images`)."""
    return {
        "max_pixels": settings.IMAGE_MAX_PIXELS,
        "large_pixels": settings.IMAGE_LARGE_PIXELS,
        "large_decodes": settings.IMAGE_LARGE_DECODES,
    }


def _read_input(*, image_url: str, upload: UploadedFile | None) -> _Input:
    if bool(image_url) == bool(upload):
        raise JobError(
            "validation_error",
            "image_url: give the URL of a product photo or upload a file (one of them).",
            field="image_url",
        )
    if upload is not None:
        field = "image"
        if upload.size is not None and upload.size > settings.FETCH_MAX_BYTES:
            limit = settings.FETCH_MAX_BYTES // (1024 * 1024)
            raise JobError(
                "too_large", f"image: {upload.name} is larger than {limit} MB.", field=field
            )
        data = upload.read()
        name = upload.name or "upload"
    else:
        field = "image_url"
        try:
            result = fetcher.fetch_url_from_settings(image_url)
        except fetcher.FetchError as e:
            raise JobError(e.code, f"image_url: {e.message}", field=field) from e
        data = result.content
        name = urlsplit(result.final_url).path.rsplit("/", 1)[-1] or "image"
    try:
        # A large photo is checked from its structure and a bounded decode, never whole.
        check = partial(
            images.inspect_image,
            max_pixels=settings.IMAGE_MAX_PIXELS,
            large_pixels=settings.IMAGE_LARGE_PIXELS,
            large_decodes=settings.IMAGE_LARGE_DECODES,
        )
        # Too small or blank: refused here like an oversized photo, before any job or
        # hold exists, rather than failing once it runs.
        info = check(data, content=True)
        upright = images.upright_bytes(data, **_image_limits())
        if upright is not data:
            data, info = upright, check(upright)
    except images.ImageError as e:
        prefix = f"{field}: {name}" if upload is not None else field
        raise JobError(e.code, f"{prefix}: {e.message}", field=field) from e
    return _Input(data=data, name=name[:255], info=info)
