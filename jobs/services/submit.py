"""Submitting a job: its parameters resolved by the catalog's one validator, its input
read and stored, its credits held, and, once committed, handed to what runs it; reruns."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs import catalog
from jobs.engines.local import scenes
from jobs.models import Batch, Job, JobStatus, Preset, ProviderPause
from jobs.services.assets import _assets_discard, _input_stored
from jobs.services.dispatch import dispatcher_ensure, enqueue
from jobs.services.errors import JobError
from jobs.services.inputs import _read_input
from jobs.services.pauses import provider_pause_for, provider_probes_start
from jobs.services.pricing import Quote, job_engine, job_quote
from jobs.services.segmind_keys import segmind_key_for


def _model_for_job(model: str, engine: catalog.Engine) -> catalog.ModelSpec:
    spec = catalog.get_model(model)
    if spec is None:
        raise JobError("validation_error", f"model: unknown model '{model}'.", field="model")
    if not spec.runs_on(engine):
        if engine == "local" and spec.kind == "workflow":
            # Not a gap to close later: it draws its product from a text prompt.
            message = (
                f"model: {spec.title} makes the product itself from your text, which "
                "needs Segmind. This studio runs on the local engine, which works from "
                "your product photo."
            )
        else:
            message = f"model: {spec.title} can't run on the {engine} engine."
        raise JobError("model_unavailable", message, field="model")
    return spec


def job_resolve_params(
    *,
    tenant: Tenant,
    spec: catalog.ModelSpec,
    preset: Preset | None = None,
    overrides: Mapping[str, Any] | None = None,
    image_url: str = "",
    upload_attached: bool = False,
) -> dict[str, Any]:
    """A job's parameters: the catalog's defaults, then the preset's, then the overrides."""
    if preset is not None and preset.tenant_id not in (None, tenant.pk):
        raise JobError("validation_error", "preset: this preset does not exist.", field="preset")
    if preset is not None and preset.model != spec.slug:
        raise JobError(
            "validation_error",
            f"preset: {preset.name} is a preset for {preset.model_title}, not {spec.title}.",
            field="preset",
        )
    given: dict[str, Any] = {**(preset.params if preset else {}), **(overrides or {})}
    if image_url:
        given[spec.image_param] = image_url
    attached = frozenset({spec.image_param}) if upload_attached else frozenset()
    try:
        return catalog.resolve_params(spec, given, attached=attached)
    except catalog.ParamsError as e:
        error = JobError("validation_error", e.message, field=next(iter(e.errors)))
        error.errors = e.errors
        raise error from e


def job_submit(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    image_url: str = "",
    upload: UploadedFile | None = None,
    preset: Preset | None = None,
    params: Mapping[str, Any] | None = None,
    webhook_url: str = "",
    sku: str = "",
) -> Job:
    """Check the parameters and the input, store the input, create the job, queue it.

    The job is `model` + `preset` + `params` (overrides), resolved by the catalog's one
    validator; the task is queued once the transaction commits. A `webhook_url` gets the
    job's job.succeeded / job.failed too; it is checked like a fetched URL.
    """
    engine, _ = job_engine(tenant=tenant)
    spec = _model_for_job(model, engine)
    image_url = image_url.strip()
    sku = sku.strip()
    resolved = job_resolve_params(
        tenant=tenant,
        spec=spec,
        preset=preset,
        overrides=_with_sku(spec, params, sku),
        image_url=image_url,
        upload_attached=upload is not None,
    )
    quote = job_quote(tenant=tenant, spec=spec, params=resolved)
    if webhook_url:
        try:
            webhook_url = account_services.webhook_url_check(url=webhook_url, field="webhook_url")
        except account_services.WebhookError as e:
            raise JobError(e.code, e.message, field="webhook_url") from e
    source = _read_input(image_url=image_url, upload=upload)
    # Segmind's account behind the job's key is out of credit: the job waits from the
    # start, so the shop sees why at once, rather than after the dispatcher's turn.
    pause = (
        provider_pause_for(key=segmind_key_for(tenant=tenant if quote.own_key else None))
        if quote.engine == "segmind"
        else None
    )
    # The photo is written before the transaction: on S3 that is network I/O, which must
    # not hold the database's locks. Refused after all (credits), its files go again.
    photo = _input_stored(tenant=tenant, source=source)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                tenant=tenant,
                created_by=user,
                model=spec.slug,
                engine=quote.engine,
                params=resolved,
                preset=preset,
                source_url=image_url,
                sku=sku,
                webhook_url=webhook_url,
                backdrop=_job_backdrop(
                    spec=spec, engine=quote.engine, preset=preset, params=resolved
                ),
                own_key=quote.own_key,
                price=quote.price,
                status=JobStatus.WAITING_FOR_PROVIDER if pause else JobStatus.QUEUED,
                waiting_since=timezone.now() if pause else None,
                seed_drawn=_seed_drawn(
                    spec, {**(preset.params if preset else {}), **(params or {})}
                ),
            )
            _job_hold(job=job, user=user)
            photo.job = job
            photo.save()
            job.input_asset = photo
            job.save(update_fields=["input_asset"])
            if pause is None:
                transaction.on_commit(lambda: job_enqueue(job_id=job.id, engine=job.engine))
            elif pause.paused_until <= timezone.now():
                # The pause is due for a probe and this may be the only job to send as one.
                transaction.on_commit(provider_probes_start)
    except BaseException:
        _assets_discard([photo])
        raise
    return job


