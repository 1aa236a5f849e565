"""Job operations: submit a product photo, run a job, keep its images.

A job is submitted only once its input has been fetched and checked, so bad input never
leaves a job behind. Running a job claims each step with a conditional update: a task
delivered twice, or two workers racing, do the work once.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Tenant, User
from jobs import catalog, fetcher, images, local_engine
from jobs.models import Asset, AssetKind, Job, JobStatus
from productstudio.errors import CodedError

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = (
    "Something went wrong while making this image. Try again; if it keeps failing, contact support."
)


class JobError(CodedError):
    """A refused submission: `field` names the input at fault, when there is one."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(code, message)
        self.field = field


@dataclass(frozen=True)
class _Input:
    data: bytes
    name: str
    info: images.ImageInfo


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
        info = images.inspect_image(data, max_pixels=settings.IMAGE_MAX_PIXELS)
    except images.ImageError as e:
        prefix = f"{field}: {name}" if upload is not None else field
        raise JobError(e.code, f"{prefix}: {e.message}", field=field) from e
    return _Input(data=data, name=name[:255], info=info)


def asset_create(
    *,
    tenant: Tenant,
    job: Job | None,
    kind: str,
    data: bytes,
    info: images.ImageInfo,
    original_name: str = "",
) -> Asset:
    """Store image bytes in Django's storage as one of `tenant`'s assets."""
    asset = Asset(
        id=uuid.uuid4(),
        tenant=tenant,
        job=job,
        kind=kind,
        original_name=original_name,
        width=info.width,
        height=info.height,
        format=info.format,
        byte_size=info.byte_size,
        sha256=info.sha256,
        created_at=timezone.now(),
    )
    asset.file.save(f"{asset.id}.{asset.extension}", ContentFile(data), save=False)
    asset.save()
    return asset


def job_submit(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    image_url: str = "",
    upload: UploadedFile | None = None,
) -> Job:
    """Check the input, store it, create the job and queue it once the transaction commits."""
    spec = catalog.get_model(model)
    if spec is None:
        raise JobError("validation_error", f"model: unknown model '{model}'.", field="model")
    engine = catalog.current_engine()
    if not spec.runs_on(engine):
        where = "the local engine" if engine == "local" else "Segmind in this version"
        raise JobError(
            "model_unavailable",
            f"model: {spec.title} can't run on {where} yet.",
            field="model",
        )
    image_url = image_url.strip()
    source = _read_input(image_url=image_url, upload=upload)
    params: dict[str, Any] = spec.defaults()
    if image_url:
        params[spec.image_param] = image_url
    with transaction.atomic():
        job = Job.objects.create(
            tenant=tenant,
            created_by=user,
            model=spec.slug,
            engine=engine,
            params=params,
            source_url=image_url,
        )
        job.input_asset = asset_create(
            tenant=tenant,
            job=job,
            kind=AssetKind.INPUT,
            data=source.data,
            info=source.info,
            original_name=source.name,
        )
        job.save(update_fields=["input_asset"])
        transaction.on_commit(lambda: job_enqueue(job_id=job.id))
    return job


def job_enqueue(*, job_id: uuid.UUID) -> None:
    """Hand the job to django-q2. Called after commit, so the worker finds the row."""
    from django_q.tasks import async_task

    async_task("jobs.tasks.job_run", str(job_id), task_name=f"job-{job_id}", group="jobs")


def _render_local(job: Job) -> tuple[bytes, images.ImageInfo]:
    assert job.input_asset is not None
    with job.input_asset.file.open("rb") as fh:
        source = images.open_image(fh.read(), max_pixels=settings.IMAGE_MAX_PIXELS)
    background = str(job.params.get("background_color") or "#FFFFFF")
    result = local_engine.make_packshot(source, background_color=background)
    out = io.BytesIO()
    if result.mode == "RGBA":
        result.save(out, format="PNG", optimize=True)
    else:
        result.convert("RGB").save(out, format="JPEG", quality=92, optimize=True)
    data = out.getvalue()
    return data, images.inspect_image(data, max_pixels=settings.IMAGE_MAX_PIXELS)


def _fail(job: Job, code: str, message: str) -> None:
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED,
        error_code=code,
        error_message=message,
        completed_at=timezone.now(),
    )


def job_run(*, job_id: uuid.UUID | str) -> bool:
    """Run a queued job to its end. Returns False when another run already claimed it."""
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    job = Job.objects.select_related("input_asset", "tenant").get(pk=job_id)
    try:
        if job.input_asset is None:
            raise local_engine.EngineError("missing_input", "The job's input image is missing.")
        data, info = _render_local(job)
    except (local_engine.EngineError, images.ImageError) as e:
        _fail(job, e.code, e.message)
        return True
    except Exception:
        logger.exception("job %s failed", job.pk)
        _fail(job, "internal_error", INTERNAL_ERROR_MESSAGE)
        return True
    with transaction.atomic():
        finished = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.SUCCEEDED, completed_at=timezone.now()
        )
        if finished:
            # Only the run that moved the job to succeeded stores the output.
            asset_create(
                tenant=job.tenant,
                job=job,
                kind=AssetKind.OUTPUT,
                data=data,
                info=info,
                original_name=f"{job.model}-{str(job.pk)[:8]}.{info.format.lower()}",
            )
    return True


def job_cancel(*, job: Job) -> bool:
    """Cancel a job that has not started; False when it is already running or done."""
    return bool(
        Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELED, completed_at=timezone.now()
        )
    )


def jobs_sweep(*, stale_after: timedelta | None = None, max_attempts: int = 3) -> dict[str, int]:
    """Requeue jobs whose worker died mid-run; fail them after `max_attempts` tries.

    A job still `running` long after the task timeout has no live worker any more: a run
    that were still alive would have been killed by django-q2's timeout.
    """
    stale_after = stale_after or timedelta(seconds=settings.Q_TIMEOUT * 2)
    cutoff = timezone.now() - stale_after
    stuck = Job.objects.filter(status=JobStatus.RUNNING, started_at__lt=cutoff)
    failed = stuck.filter(attempts__gte=max_attempts).update(
        status=JobStatus.FAILED,
        error_code="worker_lost",
        error_message="The job stopped moving several times and was given up. Try again.",
        completed_at=timezone.now(),
    )
    requeued_ids: Sequence[uuid.UUID] = list(
        stuck.filter(attempts__lt=max_attempts).values_list("pk", flat=True)
    )
    requeued = 0
    for job_id in requeued_ids:
        if Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, started_at__lt=cutoff).update(
            status=JobStatus.QUEUED
        ):
            requeued += 1
            transaction.on_commit(partial(job_enqueue, job_id=job_id))
    # A queued job whose task was lost (the Redis broker is at-most-once) is sent again.
    lost = list(
        Job.objects.filter(status=JobStatus.QUEUED, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for job_id in lost:
        transaction.on_commit(partial(job_enqueue, job_id=job_id))
    return {"failed": failed, "requeued": requeued, "resent": len(lost)}
