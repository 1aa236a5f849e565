"""A completed request's images, downloaded (or decoded), checked and stored."""

from __future__ import annotations

import uuid

from django.conf import settings

from jobs import images, services
from jobs.dispatcher.outcomes import _Completed, _Failed
from jobs.engines.segmind import client as segmind
from productstudio.lib import fetcher


def _fetch_outputs(
    job_id: uuid.UUID, tenant_id: int, model: str, poll: segmind.Poll
) -> _Completed | _Failed:
    """Download (or decode) a completed request's images, check them and write them to
    storage (an I/O thread, no query).

    Stored here, not by the database thread: a storage that fails then fails this job
    alone (the error is raised; the files written so far are deleted), and the database
    thread never waits for downloads or S3 while it holds the dispatcher's lease."""
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
    # No thumbnail here: it needs the pixels decoded (a 2000 x 2000 PNG costs more than
    # the rest of the job's orchestration), and the dispatcher's CPU bounds its
    # throughput. The gallery makes it on first view, once.
    assets = services.job_outputs_store(
        job_id=job_id, tenant_id=tenant_id, model=model, outputs=stored, thumbnails=False
    )
    return _Completed(job_id, assets)
