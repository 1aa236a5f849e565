"""Job operations: submit a product photo, run a job, keep its images.

A job is submitted only once its input has been fetched and checked, so bad input never
leaves a job behind. Running a job claims each step with a conditional update: a task
delivered twice, or two workers racing, do the work once.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs import catalog, fetcher, images, local_engine, provider, scenes
from jobs.models import Asset, AssetKind, Job, JobPrice, JobStatus, Preset
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
        self.errors: dict[str, str] = {field: message} if field else {}


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
        upright = images.upright_bytes(data, max_pixels=settings.IMAGE_MAX_PIXELS)
        if upright is not data:
            data, info = (
                upright,
                images.inspect_image(upright, max_pixels=settings.IMAGE_MAX_PIXELS),
            )
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


def job_engine(*, tenant: Tenant) -> tuple[catalog.Engine, bool]:
    """What runs the workspace's jobs, and whether with its own Segmind key: a workspace
    with its own key goes to Segmind even where the platform has none."""
    if tenant.has_own_segmind_key:
        return "segmind", True
    return catalog.current_engine(), False


@dataclass(frozen=True)
class Quote:
    """What a job would cost and where it would run, before it is submitted."""

    engine: catalog.Engine
    own_key: bool
    price: int


def job_quote(*, tenant: Tenant, spec: catalog.ModelSpec, params: Mapping[str, Any]) -> Quote:
    """The price and engine of a job of `spec` with these resolved parameters for
    `tenant`: what the portal and the API show before submitting, and what is held."""
    engine, own_key = job_engine(tenant=tenant)
    price = job_price(model=spec.slug, engine=engine, params=params, own_key=own_key)
    return Quote(engine=engine, own_key=own_key, price=price)


def job_prices(*, tenant: Tenant) -> dict[str, JobPrice | None]:
    """Each model's price row for `tenant`'s engine (None: free, or the own key's fee
    applies), in one query: for the model cards and the API's catalog."""
    engine, own_key = job_engine(tenant=tenant)
    rows = {} if own_key else {p.model: p for p in JobPrice.objects.filter(engine=engine)}
    return {spec.slug: rows.get(spec.slug) for spec in catalog.all_models()}


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
) -> Job:
    """Check the parameters and the input, store the input, create the job, queue it.

    The job is `model` + `preset` + `params` (overrides), resolved by the catalog's one
    validator; the task is queued once the transaction commits.
    """
    engine, _ = job_engine(tenant=tenant)
    spec = _model_for_job(model, engine)
    image_url = image_url.strip()
    resolved = job_resolve_params(
        tenant=tenant,
        spec=spec,
        preset=preset,
        overrides=params,
        image_url=image_url,
        upload_attached=upload is not None,
    )
    quote = job_quote(tenant=tenant, spec=spec, params=resolved)
    source = _read_input(image_url=image_url, upload=upload)
    with transaction.atomic():
        job = Job.objects.create(
            tenant=tenant,
            created_by=user,
            model=spec.slug,
            engine=quote.engine,
            params=resolved,
            preset=preset,
            source_url=image_url,
            backdrop=_job_backdrop(spec=spec, engine=quote.engine, preset=preset, params=resolved),
            own_key=quote.own_key,
            price=quote.price,
        )
        _job_hold(job=job, user=user)
        job.input_asset = asset_create(
            tenant=tenant,
            job=job,
            kind=AssetKind.INPUT,
            data=source.data,
            info=source.info,
            original_name=source.name,
        )
        job.save(update_fields=["input_asset"])
        transaction.on_commit(lambda: job_enqueue(job_id=job.id, engine=job.engine))
    return job


def job_price(*, model: str, engine: str, params: Mapping[str, Any], own_key: bool = False) -> int:
    """A job's price in credits, as operators set it (free when they set none). A job on
    the workspace's own Segmind key pays Segmind itself: only the platform fee here."""
    if own_key:
        return int(settings.SEGMIND_OWN_KEY_FEE)
    price = JobPrice.objects.for_job(model, engine)
    return price.for_params(params) if price is not None else 0


