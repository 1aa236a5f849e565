"""Running jobs on Segmind without holding a worker while Segmind works.

A job's task submits it and commits Segmind's request id before anything waits on it.
One poller task then polls every request in flight from a single event loop (one
`httpx.AsyncClient`, bounded concurrency), stores the outputs as soon as a request
completes, and enqueues itself again while requests remain. A lease row keeps it to one
poller at a time; a poller delivered twice finds the lease taken and returns.

Each step is claimed with a conditional update, so a task run twice, or a poller that
overlaps a dying one, does the work once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

# `services` imports this module; its functions are looked up at call time.
from jobs import catalog, fetcher, images, segmind, services
from jobs.models import Job, JobStatus, Lease

logger = logging.getLogger(__name__)

POLLER_LEASE = "segmind-poller"


def _client() -> segmind.SegmindClient:
    return segmind.SegmindClient(
        api_key=settings.SEGMIND_API_KEY,
        base_url=settings.SEGMIND_API_BASE,
        max_connections=settings.SEGMIND_MAX_CONNECTIONS,
    )


def _payload(job: Job, spec: catalog.ModelSpec) -> dict[str, Any]:
    """The resolved parameters, with the product photo as a URL or as base64."""
    payload = dict(job.params)
    if job.source_url and settings.SEGMIND_PASS_URLS:
        payload[spec.image_param] = job.source_url
    elif job.input_asset is not None:
        with job.input_asset.file.open("rb") as fh:
            payload[spec.image_param] = base64.b64encode(fh.read()).decode()
    return payload


def provider_submit(*, job: Job) -> None:
    """Submit a claimed (running) job to Segmind and record the request; then poll.

    A job that already has a request id is never submitted again.
    """
    if job.provider_request_id:
        poller_ensure()
        return
    spec = catalog.model(job.model)

    async def submit() -> segmind.Submission:
        async with _client() as client:
            return await segmind.call_with_retries(
                lambda: client.submit(spec.slug, spec.kind, _payload(job, spec)),
                attempts=settings.SEGMIND_SUBMIT_ATTEMPTS,
            )

    try:
        submission = asyncio.run(submit())
    except segmind.SegmindError as e:
        services.job_fail(job_id=job.pk, code=e.code, message=e.message)
        return
    now = timezone.now()
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, provider_request_id="").update(
        provider_request_id=submission.request_id,
        provider_request=submission.to_dict(),
        submitted_at=now,
        next_poll_at=now + timedelta(seconds=settings.SEGMIND_FIRST_POLL_SECONDS),
    )
    poller_ensure()


def poller_ensure() -> None:
    """Make sure a poller will run: enqueue one unless a live one holds the lease."""
    held = Lease.objects.filter(name=POLLER_LEASE, leased_until__gt=timezone.now()).exists()
    if not held:
        transaction.on_commit(lambda: services.enqueue("jobs.tasks.segmind_poll"))


def _take_lease(holder: str, seconds: float) -> bool:
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    Lease.objects.get_or_create(name=POLLER_LEASE)
    return bool(
        Lease.objects.filter(name=POLLER_LEASE)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now) | Q(holder=holder))
        .update(holder=holder, leased_until=until)
    )


def _release_lease(holder: str) -> None:
    Lease.objects.filter(name=POLLER_LEASE, holder=holder).update(leased_until=None, holder="")


def _in_flight() -> Any:
    return Job.objects.filter(status=JobStatus.RUNNING).exclude(provider_request_id="")


def segmind_poll(*, budget_seconds: float | None = None) -> dict[str, int]:
    """Poll every Segmind request in flight until none is left or the budget is spent."""
    budget = budget_seconds if budget_seconds is not None else settings.SEGMIND_POLLER_SECONDS
    holder = secrets.token_hex(8)
    # The lease outlives the budget by the task timeout's margin, so a poller that is
    # still finishing its last cycle is never joined by a second one.
    if not _take_lease(holder, budget + 30):
        return {"polled": 0, "finished": 0, "skipped": 1}
    counts = {"polled": 0, "finished": 0, "skipped": 0}
    deadline = time.monotonic() + budget
    loop = asyncio.new_event_loop()
    client = _client()
    try:
        while time.monotonic() < deadline:
            due = list(
                _in_flight()
                # A request without a poll time (a row mended by hand) is due at once.
                .filter(Q(next_poll_at__lte=timezone.now()) | Q(next_poll_at__isnull=True))
                .select_related("tenant")
                .order_by("next_poll_at")[: settings.SEGMIND_POLL_BATCH]
            )
            if not due:
                if not _in_flight().exists():
                    break
                time.sleep(settings.SEGMIND_POLL_TICK_SECONDS)
                continue
            polls = loop.run_until_complete(_poll_all(client, due))
            counts["polled"] += len(due)
            counts["finished"] += _apply(due, polls)
        loop.run_until_complete(client.aclose())
    finally:
        loop.close()
        _release_lease(holder)
    if _in_flight().exists():
        transaction.on_commit(lambda: services.enqueue("jobs.tasks.segmind_poll"))
    return counts


async def _poll_all(
    client: segmind.SegmindClient, jobs: Sequence[Job]
) -> list[segmind.Poll | segmind.SegmindError]:
    limit = asyncio.Semaphore(settings.SEGMIND_MAX_CONNECTIONS)

    async def one(job: Job) -> segmind.Poll | segmind.SegmindError:
        sub = segmind.Submission.from_dict(job.provider_request or {})
        async with limit:
            try:
                poll = await client.status(sub)
                if poll.state == "COMPLETED" and not poll.outputs and sub.kind == "v2":
                    poll = await client.result(sub)
                return poll
            except segmind.SegmindError as e:
                return e

    return await asyncio.gather(*(one(job) for job in jobs))


def _apply(jobs: Sequence[Job], polls: Sequence[segmind.Poll | segmind.SegmindError]) -> int:
    finished = 0
    now = timezone.now()
    interval = timedelta(seconds=settings.SEGMIND_POLL_INTERVAL_SECONDS)
    for job, poll in zip(jobs, polls, strict=True):
        if isinstance(poll, segmind.SegmindError):
            # A garbled status answer is asked again: the request itself is still fine.
            transient = poll.retryable or poll.code == "provider_bad_response"
            if transient and job.poll_errors + 1 < settings.SEGMIND_POLL_MAX_ERRORS:
                delay = segmind.backoff_delay(
                    job.poll_errors,
                    retry_after=poll.retry_after,
                    base_delay=interval.total_seconds(),
                )
                Job.objects.filter(pk=job.pk).update(
                    poll_errors=job.poll_errors + 1, next_poll_at=now + timedelta(seconds=delay)
                )
            else:
                finished += services.job_fail(job_id=job.pk, code=poll.code, message=poll.message)
            continue
        if (failure := poll.failure()) is not None:
            finished += services.job_fail(job_id=job.pk, code=failure.code, message=failure.message)
        elif poll.state == "COMPLETED":
            finished += _complete(job, poll)
        else:
            Job.objects.filter(pk=job.pk).update(next_poll_at=now + interval, poll_errors=0)
    return finished


def _complete(job: Job, poll: segmind.Poll) -> int:
    """Download the outputs into the gallery and mark the job succeeded, once."""
    if not poll.outputs:
        return services.job_fail(
            job_id=job.pk,
            code="provider_bad_response",
            message="Segmind finished but sent no image.",
        )
    stored: list[tuple[bytes, images.ImageInfo]] = []
    try:
        for output in poll.outputs:
            data = output.data if output.data is not None else _download(output.url or "")
            stored.append((data, images.inspect_image(data, max_pixels=settings.IMAGE_MAX_PIXELS)))
    except (fetcher.FetchError, images.ImageError) as e:
        return services.job_fail(
            job_id=job.pk,
            code="output_unavailable",
            message=f"The result could not be saved: {e.message}",
        )
    return int(services.job_succeed(job=job, outputs=stored))


def _download(url: str) -> bytes:
    return fetcher.fetch_url_from_settings(url).content
