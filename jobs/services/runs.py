"""Running jobs and recording their ends: local jobs claimed in turn and rendered with the
local engine; any job moved to succeeded, failed or canceled once (each a conditional
update), its credits captured or given back."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image

from accounts import services as account_services
from accounts.models import WebhookEndpoint, WebhookEventType
from jobs import catalog, images
from jobs.engines import local as local_engine
from jobs.engines.local import scenes
from jobs.models import Asset, AssetKind, Job, JobStatus
from jobs.services.assets import _asset_stored, _assets_discard
from jobs.services.batch_completion import batch_complete_check
from jobs.services.errors import INTERNAL_ERROR_MESSAGE
from jobs.services.events import _job_event_emit
from jobs.services.inputs import _image_limits
from jobs.services.tallies import job_tally_add
from jobs.services.thumbnails import _input_thumbnail_from
from productstudio.lib.context import job_context

logger = logging.getLogger(__name__)


def _flattened(image: Image.Image) -> Image.Image:
    """An image with transparency laid on white: what `force_rmbg` cuts out again."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _render_local(job: Job) -> tuple[bytes, images.ImageInfo, str]:
    """The job's image from the local engine, a packshot or a scene composite, and
    what the shop should know about it (a packshot enlarged so much it may look soft;
    else blank)."""
    assert job.input_asset is not None
    with job.input_asset.file.open("rb") as fh:
        # Decoded no larger than the engine needs (its packshots are 2000 px): a large
        # photo is never held whole beyond the reduction.
        source = images.open_image(
            fh.read(), max_side=settings.IMAGE_WORK_MAX_SIDE, **_image_limits()
        )
    if not job.input_asset.thumbnail:
        _input_thumbnail_from(asset=job.input_asset, image=source)
    params = job.params
    notice = ""
    if job.model in catalog.LOCAL_SCENE_MODELS:
        request = scenes.scene_request(
            model=job.model,
            params=params,
            backdrop=job.backdrop or scenes.DEFAULT_BACKDROP,
            source=source.size,
        )
        scene = scenes.compose_scene(source, request)
        quality = int(params.get("image_quality", params.get("quality", 90)))
        data = scenes.encode(
            scene, image_format=str(params.get("image_format", "jpeg")), quality=quality
        )
    else:
        # Bria's `force_rmbg`: a photo is always cut out; an image already cut out keeps
        # its own transparency unless the job asks for the background to be removed again.
        if params.get("force_rmbg"):
            source = _flattened(source)
        background = str(params.get("background_color") or "#FFFFFF")
        packshot = local_engine.render_packshot(source, background_color=background)
        data = local_engine.encode_packshot(packshot.image, quality=92)
        # A photo larger than the engine's working size was reduced: the notice then
        # speaks of the product's share of the photo, not of its pixels.
        original = max(job.input_asset.width, job.input_asset.height)
        reduced_to = max(source.size) if original > max(source.size) else None
        notice = packshot.soft_notice(reduced_to=reduced_to)
    return data, images.inspect_image(data, max_pixels=settings.IMAGE_MAX_PIXELS), notice


def job_params_check(*, job: Job) -> None:
    """The task checks the stored parameters with the same validator as the doors.

    Resolved parameters resolve to themselves, so this changes nothing for a job made
    by `job_submit`; a row edited by hand, or a catalog changed since, fails clearly.
    """
    spec = catalog.model(job.model)
    attached = frozenset({spec.image_param}) if not job.source_url else frozenset()
    catalog.resolve_params(spec, job.params, attached=attached)


def job_fail(
    *,
    job_id: uuid.UUID | str,
    code: str,
    message: str,
    from_status: str = JobStatus.RUNNING,
) -> bool:
    """Move a running job (or one in `from_status`) to failed with a stable code and a
    message, and give its held credits back; False if it was not in that status."""
    with transaction.atomic():
        failed = Job.objects.filter(pk=job_id, status=from_status).update(
            status=JobStatus.FAILED,
            error_code=code,
            error_message=message,
            completed_at=timezone.now(),
        )
        if failed:
            price, batch_id, engine = Job.objects.values_list("price", "batch_id", "engine").get(
                pk=job_id
            )
            job_tally_add(engine=engine, status=JobStatus.FAILED)
            # Free jobs hold nothing: skip the ledger on the dispatcher's hot path.
            if price:
                account_services.credits_release(job=Job(pk=job_id))
            if batch_id is not None:
                _batch_check_after_commit(batch_id)
            job = Job.objects.select_related("tenant").get(pk=job_id)
            _job_event_emit(job=job, type=WebhookEventType.JOB_FAILED)
    return bool(failed)