def _job_hold(*, job: Job, user: User | None) -> None:
    if job.price == 0:
        return
    try:
        account_services.credits_hold(tenant=job.tenant, job=job, amount=job.price, user=user)
    except account_services.CreditError as e:
        raise JobError(e.code, e.message) from e


def enqueue(func: str, *args: Any, **options: Any) -> None:
    """Hand a task to django-q2 (call it after commit, so the worker finds the rows)."""
    from django_q.tasks import async_task

    async_task(func, *args, **options)


def job_enqueue(*, job_id: uuid.UUID, engine: str) -> None:
    """Hand a committed queued job to what runs it: a task of its own for the local
    engine; the one dispatcher for Segmind, which claims queued jobs itself."""
    if engine == "segmind":
        provider.dispatcher_ensure()
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


def _flattened(image: Image.Image) -> Image.Image:
    """An image with transparency laid on white: what `force_rmbg` cuts out again."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _render_local(job: Job) -> tuple[bytes, images.ImageInfo]:
    """The job's image from the local engine: a packshot, or a scene composite."""
    assert job.input_asset is not None
    with job.input_asset.file.open("rb") as fh:
        source = images.open_image(fh.read(), max_pixels=settings.IMAGE_MAX_PIXELS)
    params = job.params
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
        result = local_engine.make_packshot(source, background_color=background)
        fmt = "png" if result.mode == "RGBA" else "jpeg"
        data = scenes.encode(result, image_format=fmt, quality=92)
    return data, images.inspect_image(data, max_pixels=settings.IMAGE_MAX_PIXELS)


def job_params_check(*, job: Job) -> None:
    """The task checks the stored parameters with the same validator as the doors.

    Resolved parameters resolve to themselves, so this changes nothing for a job made
    by `job_submit`; a row edited by hand, or a catalog changed since, fails clearly.
    """
    spec = catalog.model(job.model)
    attached = frozenset({spec.image_param}) if not job.source_url else frozenset()
    catalog.resolve_params(spec, job.params, attached=attached)


def job_fail(*, job_id: uuid.UUID | str, code: str, message: str) -> bool:
    """Move a running job to failed with a stable code and a message, and give its held
    credits back; False if it was not running."""
    with transaction.atomic():
        failed = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED,
            error_code=code,
            error_message=message,
            completed_at=timezone.now(),
        )
        # Free jobs hold nothing: skip the ledger on the dispatcher's hot path.
        if failed and Job.objects.filter(pk=job_id, price__gt=0).exists():
            account_services.credits_release(job=Job(pk=job_id))
    return bool(failed)


def job_run(*, job_id: uuid.UUID | str) -> bool:
    """Run a queued job to its end. Returns False when another run already claimed it."""
    # Segmind jobs are claimed by the dispatcher (`provider`), never here.
    claimed = (
        Job.objects.filter(pk=job_id, status=JobStatus.QUEUED)
        .exclude(engine="segmind")
        .update(status=JobStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1)
    )
    if not claimed:
        return False
    job = Job.objects.select_related("input_asset", "tenant").get(pk=job_id)
    try:
        job_params_check(job=job)
    except catalog.ParamsError as e:
        job_fail(job_id=job.pk, code=e.code, message=e.message)
        return True
    try:
        if job.input_asset is None:
            raise local_engine.EngineError("missing_input", "The job's input image is missing.")
        data, info = _render_local(job)
    except (local_engine.EngineError, images.ImageError) as e:
        job_fail(job_id=job.pk, code=e.code, message=e.message)
        return True
    except Exception:
        logger.exception("job %s failed", job.pk)
        job_fail(job_id=job.pk, code="internal_error", message=INTERNAL_ERROR_MESSAGE)
        return True
    job_succeed(job=job, outputs=[(data, info)])
    return True


