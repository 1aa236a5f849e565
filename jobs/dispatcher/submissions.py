"""A Segmind request's own steps: the client for a key, the payload sent, when to poll
again, and its request id committed on the job."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone

from jobs import catalog
from jobs.engines.segmind import client as segmind
from jobs.models import Job, JobStatus

# Long requests are polled less often: every tenth of the time already waited, between
# SEGMIND_POLL_INTERVAL_SECONDS and SEGMIND_POLL_MAX_INTERVAL_SECONDS.
POLL_BACKOFF_RATIO = 0.1


def _client(api_key: str | None = None) -> segmind.SegmindClient:
    """A client for `api_key` (by default the platform's)."""
    return segmind.SegmindClient(
        api_key=settings.SEGMIND_API_KEY if api_key is None else api_key,
        base_url=settings.SEGMIND_API_BASE,
        max_connections=settings.SEGMIND_MAX_CONNECTIONS,
    )


def segmind_payload(*, job: Job, spec: catalog.ModelSpec) -> dict[str, Any]:
    """The resolved parameters, with the product photo as a URL or as base64."""
    payload = dict(job.params)
    if job.source_url and settings.SEGMIND_PASS_URLS:
        payload[spec.image_param] = job.source_url
    elif job.input_asset is not None:
        with job.input_asset.file.open("rb") as fh:
            payload[spec.image_param] = base64.b64encode(fh.read()).decode()
    else:
        raise segmind.SegmindError("missing_input", "The job's input image is missing.")
    return payload


def poll_interval(waited: float, expected: float | None = None) -> float:
    """Seconds until the next status poll of a request submitted `waited` seconds ago.

    `expected` is how long this model's requests have lately taken: no request is polled
    again until nine tenths of it have passed, so a 16 s model is not asked 15 times.
    """
    delay = min(
        settings.SEGMIND_POLL_MAX_INTERVAL_SECONDS,
        max(settings.SEGMIND_POLL_INTERVAL_SECONDS, waited * POLL_BACKOFF_RATIO),
    )
    if expected:
        if waited < expected * 0.9:
            delay = max(delay, expected * 0.9 - waited)
        else:
            # Due about now: look twice as often until it is done.
            delay = max(settings.SEGMIND_POLL_INTERVAL_SECONDS, delay) / 2
    return delay


def request_store(*, job_id: uuid.UUID, submission: segmind.Submission, key_id: str = "") -> bool:
    """Commit Segmind's request id on a claimed job; False if the job moved on meanwhile.
    `key_id` names the key it was sent with (for operators; polls resolve the key again)."""
    stored: dict[str, Any] = submission.to_dict()
    if key_id:
        stored["key_id"] = key_id
    return bool(
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, provider_request_id="").update(
            provider_request_id=submission.request_id,
            provider_request=stored,
            submitted_at=timezone.now(),
        )
    )
