"""A completed request's images, downloaded (or decoded) and checked."""

from __future__ import annotations

import uuid

from django.conf import settings

from jobs import images
from jobs.dispatcher.outcomes import _Completed, _Failed
from jobs.engines.segmind import client as segmind
from productstudio.lib import fetcher


def _fetch_outputs(job_id: uuid.UUID, poll: segmind.Poll) -> _Completed | _Failed:
    """Download (or decode) a completed request's images and check them (an I/O thread)."""
    if not poll.outputs:
        return _Failed(job_id, "provider_bad_response", "Segmind finished but sent no image.")
    stored: list[tuple[bytes, images.ImageInfo]] = []
    try:
        for output in poll.outputs:
            data = output.data
            if data is None:
                data = fetcher.fetch_url_from_settings(output.url or "").content
            # Segmind's images are checked, not decoded: complete, an allowed format,
            # within the pixel limit. Pixels are decoded only when something uses them.
            info = images.inspect_image(data, max_pixels=settings.IMAGE_MAX_PIXELS, decode=False)
            stored.append((data, info))
    except (fetcher.FetchError, images.ImageError) as e:
        return _Failed(job_id, "output_unavailable", f"The result could not be saved: {e.message}")
    return _Completed(job_id, stored)