def job_succeed(*, job: Job, outputs: Sequence[tuple[bytes, images.ImageInfo]]) -> bool:
    """Move a running job to succeeded and store its outputs, once.

    Only the run whose conditional update moved the job stores the outputs, so a task
    delivered twice, or two dispatchers, never store them twice.
    """
    # No savepoint when nested: the Segmind dispatcher stores a batch of results in one
    # transaction, and an error there undoes the batch anyway.
    with transaction.atomic(savepoint=False):
        claimed = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.SUCCEEDED, completed_at=timezone.now()
        )
        if not claimed:
            return False
        if job.price:
            account_services.credits_capture(job=job)
        for index, (data, info) in enumerate(outputs, start=1):
            suffix = f"-{index}" if len(outputs) > 1 else ""
            asset_create(
                tenant=job.tenant,
                job=job,
                kind=AssetKind.OUTPUT,
                data=data,
                info=info,
                original_name=f"{job.model}-{str(job.pk)[:8]}{suffix}.{info.format.lower()}",
            )
    return True


def job_cancel(*, job: Job) -> bool:
    """Cancel a job that has not started, and give its held credits back; False when
    it is already running or done."""
    with transaction.atomic():
        canceled = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELED, completed_at=timezone.now()
        )
        if canceled and job.price:
            account_services.credits_release(job=job)
    return bool(canceled)


def jobs_sweep(*, stale_after: timedelta | None = None, max_attempts: int = 3) -> dict[str, int]:
    """Requeue jobs whose worker died mid-run; fail them after `max_attempts` tries.

    A job still `running` long after the task timeout has no live worker any more: a run
    that were still alive would have been killed by django-q2's timeout.
    """
    stale_after = stale_after or timedelta(seconds=settings.Q_TIMEOUT * 2)
    cutoff = timezone.now() - stale_after
    # Jobs with a Segmind request are the dispatcher's: they are never submitted again.
    stuck = Job.objects.filter(
        status=JobStatus.RUNNING, started_at__lt=cutoff, provider_request_id=""
    )
    # One by one, so each gives its held credits back.
    failed = sum(
        job_fail(
            job_id=job_id,
            code="worker_lost",
            message="The job stopped moving several times and was given up. Try again.",
        )
        for job_id in list(stuck.filter(attempts__gte=max_attempts).values_list("pk", flat=True))
    )
    resend: list[tuple[uuid.UUID, str]] = []
    for job_id, engine in list(stuck.filter(attempts__lt=max_attempts).values_list("pk", "engine")):
        if Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, started_at__lt=cutoff).update(
            status=JobStatus.QUEUED
        ):
            resend.append((job_id, engine))
    requeued = len(resend)
    # A queued job whose task was lost (the Redis broker is at-most-once) is sent again.
    lost = list(
        Job.objects.filter(status=JobStatus.QUEUED, created_at__lt=cutoff).values_list(
            "pk", "engine"
        )
    )
    resend += lost
    for job_id, engine in resend:
        if engine != "segmind":
            transaction.on_commit(partial(job_enqueue, job_id=job_id, engine=engine))
    # Segmind jobs need the one dispatcher, woken once, not once per job.
    if any(engine == "segmind" for _, engine in resend) or (
        Job.objects.segmind_in_flight().exists()
    ):
        transaction.on_commit(provider.dispatcher_ensure)
    return {"failed": failed, "requeued": requeued, "resent": len(lost)}