def _local_job_claim(job_id: uuid.UUID | str) -> bool:
    """Move one queued local job to running; of two runs that try, one wins."""
    # Segmind jobs are claimed by the dispatcher (jobs.dispatcher), never here.
    return bool(
        Job.objects.local_queued()
        .filter(pk=job_id)
        .update(status=JobStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1)
    )


# Jobs looked at per query when claiming the next in turn: others' tasks may claim the
# first ones meanwhile, and the next candidates are tried before asking again.
CLAIM_CANDIDATES = 8


def local_job_claim_next(*, named: uuid.UUID | str | None = None) -> uuid.UUID | None:
    """Claim the queued local job whose turn it is (see `JobQuerySet.local_in_turn`):
    its id, or None when no local job is queued.

    `named` is the job the task was queued for: when its workspace has the turn, it is
    run rather than that workspace's oldest (tasks come oldest first anyway), so a job
    runs on its own task whenever fairness allows.
    """
    for _ in range(10):
        candidates = list(
            Job.objects.local_in_turn().values_list("pk", "tenant_id")[:CLAIM_CANDIDATES]
        )
        exhausted = len(candidates) < CLAIM_CANDIDATES
        if named is not None and candidates:
            turn = candidates[0][1]
            if Job.objects.local_queued().filter(pk=named, tenant_id=turn).exists():
                candidates.insert(0, (uuid.UUID(str(named)), turn))
        for job_id, _tenant_id in candidates:
            if _local_job_claim(job_id):
                return job_id
        if exhausted:
            return None
    # Many tasks claiming at once took every candidate ten times over: each of them ran
    # a job, and this task's job (if any is left) is run by a later task or the sweeper.
    return None


def job_run_next(*, named: uuid.UUID | str | None = None) -> bool:
    """Run the queued local job whose turn it is to its end; False when none is queued.

    Each local job has one task, but a task runs whichever job's turn it is (its own,
    `named`, when its workspace has the turn), so workspaces take turns on the shared
    workers instead of first come, first served: a shop's single job starts after about
    one job per busy workspace, not behind another shop's whole batch. Safe to run twice
    and concurrently: each claim is a conditional update, and a task that finds nothing
    queued does nothing.
    """
    job_id = local_job_claim_next(named=named)
    if job_id is None:
        return False
    _job_execute(job_id)
    return True


def job_run(*, job_id: uuid.UUID | str) -> bool:
    """Run this queued local job to its end, out of turn. Returns False when another
    run already claimed it."""
    if not _local_job_claim(job_id):
        return False
    _job_execute(job_id)
    return True


def _job_execute(job_id: uuid.UUID | str) -> None:
    """Render a claimed (running) local job and record its outcome."""
    job = Job.objects.select_related("input_asset", "tenant").get(pk=job_id)
    # Log lines of the run carry the job's and its workspace's ids.
    with job_context(job.pk, job.tenant_id):
        _job_render(job)


def _job_render(job: Job) -> None:
    try:
        job_params_check(job=job)
    except catalog.ParamsError as e:
        job_fail(job_id=job.pk, code=e.code, message=e.message)
        return
    try:
        if job.input_asset is None:
            raise local_engine.EngineError("missing_input", "The job's input image is missing.")
        data, info, notice = _render_local(job)
    except (local_engine.EngineError, images.ImageError) as e:
        job_fail(job_id=job.pk, code=e.code, message=e.message)
        return
    except Exception:
        logger.exception("job %s failed", job.pk)
        job_fail(job_id=job.pk, code="internal_error", message=INTERNAL_ERROR_MESSAGE)
        return
    job_succeed(job=job, outputs=[(data, info)], notice=notice)


