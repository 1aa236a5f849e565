"""Job operations: submit a product photo, run a job, keep its images.

A job is submitted only once its input has been fetched and checked, so bad input never
leaves a job behind. Running a job claims each step with a conditional update: a task
delivered twice, or two workers racing, do the work once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.text import slugify
from PIL import Image

from accounts import services as account_services
from accounts.models import (
    Tenant,
    User,
    WebhookEndpoint,
    WebhookEventType,
)
from jobs import catalog, images
from jobs.engines import local as local_engine
from jobs.engines.local import scenes
from jobs.engines.segmind import dispatcher as provider
from jobs.engines.segmind import ratelimit
from jobs.models import (
    TERMINAL_STATUSES,
    Asset,
    AssetKind,
    Batch,
    Job,
    JobPrice,
    JobStatus,
    Preset,
    ProviderIncident,
    ProviderPause,
    SegmindKeyBudget,
    provider_gave_up_message,
    provider_out_of_credit_message,
    provider_rate_gave_up_message,
    provider_waiting_message,
)
from productstudio.lib import fetcher
from productstudio.lib.errors import CodedError

logger = logging.getLogger(__name__)

# A gallery's ZIP stays in memory up to this size, then goes to a temporary file.
GALLERY_ZIP_SPOOL_BYTES = 32 * 1024 * 1024

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
        info = check(data)
        upright = images.upright_bytes(data, **_image_limits())
        if upright is not data:
            data, info = upright, check(upright)
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
    thumbnail: bool = True,
) -> Asset:
    """Store image bytes in Django's storage as one of `tenant`'s assets, with its
    thumbnail unless `thumbnail` is False (then the gallery makes it on first view)."""
    asset = _asset_stored(
        tenant=tenant,
        job=job,
        kind=kind,
        data=data,
        info=info,
        original_name=original_name,
        thumbnail=thumbnail,
    )
    asset.save()
    return asset


def _asset_stored(
    *,
    tenant: Tenant,
    job: Job | None,
    kind: str,
    data: bytes,
    info: images.ImageInfo,
    original_name: str = "",
    thumbnail: bool = True,
) -> Asset:
    # The files are written, the row is left to the caller to save.
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
    if thumbnail:
        _asset_thumbnail_write(asset=asset, data=data)
    return asset


def _asset_thumbnail_write(*, asset: Asset, data: bytes) -> bool:
    """Write the asset's thumbnail from its bytes (the row is left to the caller to save);
    False when the image cannot be read: the gallery then shows no thumbnail rather than
    the job losing its image."""
    try:
        thumb = images.thumbnail_jpeg(data, **_image_limits())
    except images.ImageError:
        logger.warning("asset %s: no thumbnail, its image cannot be read", asset.pk)
        return False
    asset.thumbnail.save(f"{asset.id}.thumb.jpg", ContentFile(thumb), save=False)
    return True


def asset_thumbnail_ensure(*, asset: Asset) -> bool:
    """Give an asset stored without a thumbnail (a Segmind result, or one stored before
    thumbnails existed) its thumbnail, once: True when one was made now. Safe to run
    twice and concurrently: the row is only updated while it has none, and a loser's file
    is deleted."""
    if asset.thumbnail:
        return False
    with asset.file.open("rb") as fh:
        data = fh.read()
    if not _asset_thumbnail_write(asset=asset, data=data):
        return False
    return _asset_thumbnail_claim(asset=asset)


def _asset_thumbnail_claim(*, asset: Asset) -> bool:
    """Record the thumbnail file just written for `asset`, unless another run recorded
    one first (then this one's file is deleted); True when this one was recorded."""
    won = Asset.objects.filter(pk=asset.pk, thumbnail="").update(thumbnail=asset.thumbnail.name)
    if not won:
        mine = asset.thumbnail.name
        asset.refresh_from_db(fields=["thumbnail"])
        # A storage that overwrites (S3) gave both the same name: that file is the winner's.
        if mine != asset.thumbnail.name:
            asset.thumbnail.storage.delete(mine)
    return bool(won)


def assets_thumbnails_backfill(*, batch_size: int = 200) -> int:
    """Thumbnails for every asset that has none; returns how many were made."""
    made = 0
    last = None
    while True:
        page = Asset.objects.filter(thumbnail="").order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        assets = list(page[:batch_size])
        if not assets:
            return made
        for asset in assets:
            try:
                made += asset_thumbnail_ensure(asset=asset)
            except FileNotFoundError:
                logger.warning("asset %s: its file is missing, no thumbnail", asset.pk)
        last = assets[-1].pk


def asset_favourite_set(*, asset: Asset, favourite: bool) -> None:
    """Mark or unmark an asset as one of the workspace's favourites."""
    Asset.objects.filter(pk=asset.pk).update(favourite=favourite)
    asset.favourite = favourite


def _asset_files_delete(names: Iterable[tuple[Any, str]]) -> None:
    for storage, name in names:
        try:
            storage.delete(name)
        except OSError:
            # A file already gone is what we wanted; others are kept for an operator.
            logger.warning("could not delete stored file %s", name, exc_info=True)


def assets_delete(*, tenant: Tenant, assets: Iterable[Asset]) -> int:
    """Delete `tenant`'s outputs among `assets` and, once that is committed, their files
    and thumbnails; returns how many were deleted.

    Only results are deleted: the photos jobs were made from stay, as reruns and the
    before/after comparison need them (and a batch's jobs may share one).
    """
    ids = [asset.pk for asset in assets]
    with transaction.atomic():
        doomed = list(
            Asset.objects.for_tenant(tenant)
            .outputs()
            .filter(pk__in=ids)
            .select_for_update()
            .order_by("pk")
        )
        files = [
            (field.storage, field.name)
            for asset in doomed
            for field in (asset.file, asset.thumbnail)
            if field
        ]
        Asset.objects.filter(pk__in=[a.pk for a in doomed]).delete()
        transaction.on_commit(partial(_asset_files_delete, files))
    return len(doomed)


def _zip_member_name(asset: Asset, taken: set[str]) -> str:
    job = asset.job
    base = slugify(job.sku if job and job.sku else (job.model if job else "")) or "image"
    name = f"{base}-{asset.pk.hex[:8]}.{asset.extension}"
    number = 2
    while name in taken:
        name = f"{base}-{asset.pk.hex[:8]}-{number}.{asset.extension}"
        number += 1
    taken.add(name)
    return name


def assets_zip(*, tenant: Tenant, assets: Iterable[Asset]) -> IO[bytes]:
    """A ZIP of `tenant`'s `assets` (full images, each named `<sku-or-model>-<short
    id>.<ext>`, names unique), rewound and ready to send. Built in a spooled temporary
    file: in memory while small, on disk beyond GALLERY_ZIP_SPOOL_BYTES."""
    # Handed over open: the response that sends it closes it.
    spool = tempfile.SpooledTemporaryFile(max_size=GALLERY_ZIP_SPOOL_BYTES)  # noqa: SIM115
    taken: set[str] = set()
    # Stored, not deflated: JPEG, PNG and WebP are compressed already.
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
        for asset in assets:
            if asset.tenant_id != tenant.pk:
                continue
            with (
                asset.file.open("rb") as source,
                archive.open(_zip_member_name(asset, taken), "w") as target,
            ):
                shutil.copyfileobj(source, target)
    spool.seek(0)
    return spool


def asset_delete(*, tenant: Tenant, asset: Asset) -> bool:
    """Delete one of `tenant`'s assets, its file and its thumbnail."""
    return bool(assets_delete(tenant=tenant, assets=[asset]))


class AssetUrlError(CodedError):
    """A download link refused: `not_found` (not signed by us, or no such asset) or
    `url_expired`."""


@dataclass(frozen=True)
class AssetUrl:
    """A link to an asset's bytes that needs no API key, valid until `expires_at`; a
    path on this site (the API makes it absolute) or the storage's own signed URL."""

    url: str
    expires_at: datetime


def asset_filename(asset: Asset) -> str:
    """The name an asset is downloaded under: its original name, with its format's
    extension."""
    filename = asset.original_name or f"{asset.id}.{asset.extension}"
    if not filename.lower().endswith("." + asset.extension):
        filename = f"{filename.rsplit('.', 1)[0]}.{asset.extension}"
    return filename


def _asset_signer(asset_id: uuid.UUID | str) -> signing.Signer:
    # Salted with the asset's id: a signature is worth nothing for another asset.
    return signing.Signer(salt=f"jobs.asset-download:{uuid.UUID(str(asset_id))}")


def asset_download_url(*, asset: Asset) -> AssetUrl:
    """A download link for `asset`, valid ASSET_URL_TTL_SECONDS: the storage's own
    presigned URL when it has one (S3 through django-storages), else a path on this site
    whose signature (keyed with SECRET_KEY and the asset's id) covers its expiry."""
    ttl = int(settings.ASSET_URL_TTL_SECONDS)
    expires = int(timezone.now().timestamp()) + ttl
    expires_at = datetime.fromtimestamp(expires, tz=UTC)
    presigned = _storage_presigned_url(asset, ttl)
    if presigned is not None:
        return AssetUrl(url=presigned, expires_at=expires_at)
    signature = _asset_signer(asset.pk).signature(str(expires))
    path = reverse("api_asset_download", args=[asset.pk])
    return AssetUrl(
        url=f"{path}?{urlencode({'expires': expires, 'signature': signature})}",
        expires_at=expires_at,
    )


def _storage_presigned_url(asset: Asset, ttl: int) -> str | None:
    """S3's own signed URL for the asset (django-storages with `querystring_auth`, its
    default), which S3 serves itself; None for any other storage."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:
        return None
    storage = asset.file.storage
    if not isinstance(storage, S3Storage) or not getattr(storage, "querystring_auth", True):
        return None
    disposition = f'attachment; filename="{asset_filename(asset)}"'
    url: str = storage.url(
        asset.file.name,
        parameters={
            "ResponseContentDisposition": disposition,
            "ResponseContentType": asset.mime_type,
        },
        expire=ttl,
    )
    return url


def asset_download_check(*, asset_id: uuid.UUID | str, expires: str, signature: str) -> Asset:
    """The asset a download link names, if we signed the link: `not_found` for a link we
    did not sign (or a missing asset), `url_expired` for one past its expiry."""
    not_found = AssetUrlError("not_found", "No such file, or the link is not valid.")
    if not expires.isdigit() or not signature:
        raise not_found
    expected = _asset_signer(asset_id).signature(expires)
    if not constant_time_compare(expected, signature):
        raise not_found
    if int(expires) < timezone.now().timestamp():
        raise AssetUrlError(
            "url_expired", "This download link has expired: get the asset again for a new one."
        )
    asset = Asset.objects.filter(pk=asset_id).first()
    if asset is None:
        raise not_found
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
    resolved = job_resolve_params(
        tenant=tenant,
        spec=spec,
        preset=preset,
        overrides=params,
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
            backdrop=_job_backdrop(spec=spec, engine=quote.engine, preset=preset, params=resolved),
            own_key=quote.own_key,
            price=quote.price,
            status=JobStatus.WAITING_FOR_PROVIDER if pause else JobStatus.QUEUED,
            waiting_since=timezone.now() if pause else None,
            seed_drawn=_seed_drawn(spec, {**(preset.params if preset else {}), **(params or {})}),
        )
        _job_hold(job=job, user=user)
        job.input_asset = asset_create(
            tenant=tenant,
            job=job,
            kind=AssetKind.INPUT,
            data=source.data,
            info=source.info,
            original_name=source.name,
            thumbnail=source.thumbnail_now,
        )
        job.save(update_fields=["input_asset"])
        if pause is None:
            transaction.on_commit(lambda: job_enqueue(job_id=job.id, engine=job.engine))
        elif pause.paused_until <= timezone.now():
            # The pause is due for a probe and this may be the only job to send as one.
            transaction.on_commit(provider_probes_start)
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
    """Hand a committed queued job to what runs it: the one dispatcher for Segmind, which
    claims queued jobs itself; for the local engine, one task per job, which runs the
    local job whose turn it is (`job_run_next`), not necessarily this one."""
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
        # Decoded no larger than the engine needs (its packshots are 2000 px): a large
        # photo is never held whole beyond the reduction.
        source = images.open_image(
            fh.read(), max_side=settings.IMAGE_WORK_MAX_SIDE, **_image_limits()
        )
    if not job.input_asset.thumbnail:
        _input_thumbnail_from(asset=job.input_asset, image=source)
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


def _input_thumbnail_from(*, asset: Asset, image: Image.Image) -> None:
    """A large photo's thumbnail, made from the worker's working copy of it: accepting
    it did not decode it (see `_Input.thumbnail_now`)."""
    try:
        thumb = images.thumbnail_jpeg_of(image)
        asset.thumbnail.save(f"{asset.id}.thumb.jpg", ContentFile(thumb), save=False)
        _asset_thumbnail_claim(asset=asset)
    except Exception:
        # The gallery makes it on first view instead; the job goes on.
        logger.warning("asset %s: no thumbnail from its job", asset.pk, exc_info=True)


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
            price, batch_id = Job.objects.values_list("price", "batch_id").get(pk=job_id)
            # Free jobs hold nothing: skip the ledger on the dispatcher's hot path.
            if price:
                account_services.credits_release(job=Job(pk=job_id))
            if batch_id is not None:
                _batch_check_after_commit(batch_id)
            job = Job.objects.select_related("tenant").get(pk=job_id)
            _job_event_emit(job=job, type=WebhookEventType.JOB_FAILED)
    return bool(failed)


def _job_event_emit(
    *, job: Job, type: str, listening: Sequence[WebhookEndpoint] | None = None
) -> None:
    """The job's webhook event, in the transaction that finished it. Its data is the
    job as the API shows it, built only when an endpoint or the job's URL listens."""

    def data() -> dict[str, Any]:
        from jobs.api import job_event_data  # the API's one representation of a job

        return job_event_data(job_id=job.pk)

    account_services.webhook_event_emit(
        tenant=job.tenant, type=type, data=data, job=job, listening=listening
    )


def _local_job_claim(job_id: uuid.UUID | str) -> bool:
    """Move one queued local job to running; of two runs that try, one wins."""
    # Segmind jobs are claimed by the dispatcher (`provider`), never here.
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
    try:
        job_params_check(job=job)
    except catalog.ParamsError as e:
        job_fail(job_id=job.pk, code=e.code, message=e.message)
        return
    try:
        if job.input_asset is None:
            raise local_engine.EngineError("missing_input", "The job's input image is missing.")
        data, info = _render_local(job)
    except (local_engine.EngineError, images.ImageError) as e:
        job_fail(job_id=job.pk, code=e.code, message=e.message)
        return
    except Exception:
        logger.exception("job %s failed", job.pk)
        job_fail(job_id=job.pk, code="internal_error", message=INTERNAL_ERROR_MESSAGE)
        return
    job_succeed(job=job, outputs=[(data, info)])


def job_succeed(
    *,
    job: Job,
    outputs: Sequence[tuple[bytes, images.ImageInfo]],
    listening: Sequence[WebhookEndpoint] | None = None,
    thumbnails: bool = True,
) -> bool:
    """Move a running job to succeeded and store its outputs, once, with their
    thumbnails unless `thumbnails` is False (see `asset_create`).

    `listening`: the workspace's enabled webhook endpoints, when the caller loaded them
    for many jobs at once; else they are looked up here.

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
        if job.batch_id is not None:
            _batch_check_after_commit(job.batch_id)
        for index, (data, info) in enumerate(outputs, start=1):
            suffix = f"-{index}" if len(outputs) > 1 else ""
            asset_create(
                tenant=job.tenant,
                job=job,
                kind=AssetKind.OUTPUT,
                data=data,
                info=info,
                original_name=f"{job.model}-{str(job.pk)[:8]}{suffix}.{info.format.lower()}",
                thumbnail=thumbnails,
            )
        _job_event_emit(job=job, type=WebhookEventType.JOB_SUCCEEDED, listening=listening)
    return True


def job_cancel(*, job: Job) -> bool:
    """Cancel a job that has not started (queued, or waiting for Segmind), and give its
    held credits back; False when it is already running or done."""
    with transaction.atomic():
        canceled = Job.objects.filter(
            pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.WAITING_FOR_PROVIDER]
        ).update(status=JobStatus.CANCELED, completed_at=timezone.now())
        if canceled and job.price:
            account_services.credits_release(job=job)
        if canceled and job.batch_id is not None:
            _batch_check_after_commit(job.batch_id)
    return bool(canceled)


# -- reruns and batches ---------------------------------------------------------------------

# Photos of a batch fetched at once: enough to overlap slow hosts, few enough to keep a web
# process's memory and connections modest (each photo is stored, not kept, once checked).
BATCH_FETCH_THREADS = 8


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
        transaction.on_commit(provider.dispatcher_ensure)


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


def batch_retry_failed(*, batch: Batch, user: User | None) -> list[Job]:
    """Run each failed job of the batch once more, into the batch; all of them or none.

    A failed job that already has a rerun in the batch is skipped, so pressing "retry"
    twice (or two people at once: the batch's row is locked meanwhile) retries each job
    once. Returns the new jobs (none when nothing is left to retry).
    """
    already = Job.objects.filter(rerun_of=OuterRef("pk"), batch_id=batch.pk)
    with transaction.atomic():
        Batch.objects.select_for_update().filter(pk=batch.pk).first()
        failed = list(
            Job.objects.filter(batch_id=batch.pk, status=JobStatus.FAILED)
            .exclude(Exists(already))
            .select_related("tenant", "input_asset", "preset")
            .order_by("created_at", "pk")
        )
        try:
            return [job_rerun(job=job, user=user, batch=batch) for job in failed]
        except JobError as e:
            count = f"{len(failed)} failed job{'s' if len(failed) != 1 else ''}"
            if e.code == "insufficient_credits":
                balance = Tenant.objects.values_list("credit_balance", flat=True).get(
                    pk=batch.tenant_id
                )
                raise JobError(
                    e.code,
                    f"Retrying the {count} needs more credits than the workspace's {balance}. "
                    "No job was retried.",
                ) from e
            raise JobError(
                e.code, f"The {count} could not be retried: {e.message} No job was retried."
            ) from e


@dataclass(frozen=True)
class BatchItem:
    """One product photo of a batch, with its own parameters over the batch's."""

    image_url: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Planned:
    image_url: str
    params: dict[str, Any]
    quote: Quote
    seed_drawn: bool


def _batch_refused(errors: Mapping[str, str]) -> JobError:
    # The detail names a few fields; `errors` has them all.
    shown = [f"{name}: {rule}" for name, rule in list(errors.items())[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    error = JobError("validation_error", "; ".join(shown) + more)
    error.errors = dict(errors)
    return error


def _batch_plan(
    *,
    tenant: Tenant,
    spec: catalog.ModelSpec,
    items: Sequence[BatchItem],
    preset: Preset | None,
    params: Mapping[str, Any],
) -> list[_Planned]:
    """Each item's resolved parameters and price, or every error at once, each naming
    its place in the request: `params.<name>`, `items.<i>.image_url`,
    `items.<i>.params.<name>`."""
    errors: dict[str, str] = {}
    if preset is not None and preset.tenant_id not in (None, tenant.pk):
        errors["preset"] = "this preset does not exist"
    elif preset is not None and preset.model != spec.slug:
        errors["preset"] = f"{preset.name} is a preset for {preset.model_title}, not {spec.title}"
    if spec.image_param in params:
        errors[f"params.{spec.image_param}"] = "each item brings its photo as its image_url"
    try:
        catalog.resolve_params(spec, params, partial=True)
    except catalog.ParamsError as e:
        errors.update({f"params.{name}": rule for name, rule in e.errors.items()})
    preset_params = preset.params if preset is not None and "preset" not in errors else {}
    shared = {**preset_params, **params}
    planned = []
    for index, item in enumerate(items):
        at = f"items.{index}"
        own = dict(item.params)
        url = item.image_url.strip()
        if not url:
            errors[f"{at}.image_url"] = "give the URL of a product photo"
        if spec.image_param in own:
            errors[f"{at}.params.{spec.image_param}"] = "the item's photo is its image_url"
            continue
        given = {**shared, **own}
        try:
            resolved = catalog.resolve_params(
                spec,
                {**given, spec.image_param: url} if url else given,
                attached=frozenset() if url else frozenset({spec.image_param}),
            )
        except catalog.ParamsError as e:
            for name, rule in e.errors.items():
                if name == spec.image_param:
                    errors[f"{at}.image_url"] = rule
                elif name in params and name not in own:
                    # The batch's own value is wrong: said once, above or here.
                    errors.setdefault(f"params.{name}", rule)
                else:
                    errors[f"{at}.params.{name}"] = rule
            continue
        quote = job_quote(tenant=tenant, spec=spec, params=resolved)
        planned.append(_Planned(url, resolved, quote, _seed_drawn(spec, given)))
    if errors:
        raise _batch_refused(errors)
    return planned


def _batch_inputs_fetch(
    *, tenant: Tenant, urls: Sequence[str]
) -> tuple[dict[str, Asset], dict[str, str]]:
    """Fetch and check every photo, several at a time; each is written to storage as
    soon as it is checked, so only a few photos are in memory at once. Returns the
    unsaved assets by URL, and what is wrong with each URL that was refused."""

    def fetch(url: str) -> Asset:
        source = _read_input(image_url=url, upload=None)
        return _asset_stored(
            tenant=tenant,
            job=None,
            kind=AssetKind.INPUT,
            data=source.data,
            info=source.info,
            original_name=source.name,
            thumbnail=source.thumbnail_now,
        )

    with ThreadPoolExecutor(max_workers=max(1, min(BATCH_FETCH_THREADS, len(urls)))) as pool:
        futures = {url: pool.submit(fetch, url) for url in urls}
    stored: dict[str, Asset] = {}
    refused: dict[str, str] = {}
    unexpected: Exception | None = None
    for url, future in futures.items():
        try:
            stored[url] = future.result()
        except JobError as e:
            refused[url] = e.message.removeprefix("image_url: ")
        except Exception as e:
            unexpected = unexpected or e
    if unexpected is not None:
        _assets_discard(stored.values())
        raise unexpected
    return stored, refused


def _assets_discard(assets: Iterable[Asset]) -> None:
    """Delete the files of assets that will not be saved (a refused batch)."""
    for asset in assets:
        asset.file.delete(save=False)
        if asset.thumbnail:
            asset.thumbnail.delete(save=False)


def batch_submit(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    items: Sequence[BatchItem],
    preset: Preset | None = None,
    params: Mapping[str, Any] | None = None,
    name: str = "",
) -> Batch:
    """Submit one job per item, all of them or none.

    Every item is checked first (parameters, then the price of all of them against the
    balance, then each photo, fetched and checked), every error naming its item
    (`items.3.image_url`); only then are the batch, its jobs and their holds created, in
    one transaction. A refused batch leaves no job, no hold and no stored photo. Photos
    are fetched before the transaction (no lock is held meanwhile), one fetch per
    distinct URL: items with the same photo share its stored input.
    """
    limit = settings.BATCH_MAX_ITEMS
    if not 1 <= len(items) <= limit:
        raise _batch_refused({"items": f"send 1 to {limit} items, not {len(items)}"})
    engine, _ = job_engine(tenant=tenant)
    spec = _model_for_job(model, engine)
    planned = _batch_plan(tenant=tenant, spec=spec, items=items, preset=preset, params=params or {})
    total = sum(plan.quote.price for plan in planned)
    balance = Tenant.objects.values_list("credit_balance", flat=True).get(pk=tenant.pk)
    if total > balance:
        raise _batch_short(total=total, balance=balance, jobs=len(planned))
    urls = list(dict.fromkeys(plan.image_url for plan in planned))
    inputs, refused = _batch_inputs_fetch(tenant=tenant, urls=urls)
    if refused:
        _assets_discard(inputs.values())
        raise _batch_refused(
            {
                f"items.{index}.image_url": refused[plan.image_url]
                for index, plan in enumerate(planned)
                if plan.image_url in refused
            }
        )
    short = partial(_batch_short, total=total, jobs=len(planned))
    return _batch_create(
        tenant=tenant,
        user=user,
        spec=spec,
        preset=preset,
        name=name,
        new_jobs=[
            _NewJob(
                plan.params, plan.quote, plan.seed_drawn, inputs[plan.image_url], plan.image_url
            )
            for plan in planned
        ],
        short=short,
    )


@dataclass(frozen=True)
class _NewJob:
    params: dict[str, Any]
    quote: Quote
    seed_drawn: bool
    input: Asset  # stored, not yet saved; shared by the jobs of the same photo
    source_url: str = ""
    sku: str = ""


def _batch_create(
    *,
    tenant: Tenant,
    user: User | None,
    spec: catalog.ModelSpec,
    preset: Preset | None,
    name: str,
    new_jobs: Sequence[_NewJob],
    short: Callable[..., JobError],
) -> Batch:
    """Create the batch, its jobs (each holding its price) and their stored photos in one
    transaction, then queue the jobs. Any failure deletes the stored files; a hold refused
    because the balance was spent meanwhile refuses the whole batch as `short(balance=)`."""
    inputs = list({id(job.input): job.input for job in new_jobs}.values())
    # One pause for all: the jobs share the workspace's key.
    pause = _paused_for(tenant=tenant, quote=new_jobs[0].quote)
    try:
        with transaction.atomic():
            batch = Batch.objects.create(tenant=tenant, name=name.strip()[:200], created_by=user)
            for asset in inputs:
                asset.save()
            jobs = []
            # A microsecond apart, so that the jobs sort in the items' order.
            first_at = timezone.now()
            for index, new in enumerate(new_jobs):
                job = Job.objects.create(
                    tenant=tenant,
                    batch=batch,
                    created_at=first_at + timedelta(microseconds=index),
                    created_by=user,
                    model=spec.slug,
                    engine=new.quote.engine,
                    params=new.params,
                    preset=preset,
                    source_url=new.source_url,
                    sku=new.sku,
                    input_asset=new.input,
                    backdrop=_job_backdrop(
                        spec=spec, engine=new.quote.engine, preset=preset, params=new.params
                    ),
                    own_key=new.quote.own_key,
                    price=new.quote.price,
                    status=JobStatus.WAITING_FOR_PROVIDER if pause else JobStatus.QUEUED,
                    waiting_since=timezone.now() if pause else None,
                    seed_drawn=new.seed_drawn,
                )
                _job_hold(job=job, user=user)
                jobs.append(job)
            # Each stored photo belongs to the first job made from it.
            first_jobs = {}
            for job in reversed(jobs):
                first_jobs[job.input_asset_id] = job
            for asset in inputs:
                Asset.objects.filter(pk=asset.pk).update(job=first_jobs[asset.pk])
            _jobs_send(jobs=jobs, pause=pause)
    except JobError as e:
        _assets_discard(inputs)
        if e.code == "insufficient_credits":
            # Spent meanwhile (another job or batch): refused as a whole, like before.
            balance = Tenant.objects.values_list("credit_balance", flat=True).get(pk=tenant.pk)
            raise short(balance=balance) from e
        raise
    except BaseException:
        _assets_discard(inputs)
        raise
    return batch


SKU_MAX_LENGTH = Job._meta.get_field("sku").max_length or 100


@dataclass(frozen=True)
class PhotoSource:
    """One product photo given on the new-job page: a pasted URL or an uploaded file.
    `label` names it when it is left out ("line 3: https://…", "row 2: …", "mug.jpg")."""

    label: str
    image_url: str = ""
    upload: UploadedFile | None = None
    sku: str = ""


@dataclass(frozen=True)
class PortalBatch:
    """A batch made from the new-job page, and the photos left out of it, each named
    with why ("line 3: https://…: The server answered 404.")."""

    batch: Batch
    skipped: list[str]


def _portal_upload_store(*, tenant: Tenant, upload: UploadedFile) -> Asset:
    source = _read_input(image_url="", upload=upload)
    return _asset_stored(
        tenant=tenant,
        job=None,
        kind=AssetKind.INPUT,
        data=source.data,
        info=source.info,
        original_name=source.name,
        thumbnail=source.thumbnail_now,
    )


def batch_submit_portal(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    sources: Sequence[PhotoSource],
    preset: Preset | None = None,
    params: Mapping[str, Any] | None = None,
    name: str = "",
) -> PortalBatch:
    """Submit one job per photo as a batch, leaving out the photos that can't be used.

    Unlike `batch_submit` (the API's, all or nothing), a bad photo among good ones does
    not refuse the batch: a malformed URL, a refused host, a failed fetch or a file that
    is not an image is left out and named in `skipped`, and the others become jobs. What
    concerns every photo is still refused as a whole: the model, the preset and the
    parameters (checked first, nothing fetched), no usable photo at all, and a total
    price over the balance (checked on the usable photos before any job is created).
    A refused batch leaves no job, no hold and no stored photo.
    """
    limit = settings.BATCH_MAX_ITEMS
    if not sources:
        raise JobError(
            "validation_error",
            "image_url: paste the URL of a product photo or upload one.",
            field="image_url",
        )
    if len(sources) > limit:
        raise JobError(
            "validation_error",
            f"A batch takes at most {limit} photos; you gave {len(sources)}: split them.",
        )
    engine, _ = job_engine(tenant=tenant)
    spec = _model_for_job(model, engine)
    # Parameters wrong for every photo refuse the batch, field by field, before any fetch.
    job_resolve_params(
        tenant=tenant, spec=spec, preset=preset, overrides=params, upload_attached=True
    )
    given = {**(preset.params if preset else {}), **(params or {})}
    skipped: dict[int, str] = {}
    planned: dict[int, tuple[dict[str, Any], Quote]] = {}
    for index, source in enumerate(sources):
        url = source.image_url.strip()
        if len(source.sku.strip()) > SKU_MAX_LENGTH:
            skipped[index] = f"{source.label}: the sku is longer than {SKU_MAX_LENGTH} characters"
            continue
        try:
            # Each photo is resolved on its own: a drawn seed is drawn for each job.
            resolved = catalog.resolve_params(
                spec,
                {**given, spec.image_param: url} if source.upload is None else given,
                attached=frozenset({spec.image_param}) if source.upload else frozenset(),
            )
        except catalog.ParamsError as e:
            skipped[index] = f"{source.label}: {e.errors.get(spec.image_param, e.message)}"
            continue
        planned[index] = (resolved, job_quote(tenant=tenant, spec=spec, params=resolved))
    urls = list(
        dict.fromkeys(sources[i].image_url.strip() for i in planned if not sources[i].upload)
    )
    fetched, refused = _batch_inputs_fetch(tenant=tenant, urls=urls)
    stored: dict[int, Asset] = {}
    try:
        for index in list(planned):
            source = sources[index]
            if source.upload is None:
                url = source.image_url.strip()
                if url in refused:
                    skipped[index] = f"{source.label}: {refused[url]}"
                else:
                    stored[index] = fetched[url]
                continue
            try:
                stored[index] = _portal_upload_store(tenant=tenant, upload=source.upload)
            except JobError as e:
                # "image: mug.jpg is larger than…", "image: notes.txt: This file isn't…":
                # both name the file already.
                reason = e.message.removeprefix("image: ")
                file_name = source.upload.name or ""
                named_file = bool(file_name) and reason.startswith(file_name)
                skipped[index] = reason if named_file else f"{source.label}: {reason}"
    except BaseException:
        _assets_discard([*fetched.values(), *stored.values()])
        raise
    named = [skipped[i] for i in sorted(skipped)]
    if not stored:
        _assets_discard(fetched.values())
        shown = "; ".join(named[:5]) + (f" (and {len(named) - 5} more)" if len(named) > 5 else "")
        raise JobError("validation_error", f"None of the photos could be used: {shown}")
    total = sum(planned[i][1].price for i in stored)
    short = partial(_batch_portal_short, total=total)
    balance = Tenant.objects.values_list("credit_balance", flat=True).get(pk=tenant.pk)
    if total > balance:
        _assets_discard([*fetched.values(), *stored.values()])
        raise short(balance=balance)
    batch = _batch_create(
        tenant=tenant,
        user=user,
        spec=spec,
        preset=preset,
        name=name,
        new_jobs=[
            _NewJob(
                params=planned[index][0],
                quote=planned[index][1],
                seed_drawn=_seed_drawn(spec, given),
                input=stored[index],
                source_url=sources[index].image_url.strip(),
                sku=sources[index].sku.strip(),
            )
            for index in sorted(stored)
        ],
        short=short,
    )
    return PortalBatch(batch=batch, skipped=named)


def _batch_portal_short(*, total: int, balance: int) -> JobError:
    return JobError(
        "insufficient_credits",
        f"This batch needs {total} credits; your balance is {balance}.",
    )


def _batch_short(*, total: int, balance: int, jobs: int) -> JobError:
    return JobError(
        "insufficient_credits",
        f"This batch of {jobs} job{'s' if jobs != 1 else ''} needs {total} credits and the "
        f"workspace has {balance}.",
    )


def _batch_check_after_commit(batch_id: uuid.UUID) -> None:
    # After the commit, not inside it: two jobs of a batch finishing in two transactions
    # at once would each see the other unfinished. After both commits, the later check
    # sees both finished. Robust: a failed check must not fail the job's caller (the
    # sweeper completes the batch later).
    transaction.on_commit(partial(batch_complete_check, batch_id=batch_id), robust=True)


def batch_complete_check(*, batch_id: uuid.UUID | str) -> bool:
    """Set the batch's `completed_at` if every job of it has finished; True only for the
    one call that sets it.

    One conditional update (`completed_at` still empty, no unfinished job): of checks
    racing after their jobs' commits, the database lets exactly one through; the others
    find it set.
    """
    unfinished = Job.objects.filter(batch_id=OuterRef("pk")).exclude(status__in=TERMINAL_STATUSES)
    with transaction.atomic():
        completed = (
            Batch.objects.filter(pk=batch_id, completed_at__isnull=True)
            .exclude(Exists(unfinished))
            .update(completed_at=timezone.now())
        )
        if completed:
            # In the same transaction: the event exists exactly when the completion does.
            batch = Batch.objects.select_related("tenant").get(pk=batch_id)
            account_services.webhook_event_emit(
                tenant=batch.tenant,
                type=WebhookEventType.BATCH_COMPLETED,
                data=partial(_batch_event_data, batch_id=batch.pk),
            )
    return bool(completed)


def _batch_event_data(*, batch_id: uuid.UUID) -> dict[str, Any]:
    from jobs.api import batch_event_data  # the API's one representation of a batch

    return dict(batch_event_data(batch_id=batch_id))


def batches_complete_pending() -> int:
    """Complete the batches whose jobs have all finished but that no check completed (a
    process stopped between a job's commit and its check): the sweeper's safety net."""
    unfinished = Job.objects.filter(batch_id=OuterRef("pk")).exclude(status__in=TERMINAL_STATUSES)
    pending = Batch.objects.filter(completed_at__isnull=True).exclude(Exists(unfinished))
    return sum(batch_complete_check(batch_id=pk) for pk in pending.values_list("pk", flat=True))


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
        changes: dict[str, Any] = {"status": JobStatus.QUEUED}
        if engine == "segmind":
            # Its submission may have reached Segmind (see jobs_unsent_settle).
            changes.update(_crash_resubmit_changes())
        if Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, started_at__lt=cutoff).update(
            **changes
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
    # Segmind jobs need the one dispatcher, woken once, not once per job; one that died
    # is replaced once its lease runs out (and its successor settles what it left).
    transaction.on_commit(provider.dispatcher_watch)
    # Jobs waiting for Segmind: a probe once a pause is due, a refund after the limit.
    expired = jobs_wait_expire() + jobs_queue_wait_expire()
    provider_pauses_stale_clear()
    jobs_waiting_unpaused_resume()
    probes = provider_probes_start()
    return {
        "failed": failed,
        "requeued": requeued,
        "resent": len(lost),
        "probes": probes,
        "expired": expired,
        "batches_completed": batches_complete_pending(),
    }


def _crash_resubmit_changes() -> dict[str, Any]:
    return {
        "crash_resubmits": F("crash_resubmits") + 1,
        "resubmitted_after_crash_at": timezone.now(),
    }


def jobs_unsent_settle(*, max_attempts: int = 3) -> dict[str, int]:
    """Settle the Segmind jobs a dead dispatcher left claimed without a request id.

    Only the dispatcher that has just taken the lease over from a holder whose lease ran
    out may call this, before it claims anything: a Segmind job is claimed only by the
    lease's holder, so these are the dead holder's, cut off mid-submission. Segmind has no
    idempotency keys and may have accepted the submission, so each job is counted as
    resubmitted after a crash (`crash_resubmits`, for operators to reconcile) and goes
    back to the queue with its place kept, to be sent again; one claimed `max_attempts`
    times already fails with `worker_lost` and its credits go back. Returns counts.
    """
    unsent = Job.objects.segmind_unsent()
    failed = 0
    for job_id in list(unsent.filter(attempts__gte=max_attempts).values_list("pk", flat=True)):
        with transaction.atomic():
            if job_fail(
                job_id=job_id,
                code="worker_lost",
                message="The job stopped moving several times and was given up. Try again.",
            ):
                failed += 1
                Job.objects.filter(pk=job_id).update(**_crash_resubmit_changes())
    requeued = unsent.filter(attempts__lt=max_attempts).update(
        status=JobStatus.QUEUED, started_at=None, **_crash_resubmit_changes()
    )
    if failed or requeued:
        logger.warning(
            "a Segmind dispatcher died mid-submission: %d job(s) sent again, %d failed; "
            "Segmind may have accepted (and bill) the lost submissions",
            requeued,
            failed,
        )
    return {"requeued": requeued, "failed": failed}


# -- Segmind keys and the circuit breaker for Segmind's 406 ---------------------------------


@dataclass(frozen=True)
class SegmindKey:
    """A Segmind API key and whose it is. `key_id` names it in the database, in logs and
    in emails; the key itself stays in memory."""

    key: str = field(repr=False)
    key_id: str
    # The workspace whose own key it is; None for the platform's key.
    tenant_id: int | None
    last4: str = ""

    @property
    def own(self) -> bool:
        return self.tenant_id is not None


def segmind_key_id(key: str) -> str:
    """A digest naming a Segmind key without revealing it: keyed with SECRET_KEY, so the
    id cannot be used to test guesses of the key."""
    secret = f"productstudio.segmind-key-id:{settings.SECRET_KEY}".encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:24]


def segmind_key_for(*, tenant: Tenant | None) -> SegmindKey | None:
    """The workspace's own Segmind key, or with None the platform's; None when there is
    none (or the workspace's can no longer be decrypted)."""
    if tenant is None:
        key = settings.SEGMIND_API_KEY
        return SegmindKey(key=key, key_id=segmind_key_id(key), tenant_id=None) if key else None
    key = account_services.segmind_key_get(tenant=tenant)
    if not key:
        return None
    last4 = tenant.segmind_key_last4 or key[-4:]
    return SegmindKey(key=key, key_id=segmind_key_id(key), tenant_id=tenant.pk, last4=last4)


def jobs_queue_wait_expire() -> int:
    """Fail the Segmind jobs still queued, unsent, SEGMIND_RATE_WAIT_LIMIT_SECONDS after
    they were made (their key's rate limit kept them waiting); their credits go back.
    Returns how many failed. Each fails once: the update is conditional on `queued`."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SEGMIND_RATE_WAIT_LIMIT_SECONDS)
    expired = 0
    stale = Job.objects.segmind_queued().filter(created_at__lt=cutoff)
    for job_id, created_at in list(stale.values_list("pk", "created_at")):
        expired += job_fail(
            job_id=job_id,
            code="provider_rate_limited",
            message=provider_rate_gave_up_message(
                waited_seconds=(now - created_at).total_seconds()
            ),
            from_status=JobStatus.QUEUED,
        )
    return expired


def _budget_gate(budget: SegmindKeyBudget) -> ratelimit.KeyGate:
    rate = ratelimit.Rate(budget.limit, budget.window_seconds)
    return ratelimit.KeyGate.from_state(
        rate, budget.state, retry_after_max=settings.SEGMIND_RETRY_AFTER_MAX_SECONDS
    )


@dataclass(frozen=True)
class BudgetView:
    """One key's pacing as an operator sees it (see `segmind_budgets_view`)."""

    budget: SegmindKeyBudget
    limit: int
    window_seconds: float
    adaptive_limit: int
    used: int
    throttled_last_hour: int
    closed_until: datetime | None
    jobs_waiting: int


def segmind_budget_view(*, budget: SegmindKeyBudget, now: datetime | None = None) -> BudgetView:
    """A key's budget, its use in the current window, its 429s in the last hour and the
    jobs waiting for it, as of the dispatcher's last save (every few seconds)."""
    at = (now or timezone.now()).timestamp()
    gate = _budget_gate(budget)
    queued = Job.objects.segmind_queued()
    if budget.tenant_id is None:
        queued = queued.filter(own_key=False)
    else:
        queued = queued.filter(own_key=True, tenant_id=budget.tenant_id)
    closed = gate.closed_until if gate.closed_until > at else None
    return BudgetView(
        budget=budget,
        limit=budget.limit,
        window_seconds=budget.window_seconds,
        adaptive_limit=gate.limit if budget.limit else 0,
        used=gate.used(at),
        throttled_last_hour=gate.throttled_within(at, 3600),
        closed_until=datetime.fromtimestamp(closed, UTC) if closed else None,
        jobs_waiting=queued.count(),
    )


def provider_pause_for(*, key: SegmindKey | None) -> ProviderPause | None:
    """The open pause on `key`, if Segmind said its account is out of credit."""
    if key is None:
        return None
    return ProviderPause.objects.open().filter(key_id=key.key_id).first()


def _incident_record(
    *,
    pause: ProviderPause | None,
    job_id: uuid.UUID | str,
    key_id: str,
    own_key: bool,
    message: str,
) -> None:
    tenant_id = Job.objects.filter(pk=job_id).values_list("tenant_id", flat=True).first()
    ProviderIncident.objects.create(
        pause=pause,
        tenant_id=tenant_id,
        job_id=job_id,
        key_id=key_id,
        own_key=own_key,
        code="provider_insufficient_credits",
        message=message,
    )


def provider_pause_open(
    *, job_id: uuid.UUID | str, key: SegmindKey, provider_message: str = ""
) -> bool:
    """Segmind refused a submit of `job_id` with `key` for want of credit (406).

    The first refusal for the key opens a pause on it, fails that job (its held credits
    go back) and emails the operators once. While the pause is open, each further
    refusal (a submit already under way, or the probe) records an incident and sends
    the job to wait instead of failing; a refused probe puts the next one off by
    SEGMIND_PAUSE_SECONDS. Two racers open one pause (a unique constraint). Returns True
    when the job failed, False when it waits.
    """
    now = timezone.now()
    seconds = timedelta(seconds=settings.SEGMIND_PAUSE_SECONDS)
    with transaction.atomic():
        pause = ProviderPause.objects.open().select_for_update().filter(key_id=key.key_id).first()
        opened = False
        if pause is None:
            try:
                with transaction.atomic():
                    pause = ProviderPause.objects.create(
                        key_id=key.key_id,
                        tenant_id=key.tenant_id,
                        message=provider_message[:1000],
                        opened_at=now,
                        paused_until=now + seconds,
                    )
                opened = True
            except IntegrityError:
                # Another run opened it first: this job joins the pause.
                pause = ProviderPause.objects.open().select_for_update().get(key_id=key.key_id)
        if opened:
            message = provider_out_of_credit_message(own_key=key.own, last4=key.last4)
            failed = job_fail(job_id=job_id, code="provider_insufficient_credits", message=message)
            _incident_record(
                pause=pause, job_id=job_id, key_id=key.key_id, own_key=key.own, message=message
            )
            transaction.on_commit(partial(provider_pause_notify, pause_id=pause.pk))
            return failed
        changes: dict[str, Any] = {"occurrences": F("occurrences") + 1}
        if pause.probe_job_id is not None and str(pause.probe_job_id) == str(job_id):
            # The probe was refused too: the next one goes after another pause.
            changes.update(paused_until=now + seconds, probe_job=None)
        ProviderPause.objects.filter(pk=pause.pk).update(**changes)
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, provider_request_id="").update(
            status=JobStatus.WAITING_FOR_PROVIDER,
            waiting_since=Coalesce(F("waiting_since"), Value(now)),
            # Segmind answered: not an attempt lost to a crash (the sweeper counts those).
            attempts=Greatest(F("attempts") - 1, Value(0)),
        )
        _incident_record(
            pause=pause,
            job_id=job_id,
            key_id=key.key_id,
            own_key=key.own,
            message=provider_waiting_message(own_key=key.own, last4=key.last4),
        )
    return False


def provider_pause_clear(*, pause_id: int, by: User | None, reason: str) -> int | None:
    """Close a pause (an operator, or an accepted probe) and send the jobs it held back
    to the queue. Returns how many resumed, or None if it was already cleared."""
    with transaction.atomic():
        cleared = ProviderPause.objects.filter(pk=pause_id, cleared_at__isnull=True).update(
            cleared_at=timezone.now(), cleared_by=by, cleared_reason=reason[:200]
        )
        if not cleared:
            return None
        pause = ProviderPause.objects.get(pk=pause_id)
        # waiting_since is kept: the wait limit counts from when a job first waited.
        resumed = Job.objects.waiting_for(pause).update(status=JobStatus.QUEUED)
        if resumed:
            transaction.on_commit(provider.dispatcher_ensure)
    logger.info("Segmind pause %s cleared (%s): %d job(s) resumed", pause_id, reason, resumed)
    return resumed


def provider_probes_start() -> int:
    """For each open pause past its `paused_until` with no probe under way, send one
    waiting job back to the queue as its probe: if Segmind takes it, the pause clears.
    Called by the sweeper every minute and by the dispatcher. Returns the probes started."""
    now = timezone.now()
    started = 0
    for pause in ProviderPause.objects.open().filter(paused_until__lte=now):
        probe_id = pause.probe_job_id
        if (
            probe_id is not None
            and Job.objects.filter(
                pk=probe_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
            ).exists()
        ):
            continue
        candidate = (
            Job.objects.waiting_for(pause)
            .order_by("waiting_since", "created_at")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            continue
        with transaction.atomic():
            # Both conditional: a racing sweeper or an operator's clear wins cleanly.
            if not ProviderPause.objects.filter(
                pk=pause.pk, cleared_at__isnull=True, probe_job=probe_id
            ).update(probe_job=candidate):
                continue
            if not Job.objects.filter(pk=candidate, status=JobStatus.WAITING_FOR_PROVIDER).update(
                status=JobStatus.QUEUED
            ):
                transaction.set_rollback(True)
                continue
        started += 1
    if started:
        transaction.on_commit(provider.dispatcher_ensure)
    return started


def jobs_waiting_unpaused_resume() -> int:
    """Send back to the queue the waiting jobs that no open pause holds back: a job made
    waiting just as an operator cleared its pause (its transaction had read the pause
    open) would otherwise wait until the limit. The sweeper's safety net."""
    owners = set(ProviderPause.objects.open().values_list("tenant_id", flat=True))
    held = Q(own_key=True, tenant_id__in=[t for t in owners if t is not None])
    if None in owners:
        held |= Q(own_key=False)
    resumed = (
        Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER)
        .exclude(held)
        .update(status=JobStatus.QUEUED)
    )
    if resumed:
        logger.warning("%d waiting job(s) had no open pause; sent back to the queue", resumed)
        transaction.on_commit(provider.dispatcher_ensure)
    return resumed


def provider_pauses_stale_clear() -> int:
    """Clear the pauses on workspaces' own keys that are no longer their key (the shop
    entered a new one, or removed it): its jobs go back to the queue, to run on the new
    key (or fail clearly without one)."""
    cleared = 0
    for pause in ProviderPause.objects.open().filter(tenant__isnull=False).select_related("tenant"):
        assert pause.tenant is not None
        current = segmind_key_for(tenant=pause.tenant)
        if current is None or current.key_id != pause.key_id:
            reason = "the workspace changed its own Segmind key"
            cleared += provider_pause_clear(pause_id=pause.pk, by=None, reason=reason) is not None
    return cleared


def jobs_wait_expire() -> int:
    """Fail the jobs that have waited for Segmind longer than SEGMIND_WAIT_LIMIT_SECONDS;
    their held credits go back. Returns how many failed."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SEGMIND_WAIT_LIMIT_SECONDS)
    expired = 0
    waiting = Job.objects.filter(
        status=JobStatus.WAITING_FOR_PROVIDER, waiting_since__lt=cutoff
    ).select_related("tenant")
    for job in waiting:
        assert job.waiting_since is not None
        last4 = job.tenant.segmind_key_last4 if job.own_key else ""
        message = provider_gave_up_message(
            own_key=job.own_key,
            last4=last4,
            waited_seconds=(now - job.waiting_since).total_seconds(),
        )
        with transaction.atomic():
            if not job_fail(
                job_id=job.pk,
                code="provider_insufficient_credits",
                message=message,
                from_status=JobStatus.WAITING_FOR_PROVIDER,
            ):
                continue
            pauses = ProviderPause.objects.open()
            owner = pauses.filter(tenant=job.tenant) if job.own_key else pauses.filter(tenant=None)
            pause = owner.first()
            _incident_record(
                pause=pause,
                job_id=job.pk,
                key_id=pause.key_id if pause else "",
                own_key=job.own_key,
                message=message,
            )
        expired += 1
    return expired


def provider_pause_recipients() -> list[str]:
    """Who hears of a pause: the ADMINS setting and every active staff user."""
    emails = [email for _, email in settings.ADMINS]
    emails += User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True)
    unique: dict[str, str] = {}
    for email in emails:
        if email:
            unique.setdefault(email.lower(), email)
    return list(unique.values())


def provider_pause_notify(*, pause_id: int) -> bool:
    """Email the operators that Segmind refused a key for want of credit (once per pause,
    after the commit that opened it). Names the key's owner, never the key."""
    pause = ProviderPause.objects.select_related("tenant").filter(pk=pause_id).first()
    recipients = provider_pause_recipients()
    if pause is None or not recipients:
        if pause is not None:
            logger.warning("Segmind pause %s opened, but there is nobody to email", pause_id)
        return False
    url = settings.SITE_URL + reverse("admin:jobs_providerpause_change", args=[pause.pk])
    if pause.tenant is not None:
        subject = f"Segmind is out of credit on {pause.tenant.name}'s own key"
        who = (
            f"the Segmind account behind the own key of the workspace {pause.tenant.name} "
            f"({pause.tenant.slug}, key ending {pause.tenant.segmind_key_last4 or '?'})"
        )
        after = "The shop has been told, on its jobs, to top up its Segmind account."
    else:
        subject = "Segmind is out of credit on the platform key: jobs are waiting"
        who = "the Segmind account behind the platform's key (SEGMIND_API_KEY)"
        after = "Top up the Segmind account, then clear the pause in the admin."
    body = (
        f"Segmind answered 406 (insufficient credits) at {pause.opened_at:%Y-%m-%d %H:%M:%S %Z} "
        f"for {who}.\n\n"
        "The job it refused failed and its credits were given back. Jobs for this key now "
        "wait (status waiting_for_provider) instead of failing one by one. At "
        f"{pause.paused_until:%H:%M:%S %Z} one of them is sent as a probe: if Segmind takes "
        "it, the others resume; if not, the next probe is "
        f"{settings.SEGMIND_PAUSE_SECONDS} seconds later. Jobs still waiting after "
        f"{settings.SEGMIND_WAIT_LIMIT_SECONDS} seconds fail, and nothing is charged.\n\n"
        f"{after}\n\nThe pause (key id {pause.key_id}): {url}\n"
    )
    try:
        send_mail(
            subject=f"[ProductStudio] {subject}",
            message=body,
            from_email=settings.SERVER_EMAIL,
            recipient_list=recipients,
        )
    except Exception:
        # The pause and the banner stand without the email; the dispatcher goes on.
        logger.exception("emailing the operators about Segmind pause %s failed", pause_id)
        return False
    return True


class PresetError(CodedError):
    """A refused preset; `errors` maps each field to what is wrong with it. The code is
    `validation_error`, or `forbidden` for a system preset, which is read-only."""

    def __init__(self, errors: Mapping[str, str], *, code: str = "validation_error") -> None:
        self.errors = dict(errors)
        super().__init__(code, "; ".join(f"{field}: {rule}" for field, rule in errors.items()))


def preset_own_check(*, tenant: Tenant, preset: Preset, action: str) -> None:
    """Refuse to change (`action`: "edited", "deleted") a preset that is not the
    tenant's own: `forbidden` for a system preset, which is read-only for everyone."""
    if preset.tenant_id == tenant.pk:
        return
    if preset.is_system:
        raise PresetError(
            {"preset": f"system presets can't be {action}; copy it to make your own"},
            code="forbidden",
        )
    raise PresetError({"preset": f"only your workspace's own presets can be {action}"})


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
    preset_own_check(tenant=tenant, preset=preset, action="edited")
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
    preset_own_check(tenant=tenant, preset=preset, action="deleted")
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