def _with_sku(
    spec: catalog.ModelSpec, params: Mapping[str, Any] | None, sku: str
) -> dict[str, Any]:
    """`params`, with the photo's SKU as the model's own `sku` parameter when it has one
    (Bria's packshot) and none is given: one SKU per product, never a preset's."""
    given = dict(params or {})
    if sku and "sku" in spec.params and "sku" not in given:
        given["sku"] = sku
    return given


def _job_hold(*, job: Job, user: User | None) -> None:
    if job.price == 0:
        return
    try:
        account_services.credits_hold(tenant=job.tenant, job=job, amount=job.price, user=user)
    except account_services.CreditError as e:
        raise JobError(e.code, e.message) from e


def job_enqueue(*, job_id: uuid.UUID, engine: str) -> None:
    """Hand a committed queued job to what runs it: the one dispatcher for Segmind, which
    claims queued jobs itself; for the local engine, one task per job, which runs the
    local job whose turn it is (`job_run_next`), not necessarily this one."""
    if engine == "segmind":
        dispatcher_ensure()
    else:
        enqueue("jobs.tasks.job_run", str(job_id), task_name=f"job-{job_id}", group="jobs")


def _job_backdrop(
    *, spec: catalog.ModelSpec, engine: str, preset: Preset | None, params: Mapping[str, Any]
) -> str:
    if engine != "local" or not spec.composed_locally:
        return ""
    return scenes.backdrop_choose(
        preset_backdrop=preset.backdrop if preset else "", prompt=str(params.get("prompt", ""))
    )


def _seed_drawn(spec: catalog.ModelSpec, given: Mapping[str, Any]) -> bool:
    """Whether resolving `given` draws the model's seed (it has one, and none is given)."""
    return any(
        param.is_seed and catalog.is_random_seed(given.get(name))
        for name, param in spec.params.items()
    )


def _paused_for(*, tenant: Tenant, quote: Quote) -> ProviderPause | None:
    if quote.engine != "segmind":
        return None
    return provider_pause_for(key=segmind_key_for(tenant=tenant if quote.own_key else None))


def _jobs_send(*, jobs: Sequence[Job], pause: ProviderPause | None) -> None:
    """Once committed, hand new jobs to what runs them, as `job_submit` does: a task each
    on the local engine, the dispatcher woken once for Segmind; when their key is paused,
    they wait, and a probe starts if the pause is due for one."""
    if pause is not None:
        if pause.paused_until <= timezone.now():
            transaction.on_commit(provider_probes_start)
        return
    for job in jobs:
        if job.engine != "segmind":
            transaction.on_commit(partial(job_enqueue, job_id=job.id, engine=job.engine))
    if any(job.engine == "segmind" for job in jobs):
        transaction.on_commit(dispatcher_ensure)


def job_rerun(
    *,
    job: Job,
    user: User | None,
    params: Mapping[str, Any] | None = None,
    batch: Batch | None = None,
) -> Job:
    """A new job like `job`: its model, product photo, preset, SKU and parameters, with
    `params` on top. A seed that was drawn is drawn again; one that was given is kept.

    The stored photo is used, not fetched again (nor sent to Segmind as its URL), so the
    rerun works from the very image the job did. The new job holds its own credits, or
    is refused with `insufficient_credits`. Given a `batch` (of the job's workspace), the
    new job joins it, and the batch is followed again until its new job finishes.
    """
    tenant = job.tenant
    if batch is not None and batch.tenant_id != tenant.pk:
        raise JobError("validation_error", "batch: this batch does not exist.", field="batch")
    overrides = dict(params or {})
    source = job.input_asset
    if source is None:
        raise JobError(
            "not_rerunnable", "The job's product photo is no longer kept: create a new job."
        )
    engine, _ = job_engine(tenant=tenant)
    spec = _model_for_job(job.model, engine)
    if spec.image_param in overrides:
        raise JobError(
            "validation_error",
            f"{spec.image_param}: a rerun uses the job's product photo; create a new job "
            "for another photo.",
            field=spec.image_param,
        )
    kept = {
        name: value
        for name, value in job.params.items()
        if name != spec.image_param
        and not (job.seed_drawn and name in spec.params and spec.params[name].is_seed)
    }
    given = {**kept, **overrides}
    resolved = job_resolve_params(tenant=tenant, spec=spec, overrides=given, upload_attached=True)
    quote = job_quote(tenant=tenant, spec=spec, params=resolved)
    pause = _paused_for(tenant=tenant, quote=quote)
    with transaction.atomic():
        rerun = Job.objects.create(
            tenant=tenant,
            created_by=user,
            model=spec.slug,
            engine=quote.engine,
            params=resolved,
            preset=job.preset,
            input_asset=source,
            backdrop=_job_backdrop(
                spec=spec, engine=quote.engine, preset=job.preset, params=resolved
            ),
            own_key=quote.own_key,
            price=quote.price,
            status=JobStatus.WAITING_FOR_PROVIDER if pause else JobStatus.QUEUED,
            waiting_since=timezone.now() if pause else None,
            seed_drawn=_seed_drawn(spec, given),
            sku=job.sku,
            batch=batch,
            rerun_of=job,
        )
        _job_hold(job=rerun, user=user)
        if batch is not None:
            # Unfinished again: its completion is checked (and announced) once more when
            # the new job finishes.
            Batch.objects.filter(pk=batch.pk).update(completed_at=None)
        _jobs_send(jobs=[rerun], pause=pause)
    return rerun


def job_rerun_or_retry(*, job: Job, user: User | None) -> Job:
    """The portal's "run again": `job_rerun`, where a failed job of a batch is retried
    within its batch, so the batch's page follows it (the API's rerun joins no batch)."""
    batch = job.batch if job.batch_id and job.status == JobStatus.FAILED else None
    return job_rerun(job=job, user=user, batch=batch)