def job_outputs_store(
    *,
    job_id: uuid.UUID,
    tenant_id: int,
    model: str,
    outputs: Sequence[tuple[bytes, images.ImageInfo]],
    thumbnails: bool = True,
) -> list[Asset]:
    """Write job `job_id`'s result images (and their thumbnails unless `thumbnails` is
    False) to storage, before any transaction: on S3 that is network I/O. No query is
    made (the Segmind dispatcher calls it on its I/O threads). The rows, unsaved, are
    returned for `job_succeed`, which deletes the files again if the job has moved on
    meanwhile; on an error, the files written so far are deleted before it is raised."""
    stored: list[Asset] = []
    try:
        for index, (data, info) in enumerate(outputs, start=1):
            suffix = f"-{index}" if len(outputs) > 1 else ""
            stored.append(
                _asset_stored(
                    tenant=tenant_id,
                    job=job_id,
                    kind=AssetKind.OUTPUT,
                    data=data,
                    info=info,
                    original_name=f"{model}-{str(job_id)[:8]}{suffix}.{info.format.lower()}",
                    thumbnail=thumbnails,
                )
            )
    except BaseException:
        _assets_discard(stored)
        raise
    return stored


def job_succeed(
    *,
    job: Job,
    outputs: Sequence[tuple[bytes, images.ImageInfo]] = (),
    stored: Sequence[Asset] | None = None,
    listening: Sequence[WebhookEndpoint] | None = None,
    thumbnails: bool = True,
    notice: str = "",
) -> bool:
    """Move a running job to succeeded and record its outputs, once: `stored`, written
    already by `job_outputs_store` (the Segmind dispatcher's I/O threads do, outside its
    transaction), else `outputs`, written here first with their thumbnails unless
    `thumbnails` is False (see `asset_create`).

    `listening`: the workspace's enabled webhook endpoints, when the caller loaded them
    for many jobs at once; else they are looked up here. `notice`: what the shop should
    know about the result (stored on the job, shown on its page and in the API).

    Only the run whose conditional update moved the job records the outputs, so a task
    delivered twice, or two dispatchers, never store them twice; a run that lost deletes
    the files it wrote once its transaction is over.
    """
    assets = (
        list(stored)
        if stored is not None
        else job_outputs_store(
            job_id=job.pk,
            tenant_id=job.tenant_id,
            model=job.model,
            outputs=outputs,
            thumbnails=thumbnails,
        )
    )
    try:
        # No savepoint when nested: the Segmind dispatcher stores a batch of results in
        # one transaction, and an error there undoes the batch anyway.
        with transaction.atomic(savepoint=False):
            completed_at = timezone.now()
            claimed = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.SUCCEEDED, completed_at=completed_at, notice=notice
            )
            if not claimed:
                transaction.on_commit(partial(_assets_discard, assets), robust=True)
                return False
            job_tally_add(
                engine=job.engine,
                status=JobStatus.SUCCEEDED,
                took=completed_at - job.created_at,
            )
            if job.price:
                account_services.credits_capture(job=job)
            if job.batch_id is not None:
                _batch_check_after_commit(job.batch_id)
            for asset in assets:
                asset.save()
            _job_event_emit(job=job, type=WebhookEventType.JOB_SUCCEEDED, listening=listening)
    except BaseException:
        # Rolled back: the files have no rows. Inside a caller's transaction, deleting
        # them would be network I/O there; the caller's batch is redone anyway.
        if not transaction.get_connection().in_atomic_block:
            _assets_discard(assets)
        raise
    return True


def job_cancel(*, job: Job) -> bool:
    """Cancel a job that has not started (queued, or waiting for Segmind), and give its
    held credits back; False when it is already running or done."""
    with transaction.atomic():
        canceled = Job.objects.filter(
            pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.WAITING_FOR_PROVIDER]
        ).update(status=JobStatus.CANCELED, completed_at=timezone.now())
        if canceled:
            job_tally_add(engine=job.engine, status=JobStatus.CANCELED)
        if canceled and job.price:
            account_services.credits_release(job=job)
        if canceled and job.batch_id is not None:
            _batch_check_after_commit(job.batch_id)
    return bool(canceled)


def _batch_check_after_commit(batch_id: uuid.UUID) -> None:
    # After the commit, not inside it: two jobs of a batch finishing in two transactions
    # at once would each see the other unfinished. After both commits, the later check
    # sees both finished. Robust: a failed check must not fail the job's caller (the
    # sweeper completes the batch later).
    transaction.on_commit(partial(batch_complete_check, batch_id=batch_id), robust=True)