class PresetError(CodedError):
    """A refused preset; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(
            "validation_error", "; ".join(f"{field}: {rule}" for field, rule in errors.items())
        )


def preset_params_validate(*, spec: catalog.ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """A preset's parameters, checked by the catalog's validator (only those it sets)."""
    if spec.image_param in params:
        raise PresetError({spec.image_param: "the product photo comes with each job"})
    try:
        return catalog.resolve_params(spec, params, partial=True)
    except catalog.ParamsError as e:
        raise PresetError(e.errors) from e


def _preset_slug(tenant: Tenant, name: str, exclude: int | None = None) -> str:
    base = slugify(name)[:70] or "preset"
    slug, n = base, 2
    taken = Preset.objects.for_tenant(tenant)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    while taken.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def preset_create(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    name: str,
    params: Mapping[str, Any],
    description: str = "",
    backdrop: str = "",
) -> Preset:
    """Save a tenant's own preset; its parameters go through the catalog's validator."""
    spec = catalog.get_model(model)
    if spec is None:
        raise PresetError({"model": f"unknown model '{model}'"})
    name = name.strip()
    if not name:
        raise PresetError({"name": "a preset needs a name"})
    cleaned = preset_params_validate(spec=spec, params=params)
    _preset_backdrop_check(backdrop)
    return Preset.objects.create(
        tenant=tenant,
        model=spec.slug,
        slug=_preset_slug(tenant, name),
        name=name[:100],
        description=description.strip()[:300],
        params=cleaned,
        backdrop=backdrop,
        created_by=user,
    )


def preset_update(
    *,
    tenant: Tenant,
    preset: Preset,
    name: str,
    params: Mapping[str, Any],
    description: str = "",
    backdrop: str | None = None,
) -> Preset:
    """Edit one of the tenant's own presets (system presets are copied, not edited);
    ``backdrop`` None keeps the preset's."""
    if preset.tenant_id != tenant.pk:
        raise PresetError({"preset": "only your workspace's own presets can be edited"})
    spec = catalog.get_model(preset.model)
    assert spec is not None
    name = name.strip()
    if not name:
        raise PresetError({"name": "a preset needs a name"})
    preset.params = preset_params_validate(spec=spec, params=params)
    if backdrop is not None:
        _preset_backdrop_check(backdrop)
        preset.backdrop = backdrop
    preset.name = name[:100]
    preset.description = description.strip()[:300]
    if preset.slug != (slug := _preset_slug(tenant, name, exclude=preset.pk)):
        preset.slug = slug
    preset.save()
    return preset


def _preset_backdrop_check(backdrop: str) -> None:
    # "transparent" names the cut-out packshot's look; it is not drawn.
    if backdrop and backdrop != "transparent" and backdrop not in scenes.BACKDROPS:
        names = ", ".join(scenes.BACKDROPS)
        raise PresetError({"backdrop": f"'{backdrop}' is not a backdrop; choose one of {names}"})


def preset_copy(*, tenant: Tenant, user: User | None, preset: Preset) -> Preset:
    """A tenant's own copy of a system preset (or of one of its own), to edit freely."""
    if preset.tenant_id not in (None, tenant.pk):
        raise PresetError({"preset": "not found"})
    name = f"{preset.name} (copy)" if preset.tenant_id else preset.name
    return preset_create(
        tenant=tenant,
        user=user,
        model=preset.model,
        name=name,
        params=preset.params,
        description=preset.description,
        backdrop=preset.backdrop,
    )


def preset_delete(*, tenant: Tenant, preset: Preset) -> None:
    """Delete one of the tenant's own presets; jobs made with it keep their parameters."""
    if preset.tenant_id != tenant.pk:
        raise PresetError({"preset": "only your workspace's own presets can be deleted"})
    preset.delete()


SYSTEM_PRESETS_FILE = Path(__file__).parent / "system_presets.json"


def presets_sync_system(*, path: Path = SYSTEM_PRESETS_FILE) -> int:
    """Make the system presets match `system_presets.json` (run after every migrate).

    Presets are matched by slug: new ones are created, changed ones updated, and ones no
    longer in the file deleted (jobs keep their resolved parameters).
    """
    if not path.exists():
        return 0
    items = json.loads(path.read_text())
    slugs = []
    for item in items:
        spec = catalog.get_model(item["model"])
        if spec is None:
            raise ValueError(f"system preset {item['slug']}: unknown model {item['model']}")
        Preset.objects.update_or_create(
            tenant=None,
            slug=item["slug"],
            defaults={
                "model": spec.slug,
                "name": item["name"],
                "description": item.get("description", ""),
                "backdrop": item.get("backdrop", ""),
                "params": preset_params_validate(spec=spec, params=item.get("params", {})),
            },
        )
        slugs.append(item["slug"])
    Preset.objects.system().exclude(slug__in=slugs).delete()
    return len(slugs)
